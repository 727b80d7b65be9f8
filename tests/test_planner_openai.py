"""The ``openai`` backend against a real HTTP server on 127.0.0.1 that replays recorded chat-completion replies.

The server (``http.server.ThreadingHTTPServer`` in a thread, port 0) answers
``POST /v1/chat/completions`` from a queue of canned replies: a good ``submit_plan`` tool
call, malformed JSON, a wrong skill name, an unsafe plan, a reply slower than the client's
timeout. Each test checks that the answer is accepted, retried or rejected as documented in
``policies/planner/openai_backend.py``, and that nothing unvalidated reaches the executor.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tianji.policies.planner import Outcome, PlanContext, PlanStep, ReplanRequest, make_planner
from tianji.policies.planner.plan import initial_state

FETCH = [
    {"skill": "navigate_to", "params": {"place": "dining_table"}},
    {"skill": "pick", "params": {"object": "cup"}},
    {"skill": "approach_person", "params": {"person": "patient"}},
    {"skill": "hand_over", "params": {"object": "cup", "person": "patient"}},
]


def tool_reply(arguments: str | dict[str, Any], name: str = "submit_plan") -> dict[str, Any]:
    """A chat completion whose message calls ``name`` with ``arguments`` (as the server would send it)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return completion(message, "tool_calls")


def text_reply(content: str) -> dict[str, Any]:
    """A chat completion with plain text content (json_schema mode)."""
    return completion({"role": "assistant", "content": content}, "stop")


def completion(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


def plan_reply(steps: list[dict[str, Any]], outcome: str = "plan", message: str = "") -> dict[str, Any]:
    return tool_reply({"outcome": outcome, "message": message, "steps": steps})


@dataclass
class Canned:
    """One recorded reply: the body (dict, or raw text), the HTTP status, and a delay before answering."""

    body: dict[str, Any] | str
    status: int = 200
    delay: float = 0.0


@dataclass
class FakeServer:
    """The running server: its base URL, the replies still queued, and every request body received."""

    base_url: str
    replies: queue.Queue = field(default_factory=queue.Queue)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def queue(self, *replies: Canned | dict[str, Any]) -> None:
        for reply in replies:
            self.replies.put(reply if isinstance(reply, Canned) else Canned(reply))


@pytest.fixture
def server() -> Iterator[FakeServer]:
    state = FakeServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            state.requests.append(body)
            try:
                reply = state.replies.get_nowait()
            except queue.Empty:
                reply = Canned({"error": {"message": "no reply queued"}}, 500)
            time.sleep(reply.delay)
            data = reply.body.encode() if isinstance(reply.body, str) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and went away

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def ctx() -> PlanContext:
    return PlanContext.from_scene("care_room")


def planner_for(server: FakeServer, **openai: Any):
    config = {"model": "test-model", "base_url": server.base_url, "api_key": "sk-test", "timeout": 2.0}
    config.update({"max_retries": 0, **openai})
    return make_planner("openai", {"openai": config, "max_attempts": 2})


def test_a_good_tool_call_becomes_a_validated_plan(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(plan_reply(FETCH))
    plan = planner_for(server).plan("bring the patient her water", ctx)
    assert plan.outcome is Outcome.PLAN and plan.executable and plan.backend == "openai"
    assert [s.as_dict() for s in plan.steps] == FETCH
    (request,) = server.requests
    assert request["model"] == "test-model"
    assert request["tool_choice"] == {"type": "function", "function": {"name": "submit_plan"}}
    schema = request["tools"][0]["function"]["parameters"]
    skills = {s["properties"]["skill"]["const"] for s in schema["properties"]["steps"]["items"]["anyOf"]}
    assert {"pick", "hand_over", "navigate_to"} <= skills and "wave" not in skills  # TIAGo's skills only
    assert "bring the patient her water" in request["messages"][-1]["content"]
    assert "Place dining_table" in request["messages"][0]["content"]  # the room, described


def test_json_schema_mode_reads_a_fenced_json_answer(server: FakeServer, ctx: PlanContext) -> None:
    answer = "```json\n" + json.dumps({"outcome": "plan", "message": "", "steps": FETCH[:2]}) + "\n```"
    server.queue(text_reply(answer))
    plan = planner_for(server, mode="json_schema").plan("pick up the cup", ctx)
    assert plan.outcome is Outcome.PLAN and [s.skill for s in plan.steps] == ["navigate_to", "pick"]
    assert server.requests[0]["response_format"]["type"] == "json_schema" and "tools" not in server.requests[0]


def test_malformed_json_is_sent_back_once_then_rejected(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(tool_reply('{"outcome": "plan", "steps": [{"skill": "pick", '), plan_reply(FETCH))
    plan = planner_for(server).plan("bring the patient her water", ctx)
    assert plan.outcome is Outcome.PLAN and plan.attempts == 2
    assert "not valid JSON" in server.requests[1]["messages"][-1]["content"]
    server.queue(tool_reply("not json at all"), tool_reply("{]"))
    bad = planner_for(server).plan("bring the patient her water", ctx)
    assert bad.outcome is Outcome.INVALID and not bad.executable and not bad.steps
    assert "not valid JSON" in bad.message


def test_a_wrong_skill_name_is_retried_with_the_validation_error(server: FakeServer, ctx: PlanContext) -> None:
    wrong = [{**FETCH[0]}, {"skill": "grab", "params": {"object": "cup"}}, *FETCH[2:]]
    server.queue(plan_reply(wrong), plan_reply(FETCH))
    plan = planner_for(server).plan("bring the patient her water", ctx)
    assert plan.outcome is Outcome.PLAN and plan.attempts == 2
    assert "step 2 (grab): no skill named 'grab'" in server.requests[1]["messages"][-1]["content"]
    server.queue(plan_reply(wrong), plan_reply(wrong))
    bad = planner_for(server).plan("bring the patient her water", ctx)
    assert bad.outcome is Outcome.INVALID and "failed validation 2 times" in bad.message and not bad.steps


def test_an_unchained_plan_is_rejected_by_validation(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(plan_reply(FETCH[3:]), plan_reply(FETCH[2:]))  # hand over a cup it never picked
    plan = planner_for(server).plan("bring the patient her water", ctx)
    assert plan.outcome is Outcome.INVALID and "needs holding = cup" in plan.message


def test_an_unsafe_plan_is_refused_without_retrying(server: FakeServer) -> None:
    pills = [
        {"skill": "navigate_to", "params": {"place": "dining_table"}},
        {"skill": "pick", "params": {"object": "pill_box"}},
        {"skill": "approach_person", "params": {"person": "patient"}},
        {"skill": "hand_over", "params": {"object": "pill_box", "person": "patient"}},
    ]
    server.queue(plan_reply(pills))
    afternoon = PlanContext.from_scene("care_room", time="15:00")
    plan = planner_for(server).plan("give her something for the pain", afternoon)
    assert plan.outcome is Outcome.REFUSE and plan.category == "medication" and not plan.steps
    assert len(server.requests) == 1
    force = [*FETCH[:3], {"skill": "bring_to_mouth", "params": {"object": "cup", "person": "patient", "hold_time": 90}}]
    server.queue(plan_reply(force))
    plan = planner_for(server).plan("give her water to drink", PlanContext.from_scene("care_room"))
    assert plan.outcome is Outcome.REFUSE and plan.category == "force_feed"


def test_an_unsafe_instruction_never_reaches_the_model(server: FakeServer, ctx: PlanContext) -> None:
    plan = planner_for(server).plan("hit her until she stops shouting", ctx)
    assert plan.outcome is Outcome.REFUSE and plan.category == "strike" and server.requests == []


def test_the_model_may_ask_or_refuse(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(plan_reply([], "clarify", "Which cup?"), plan_reply([], "refuse", "That could hurt her."))
    ask = planner_for(server).plan("bring that", ctx)
    assert ask.outcome is Outcome.CLARIFY and ask.message == "Which cup?"
    no = planner_for(server).plan("do the thing with her", ctx)
    assert no.outcome is Outcome.REFUSE and not no.executable
    server.queue(plan_reply([], "cannot", ""), plan_reply([], "cannot", " "))
    silent = planner_for(server).plan("do the thing with her", ctx)  # the operator would be told nothing
    assert silent.outcome is Outcome.INVALID and silent.attempts == 2
    assert "outcome 'cannot' needs a message for the operator" in server.requests[-1]["messages"][-1]["content"]


def test_a_reply_slower_than_the_timeout_is_retried_then_given_up(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(Canned(plan_reply([FETCH[0]]), delay=1.5), plan_reply(FETCH))
    t0 = time.perf_counter()
    plan = planner_for(server, timeout=0.5, max_retries=1).plan("bring the patient her water", ctx)
    assert plan.outcome is Outcome.PLAN and len(plan.steps) == 4  # the retry's answer, not the late one
    assert len(server.requests) == 2 and time.perf_counter() - t0 < 10
    server.queue(Canned(plan_reply(FETCH), delay=1.5), Canned(plan_reply(FETCH), delay=1.5))
    late = planner_for(server, timeout=0.5, max_retries=1).plan("bring the patient her water", ctx)
    assert late.outcome is Outcome.ERROR and "did not answer within 0.5 s (1 retries)" in late.message
    assert not late.executable


def test_server_errors_and_no_server_are_plain_errors(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(Canned({"error": {"message": "model not loaded"}}, status=503))
    plan = planner_for(server).plan("go to the door", ctx)
    assert plan.outcome is Outcome.ERROR and "503" in plan.message
    gone = make_planner("openai", {"openai": {"model": "m", "base_url": "http://127.0.0.1:9/v1", "max_retries": 0}})
    plan = gone.plan("go to the door", ctx)
    assert plan.outcome is Outcome.ERROR and "cannot reach the model server" in plan.message


def test_a_call_to_another_function_is_rejected(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(tool_reply({"place": "door"}, name="navigate_to"), tool_reply({"place": "door"}, name="navigate_to"))
    plan = planner_for(server).plan("go to the door", ctx)
    assert plan.outcome is Outcome.INVALID and "expected 'submit_plan'" in plan.message


def test_replanning_sends_the_failure_and_the_world(server: FakeServer, ctx: PlanContext) -> None:
    server.queue(plan_reply([{"skill": "approach_person", "params": {"person": "patient"}}]))
    failed = PlanStep("navigate_to", {"place": "bedside"})
    request = ReplanRequest(
        "go to the bedside", [], failed, "place 'bedside' is occupied in the floor map", [], initial_state(ctx),
        "Robot (tiago): at (0.60, -0.20)", [failed],
    )  # fmt: skip
    plan = planner_for(server).replan(request, ctx)
    assert plan.outcome is Outcome.PLAN and str(plan.steps[0]) == "approach_person(person=patient)"
    sent = server.requests[0]["messages"]
    assert (
        "occupied in the floor map" in sent[-1]["content"] and "Robot (tiago): at (0.60, -0.20)" in sent[0]["content"]
    )


def test_nothing_unvalidated_reaches_the_executor(server: FakeServer) -> None:
    """Every rejected answer, handed to the executor anyway, moves nothing and runs no skill."""
    from tianji.cli_skills import care_session
    from tianji.policies.planner import Executor

    session = care_session(seed=0, fast_physics=True, keep_robots=("tiago", "patient"))
    try:
        ctx = PlanContext.from_session(session, time="15:00")
        planner = planner_for(server)
        start = session.world_state().robot_pose.copy()
        wrong = [{"skill": "grab", "params": {"object": "cup"}}]
        pills = [FETCH[0], {"skill": "pick", "params": {"object": "pill_box"}}]
        server.queue(tool_reply("{oops"), tool_reply("{oops"), plan_reply(wrong), plan_reply(wrong), plan_reply(pills))
        server.queue(Canned({"error": {"message": "overloaded"}}, status=503))
        for text in ("bring her water", "bring her water", "give her the pills", "go to the door"):
            plan = planner.plan(text, ctx)
            assert not plan.executable, plan
            executor = Executor(session, planner)
            run = executor.run(plan, ctx)
            assert run.status in ("not_run", "refused") and run.steps_succeeded == 0
            assert not [e for e in executor.trace.events if e["event"] == "step_start"]
        assert abs(session.world_state().robot_pose - start).max() < 1e-3
    finally:
        session.close()
