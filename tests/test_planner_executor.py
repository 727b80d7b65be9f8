"""The executor in the simulated care room: real skills, real failures, retries, replanning, safe stops, traces.

Failures are real, not mocked: a second bedside table left standing in the way makes
``navigate_to(bedside_table)`` fail (the floor map has it), a step given a 0.3 s timeout times
out, and a plan that no longer fits the world is refused before anything moves.
Sessions use 120 Hz physics under the 60 Hz control rate to keep the suite fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tianji.cli import app
from tianji.cli_skills import care_room_config, care_session
from tianji.policies.planner import (
    Executor,
    Outcome,
    Plan,
    PlanContext,
    PlanStep,
    TraceWriter,
    make_planner,
    read_trace,
    validate,
)


@pytest.fixture
def session() -> Iterator[object]:
    s = care_session(seed=0, fast_physics=True)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def blocked_session() -> Iterator[object]:
    """The care room with a second bedside table left in front of the first, where the robot would stand."""
    config = care_room_config()
    config["objects"]["cart"] = {"urdf": "objects/bedside_table.urdf", "position": [-1.05, 0.55, 0.0], "fixed": True}
    s = care_session(seed=0, fast_physics=True, config=config)
    try:
        yield s
    finally:
        s.close()


def events(path: Path, kind: str) -> list[dict]:
    return [e for e in read_trace(path) if e["event"] == kind]


def test_a_step_that_times_out_is_retried_then_replanned(session, tmp_path: Path) -> None:
    planner = make_planner("rules")
    ctx = PlanContext.from_session(session)
    plan = Plan("go to the table and say so", [PlanStep("navigate_to", {"place": "dining_table"}, timeout=0.3)])
    plan.steps.append(PlanStep("say", {"text": "I am at the table."}))
    validate(plan, ctx)
    trace = tmp_path / "run.jsonl"
    run = Executor(session, planner, trace=TraceWriter(trace)).run(plan, ctx)
    assert run.succeeded and run.replans == 1, run.reason
    ends = events(trace, "step_end")
    assert [(e["skill"], e["attempt"], e["status"]) for e in ends] == [
        ("navigate_to", 1, "failed"),
        ("navigate_to", 2, "failed"),  # retried once
        ("navigate_to", 1, "succeeded"),  # the replanned step, with the skill's own timeout
        ("say", 1, "succeeded"),
    ]
    assert "timed out" in ends[0]["reason"]
    assert ends[2]["observed"]["robot_at"] == "dining_table"  # checked against observations
    (replan,) = events(trace, "replan")
    assert "timed out" in replan["reason"] and "Place dining_table" in replan["world"]
    assert all(e["sim_t"] >= 0 and e["t"] > 0 for e in read_trace(trace))
    assert run.events == [{"kind": "say", "message": "I am at the table."}]


def test_a_failed_step_whose_effects_are_observed_counts_as_done(session, tmp_path: Path) -> None:
    x, y, yaw = session.scene.places["dining_table"].pose
    session.start_at((x, y - 0.1, yaw))  # 10 cm short: robot_at (within 15 cm) holds, the skill wants 5 cm
    planner = make_planner("rules")
    ctx = PlanContext.from_session(session)
    plan = Plan("go to the table and say so", [PlanStep("navigate_to", {"place": "dining_table"}, timeout=0.1)])
    plan.steps.append(PlanStep("say", {"text": "I am at the table."}))
    trace = tmp_path / "run.jsonl"
    run = Executor(session, planner, trace=TraceWriter(trace)).run(plan, ctx)
    assert run.succeeded and run.replans == 0, run.reason
    first, say = events(trace, "step_end")
    assert first["attempt"] == 1 and first["status"] == "succeeded" and first["effects_hold"]
    assert "timed out" in first["reason"] and "robot_at = dining_table" in first["reason"]
    assert say["status"] == "succeeded" and not say["effects_hold"]


def test_a_refused_navigation_is_replanned_another_way(blocked_session, tmp_path: Path) -> None:
    planner = make_planner("rules")
    ctx = PlanContext.from_session(blocked_session)
    plan = planner.plan("go to the bedside table and alert the caregiver", ctx)
    assert [s.skill for s in plan.steps] == ["navigate_to", "alert_caregiver"]
    trace = tmp_path / "bedside.jsonl"
    run = Executor(blocked_session, planner, trace=TraceWriter(trace)).run(plan, ctx)
    assert run.succeeded and run.replans == 2, run.reason
    first, second = events(trace, "replan")
    assert "'bedside_table' at (-1.45, 0.55) is occupied" in first["reason"]  # real failures: the cart is in the way
    assert first["plan"]["steps"][0] == {"skill": "approach_person", "params": {"person": "patient"}}
    assert "no free spot within 1.1 m of 'patient'" in second["reason"]
    assert second["plan"]["steps"][0] == {"skill": "navigate_to", "params": {"place": "bedside"}}
    ends = [(e["skill"], e["status"]) for e in events(trace, "step_end")]
    assert ends[-2:] == [("navigate_to", "succeeded"), ("alert_caregiver", "succeeded")]
    assert [e["kind"] for e in run.events] == ["alert"]
    result = CliRunner().invoke(app, ["trace", str(trace)], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "replan" in result.output and "approach_person" in result.output


def test_it_stops_safely_when_it_cannot_go_on(blocked_session) -> None:
    planner = make_planner("rules")
    ctx = PlanContext.from_session(blocked_session)
    plan = Plan("go to the bedside table", [PlanStep("navigate_to", {"place": "bedside_table"})], "test")
    run = Executor(blocked_session, planner, max_replans=0).run(plan, ctx)
    assert run.status == "failed" and "no replans left" in run.reason and run.steps_succeeded == 0
    s = blocked_session.safe.observe()
    assert np.abs(s.base_twist).max() < 0.05  # holding still


def test_a_safety_stop_is_not_retried_or_replanned(session, tmp_path: Path) -> None:
    planner = make_planner("rules")
    ctx = PlanContext.from_session(session)
    plan = planner.plan("say hello to her, then go to the door", ctx)

    def press_estop(event: dict) -> None:
        if event["event"] == "step_end" and event["skill"] == "say":
            session.safe.emergency_stop("operator pressed the emergency stop")

    trace = tmp_path / "estop.jsonl"
    run = Executor(session, planner, trace=TraceWriter(trace), on_event=press_estop).run(plan, ctx)
    assert run.status == "failed" and run.replans == 0 and "safety stop" in run.reason
    assert [e["skill"] for e in events(trace, "step_start")] == ["say", "navigate_to"]  # no second attempt
    assert events(trace, "safety")[-1]["decision"] == "intervention"


def test_an_invalid_or_unconfirmed_plan_does_not_move(session) -> None:
    planner = make_planner("rules")
    ctx = PlanContext.from_session(session)
    start = session.world_state().robot_pose.copy()
    unchained = Plan("give her the cup", [PlanStep("hand_over", {"object": "cup", "person": "patient"})], "test")
    executor = Executor(session, planner)
    run = executor.run(unchained, ctx)
    assert run.status == "failed" and "needs holding = cup" in run.reason
    risky = planner.plan("bring her a hot tea", ctx)
    assert risky.outcome is Outcome.CONFIRM
    run = executor.run(risky, ctx)
    assert run.status == "not_run" and "needs confirmation" in run.reason
    refused = planner.plan("push her", ctx)
    assert executor.run(refused, ctx).status == "refused"
    assert not [e for e in executor.trace.events if e["event"] == "step_start"]
    assert np.abs(session.world_state().robot_pose - start).max() < 1e-3


def test_scene_file_and_simulator_agree_on_names(session) -> None:
    static, live = PlanContext.from_scene("care_room"), PlanContext.from_session(session)
    for kind in ("objects", "places", "people"):
        assert list(getattr(static.world_state, kind)) == list(getattr(live.world_state, kind))
    plan = make_planner("rules").plan("bring the patient her water", static)
    validate(plan, live)


@pytest.mark.slow
def test_bring_the_patient_her_water_end_to_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["do", "bring the patient her water", "--trace", str(tmp_path / "w.jsonl")])
    assert result.exit_code == 0, result.output
    ends = events(tmp_path / "w.jsonl", "step_end")
    assert [e["skill"] for e in ends if e["status"] == "succeeded"][-1] == "hand_over"


@pytest.mark.slow
def test_a_disturbed_pick_is_replanned_from_the_observed_state(session, tmp_path: Path) -> None:
    """The robot is pushed away from the table after navigating: pick fails for real, the replan goes back."""
    planner = make_planner("rules")
    ctx = PlanContext.from_session(session)
    plan = planner.plan("pick up the cup", ctx)

    pushed = []

    def disturb(event: dict) -> None:  # once, right after the first navigation
        if event["event"] == "step_end" and event["skill"] == "navigate_to" and not pushed:
            pushed.append(event)
            session.start_at("room_center")  # 1.6 m from the cup: out of the arm's reach

    executor = Executor(session, planner, trace=TraceWriter(tmp_path / "p.jsonl"), on_event=disturb)
    run = executor.run(plan, ctx)
    replans = events(tmp_path / "p.jsonl", "replan")
    assert replans and "out of reach" in replans[0]["reason"]
    assert replans[0]["plan"]["steps"][0]["skill"] == "navigate_to"
    assert run.succeeded and run.replans == 1, run.reason
