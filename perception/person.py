"""Find the person in an RGB-D frame without learned weights, and measure posture, head and mouth.

Depth does the work: every pixel becomes a world point; the floor, the walls, the known
furniture (scene map, at detected or nominal poses), and the robot's own body are removed;
what is left is cut at depth jumps into connected blobs, and blobs that touch in 3D are
joined. A blob is a person when its visible surface, height and length are person-sized
and it shows some skin-coloured pixels (that last cue is what tells a person from the
humanoid robot in the doorway; with an ONNX detector (``cv2.dnn``) the detector's boxes
replace it). Posture, head, mouth and pelvis come from the blob's 3D points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from tianji.control.robot import CameraFrame
from tianji.control.world_state import Posture
from tianji.perception.camera import CameraModel
from tianji.perception.detection import PersonDetection
from tianji.perception.geometry import apply, invert
from tianji.perception.onnx_person import OnnxPersonDetector
from tianji.perception.posture import BED_CLEARANCE, classify_posture
from tianji.perception.scene_map import Box, SceneMap

# Body proportions of an adult (measured on the simulated patient; see perception/README.md).
HEAD_BELOW_TOP = 0.23  # m from the top of the head down to the head (neck) frame
STANDING_PELVIS_RATIO = 0.59  # pelvis height / standing height
SITTING_PELVIS_BELOW_TOP = 0.66  # m
HEAD_INSET = 0.13  # m from the far end of a lying body to its head frame
PELVIS_FROM_HEAD = 0.48  # m along the body from head frame to pelvis
SURFACE_TO_AXIS = 0.07  # m: the camera sees the near surface; the body axis is behind it
LYING_SURFACE_TO_AXIS = 0.08  # m, the same across a lying body
HEAD_END = 0.25  # m: skin within this of a lying body's end marks the head end
NOMINAL_HEIGHT = 1.75  # m, for a standing person whose head is out of the image
SEATED_PELVIS = 0.62  # m above the floor on a standard 0.45 m seat
LEGS_ABOVE_SEAT = 0.25  # m: points of a seated person this low above the floor (or the mattress) are feet or legs
MOUTH_FORWARD, MOUTH_UP = 0.10, 0.06  # m, mouth from the head frame: towards the face, towards the crown


@dataclass
class PersonConfig:
    """Thresholds of the depth-blob person finder (metres, square metres, pixels at work size)."""

    work_width: int = 160  # depth is subsampled to about this width
    floor_clearance: float = 0.05
    wall_margin: float = 0.06
    furniture_margin: float = 0.03
    self_radius: float = 0.45  # the robot's own body: a cylinder around its base
    self_height: float = 1.6
    min_area: float = 0.06
    max_area: float = 2.5
    max_top: float = 2.2
    max_length: float = 2.4
    min_extent: float = 0.3  # the larger of height span and length
    min_skin_pixels: int = 3
    require_skin: bool = True  # off when an ONNX detector provides the person boxes
    join_distance: float = 0.12  # parts with points in neighbouring cells of this size are one body
    max_people: int = 3
    skin_hue: tuple[float, float] = (0.0, 28.0)  # degrees; wood and the floor are 30-33
    skin_saturation: tuple[float, float] = (0.15, 0.6)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class _Blob:
    rows: np.ndarray
    cols: np.ndarray
    points: np.ndarray
    skin: np.ndarray
    weights: np.ndarray  # surface area of each point's pixel, m^2
    area: float


class PersonDetector:
    """Depth blobs (or ONNX boxes) -> :class:`PersonDetection` with posture and key points."""

    def __init__(
        self, scene_map: SceneMap, config: PersonConfig | None = None, onnx: OnnxPersonDetector | None = None
    ) -> None:
        self.map = scene_map
        self.config = config or PersonConfig()
        self.onnx = onnx

    def detect(
        self,
        frame: CameraFrame,
        camera: CameraModel,
        furniture_poses: dict[str, np.ndarray] | None = None,
        robot_xy: tuple[float, float] | None = None,
    ) -> list[PersonDetection]:
        """People in ``frame``, most confident first (at most ``config.max_people``)."""
        cfg = self.config
        stride = max(1, round(camera.width / cfg.work_width))
        points = camera.point_map(frame.depth, stride)
        keep = self._foreground(points, furniture_poses or {}, robot_xy)
        depth = np.asarray(frame.depth, dtype=np.float32)[::stride, ::stride]
        keep &= ~_depth_edges(depth)
        require_skin = cfg.require_skin
        if self.onnx is not None:
            boxes = self.onnx.detect(frame.rgb)
            roi = np.zeros_like(keep)
            for x0, y0, x1, y1, _ in boxes:
                r0, c0 = max(0, int(y0) // stride), max(0, int(x0) // stride)  # boxes may overhang the image
                roi[r0 : max(r0, math.ceil(y1 / stride)), c0 : max(c0, math.ceil(x1 / stride))] = True
            keep &= roi
            require_skin = False
        rgb = np.asarray(frame.rgb)[::stride, ::stride]
        skin = self._skin(rgb)
        pixel_area = (depth * stride / float(camera.intrinsics[0, 0])) ** 2
        blobs = self._blobs(keep, points, skin, pixel_area)
        people = []
        for blob in blobs:
            person = self._measure(blob, camera, frame, stride, points.shape[:2], furniture_poses or {})
            if person is None:
                continue
            if require_skin and int(blob.skin.sum()) < cfg.min_skin_pixels:
                continue
            people.append(person)
        people.sort(key=lambda p: -p.confidence)
        return people[: cfg.max_people]

    # ------------------------------------------------------------------ stages
    def _foreground(
        self, points: np.ndarray, furniture_poses: dict[str, np.ndarray], robot_xy: tuple[float, float] | None
    ) -> np.ndarray:
        """Pixels that are neither floor, wall, known furniture, nor the robot itself."""
        cfg = self.config
        flat = points.reshape(-1, 3)
        idx = np.flatnonzero(np.isfinite(flat[:, 0]))
        pts = flat[idx].astype(np.float64)
        ok = (pts[:, 2] > cfg.floor_clearance) & self.map.inside_room(pts, cfg.wall_margin)
        if robot_xy is not None:
            near = np.hypot(pts[:, 0] - robot_xy[0], pts[:, 1] - robot_xy[1]) < cfg.self_radius
            ok &= ~(near & (pts[:, 2] < cfg.self_height))
        for name, boxes in self.map.furniture_boxes(furniture_poses):
            model = self.map.objects[name]
            pose = furniture_poses.get(name, self.map.nominal_poses[name])
            hull = Box(model.center, np.eye(3), model.size / 2).moved(pose)
            sel = np.flatnonzero(ok)
            sel = sel[hull.contains(pts[sel], cfg.furniture_margin)]
            for box in boxes:
                if len(sel) == 0:
                    break
                inside = box.contains(pts[sel], cfg.furniture_margin)
                ok[sel[inside]] = False
                sel = sel[~inside]
        keep = np.zeros(len(flat), dtype=bool)
        keep[idx[ok]] = True
        return keep.reshape(points.shape[:2])

    def _skin(self, rgb: np.ndarray) -> np.ndarray:
        """Skin-coloured pixels: a hue band from red to orange at moderate saturation."""
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
        hue = hsv[..., 0] * (360.0 / 256.0)
        hue = np.where(hue > 180.0, hue - 360.0, hue)
        sat = hsv[..., 1] / 255.0
        lo_h, hi_h = self.config.skin_hue
        lo_s, hi_s = self.config.skin_saturation
        return (hue >= lo_h) & (hue <= hi_h) & (sat >= lo_s) & (sat <= hi_s) & (hsv[..., 2] >= 50)

    def _blobs(self, keep: np.ndarray, points: np.ndarray, skin: np.ndarray, pixel_area: np.ndarray) -> list[_Blob]:
        """Connected components of ``keep``, joined when they touch in 3D."""
        n, labels = cv2.connectedComponents(keep.astype(np.uint8), connectivity=8)
        parts = []
        for i in range(1, n):
            rows, cols = np.nonzero(labels == i)
            if len(rows) < 3:
                continue
            pts = points[rows, cols].astype(np.float64)
            weights = pixel_area[rows, cols].astype(np.float64)
            parts.append(_Blob(rows, cols, pts, skin[rows, cols], weights, float(weights.sum())))
        if not parts:
            return []
        parent = list(range(len(parts)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, j in _touching(parts, self.config.join_distance):
            parent[find(i)] = find(j)
        groups: dict[int, list[_Blob]] = {}
        for i, p in enumerate(parts):
            groups.setdefault(find(i), []).append(p)
        return [
            _Blob(
                np.concatenate([p.rows for p in g]),
                np.concatenate([p.cols for p in g]),
                np.vstack([p.points for p in g]),
                np.concatenate([p.skin for p in g]),
                np.concatenate([p.weights for p in g]),
                sum(p.area for p in g),
            )
            for g in groups.values()
        ]

    def _measure(
        self,
        blob: _Blob,
        camera: CameraModel,
        frame: CameraFrame,
        stride: int,
        shape: tuple[int, int],
        furniture_poses: dict[str, np.ndarray],
    ) -> PersonDetection | None:
        """Person-sized? Then posture and key points; None for anything else."""
        cfg = self.config
        pts = blob.points
        if not cfg.min_area <= blob.area <= cfg.max_area:
            return None
        top, bottom = (float(v) for v in np.percentile(pts[:, 2], [98, 2]))
        centre = pts[:, :2].mean(axis=0)
        xy = pts[:, :2] - centre
        axis = _principal_axis(xy)
        along, across = xy @ axis, xy @ np.array([-axis[1], axis[0]])
        length = float(np.percentile(along, 98) - np.percentile(along, 2))
        width = float(np.percentile(across, 98) - np.percentile(across, 2))
        h, w = shape
        top_cut = bool(blob.rows.min() == 0)
        truncated = top_cut or blob.rows.max() == h - 1 or blob.cols.min() == 0 or blob.cols.max() == w - 1
        if top > cfg.max_top or length > cfg.max_length:
            return None
        if max(top - bottom, length) < cfg.min_extent and not truncated:
            return None
        on_bed, mattress = self._on_bed(pts, bottom, furniture_poses)
        posture, conf = classify_posture(top, length, on_bed, mattress, top_cut, _feet_offset(pts))
        legs_below = (mattress if on_bed and mattress is not None else 0.0) + LEGS_ABOVE_SEAT
        head, mouth, pelvis = _key_points(
            pts, blob.skin, posture, top, top_cut, axis, centre, camera, self._bed_axis(), legs_below, on_bed
        )
        skin_fraction = float(blob.skin.mean())
        if self.config.require_skin and self.onnx is None:
            conf *= min(1.0, 0.5 + 20.0 * skin_fraction)
        mask = np.zeros(shape, dtype=np.uint8)
        mask[blob.rows, blob.cols] = 1
        full = cv2.resize(mask, (camera.width, camera.height), interpolation=cv2.INTER_NEAREST).astype(bool)
        x0, y0 = int(blob.cols.min() * stride), int(blob.rows.min() * stride)
        x1 = min(camera.width, int((blob.cols.max() + 1) * stride))
        y1 = min(camera.height, int((blob.rows.max() + 1) * stride))
        return PersonDetection(
            position=pelvis,
            posture=posture,
            confidence=float(conf),
            timestamp=float(frame.timestamp),
            head=head,
            mouth=mouth,
            bbox=(x0, y0, x1, y1),
            top=top,
            bottom=bottom,
            length=length,
            width=width,
            area=blob.area,
            skin_fraction=skin_fraction,
            on_bed=on_bed,
            truncated=bool(truncated),
            source="onnx+depth" if self.onnx is not None else "depth_blob",
            mask=full,
            points=pts[:: max(1, len(pts) // 1500)],
        )

    def _on_bed(
        self, pts: np.ndarray, bottom: float, furniture_poses: dict[str, np.ndarray]
    ) -> tuple[bool, float | None]:
        for pose, model in self.map.beds(furniture_poses):
            local = apply(invert(pose), pts)
            lo, hi = model.center - model.size / 2, model.center + model.size / 2
            over = (local[:, 0] >= lo[0]) & (local[:, 0] <= hi[0]) & (local[:, 1] >= lo[1]) & (local[:, 1] <= hi[1])
            mattress = float(pose[2, 3] + (model.top_height or 0.0))
            if over.mean() >= 0.5 and bottom >= mattress - BED_CLEARANCE:
                return True, mattress
        return False, None

    def _bed_axis(self) -> np.ndarray | None:
        """Unit vector from the (first) bed's foot to its headboard (-x of the bed)."""
        for pose, _ in self.map.beds():
            return -pose[:2, 0]
        return None


def _touching(parts: list[_Blob], voxel: float) -> list[tuple[int, int]]:
    """Pairs of parts with points in the same or neighbouring ``voxel``-sized cells (about ``voxel`` apart)."""
    cells = [np.unique(np.floor(p.points / voxel).astype(np.int64), axis=0) for p in parts]
    offsets = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)], dtype=np.int64)
    keys = np.concatenate([_encode(c) for c in cells])
    owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(cells)])
    pairs = set()
    for i, c in enumerate(cells):
        grown = np.unique(_encode((c[:, None, :] + offsets[None]).reshape(-1, 3)))
        for j in np.unique(owner[np.isin(keys, grown)]):
            if j > i:
                pairs.add((i, int(j)))
    return sorted(pairs)


def _encode(cells: np.ndarray) -> np.ndarray:
    """One int64 per (x, y, z) cell index (|index| < 2^20)."""
    c = cells + (1 << 20)
    return (c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2]


def _depth_edges(depth: np.ndarray) -> np.ndarray:
    """Pixels next to a depth jump (a different surface): they split blobs."""
    d = np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    limit = 0.05 + 0.03 * d
    edges = np.zeros(d.shape, dtype=bool)
    dx = np.abs(np.diff(d, axis=1)) > limit[:, :-1]
    dy = np.abs(np.diff(d, axis=0)) > limit[:-1, :]
    edges[:, :-1] |= dx
    edges[:, 1:] |= dx
    edges[:-1, :] |= dy
    edges[1:, :] |= dy
    return edges


def _feet_offset(pts: np.ndarray) -> float | None:
    """Horizontal distance from the torso (above 0.85 m) to the feet (below 0.25 m); None if either is unseen."""
    low, high = pts[pts[:, 2] < 0.25], pts[pts[:, 2] > 0.85]
    if len(low) < 5 or len(high) < 5:
        return None
    return float(np.linalg.norm(np.median(low[:, :2], axis=0) - np.median(high[:, :2], axis=0)))


def _principal_axis(xy: np.ndarray) -> np.ndarray:
    if len(xy) < 3:
        return np.array([1.0, 0.0])
    cov = np.cov(xy.T)
    _, vecs = np.linalg.eigh(cov)
    return vecs[:, 1]


def _key_points(
    pts: np.ndarray,
    skin_area: np.ndarray,
    posture: Posture,
    top: float,
    top_cut: bool,
    axis: np.ndarray,
    centre: np.ndarray,
    camera: CameraModel,
    bed_axis: np.ndarray | None,
    legs_below: float = 0.25,
    on_bed: bool = False,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(head, mouth, pelvis) world points from the body's points and posture; head and mouth None when cut off.

    A seated person faces their legs: the points below ``legs_below`` (the feet in front of a chair,
    the legs stretched out on a bed); legs out of view, someone sitting up in bed faces its foot.
    """
    cam_xy = camera.pose[:2, 3]
    up = np.array([0.0, 0.0, 1.0])
    if posture.upright:
        upper = pts[pts[:, 2] > (top - 0.25 if not top_cut else 0.8)]
        head_xy = np.median(upper[:, :2], axis=0) if len(upper) else centre
        away = _unit(head_xy - cam_xy)
        head_xy = head_xy + SURFACE_TO_AXIS * away
        if top_cut:  # the head is above the image: pelvis at an adult's proportions, no head
            z = STANDING_PELVIS_RATIO * NOMINAL_HEIGHT if posture is Posture.STANDING else SEATED_PELVIS
            return None, None, np.array([*head_xy, z])
        head = np.array([*head_xy, top - HEAD_BELOW_TOP])
        if posture is Posture.STANDING:
            pelvis = np.array([*head_xy, STANDING_PELVIS_RATIO * top])
            facing = -away  # unknown from depth alone: assume the person faces the camera
        else:
            pelvis = np.array([*head_xy, max(0.3, top - SITTING_PELVIS_BELOW_TOP)])
            legs = pts[pts[:, 2] < legs_below]
            lap = np.median(legs[:, :2], axis=0) - head_xy if len(legs) >= 5 else np.zeros(2)
            if np.linalg.norm(lap) > 0.2:
                facing = _unit(lap)  # a seated person faces their feet
            elif on_bed and bed_axis is not None:
                facing = -bed_axis
            else:
                facing = -away
        mouth = head + MOUTH_FORWARD * np.array([*facing, 0.0]) + MOUTH_UP * up
        return head, mouth, pelvis
    along = (pts[:, :2] - centre) @ axis
    lo, hi = float(np.percentile(along, 1)), float(np.percentile(along, 99))
    near_lo = float(skin_area[along < lo + HEAD_END].sum())  # skin surface (m^2), not pixels: far ends are small
    near_hi = float(skin_area[along > hi - HEAD_END].sum())
    if near_lo == near_hi and bed_axis is not None and posture is Posture.LYING_IN_BED:
        toward_head = axis if float(axis @ bed_axis) > 0 else -axis  # tie: the pillow end of the bed
    else:
        toward_head = axis if near_hi >= near_lo else -axis  # the head is skin, the feet are clothed
    end = hi if toward_head is axis else -lo
    away = _unit(centre - cam_xy)
    push = LYING_SURFACE_TO_AXIS * (away - float(away @ axis) * axis)  # the camera sees the near flank
    head_xy = centre + toward_head * (end - HEAD_INSET) + push
    pelvis_xy = head_xy - toward_head * PELVIS_FROM_HEAD
    head = np.array([*head_xy, _local_height(pts, head_xy)])
    pelvis = np.array([*pelvis_xy, _local_height(pts, pelvis_xy)])
    mouth = head + MOUTH_FORWARD * up + MOUTH_UP * np.array([*toward_head, 0.0])
    return head, mouth, pelvis


def _local_height(pts: np.ndarray, xy: np.ndarray, radius: float = 0.2, below: float = 0.08) -> float:
    """Height of the body axis under ``xy``: the surface seen from above, minus half a body depth."""
    near = pts[np.hypot(pts[:, 0] - xy[0], pts[:, 1] - xy[1]) < radius]
    if len(near) == 0:
        return float(np.median(pts[:, 2])) - below
    return float(np.percentile(near[:, 2], 80)) - below


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])
