"""Care scenarios in-process and through the bridge, side by side -> experiments/results/scenarios_bridge.md.

Each scenario runs twice per seed with the same room: ``ScenarioRun`` in this process (lockstep
with the simulation), and ``tianji demo NAME --robot tcp://...`` against ``tianji bridge serve
--robot scenario:NAME?seed=S`` started for it (the room and its events on the server, the
skills in real time on the client, both in their own processes). Run from the repository root::

    python experiments/bench/scenarios_bridge.py                         # every scenario, seed 0
    python experiments/bench/scenarios_bridge.py --scenarios fall_response fetch_water --seeds 0 1

The bridge runs are real time: a 2-core machine running something else beside them slows the
server's physics (it skips ticks it cannot make) and the client's loop alike, so run it alone.
"""

from __future__ import annotations

import argparse
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "results" / "scenarios_bridge.md"
CLI = [sys.executable, "-c", "from tianji.cli import main; main()"]


def in_process(scenario: str, seed: int) -> dict[str, Any]:
    """One in-process run (no video): status, reason, sim and wall seconds, largest force."""
    from tianji.scenario import load
    from tianji.scenario_run import ScenarioRun

    o = ScenarioRun(load(scenario), seed=seed, video=False).run()
    return {"status": o.status, "reason": o.reason, "sim": o.sim_seconds, "wall": o.wall_seconds, "force": o.max_force}


def through_bridge(scenario: str, seed: int) -> dict[str, Any]:
    """One run of ``tianji demo`` against the served scenario; the figures read from its report."""
    from tianji.bridge.spawn import served_in_subprocess

    driver = f"scenario:{scenario}?seed={seed}"
    with tempfile.TemporaryDirectory() as out, served_in_subprocess(driver, "--controller-timeout", "5") as endpoint:
        started = time.perf_counter()
        run = subprocess.run(
            [*CLI, "demo", scenario, "--seed", str(seed), "--robot", endpoint, "--out", out],
            capture_output=True,
            text=True,
            timeout=900,
        )
        wall = time.perf_counter() - started
        reports = list(Path(out).glob(f"{scenario}/*/report.md"))
        if not reports:
            return {
                "status": "error",
                "reason": (run.stderr or run.stdout)[-300:],
                "sim": 0.0,
                "wall": wall,
                "force": 0,
            }
        text = reports[0].read_text()
        status = re.search(r"^# .*: (\w+)$", text, re.M)
        reason = re.search(r"^- Result: \*\*\w+\*\*: (.*)$", text, re.M)
        sim = re.search(r"^- Simulated ([\d.]+) s", text, re.M)
        force = re.search(r"Largest contact force on the patient: \*\*([\d.]+) N", text)
        return {
            "status": status.group(1).lower() if status else "?",
            "reason": reason.group(1) if reason else "",
            "sim": float(sim.group(1)) if sim else 0.0,
            "wall": wall,
            "force": float(force.group(1)) if force else 0.0,
        }


def main(argv: list[str] | None = None) -> int:
    from tianji.scenario import available

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="*", default=None, help="scenario names (default: all)")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0], help="room seeds (default: 0)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    names = args.scenarios or available()
    rows = []
    started = time.perf_counter()
    for name in names:
        for seed in args.seeds:
            local = in_process(name, seed)
            remote = through_bridge(name, seed)
            rows.append((name, seed, local, remote))
            print(
                f"{name} seed {seed}: in-process {local['status']}, through the bridge {remote['status']}", flush=True
            )
    same = sum(a["status"] == b["status"] for _, _, a, b in rows)
    lines = [
        "# Care scenarios in-process and through the bridge",
        "",
        f"`{' '.join(['python experiments/bench/scenarios_bridge.py', shlex.join(argv or sys.argv[1:])]).strip()}`",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {platform.machine()},"
        f" {time.perf_counter() - started:.0f} s wall. In-process: `ScenarioRun` in lockstep with the simulation."
        " Bridge: `tianji demo NAME --seed S --robot tcp://...` against `tianji bridge serve --robot"
        " scenario:NAME?seed=S` on 127.0.0.1 (server and client in their own processes, in real time; the head-camera"
        " frames for perception come over the bridge; its wall time includes the command's start-up). Same seed,"
        " same room; perception in the loop and the rules planner in both.",
        "",
        "| scenario | seed | in-process | sim s | wall s | max N | bridge | sim s | wall s | max N | bridge reason |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for name, seed, a, b in rows:
        reason = "" if b["status"] == "succeeded" else b["reason"][:140].replace("|", "/")
        lines.append(
            f"| {name} | {seed} | {a['status']} | {a['sim']:.1f} | {a['wall']:.0f} | {a['force']:.1f} |"
            f" {b['status']} | {b['sim']:.1f} | {b['wall']:.0f} | {b['force']:.1f} | {reason} |"
        )
    lines += ["", f"Same verdict in-process and through the bridge: {same} of {len(rows)} runs."]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
