"""Exceptions shared by every Robot implementation (sim, bridge client, hardware drivers).

Each message says what was wrong and what to do about it, so a caller can show it as is.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TianjiError(Exception):
    """Base class of every error Tianji raises on purpose."""


class InvalidCommandError(TianjiError, ValueError):
    """A command was rejected as a whole (NaN/inf, wrong length, unsupported mode); nothing was applied."""


class UnknownJointError(InvalidCommandError, KeyError):
    """A command or query named a joint the robot does not have."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class UnknownNameError(TianjiError, KeyError):
    """A robot, scene or object name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class AssetError(TianjiError, FileNotFoundError):
    """A robot description, mesh or scene file is missing or unreadable."""


class RobotClosedError(TianjiError, RuntimeError):
    """The robot was used after close()."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A short suggestion clause for an unknown name, empty when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
