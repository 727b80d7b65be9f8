"""The robot + big-model planner: instruction -> validated plan of skill calls -> safe execution with replanning.

See policies/planner/README.md. Backends: ``rules`` (offline, deterministic, English and
Chinese), ``openai`` (any OpenAI-compatible chat endpoint), ``llamacpp`` (a local GGUF model).
Every plan passes the same safety policy and validation before the executor runs it.

>>> from tianji.policies.planner import PlanContext, make_planner
>>> plan = make_planner("rules").plan("bring the patient her water", PlanContext.from_scene("care_room"))
>>> [s.skill for s in plan.steps]
['navigate_to', 'pick', 'approach_person', 'hand_over']
"""

from tianji.policies.planner.backends import BACKENDS, Backend, Planner, ReplanRequest, load_config, make_planner
from tianji.policies.planner.context import MedicationSchedule, PlanContext
from tianji.policies.planner.executor import Executor, RunResult
from tianji.policies.planner.plan import Outcome, Plan, PlanError, PlanStep, validate
from tianji.policies.planner.safety import SafetyPolicy, SafetyVerdict
from tianji.policies.planner.trace import TraceWriter, read_trace, timeline

__all__ = [
    "BACKENDS",
    "Backend",
    "Executor",
    "MedicationSchedule",
    "Outcome",
    "Plan",
    "PlanContext",
    "PlanError",
    "PlanStep",
    "Planner",
    "ReplanRequest",
    "RunResult",
    "SafetyPolicy",
    "SafetyVerdict",
    "TraceWriter",
    "load_config",
    "make_planner",
    "read_trace",
    "timeline",
    "validate",
]
