"""The ``llamacpp`` backend (optional extra): a local GGUF model through llama-cpp-python, grammar-constrained.

``pip install 'tianji[llamacpp]'`` and pass ``--model PATH.gguf`` (or ``llamacpp.model_path`` in
the config, or ``TIANJI_LLAMACPP_MODEL``). Decoding is constrained by a grammar built from the
answer's JSON schema (``LlamaGrammar.from_json_schema``), so the model can only write a
well-formed answer; it is then parsed and validated like any other. Other keys:
``n_ctx`` (4096), ``n_threads``, ``n_gpu_layers`` (0), ``max_tokens`` (768), ``temperature`` (0).
A llama.cpp *server* works through the ``openai`` backend instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tianji.control.errors import TianjiError
from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.llm import (
    ChatBackend,
    PlanFormatError,
    answer_schema,
    parse_answer,
)
from tianji.policies.planner.plan import Outcome, Plan

INSTALL = "pip install 'tianji[llamacpp]' and pass --model PATH.gguf"


class BackendUnavailableError(TianjiError, RuntimeError):
    """A backend's package or model file is missing; the message says what to install or pass."""


class LlamaCppPlanner(ChatBackend):
    """Plans with a local GGUF model (see the module doc)."""

    name = "llamacpp"
    retries_invalid = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        max_tokens: int = 768,
        temperature: float = 0.0,
    ) -> None:
        try:
            import llama_cpp
        except ImportError:
            raise BackendUnavailableError(f"the llamacpp planner needs llama-cpp-python: {INSTALL}") from None
        path = Path(model_path)
        if not path.is_file():
            raise BackendUnavailableError(f"model file not found: {path}; {INSTALL}")
        self.llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, verbose=False
        )
        self.max_tokens, self.temperature = max_tokens, temperature
        self._context_key = f"{self.llm.metadata.get('general.architecture', 'llama')}.context_length"
        self._grammars: dict[tuple, Any] = {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LlamaCppPlanner:
        """From the ``llamacpp:`` config section (``model_path`` or env TIANJI_LLAMACPP_MODEL)."""
        path = config.get("model_path") or os.environ.get("TIANJI_LLAMACPP_MODEL")
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise BackendUnavailableError(f"the llamacpp planner needs llama-cpp-python: {INSTALL}") from None
        if not path:
            raise BackendUnavailableError(f"the llamacpp planner needs a model file: {INSTALL}")
        keys = ("n_ctx", "n_threads", "n_gpu_layers", "max_tokens", "temperature")
        return cls(path, **{k: config[k] for k in keys if k in config})

    def _grammar(self, ctx: PlanContext) -> Any:
        ws = ctx.world_state
        key = (ctx.robot, tuple(ws.objects), tuple(ws.places), tuple(ws.people))
        if key not in self._grammars:
            schema = json.dumps(answer_schema(ctx))
            self._grammars[key] = self.llama_cpp.LlamaGrammar.from_json_schema(schema, verbose=False)
        return self._grammars[key]

    def _ask(self, messages: list[dict[str, Any]], instruction: str, ctx: PlanContext) -> Plan:
        try:
            out = self.llm.create_chat_completion(
                messages=messages, grammar=self._grammar(ctx), temperature=self.temperature, max_tokens=self.max_tokens
            )
        except ValueError as exc:  # llama-cpp-python's only error for a prompt longer than the context window
            message = (
                f"the model could not take the request: {exc}. The prompt (skills, room and instruction) must fit the"
                f" context window: raise llamacpp.n_ctx (now {self.llm.n_ctx()}) up to the model's trained context"
                f" ({self.llm.metadata.get(self._context_key, 'see the model card')})"
            )
            return Plan(instruction, [], self.name, Outcome.ERROR, message)
        try:
            return parse_answer(out["choices"][0]["message"]["content"] or "", instruction, self.name)
        except PlanFormatError as exc:
            return Plan(instruction, [], self.name, Outcome.INVALID, str(exc))
