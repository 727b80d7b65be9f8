"""Simulation speed: raw PyBullet against Tianji's control loop, and camera render rates.

Run from the repository root::

    python experiments/bench/sim_speed.py          # full run -> experiments/results/sim_speed.md
    python experiments/bench/sim_speed.py --quick  # smoke test (0.5 s, 1 repeat), prints only

Physics: for each robot, (a) a bare PyBullet DIRECT client set up like a Tianji World (same
timestep, gravity, solver iterations, ground, prepared URDF, load flags, spawn pose, home
pose and position motors set once) calling ``stepSimulation`` in a loop, and (b) a Tianji
``World`` with ``world.add_robot`` driven the way a controller drives it: ``robot.command``,
``world.step`` and ``robot.observe`` every control step. Both report physics steps per
second; their ratio is Tianji's overhead. Render: frames per second of the tiny renderer
(RGB, depth and segmentation) in the care room and through TIAGo's head camera.

Every figure is the median of several timed runs, each on a freshly built world after a
short warm-up; raw and Tianji runs alternate so that load on a shared machine hits both.
Each Tianji run covers the same simulated interval as the raw run before it (the same
number of control steps from the same start, bit-identical physics), so the ratio
measures Tianji's Python layer and nothing else.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as pb
from pybullet_utils.bullet_client import BulletClient

from tianji.control.robot import BaseType, Command
from tianji.machine import cpu_name
from tianji.sim import scene as scenes
from tianji.sim.camera import CameraIntrinsics, render
from tianji.sim.registry import RobotDescription, get_robot, robot_names
from tianji.sim.urdf import prepare_urdf
from tianji.sim.world import World, WorldConfig, quiet_native_output

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "results" / "sim_speed.md"
DEFAULT_ROBOTS = ("g1", "g1_hands", "allegro", "tiago", "human")
RENDER_SIZES = ((128, 128), (320, 240))
WARMUP_CONTROL_STEPS = 30  # 0.5 s simulated, before every timed physics run
WARMUP_FRAMES = 2
# the same fallbacks SimRobot uses when the URDF gives no limit
DEFAULT_EFFORT_LIMIT = 100.0
BASE_MAX_FORCE = 3000.0


# ------------------------------------------------------------------ timing
def timed_loop(body: Callable[[], object], seconds: float) -> tuple[int, float]:
    """Call ``body`` until ``seconds`` of wall time have passed; return (calls, elapsed s)."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        body()
        calls += 1
        now = time.perf_counter()
    return calls, now - start


def timed_calls(body: Callable[[], object], calls: int) -> float:
    """Call ``body`` ``calls`` times; return the elapsed wall time in seconds."""
    start = time.perf_counter()
    for _ in range(calls):
        body()
    return time.perf_counter() - start


# -------------------------------------------------------------- raw PyBullet
class RawSim:
    """A bare PyBullet client holding one robot, set up as World + SimRobot set it up.

    Mirrors everything that changes the physics cost (ground, solver, joint damping,
    released passive joints, mimic targets, the mobile base's planar constraint), so the
    difference to Tianji is only what Tianji does in Python around ``stepSimulation``.
    """

    def __init__(self, name: str | RobotDescription, config: WorldConfig) -> None:
        desc = name if isinstance(name, RobotDescription) else get_robot(name)
        with quiet_native_output():
            self.client = BulletClient(connection_mode=pb.DIRECT)
        c = self.client
        c.setTimeStep(config.timestep)
        c.setGravity(0, 0, config.gravity)
        c.setPhysicsEngineParameter(numSolverIterations=config.solver_iterations, deterministicOverlappingPairs=1)
        ground = c.createMultiBody(0, c.createCollisionShape(pb.GEOM_PLANE))
        c.changeDynamics(ground, -1, lateralFriction=0.9)

        prepared = prepare_urdf(
            desc.urdf_path(),
            desc.package_dirs,
            collision_from_visual=desc.collision_from_visual,
            collision=desc.collision,
        )
        pos = (0.0, 0.0, desc.spawn_height)
        # composed with a zero yaw as SimRobot does, so the spawn pose matches to the bit
        quat = pb.multiplyTransforms(
            (0, 0, 0), pb.getQuaternionFromEuler((0, 0, 0)), (0, 0, 0), pb.getQuaternionFromEuler(desc.spawn_rpy)
        )[1]
        with quiet_native_output():
            body = c.loadURDF(
                str(prepared.path),
                pos,
                quat,
                useFixedBase=desc.base is BaseType.FIXED,
                flags=pb.URDF_USE_INERTIA_FROM_FILE,
            )
        self.body = body

        joints: dict[str, tuple[int, float, float, float]] = {}  # name -> index, lo, hi, effort
        for j in range(c.getNumJoints(body)):
            info = c.getJointInfo(body, j)
            if info[2] == pb.JOINT_FIXED:
                continue
            lo, hi = float(info[8]), float(info[9])
            if lo > hi:  # continuous joint
                lo, hi = -math.inf, math.inf
            effort = float(info[10]) if info[10] > 0 else DEFAULT_EFFORT_LIMIT
            joints[info[1].decode()] = (j, lo, hi, effort)
        self.dof = len(joints)

        target = {n: float(np.clip(desc.home.get(n, 0.0), lo, hi)) for n, (_, lo, hi, _) in joints.items()}
        for m in prepared.mimics:
            if m.joint in joints and m.leader in joints:
                _, lo, hi, _ = joints[m.joint]
                target[m.joint] = float(np.clip(m.multiplier * target[m.leader] + m.offset, lo, hi))
        for n, (j, _, _, _) in joints.items():
            c.resetJointState(body, j, target[n])
        for pattern, damping in desc.joint_damping.items():
            for n, (j, _, _, _) in joints.items():
                if re.fullmatch(pattern, n):
                    c.changeDynamics(body, j, jointDamping=damping)

        passive = [n for n in joints if any(re.fullmatch(p, n) for p in desc.passive_joints)]
        if passive:
            idx = [joints[n][0] for n in passive]
            c.setJointMotorControlArray(
                body,
                idx,
                pb.VELOCITY_CONTROL,
                targetVelocities=[0.0] * len(idx),
                forces=[0.0] * len(idx),
            )
        active = [n for n in joints if n not in passive]
        c.setJointMotorControlArray(
            body,
            [joints[n][0] for n in active],
            pb.POSITION_CONTROL,
            targetPositions=[target[n] for n in active],
            targetVelocities=[0.0] * len(active),
            forces=[joints[n][3] for n in active],
            positionGains=[desc.kp] * len(active),
            velocityGains=[desc.kd] * len(active),
        )
        if desc.base is BaseType.MOBILE:
            cid = c.createConstraint(
                body,
                -1,
                -1,
                -1,
                pb.JOINT_FIXED,
                [0, 0, 0],
                [0, 0, 0],
                pos,
                childFrameOrientation=quat,
            )
            c.changeConstraint(cid, maxForce=BASE_MAX_FORCE)

    def close(self) -> None:
        """Disconnect the client."""
        self.client.disconnect()


def _raw_run(name: str | RobotDescription, config: WorldConfig, seconds: float) -> tuple[float, int]:
    """Raw steps/s over ``seconds`` of wall time, and the control steps that took."""
    sim = RawSim(name, config)
    try:
        step = sim.client.stepSimulation
        decimation = config.control_decimation

        def control_step() -> None:  # Tianji's granularity, so the clock is read as often
            for _ in range(decimation):
                step()

        for _ in range(WARMUP_CONTROL_STEPS):
            control_step()
        calls, elapsed = timed_loop(control_step, seconds)
        return calls * decimation / elapsed, calls
    finally:
        sim.close()


def _tianji_run(name: str, config: WorldConfig, control_steps: int) -> float:
    """Steps/s of Tianji's control loop over ``control_steps`` control steps."""
    with World(config) as world:
        robot = world.add_robot(name)
        home = robot.spec.home.copy()

        def control_step() -> None:
            robot.command(Command(targets=home))
            world.step()
            robot.observe()

        for _ in range(WARMUP_CONTROL_STEPS):
            control_step()
        elapsed = timed_calls(control_step, control_steps)
        return control_steps * config.control_decimation / elapsed


def measure_physics(
    robot: str, seconds: float = 3.0, repeats: int = 3, config: WorldConfig | None = None
) -> dict[str, Any]:
    """Physics steps per second of raw PyBullet and of Tianji's control loop for one robot.

    Each repeat times raw PyBullet for ``seconds`` of wall time, then Tianji's loop over the
    same number of control steps from the same start, so both do identical physics work.

    Returns robot, dof, raw and tianji (medians, steps/s), their per-run lists, ratio
    (tianji / raw), real-time factor (simulated s per wall s of the Tianji loop) and the
    Tianji overhead per control step in microseconds.
    """
    config = config or WorldConfig()
    raw_runs, tianji_runs = [], []
    for _ in range(repeats):  # alternate, so a noisy neighbour slows both alike
        rate, control_steps = _raw_run(robot, config, seconds)
        raw_runs.append(rate)
        # the same simulated interval: the per-step cost drifts as a robot settles on the floor
        tianji_runs.append(_tianji_run(robot, config, control_steps))
    raw, tianji = statistics.median(raw_runs), statistics.median(tianji_runs)
    dec = config.control_decimation
    return {
        "robot": robot,
        "dof": _dof(robot),
        "raw": raw,
        "tianji": tianji,
        "raw_runs": raw_runs,
        "tianji_runs": tianji_runs,
        "ratio": tianji / raw,
        "realtime_factor": tianji * config.timestep,
        "overhead_us": (dec / tianji - dec / raw) * 1e6,
    }


def _dof(robot: str) -> int:
    desc = get_robot(robot)
    if desc.dof is not None:
        return desc.dof
    sim = RawSim(robot, WorldConfig())
    try:
        return sim.dof
    finally:
        sim.close()


# ------------------------------------------------------------------ render
def _fps(render_once: Callable[[], object], seconds: float, repeats: int) -> tuple[float, list[float]]:
    for _ in range(WARMUP_FRAMES):
        render_once()
    runs = []
    for _ in range(repeats):
        frames, elapsed = timed_loop(render_once, seconds)
        runs.append(frames / elapsed)
    return statistics.median(runs), runs


def measure_render(seconds: float = 2.0, repeats: int = 3, scene_name: str = "care_room") -> list[dict[str, Any]]:
    """Frames per second of the tiny renderer (RGB + depth + segmentation) in a scene.

    One row per measurement: what, size ("WxH"), fps (median) and runs. Rows: the scene's
    "room" camera pose at each of RENDER_SIZES (fov 60), and TIAGo's head camera through
    ``robot.observe(cameras=["head"])`` at its configured size.
    """
    rows = []
    with quiet_native_output():
        care = scenes.load(scene_name)
    with care:
        client, pose = care.world.client, care.cameras["room"].pose
        for w, h in RENDER_SIZES:
            intr = CameraIntrinsics(w, h, 60.0)
            fps, runs = _fps(lambda i=intr: render(client, i, pose), seconds, repeats)
            rows.append(
                {
                    "what": f"{scene_name} room camera, render()",
                    "size": f"{w}x{h}",
                    "fps": fps,
                    "runs": runs,
                }
            )
        tiago = next(r for r in care.robots.values() if r.description.name == "tiago")
        mount = tiago.description.cameras["head"]
        fps, runs = _fps(lambda: tiago.observe(cameras=["head"]), seconds, repeats)
        rows.append(
            {
                "what": "TIAGo head camera, observe(cameras=['head'])",
                "size": f"{mount.width}x{mount.height}",
                "fps": fps,
                "runs": runs,
            }
        )
    return rows


# ----------------------------------------------------------------- reports
def machine_info() -> dict[str, str]:
    """CPU model, core count and the versions that matter for the figures."""
    return {
        "cpu": cpu_name(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "pybullet": importlib.metadata.version("pybullet"),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def to_markdown(
    physics: Sequence[dict[str, Any]],
    renders: Sequence[dict[str, Any]],
    *,
    command: str,
    seconds: float,
    repeats: int,
    render_seconds: float,
    total_s: float | None = None,
    config: WorldConfig | None = None,
) -> str:
    """The results file: what was measured, on what, how to rerun it, and both tables."""
    config = config or WorldConfig()
    info = machine_info()
    now = datetime.now().astimezone()
    dec, iters = config.control_decimation, config.solver_iterations
    lines = [
        "# Simulation speed",
        "",
        f"Measured {now:%Y-%m-%d %H:%M %Z} by `experiments/bench/sim_speed.py`.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores (`os.cpu_count()`), {info['platform']}",
        f"- Python {info['python']}, pybullet {info['pybullet']}, numpy {info['numpy']}",
        f"- Rerun: `{command}`",
    ]
    if total_s is not None:
        lines.append(f"- Whole benchmark took {total_s:.0f} s of wall time")
    lines += [
        "",
        f"Figures are medians of {repeats} timed run(s) on a shared, noisy machine: absolute",
        "rates move from run to run; the ratios are the meaningful part.",
        "",
        "## Physics",
        "",
        f"Physics steps per second (timestep {config.timestep:.6g} s, {iters} solver iterations,",
        f"{dec} physics steps per control step). Each repeat builds a fresh world, warms up for",
        f"{WARMUP_CONTROL_STEPS} control steps, times raw PyBullet for {seconds:g} s of wall time, then",
        "times Tianji over the same number of control steps from the same start: the two",
        "produce bit-identical states, so they do the same physics work and the difference is",
        "Tianji's Python layer alone (a robot's cost per step drifts as it settles on the floor).",
        "",
        "- **raw**: a bare PyBullet DIRECT client with the same settings, ground, prepared URDF,",
        "  load flags, spawn pose, home pose, joint damping, passive joints and mobile-base",
        "  constraint, position motors set once, then `stepSimulation` in a loop.",
        "- **tianji**: `World` + `world.add_robot(name)`, and every control step",
        "  `robot.command(Command(targets=spec.home))`, `world.step()`, `robot.observe()`.",
        "- **ratio** = tianji / raw; **real-time factor** = simulated seconds per wall second",
        "  of the Tianji loop; **overhead** = extra wall time per control step in that loop.",
        "  The overhead is a difference of two timings: it is sharp for cheap physics (allegro)",
        "  and within run-to-run noise for robots whose control step costs milliseconds.",
        "",
        "| robot | DoF | raw steps/s | tianji steps/s | ratio | real-time factor | overhead µs/control step |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in physics:
        lines.append(
            f"| {r['robot']} | {r['dof']} | {r['raw']:,.0f} | {r['tianji']:,.0f}"
            f" | {r['ratio']:.2f} | {r['realtime_factor']:.1f}x | {r['overhead_us']:,.0f} |"
        )
    if not renders:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "## Rendering",
        "",
        "PyBullet's tiny (CPU) renderer, RGB + depth + segmentation, no shadows, in the care",
        'room (`tianji.sim.scene.load("care_room")`: walls, furniture, TIAGo, patient, G1),',
        f"{render_seconds:g} s per run. The room camera uses the scene's `room` pose with a 60°",
        "vertical field of view; the head-camera row includes the observation around the render.",
        "",
        "| what | size | frames/s |",
        "|---|---|---:|",
    ]
    for r in renders:
        lines.append(f"| {r['what']} | {r['size']} | {r['fps']:.1f} |")
    return "\n".join(lines) + "\n"


def print_tables(physics: Sequence[dict[str, Any]], renders: Sequence[dict[str, Any]]) -> None:
    """Both tables on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Physics steps per second (median)")
    for col in (
        "robot",
        "DoF",
        "raw steps/s",
        "tianji steps/s",
        "ratio",
        "real-time factor",
        "overhead µs/ctrl step",
    ):
        table.add_column(col, justify="left" if col == "robot" else "right")
    for r in physics:
        table.add_row(
            r["robot"],
            str(r["dof"]),
            f"{r['raw']:,.0f}",
            f"{r['tianji']:,.0f}",
            f"{r['ratio']:.2f}",
            f"{r['realtime_factor']:.1f}x",
            f"{r['overhead_us']:,.0f}",
        )
    console.print(table)
    if not renders:
        return
    table = Table(title="Render frames per second (median)")
    for col in ("what", "size", "frames/s"):
        table.add_column(col, justify="right" if col == "frames/s" else "left")
    for r in renders:
        table.add_row(r["what"], r["size"], f"{r['fps']:.1f}")
    console.print(table)


# -------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per physics run (default 3)")
    parser.add_argument("--render-seconds", type=float, default=2.0, help="wall time per render run (default 2)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per measurement; the median is reported (default 3)",
    )
    parser.add_argument(
        "--robots",
        nargs="+",
        default=list(DEFAULT_ROBOTS),
        metavar="NAME",
        help=f"robots to measure (default: {' '.join(DEFAULT_ROBOTS)})",
    )
    parser.add_argument("--no-render", action="store_true", help="skip the render measurements")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 0.5 s runs, 1 repeat; writes a file only when --out is given",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"markdown results file (default {DEFAULT_OUT.relative_to(REPO)}, none with --quick)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.render_seconds, args.repeats = 0.5, 0.5, 1
    if args.out is None and not args.quick:
        args.out = DEFAULT_OUT
    if args.seconds <= 0 or args.render_seconds <= 0 or args.repeats < 1:
        parser.error("--seconds and --render-seconds must be positive and --repeats at least 1")
    unknown = [r for r in args.robots if r not in robot_names()]
    if unknown:
        parser.error(f"unknown robot(s) {unknown}; known: {', '.join(robot_names())}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the tables and write the markdown file; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start = time.perf_counter()
    physics = []
    for name in args.robots:
        print(f"physics: {name} ...", flush=True)
        physics.append(measure_physics(name, args.seconds, args.repeats))
    renders = []
    if not args.no_render:
        print("render: care_room ...", flush=True)
        renders = measure_render(args.render_seconds, args.repeats)
    total = time.perf_counter() - start
    print_tables(physics, renders)
    print(f"benchmark took {total:.0f} s")
    if args.out is not None:
        command = shlex.join(["python", "experiments/bench/sim_speed.py", *argv])
        text = to_markdown(
            physics,
            renders,
            command=command,
            seconds=args.seconds,
            repeats=args.repeats,
            render_seconds=args.render_seconds,
            total_s=total,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
