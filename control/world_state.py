"""WorldState: what skills and the planner know about the room, whoever filled it in.

Today the simulator fills it from ground truth (``tianji.sim.world_state.from_scene``);
perception fills the same structure from camera frames, so a skill runs from either by
one switch. Positions are metres in the world frame, quaternions (x, y, z, w).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from tianji.control.errors import UnknownNameError, did_you_mean

T = TypeVar("T")


class Posture(enum.StrEnum):
    """How a person is positioned."""

    LYING_IN_BED = "lying_in_bed"
    SITTING = "sitting"
    STANDING = "standing"
    FALLEN = "fallen"
    UNKNOWN = "unknown"

    @property
    def upright(self) -> bool:
        """Sitting or standing: the head above the pelvis, the face forward (what the care skills aim differently)."""
        return self in (Posture.SITTING, Posture.STANDING)


@dataclass
class ObjectState:
    """An object: where it is, how sure we are, and when it was last seen."""

    name: str
    position: np.ndarray  # (3,)
    orientation: np.ndarray | None = None  # (4,) x, y, z, w; None when not estimated
    confidence: float = 1.0
    timestamp: float = 0.0
    source: str = "ground_truth"  # or "aruco", "colour", ...


@dataclass
class PersonState:
    """A person: posture and the points care skills aim at."""

    name: str
    position: np.ndarray  # (3,) pelvis / body centre
    posture: Posture = Posture.UNKNOWN
    head: np.ndarray | None = None  # (3,)
    mouth: np.ndarray | None = None  # (3,)
    body_parts: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. "left_forearm" -> (3,)
    confidence: float = 1.0
    timestamp: float = 0.0
    source: str = "ground_truth"


@dataclass
class Place:
    """A named place a mobile robot can go to: a floor pose (x, y, yaw) and the surface height."""

    name: str
    pose: np.ndarray  # (3,) x, y, yaw where the robot should stand
    surface_height: float | None = None  # table or bed top, metres
    center: np.ndarray | None = None  # (3,) centre of the surface or furniture


@dataclass
class WorldState:
    """Named objects, places and people, plus the robot's own base pose (x, y, yaw)."""

    timestamp: float = 0.0
    objects: dict[str, ObjectState] = field(default_factory=dict)
    places: dict[str, Place] = field(default_factory=dict)
    people: dict[str, PersonState] = field(default_factory=dict)
    robot_pose: np.ndarray = field(default_factory=lambda: np.zeros(3))
    source: str = "ground_truth"

    def object(self, name: str) -> ObjectState:
        """An object by name; UnknownNameError lists what is known."""
        return _lookup(self.objects, name, "object")

    def place(self, name: str) -> Place:
        """A place by name; UnknownNameError lists what is known."""
        return _lookup(self.places, name, "place")

    def person(self, name: str) -> PersonState:
        """A person by name; UnknownNameError lists what is known."""
        return _lookup(self.people, name, "person")


def _lookup(table: dict[str, T], name: str, kind: str) -> T:
    try:
        return table[name]
    except KeyError:
        known = ", ".join(table) or "none"
        raise UnknownNameError(
            f"no {kind} named '{name}' in the world state.{did_you_mean(name, table)} Known: {known}"
        ) from None
