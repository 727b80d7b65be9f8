"""A rich progress bar for SB3 training that shows the recent episode return and success rate."""

from __future__ import annotations

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from stable_baselines3.common.callbacks import BaseCallback


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
