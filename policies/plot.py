"""Learning curves from run folders: return and success against timesteps and wall time.

Runs of the same environment and algorithm are one group: its curve is the mean over the
runs (seeds) with a band of one standard deviation.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: write files, never open windows
import matplotlib.pyplot as plt
import numpy as np
import yaml

from tianji.policies.config import ConfigError

SERIES = {  # panel -> candidate progress.csv columns, first present wins
    "return": ("rollout/ep_rew_mean", "eval/mean_reward"),
    "success": ("rollout/success_rate", "eval/success_rate"),
}


def read_progress(run_dir: Path) -> dict[str, np.ndarray]:
    """Columns of a run's training log as float arrays (missing values as NaN).

    A resumed run keeps its earlier segments as ``progress-NN.csv``; they come first. SB3 restarts
    ``time/time_elapsed`` with each segment: it is continued here from where the segment before ended.
    """
    files = [*sorted(run_dir.glob("progress-*.csv")), run_dir / "progress.csv"]
    files = [f for f in files if f.is_file()]
    if not files:
        raise ConfigError(f"{run_dir} has no progress.csv; is it a training run folder?")
    rows = []
    offset = 0.0
    for file in files:
        with file.open() as handle:
            segment = list(csv.DictReader(handle))
        elapsed = [float(r["time/time_elapsed"]) for r in segment if r.get("time/time_elapsed") not in ("", None)]
        for r in segment:
            if r.get("time/time_elapsed") not in ("", None):
                r["time/time_elapsed"] = str(float(r["time/time_elapsed"]) + offset)
        offset += max(elapsed, default=0.0)
        rows += segment
    if not rows:
        raise ConfigError(f"{run_dir}: the training log is empty, the run logged nothing yet")
    columns: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for key, value in row.items():
            columns[key].append(float(value) if value not in ("", None) else np.nan)
    return {k: np.asarray(v) for k, v in columns.items()}


def _group(run_dir: Path) -> str:
    config = run_dir / "config.yaml"
    if config.is_file():
        data = yaml.safe_load(config.read_text()) or {}
        return f"{str(data.get('env', '?')).removeprefix('tianji/')} {data.get('algo', '?')}"
    return run_dir.name


def plot_runs(run_dirs: list[Path], out: Path) -> Path:
    """Write a 2x2 PNG: return and success vs timesteps (top) and vs wall time (bottom)."""
    groups: dict[str, list[dict[str, np.ndarray]]] = defaultdict(list)
    for run in run_dirs:
        groups[_group(run)].append(read_progress(run))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for label, runs in groups.items():
        for col, candidates in enumerate(SERIES.values()):
            for row, x_key in enumerate(("time/total_timesteps", "time/time_elapsed")):
                _plot_group(axes[row][col], runs, x_key, candidates, f"{label} (n={len(runs)})")
    for col, panel in enumerate(SERIES):
        axes[0][col].set_xlabel("timesteps")
        axes[1][col].set_xlabel("wall time (s)")
        for row in range(2):
            axes[row][col].set_ylabel("mean episode return" if panel == "return" else "success rate")
            axes[row][col].grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _plot_group(
    ax: plt.Axes, runs: list[dict[str, np.ndarray]], x_key: str, candidates: tuple[str, ...], label: str
) -> None:
    curves = []
    for run in runs:
        y_key = next((k for k in candidates if k in run and np.isfinite(run[k]).any()), None)
        if y_key is None or x_key not in run:
            continue
        keep = np.isfinite(run[y_key]) & np.isfinite(run[x_key])
        curves.append((run[x_key][keep], run[y_key][keep]))
    if not curves:
        return
    if len(curves) == 1:
        ax.plot(*curves[0], label=label)
        return
    grid = np.linspace(0, min(c[0].max() for c in curves), 100)
    ys = np.stack([np.interp(grid, x, y) for x, y in curves])
    (line,) = ax.plot(grid, ys.mean(axis=0), label=label)
    ax.fill_between(
        grid, ys.mean(axis=0) - ys.std(axis=0), ys.mean(axis=0) + ys.std(axis=0), alpha=0.2, color=line.get_color()
    )
