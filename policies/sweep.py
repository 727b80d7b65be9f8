"""Sweeps: independent training runs over seeds and a grid of config values, gathered into one table.

Runs go to local processes by default (``jobs`` at a time, each in a fresh interpreter so torch and
PyBullet state never leak between runs) or to a Ray cluster (``ray_address``; Ray is the optional
extra ``pip install tianji[ray]``). Every run trains with :func:`tianji.policies.train.train` into its
own run folder and is then evaluated on the same seeded episodes, so grid points compare fairly.

A sweep folder ``runs/sweeps/<env>/<algo>/<timestamp>/`` holds one run folder per (grid point, seed),
``sweep.json`` (every run's settings and results) and ``sweep.md`` (the table). On Ray the run folders
are written on the node that trained them; the results come back to the sweep folder.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tianji.policies.config import ConfigError, TrainConfig, config_from_dict


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"0,3,5"`` or ``"0-2,7"`` -> the seeds, in order, without repeats."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        try:
            first, _, last = part.partition("-")
            lo, hi = int(first), int(last or first)
            if lo < 0 or hi < lo:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"--seeds: {part!r} is not a seed or a range like 0-9 (write e.g. 0-9 or 0,3,5)"
            ) from None
        seeds.extend(range(lo, hi + 1))
    return list(dict.fromkeys(seeds))


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["hyperparams.learning_rate=0.001,0.0003", "n_envs=1,2"]`` -> {key: values}; values are read as YAML."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"--grid {item!r}: write KEY=V1,V2,... e.g. hyperparams.learning_rate=0.001,0.0003")
        grid[key] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values ([{}] for an empty grid)."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def apply_point(base: TrainConfig, point: dict[str, Any], seed: int) -> TrainConfig:
    """``base`` with dotted keys of ``point`` set (``hyperparams.gamma`` sets ``hyperparams['gamma']``) and ``seed``.

    The result is validated like a config file, so a misspelled key is an error that names it.
    """
    data = base.to_dict()
    for key, value in point.items():
        *parents, leaf = key.split(".")
        node = data
        for name in parents:
            child = node.get(name)
            if child in (None, False) and name in ("her", "normalize"):  # off: a dotted key turns it on
                child = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--grid {key}: {name!r} is not a section of the config (sections hold dotted keys)")
            node[name] = child = dict(child)
            node = child
        node[leaf] = value
    data["seed"] = seed
    return config_from_dict(data, source=f"--grid {point}" if point else "sweep")


def point_label(point: dict[str, Any]) -> str:
    """A short folder-safe name for a grid point: ``learning_rate=0.001_n_envs=2``."""
    if not point:
        return "base"
    text = "_".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in point.items())
    return "".join(c if c.isalnum() or c in "=._-" else "-" for c in text)


@dataclass
class SweepRun:
    """One training run of a sweep and what it reached."""

    point: dict[str, Any]
    seed: int
    run_dir: str
    timesteps: int = 0
    wall_seconds: float = 0.0
    success_rate: float = float("nan")
    mean_return: float = float("nan")
    std_return: float = float("nan")
    error: str | None = None


def run_one(config: dict[str, Any], run_dir: str, episodes: int, eval_seed: int) -> dict[str, Any]:
    """Train one configuration into ``run_dir``, evaluate its best model; plain data in and out (for processes/Ray)."""
    from tianji.policies.evaluate import evaluate
    from tianji.policies.train import train

    cfg = config_from_dict(config, source=run_dir)
    folder = Path(run_dir)
    result = train(cfg, folder.parent, progress=False, run_dir=folder)
    evaluation = evaluate(folder, episodes=episodes, seed=eval_seed)
    return {
        "timesteps": result.timesteps,
        "wall_seconds": result.wall_seconds,
        "success_rate": evaluation.success_rate,
        "mean_return": evaluation.mean_return,
        "std_return": evaluation.std_return,
    }


def _guarded(config: dict[str, Any], run_dir: str, episodes: int, eval_seed: int) -> dict[str, Any]:
    """:func:`run_one`, with a failure reported as data so one bad run does not end the sweep."""
    try:
        return run_one(config, run_dir, episodes, eval_seed)
    except Exception as exc:  # any failure of a run is recorded, not raised
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


def run_sweep(
    base: TrainConfig,
    grid: dict[str, list[Any]],
    seeds: list[int],
    out_dir: Path,
    *,
    jobs: int = 1,
    episodes: int = 20,
    eval_seed: int = 100_000,
    ray_address: str | None = None,
    on_done: Callable[[SweepRun, int, int], None] | None = None,
) -> list[SweepRun]:
    """Train every (grid point, seed) and evaluate it; writes ``sweep.json`` and ``sweep.md`` in ``out_dir``.

    ``on_done(run, finished, total)`` is called as each run finishes (for progress display).
    """
    if not seeds:
        raise ConfigError("--seeds: no seeds given")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    tasks = [
        (point, seed, apply_point(base, point, seed), out_dir / f"{point_label(point)}_seed{seed}")
        for point in grid_points(grid)
        for seed in seeds
    ]  # every config is validated before the first run starts
    out_dir.mkdir(parents=True, exist_ok=True)
    runs: list[SweepRun] = []
    total = len(tasks)
    outcomes = _dispatch_ray(tasks, episodes, eval_seed, ray_address) if ray_address else None
    if outcomes is None:
        outcomes = _dispatch_local(tasks, episodes, eval_seed, jobs)
    for (point, seed, _, folder), outcome in outcomes:
        run = SweepRun(point=point, seed=seed, run_dir=str(folder))
        if "error" in outcome:
            run.error = outcome["error"]
        else:
            for key in ("timesteps", "wall_seconds", "success_rate", "mean_return", "std_return"):
                setattr(run, key, outcome[key])
        runs.append(run)
        write_results(runs, out_dir, base, grid, seeds, episodes, eval_seed)  # partial results survive a crash
        if on_done is not None:
            on_done(run, len(runs), total)
    return runs


Task = tuple[dict[str, Any], int, TrainConfig, Path]


def _dispatch_local(
    tasks: list[Task], episodes: int, eval_seed: int, jobs: int
) -> Iterator[tuple[Task, dict[str, Any]]]:
    """Run tasks in ``jobs`` fresh (spawned) processes; yield each as it finishes."""
    context = multiprocessing.get_context("spawn")  # no forked copies of torch or a PyBullet client
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
        pending: dict[Future[dict[str, Any]], Task] = {
            pool.submit(_guarded, task[2].to_dict(), str(task[3]), episodes, eval_seed): task for task in tasks
        }
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()


def _dispatch_ray(
    tasks: list[Task], episodes: int, eval_seed: int, address: str
) -> Iterator[tuple[Task, dict[str, Any]]]:
    """Run tasks as Ray tasks (one CPU per environment worker) on the cluster at ``address``."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--ray-address needs Ray: pip install 'tianji[ray]' (or run without it: local processes)"
        ) from None
    where = {"include_dashboard": False} if address == "local" else {"address": address}  # "local": start one here
    ray.init(**where, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = ray.remote(_guarded)
        pending = {
            remote.options(num_cpus=task[2].n_envs).remote(task[2].to_dict(), str(task[3]), episodes, eval_seed): task
            for task in tasks
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                yield pending.pop(ref), ray.get(ref)
    finally:
        ray.shutdown()


def duration(seconds: float) -> str:
    """``42 s`` under two minutes, else ``12.5 min`` (``n/a`` for no runs)."""
    if seconds != seconds:
        return "n/a"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def summary_rows(runs: list[SweepRun]) -> list[dict[str, Any]]:
    """One row per grid point: seeds run, failures, success and return mean +- std over seeds, mean time."""
    rows = []
    for label in dict.fromkeys(point_label(r.point) for r in runs):
        group = [r for r in runs if point_label(r.point) == label]
        ok = [r for r in group if r.error is None]
        success = np.array([r.success_rate for r in ok]) if ok else np.array([np.nan])
        returns = np.array([r.mean_return for r in ok]) if ok else np.array([np.nan])
        rows.append(
            {
                "point": group[0].point,
                "seeds": len(group),
                "failed": len(group) - len(ok),
                "success_mean": float(success.mean()),
                "success_std": float(success.std()),
                "return_mean": float(returns.mean()),
                "return_std": float(returns.std()),
                "timesteps": int(np.mean([r.timesteps for r in ok])) if ok else 0,
                "wall_seconds": float(np.mean([r.wall_seconds for r in ok])) if ok else float("nan"),
            }
        )
    return rows


def sweep_table(runs: list[SweepRun], episodes: int) -> str:
    """Markdown: the per-grid-point summary, then every run."""
    lines = [
        f"| grid point | seeds | failed | success (mean +- std over seeds, {episodes} episodes each) "
        "| return | timesteps | training time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary_rows(runs):
        point = ", ".join(f"{k}={v}" for k, v in row["point"].items()) or "(config as is)"
        lines.append(
            f"| {point} | {row['seeds']} | {row['failed']} | {100 * row['success_mean']:.1f}% +- "
            f"{100 * row['success_std']:.1f} | {row['return_mean']:.2f} +- {row['return_std']:.2f} "
            f"| {row['timesteps']:,} | {duration(row['wall_seconds'])} |"
        )
    lines += ["", "| run | seed | success | return | time | error |", "|---|---:|---:|---:|---:|---|"]
    order = {label: i for i, label in enumerate(dict.fromkeys(point_label(r.point) for r in runs))}
    for r in sorted(runs, key=lambda r: (order[point_label(r.point)], r.seed)):
        lines.append(
            f"| {Path(r.run_dir).name} | {r.seed} | {100 * r.success_rate:.1f}% | {r.mean_return:.2f} +- "
            f"{r.std_return:.2f} | {duration(r.wall_seconds)} | {r.error or ''} |"
        )
    return "\n".join(lines) + "\n"


def write_results(
    runs: list[SweepRun],
    out_dir: Path,
    base: TrainConfig,
    grid: dict[str, list[Any]],
    seeds: list[int],
    episodes: int,
    eval_seed: int,
) -> None:
    """``sweep.json`` (settings + every run) and ``sweep.md`` (the table) in ``out_dir``."""
    data = {
        "env": base.env,
        "algo": base.algo,
        "base_config": base.to_dict(),
        "grid": grid,
        "seeds": seeds,
        "eval": {"episodes": episodes, "seed": eval_seed},
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        "summary": summary_rows(runs),
        "runs": [asdict(r) for r in runs],
    }
    (out_dir / "sweep.json").write_text(json.dumps(data, indent=2, default=str))
    header = f"# Sweep: {base.env} {base.algo.upper()}, seeds {seeds[0]}..{seeds[-1]}\n\n"
    (out_dir / "sweep.md").write_text(header + sweep_table(runs, episodes))
