"""ArUco markers -> 6-DoF object poses (cv2.aruco + solvePnP IPPE_SQUARE, refined with depth).

Pipeline per marker: detect corners (contour-refined) -> both IPPE_SQUARE solutions for the
black square (3/4 of the card edge) -> keep the one whose face normal agrees with how the
card is mounted on an upright object -> re-fit yaw and position with the card's tilt fixed
by that mounting -> rescale the translation so the marker plane agrees with the depth image
-> for a card on a vertical face, take the yaw from a plane fitted to the depth inside it ->
object base frame = marker pose x inverse of the URDF ``marker_joint`` mounting.
Objects stand upright (furniture, things on a table), so only the yaw comes from the marker:
tilt noise of a marker a few pixels wide would otherwise swing the base frame, which sits
centimetres (a table: half a metre) away from the card.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tianji.control.robot import CameraFrame
from tianji.perception.camera import CameraModel, valid_depth
from tianji.perception.detection import Detection
from tianji.perception.geometry import invert, matrix_quat, rot_z, transform, yaw_of
from tianji.perception.scene_map import CARD_THICKNESS, MARKER_DICTIONARY, SceneMap

DEPTH_RATIO_RANGE = (0.7, 1.4)  # a depth correction outside this is an occlusion, not a range error
DEPTH_SAMPLES = 7  # per side: a 7 x 7 grid of depth samples inside the black square
PLANE_RMS = 0.002  # m: depth inside a card rougher than this is not trusted for its normal


class MarkerDetector:
    """Find the scene's ArUco markers and turn each into the pose of the object that carries it."""

    def __init__(self, scene_map: SceneMap, *, refine_with_depth: bool = True, upright: bool = True) -> None:
        self.map = scene_map
        self.refine_with_depth = refine_with_depth
        self.upright = upright
        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, MARKER_DICTIONARY))
        params = cv2.aruco.DetectorParameters()
        # contour refinement: on 8-20 px markers seen at grazing angles it halves the corner error of SUBPIX
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_CONTOUR
        self._detector = cv2.aruco.ArucoDetector(dictionary, params)
        self._names = scene_map.marker_names

    def detect(self, frame: CameraFrame, camera: CameraModel, gray: np.ndarray | None = None) -> list[Detection]:
        """Detections (source ``"aruco"``) of every catalogued marker visible in ``frame``."""
        if gray is None:
            gray = cv2.cvtColor(np.ascontiguousarray(frame.rgb), cv2.COLOR_RGB2GRAY)
        corners, ids, _ = self._detector.detectMarkers(gray)
        if ids is None:
            return []
        out = []
        for quad, marker_id in zip(corners, ids.ravel(), strict=True):
            name = self._names.get(int(marker_id))
            if name is None:
                continue  # a marker that is not in this scene's catalogue
            det = self._pose(name, int(marker_id), quad.reshape(4, 2).astype(np.float64), frame, camera)
            if det is not None:
                out.append(det)
        return out

    def _pose(
        self, name: str, marker_id: int, quad: np.ndarray, frame: CameraFrame, camera: CameraModel
    ) -> Detection | None:
        model = self.map.objects[name]
        side = model.black_square
        if side is None or model.marker_in_object is None:
            return None
        h = side / 2
        square = np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])
        ok, rvecs, tvecs, errors = cv2.solvePnPGeneric(
            square, quad, camera.k_opencv, None, flags=cv2.SOLVEPNP_IPPE_SQUARE
        )
        if not ok or len(rvecs) == 0:
            return None
        mount = model.marker_in_object
        expected_up = float(mount[2, 2])  # z of the card's face normal on an upright object
        corners = quad + 0.5  # OpenCV pixel centres -> continuous coordinates
        plane = _depth_plane(corners, frame.depth, camera) if self.refine_with_depth else None
        best, best_score = None, math.inf
        for rvec, tvec, err in zip(rvecs, tvecs, np.ravel(errors), strict=True):
            rot = cv2.Rodrigues(rvec)[0]
            normal = camera.pose[:3, :3] @ rot[:, 2]
            score = float(err)  # reprojection error (px); the two IPPE solutions of a small marker are close
            if self.upright:
                score += 10.0 * abs(float(normal[2]) - expected_up)
            if plane is not None:  # the mirror solution's normal disagrees with the depth plane
                score += 10.0 * (1.0 - float(normal @ plane))
            if score < best_score:
                best, best_score = (rot, tvec.ravel(), float(err)), score
        assert best is not None
        rot, tvec, err = best
        if self.upright:  # refit with the card's tilt fixed by the mounting: only yaw and position free
            rot, tvec, err = _upright_fit(rot, tvec, mount, square, corners, camera)
        if self.refine_with_depth:
            tvec = tvec * _depth_ratio(rot, tvec, corners, frame.depth, camera)
        surface = camera.pose @ transform(rot, tvec)  # world <- printed face of the card
        link = surface @ transform(None, (0.0, 0.0, -CARD_THICKNESS / 2))
        obj = link @ invert(mount)
        if self.upright:
            yaw = yaw_of(obj[:3, :3])
            if plane is not None:
                yaw = _depth_yaw(yaw, surface, mount, plane)
            rot_up = rot_z(yaw)
            obj = transform(rot_up, link[:3, 3] - rot_up @ mount[:3, 3])
        side_px = float(np.mean(np.linalg.norm(corners - np.roll(corners, 1, axis=0), axis=1)))
        confidence = float(np.clip((side_px - 5.0) / 15.0, 0.1, 1.0) * math.exp(-err / 2.0))
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        return Detection(
            name=name,
            position=obj[:3, 3].copy(),
            orientation=matrix_quat(obj[:3, :3]),
            confidence=confidence,
            timestamp=float(frame.timestamp),
            source="aruco",
            bbox=(int(x0), int(y0), int(x1), int(y1)),
            marker_id=marker_id,
            corners=corners,
            marker_pose=surface,
            pixels=int(side_px**2),
        )


def _upright_fit(
    rot: np.ndarray, tvec: np.ndarray, mount: np.ndarray, square: np.ndarray, corners: np.ndarray, camera: CameraModel
) -> tuple[np.ndarray, np.ndarray, float]:
    """Re-fit a marker pose with the card tilted as its upright object holds it: yaw and position only.

    Gauss-Newton on the corner reprojection error (pixels), started from the IPPE solution.
    Returns (rotation camera <- card, translation, RMS error in pixels).
    """
    cam_rot, cam_pos = camera.pose[:3, :3], camera.pose[:3, 3]
    world_rot = cam_rot @ rot
    card_in_obj = mount[:3, :3]
    yaw0 = yaw_of(world_rot @ card_in_obj.T)
    params = np.array([yaw0, *(cam_rot @ tvec + cam_pos)])
    local = square @ card_in_obj.T  # card corners in an object-aligned frame at the card centre

    def residual(p: np.ndarray) -> np.ndarray:
        world = p[1:] + local @ rot_z(p[0]).T
        uv, _ = camera.project(world)
        return (uv - corners).ravel()

    r = residual(params)
    for _ in range(8):
        jac = np.empty((len(r), 4))
        for k, eps in enumerate((1e-5, 1e-6, 1e-6, 1e-6)):
            step = np.zeros(4)
            step[k] = eps
            jac[:, k] = (residual(params + step) - r) / eps
        if not np.all(np.isfinite(jac)):
            break
        delta = np.linalg.lstsq(jac.T @ jac + 1e-9 * np.eye(4), -jac.T @ r, rcond=None)[0]
        trial = params + delta
        r_trial = residual(trial)
        if not np.all(np.isfinite(r_trial)) or r_trial @ r_trial > r @ r:
            break
        params, r = trial, r_trial
        if float(np.abs(delta).max()) < 1e-7:
            break
    world_rot = rot_z(params[0]) @ card_in_obj
    rms = float(np.sqrt(np.mean(r.reshape(-1, 2) ** 2 @ np.ones(2))))
    return cam_rot.T @ world_rot, cam_rot.T @ (params[1:] - cam_pos), rms


def _depth_yaw(yaw: float, surface: np.ndarray, mount: np.ndarray, plane: np.ndarray) -> float:
    """For a card on a vertical face, the object's yaw from the heading of the depth plane's normal.

    The corners of a marker only a few pixels wide give its normal to a few degrees, which
    swings the object's base frame by millimetres to centimetres; a depth plane does better
    when the depth is good. Falls back to ``yaw`` for cards facing up, or when the plane
    disagrees with the marker by more than 25 degrees.
    """
    normal_obj = mount[:3, 2]
    if abs(normal_obj[2]) > 0.5 or float(plane @ surface[:3, 2]) < math.cos(math.radians(25)):
        return yaw
    return math.atan2(plane[1], plane[0]) - math.atan2(normal_obj[1], normal_obj[0])


def _depth_plane(corners: np.ndarray, depth: np.ndarray, camera: CameraModel) -> np.ndarray | None:
    """World normal (towards the camera) of a plane fitted to the depth inside the marker; None if rough or unseen."""
    pts = _inside_points(corners, depth, camera)
    if pts is None:
        return None
    centre = pts.mean(axis=0)
    _, sv, vt = np.linalg.svd(pts - centre, full_matrices=False)
    if float(sv[2]) / math.sqrt(len(pts)) > PLANE_RMS:
        return None  # not one flat card: occluded, or straddling an edge
    return vt[2] if vt[2] @ (camera.pose[:3, 3] - centre) > 0 else -vt[2]


def _inside_points(corners: np.ndarray, depth: np.ndarray, camera: CameraModel) -> np.ndarray | None:
    """World points of the pixels well inside the marker quad (shrunk to 80 %), None if fewer than 8."""
    centre = corners.mean(axis=0)
    quad = centre + 0.8 * (corners - centre)
    x0, y0 = np.maximum(np.floor(quad.min(axis=0)).astype(int), 0)
    x1 = min(int(np.ceil(quad[:, 0].max())) + 1, depth.shape[1])
    y1 = min(int(np.ceil(quad[:, 1].max())) + 1, depth.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.round((quad - 0.5 - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    rows, cols = np.nonzero(mask)
    d = depth[rows + y0, cols + x0].astype(float)
    ok = valid_depth(d)
    if ok.sum() < 8:
        return None
    uv = np.column_stack([cols[ok] + x0 + 0.5, rows[ok] + y0 + 0.5])
    return camera.backproject(uv, d[ok])


def _depth_ratio(
    rot: np.ndarray, tvec: np.ndarray, corners: np.ndarray, depth: np.ndarray, camera: CameraModel
) -> float:
    """Median measured / predicted depth over the marker's inside; 1.0 when depth cannot be trusted."""
    s = np.linspace(0.2, 0.8, DEPTH_SAMPLES)
    a, b = np.meshgrid(s, s)
    a, b = a.ravel()[:, None], b.ravel()[:, None]
    c = corners
    uv = (1 - a) * (1 - b) * c[0] + a * (1 - b) * c[1] + a * b * c[2] + (1 - a) * b * c[3]  # bilinear in the quad
    cols, rows = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = (cols >= 0) & (rows >= 0) & (cols < depth.shape[1]) & (rows < depth.shape[0])
    cols, rows = cols[inside], rows[inside]
    if len(cols) < 4:
        return 1.0
    measured = depth[rows, cols].astype(float)
    k = camera.intrinsics
    ray = np.column_stack([(cols + 0.5 - k[0, 2]) / k[0, 0], (rows + 0.5 - k[1, 2]) / k[1, 1], np.ones(len(cols))])
    normal = rot[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = float(normal @ tvec) / (ray @ normal)
        ratio = measured / predicted
    good = valid_depth(measured) & np.isfinite(ratio) & (predicted > 0)
    if good.sum() < 4:
        return 1.0
    r = float(np.median(ratio[good]))
    spread = float(np.median(np.abs(ratio[good] - r)))
    if not DEPTH_RATIO_RANGE[0] <= r <= DEPTH_RATIO_RANGE[1] or spread > 0.02:
        return 1.0
    return r
