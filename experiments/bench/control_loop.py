"""Control-loop timing: how well ControlLoop keeps 50, 100 and 500 Hz in real time against the simulated TIAGo.

Run from the repository root::

    python experiments/bench/control_loop.py          # 5 s per row -> experiments/results/control_loop.md
    python experiments/bench/control_loop.py --quick  # 1 s per row, prints only

Each row runs ``ControlLoop(robot, policy, rate, realtime=True)`` with a trivial policy
(hold the home pose: one full position command per tick) for a fixed wall time and reports
the achieved rate, the period jitter (|actual period - 1/rate|) at p50/p99/max, the time a
tick's work took (observe + policy + command [+ physics]) and the deadline misses. The
miss-burst stop is disabled so every row runs to the end.

Two kinds of rows: **sim** steps the physics every tick (``stepper=world.step``, with the
World's control rate equal to the loop's rate, so simulated time follows the wall clock);
**loop only** leaves the physics alone, which isolates the loop's own scheduling and the
Robot calls from the physics cost.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tianji.control.loop import ControlLoop, LoopStats
from tianji.control.robot import Command
from tianji.sim.world import World, WorldConfig

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "results" / "control_loop.md"
# rate -> (physics timestep, physics steps per control step): World's control rate equals the loop's
WORLD_FOR_RATE = {50.0: (1 / 200, 4), 100.0: (1 / 200, 2), 500.0: (1 / 500, 1)}


def run_row(rate: float, seconds: float, step_physics: bool, robot_name: str = "tiago") -> LoopStats:
    """One real-time run of the trivial hold-home policy; returns the loop's statistics."""
    timestep, decimation = WORLD_FOR_RATE[rate]
    with World(WorldConfig(seed=0, timestep=timestep, control_decimation=decimation)) as world:
        robot = world.add_robot(robot_name)
        world.step(int(rate // 2))  # let the robot settle on the floor first (0.5 s)
        home = robot.spec.home

        def hold_home(obs: object) -> Command:
            return Command(targets=home)

        loop = ControlLoop(
            robot,
            hold_home,
            rate=rate,
            realtime=True,
            stepper=world.step if step_physics else None,
            miss_burst=10**6,
            miss_window=10**6,
        )
        return loop.run(duration=seconds)


def row(kind: str, stats: LoopStats) -> str:
    """One markdown table row."""
    share = 100.0 * stats.deadline_misses / max(stats.ticks, 1)
    return (
        f"| {stats.rate:g} | {kind} | {stats.ticks} | {stats.achieved_rate:.1f} | {stats.jitter_p50_ms:.3f}"
        f" | {stats.jitter_p99_ms:.3f} | {stats.jitter_max_ms:.2f} | {stats.compute_p50_ms:.2f}"
        f" | {stats.compute_p99_ms:.2f} | {stats.deadline_misses} ({share:.1f}%) |"
    )


def report(rows: list[str], seconds: float, argv: Sequence[str], load: tuple[tuple[float, ...], ...]) -> str:
    """The markdown report: set-up, machine, load and the table."""
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("pybullet", "numpy"))
    command = shlex.join(["python", "experiments/bench/control_loop.py", *argv])
    start, end = (", ".join(f"{v:.2f}" for v in la) for la in load)
    return "\n".join(
        [
            "# Control loop timing",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `experiments/bench/control_loop.py`.",
            "",
            f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            f"- Python {platform.python_version()}, {versions}",
            f"- Load average (1, 5, 15 min) at the start: {start}; at the end: {end}. The machine may be shared:"
            " other processes' load shows up as jitter and misses.",
            f"- Rerun: `{command}`",
            "",
            f"`ControlLoop(..., realtime=True)` against `SimRobot(tiago)` (48 joints) for {seconds:g} s of wall time"
            " per row, trivial policy: hold the home pose (one 48-joint position command per tick).",
            "**sim** also steps the physics each tick (the World's control rate equals the loop's: 50 Hz = 4 x 5 ms,"
            " 100 Hz = 2 x 5 ms, 500 Hz = 1 x 2 ms physics steps); **loop only** does not, which separates the"
            " loop's own timing from the physics cost.",
            "Jitter = |actual period - 1/rate|; work = observe + policy + command (+ physics) per tick;"
            " a miss is a tick whose work ended after the next tick was due.",
            "",
            "| rate Hz | kind | ticks | achieved Hz | jitter p50 ms | jitter p99 ms | jitter max ms |"
            " work p50 ms | work p99 ms | misses |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time per row (default 5)")
    parser.add_argument("--quick", action="store_true", help="1 s per row and print the table only")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file to write")
    parser.add_argument("--rates", type=float, nargs="+", default=sorted(WORLD_FOR_RATE), help="rates in Hz")
    args = parser.parse_args(argv)
    bad = [r for r in args.rates if r not in WORLD_FOR_RATE]
    if bad:
        parser.error(f"rates must be among {sorted(WORLD_FOR_RATE)}, got {bad}")
    seconds = 1.0 if args.quick else args.seconds
    load_start = os.getloadavg()
    rows = []
    for rate in args.rates:
        for kind, physics in (("sim", True), ("loop only", False)):
            stats = run_row(rate, seconds, physics)
            rows.append(row(kind, stats))
            print(f"{rate:g} Hz {kind}: {stats.summary()}", flush=True)
    text = report(rows, seconds, list(argv if argv is not None else sys.argv[1:]), (load_start, os.getloadavg()))
    if args.quick and args.out == DEFAULT_OUT:
        print(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
