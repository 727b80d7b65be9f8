"""Hardware drivers: the Robot interface plus connect/disconnect/tick, found through ``tianji.drivers`` entry points.

A driver string is ``NAME[:ARG][?key=value&...]``: ``sim:tiago``, ``sim:tiago?scene=care_room``,
``fake:7``, ``replay:run.mcap``, ``myarm:/dev/ttyUSB0?baud=1000000``. ``NAME`` is looked up in
the ``tianji.drivers`` entry-point group, then among the built-ins (``sim``, ``fake``, ``replay``),
so the built-ins work without an installed entry point. The driver class is called as
``cls(ARG, rate=..., **options)`` (``ARG`` is ``""`` when absent; option values are strings).
See ``bridge/README.md`` for a worked example.
"""

from __future__ import annotations

import importlib
from abc import abstractmethod
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qsl

from tianji.bridge.protocol import E_UNSUPPORTED, BridgeError
from tianji.control.errors import UnknownNameError, did_you_mean
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Robot

GROUP = "tianji.drivers"
BUILTIN = {
    "sim": "tianji.bridge.drivers.sim:SimDriver",
    "fake": "tianji.bridge.drivers.fake:FakeDriver",
    "replay": "tianji.bridge.drivers.replay:ReplayDriver",
}


class Driver(Robot):
    """A robot the bridge server can serve: :class:`~tianji.control.Robot` plus a connection life cycle.

    The server calls, from its one control thread: ``connect()`` once, then every control period
    (``1 / spec.control_rate``) ``command()`` (the safety-filtered command, or ``stop()``),
    ``tick()`` and ``observe()``; finally ``disconnect()``. A driver for real hardware sends the
    command to the robot in ``command()`` or ``tick()`` and reads its sensors in ``observe()``;
    the simulator driver advances the physics by one control step in ``tick()``.
    """

    @abstractmethod
    def connect(self) -> None:
        """Open the connection to the robot (bus, socket, simulator); raise with what to check when it fails."""

    @abstractmethod
    def disconnect(self) -> None:
        """Leave the robot in its safe hold and release the connection. Called once, also after errors."""

    def tick(self) -> None:
        """Once per control period after the command: step a simulator, flush a bus write. Default: nothing."""

    def kinematics(self) -> Kinematics | None:
        """A :class:`~tianji.control.Kinematics` in the spec's joint order, for the safety filter's workspace box.

        Default None: the server then refuses a workspace box with a message saying so.
        """
        return None

    def person_force(self) -> float | None:
        """Contact force (N) between the robot and a person, for the safety filter's person-force limit.

        Default None: the driver has no such sensor and the server applies no person-force limit.
        A driver that returns a number here gets its commands stopped above ``person_force_limit``.
        """
        return None

    def scenario_request(self, action: str, since: int = 0, room: bool = False) -> dict[str, Any]:
        """The protocol's ``scenario`` request: a simulated stand-in's scripted events and ground truth.

        Only a driver that stages a scenario (``scenario:NAME``) has them; hardware has no ground
        truth to give, so the default refuses with ``unsupported``.
        """
        raise BridgeError(
            f"robot '{self.spec.name}' serves no scenario: only a simulated scenario (tianji bridge serve --robot"
            " scenario:NAME) has scripted events and ground truth to report",
            E_UNSUPPORTED,
        )

    def close(self) -> None:
        """Same as :meth:`disconnect`."""
        self.disconnect()


def parse_driver(text: str) -> tuple[str, str, dict[str, str]]:
    """``NAME[:ARG][?k=v&...]`` -> (name, arg, options)."""
    body, _, query = text.partition("?")
    name, _, arg = body.partition(":")
    if not name:
        raise ValueError(f"driver string {text!r} has no driver name; write NAME[:ARG], e.g. sim:tiago")
    return name, arg, dict(parse_qsl(query, keep_blank_values=True))


def available_drivers() -> dict[str, str]:
    """Driver name -> 'module:Class', built-ins overridden by installed entry points."""
    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found[ep.name] = ep.value
    return found


def driver_class(name: str) -> type[Driver]:
    """The driver class registered under ``name``; UnknownNameError lists the known ones."""
    known = available_drivers()
    if name not in known:
        raise UnknownNameError(
            f"no robot driver named '{name}'.{did_you_mean(name, known)} Known drivers: {', '.join(sorted(known))}."
            f" A driver package registers itself in the '{GROUP}' entry-point group (see bridge/README.md)."
        )
    for ep in entry_points(group=GROUP, name=name):
        return ep.load()
    module, _, attr = known[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def load_driver(text: str, rate: float | None = None) -> Driver:
    """Build (not connect) the driver named by a driver string, e.g. ``load_driver("sim:tiago", rate=100)``."""
    name, arg, options = parse_driver(text)
    cls = driver_class(name)
    return cls(arg, rate=rate, **options)


__all__ = ["GROUP", "Driver", "available_drivers", "driver_class", "load_driver", "parse_driver"]
