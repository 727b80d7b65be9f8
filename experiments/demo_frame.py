"""Save one frame of a demo video as a PNG (the README's first picture).

    python experiments/demo_frame.py runs/demo/fetch_water/<timestamp>/video.mp4 0.62 experiments/results/demo_frame.png

The fraction (0..1) picks the frame; 0.62 of `fetch_water` (seed 0) shows TIAGo holding the cup
out to the patient.
"""

from __future__ import annotations

import sys
from pathlib import Path

import imageio.v2 as imageio


def main(video: str, fraction: str, out: str) -> None:
    """Write the frame at ``fraction`` of ``video`` to ``out``."""
    with imageio.get_reader(video) as reader:
        n = reader.count_frames()
        frame = reader.get_data(min(n - 1, max(0, round(float(fraction) * (n - 1)))))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out, frame)
    print(f"frame {round(float(fraction) * (n - 1))} of {n} -> {out}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
