"""Optional person boxes from a user-supplied ONNX detector, run with ``cv2.dnn`` (no weights ship with Tianji).

For real cameras, where skin colour and the room map are weaker cues than in simulation.
Three common output layouts are understood:

* ``layout="yolov8"``: (1, 4 + C, N), centre x, y, width, height in input pixels, then C class scores;
* ``layout="yolov5"``: (1, N, 5 + C), the same with an objectness column before the class scores;
* ``layout="ssd"``: (1, 1, N, 7) rows of (image id, class, score, x0, y0, x1, y1), corners in 0..1.

Only boxes of ``person_class`` above ``score_threshold`` are kept, after non-maximum
suppression. The depth blob inside each box then gives posture as usual.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tianji.control.errors import AssetError


class OnnxPersonDetector:
    """Person bounding boxes (x0, y0, x1, y1, score) in image pixels from an ONNX model."""

    def __init__(
        self,
        model: str | Path,
        input_size: tuple[int, int] = (640, 640),
        person_class: int = 0,
        score_threshold: float = 0.4,
        nms_threshold: float = 0.5,
        swap_rb: bool = False,
        scale: float = 1.0 / 255.0,
        layout: str = "yolov8",
    ) -> None:
        path = Path(model).expanduser()
        if not path.is_file():
            raise AssetError(
                f"ONNX person detector not found: {path}. Pass the path of an exported model"
                " (e.g. a YOLO or SSD person detector exported to ONNX), or leave it out to use depth blobs."
            )
        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as exc:
            raise AssetError(f"OpenCV could not load {path} as an ONNX network: {exc}") from exc
        self.input_size = input_size
        self.person_class = person_class
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.swap_rb = swap_rb
        self.scale = scale
        if layout not in LAYOUTS:
            raise ValueError(f"unknown ONNX detector layout {layout!r}; use one of: {', '.join(LAYOUTS)}")
        self.layout = layout

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Boxes around people in an (H, W, 3) uint8 RGB image, best first."""
        h, w = rgb.shape[:2]
        image = rgb if not self.swap_rb else rgb[:, :, ::-1]
        blob = cv2.dnn.blobFromImage(np.ascontiguousarray(image), self.scale, self.input_size, swapRB=False)
        self.net.setInput(blob)
        out = np.asarray(self.net.forward(), dtype=np.float32)
        boxes = parse_output(out, self.person_class, (w, h), self.input_size, self.layout)
        boxes = [b for b in boxes if b[4] >= self.score_threshold]
        if not boxes:
            return []
        rects = [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes]
        keep = cv2.dnn.NMSBoxes(rects, [b[4] for b in boxes], self.score_threshold, self.nms_threshold)
        kept = [boxes[int(i)] for i in np.ravel(keep)]
        return sorted(kept, key=lambda b: -b[4])


LAYOUTS = ("yolov8", "yolov5", "ssd")


def parse_output(
    out: np.ndarray,
    person_class: int,
    image_size: tuple[int, int],
    input_size: tuple[int, int],
    layout: str = "yolov8",
) -> list[tuple[float, float, float, float, float]]:
    """Boxes (x0, y0, x1, y1, score) in image pixels from a detector's output tensor (see the module doc)."""
    w, h = image_size
    if layout == "ssd":
        rows = out.reshape(-1, 7)
        rows = rows[rows[:, 1].astype(int) == person_class]
        return [(r[3] * w, r[4] * h, r[5] * w, r[6] * h, float(r[2])) for r in rows]
    if layout not in LAYOUTS:
        raise ValueError(f"unknown ONNX detector layout {layout!r}; use one of: {', '.join(LAYOUTS)}")
    rows = out.reshape(out.shape[-2], out.shape[-1]) if out.ndim == 3 else np.atleast_2d(out)
    if layout == "yolov8":
        rows = rows.T  # (4 + C, N) -> (N, 4 + C)
    first = 5 if layout == "yolov5" else 4  # v5 has an objectness column before the class scores
    if rows.shape[1] <= first + person_class:
        raise ValueError(
            f"ONNX person detector output has shape {out.shape}, too few columns for class {person_class}"
            f" in the {layout} layout; pass the layout your model uses ({', '.join(LAYOUTS)})"
        )
    scores = rows[:, first + person_class] * (rows[:, 4] if layout == "yolov5" else 1.0)
    sx, sy = w / input_size[0], h / input_size[1]
    cx, cy, bw, bh = rows[:, 0] * sx, rows[:, 1] * sy, rows[:, 2] * sx, rows[:, 3] * sy
    return [
        (float(x - a / 2), float(y - b / 2), float(x + a / 2), float(y + b / 2), float(s))
        for x, y, a, b, s in zip(cx, cy, bw, bh, scores, strict=True)
    ]
