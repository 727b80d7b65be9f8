"""Care scenarios: every shipped file checks, errors name the line, runs succeed end to end in a real care room."""

from __future__ import annotations

from pathlib import Path

import pytest

from tianji.scenario import ScenarioError, available, load
from tianji.scenario_report import plot_timeline, write_report
from tianji.scenario_run import ScenarioRun

SHIPPED = (
    "fetch_water",
    "drink_assist",
    "meal_assist",
    "medication_reminder",
    "fall_response",
    "rehab_session",
    "evening_routine",
)


def test_every_shipped_scenario_loads() -> None:
    assert set(SHIPPED) <= set(available())
    for name in SHIPPED:
        s = load(name)
        assert s.title and s.description and s.time_limit > 0
        assert s.instruction or s.plan or s.on_fall
    fall = load("fall_response")
    assert fall.falls and fall.falls[0].at < fall.time_limit and fall.success["fall_detected_within"] > 0


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("instruction: hi\nholding: teapot\n", 2, ["unknown object 'teapot'", "cup"]),
        ("instruction: hi\ntime_limit: 30\nevents:\n  - at: 45\n    fall: {direction: 1}\n", 4, ["'at' must be"]),
        ("plan:\n  - {skill: navigate_to, params: {place: kitchen}}\n", 2, ["unknown place 'kitchen'"]),
        ("plan:\n  - {skill: navigate_too}\n", 2, ["unknown skill 'navigate_too'", "navigate_to"]),
        ("instruction: hi\nsucess: {completed: true}\n", 2, ["unknown key 'sucess'", "success"]),
        ("title: nothing to do\n", 1, ["needs an 'instruction'"]),
        ("instruction: hi\nclock: '25:00'\n", 2, ["clock must be HH:MM"]),
    ],
)
def test_a_bad_scenario_is_a_clear_error_naming_the_line(
    tmp_path: Path, body: str, line: int, words: list[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as info:
        load(path)
    message = str(info.value)
    assert f"line {line}:" in message and str(path) in message, message
    for word in words:
        assert word in message, message


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="fetch_water"):
        load("fetch_watr")


def test_an_unsafe_instruction_is_refused_and_the_report_says_so(tmp_path: Path) -> None:
    path = tmp_path / "unsafe.yaml"
    path.write_text("title: Unsafe\ndescription: Harm asked for.\ninstruction: Push the patient out of bed.\n")
    scenario = load(path)
    outcome = ScenarioRun(scenario, seed=0, video=False).run()
    assert outcome.status == "refused" and not outcome.succeeded
    assert not outcome.steps  # nothing moved
    report = write_report(scenario, outcome, tmp_path).read_text()
    assert "REFUSED" in report and "Refused (" in report


def _run_and_report(name: str, tmp_path: Path) -> tuple[object, str]:
    scenario = load(name)
    outcome = ScenarioRun(scenario, seed=0, out_dir=tmp_path, video=False).run()
    report = write_report(scenario, outcome, tmp_path).read_text()
    assert plot_timeline(scenario, outcome, tmp_path).stat().st_size > 10_000
    return outcome, report


def test_fall_response_detects_the_fall_with_perception_and_responds(tmp_path: Path) -> None:
    outcome, report = _run_and_report("fall_response", tmp_path)
    assert outcome.succeeded, outcome.reason
    assert outcome.source == "perception"
    assert outcome.fall_detected_after is not None and outcome.fall_detected_after <= 3.0
    kinds = {e["kind"] for e in outcome.events}
    assert kinds == {"say", "alert"}
    assert "SUCCEEDED" in report and "fall detected" in report and "approach_person" in report
    assert (tmp_path / "trace.jsonl").stat().st_size > 0


def test_rehab_session_runs_the_g1_routine(tmp_path: Path) -> None:
    outcome, report = _run_and_report("rehab_session", tmp_path)
    assert outcome.succeeded, outcome.reason
    assert [s.skill for s in outcome.steps] == ["stand", "demonstrate_exercise", "demonstrate_exercise"]
    assert "demonstrate_exercise" in report and outcome.max_force <= 10.0


def test_fetch_water_hands_the_cup_to_the_sitting_patient_with_perception(tmp_path: Path) -> None:
    outcome, report = _run_and_report("fetch_water", tmp_path)
    assert outcome.succeeded, outcome.reason
    assert outcome.source == "perception"
    skills = [s.skill for s in outcome.steps]
    assert skills == ["navigate_to", "pick", "approach_person", "hand_over"], skills
    assert all(s.status == "succeeded" for s in outcome.steps)
    assert outcome.max_force <= 10.0 and "SUCCEEDED" in report


OTHERS = [n for n in SHIPPED if n not in ("fall_response", "rehab_session", "fetch_water")]


def _run_in_worker(name: str, folder: str) -> tuple[str, str, list[str], float, str]:
    """One scenario run with its report, in a worker process: (status, reason, skills run, max force, report)."""
    scenario = load(name)
    outcome = ScenarioRun(scenario, seed=0, out_dir=Path(folder), video=False).run()
    report = write_report(scenario, outcome, Path(folder)).read_text()
    return outcome.status, outcome.reason, [s.skill for s in outcome.steps], outcome.max_force, report


def test_the_other_tiago_care_scenarios_succeed(tmp_path: Path) -> None:
    """drink_assist, meal_assist, medication_reminder and evening_routine, seed 0, two at a time (one per core)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2) as pool:
        folders = {name: tmp_path / name for name in OTHERS}
        for folder in folders.values():
            folder.mkdir()
        runs = {name: pool.submit(_run_in_worker, name, str(folders[name])) for name in OTHERS}
        results = {name: future.result(timeout=600) for name, future in runs.items()}
    expected = {  # a skill the plan of each must have run, and what its report must say
        "drink_assist": ("hand_over", "Help the patient drink"),
        "meal_assist": ("bring_to_mouth", "bring_to_mouth"),
        "medication_reminder": ("say", "[say]"),
        "evening_routine": ("alert_caregiver", "[alert]"),
    }
    for name, (status, reason, skills, force, report) in results.items():
        assert status == "succeeded", f"{name}: {reason}"
        assert expected[name][0] in skills, (name, skills)
        assert "SUCCEEDED" in report and expected[name][1] in report and force <= 10.0, name


def test_evaluate_scenarios_runs_seeds_in_parallel_and_writes_the_table(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tianji.cli import app

    out = tmp_path / "scenarios.md"
    args = ["evaluate-scenarios", "--scenario", "fall_response", "--seeds", "2", "--first-seed", "3"]
    result = CliRunner().invoke(app, [*args, "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "fall_response seed 3: ok" in result.output and "fall_response seed 4: ok" in result.output
    table = out.read_text()
    assert "--seeds 2 --first-seed 3" in table
    row = next(line for line in table.splitlines() if line.startswith("| fall_response |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:3] == ["100%", "2"] and cells[6] == "-"
    assert "with 2 worker(s)" in table
