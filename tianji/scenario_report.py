"""What a scenario run leaves for the operator: a one-page ``report.md`` and a timeline plot.

The report says what was asked, the plan, each step's outcome and duration, the largest force
on the patient, the safety interventions, and success or the reason for failure; the timeline
(matplotlib, PNG) shows the steps as bars over simulated time, the falls and detections as
marks, and the force on the patient below.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tianji.scenario import Scenario
from tianji.scenario_run import ScenarioOutcome

STATUS_COLOURS = {"succeeded": "#3a9d5d", "failed": "#c0392b", "running": "#999999"}


def _robot_line(robot: str) -> str:
    if robot == "sim":
        return "the in-process simulator, stepped in lockstep with the skills"
    return (
        f"served at `{robot}` through the ZeroMQ bridge (`tianji bridge serve --robot scenario:...`): the skills ran"
        " in real time against it, the room and its events ran on the server, which reported the ground truth"
    )


def write_report(scenario: Scenario, outcome: ScenarioOutcome, folder: Path) -> Path:
    """Write ``report.md`` in ``folder`` and return its path."""
    o = outcome
    verdict = {"succeeded": "SUCCEEDED", "failed": "FAILED", "refused": "REFUSED"}.get(o.status, o.status.upper())
    lines = [
        f"# {scenario.title}: {verdict}",
        "",
        f"{scenario.description}".strip(),
        "",
        f"- Scenario: `{scenario.path.name}`, seed {o.seed}, run {datetime.now():%Y-%m-%d %H:%M}",
        f"- World state for the skills: **{o.source}**"
        + (" (the robot's head camera)" if o.source == "perception" else " (`--oracle`: the simulator's truth)"),
        f"- Robot: {_robot_line(o.robot)}",
        f"- Simulated {o.sim_seconds:.1f} s in {o.wall_seconds:.0f} s of wall time",
        f"- Result: **{verdict}**: {o.reason}",
        "",
        "## What was asked",
        "",
    ]
    for text, plan in zip(o.instructions, o.plans, strict=False):
        lines.append(f"- \u201c{text}\u201d: planner `{plan.backend}`, outcome **{plan.outcome}**")
        if plan.message:
            lines.append(f"  - {plan.message}")
        for i, step in enumerate(plan.steps, 1):
            lines.append(f"  {i}. `{step}`")
    if not o.instructions:
        lines.append("- nothing: the scenario ended before any instruction")
    lines += ["", "## Steps", ""]
    if o.steps:
        lines += ["| # | skill | parameters | start (s) | duration (s) | outcome |", "|---:|---|---|---:|---:|---|"]
        for i, st in enumerate(o.steps, 1):
            params = ", ".join(f"{k}={v}" for k, v in st.params.items()) or "-"
            duration = f"{st.end - st.start:.1f}" if st.end is not None else "-"
            outcome = st.status + (f": {st.reason}" if st.reason else "")
            lines.append(f"| {i} | `{st.skill}` | {params} | {st.start:.1f} | {duration} | {outcome} |")
    else:
        lines.append("No step ran.")
    lines += ["", "## Safety", ""]
    lines.append(f"- Largest contact force on the patient: **{o.max_force:.1f} N** (limit 10 N)")
    interventions = ", ".join(f"{k}: {v}" for k, v in sorted(o.interventions.items())) or "none"
    lines.append(f"- Safety filter interventions: {interventions}")
    refusals = [p for p in o.plans if str(p.outcome) == "refuse"]
    for plan in refusals:
        lines.append(f"- Refused ({plan.category}): {plan.message}")
    if o.marks:
        lines += ["", "## Events", ""]
        lines += [f"- {t:.1f} s: {what}" for t, what in o.marks]
    if o.events:
        lines += ["", "## What the robot said and sent", ""]
        lines += [f"- [{e['kind']}] {e['message']}" for e in o.events]
    lines += ["", "## Success criteria", "", "| criterion | held | measured |", "|---|---|---|"]
    lines += [f"| {name} | {'yes' if ok else '**no**'} | {detail} |" for name, ok, detail in o.checks]
    files = {k: v.name for k, v in o.files.items() if k != "report"}
    if files:
        lines += ["", "Files: " + ", ".join(f"[{k}]({v})" for k, v in sorted(files.items()))]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plot_timeline(scenario: Scenario, outcome: ScenarioOutcome, folder: Path) -> Path:
    """Write ``timeline.png``: steps over simulated time, events, and the force on the patient."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o = outcome
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}, constrained_layout=True
    )
    for i, st in enumerate(o.steps):
        end = st.end if st.end is not None else o.sim_seconds
        top.barh(i, end - st.start, left=st.start, color=STATUS_COLOURS.get(st.status, "#999999"), height=0.6)
        label = st.skill + (f"({', '.join(str(v) for v in st.params.values())})" if st.params else "")
        top.text(st.start, i + 0.42, label, fontsize=8, va="bottom")
    for t, what in o.marks:
        for ax in (top, bottom):
            ax.axvline(t, color="#8e44ad", linestyle="--", linewidth=1)
        top.text(t, -0.9, f" {what}", color="#8e44ad", fontsize=8)
    top.set_ylim(len(o.steps) + 0.2, -1.2)
    top.set_yticks([])
    top.set_title(f"{scenario.title} (seed {o.seed}): {o.status}")
    if o.forces:
        times, forces = zip(*o.forces, strict=True)
        bottom.plot(times, forces, color="#2c3e50", linewidth=1)
    bottom.axhline(10.0, color="#c0392b", linewidth=1, linestyle=":")
    bottom.set_ylabel("force on\npatient (N)")
    bottom.set_xlabel("simulated time (s)")
    bottom.set_xlim(0, max(o.sim_seconds, 1.0))
    path = folder / "timeline.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
