"""Care scenarios: what an operator runs, as a YAML file in ``experiments/scenarios/``, checked before anything moves.

A scenario names the scene and its randomization, the patient's starting posture, where the
robot starts, scripted events (a fall at a time), what the operator asks (free text in English
or Chinese, for the planner) or a fixed plan, the success criteria and a time limit. Every
key is checked when the file is loaded; an error names the file, the line and what to write
instead (an unknown object, a time past the limit, a skill that does not exist).

Keys (all optional except ``instruction`` or ``plan`` or ``on_fall``)::

    title: Fetch water                      # shown to the operator
    description: ...
    robot: tiago                            # tiago | g1 (who carries out the plan)
    scene: care_room
    randomize: true                         # objects and patient within the scene's ranges
    patient: {preset: sitting_in_bed, position: [-1.75, 1.42, 0.58], yaw: 0.0}
    start: room_center                      # a place, or [x, y, yaw]
    holding: cup                            # start with this object in the hand
    clock: "08:00"                          # scene clock for the medication schedule
    instruction: Please bring the patient her water.
    plan: [{skill: navigate_to, params: {place: dining_table}}, ...]
    watch: patient                          # look at this person and watch before acting
    events: [{at: 4.0, fall: {direction: 2.4}}]
    on_fall: Go to her, tell her help is coming and alert the caregiver.
    success: {completed: true, max_patient_force: 10, alert: true, said: true, near: patient,
              fall_detected_within: 3.0, refused: false}
    time_limit: 150                         # simulated seconds
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tianji.control.errors import TianjiError, did_you_mean

ROOT = Path(__file__).resolve().parents[1]
# scenario names resolve in the source checkout (pip install -e .), or under the working directory
SCENARIO_DIR = next(
    (d for d in (ROOT / "experiments" / "scenarios", Path.cwd() / "experiments" / "scenarios") if d.is_dir()),
    ROOT / "experiments" / "scenarios",
)
DEFAULT_DEMO = ("fetch_water", "fall_response")
ROBOTS = ("tiago", "g1")
KEYS = {
    "title": str,
    "description": str,
    "robot": str,
    "scene": str,
    "randomize": bool,
    "patient": dict,
    "start": (str, list),
    "holding": str,
    "clock": str,
    "instruction": str,
    "plan": list,
    "watch": str,
    "events": list,
    "on_fall": str,
    "success": dict,
    "time_limit": (int, float),
}
PATIENT_KEYS = {"preset": str, "position": list, "yaw": (int, float)}
SUCCESS_KEYS = {
    "completed": bool,
    "max_patient_force": (int, float),
    "alert": bool,
    "said": bool,
    "near": str,
    "fall_detected_within": (int, float),
    "refused": bool,
}
NEAR_DISTANCE = 1.3  # m, the robot's base from the person's chest for ``success.near``


class ScenarioError(TianjiError, ValueError):
    """A scenario file that cannot be run as written; the message names the file and line."""


@dataclass
class FallEvent:
    """The patient falls ``at`` simulated seconds after the start, towards ``direction`` (rad, world yaw)."""

    at: float
    direction: float


@dataclass
class Scenario:
    """A checked scenario file (see the module doc for the keys)."""

    name: str
    path: Path
    title: str = ""
    description: str = ""
    robot: str = "tiago"
    scene: str = "care_room"
    randomize: bool = True
    patient: dict[str, Any] = field(default_factory=dict)
    start: str | list[float] | None = None
    holding: str | None = None
    clock: str | None = None
    instruction: str | None = None
    plan: list[dict[str, Any]] | None = None
    watch: str | None = None
    falls: list[FallEvent] = field(default_factory=list)
    on_fall: str | None = None
    success: dict[str, Any] = field(default_factory=lambda: {"completed": True, "max_patient_force": 10.0})
    time_limit: float = 180.0


def scenario_path(name_or_path: str | Path) -> Path:
    """A scenario name (``fetch_water``) or a .yaml path; the error lists the scenarios shipped."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        return path
    candidate = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not candidate.is_file():
        known = available()
        raise ScenarioError(
            f"no scenario named '{name_or_path}'.{did_you_mean(str(name_or_path), known)}"
            f" Scenarios in {SCENARIO_DIR}: {', '.join(known) or 'none'} (or give a path to a .yaml file;"
            " names resolve in a source checkout installed with pip install -e .)"
        )
    return candidate


def available() -> list[str]:
    """Names of the scenarios in ``experiments/scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load(name_or_path: str | Path) -> Scenario:
    """Read and check a scenario; ScenarioError names the line of the first problem."""
    path = scenario_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of keys (title, instruction, success, ...)")
    return _Checker(path, node).scenario(data)


class _Checker:
    """Builds a :class:`Scenario` from parsed YAML, with the line of each key for the error messages."""

    def __init__(self, path: Path, node: yaml.Node | None) -> None:
        self.path = path
        self.lines: dict[tuple[Any, ...], int] = {}
        if node is not None:
            self._index(node, ())
        from tianji.sim.scene import scene_file

        self.scene_config: dict[str, Any] = {}
        self._scene_file = scene_file

    def _index(self, node: yaml.Node, where: tuple[Any, ...]) -> None:
        self.lines[where] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.lines[(*where, key.value)] = key.start_mark.line + 1
                self._index(value, (*where, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._index(item, (*where, i))

    def fail(self, where: tuple[Any, ...], message: str) -> ScenarioError:
        line = next((self.lines[where[:n]] for n in range(len(where), -1, -1) if where[:n] in self.lines), 1)
        return ScenarioError(f"{self.path}, line {line}: {message}")

    def _type(self, where: tuple[Any, ...], value: Any, kind: Any) -> None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = False if isinstance(value, bool) and bool not in kinds else isinstance(value, kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            raise self.fail(where, f"'{where[-1]}' must be {names}, got {value!r}")

    def _keys(self, where: tuple[Any, ...], data: dict[str, Any], allowed: dict[str, Any]) -> None:
        for key, value in data.items():
            if key not in allowed:
                raise self.fail(
                    (*where, key),
                    f"unknown key '{key}'.{did_you_mean(str(key), allowed)} Keys here: {', '.join(allowed)}",
                )
            self._type((*where, key), value, allowed[key])

    def scenario(self, data: dict[str, Any]) -> Scenario:
        self._keys((), data, KEYS)
        s = Scenario(name=self.path.stem, path=self.path)
        for key in ("title", "description", "robot", "scene", "randomize", "holding", "clock", "instruction"):
            if key in data:
                setattr(s, key, data[key])
        s.title = s.title or s.name.replace("_", " ")
        if s.robot not in ROBOTS:
            raise self.fail(("robot",), f"robot must be one of {', '.join(ROBOTS)}, got {s.robot!r}")
        try:
            self.scene_config = yaml.safe_load(self._scene_file(s.scene).read_text())
        except (TianjiError, FileNotFoundError) as exc:
            raise self.fail(("scene",), str(exc)) from None
        names = self._names()
        s.time_limit = float(data.get("time_limit", s.time_limit))
        if not 0 < s.time_limit <= 3600:
            raise self.fail(("time_limit",), f"time_limit must be in (0, 3600] simulated seconds, got {s.time_limit}")
        if "clock" in data:
            self._clock(data["clock"])
        s.patient = self._patient(data.get("patient") or {})
        s.start = self._start(data.get("start"), names)
        if s.holding is not None:
            self._name(("holding",), s.holding, names["objects"], "object")
        if "plan" in data:
            s.plan = self._plan(data["plan"], names)
        if "watch" in data:
            s.watch = self._name(("watch",), data["watch"], names["people"], "person")
        s.falls = self._events(data.get("events") or [], s.time_limit)
        s.on_fall = data.get("on_fall")
        if s.on_fall and not s.falls:
            raise self.fail(("on_fall",), "on_fall answers a fall: add events: [{at: SECONDS, fall: {direction: RAD}}]")
        if s.instruction is None and s.plan is None and s.on_fall is None:
            raise self.fail((), "a scenario needs an 'instruction' (free text), a 'plan' (skill steps) or 'on_fall'")
        if s.instruction is not None and s.plan is not None:
            raise self.fail(("plan",), "give either 'instruction' (for the planner) or 'plan' (fixed steps), not both")
        if "success" in data:
            s.success = self._success(data["success"], names)
        return s

    def _names(self) -> dict[str, set[str]]:
        cfg = self.scene_config
        objects = {k for k, v in (cfg.get("objects") or {}).items() if not (v or {}).get("fixed", False)}
        people = {k for k, v in (cfg.get("robots") or {}).items() if (v or {}).get("robot") == "human"}
        return {"objects": objects, "places": set(cfg.get("places") or {}), "people": people}

    def _name(self, where: tuple[Any, ...], value: Any, known: set[str], what: str) -> str:
        if not isinstance(value, str) or value not in known:
            raise self.fail(
                where,
                f"unknown {what} {value!r}.{did_you_mean(str(value), known)} {what.capitalize()}s in the scene:"
                f" {', '.join(sorted(known))}",
            )
        return value

    def _clock(self, text: str) -> None:
        hh, sep, mm = text.partition(":")
        if not (sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            raise self.fail(("clock",), f"clock must be HH:MM (24 h), got {text!r}")

    def _patient(self, data: dict[str, Any]) -> dict[str, Any]:
        self._keys(("patient",), data, PATIENT_KEYS)
        if "preset" in data:
            from tianji.sim.registry import get_robot

            try:
                get_robot("human").preset(data["preset"])
            except TianjiError as exc:
                raise self.fail(("patient", "preset"), str(exc)) from None
        if "position" in data:
            self._numbers(("patient", "position"), data["position"], (2, 3))
        return data

    def _numbers(self, where: tuple[Any, ...], value: Any, sizes: tuple[int, ...]) -> list[float]:
        ok = isinstance(value, list) and len(value) in sizes
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        if not ok:
            raise self.fail(where, f"'{where[-1]}' must be {' or '.join(map(str, sizes))} numbers, got {value!r}")
        return [float(v) for v in value]

    def _start(self, value: Any, names: dict[str, set[str]]) -> str | list[float] | None:
        if value is None or (isinstance(value, str) and value in names["places"]):
            return value
        if isinstance(value, str):
            return self._name(("start",), value, names["places"], "place")
        return self._numbers(("start",), value, (3,))

    def _plan(self, steps: list[Any], names: dict[str, set[str]]) -> list[dict[str, Any]]:
        from tianji.control.skills import SKILLS

        plan = []
        for i, step in enumerate(steps):
            where = ("plan", i)
            if not isinstance(step, dict) or "skill" not in step or set(step) - {"skill", "params"}:
                raise self.fail(where, f"plan step {i + 1} must be {{skill: NAME, params: {{...}}}}, got {step!r}")
            skill = step["skill"]
            if skill not in SKILLS:
                raise self.fail(
                    (*where, "skill"),
                    f"plan step {i + 1}: unknown skill {skill!r}.{did_you_mean(str(skill), SKILLS)}"
                    f" Skills: {', '.join(sorted(SKILLS))}",
                )
            params = step.get("params") or {}
            if not isinstance(params, dict):
                raise self.fail((*where, "params"), f"plan step {i + 1}: params must be a mapping, got {params!r}")
            for key, value in params.items():
                kinds = {"object": "objects", "place": "places", "person": "people"}
                if key in kinds:
                    self._name((*where, "params", key), value, names[kinds[key]], key)
            plan.append({"skill": skill, "params": dict(params)})
        return plan

    def _events(self, events: list[Any], limit: float) -> list[FallEvent]:
        falls = []
        for i, event in enumerate(events):
            where = ("events", i)
            if not isinstance(event, dict) or set(event) != {"at", "fall"}:
                raise self.fail(
                    where, f"event {i + 1} must be {{at: SECONDS, fall: {{direction: RAD}}}}, got {event!r}"
                )
            at = event["at"]
            if isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < limit:
                raise self.fail(
                    (*where, "at"), f"event {i + 1}: 'at' must be seconds in [0, time_limit={limit:g}), got {at!r}"
                )
            fall = event["fall"] or {}
            if not isinstance(fall, dict) or set(fall) - {"direction"}:
                raise self.fail((*where, "fall"), f"event {i + 1}: fall takes only 'direction' (rad), got {fall!r}")
            falls.append(FallEvent(float(at), float(fall.get("direction", 0.0))))
        return falls

    def _success(self, data: dict[str, Any], names: dict[str, set[str]]) -> dict[str, Any]:
        self._keys(("success",), data, SUCCESS_KEYS)
        if "near" in data:
            self._name(("success", "near"), data["near"], names["people"], "person")
        return data
