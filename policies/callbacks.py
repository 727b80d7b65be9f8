"""Training callbacks: a rich progress bar with return and success, and evaluations with a wall clock."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy

EVALUATIONS_FILE = "evaluations.csv"


class RichProgress(BaseCallback):
    """Progress of ``total`` environment steps, with mean return and success over the last 100 episodes."""

    def __init__(self, total: int, label: str, refresh_every: int = 256) -> None:
        super().__init__()
        self.total, self.label, self.refresh_every = total, label, refresh_every
        self._progress: Progress | None = None
        self._task = 0
        self._start = 0

    def _on_training_start(self) -> None:
        self._start = self.num_timesteps
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._progress.start()
        self._task = self._progress.add_task(self.label, total=self.total, stats="")

    def _on_step(self) -> bool:
        if self._progress is not None and self.n_calls % self.refresh_every == 0:
            self._refresh()
        return True

    def _refresh(self) -> None:
        assert self._progress is not None
        model = self.model
        stats = []
        if model.ep_info_buffer:
            stats.append(f"return {np.mean([e['r'] for e in model.ep_info_buffer]):.2f}")
        if model.ep_success_buffer:
            stats.append(f"success {100 * np.mean(model.ep_success_buffer):.0f}%")
        self._progress.update(self._task, completed=self.num_timesteps - self._start, stats="  ".join(stats))

    def _on_training_end(self) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()


class TimedEvalCallback(EvalCallback):
    """SB3's EvalCallback that also logs each evaluation's wall-clock time and can stop at a success rate.

    Every evaluation appends ``timesteps, wall_seconds, mean_return, success_rate`` to ``csv_path``
    (wall seconds since training started, counting earlier segments of a resumed run), which is
    what time-to-threshold figures are read from. With ``stop_success``, training ends once an
    evaluation's success rate reaches it. A few evaluation episodes make a noisy estimate (19 of 20
    is "95%"), so with ``confirm_episodes`` an evaluation that reaches the threshold is checked on
    that many further episodes, and training ends only if they reach it too (``confirmed_success``
    in the CSV; its time counts in the wall clock).
    """

    def __init__(
        self,
        *args: Any,
        csv_path: Path,
        stop_success: float | None = None,
        confirm_episodes: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.csv_path = csv_path
        self.stop_success = stop_success
        self.confirm_episodes = confirm_episodes
        self._clock = 0.0
        self._offset = 0.0

    def _init_callback(self) -> None:
        super()._init_callback()
        self._clock = time.perf_counter()
        if self.csv_path.is_file():  # resumed: continue the earlier segments' clock
            rows = _read_rows(self.csv_path)
            self._offset = rows[-1]["wall_seconds"] if rows else 0.0
        else:
            self.csv_path.write_text("timesteps,wall_seconds,mean_return,success_rate,confirmed_success\n")

    def _on_step(self) -> bool:
        keep_going = super()._on_step()
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            success = float(np.mean(self._is_success_buffer)) if self._is_success_buffer else float("nan")
            reached = self.stop_success is not None and success >= self.stop_success
            confirmed = float("nan")
            if reached and self.confirm_episodes > 0:
                self._is_success_buffer = []
                evaluate_policy(
                    self.model,
                    self.eval_env,
                    n_eval_episodes=self.confirm_episodes,
                    deterministic=self.deterministic,
                    callback=self._log_success_callback,
                )
                confirmed = float(np.mean(self._is_success_buffer)) if self._is_success_buffer else 0.0
                reached = confirmed >= self.stop_success  # type: ignore[operator]
            wall = self._offset + time.perf_counter() - self._clock
            with self.csv_path.open("a") as handle:
                handle.write(
                    f"{self.num_timesteps},{wall:.2f},{self.last_mean_reward:.6g},{success:.6g},{confirmed:.6g}\n"
                )
            if reached:
                return False
        return keep_going


class SaveNormalizerOnBest(BaseCallback):
    """Saves the VecNormalize statistics next to each new ``best_model.zip`` (as ``path``), so the best
    model is later run with the statistics it was evaluated with, not those of the end of training."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _on_step(self) -> bool:
        normalizer = self.model.get_vec_normalize_env()
        if normalizer is not None:
            normalizer.save(str(self.path))
        return True


class StopAfterWallTime(BaseCallback):
    """End training once ``seconds`` of wall-clock time have passed (a compute budget, e.g. for time-to-threshold)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self._deadline = 0.0

    def _on_training_start(self) -> None:
        self._deadline = time.perf_counter() + self.seconds

    def _on_step(self) -> bool:
        return time.perf_counter() < self._deadline


def read_evaluations(run_dir: Path) -> list[dict[str, float]]:
    """The rows of a run's ``evaluations.csv`` (see :class:`TimedEvalCallback`); empty if it has none."""
    file = run_dir / EVALUATIONS_FILE
    return _read_rows(file) if file.is_file() else []


def _read_rows(file: Path) -> list[dict[str, float]]:
    lines = file.read_text().strip().splitlines()
    keys = lines[0].split(",")
    return [dict(zip(keys, map(float, line.split(",")), strict=True)) for line in lines[1:]]
