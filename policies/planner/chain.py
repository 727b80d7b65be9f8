"""Precondition chaining from the skill schema: put in the steps a goal needs, and repair a failed step.

:func:`chain` takes the calls an instruction asks for (``hand_over(cup, patient)``) and, from
the current symbolic state, inserts before each one the calls that make its ``requires`` true
(``navigate_to(dining_table)``, ``pick(cup)``, ``approach_person(patient)``). Which skill
achieves what is read from the skills' ``effects``: a skill whose effect sets the variable to
the needed value, with every required parameter bound by that effect, and never one that
only sets something to ``none`` (opening the gripper is not a way to put the cup down).

:func:`alternatives` lists other ways to reach what a failed step was for, used when
replanning: a place near a person can be reached by approaching the person, and the reverse.
"""

from __future__ import annotations

import dataclasses
import math

from tianji.control.skills import SKILLS, Skill
from tianji.control.skills.base import Condition, cond
from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.plan import PlanError, PlanStep
from tianji.policies.planner.symbolic import (
    NEAR_DISTANCE,
    NONE,
    SymbolicState,
    apply,
    evaluate,
    substitute,
    unmet,
)

MAX_DEPTH = 4


def achievers(condition: Condition, args: tuple[str, ...], needed: str, robot: str) -> list[PlanStep]:
    """Calls whose effects make ``condition`` (with ``args``) equal ``needed``, simplest first."""
    if needed == NONE:
        return []
    found: list[tuple[int, str, PlanStep]] = []
    for name, cls in sorted(SKILLS.items()):
        if cls.robots and robot not in cls.robots:
            continue
        for effect in (cond(e) for e in cls.effects):
            if effect.variable != condition.variable or len(effect.args) != len(args):
                continue
            params = _bind(effect, args, needed)
            if params is None or not _complete(cls, params):
                continue
            found.append((len(cls.requires), name, PlanStep(name, params)))
    return [step for _, _, step in sorted(found, key=lambda f: (f[0], f[1]))]


def _bind(effect: Condition, args: tuple[str, ...], needed: str) -> dict[str, str] | None:
    """Parameters that make ``effect`` read ``variable(args) = needed``; None when it cannot."""
    params: dict[str, str] = {}
    for pattern, value in (*zip(effect.args, args, strict=True), (effect.value, needed)):
        if pattern.startswith("{") and pattern.endswith("}"):
            key = pattern[1:-1]
            if params.get(key, value) != value:
                return None
            params[key] = value
        elif pattern != value:
            return None
    return params


def _complete(cls: type[Skill], params: dict[str, str]) -> bool:
    required = [
        f.name
        for f in dataclasses.fields(cls.Params)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    return all(name in params for name in required)


def chain(goals: list[PlanStep], state: SymbolicState, ctx: PlanContext) -> list[PlanStep]:
    """The goals with the steps their requirements need inserted before them; PlanError when none can be found."""
    out: list[PlanStep] = []
    for goal in goals:
        state = _achieve(goal, state, ctx, out, 0, len(out) + 1)
    return out


def _achieve(
    goal: PlanStep, state: SymbolicState, ctx: PlanContext, out: list[PlanStep], depth: int, index: int
) -> SymbolicState:
    cls = SKILLS.get(goal.skill)
    if cls is None:  # validation says so, with suggestions
        out.append(goal)
        return state
    if cls.robots and ctx.robot not in cls.robots:
        raise PlanError(
            index, goal.skill, f"the {ctx.robot} cannot do '{goal.skill}' (it runs on {', '.join(cls.robots)})"
        )
    params = goal.with_defaults()
    requires = [cond(c) for c in cls.requires]
    for _ in range(2 * len(requires) + 1):  # achieving one requirement may undo another (a cycle ends the loop)
        missing = unmet(requires, params, state)
        if not missing:
            break
        options = achievers(missing[0].condition, missing[0].args, missing[0].needed, ctx.robot)
        if not options or depth >= MAX_DEPTH:
            raise PlanError(index, goal.skill, missing[0].sentence())
        state = _achieve(options[0], state, ctx, out, depth + 1, index)
    else:
        raise PlanError(index, goal.skill, unmet(requires, params, state)[0].sentence())
    out.append(goal)
    return apply([cond(c) for c in cls.effects], params, state)


def satisfied(step: PlanStep, state: SymbolicState) -> bool:
    """True when every effect of the step already holds (running it again would change nothing symbolic)."""
    cls = SKILLS.get(step.skill)
    if cls is None or not cls.effects:
        return False
    params = step.with_defaults()
    for effect in (cond(c) for c in cls.effects):
        args = tuple(substitute(a, params) for a in effect.args)
        if state.get(effect.variable, args) != evaluate(effect.value, params, state):
            return False
    return True


def alternatives(step: PlanStep, ctx: PlanContext) -> list[PlanStep]:
    """Other calls that get the robot where a failed navigation step was meant to (see the module doc)."""
    ws = ctx.world_state
    if step.skill == "navigate_to" and step.params.get("place") in ws.places:
        pose = ws.places[step.params["place"]].pose
        return [
            PlanStep("approach_person", {"person": name})
            for name, person in ws.people.items()
            if math.dist(pose[:2], _chest(person)) <= NEAR_DISTANCE
        ]
    if step.skill == "approach_person" and step.params.get("person") in ws.people:
        chest = _chest(ws.people[step.params["person"]])
        near = sorted(
            (math.dist(p.pose[:2], chest), name) for name, p in ws.places.items() if math.dist(p.pose[:2], chest) <= 1.1
        )
        return [PlanStep("navigate_to", {"place": name}) for _, name in near]
    return []


def _chest(person: object) -> tuple[float, float]:
    point = person.body_parts.get("chest", person.position)  # type: ignore[attr-defined]
    return float(point[0]), float(point[1])
