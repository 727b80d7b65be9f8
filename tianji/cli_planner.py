"""``tianji plan``, ``tianji do`` and ``tianji trace``: the robot + big-model planner on the command line.

Registered by the main CLI with ``app.command(name=...)``. ``plan`` prints the validated plan (or
why there is none) from the scene file alone, moving nothing; ``do`` plans against the live
simulated care room and executes, writing a trace; ``trace`` prints a trace as a timeline.
Exit codes: 0 done, 1 refused / not possible / failed / needs confirmation, 2 bad input.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

PlannerOpt = Annotated[
    str | None, typer.Option("--planner", help="rules (default), openai or llamacpp; or config/env TIANJI_PLANNER.")
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Planner config YAML (backends, keys, limits).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="llamacpp: PATH.gguf; openai: the model name.")]
TimeOpt = Annotated[str | None, typer.Option("--time", help="Scene clock HH:MM (medication); default: scene file.")]
COLOURS = {"plan": "green", "confirm": "yellow", "refuse": "red", "clarify": "yellow", "cannot": "red"}


def _error(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(code=code)


def _planner(name: str | None, config_path: Path | None, model: str | None) -> tuple[Any, dict[str, Any]]:
    from tianji.control.errors import TianjiError
    from tianji.policies.planner import load_config, make_planner

    try:
        config = load_config(config_path)
        chosen = name or config.get("planner") or os.environ.get("TIANJI_PLANNER") or "rules"
        if model:
            section = "llamacpp" if chosen == "llamacpp" else "openai"
            key = "model_path" if section == "llamacpp" else "model"
            config[section] = {**(config.get(section) or {}), key: model}
        return make_planner(chosen, config), config
    except (TianjiError, ValueError, FileNotFoundError) as exc:
        raise _error(str(exc)) from None


def print_plan(plan: Any) -> None:
    """The plan as a table, or the outcome and its reason."""
    colour = COLOURS.get(str(plan.outcome), "red")
    head = f"[bold {colour}]{plan.outcome}[/bold {colour}] ({plan.backend}, {plan.latency_s * 1000:.1f} ms)"
    if plan.category:
        head += escape(f" [{plan.category}]")
    console.print(head)
    if plan.steps:
        table = Table(show_header=True)
        for column in ("#", "skill", "parameters"):
            table.add_column(column)
        for i, step in enumerate(plan.steps, 1):
            table.add_row(str(i), step.skill, ", ".join(f"{k}={v}" for k, v in step.params.items()) or "-")
        console.print(table)
    if plan.message:
        console.print(escape(plan.message))
    for note in plan.notes:
        console.print(f"[dim]note: {escape(note)}[/dim]")


def plan(
    instruction: Annotated[str, typer.Argument(help='What the robot should do, e.g. "bring the patient her water".')],
    planner: PlannerOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    time: TimeOpt = None,
    scene: Annotated[str, typer.Option(help="Scene name or .yaml file.")] = "care_room",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Plan an instruction and print the validated plan or why there is none; nothing moves."""
    from tianji.control.errors import TianjiError
    from tianji.policies.planner import PlanContext

    chosen, _ = _planner(planner, config, model)
    try:
        ctx = PlanContext.from_scene(scene, time=time)
        ctx.minutes  # noqa: B018  (checks the --time format)
    except (TianjiError, ValueError, FileNotFoundError) as exc:
        raise _error(str(exc)) from None
    result = chosen.plan(instruction, ctx)
    if as_json:
        console.print_json(json.dumps(result.as_dict(), ensure_ascii=False))
    else:
        print_plan(result)
    if not result.executable:
        raise typer.Exit(code=1)


def do(
    instruction: Annotated[str, typer.Argument(help='What the robot should do, e.g. "go to the bedside".')],
    planner: PlannerOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    time: TimeOpt = None,
    robot: Annotated[
        str, typer.Option(help="'sim' (the care room in process) or 'tcp://HOST:PORT' (a robot served by the bridge).")
    ] = "sim",
    gui: Annotated[bool, typer.Option(help="Open the PyBullet window (needs a display).")] = False,
    record: Annotated[Path | None, typer.Option(help="Write an mp4 from the room camera.")] = None,
    trace: Annotated[
        Path | None, typer.Option(help="Trace file (JSON lines); default runs/planner/<time>.jsonl.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm a risky plan (hot drink, speed, feeding).")] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the room.")] = 0,
    randomize: Annotated[bool, typer.Option(help="Jitter objects and the patient within their ranges.")] = False,
    max_replans: Annotated[int, typer.Option(help="Replans after a step fails twice.")] = 2,
) -> None:
    """Plan an instruction and execute it in the simulated care room, writing a trace (exit 1 if not done)."""
    from tianji.control.errors import TianjiError
    from tianji.policies.planner import Executor, PlanContext, TraceWriter, timeline
    from tianji.remote import check_robot_option, is_remote, look_around, remote_session

    try:
        check_robot_option(robot)
    except ValueError as exc:
        raise _error(str(exc)) from None
    remote = is_remote(robot)
    if remote and (gui or record is not None or randomize):
        raise _error(
            "--gui, --record and --randomize set up the in-process simulator; with --robot tcp://... the served"
            " robot is used as it is (drop those options)"
        )
    chosen, config_values = _planner(planner, config, model)
    from tianji.cli_skills import care_session

    try:
        session = (
            remote_session(robot) if remote else care_session(seed=seed, randomize=randomize, gui=gui, realtime=gui)
        )
    except (TianjiError, ValueError) as exc:
        raise _error(str(exc)) from None
    trace_path = trace or Path("runs/planner") / f"{datetime.now():%Y%m%d-%H%M%S}.jsonl"
    try:
        if remote:  # the world state comes from the head camera: look at the room before planning
            look_around(session)
        ctx = PlanContext.from_session(session, time=time)
        ctx.minutes  # noqa: B018  (checks the --time format)
        result = chosen.plan(instruction, ctx)
        print_plan(result)
        if record is not None:
            cam = session.scene.camera("room")
            session.world.start_recording(record, cam.pose, cam.intrinsics)

        def show(event: dict[str, Any]) -> None:
            if event["event"] in ("step_end", "replan", "safety"):
                _, sim_t, kind, detail = timeline([event])[0]
                console.print(f"[dim]{sim_t}[/dim] {kind}: {escape(detail)}")

        replans = int(config_values.get("max_replans", max_replans))
        executor = Executor(session, chosen, max_replans=replans, trace=TraceWriter(trace_path), on_event=show)
        run = executor.run(result, ctx, confirmed=yes)
        videos = [] if remote else session.world.stop_recording()
    except (TianjiError, ValueError) as exc:
        session.close()
        raise _error(str(exc)) from None
    session.close()
    colour = "green" if run.succeeded else "red"
    console.print(
        f"[bold {colour}]{run.status}[/bold {colour}]: {escape(run.reason)}"
        f" ({run.steps_succeeded}/{run.steps_total} steps, {run.replans} replans,"
        f" {run.sim_seconds:.1f} s simulated, {run.wall_seconds:.1f} s wall)"
    )
    for event in run.events:
        console.print(escape(f"  [{event['kind']}] {event['message']}"))
    for video in videos:
        console.print(f"video: [bold]{video}[/bold]")
    console.print(f"trace: [bold]{trace_path}[/bold] (tianji trace {trace_path})")
    if not run.succeeded:
        raise typer.Exit(code=1)


def trace(file: Annotated[Path, typer.Argument(help="A trace written by tianji do (JSON lines).")]) -> None:
    """Print a run's trace as a readable timeline."""
    from tianji.policies.planner import read_trace, timeline

    try:
        events = read_trace(file)
    except (FileNotFoundError, ValueError) as exc:
        raise _error(str(exc)) from None
    if not events:
        raise _error(f"{file} has no events")
    table = Table(title=f"trace {file}", show_lines=False)
    for column, justify in (("wall", "right"), ("sim", "right"), ("event", "left"), ("detail", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    colours = {"end": "bold", "safety": "yellow", "replan": "magenta"}
    for wall, sim, kind, detail in timeline(events):
        style = colours.get(kind, "")
        if kind == "step_end":
            style = "green" if " succeeded " in detail else "red"
        table.add_row(wall, sim, kind, escape(detail), style=style)
    console.print(table)
