"""The ``tianji`` command line (typer + rich). Each command is a thin layer over the library."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from tianji import __version__

app = typer.Typer(
    name="tianji",
    help="Tianji: simulate robots, train policies, and run elder-care scenarios.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"tianji {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the library does.")] = False,
) -> None:
    """Tianji command line."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command()
def robots() -> None:
    """List the registered robots: name, degrees of freedom, base, source."""
    from tianji.sim.registry import get_robot, robot_names

    table = Table(title="Registered robots")
    for column in ("name", "DoF", "base", "source", "description"):
        table.add_column(column)
    for name in robot_names():
        desc = get_robot(name)
        table.add_row(
            name, str(desc.dof if desc.dof is not None else "?"), desc.base.value, desc.source, desc.description
        )
    console.print(table)


@app.command()
def show(
    target: Annotated[
        str, typer.Argument(help="A robot name (see `tianji robots`) or a scene name (care_room) or scene .yaml file.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("show.png"),
    width: Annotated[int, typer.Option(help="Image width in pixels.")] = 960,
    height: Annotated[int, typer.Option(help="Image height in pixels.")] = 720,
    preset: Annotated[
        str, typer.Option(help="Pose preset for a robot (home, or e.g. lying/sitting/standing for human).")
    ] = "home",
    camera: Annotated[str, typer.Option(help="Scene camera to render from (room, overview, ...).")] = "room",
) -> None:
    """Render a picture of a robot or a scene."""
    from tianji.sim.showcase import show as render_show

    with friendly_errors():
        path = render_show(target, out, width=width, height=height, preset=preset, camera=camera)
    console.print(f"wrote [bold]{path}[/bold]")


@app.command()
def showcase(
    seconds: Annotated[float, typer.Option(help="Simulated seconds.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same run).")] = 0,
    randomize: Annotated[
        bool, typer.Option(help="Jitter object and robot poses within the scene's documented ranges.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Folder for the run's outputs.")] = Path("runs/demo"),
    gui: Annotated[bool, typer.Option(help="Open the PyBullet window (needs a display).")] = False,
    scene: Annotated[str, typer.Option(help="Scene name or .yaml file.")] = "care_room",
) -> None:
    """Show a scene: every robot holds its pose for a while; writes a picture and a video."""
    from tianji.sim.showcase import run_scene_demo

    console.print(f"[bold]Tianji showcase[/bold]: scene [cyan]{scene}[/cyan], {seconds:g} s simulated, seed {seed}")
    with (
        friendly_errors(),
        Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar,
    ):
        task = bar.add_task("simulating + recording", total=1.0)
        result = run_scene_demo(
            out,
            scene_name=scene,
            seconds=seconds,
            seed=seed,
            randomize=randomize,
            gui=gui,
            progress=lambda f: bar.update(task, completed=f),
        )
    table = Table(title="Robots held at their start pose", show_header=True)
    table.add_column("robot")
    table.add_column("largest joint deviation", justify="right")
    for label, dev in result.robots.items():
        table.add_row(label, f"{dev:.3f}")
    console.print(table)
    console.print(
        f"simulated {result.sim_seconds:.1f} s in {result.wall_seconds:.1f} s wall time, {result.frames} video frames\n"
        f"picture: [bold]{result.picture}[/bold]\nvideo:   [bold]{result.video}[/bold]"
    )


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn Tianji's errors into one plain-language line and exit code 2, without a traceback."""
    from tianji.control.errors import TianjiError

    try:
        yield
    except (TianjiError, FileNotFoundError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(code=2) from None


def _register_commands() -> None:
    """Commands that live in their own modules, registered on the one app."""
    from tianji import cli_demo, cli_perception, cli_planner, cli_policies, cli_skills
    from tianji.cli_bridge import bridge_app

    app.command(name="train")(cli_policies.train)
    app.command(name="eval")(cli_policies.eval_policy)
    app.command(name="record")(cli_policies.record)
    app.command(name="plot")(cli_policies.plot)
    app.command(name="zoo")(cli_policies.zoo)
    app.command(name="sweep")(cli_policies.sweep)
    app.command(name="skill")(cli_skills.skill)
    app.command(name="perceive")(cli_perception.perceive)
    app.command(name="plan")(cli_planner.plan)
    app.command(name="do")(cli_planner.do)
    app.command(name="trace")(cli_planner.trace)
    app.command(name="demo")(cli_demo.demo)
    app.command(name="evaluate-scenarios")(cli_demo.evaluate_scenarios)
    app.add_typer(bridge_app, name="bridge")


_register_commands()


def main() -> None:
    """Entry point of the ``tianji`` script."""
    app()


if __name__ == "__main__":
    main()
