"""``tianji bridge serve|replay|keygen|drivers``: the ZeroMQ bridge from the command line.

The main CLI registers this sub-app with ``app.add_typer(bridge_app, name="bridge")``.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

bridge_app = typer.Typer(
    name="bridge",
    help="ZeroMQ bridge: serve a robot (hardware driver or simulator) to remote controllers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err_console = Console(stderr=True)

BindOpt = Annotated[
    str,
    typer.Option(help="Command socket tcp://HOST:PORT; state is published on PORT+1. Non-loopback needs --keys."),
]
KeysOpt = Annotated[
    Path | None, typer.Option("--keys", help="Server's secret key file (NAME.key_secret): turns CurveZMQ on.")
]
AllowOpt = Annotated[Path | None, typer.Option(help="Directory of allowed client public keys (*.key).")]
InsecureOpt = Annotated[
    bool, typer.Option(help="Serve a non-loopback address WITHOUT CurveZMQ (isolated networks only).")
]
RecordOpt = Annotated[Path | None, typer.Option(help="Write every message with timestamps to this MCAP file.")]
DurationOpt = Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")]


@contextmanager
def _friendly_errors() -> Iterator[None]:
    from tianji.control.errors import TianjiError

    try:
        yield
    except (TianjiError, FileNotFoundError, ValueError, ImportError) as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(code=2) from None


def _run(robot_text: str, rate: float | None, config_kwargs: dict) -> None:
    from tianji.bridge.drivers import load_driver
    from tianji.bridge.server import BridgeServer, ServerConfig

    logging.getLogger("tianji.bridge").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    duration = config_kwargs.pop("duration")
    with _friendly_errors():
        driver = load_driver(robot_text, rate=rate)
        server = BridgeServer(driver, ServerConfig(rate=rate, **config_kwargs))
    previous = signal.signal(signal.SIGTERM, lambda *_: server.request_stop())
    console.print(
        f"[bold]tianji bridge[/bold]: robot [cyan]{server.safe.spec.name}[/cyan] ({robot_text}) at {server.rate:g} Hz;"
        f" commands {server.endpoint}, state {server.state_endpoint};"
        f" CurveZMQ {'[green]on[/green]' if server.curve else '[yellow]off[/yellow]'};"
        f" watchdog {server.config.watchdog * 1000:g} ms. Ctrl-C to stop."
    )
    try:
        server.serve(duration=duration)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        signal.signal(signal.SIGTERM, previous)
    stats = ", ".join(f"{k}={v}" for k, v in sorted(server.stats.items())) or "none"
    drops = ", ".join(f"{k}={v}" for k, v in sorted(server.drops.items())) or "none"
    console.print(f"stopped. stats: {stats}; rejected: {drops}")


@bridge_app.command()
def serve(
    robot: Annotated[
        str,
        typer.Option(
            help="Driver string: sim:ROBOT[?scene=care_room], scenario:NAME[?seed=S] (a care scenario's room,"
            " events and truth, for `tianji demo --robot`), fake[:DOF], or an installed DRIVER[:ARG]."
        ),
    ] = "sim:tiago",
    rate: Annotated[float | None, typer.Option(help="Control/state rate, Hz (default: the driver's).")] = None,
    bind: BindOpt = "tcp://127.0.0.1:5555",
    watchdog: Annotated[float, typer.Option(help="Safe stop after this long without command/heartbeat, s.")] = 0.1,
    max_age: Annotated[float, typer.Option(help="Commands delayed longer than this are stale, s.")] = 0.05,
    controller_timeout: Annotated[float, typer.Option(help="A silent controller loses control after, s.")] = 1.0,
    keys: KeysOpt = None,
    allow: AllowOpt = None,
    insecure: InsecureOpt = False,
    record: RecordOpt = None,
    duration: DurationOpt = None,
    velocity_scale: Annotated[float, typer.Option(help="Safety filter: fraction of the velocity limits.")] = 1.0,
    workspace: Annotated[
        str | None, typer.Option(help="Safety filter box 'xmin,ymin,zmin,xmax,ymax,zmax' (m) for --workspace-frames.")
    ] = None,
    workspace_frames: Annotated[str, typer.Option(help="Comma-separated URDF links kept in the box.")] = "",
    workspace_base_frame: Annotated[bool, typer.Option(help="The box is in the robot's base frame.")] = False,
) -> None:
    """Serve a robot: stream its state, apply commands through the safety filter, watch the controller."""
    from tianji.control.safety import SafetyLimits

    box = None
    if workspace:
        values = [float(v) for v in workspace.split(",")]
        if len(values) != 6:
            raise typer.BadParameter("--workspace needs 6 numbers: xmin,ymin,zmin,xmax,ymax,zmax")
        box = (values[:3], values[3:])
    with _friendly_errors():
        safety = SafetyLimits(
            velocity_scale=velocity_scale,
            workspace=box,
            workspace_frames=tuple(f for f in workspace_frames.split(",") if f),
            workspace_in_base_frame=workspace_base_frame,
        )
    _run(
        robot,
        rate,
        dict(
            bind=bind,
            watchdog=watchdog,
            max_age=max_age,
            controller_timeout=controller_timeout,
            secret_key=keys,
            allow=allow,
            insecure=insecure,
            record=record,
            duration=duration,
            safety=safety,
        ),
    )


@bridge_app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="MCAP recording made with --record (server or client side).")],
    rate: Annotated[float | None, typer.Option(help="Replay rate, Hz (default: as recorded).")] = None,
    loop: Annotated[bool, typer.Option(help="Start over at the end instead of holding the last state.")] = False,
    bind: BindOpt = "tcp://127.0.0.1:5555",
    keys: KeysOpt = None,
    allow: AllowOpt = None,
    insecure: InsecureOpt = False,
    duration: DurationOpt = None,
) -> None:
    """Serve a recording as if it were the robot, so a controller can be tested against recorded data."""
    robot = f"replay:{file}" + ("?loop=1" if loop else "")
    _run(robot, rate, dict(bind=bind, secret_key=keys, allow=allow, insecure=insecure, duration=duration))


@bridge_app.command()
def keygen(
    directory: Annotated[Path, typer.Argument(help="Folder to write the key files into.")],
    name: Annotated[str, typer.Option(help="Key pair name: NAME.key (public) and NAME.key_secret.")] = "server",
) -> None:
    """Create a CurveZMQ key pair (run once for the server, once per client)."""
    from tianji.bridge.auth import keygen as make_keys

    with _friendly_errors():
        public, secret = make_keys(directory, name)
    console.print(f"wrote [bold]{public}[/bold] (public: give it to the other side) and [bold]{secret}[/bold] (secret)")
    console.print(
        "server: tianji bridge serve --keys server.key_secret --allow DIR_OF_CLIENT_KEYS;"
        " client: RemoteRobot(url, server_key='server.key', client_key='client.key_secret')"
    )


@bridge_app.command()
def drivers() -> None:
    """List the robot drivers the server can load (built-ins and the tianji.drivers entry points)."""
    from tianji.bridge.drivers import available_drivers

    table = Table(title="Robot drivers")
    table.add_column("name")
    table.add_column("implementation")
    for name, target in sorted(available_drivers().items()):
        table.add_row(name, target)
    console.print(table)
