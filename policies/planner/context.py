"""What a planner plans against: the WorldState, the robot, the scene clock and the medication schedule.

``PlanContext.from_scene("care_room")`` builds everything from the scene file alone (no
simulator): objects at their footprint positions, places, people at their pelvis, the robot at
its start pose. That is what ``tianji plan`` uses, so planning never moves anything and needs
no physics. ``PlanContext(world_state=session.world_state(), ...)`` plans against a live
world (``tianji do``, the executor). The symbolic state (holding, robot_at, near, ...) is
derived from the WorldState by :func:`~tianji.policies.planner.symbolic.from_world_state`.

The simulator has no wall clock, so the time the safety policy checks medication against is
``time`` ("HH:MM"), by default the scene's ``medication.clock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tianji.control.errors import UnknownNameError
from tianji.control.world_state import ObjectState, PersonState, Place, Posture, WorldState

DEFAULT_CLOCK = "08:00"


@dataclass(frozen=True)
class Dose:
    """One prescribed medication: which object holds it, for whom, at which times (minutes after midnight)."""

    object: str
    person: str
    times: tuple[int, ...]
    dose: str = ""


@dataclass(frozen=True)
class MedicationSchedule:
    """The scene's medication block: doses, the window around each dose time, the clock a session starts at."""

    doses: tuple[Dose, ...] = ()
    window_min: int = 30
    clock: str = DEFAULT_CLOCK

    def for_object(self, name: str) -> Dose | None:
        """The dose entry of an object, or None when the object is not medication."""
        return next((d for d in self.doses if d.object == name), None)

    @classmethod
    def from_config(cls, block: dict[str, Any] | None) -> MedicationSchedule:
        """From a scene file's ``medication:`` block (missing block: no medication, clock 08:00)."""
        if not block:
            return cls()
        doses = tuple(
            Dose(
                str(entry["object"]),
                str(entry.get("person", "")),
                tuple(parse_time(t) for t in entry.get("times", ())),
                str(entry.get("dose", "")),
            )
            for entry in block.get("schedule", ())
        )
        return cls(doses, int(block.get("window_min", 30)), str(block.get("clock", DEFAULT_CLOCK)))


def parse_time(text: str | int) -> int:
    """Minutes after midnight from "HH:MM" (24 h); ValueError says the format."""
    if isinstance(text, int):  # YAML reads an unquoted 08:00 as sexagesimal minutes... of 8 h
        return text % (24 * 60)
    hours, sep, minutes = str(text).strip().partition(":")
    try:
        h, m = int(hours), int(minutes) if sep else 0
    except ValueError:
        raise ValueError(f"time {text!r} must be HH:MM, e.g. 08:00 or 20:30") from None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"time {text!r} must be HH:MM between 00:00 and 23:59")
    return h * 60 + m


def format_time(minutes: int) -> str:
    """ "HH:MM" from minutes after midnight."""
    minutes %= 24 * 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass
class PlanContext:
    """Everything a plan is checked against: world state, robot, what the hand holds, the time, the schedule."""

    world_state: WorldState
    robot: str = "tiago"
    holding: str | None = None  # what the gripper holds at the start (None: empty)
    time: str = DEFAULT_CLOCK  # scene clock, HH:MM
    medication: MedicationSchedule = field(default_factory=MedicationSchedule)
    scene: str = "care_room"
    gripper: float | None = None  # measured opening (0 closed .. 1 open), None: unknown (assumed open when empty)

    @property
    def minutes(self) -> int:
        """The scene clock in minutes after midnight."""
        return parse_time(self.time)

    @classmethod
    def from_scene(
        cls, scene: str | Path = "care_room", *, robot: str = "tiago", time: str | None = None
    ) -> PlanContext:
        """A context from the scene file alone (no simulator): static positions, medication, clock."""
        path = scene_path(scene)
        config = yaml.safe_load(path.read_text())
        medication = MedicationSchedule.from_config(config.get("medication"))
        ws = static_world_state(config, robot)
        return cls(ws, robot, None, time or medication.clock, medication, str(config.get("name", path.stem)))

    @classmethod
    def from_session(
        cls, session: Any, *, time: str | None = None, scene: str | Path = "care_room", robot: str = "tiago"
    ) -> PlanContext:
        """A context from a live care session: its WorldState and what the gripper holds now."""
        return context_from_session(session, time=time, scene=scene, robot=robot)


def context_from_session(
    session: Any, *, time: str | None = None, scene: str | Path = "care_room", robot: str = "tiago"
) -> PlanContext:
    """A context from a live session (``session.world_state()``, ``session.safe.observe()``): what is held, now."""
    from tianji.control.skills.geometry import held_object

    ws = session.world_state()
    obs = session.safe.observe()
    medication = load_medication(scene)
    holding = held_object(ws, obs)
    gripper = None if obs.gripper is None else float(obs.gripper)
    return PlanContext(ws, robot, holding, time or medication.clock, medication, str(Path(scene).stem), gripper)


def scene_path(scene: str | Path) -> Path:
    """A scene name (care_room) or a .yaml path; UnknownNameError lists the scenes shipped."""
    from tianji import assets

    path = Path(scene)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"scene file not found: {path}")
        return path
    candidate = Path(assets.ROOT) / "scenes" / f"{scene}.yaml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in (Path(assets.ROOT) / "scenes").glob("*.yaml")))
        raise UnknownNameError(f"unknown scene '{scene}'. Known scenes: {known}; or pass a path to a scene .yaml file")
    return candidate


def load_medication(scene: str | Path = "care_room") -> MedicationSchedule:
    """The medication schedule of a scene file."""
    return MedicationSchedule.from_config(yaml.safe_load(scene_path(scene).read_text()).get("medication"))


def static_world_state(config: dict[str, Any], robot: str = "tiago") -> WorldState:
    """A WorldState read off a scene config: positions as written in the file, nothing simulated."""
    objects = {
        name: ObjectState(name, np.asarray(_xyz(entry.get("position")), dtype=float), source="scene_file")
        for name, entry in (config.get("objects") or {}).items()
    }
    places = {}
    for name, entry in (config.get("places") or {}).items():
        surface = entry.get("surface")
        center = objects[surface].position.copy() if surface in objects else None
        height = entry.get("surface_height")
        places[name] = Place(
            name, np.asarray(entry["pose"], dtype=float), None if height is None else float(height), center
        )
    people = {}
    robot_pose = np.zeros(3)
    for label, entry in (config.get("robots") or {}).items():
        pos = _xyz(entry.get("position"))
        if entry.get("robot") == "human":
            posture = {
                "lying": Posture.LYING_IN_BED,
                "sitting": Posture.SITTING,
                "sitting_in_bed": Posture.SITTING,
                "standing": Posture.STANDING,
            }
            people[label] = PersonState(
                label, np.asarray(pos, dtype=float), posture.get(str(entry.get("preset")), Posture.UNKNOWN)
            )
        elif label == robot or entry.get("robot") == robot:
            robot_pose = np.array([pos[0], pos[1], float(entry.get("yaw", 0.0))])
    return WorldState(0.0, objects, places, people, robot_pose, "scene_file")


def _xyz(value: Any) -> list[float]:
    values = [float(v) for v in (value or (0.0, 0.0, 0.0))]
    return [*values, 0.0, 0.0, 0.0][:3]
