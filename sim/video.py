"""Write RGB frames to an mp4 with imageio's ffmpeg plugin (H.264, yuv420p, plays everywhere)."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np


class VideoRecorder:
    """Append (H, W, 3) uint8 frames; :meth:`close` finalizes the file and returns its path."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps
        self.frames = 0
        self._writer = imageio.get_writer(
            self.path, fps=fps, codec="libx264", quality=7, pixelformat="yuv420p", macro_block_size=8
        )

    def add(self, rgb: np.ndarray) -> None:
        """Append one frame; every frame must have the size of the first."""
        self._writer.append_data(np.ascontiguousarray(rgb))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file (safe to call twice)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.path
