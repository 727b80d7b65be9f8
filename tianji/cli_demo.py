"""``tianji demo [SCENARIO]`` and ``tianji evaluate-scenarios``: the care scenarios for demo operators.

``demo`` with no scenario runs ``fetch_water`` then ``fall_response`` headless, shows the plan,
the current step, the time and the safety interventions live, and leaves
``runs/demo/<scenario>/<timestamp>/`` with ``video.mp4`` (room camera | head camera with
perception's overlays), ``trace.jsonl``, ``report.md`` and ``timeline.png``. Exit code 0 when
every scenario succeeded, 1 with the reason otherwise, 2 for bad input.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

console = Console()
err_console = Console(stderr=True)
ICONS = {"succeeded": "[green]done[/green]", "failed": "[red]failed[/red]", "running": "[yellow]running[/yellow]"}


def _error(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(code=code)


def _live_view(title: str, state: dict[str, Any]) -> Panel:
    """The operator's view: status line and the steps so far."""
    steps = Table(show_header=True, expand=True, box=None)
    for column, justify in (("#", "right"), ("step", "left"), ("start", "right"), ("time", "right"), ("", "left")):
        steps.add_column(column, justify=justify)  # type: ignore[arg-type]
    for i, st in enumerate(state.get("steps", []), 1):
        params = ", ".join(str(v) for v in st.params.values())
        duration = (st.end if st.end is not None else state["sim"]) - st.start
        steps.add_row(
            str(i), escape(f"{st.skill}({params})"), f"{st.start:.1f} s", f"{duration:.1f} s", ICONS.get(st.status, "")
        )
    head = (
        f"[bold]{escape(state.get('status', ''))}[/bold]   simulated {state.get('sim', 0.0):.1f} s"
        f"   wall {state.get('wall', 0.0):.0f} s   max force on patient {state.get('max_force', 0.0):.1f} N"
        f"   safety interventions {state.get('interventions', 0)}"
    )
    return Panel(Group(head, steps), title=escape(title), border_style="cyan")


def run_one(
    name: str | None,
    *,
    seed: int | None,
    planner: str | None,
    instruction: str | None,
    oracle: bool,
    gui: bool,
    robot: str,
    out_root: Path,
    live: bool = True,
) -> Any:
    """Run one scenario with the live display; returns its outcome (report files written).

    ``robot="tcp://HOST:PORT"`` runs it against a scenario served by ``tianji bridge serve --robot
    scenario:NAME``; ``name`` None then means the served one, ``seed`` None the server's seed.
    """
    from tianji.remote import check_robot_option, is_remote
    from tianji.scenario import load
    from tianji.scenario_report import plot_timeline, write_report
    from tianji.scenario_run import ScenarioRun

    check_robot_option(robot)
    if name is None:
        if not is_remote(robot):
            raise ValueError("name the scenario to run (see `tianji demo --list`)")
        name = served_scenario(robot)
    scenario = load(name)
    folder = out_root / scenario.name / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    where = f"served at {robot}" if is_remote(robot) else "in-process"
    console.print(
        f"[bold]{escape(scenario.title)}[/bold] ({where}, seed {'of the server' if seed is None else seed}, world"
        f" state from {'the simulator (--oracle)' if oracle else 'perception'}): {escape(scenario.description)}"
    )
    wall0 = time.perf_counter()
    with Live(console=console, refresh_per_second=4, transient=False) as view:

        def update(state: dict[str, Any]) -> None:
            if live:
                view.update(_live_view(scenario.title, {**state, "wall": time.perf_counter() - wall0}))

        outcome = ScenarioRun(
            scenario,
            seed=seed,
            robot=robot,
            planner=planner,
            instruction=instruction,
            oracle=oracle,
            gui=gui,
            out_dir=folder,
            on_update=update,
        ).run()
    outcome.files["timeline"] = plot_timeline(scenario, outcome, folder)  # first: the report links it
    outcome.files["report"] = write_report(scenario, outcome, folder)
    colour = "green" if outcome.succeeded else "red"
    console.print(f"[bold {colour}]{outcome.status}[/bold {colour}]: {escape(outcome.reason)}")
    for name_, ok, detail in outcome.checks:
        mark = "[green]yes[/green]" if ok else "[red]no[/red]"
        console.print(f"  {mark} {escape(name_)}: {escape(detail)}")
    for event in outcome.events:
        console.print(escape(f"  [{event['kind']}] {event['message']}"))
    console.print(
        f"  simulated {outcome.sim_seconds:.1f} s in {outcome.wall_seconds:.0f} s;"
        f" outputs in [bold]{folder}[/bold] (report.md, video.mp4, timeline.png, trace.jsonl)"
    )
    return outcome


def served_scenario(endpoint: str) -> str:
    """The scenario that the bridge server at ``endpoint`` stages (asked as an observer, which takes no control)."""
    from tianji.bridge.client import RemoteRobot
    from tianji.remote import curve_keys, scenario_status

    robot = RemoteRobot(endpoint, role="observer", **curve_keys())
    try:
        return str(scenario_status(robot, "fetch_water")["scenario"])
    finally:
        robot.close()


def demo(
    scenario: Annotated[
        str | None, typer.Argument(help="Scenario name or .yaml file; default: fetch_water then fall_response.")
    ] = None,
    instruction: Annotated[str | None, typer.Option(help="Ask this instead of the scenario's instruction.")] = None,
    planner: Annotated[str | None, typer.Option(help="rules (default), openai or llamacpp.")] = None,
    gui: Annotated[bool, typer.Option(help="Open the PyBullet window (needs a display).")] = False,
    robot: Annotated[
        str,
        typer.Option(
            help="'sim' (in-process), or tcp://HOST:PORT: a scenario served by `tianji bridge serve --robot"
            " scenario:NAME?seed=S` (no SCENARIO: the served one)."
        ),
    ] = "sim",
    seed: Annotated[
        int | None, typer.Option(help="Random seed (same seed, same room); default 0, or the server's.")
    ] = None,
    oracle: Annotated[bool, typer.Option(help="Skills read the simulator's truth instead of perception.")] = False,
    out: Annotated[Path, typer.Option(help="Folder for the runs.")] = Path("runs/demo"),
    list_scenarios: Annotated[bool, typer.Option("--list", help="List the scenarios and exit.")] = False,
) -> None:
    """Run care scenarios headless with a live view; writes a video, a trace, a report and a timeline."""
    from tianji.control.errors import TianjiError
    from tianji.scenario import DEFAULT_DEMO, available, load

    if list_scenarios:
        table = Table(title="Scenarios (experiments/scenarios/)")
        table.add_column("name")
        table.add_column("what happens")
        for name in available():
            table.add_row(name, load(name).description)
        console.print(table)
        return
    from tianji.remote import is_remote

    remote = is_remote(robot)
    names: list[str | None] = [scenario] if scenario or remote else list(DEFAULT_DEMO)
    if seed is None and not remote:
        seed = 0
    if instruction and not scenario:
        raise _error("--instruction replaces one scenario's instruction: name the scenario too, e.g. fetch_water")
    failures = []
    try:
        for name in names:
            outcome = run_one(
                name,
                seed=seed,
                planner=planner,
                instruction=instruction,
                oracle=oracle,
                gui=gui,
                robot=robot,
                out_root=out,
            )
            if not outcome.succeeded:
                failures.append(f"{outcome.scenario}: {outcome.reason}")
    except (TianjiError, ValueError, FileNotFoundError) as exc:
        raise _error(str(exc)) from None
    if failures:
        err_console.print(f"[bold red]{len(failures)} of {len(names)} scenario(s) did not succeed[/bold red]")
        raise typer.Exit(code=1)


@dataclass(frozen=True)
class SeedResult:
    """What the success table needs from one scenario run; small and picklable, so worker processes can return it."""

    scenario: str
    seed: int
    status: str
    reason: str
    sim_seconds: float
    wall_seconds: float
    max_force: float

    @property
    def succeeded(self) -> bool:
        """True when every success criterion held."""
        return self.status == "succeeded"


def run_seed(name: str, seed: int, planner: str | None, oracle: bool) -> SeedResult:
    """Run scenario ``name`` once with ``seed`` (no video); top-level so a process pool can call it."""
    from tianji.scenario import load
    from tianji.scenario_run import ScenarioRun

    o = ScenarioRun(load(name), seed=seed, planner=planner, oracle=oracle, video=False).run()
    return SeedResult(name, seed, o.status, o.reason, o.sim_seconds, o.wall_seconds, o.max_force)


def evaluate_scenarios(
    seeds: Annotated[int, typer.Option(help="Seeds per scenario (first-seed .. first-seed + N-1).")] = 20,
    first_seed: Annotated[int, typer.Option(help="The first seed.")] = 0,
    scenario: Annotated[list[str] | None, typer.Option(help="Only these scenarios (repeatable).")] = None,
    planner: Annotated[str | None, typer.Option(help="rules (default), openai or llamacpp.")] = None,
    oracle: Annotated[bool, typer.Option(help="Skills read the simulator's truth instead of perception.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Runs at once, one process each (at most one per core).")] = 1,
    out: Annotated[Path, typer.Option(help="Results table (markdown).")] = Path("experiments/results/scenarios.md"),
) -> None:
    """Run every scenario over N seeds (no video) and write a success-rate table."""
    from concurrent.futures import ProcessPoolExecutor

    from tianji.control.errors import TianjiError
    from tianji.scenario import available, load

    names = scenario or available()
    jobs = [(name, seed) for name in names for seed in range(first_seed, first_seed + seeds)]
    results: dict[tuple[str, int], SeedResult] = {}
    started = time.perf_counter()

    def report(r: SeedResult) -> None:
        results[(r.scenario, r.seed)] = r
        mark = "[green]ok[/green]" if r.succeeded else f"[red]{escape(r.status)}[/red]: {escape(r.reason)}"
        times = f"{r.sim_seconds:.0f} s sim, {r.wall_seconds:.0f} s wall"
        console.print(f"[{len(results)}/{len(jobs)}] {r.scenario} seed {r.seed}: {mark} ({times})")

    try:
        for name in names:
            load(name)  # a broken scenario file fails here, before any run starts
        if workers == 1:
            for name, seed in jobs:
                report(run_seed(name, seed, planner, oracle))
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(run_seed, name, seed, planner, oracle) for name, seed in jobs]
                for future in futures:
                    report(future.result())
    except (TianjiError, ValueError) as exc:
        raise _error(str(exc)) from None
    rows = [(name, [results[job] for job in jobs if job[0] == name]) for name in names]
    text = scenarios_markdown(rows, seeds=seeds, first_seed=first_seed, oracle=oracle, planner=planner or "rules")
    text += f"\nThe run took {time.perf_counter() - started:.0f} s of wall time with {workers} worker(s).\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    console.print(text)
    console.print(f"written to [bold]{out}[/bold]")


def scenarios_markdown(
    rows: list[tuple[str, list[Any]]], *, seeds: int, oracle: bool, planner: str, first_seed: int = 0
) -> str:
    """The success-rate table of an evaluation, with the commonest failure per scenario."""
    source = "the simulator's truth (--oracle)" if oracle else "perception on the head camera"
    lines = [
        "# Care scenarios: success over seeds",
        "",
        f"Measured {datetime.now():%Y-%m-%d %H:%M} by `tianji evaluate-scenarios --seeds {seeds}"
        f"{f' --first-seed {first_seed}' if first_seed else ''}"
        f"{' --oracle' if oracle else ''}`; planner `{planner}`; skills' world state from {source}.",
        "Target (issue 10): every scenario at least 90% over 20 seeds.",
        "",
        "| scenario | success | seeds | mean sim s | mean wall s | max force N | failed seeds | commonest failure |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, outcomes in rows:
        ok = sum(o.succeeded for o in outcomes)
        reasons = [o.reason for o in outcomes if not o.succeeded]
        common = max(set(reasons), key=reasons.count) if reasons else "-"
        failed = ", ".join(str(o.seed) for o in outcomes if not o.succeeded)
        lines.append(
            f"| {name} | {100 * ok / len(outcomes):.0f}% | {len(outcomes)} |"
            f" {statistics.mean(o.sim_seconds for o in outcomes):.0f} |"
            f" {statistics.mean(o.wall_seconds for o in outcomes):.0f} |"
            f" {max(o.max_force for o in outcomes):.1f} | {failed or '-'} | {common[:160].replace('|', '/')} |"
        )
    return "\n".join(lines) + "\n"
