"""The executor: runs a validated plan skill by skill, checks each against observations, retries, replans, stops safely.

For each step it builds the skill (``make_skill(name, params, session.context)``) and runs it
with ``session.runner.run(skill)`` (the control loop, behind the safety filter). A step
succeeded when the skill says so **and** the symbolic state observed afterwards shows what the
step promised (``pick(cup)``: the cup is held and off the table). A step whose skill failed
(not by a safety stop) while the state it promised is observed all the same counts as done,
with the skill's reason in the trace (``pick`` holding the cup but short of its carry pose:
running it again would fail its own precondition, the cup being held). A failed step is retried
once (not after a safety stop: the filter latched because a person was touched too hard, and a
person must check before anything moves again); if it fails again the planner is asked for the
rest of the task, given the failure, the state observed now and a text description of the world
(:mod:`~tianji.policies.planner.describe`), at most ``max_replans`` times. The new plan goes
through the same validation (from the observed state) and safety policy. When it cannot go on,
the robot is stopped (hold position) and the run ends ``failed`` with the reason.

``session`` is anything with ``runner``, ``context``, ``safe`` (the SafeRobot) and
``world_state()``: :class:`tianji.cli_skills.CareSession` in simulation; a bridge session later.
Every run writes a trace (:mod:`~tianji.policies.planner.trace`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tianji.control.skills import SKILLS, make_skill
from tianji.control.skills.base import cond
from tianji.policies.planner.backends import Planner, ReplanRequest
from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.describe import describe
from tianji.policies.planner.plan import Outcome, Plan, PlanError, PlanStep, validate
from tianji.policies.planner.symbolic import NONE, SymbolicState, apply, from_world_state, key
from tianji.policies.planner.trace import TraceWriter

log = logging.getLogger("tianji.policies.planner.executor")
CHECKED = ("holding", "robot_at", "near", "on")  # facts observations can confirm


@dataclass
class RunResult:
    """How a run ended: ``status`` (succeeded / failed / refused / not_run), why, and what happened."""

    status: str
    reason: str
    steps_total: int = 0
    steps_succeeded: int = 0
    replans: int = 0
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)  # say / alert events of the skills
    interventions: dict[str, int] = field(default_factory=dict)  # safety filter, by reason

    @property
    def succeeded(self) -> bool:
        """True when every step succeeded."""
        return self.status == "succeeded"


class Executor:
    """Runs plans on a session (see the module doc); ``on_event(record)`` sees every trace event as it happens."""

    def __init__(
        self,
        session: Any,
        planner: Planner,
        *,
        max_replans: int = 2,
        retries: int = 1,
        trace: TraceWriter | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.session = session
        self.planner = planner
        self.max_replans = max_replans
        self.retries = retries
        self.trace = trace or TraceWriter(None)
        self.trace.sim_time = self._robot_time  # robot time: simulated seconds in the simulator
        self.on_event = on_event
        self._events: list[dict[str, Any]] = []

    def _robot_time(self) -> float:
        return float(self.session.safe.observe().timestamp)

    def _log(self, event: str, **fields: Any) -> None:
        record = self.trace.write(event, **fields)
        if self.on_event is not None:
            self.on_event(record)

    def observe(self) -> SymbolicState:
        """The symbolic state observed now (world state + what the gripper holds)."""
        return from_world_state(self.session.world_state(), obs=self.session.safe.observe())

    def run(self, plan: Plan, ctx: PlanContext, *, confirmed: bool = False) -> RunResult:
        """Run ``plan`` (already validated by the planner); confirmed=True runs a plan awaiting confirmation."""
        t0, sim0 = time.perf_counter(), self._robot_time()
        counts0 = Counter(self.session.safe.interventions)
        self._log("start", instruction=plan.instruction, backend=plan.backend, robot=ctx.robot, clock=ctx.time)
        self._log("plan", plan=plan.as_dict())
        self._events = []
        result = self._run(plan, ctx, confirmed)
        result.events = list(self._events)
        result.wall_seconds = time.perf_counter() - t0
        result.sim_seconds = self._robot_time() - sim0
        result.interventions = dict(Counter(self.session.safe.interventions) - counts0)
        if result.status == "failed":
            self.session.safe.stop()  # hold position
        self._log(
            "end",
            status=result.status,
            reason=result.reason,
            steps=f"{result.steps_succeeded}/{result.steps_total}",
            replans=result.replans,
            interventions=result.interventions,
        )
        return result

    def _run(self, plan: Plan, ctx: PlanContext, confirmed: bool) -> RunResult:
        if plan.outcome is Outcome.REFUSE:
            self._log("safety", decision="refuse", category=plan.category, reason=plan.message)
            return RunResult("refused", plan.message)
        if not plan.executable:
            return RunResult("not_run", f"{plan.outcome}: {plan.message}")
        if plan.outcome is Outcome.CONFIRM:
            if not confirmed:
                self._log("safety", decision="confirm", category=plan.category, reason=plan.message)
                return RunResult("not_run", f"needs confirmation: {plan.message}")
            self._log("safety", decision="confirmed", category=plan.category, reason=plan.message)
        live = dataclasses.replace(ctx, world_state=self.session.world_state())
        try:  # nothing unvalidated moves: check again against the state observed now
            validate(plan, live, self.observe())
        except PlanError as exc:
            return RunResult("failed", f"the plan is not valid in the world as it is now: {exc}", len(plan.steps))
        queue, done, tried = list(plan.steps), [], []
        result = RunResult("succeeded", "every step succeeded", len(plan.steps))
        while queue:
            step = queue.pop(0)
            index = len(done) + 1
            ok, reason = self._step(step, index, 1)
            for attempt in range(2, self.retries + 2):
                if ok or reason.startswith("safety_stop"):
                    break
                ok, reason = self._step(step, index, attempt)
            if ok:
                done.append(step)
                result.steps_succeeded += 1
                continue
            tried.append(step)
            if reason.startswith("safety_stop"):  # a person was touched too hard: a person decides what next
                self._log("safety", decision="intervention", category="safety_stop", reason=reason)
                result.status = "failed"
                result.reason = f"{step} ended in a safety stop ({reason}); not retried: check the person and the robot"
                return result
            if result.replans >= self.max_replans:
                result.status, result.reason = "failed", f"{step} failed: {reason}; no replans left"
                return result
            result.replans += 1
            new = self._replan(plan.instruction, ctx, done, step, reason, queue, tried, result.replans)
            if not new.executable or (new.outcome is Outcome.CONFIRM and not confirmed):
                result.status, result.reason = "failed", f"{step} failed: {reason}; replanning: {new.message}"
                return result
            queue = list(new.steps)
            result.steps_total = len(done) + len(queue)
        return result

    def _replan(
        self,
        instruction: str,
        ctx: PlanContext,
        done: list[PlanStep],
        failed: PlanStep,
        reason: str,
        remaining: list[PlanStep],
        tried: list[PlanStep],
        n: int,
    ) -> Plan:
        ws = self.session.world_state()
        state = self.observe()
        world = describe(ws, state, ctx.robot)
        live = dataclasses.replace(ctx, world_state=ws)
        request = ReplanRequest(instruction, list(done), failed, reason, list(remaining), state, world, list(tried))
        new = self.planner.replan(request, live)
        self._log("replan", n=n, failed_step=str(failed), reason=reason, world=world, plan=new.as_dict())
        if new.outcome is Outcome.REFUSE:
            self._log("safety", decision="refuse", category=new.category, reason=new.message)
        return new

    def _step(self, step: PlanStep, index: int, attempt: int) -> tuple[bool, str]:
        """Run one step; (succeeded, reason) with the observed state checked against the step's effects."""
        before_state = self.observe()
        counts = Counter(self.session.safe.interventions)
        self._log(
            "step_start", index=index, skill=step.skill, params=step.params, attempt=attempt, timeout=step.timeout
        )
        try:
            skill = make_skill(step.skill, step.params, self.session.context, timeout=step.timeout)
            result = self.session.runner.run(skill)
            ok, reason = result.succeeded, result.reason
            duration = result.duration
            events = [{"kind": e.kind, "message": e.message} for e in result.events if e.kind in ("say", "alert")]
        except Exception as exc:  # a skill that cannot even be built or run: a failed step, robot stopped
            log.exception("step %s raised", step)
            self.session.safe.stop()
            ok, reason, duration, events = False, f"{type(exc).__name__}: {exc}", 0.0, []
        self._events.extend(events)
        observed = self.observe()
        expected = self._expected(step, before_state)
        mismatch = {k: observed.facts.get(k, NONE) for k, v in expected.items() if observed.facts.get(k, NONE) != v}
        if ok and mismatch:
            ok = False
            seen = ", ".join(f"{k} = {v} (expected {expected[k]})" for k, v in mismatch.items())
            reason = f"the skill reported success ({reason}) but the robot observes {seen}"
        effects_hold = not ok and bool(expected) and not mismatch and not reason.startswith("safety_stop")
        if effects_hold:  # e.g. a pick that holds the object but missed its carry pose: running it again cannot help
            ok = True
            seen = ", ".join(f"{k} = {v}" for k, v in expected.items())
            reason = f"what the step is for is observed ({seen}), though the skill reported: {reason}"
        self._log(
            "step_end",
            index=index,
            skill=step.skill,
            attempt=attempt,
            status="succeeded" if ok else "failed",
            reason=reason,
            duration=round(float(duration), 3),
            observed={k: observed.facts.get(k, NONE) for k in sorted(set(expected) | {"holding", "robot_at"})},
            expected=expected,
            interventions=dict(Counter(self.session.safe.interventions) - counts),
            events=events,
            effects_hold=effects_hold,
        )
        return ok, reason

    @staticmethod
    def _expected(step: PlanStep, before: SymbolicState) -> dict[str, str]:
        """The observable facts the step's effects promise (``robot_at = none`` is not checked: any spot will do)."""
        cls = SKILLS.get(step.skill)
        if cls is None:
            return {}
        effects = [cond(c) for c in cls.effects]
        after = apply(effects, step.with_defaults(), before)
        out = {}
        for effect in effects:
            if effect.variable not in CHECKED:
                continue
            args = tuple(a.replace("{", "").replace("}", "") for a in effect.args)
            params = step.with_defaults()
            fact = key(effect.variable, tuple(str(params.get(a, a)) for a in args))
            value = after.facts.get(fact, NONE)
            if effect.variable == "robot_at" and value == NONE:
                continue
            out[fact] = value
        return out
