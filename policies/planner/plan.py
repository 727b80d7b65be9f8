"""The plan model and its validation: skill calls checked against the skill schema, the WorldState and each other.

A :class:`Plan` is an ordered list of :class:`PlanStep` (skill name + parameters) plus the
instruction it came from, the backend that made it, and an :class:`Outcome`: ``plan`` (run
it), ``confirm`` (run it after the operator says yes), or one that never runs: ``refuse``
(the safety policy said no), ``clarify`` (the request is ambiguous: a question back),
``cannot`` (the robot cannot do it), ``invalid`` (a model's plan failed validation),
``error`` (the backend failed, e.g. timed out).

:func:`validate` checks, step by step, before anything moves: the skill exists and runs on
the robot; the parameters match the skill's JSON schema (``tianji.control.skills.schema``,
with jsonschema) and every object / place / person / body part exists in the WorldState;
and the preconditions chain: each step's symbolic ``requires`` hold in the state left by the
steps before it (``hand_over(cup)`` needs ``holding = cup``). It raises :class:`PlanError`
naming the step (1-based) and the reason.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from tianji.control.errors import did_you_mean
from tianji.control.skills import SKILLS, Skill
from tianji.control.skills.base import cond
from tianji.control.skills.geometry import DEFAULT_MODEL, object_model
from tianji.control.skills.registry import skill_schema
from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.symbolic import SymbolicState, apply, from_world_state, unmet


class Outcome(enum.StrEnum):
    """What a planner made of an instruction."""

    PLAN = "plan"
    CONFIRM = "confirm"
    REFUSE = "refuse"
    CLARIFY = "clarify"
    CANNOT = "cannot"
    INVALID = "invalid"
    ERROR = "error"


@dataclass(frozen=True)
class PlanStep:
    """One skill call: ``pick(object=cup)``. ``timeout`` (s) overrides the skill's default when set."""

    skill: str
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None

    def __str__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}" for k, v in self.params.items()
        )
        return f"{self.skill}({args})"

    def as_dict(self) -> dict[str, Any]:
        """JSON form ``{"skill": ..., "params": {...}}`` (and ``timeout`` when set)."""
        out: dict[str, Any] = {"skill": self.skill, "params": dict(self.params)}
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanStep:
        """From ``{"skill": name, "params": {...}}``; ValueError when the shape is wrong."""
        if not isinstance(data, dict) or not isinstance(data.get("skill"), str):
            raise ValueError(f"a plan step must be an object with a 'skill' name, got {data!r}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"step '{data['skill']}': 'params' must be an object, got {params!r}")
        timeout = data.get("timeout")
        return cls(data["skill"], dict(params), None if timeout is None else float(timeout))

    def with_defaults(self) -> dict[str, Any]:
        """Parameters with the skill's defaults filled in (what the skill will run with)."""
        cls = SKILLS.get(self.skill)
        if cls is None:
            return dict(self.params)
        out = {}
        for f in dataclasses.fields(cls.Params):
            if f.name in self.params:
                out[f.name] = self.params[f.name]
            elif f.default is not dataclasses.MISSING:
                out[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
        return out

    def normalized(self) -> dict[str, Any]:
        """:meth:`with_defaults` with numbers as floats, for comparing plans."""
        out = self.with_defaults()
        return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in out.items()}


@dataclass
class Plan:
    """An instruction's plan (steps) or the reason there is none, with the backend that made it."""

    instruction: str
    steps: list[PlanStep] = field(default_factory=list)
    backend: str = ""
    outcome: Outcome = Outcome.PLAN
    message: str = ""  # words for the operator: the refusal, the question, what needs confirming
    category: str = ""  # safety category of a refusal or a confirmation
    notes: list[str] = field(default_factory=list)  # what was assumed or ignored
    attempts: int = 1  # backend calls it took
    latency_s: float = 0.0

    @property
    def executable(self) -> bool:
        """True for a validated plan or one awaiting confirmation that has steps."""
        return self.outcome in (Outcome.PLAN, Outcome.CONFIRM) and bool(self.steps)

    def as_dict(self) -> dict[str, Any]:
        """JSON form for traces and ``tianji plan --json``."""
        return {
            "instruction": self.instruction,
            "backend": self.backend,
            "outcome": str(self.outcome),
            "message": self.message,
            "category": self.category,
            "steps": [s.as_dict() for s in self.steps],
            "notes": list(self.notes),
            "attempts": self.attempts,
            "latency_s": round(self.latency_s, 4),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """Inverse of :meth:`as_dict`."""
        return cls(
            str(data.get("instruction", "")),
            [PlanStep.from_dict(s) for s in data.get("steps", ())],
            str(data.get("backend", "")),
            Outcome(data.get("outcome", "plan")),
            str(data.get("message", "")),
            str(data.get("category", "")),
            list(data.get("notes", ())),
            int(data.get("attempts", 1)),
            float(data.get("latency_s", 0.0)),
        )

    def __str__(self) -> str:
        if not self.executable:
            return f"{self.outcome}: {self.message}"
        return " -> ".join(str(s) for s in self.steps)


class PlanError(ValueError):
    """A plan failed validation: ``step`` (1-based; 0 for the plan as a whole), the skill, and why."""

    def __init__(self, step: int, skill: str, reason: str) -> None:
        self.step, self.skill, self.reason = step, skill, reason
        where = f"step {step} ({skill})" if step else "plan"
        super().__init__(f"{where}: {reason}")


def graspable(world_state_objects: Any) -> list[str]:
    """Objects the robot can pick up: the ones the skills have a grasp model for."""
    return [n for n in world_state_objects if object_model(n) is not DEFAULT_MODEL]


def validate(plan: Plan | list[PlanStep], ctx: PlanContext, state: SymbolicState | None = None) -> list[SymbolicState]:
    """Check every step (see the module doc); the symbolic states after each step, or PlanError."""
    steps = plan.steps if isinstance(plan, Plan) else list(plan)
    if not steps:
        raise PlanError(0, "", "the plan has no steps")
    state = state if state is not None else initial_state(ctx)
    states = []
    for i, step in enumerate(steps, 1):
        cls = check_call(i, step, ctx)
        params = step.with_defaults()
        missing = unmet([cond(c) for c in cls.requires], params, state)
        if missing:
            raise PlanError(i, step.skill, missing[0].sentence())
        state = apply([cond(c) for c in cls.effects], params, state)
        states.append(state)
    return states


def initial_state(ctx: PlanContext) -> SymbolicState:
    """The symbolic state of the context's WorldState and hand."""
    return from_world_state(ctx.world_state, holding=ctx.holding, gripper=ctx.gripper)


def check_call(i: int, step: PlanStep, ctx: PlanContext) -> type[Skill]:
    """Skill exists, runs on the robot, parameters match the schema and name things in the WorldState."""
    cls = SKILLS.get(step.skill)
    if cls is None:
        raise PlanError(i, step.skill, f"no skill named '{step.skill}'.{did_you_mean(step.skill, SKILLS)}")
    if cls.robots and ctx.robot not in cls.robots:
        raise PlanError(i, step.skill, f"the {ctx.robot} cannot do '{step.skill}' (it runs on {', '.join(cls.robots)})")
    ws = ctx.world_state
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    for name, value in step.params.items():
        f = fields.get(name)
        if f is None:
            hint = did_you_mean(name, fields)
            raise PlanError(
                i, step.skill, f"no parameter '{name}'.{hint} Its parameters: {', '.join(fields) or 'none'}"
            )
        _check_name(i, step.skill, name, value, f.metadata, ctx)
    schema = skill_schema(cls, ws)["properties"]["params"]
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(step.params))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise PlanError(i, step.skill, f"{where + ': ' if where else ''}{error.message}")
    if step.timeout is not None and step.timeout <= 0:
        raise PlanError(i, step.skill, f"timeout must be positive, got {step.timeout}")
    obj = step.params.get("object")
    if obj is not None and any("holding" in c for c in (*cls.requires, *cls.effects)):
        movable = graspable(ws.objects)
        if obj not in movable:
            raise PlanError(
                i, step.skill, f"'{obj}' cannot be picked up or carried; objects to carry: {', '.join(movable)}"
            )
    place = step.params.get("place")
    if step.skill == "place" and place in ws.places and ws.places[place].surface_height is None:
        surfaces = ", ".join(n for n, p in ws.places.items() if p.surface_height is not None)
        raise PlanError(i, step.skill, f"there is no surface at '{place}' to put things on; surfaces: {surfaces}")
    if step.skill == "bring_to_mouth" and obj is not None and object_model(obj).lip is None:
        raise PlanError(i, step.skill, f"'{obj}' cannot be brought to a mouth; use the cup or the spoon")
    return cls


def _check_name(i: int, skill: str, param: str, value: Any, meta: Any, ctx: PlanContext) -> None:
    """A parameter that names something must name something the WorldState knows (or the skill's enum)."""
    if value is None:
        return
    ws = ctx.world_state
    if "enum" in meta and value not in meta["enum"]:
        raise PlanError(i, skill, f"{param} '{value}' is not one of {', '.join(map(str, meta['enum']))}")
    kind = meta.get("names")
    if kind is None:
        return
    extra = [e for e in meta.get("extra_names", ()) if e.partition(".")[0] in ws.people or e in ws.places]
    known = {
        "objects": list(ws.objects),
        "places": list(ws.places),
        "people": list(ws.people),
        "body_parts": sorted({p for person in ws.people.values() for p in person.body_parts}),
    }[kind]
    if not isinstance(value, str) or (value not in known and value not in extra):
        noun = {"objects": "object", "places": "place", "people": "person", "body_parts": "body part"}[kind]
        listing = ", ".join(graspable(known) if kind == "objects" and param == "object" else known) or "none"
        raise PlanError(
            i, skill, f"there is no {noun} '{value}' here.{did_you_mean(str(value), known)} Known: {listing}"
        )
