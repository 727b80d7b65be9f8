"""The ``openai`` backend: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, hosted APIs).

Configured by base URL, model and API key (config ``openai: {base_url, model, api_key, timeout,
max_retries, mode, temperature}``, else the environment: ``TIANJI_OPENAI_BASE_URL`` or
``OPENAI_BASE_URL``, ``TIANJI_OPENAI_MODEL``, ``TIANJI_OPENAI_API_KEY`` or ``OPENAI_API_KEY``;
local servers accept any key). The request carries the skills' schema:

* ``mode: tools`` (default): one function ``submit_plan`` whose parameters are the answer schema,
  with ``tool_choice`` forcing it;
* ``mode: json_schema``: ``response_format={"type": "json_schema", ...}`` with the same schema
  (for servers without tool calling).

HTTP timeouts, connection errors, 429 and 5xx are retried by the ``openai`` client
(``max_retries``, exponential back-off); a malformed answer comes back ``invalid`` and the
:class:`~tianji.policies.planner.backends.Planner` asks again with the error (``max_attempts``);
a plan that fails validation is sent back the same way. Nothing a model says runs unvalidated.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.llm import (
    TOOL_NAME,
    ChatBackend,
    PlanFormatError,
    answer_schema,
    parse_answer,
    tool,
)
from tianji.policies.planner.plan import Outcome, Plan

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"  # vLLM's default; Ollama: http://127.0.0.1:11434/v1


class OpenAIPlanner(ChatBackend):
    """Plans with a chat model behind an OpenAI-compatible API (see the module doc)."""

    name = "openai"
    retries_invalid = True

    def __init__(
        self,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "not-needed",
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        mode: str = "tools",
        temperature: float = 0.0,
    ) -> None:
        if mode not in ("tools", "json_schema"):
            raise ValueError(f"openai mode must be 'tools' or 'json_schema', got {mode!r}")
        self.model, self.base_url, self.api_key = model, base_url, api_key
        self.timeout, self.max_retries, self.mode, self.temperature = timeout, max_retries, mode, temperature
        self._client: Any = None
        self.last_request: dict[str, Any] | None = None  # what was sent last (tests, debugging)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OpenAIPlanner:
        """From the ``openai:`` config section, the environment filling what is missing."""
        model = config.get("model") or os.environ.get("TIANJI_OPENAI_MODEL")
        if not model:
            raise ValueError(
                "the openai planner needs a model name: set TIANJI_OPENAI_MODEL (e.g. qwen2.5-7b-instruct) or"
                " openai.model in the --config file, and TIANJI_OPENAI_BASE_URL for the server"
            )
        base_url = (
            config.get("base_url")
            or os.environ.get("TIANJI_OPENAI_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        )
        api_key = (
            config.get("api_key")
            or os.environ.get("TIANJI_OPENAI_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
            or "not-needed"
        )
        return cls(
            str(model),
            str(base_url),
            str(api_key),
            timeout=float(config.get("timeout", 30.0)),
            max_retries=int(config.get("max_retries", 2)),
            mode=str(config.get("mode", "tools")),
            temperature=float(config.get("temperature", 0.0)),
        )

    def client(self) -> Any:
        """The ``openai.OpenAI`` client (created on first use)."""
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._client

    def _ask(self, messages: list[dict[str, Any]], instruction: str, ctx: PlanContext) -> Plan:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.mode == "tools":
            kwargs["tools"] = [tool(ctx)]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
        else:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": TOOL_NAME, "schema": answer_schema(ctx)},
            }
        self.last_request = kwargs
        try:
            response = self.client().chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            message = f"the model server did not answer within {self.timeout:g} s ({self.max_retries} retries)"
            return Plan(instruction, [], self.name, Outcome.ERROR, message)
        except openai.APIConnectionError as exc:
            message = f"cannot reach the model server at {self.base_url} ({exc}); is it running?"
            return Plan(instruction, [], self.name, Outcome.ERROR, message)
        except openai.APIStatusError as exc:
            message = f"the model server answered {exc.status_code}: {exc}"
            if self.mode == "json_schema" and "json_schema" in str(exc):
                message += " (this server may not take response_format json_schema: try openai.mode 'tools')"
            return Plan(instruction, [], self.name, Outcome.ERROR, message)
        try:
            plan = parse_answer(self._content(response), instruction, self.name)
        except PlanFormatError as exc:
            return Plan(instruction, [], self.name, Outcome.INVALID, str(exc))
        return plan

    @staticmethod
    def _content(response: Any) -> str | dict[str, Any]:
        """The answer: the submit_plan call's arguments, else the message text."""
        if not response.choices:
            raise PlanFormatError("the server's reply has no choices")
        message = response.choices[0].message
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is not None and function.name == TOOL_NAME:
                return function.arguments or ""
            if function is not None:
                raise PlanFormatError(f"the model called '{function.name}', expected '{TOOL_NAME}'")
        if message.content:
            return message.content
        raise PlanFormatError(f"the reply has neither a {TOOL_NAME} call nor text: {json.dumps(message.to_dict())}")
