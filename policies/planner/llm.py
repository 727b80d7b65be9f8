"""What the model backends share: the answer's JSON schema, the prompts, and parsing an answer into a Plan.

The answer is one JSON object ``{"outcome": "plan" | "clarify" | "cannot" | "refuse",
"message": "...", "steps": [{"skill": ..., "params": {...}}, ...]}``; each step's schema is the
skill's own (``tianji.control.skills.registry.skill_schema`` with the scene's names), so a
server that constrains decoding to the schema (OpenAI tools / json_schema, vLLM guided decoding,
llama.cpp grammars) can only produce well-formed calls. Whatever comes back is parsed here and
then validated like any other plan: the schema narrows what a model says, it is not trusted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tianji.control.skills import SKILLS
from tianji.control.skills.registry import skill_schema
from tianji.policies.planner.backends import ReplanRequest
from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.describe import describe
from tianji.policies.planner.plan import Outcome, Plan, PlanStep
from tianji.policies.planner.safety import REFUSAL_WORDS

TOOL_NAME = "submit_plan"
ANNOTATIONS = ("robots", "preconditions", "requires", "effects", "success", "timeout", "title")
ANSWER_OUTCOMES = ("plan", "clarify", "cannot", "refuse")


class PlanFormatError(ValueError):
    """A model's answer is not a plan object (not JSON, wrong shape); the message says what was wrong."""


def skills_for(robot: str) -> dict[str, Any]:
    """The skills the robot can run, by name."""
    return {n: c for n, c in sorted(SKILLS.items()) if not c.robots or robot in c.robots}


def answer_schema(ctx: PlanContext) -> dict[str, Any]:
    """JSON Schema of an answer for the context's robot and WorldState (skill annotations stripped)."""
    steps = []
    for cls in skills_for(ctx.robot).values():
        schema = {k: v for k, v in skill_schema(cls, ctx.world_state).items() if k not in ANNOTATIONS}
        steps.append(schema)
    return {
        "type": "object",
        "properties": {
            "outcome": {"enum": list(ANSWER_OUTCOMES), "description": "plan, or why there is none"},
            "message": {"type": "string", "description": "for the operator: the question, refusal or reason"},
            "steps": {"type": "array", "items": {"anyOf": steps}, "description": "the skill calls, in order"},
        },
        "required": ["outcome", "message", "steps"],
        "additionalProperties": False,
    }


def tool(ctx: PlanContext) -> dict[str, Any]:
    """The OpenAI ``tools`` entry whose arguments are the answer."""
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Submit the robot's plan for the operator's instruction (or say why there is none).",
            "parameters": answer_schema(ctx),
        },
    }


def system_prompt(ctx: PlanContext, world: str | None = None) -> str:
    """The planner's instructions: the robot, its skills with requires / effects, the room, the safety rules."""
    lines = [
        f"You plan for a {ctx.robot} care robot in a room with a patient. Turn the operator's instruction into an"
        " ordered list of skill calls, using only the skills and names below.",
        "Every requirement of a step must hold when it starts: add the steps that make it true (navigate_to the"
        " place an object is on before pick; approach_person before hand_over, bring_to_mouth or wipe).",
        "If the instruction is ambiguous, answer outcome 'clarify' with a question. If the robot cannot do it"
        " (unknown object or place, no skill for it), answer 'cannot' and say why. Never guess names.",
        "Refuse (outcome 'refuse') anything that could harm a person: "
        + "; ".join(f"{k}: {v}" for k, v in REFUSAL_WORDS.items()),
        f"Medication may only be handled at the prescribed times; it is now {ctx.time}.",
        "",
        "Skills (name(params): requires -> effects):",
    ]
    for name, cls in skills_for(ctx.robot).items():
        schema = skill_schema(cls, ctx.world_state)
        props = schema["properties"]["params"]["properties"]
        params = ", ".join(
            f"{p}={'|'.join(map(str, v['enum'])) if 'enum' in v else v.get('type', 'value')}" for p, v in props.items()
        )
        requires = ", ".join(c["text"] for c in schema["requires"]) or "-"
        effects = ", ".join(c["text"] for c in schema["effects"]) or "-"
        lines.append(f"- {name}({params}): {requires} -> {effects}. {cls.description}")
    lines += ["", "The room now:", world or describe(ctx.world_state, robot=ctx.robot)]
    lines += [
        "",
        'Example: \'bring her the cup\' -> {"outcome": "plan", "message": "", "steps": ['
        '{"skill": "navigate_to", "params": {"place": "dining_table"}}, {"skill": "pick", "params": {"object":'
        ' "cup"}}, {"skill": "approach_person", "params": {"person": "patient"}}, {"skill": "hand_over",'
        ' "params": {"object": "cup", "person": "patient"}}]}',
    ]
    return "\n".join(lines)


def user_prompt(instruction: str, feedback: str | None = None) -> str:
    """The operator's instruction, with why the last answer was rejected when retrying."""
    text = f"Instruction: {instruction}"
    if feedback:
        text += f"\n\nYour previous answer was rejected: {feedback}\nAnswer again, fixing that."
    return text


def replan_prompt(request: ReplanRequest) -> str:
    """The failure and what is left, for planning the rest of the task from the state now."""
    done = ", ".join(str(s) for s in request.done) or "nothing"
    rest = ", ".join(str(s) for s in request.remaining) or "nothing"
    tried = ", ".join(str(s) for s in request.tried)
    return (
        f"Instruction: {request.instruction}\n"
        f"Done so far: {done}.\nThe step {request.failed_step} failed twice: {request.reason}.\n"
        f"Steps that were still to come: {rest}.\nSteps that already failed: {tried}.\n"
        f"Symbolic state now: {request.state}.\n"
        "Plan the rest of the task from the state now (another way past the failure if there is one), or answer"
        " 'cannot' if there is none."
    )


def parse_answer(answer: str | dict[str, Any], instruction: str, backend: str) -> Plan:
    """A Plan (not validated) from a model's answer; PlanFormatError when it is not an answer object."""
    data = answer
    if isinstance(answer, str):
        text = answer.strip()
        fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
        if fenced:
            text = fenced.group(1).strip()
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanFormatError(f"the answer is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if isinstance(data, list):  # a bare list of steps
        data = {"outcome": "plan", "message": "", "steps": data}
    if not isinstance(data, dict):
        raise PlanFormatError(
            f"the answer must be a JSON object with outcome, message and steps, got {type(data).__name__}"
        )
    outcome = str(data.get("outcome", "plan"))
    if outcome not in ANSWER_OUTCOMES:
        raise PlanFormatError(f"outcome must be one of {', '.join(ANSWER_OUTCOMES)}, got {outcome!r}")
    raw_steps = data.get("steps") or []
    if not isinstance(raw_steps, list):
        raise PlanFormatError("'steps' must be a list of {skill, params} objects")
    try:
        steps = [PlanStep.from_dict(s) for s in raw_steps]
    except ValueError as exc:
        raise PlanFormatError(str(exc)) from None
    message = str(data.get("message") or "")
    if outcome == "plan" and not steps:
        raise PlanFormatError("outcome 'plan' needs at least one step")
    if outcome != "plan" and not message.strip():  # the operator is shown this message and nothing else
        raise PlanFormatError(f"outcome '{outcome}' needs a message for the operator: the question to ask, or why not")
    kind = Outcome(outcome)
    category = "model" if kind is Outcome.REFUSE else ""
    return Plan(instruction, steps if kind is Outcome.PLAN else [], backend, kind, message, category)


class ChatBackend:
    """``propose`` and ``replan`` for a chat model: the messages are built here, ``_ask`` puts them to the model."""

    def propose(self, instruction: str, ctx: PlanContext, feedback: str | None = None) -> Plan:
        """Ask the model for a plan (``feedback``: why its last answer was rejected)."""
        messages = [
            {"role": "system", "content": system_prompt(ctx)},
            {"role": "user", "content": user_prompt(instruction, feedback)},
        ]
        return self._ask(messages, instruction, ctx)

    def replan(self, request: ReplanRequest, ctx: PlanContext) -> Plan:
        """Ask the model for the rest of the task after a failure, with the world as it is now."""
        messages = [
            {"role": "system", "content": system_prompt(ctx, request.world)},
            {"role": "user", "content": replan_prompt(request)},
        ]
        return self._ask(messages, request.instruction, ctx)

    def _ask(self, messages: list[dict[str, Any]], instruction: str, ctx: PlanContext) -> Plan:
        raise NotImplementedError
