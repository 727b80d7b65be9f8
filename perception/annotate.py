"""Draw what perception found onto the image: boxes, marker axes, labels, the person and posture."""

from __future__ import annotations

import cv2
import numpy as np

from tianji.control.robot import CameraFrame
from tianji.control.world_state import Posture
from tianji.perception.camera import CameraModel
from tianji.perception.detection import PerceptionResult

COLOURS = {  # BGR
    "aruco": (40, 200, 40),
    "colour": (0, 200, 255),
    "person": (255, 120, 0),
    "fallen": (0, 0, 255),
    "text": (255, 255, 255),
}


def annotate(frame: CameraFrame, result: PerceptionResult, scale: int | None = None) -> np.ndarray:
    """An RGB uint8 copy of ``frame.rgb`` (upscaled by ``scale``, default x2 below 480 px wide) with overlays."""
    camera = CameraModel.from_frame(frame)
    s = scale or (2 if camera.width < 480 else 1)
    img = cv2.resize(np.ascontiguousarray(frame.rgb[:, :, ::-1]), None, fx=s, fy=s, interpolation=cv2.INTER_NEAREST)
    for person in result.people:
        colour = COLOURS["fallen"] if person.posture is Posture.FALLEN else COLOURS["person"]
        if person.mask is not None:
            tint = np.zeros_like(img)
            tint[:] = colour
            big = cv2.resize(
                person.mask.astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST
            )
            img = np.where(big[..., None] > 0, (0.6 * img + 0.4 * tint).astype(np.uint8), img)
        x0, y0, x1, y1 = (v * s for v in person.bbox)
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, 2)
        _label(img, f"{person.posture.value} {person.confidence:.2f}", (x0, y0), colour)
        for point, mark in ((person.head, "head"), (person.mouth, "mouth")):
            if point is None:
                continue
            uv, z = camera.project(point)
            if z[0] > 0 and np.all(np.isfinite(uv)):
                c = (int(uv[0, 0] * s), int(uv[0, 1] * s))
                cv2.circle(img, c, 4, colour, -1)
                cv2.putText(img, mark, (c[0] + 5, c[1]), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    for det in result.detections:
        colour = COLOURS.get(det.source, COLOURS["colour"])
        x0, y0, x1, y1 = (v * s for v in det.bbox)
        cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, 1)
        if det.marker_pose is not None:
            _axes(img, camera, det.marker_pose, 0.5 * float(np.linalg.norm(det.corners[0] - det.corners[2])), s)
        _label(img, f"{det.name} {det.source} {det.confidence:.2f}", (x0, y1 + 12), colour)
    return np.ascontiguousarray(img[:, :, ::-1])


def _axes(img: np.ndarray, camera: CameraModel, pose: np.ndarray, length_px: float, s: int) -> None:
    """Marker frame axes (x red, y green, z blue), about the marker's size."""
    centre_uv, z = camera.project(pose[:3, 3])
    if z[0] <= 0:
        return
    length = max(0.02, length_px * float(z[0]) / float(camera.intrinsics[0, 0]))
    tips = pose[:3, 3] + length * pose[:3, :3].T
    uv, depth = camera.project(tips)
    o = (int(centre_uv[0, 0] * s), int(centre_uv[0, 1] * s))
    for (u, v), d, colour in zip(uv, depth, ((0, 0, 255), (0, 255, 0), (255, 0, 0)), strict=True):
        if d > 0 and np.isfinite(u) and np.isfinite(v):
            cv2.line(img, o, (int(u * s), int(v * s)), colour, 2, cv2.LINE_AA)


def _label(img: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    x, y = origin
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    y = max(h + 2, y)
    cv2.rectangle(img, (x, y - h - 3), (x + w + 2, y + 1), colour, -1)
    cv2.putText(img, text, (x + 1, y - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
