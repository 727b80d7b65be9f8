"""The symbolic state the skills' ``requires`` / ``effects`` talk about, derived from a WorldState.

Variables (see :class:`tianji.control.skills.base.Condition`): ``holding`` (object or none),
``robot_at`` (place or none), ``near(person)`` (true/false), ``gripper`` (open/closed),
``on(object)`` (place or none), ``posture(person)``, ``standing``, ``hand_closed``. A value
may name another variable (``robot_at = on({object})``). Plans are checked by simulating
the effects of each step over this state; the executor compares the state observed after a
step with the one the step promised.

``near(person)`` is also derived from geometry when the robot arrives at a place: within
:data:`NEAR_DISTANCE` of the person's chest (or body centre), as ``approach_person`` would
leave it. So ``navigate_to(bedside)`` puts the robot near the patient lying in the bed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tianji.control.skills.base import Condition, cond
from tianji.control.skills.geometry import held_object, place_of
from tianji.control.world_state import WorldState

NONE = "none"
NEAR_DISTANCE = 1.2  # m from the chest: approach_person stops 0.7-1.1 m away; arm skills reach 1.6 m
AT_POSITION = 0.15  # m from a place's standing pose to count as at it (navigate_to stops within 0.10)
AT_YAW = 0.25  # rad
OPEN_GRIPPER = 0.9  # measured opening at or above which the gripper is open (as control.skills.basic)
DEFAULTS = {
    "holding": NONE,
    "robot_at": NONE,
    "near": "false",
    "gripper": "open",
    "on": NONE,
    "posture": "unknown",
    "standing": "false",
    "hand_closed": "false",
}
VARIABLES = frozenset(DEFAULTS)
HINTS = {  # what usually makes a requirement true, for error messages
    "holding": "pick {value} first",
    "robot_at": "navigate_to {value} first",
    "near": "approach_person {arg} first",
    "standing": "stand first",
}


def key(variable: str, args: Iterable[str] = ()) -> str:
    """The fact's key: ``holding``, ``near(patient)``, ``on(cup)``."""
    args = tuple(args)
    return f"{variable}({', '.join(args)})" if args else variable


@dataclass
class SymbolicState:
    """Facts as ``key -> value`` strings; unknown keys take the variable's default (nothing held, gripper open)."""

    facts: dict[str, str] = field(default_factory=dict)
    near_points: dict[str, tuple[float, float]] = field(default_factory=dict)  # person -> chest xy, for near()
    place_poses: dict[str, tuple[float, float]] = field(default_factory=dict)  # place -> standing xy

    def get(self, variable: str, args: Iterable[str] = ()) -> str:
        """Value of ``variable(args)``."""
        return self.facts.get(key(variable, args), DEFAULTS.get(variable, NONE))

    def set(self, variable: str, args: Iterable[str], value: str) -> None:
        """Set ``variable(args) = value``; arriving at a place re-derives near(person) from geometry."""
        self.facts[key(variable, args)] = value
        if variable == "robot_at" and value in self.place_poses:
            spot = self.place_poses[value]
            for person, chest in self.near_points.items():
                self.facts[key("near", (person,))] = "true" if math.dist(spot, chest) <= NEAR_DISTANCE else "false"

    def copy(self) -> SymbolicState:
        """An independent copy (the geometry tables are shared)."""
        return SymbolicState(dict(self.facts), self.near_points, self.place_poses)

    def as_dict(self) -> dict[str, str]:
        """The facts, sorted, for traces and prompts."""
        return dict(sorted(self.facts.items()))

    def __str__(self) -> str:
        return ", ".join(f"{k} = {v}" for k, v in self.as_dict().items())


def substitute(text: str, params: Mapping[str, Any]) -> str:
    """Replace ``{name}`` placeholders with the call's parameter values."""
    for name, value in params.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def evaluate(value: str, params: Mapping[str, Any], state: SymbolicState) -> str:
    """A condition's value for a call: a literal, a parameter, or another variable (``on({object})``)."""
    text = substitute(value, params)
    reference = cond(f"{text} = x") if "(" in text else Condition(text, "x")
    if reference.variable in VARIABLES and (reference.args or text in VARIABLES):
        return state.get(reference.variable, reference.args)
    return text


@dataclass(frozen=True)
class Unmet:
    """A requirement of a call that the state does not satisfy."""

    condition: Condition
    needed: str
    actual: str
    args: tuple[str, ...]
    value_text: str = ""  # the condition's value with the call's parameters filled in

    def sentence(self) -> str:
        """'needs holding = cup but holding = none (pick cup first)'."""
        name = key(self.condition.variable, self.args)
        if self.needed == NONE and self.condition.value != NONE:  # e.g. robot_at = on(cup) with the cup in no place
            return f"needs {name} = {self.value_text} but {self.value_text} is none (it is on no surface)"
        hint = HINTS.get(self.condition.variable, "")
        hint = hint.format(value=self.needed, arg=self.args[0] if self.args else "")
        if self.condition.variable == "holding" and self.needed == NONE:
            hint = f"the hand already holds {self.actual}; put it down or hand it over first"
        return f"needs {name} = {self.needed} but {name} = {self.actual}" + (f" ({hint})" if hint else "")


def unmet(requires: Iterable[Condition], params: Mapping[str, Any], state: SymbolicState) -> list[Unmet]:
    """The requirements of a call (conditions with ``{param}`` placeholders) that ``state`` does not meet."""
    out = []
    for c in requires:
        args = tuple(substitute(a, params) for a in c.args)
        needed = evaluate(c.value, params, state)
        actual = state.get(c.variable, args)
        # a requirement on another variable that is none (robot_at = on(cup) while the cup is in the hand) fails
        referenced_none = needed == NONE and substitute(c.value, params) != NONE
        if actual != needed or referenced_none:
            out.append(Unmet(c, needed, actual, args, substitute(c.value, params)))
    return out


def apply(effects: Iterable[Condition], params: Mapping[str, Any], state: SymbolicState) -> SymbolicState:
    """A new state with a call's effects applied (values evaluated in the state before the call)."""
    effects = list(effects)
    values = [
        (c.variable, tuple(substitute(a, params) for a in c.args), evaluate(c.value, params, state)) for c in effects
    ]
    new = state.copy()
    for variable, args, value in values:
        new.set(variable, args, value)
    return new


def from_world_state(
    ws: WorldState, *, holding: str | None = None, gripper: float | None = None, obs: Any = None
) -> SymbolicState:
    """The symbolic state of a WorldState (plus, with an Observation, what the hand holds and the gripper).

    ``robot_at``: the place whose standing pose is within 15 cm / 0.25 rad of the base;
    ``near(p)``: base within 1.2 m of p's chest (or body centre); ``on(o)``: the place whose
    surface holds o; ``holding``: the object the gripper holds (from ``obs`` when given).
    """
    if obs is not None:
        holding = held_object(ws, obs)
        gripper = None if obs.gripper is None else float(obs.gripper)
    state = SymbolicState()
    state.place_poses = {n: (float(p.pose[0]), float(p.pose[1])) for n, p in ws.places.items()}
    for name, person in ws.people.items():
        chest = person.body_parts.get("chest", person.position)
        state.near_points[name] = (float(chest[0]), float(chest[1]))
    x, y, yaw = (float(v) for v in ws.robot_pose[:3])
    at = NONE
    for name, place in ws.places.items():
        dyaw = abs((yaw - float(place.pose[2]) + math.pi) % (2 * math.pi) - math.pi)
        if math.hypot(x - place.pose[0], y - place.pose[1]) <= AT_POSITION and dyaw <= AT_YAW:
            at = name
    state.facts["robot_at"] = at
    for name, chest in state.near_points.items():
        state.facts[key("near", (name,))] = "true" if math.dist((x, y), chest) <= NEAR_DISTANCE else "false"
        state.facts[key("posture", (name,))] = str(ws.people[name].posture)
    for name, obj in ws.objects.items():
        where = None if name == holding else place_of(ws, np.asarray(obj.position, dtype=float))
        state.facts[key("on", (name,))] = where or NONE
    state.facts["holding"] = holding or NONE
    if gripper is None:
        state.facts["gripper"] = "closed" if holding else "open"
    else:
        state.facts["gripper"] = "open" if gripper >= OPEN_GRIPPER else "closed"
    return state
