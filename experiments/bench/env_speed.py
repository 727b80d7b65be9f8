"""Environment speed: env steps/s of every registered Tianji environment, against raw physics and MuJoCo.

Run from the repository root::

    python experiments/bench/env_speed.py                 # full run -> experiments/results/env_speed.md
    python experiments/bench/env_speed.py --quick         # smoke test (short runs, 1 repeat), prints only
    python experiments/bench/env_speed.py --envs tianji/G1Balance-v0 tianji/G1Walk-v0

Every environment in ``tianji.sim.envs.ENVIRONMENTS`` (or ``--envs``) and, in the same run,
Gymnasium's MuJoCo ``Humanoid-v5`` (skipped with a note when ``mujoco`` is not installed:
``pip install "gymnasium[mujoco]"``) get: env steps/s with random actions in one process and
with 2 async workers, and the cost of the environment layer against raw stepping of the same
robot model (``RawSim`` of ``sim_speed.py``, with the environment's collision model and
physics settings), timed in alternating chunks so that load from other jobs hits both alike.
Wall and CPU-time figures are both reported: this machine is shared. The columns are
explained in the results file (``COLUMNS`` below). Figures are medians over repeats.
``env_layer_breakdown.py`` splits the layer cost of an environment into the rest of its step and
its resets.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np

import tianji.sim  # noqa: F401  (registers the environments)
from tianji.sim.envs import ENVIRONMENTS

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "results" / "env_speed.md"
MUJOCO_ID = "Humanoid-v5"
WARMUP_STEPS = 20
LAYER_CHUNK = 25  # control steps per alternation in the env-layer measurement
EXTRA_VARIANTS = {  # label -> (env id, kwargs): single-process rows that show what a setting costs
    "tianji/G1Balance-v0 collision=mesh": ("tianji/G1Balance-v0", {"collision": "mesh"}),
}


def _load_sim_speed() -> ModuleType:
    """``sim_speed.py`` (beside this file) as a module: its raw baseline, timers and machine info."""
    path = Path(__file__).with_name("sim_speed.py")
    spec = importlib.util.spec_from_file_location("tianji_bench_sim_speed", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}; run from a full checkout of the repository")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sim_speed = _load_sim_speed()


def _vector_id(env_id: str) -> str:
    """Worker processes import the registering module themselves when the id names it."""
    return f"tianji.sim:{env_id}" if env_id in ENVIRONMENTS else env_id


# ---------------------------------------------------------------- measures
def random_actions(space: gym.Space, n: int = 1024, seed: int = 0) -> np.ndarray:
    """A block of uniform random actions (cycled while timing, so sampling costs nothing)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, (n, *space.shape)).astype(space.dtype)


def clocked(run: Callable[[], Any]) -> tuple[Any, float]:
    """``run()``'s result and the CPU seconds this process spent in it (robust to other jobs' load)."""
    start = time.process_time()
    result = run()
    return result, time.process_time() - start


def single_process(env_id: str, seconds: float, kwargs: dict[str, Any] | None = None) -> tuple[float, float, float]:
    """(env steps per wall s, per CPU s, mean episode length) with random actions, resets included."""
    env = gym.make(env_id, **(kwargs or {}))
    try:
        env.reset(seed=0)
        actions = random_actions(env.action_space)
        k, episodes = 0, 0

        def step() -> None:
            nonlocal k, episodes
            _, _, terminated, truncated, _ = env.step(actions[k % len(actions)])
            k += 1
            if terminated or truncated:
                episodes += 1
                env.reset()

        for _ in range(WARMUP_STEPS):
            step()
        k, episodes = 0, 0
        (calls, elapsed), cpu = clocked(lambda: sim_speed.timed_loop(step, seconds))
        return calls / elapsed, calls / cpu, calls / episodes if episodes else math.inf
    finally:
        env.close()


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc; None where that is unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def vectorized(env_id: str, seconds: float, repeats: int, num_envs: int = 2) -> tuple[list[float], list[float]]:
    """Per repeat: env steps per wall s (all workers together) of an async vector env with random actions,
    and the same per CPU s of all its processes times ``num_envs`` (what ``num_envs`` idle cores would give).
    """
    venv = gym.make_vec(_vector_id(env_id), num_envs=num_envs, vectorization_mode="async")
    pids = [p.pid for p in getattr(venv, "processes", [])]

    def cpu_now() -> float | None:
        workers = [process_cpu_seconds(pid) for pid in pids]
        if not pids or any(w is None for w in workers):
            return None
        return time.process_time() + sum(w for w in workers if w is not None)

    try:
        venv.reset(seed=0)
        actions = random_actions(venv.action_space, 256)
        k = 0

        def step() -> None:
            nonlocal k
            venv.step(actions[k % len(actions)])
            k += 1

        for _ in range(WARMUP_STEPS):
            step()
        wall, cpu = [], []
        for _ in range(repeats):
            before = cpu_now()
            calls, elapsed = sim_speed.timed_loop(step, seconds)
            after = cpu_now()
            wall.append(calls * num_envs / elapsed)
            if before is not None and after is not None and after > before:
                cpu.append(calls * num_envs / (after - before) * num_envs)
        return wall, cpu
    finally:
        venv.close()


def hold_stepper(env: gym.Env) -> Callable[[], None]:
    """One environment step with the zero (hold) action, resetting at the end of an episode."""
    hold = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(hold)
        if terminated or truncated:
            env.reset()

    return step


def interleaved(raw_step: Callable[[], None], env_step: Callable[[], None], seconds: float) -> dict[str, float]:
    """Control steps per wall and CPU second of raw physics and of the environment, timed in alternating
    chunks of LAYER_CHUNK steps for ``seconds`` each in total, so that both see the same load."""
    for _ in range(WARMUP_STEPS):
        raw_step()
        env_step()
    totals = {"raw": 0.0, "raw_cpu": 0.0, "hold": 0.0, "hold_cpu": 0.0}
    steps = 0
    while totals["raw"] + totals["hold"] < 2 * seconds:
        for key, body in (("raw", raw_step), ("hold", env_step)):
            wall, cpu = time.perf_counter(), time.process_time()
            sim_speed.timed_calls(body, LAYER_CHUNK)
            totals[key] += time.perf_counter() - wall
            totals[f"{key}_cpu"] += time.process_time() - cpu
        steps += LAYER_CHUNK
    return {key: steps / max(value, 1e-9) for key, value in totals.items()}


def env_layer(env_id: str, seconds: float) -> dict[str, float]:
    """Raw stepping of the environment's robot against the environment with the hold action (module doc)."""
    env = gym.make(env_id)
    try:
        base = env.unwrapped
        config = base.world.config
        robot = next(iter(base.robots.values()))
        sim = sim_speed.RawSim(robot.description, config)  # same model, collision model and physics settings
        try:
            physics_step, substeps = sim.client.stepSimulation, config.control_decimation

            def raw_step() -> None:
                for _ in range(substeps):
                    physics_step()

            env.reset(seed=0)
            return interleaved(raw_step, hold_stepper(env), seconds)
        finally:
            sim.close()
    finally:
        env.close()


class SimulationClock:
    """Wall seconds ``world`` spends inside PyBullet's ``stepSimulation`` (``inside``), timed around each call."""

    def __init__(self, world: Any) -> None:
        self.inside = 0.0
        simulate = world._step_simulation

        def timed_simulation() -> None:
            start = time.perf_counter()
            simulate()
            self.inside += time.perf_counter() - start

        world._step_simulation = timed_simulation


def physics_share(env_id: str, seconds: float) -> float:
    """Share of the environment's step time (random actions, resets included) spent inside PyBullet's
    ``stepSimulation``, timed in the same process around each call; the layer cost is 1 / share - 1.

    This is the environment layer's cost over raw physics of the *same* world (task objects, furniture
    and particles included), which the raw-robot baseline cannot give for the care environments."""
    env = gym.make(env_id)
    try:
        clock = SimulationClock(env.unwrapped.world)
        env.reset(seed=0)
        actions = random_actions(env.action_space)
        k = 0

        def step() -> None:
            nonlocal k
            _, _, terminated, truncated, _ = env.step(actions[k % len(actions)])
            k += 1
            if terminated or truncated:
                env.reset()

        for _ in range(WARMUP_STEPS):
            step()
        clock.inside = 0.0
        _, elapsed = sim_speed.timed_loop(step, seconds)
        return clock.inside / elapsed
    finally:
        env.close()


def mujoco_layer(seconds: float) -> dict[str, float]:
    """As :func:`env_layer` for Humanoid-v5: ``mj_step`` x frame_skip against the env (no termination)."""
    import mujoco

    env = gym.make(MUJOCO_ID, terminate_when_unhealthy=False)
    try:
        env.reset(seed=0)
        model, data, skip = env.unwrapped.model, env.unwrapped.data, env.unwrapped.frame_skip

        def raw_step() -> None:
            data.ctrl[:] = 0.0
            mujoco.mj_step(model, data, nstep=skip)

        return interleaved(raw_step, hold_stepper(env), seconds)
    finally:
        env.close()


def describe(env_id: str) -> dict[str, str]:
    """Robot and physics settings of an environment, for the table."""
    if env_id == MUJOCO_ID:
        env = gym.make(env_id)
        u = env.unwrapped
        dt, skip = float(u.model.opt.timestep), int(u.frame_skip)
        env.close()
        return {
            "robot": "MuJoCo humanoid (17 act.)",
            "physics": f"1/{1 / dt:.0f} s x {skip}",
            "rate": f"{1 / (dt * skip):.0f}",
        }
    env = gym.make(env_id)
    base = env.unwrapped
    cfg = base.world.config
    robots = ", ".join(r.description.name for r in base.robots.values())
    collision = {r.description.collision for r in base.robots.values()}
    env.close()
    return {
        "robot": f"{robots} ({'/'.join(sorted(collision))} collision)",
        "physics": f"1/{1 / cfg.timestep:.0f} s x {cfg.control_decimation}, {cfg.solver_iterations} it",
        "rate": f"{1 / (cfg.timestep * cfg.control_decimation):.0f}",
    }


def measure(env_id: str, seconds: float, repeats: int, note: Callable[[str], None]) -> dict[str, Any]:
    """All figures for one environment (Tianji or MuJoCo); medians over ``repeats``."""
    row: dict[str, Any] = {"env": env_id, **describe(env_id)}
    runs: dict[str, list[float]] = {}
    for i in range(repeats):  # alternate the measurements, so that a noisy neighbour slows them alike
        note(f"  {env_id}: repeat {i + 1}/{repeats}")
        single, single_cpu, episode = single_process(env_id, seconds)
        layer = mujoco_layer(seconds) if env_id == MUJOCO_ID else env_layer(env_id, seconds)
        if env_id != MUJOCO_ID:
            layer["share"] = physics_share(env_id, seconds)
        for key, value in {"single": single, "single_cpu": single_cpu, "episode": episode, **layer}.items():
            runs.setdefault(key, []).append(value)
    runs["vector"], runs["vector_cpu"] = vectorized(env_id, seconds, repeats)
    row.update({key: statistics.median(values) for key, values in runs.items() if values})
    row["runs"] = runs
    row["vector_ratio"] = row["vector"] / row["single"]
    if "vector_cpu" in row:
        row["vector_ratio_cpu"] = row["vector_cpu"] / row["single_cpu"]
    row["layer_ratio"] = statistics.median(e / r for e, r in zip(runs["hold"], runs["raw"], strict=True))
    row["layer_ratio_cpu"] = statistics.median(e / r for e, r in zip(runs["hold_cpu"], runs["raw_cpu"], strict=True))
    return row


def measure_variant(label: str, env_id: str, kwargs: dict[str, Any], seconds: float, repeats: int) -> dict[str, Any]:
    """Single-process figures of an environment with non-default arguments, alternated with the defaults;
    ``vs_default`` is the median per-CPU-second ratio variant / default over the pairs."""
    runs, defaults = [], []
    for _ in range(repeats):
        defaults.append(single_process(env_id, seconds))
        runs.append(single_process(env_id, seconds, kwargs))
    return {
        "env": label,
        "single": statistics.median(r[0] for r in runs),
        "single_cpu": statistics.median(r[1] for r in runs),
        "episode": statistics.median(r[2] for r in runs),
        "vs_default": statistics.median(r[1] / d[1] for r, d in zip(runs, defaults, strict=True)),
    }


# ---------------------------------------------------------------- reporting
HEADER = (
    "environment",
    "robot",
    "physics",
    "Hz",
    "1 process steps/s",
    "per CPU s",
    "episode len",
    "2 workers steps/s",
    "2w / 1",
    "2w / 1 (CPU)",
    "raw ctrl steps/CPU s",
    "env hold steps/CPU s",
    "env / raw (CPU)",
    "env / raw (wall)",
    "in stepSimulation",
    "layer cost",
)


COLUMNS = """Columns: **1 process** = `gymnasium.make(id)` with random actions, resets included, env steps per
wall second and per CPU second of the process (the CPU figure is what an idle core would give; wall
figures drop with the machine's load); **episode len** = mean episode length under random actions
(short episodes mean many resets; "> run": none ended); **2 workers** = `gymnasium.make_vec(id,
num_envs=2, vectorization_mode="async")`, steps of both workers per wall second, and **2w / 1** its
ratio to 1 process; **2w / 1 (CPU)** = 2 x (steps per CPU second of the main process and both workers
together) / 1 process per CPU s: the scaling two idle cores would give, IPC included, which the wall
figure cannot show while other jobs load the machine (an upper bound: it ignores wake-up latency);
**raw ctrl steps/CPU s** = raw PyBullet stepping of the environment's robot model with the same
collision model, timestep, substeps and solver iterations (`RawSim` of `sim_speed.py`, motors set
once), in control steps; **env hold steps/CPU s** = the environment stepped with the zero (hold)
action, alternating with the raw run in chunks of 25 control steps; **env / raw** = their ratio per
CPU second and per wall second (1 = the environment layer costs nothing; 0.91 = 10% more time than
raw physics). Task objects (cube, cup, ...) are not in the raw run. For `Humanoid-v5` the raw
baseline is `mujoco.mj_step` x frame_skip and the hold run uses `terminate_when_unhealthy=False`.
**in stepSimulation** = share of the environment's step time (random actions, resets included) spent
inside PyBullet's `stepSimulation`, timed around each call in the same process, so load from other
jobs hits both sides alike; **layer cost** = 1 / share - 1, the time the environment layer adds over
raw physics of the *same* world (task objects, furniture and particles included, which the raw-robot
run lacks: for the care environments the env / raw columns mostly measure the room, not the layer)."""


def table_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The results table in markdown (also printed on the terminal)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---|" + "---:|" * (len(HEADER) - 3)]
    return lines + ["| " + " | ".join(_cells(r)) + " |" for r in rows]


def _cells(r: dict[str, Any]) -> list[str]:
    head = [f"`{r['env']}`", r.get("robot", ""), r.get("physics", ""), r.get("rate", "")]
    episode = f"{r['episode']:.0f}" if math.isfinite(r["episode"]) else "> run"  # no episode ended in a run
    single = [f"{r['single']:,.0f}", f"{r['single_cpu']:,.0f}", episode]
    if "vector" not in r:  # a variant row: single process only
        return [*head, *single, *[""] * 9]
    return [
        *head,
        *single,
        f"{r['vector']:,.0f}",
        f"{r['vector_ratio']:.2f}",
        f"{r['vector_ratio_cpu']:.2f}" if "vector_ratio_cpu" in r else "n/a",
        f"{r['raw_cpu']:,.0f}",
        f"{r['hold_cpu']:,.0f}",
        f"{r['layer_ratio_cpu']:.2f}",
        f"{r['layer_ratio']:.2f}",
        f"{r['share']:.0%}" if "share" in r else "n/a",
        f"{1 / r['share'] - 1:.0%}" if "share" in r else "n/a",
    ]


def to_markdown(
    rows: Sequence[dict[str, Any]],
    notes: Sequence[str],
    *,
    command: str,
    seconds: float,
    repeats: int,
    total_s: float,
    load: tuple[float, float],
) -> str:
    """The results file: machine, rerun command, method, the table and notes."""
    info = sim_speed.machine_info()
    now = datetime.now().astimezone()
    lines = [
        "# Environment speed",
        "",
        f"Measured {now:%Y-%m-%d %H:%M %Z} by `experiments/bench/env_speed.py`.",
        "",
        f"- Machine: {info['cpu']}, {info['cores']} cores (`os.cpu_count()`), {info['platform']}",
        f"- Python {info['python']}, pybullet {info['pybullet']}, numpy {info['numpy']}, gymnasium {gym.__version__}"
        + (f", mujoco {_mujoco_version()}" if _mujoco_version() else ""),
        f"- Load average (1 min) at start / end: {load[0]:.1f} / {load[1]:.1f} (shared machine, other jobs alongside)",
        f"- Rerun: `{command}`",
        f"- The benchmark took {total_s:.0f} s of wall time; figures are medians of {repeats} run(s) of {seconds:g} s",
        "",
        COLUMNS,
        "",
        *table_lines(rows),
    ]
    for r in rows:
        if "vs_default" in r:
            notes = [
                *notes,
                f"`{r['env']}`: {r['vs_default']:.2f}x the env steps per CPU s of the default settings"
                " (median of paired runs, alternated).",
            ]
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    targets = target_lines(rows)
    if targets:
        lines += ["", "## Speed targets of issue 4", "", *targets]
    return "\n".join(lines) + "\n"


def target_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per G1 environment and target: the figures and whether they meet it."""

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    out = []
    for r in rows:
        if not r["env"].startswith("tianji/") or "vector" not in r:
            continue
        env = f"`{r['env']}`"
        cost = 1 / r["share"] - 1 if "share" in r else math.inf
        out.append(
            f"- {env}, environment layer at most 10% over raw physics: {cost:.0%} of the time inside"
            f" stepSimulation added around it (random actions, resets included): {verdict(cost <= 0.10)}."
        )
        if not r["env"].startswith("tianji/G1"):
            continue
        out.append(
            f"- {env}, the same against a separate raw run of the robot alone with the hold action: env / raw ="
            f" {r['layer_ratio_cpu']:.2f} per CPU s: {verdict(r['layer_ratio_cpu'] >= 0.91)} (>= 0.91)."
        )
        out.append(
            f"- {env}, >= 1,000 env steps/s in one process: {r['single']:,.0f} per wall s here,"
            f" {r['single_cpu']:,.0f} per CPU s (an idle core): {verdict(r['single_cpu'] >= 1000)} per CPU s,"
            f" {verdict(r['single'] >= 1000)} in wall time on this loaded machine."
        )
        cpu = r.get("vector_ratio_cpu")
        cpu_text = f", {cpu:.2f} from CPU time" if cpu is not None else ""
        out.append(
            f"- {env}, 2 workers >= 1.7x one: {r['vector_ratio']:.2f} wall{cpu_text}:"
            f" {verdict(max(r['vector_ratio'], cpu or 0.0) >= 1.7)}."
        )
    return out


def _mujoco_version() -> str | None:
    try:
        import mujoco
    except ImportError:
        return None
    return str(mujoco.__version__)


# --------------------------------------------------------------------- main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="wall time per timed run (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    parser.add_argument(
        "--envs",
        nargs="+",
        metavar="ID",
        default=None,
        help="environment ids to measure (default: every registered one)",
    )
    parser.add_argument("--no-mujoco", action="store_true", help=f"skip the {MUJOCO_ID} comparison row")
    parser.add_argument("--no-variants", action="store_true", help="skip the extra single-process variant rows")
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 0.3 s runs, 1 repeat; writes a file only when --out is given"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"markdown file (default {DEFAULT_OUT.relative_to(REPO)}, none with --quick)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeats = 0.3, 1
    if args.out is None and not args.quick:
        args.out = DEFAULT_OUT
    if args.seconds <= 0 or args.repeats < 1:
        parser.error("--seconds must be positive and --repeats at least 1")
    known = sorted(ENVIRONMENTS)
    args.envs = args.envs or known
    unknown = [e for e in args.envs if e not in ENVIRONMENTS]
    if unknown:
        parser.error(f"unknown environment id(s) {unknown}; registered: {', '.join(known)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the markdown file; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    start, load_start = time.perf_counter(), os.getloadavg()[0]

    def note(text: str) -> None:
        print(text, flush=True)

    rows, notes = [], []
    for env_id in args.envs:
        note(f"{env_id} ...")
        rows.append(measure(env_id, args.seconds, args.repeats, note))
    if not args.no_variants:
        for label, (env_id, kwargs) in EXTRA_VARIANTS.items():
            if env_id in args.envs:
                note(f"{label} ...")
                rows.append(measure_variant(label, env_id, kwargs, args.seconds, args.repeats))
    if args.no_mujoco:
        notes.append(f"{MUJOCO_ID} skipped (--no-mujoco).")
    elif _mujoco_version() is None:
        notes.append(f'{MUJOCO_ID} skipped: mujoco is not installed (`pip install "gymnasium[mujoco]"`).')
    else:
        note(f"{MUJOCO_ID} ...")
        rows.append(measure(MUJOCO_ID, args.seconds, args.repeats, note))
    total = time.perf_counter() - start
    print("\n".join(table_lines(rows)))
    for n in notes:
        print(n)
    print(f"benchmark took {total:.0f} s")
    if args.out is not None:
        command = shlex.join(["python", "experiments/bench/env_speed.py", *argv])
        text = to_markdown(
            rows,
            notes,
            command=command,
            seconds=args.seconds,
            repeats=args.repeats,
            total_s=total,
            load=(load_start, os.getloadavg()[0]),
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
