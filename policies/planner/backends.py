"""Choosing a backend, and the one pipeline every plan goes through: safety, backend, validation, safety.

``make_planner("rules" | "openai" | "llamacpp", config)`` returns a :class:`Planner`.
:meth:`Planner.plan` runs:

1. the safety policy on the operator's words (a refusal stops here: no backend sees it);
2. the backend's proposal;
3. validation (:func:`~tianji.policies.planner.plan.validate`); a model backend gets the
   error back and tries again, up to ``max_attempts`` calls in all, then the outcome is ``invalid``;
4. the safety policy on the validated steps (medication schedule, limits, posture).

Only a plan that passed all four comes back ``plan`` or ``confirm``: the executor runs nothing else.

Configuration (a dict, e.g. from ``--config planner.yaml``; environment variables fill what is
missing): ``planner`` (backend name, env ``TIANJI_PLANNER``), ``max_attempts`` (2),
``max_replans`` (2), and per backend ``openai: {base_url, model, api_key, timeout, max_retries,
mode, temperature}`` and ``llamacpp: {model_path, n_ctx, n_threads, n_gpu_layers}``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.plan import Outcome, Plan, PlanError, PlanStep, validate
from tianji.policies.planner.safety import SafetyPolicy, SafetyVerdict
from tianji.policies.planner.symbolic import SymbolicState

BACKENDS = ("rules", "openai", "llamacpp")


@dataclass
class ReplanRequest:
    """What went wrong, for a backend asked to plan the rest: the failed step, why, and the state now."""

    instruction: str
    done: list[PlanStep]
    failed_step: PlanStep
    reason: str
    remaining: list[PlanStep]  # the steps after the failed one in the plan being run
    state: SymbolicState  # observed now
    world: str  # describe.describe(...) of the world now
    tried: list[PlanStep] = field(default_factory=list)  # steps that already failed


class Backend(Protocol):
    """What a planner backend implements."""

    name: str
    retries_invalid: bool  # True: on a validation error, call propose() again with the error as feedback

    def propose(self, instruction: str, ctx: PlanContext, feedback: str | None = None) -> Plan:
        """A plan (not yet validated) or an outcome saying why there is none."""
        ...

    def replan(self, request: ReplanRequest, ctx: PlanContext) -> Plan:
        """A plan for the rest of the task from the state now."""
        ...


class Planner:
    """A backend behind the safety policy and validation (see the module doc)."""

    def __init__(self, backend: Backend, policy: SafetyPolicy | None = None, max_attempts: int = 2) -> None:
        self.backend = backend
        self.policy = policy or SafetyPolicy()
        self.max_attempts = max(1, int(max_attempts))

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.backend.name

    def plan(self, instruction: str, ctx: PlanContext) -> Plan:
        """Plan an instruction: refused, clarified, impossible, or a validated (maybe to-confirm) plan."""
        t0 = time.perf_counter()
        verdict = self.policy.check_text(instruction)
        if verdict.decision == "refuse":
            plan = Plan(instruction, [], self.name, Outcome.REFUSE, verdict.reason, verdict.category, attempts=0)
        else:
            plan = self._checked(lambda feedback: self.backend.propose(instruction, ctx, feedback), ctx, None)
            plan = self._merge(plan, verdict)
        plan.latency_s = time.perf_counter() - t0
        return plan

    def replan(self, request: ReplanRequest, ctx: PlanContext) -> Plan:
        """Plan the rest after a failure, through the same validation (from the observed state) and safety checks."""
        t0 = time.perf_counter()

        def propose(feedback: str | None) -> Plan:
            if feedback is None:
                return self.backend.replan(request, ctx)
            retry = ReplanRequest(**{**request.__dict__, "reason": f"{request.reason}. Your last plan: {feedback}"})
            return self.backend.replan(retry, ctx)

        plan = self._checked(propose, ctx, request.state)
        plan = self._merge(plan, self.policy.check_text(request.instruction))
        plan.latency_s = time.perf_counter() - t0
        return plan

    def _checked(self, propose: Any, ctx: PlanContext, state: SymbolicState | None) -> Plan:
        feedback = None
        for attempt in range(1, self.max_attempts + 1):
            plan = propose(feedback)
            plan.attempts = attempt
            retry = getattr(self.backend, "retries_invalid", False) and attempt < self.max_attempts
            if plan.outcome is Outcome.INVALID and retry:  # malformed answer: tell the model and ask again
                feedback = plan.message
                continue
            if plan.outcome not in (Outcome.PLAN, Outcome.CONFIRM):
                return plan
            try:
                validate(plan, ctx, state.copy() if state is not None else None)
            except PlanError as exc:
                if not getattr(self.backend, "retries_invalid", False):
                    plan.outcome, plan.message, plan.steps = Outcome.CANNOT, f"I can't do that: {exc}", []
                    return plan
                feedback = str(exc)
                if attempt == self.max_attempts:
                    message = f"the {self.name} planner's plan failed validation {attempt} times; last: {exc}"
                    return Plan(plan.instruction, [], self.name, Outcome.INVALID, message, attempts=attempt)
                continue
            verdict = self.policy.check_plan(plan, ctx)
            if verdict.decision == "refuse":
                return Plan(plan.instruction, [], self.name, Outcome.REFUSE, verdict.reason, verdict.category)
            return self._merge(plan, verdict)
        raise AssertionError("unreachable")

    @staticmethod
    def _merge(plan: Plan, verdict: SafetyVerdict) -> Plan:
        """A confirmation request on an executable plan (the first one wins)."""
        if verdict.decision == "confirm" and plan.executable and plan.outcome is Outcome.PLAN:
            plan.outcome, plan.category = Outcome.CONFIRM, verdict.category
            plan.message = f"{verdict.reason} Confirm to run it (tianji do ... --yes)."
        return plan


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """A planner config from a YAML file (its ``planner:`` section when it has one), else {}."""
    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"planner config {path} must be a mapping of keys to values")
    section = data.get("planner")
    return dict(section) if isinstance(section, dict) else data


def make_planner(name: str | None = None, config: dict[str, Any] | None = None) -> Planner:
    """A Planner for backend ``name`` (default: config ``planner``, env ``TIANJI_PLANNER``, then ``rules``)."""
    config = dict(config or {})
    choice = name or (config.get("planner") if isinstance(config.get("planner"), str) else None)
    choice = choice or os.environ.get("TIANJI_PLANNER") or "rules"
    if choice == "rules":
        from tianji.policies.planner.rules import RulesPlanner

        backend: Backend = RulesPlanner()
    elif choice == "openai":
        from tianji.policies.planner.openai_backend import OpenAIPlanner

        backend = OpenAIPlanner.from_config(config.get("openai") or {})
    elif choice == "llamacpp":
        from tianji.policies.planner.llamacpp_backend import LlamaCppPlanner

        backend = LlamaCppPlanner.from_config(config.get("llamacpp") or {})
    else:
        raise ValueError(f"unknown planner '{choice}'; choose one of {', '.join(BACKENDS)}")
    return Planner(backend, SafetyPolicy(), int(config.get("max_attempts", 2)))
