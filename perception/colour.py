"""Colour segmentation: the second detection method, for unmarked objects and markers too small to read.

Each catalogued object with a saturated main colour (cup red, bowl blue, spoon yellow, pill
box green in the care room) gets an HSV band around its hue. Pixels in the band are grouped
into connected components; components whose depth points are close together form the
object; a blob whose 3D size could not be that object (a red jumper is not a cup) is
rejected, and so is colour inside a person's silhouette (clothes are not cups). The camera
sees an object's near side, so its centre is half the object's width behind the nearest
blob points (middle of the blob's extent for long, flat objects such as the spoon); the
height snaps onto a known furniture top when the blob's lowest point is within a few
centimetres of one.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from tianji.control.robot import CameraFrame
from tianji.perception.camera import CameraModel, valid_depth
from tianji.perception.detection import Detection
from tianji.perception.geometry import apply, invert
from tianji.perception.scene_map import ObjectModel, SceneMap

HUE_TOLERANCE = 8  # OpenCV hue units (degrees / 2)
SATURATION_FRACTION = 0.55  # of the object's own saturation
VALUE_MIN = 35
MIN_PIXELS = 4
SURFACE_SNAP = 0.04  # m: a blob bottom this close above or below a furniture top rests on it
BODY_CLEARANCE = 0.15  # m
ELONGATED = 1.8  # length / width above which an object is placed at the middle of its blob's extent
MAX_CONFIDENCE = 0.8  # colour alone never beats a marker


class ColourDetector:
    """Find colour-detectable catalogue objects by hue, and place them with depth."""

    def __init__(self, scene_map: SceneMap, names: list[str] | None = None) -> None:
        self.map = scene_map
        chosen = names if names is not None else [n for n, m in scene_map.objects.items() if m.colour_detectable]
        self.models = [scene_map.object(n) for n in chosen]
        self._bands = {m.name: _band(m.colour) for m in self.models}

    def detect(
        self,
        frame: CameraFrame,
        camera: CameraModel,
        hsv: np.ndarray | None = None,
        furniture_poses: dict[str, np.ndarray] | None = None,
        exclude: np.ndarray | None = None,
        body_points: np.ndarray | None = None,
    ) -> list[Detection]:
        """Detections (source ``"colour"``) of each colour-detectable object, at most one per name.

        ``exclude`` is an (H, W) bool mask of pixels to ignore (people's silhouettes);
        ``body_points`` (N, 3) are people's points: a blob within ``BODY_CLEARANCE`` of them is clothing.
        """
        if hsv is None:
            hsv = cv2.cvtColor(np.ascontiguousarray(frame.rgb), cv2.COLOR_RGB2HSV)
        out = []
        for model in self.models:
            mask = _in_band(hsv, *self._bands[model.name])
            if exclude is not None:
                mask[exclude] = 0
            if int(np.count_nonzero(mask)) < MIN_PIXELS:
                continue
            det = self._locate(model, mask, frame, camera, furniture_poses or {}, body_points)
            if det is not None:
                out.append(det)
        return out

    def _locate(
        self,
        model: ObjectModel,
        mask: np.ndarray,
        frame: CameraFrame,
        camera: CameraModel,
        furniture_poses: dict[str, np.ndarray],
        body_points: np.ndarray | None,
    ) -> Detection | None:
        ox, oy, bw, bh = cv2.boundingRect(mask)  # label only the region that has the colour: much faster
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask[oy : oy + bh, ox : ox + bw], connectivity=8)
        stats[:, cv2.CC_STAT_LEFT] += ox
        stats[:, cv2.CC_STAT_TOP] += oy
        diag = float(np.linalg.norm(model.size))
        comps = []
        for i in range(1, n):
            area = int(stats[i, cv2.CC_STAT_AREA])
            if area < 2:
                continue
            x0, y0 = int(stats[i, cv2.CC_STAT_LEFT]), int(stats[i, cv2.CC_STAT_TOP])
            x1, y1 = x0 + int(stats[i, cv2.CC_STAT_WIDTH]), y0 + int(stats[i, cv2.CC_STAT_HEIGHT])
            rows, cols = np.nonzero(labels[y0 - oy : y1 - oy, x0 - ox : x1 - ox] == i)
            rows, cols = rows + y0, cols + x0
            depth = frame.depth[rows, cols].astype(float)
            ok = valid_depth(depth)
            if ok.any():
                pts = camera.backproject(np.column_stack([cols[ok] + 0.5, rows[ok] + 0.5]), depth[ok])
                centre = np.median(pts, axis=0)
                if body_points is not None and _near(body_points, centre, BODY_CLEARANCE):
                    continue  # clothing of a person, not an object
                comps.append((area, (x0, y0, x1, y1), centre, pts))
        if not comps:
            return None
        comps.sort(key=lambda c: -c[0])
        best: tuple[int, list[tuple[int, int, int, int]], np.ndarray] | None = None
        for _, _, centre, _ in comps:  # the largest blob of plausible size, plus its close neighbours
            members = [c for c in comps if np.linalg.norm(c[2] - centre) <= diag]
            allpts = np.vstack([c[3] for c in members])
            extent = np.percentile(allpts, 95, axis=0) - np.percentile(allpts, 5, axis=0)
            if float(np.linalg.norm(extent)) > 1.5 * diag + 0.03:
                continue  # far too big to be this object
            total = sum(c[0] for c in members)
            if total >= MIN_PIXELS:
                best = (total, [c[1] for c in members], allpts)
                break
        if best is None:
            return None
        total, boxes, pts = best
        position = self._base_position(model, pts, camera, furniture_poses)
        corners = np.array(boxes)
        return Detection(
            name=model.name,
            position=position,
            orientation=None,
            confidence=float(np.clip(total / 60.0, 0.2, 1.0) * MAX_CONFIDENCE),
            timestamp=float(frame.timestamp),
            source="colour",
            bbox=(
                int(corners[:, 0].min()),
                int(corners[:, 1].min()),
                int(corners[:, 2].max()),
                int(corners[:, 3].max()),
            ),
            pixels=int(total),
        )

    def _base_position(
        self, model: ObjectModel, pts: np.ndarray, camera: CameraModel, furniture_poses: dict[str, np.ndarray]
    ) -> np.ndarray:
        small, large = sorted(float(v) for v in model.size[:2])
        xy = pts[:, :2]
        if large > ELONGATED * small:  # a flat, long object (spoon): the middle of its extent
            centre = xy.mean(axis=0)
            cov = np.cov((xy - centre).T) if len(xy) > 2 else np.eye(2)
            axes = np.linalg.eigh(cov)[1]
            proj = (xy - centre) @ axes
            mid = (np.percentile(proj, 2, axis=0) + np.percentile(proj, 98, axis=0)) / 2
            centre = centre + axes @ mid
        else:  # the camera sees the near side: the centre is half the object's width behind it
            eye = camera.pose[:2, 3]
            view = xy.mean(axis=0) - eye
            view = view / max(float(np.linalg.norm(view)), 1e-9)
            across = np.array([-view[1], view[0]])
            along, side = (xy - eye) @ view, (xy - eye) @ across
            near = float(np.percentile(along, 3))
            lateral = float(np.percentile(side, 12) + np.percentile(side, 88)) / 2  # trimmed: a handle, a marker
            centre = eye + (near + small / 2) * view + lateral * across
        bottom = float(np.percentile(pts[:, 2], 3))
        return np.array([centre[0], centre[1], self._support(centre, bottom, furniture_poses)])

    def _support(self, xy: np.ndarray, bottom: float, furniture_poses: dict[str, np.ndarray]) -> float:
        """Height of the furniture top under ``xy`` when the blob's bottom is within SURFACE_SNAP of it."""
        for name, other in self.map.objects.items():
            if other.top_height is None or not other.is_furniture:
                continue
            pose = furniture_poses.get(name, self.map.nominal_poses.get(name))
            if pose is None:
                continue
            local = apply(invert(pose), np.array([xy[0], xy[1], 0.0]))
            lo, hi = other.center - other.size / 2, other.center + other.size / 2
            if lo[0] <= local[0] <= hi[0] and lo[1] <= local[1] <= hi[1]:
                top = float(pose[2, 3] + other.top_height)
                if abs(bottom - top) <= SURFACE_SNAP:
                    return top
        return bottom


def _near(points: np.ndarray, centre: np.ndarray, distance: float) -> bool:
    """Is any of ``points`` within ``distance`` of ``centre``?"""
    return bool(len(points)) and float(np.min(np.linalg.norm(points - centre, axis=1))) < distance


def _band(rgb: np.ndarray) -> tuple[int, int, int]:
    h, s, _ = colorsys.rgb_to_hsv(*(float(c) for c in rgb))
    return round(h * 180) % 180, int(max(60, SATURATION_FRACTION * s * 255)), VALUE_MIN


def _in_band(hsv: np.ndarray, hue: int, sat_min: int, val_min: int) -> np.ndarray:
    lo, hi = hue - HUE_TOLERANCE, hue + HUE_TOLERANCE
    if lo < 0 or hi > 179:  # the band wraps around red
        a = cv2.inRange(hsv, (lo % 180, sat_min, val_min), (179, 255, 255))
        b = cv2.inRange(hsv, (0, sat_min, val_min), (hi % 180, 255, 255))
        return cv2.bitwise_or(a, b)
    return cv2.inRange(hsv, (lo, sat_min, val_min), (hi, 255, 255))
