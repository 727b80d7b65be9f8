"""The result types every detector returns: what was found, where, how sure, and when."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tianji.control.world_state import Posture


@dataclass
class Detection:
    """One object found in one frame.

    ``position`` is the object's base frame (footprint centre on its support, as in the URDF)
    in the world frame, metres; ``orientation`` an (x, y, z, w) quaternion or None when the
    method cannot tell (colour). ``bbox`` is (x0, y0, x1, y1) in pixels, for drawing.
    """

    name: str
    position: np.ndarray
    orientation: np.ndarray | None
    confidence: float
    timestamp: float
    source: str  # "aruco" or "colour"
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)
    marker_id: int | None = None
    corners: np.ndarray | None = None  # (4, 2) marker corners, continuous pixel coordinates
    marker_pose: np.ndarray | None = None  # 4x4 world <- marker (printed face), for drawing axes
    pixels: int = 0  # image area that supports the detection


@dataclass
class PersonDetection:
    """A person found in one frame, with the 3D measurements the posture rules use."""

    position: np.ndarray  # (3,) body centre (pelvis estimate), world frame
    posture: Posture
    confidence: float
    timestamp: float
    head: np.ndarray | None = None
    mouth: np.ndarray | None = None
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)
    top: float = 0.0  # highest point above the floor, m
    bottom: float = 0.0  # lowest point above the floor, m
    length: float = 0.0  # longest horizontal extent, m
    width: float = 0.0  # horizontal extent across it, m
    area: float = 0.0  # visible surface, m^2
    skin_fraction: float = 0.0
    on_bed: bool = False
    truncated: bool = False  # touches the image border: extents are lower bounds
    source: str = "depth_blob"
    mask: np.ndarray | None = field(default=None, repr=False)  # (H, W) bool at full image size
    points: np.ndarray | None = field(default=None, repr=False)  # (N, 3) world points of the body (subsampled)


@dataclass
class PerceptionResult:
    """Everything found in one frame, plus how long each stage took (seconds)."""

    timestamp: float
    detections: list[Detection] = field(default_factory=list)
    people: list[PersonDetection] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def best(self) -> dict[str, Detection]:
        """One detection per object name: a marker pose beats colour, then higher confidence wins."""
        out: dict[str, Detection] = {}
        for det in self.detections:
            old = out.get(det.name)
            if old is None or _rank(det) > _rank(old):
                out[det.name] = det
        return out


def _rank(det: Detection) -> tuple[int, float]:
    return (1 if det.source == "aruco" else 0, det.confidence)
