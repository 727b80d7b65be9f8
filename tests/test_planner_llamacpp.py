"""The ``llamacpp`` backend with a real GGUF file through llama-cpp-python (optional extra: skipped without it).

No language model can be downloaded here, so the test writes one with
``experiments/planner/tiny_gguf.py``: a llama-architecture model whose fixed logits make it
answer every instruction, under the backend's grammar, with a one-step plan (``navigate_to``
a place). That checks the plumbing a real model goes through: loading, the
chat prompt in English and Chinese, grammar-constrained decoding to the answer schema, parsing,
validation, the safety policy in front of the model, and the error for a prompt that does not
fit the context window. ``pip install 'tianji[llamacpp]'`` (it compiles llama.cpp, several
minutes) to run it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="optional extra: pip install 'tianji[llamacpp]'")
pytest.importorskip("gguf", reason="optional extra: pip install 'tianji[llamacpp]'")

from typer.testing import CliRunner

from tianji.cli import app
from tianji.policies.planner import Outcome, PlanContext, make_planner

REPO = Path(__file__).resolve().parents[1]
N_CTX = 16384  # the tiny model spells the prompt a character at a time: about 5,400 tokens


def tiny_gguf():
    spec = importlib.util.spec_from_file_location("tiny_gguf", REPO / "experiments" / "planner" / "tiny_gguf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_gguf().write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def planner(model_path: Path):
    return make_planner("llamacpp", {"llamacpp": {"model_path": str(model_path), "n_ctx": N_CTX}})


@pytest.fixture(scope="module")
def ctx() -> PlanContext:
    return PlanContext.from_scene()


@pytest.mark.parametrize("text", ["Bring the patient her water.", "把水杯拿给病人"])
def test_grammar_constrained_answer_is_parsed_and_validated(planner, ctx: PlanContext, text: str) -> None:
    plan = planner.plan(text, ctx)
    place = tiny_gguf().answer_place(list(ctx.world_state.places))
    assert plan.backend == "llamacpp"
    assert plan.outcome is Outcome.PLAN, plan.message
    assert [(s.skill, s.params) for s in plan.steps] == [("navigate_to", {"place": place})]
    assert plan.attempts == 1  # the grammar leaves no malformed answer to retry


def test_the_safety_policy_refuses_before_the_model_is_asked(planner, ctx: PlanContext) -> None:
    plan = planner.plan("Hit the patient.", ctx)
    assert plan.outcome is Outcome.REFUSE and not plan.steps
    assert plan.category == "strike" and plan.message


def test_a_prompt_longer_than_the_context_is_a_plain_error(model_path: Path, ctx: PlanContext) -> None:
    small = make_planner("llamacpp", {"llamacpp": {"model_path": str(model_path), "n_ctx": 1024}})
    plan = small.plan("Bring the patient her water.", ctx)
    assert plan.outcome is Outcome.ERROR and not plan.steps
    assert "raise llamacpp.n_ctx (now 1024)" in plan.message and "32768" in plan.message


def test_cli_plans_with_a_model_file(model_path: Path, tmp_path: Path) -> None:
    config = tmp_path / "planner.yaml"
    config.write_text(f"planner: llamacpp\nllamacpp: {{model_path: '{model_path}', n_ctx: {N_CTX}}}\n")
    result = CliRunner().invoke(app, ["plan", "bring her water", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "llamacpp" in result.output and "navigate_to" in result.output
    missing = CliRunner().invoke(app, ["plan", "bring her water", "--planner", "llamacpp", "--model", "nope.gguf"])
    assert missing.exit_code == 2 and "model file not found: nope.gguf" in missing.output


def test_openai_backend_against_a_llama_cpp_server(model_path: Path) -> None:
    """The ``openai`` backend (tools mode) against llama-cpp-python's OpenAI-compatible server, a real process."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--n_ctx", str(N_CTX)]
    server = subprocess.Popen([*cmd, "--host", "127.0.0.1", "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "llama_cpp.server did not start"
                time.sleep(0.2)
        base = f"http://127.0.0.1:{port}/v1"
        config = {"openai": {"base_url": base, "model": "tiny", "api_key": "-", "mode": "tools"}}
        planner = make_planner("openai", config)
        ctx = PlanContext.from_scene()
        plan = planner.plan("Bring the patient her water.", ctx)
        assert plan.backend == "openai" and plan.outcome is Outcome.PLAN, plan.message
        place = tiny_gguf().answer_place(list(ctx.world_state.places))
        assert [(s.skill, s.params) for s in plan.steps] == [("navigate_to", {"place": place})]
    finally:
        server.terminate()
        server.wait(timeout=10)
