"""Pinhole camera model: pixel + depth <-> world point, RGB-D -> point cloud, frame checks.

Conventions (the same as ``tianji.sim.camera`` and ``CameraFrame``):

* ``pose`` is the 4x4 transform world <- camera, camera frame in the OpenCV optical
  convention: x right, y down, z forward.
* ``depth`` is metres along the optical axis (z), not along the ray.
* Continuous pixel coordinates: pixel (column i, row j) covers [i, i+1) x [j, j+1), so its
  centre is (i + 0.5, j + 0.5) and the principal point of a centred camera is (W/2, H/2).
  OpenCV puts pixel centres on integers instead; :attr:`CameraModel.k_opencv` is K shifted
  by half a pixel for cv2 functions (solvePnP, projectPoints) that use that convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tianji.control.errors import TianjiError
from tianji.control.robot import CameraFrame


class FrameError(TianjiError, ValueError):
    """A camera frame that cannot be used: wrong shapes or types, sizes that disagree, bad K or pose."""


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics K (3x3), extrinsics (4x4 world <- optical camera) and image size."""

    intrinsics: np.ndarray
    pose: np.ndarray
    width: int
    height: int

    @classmethod
    def from_frame(cls, frame: CameraFrame) -> CameraModel:
        """The camera model of a checked frame (see :func:`check_frame`)."""
        check_frame(frame)
        return cls(np.asarray(frame.intrinsics, float), np.asarray(frame.pose, float), *frame.size)

    @property
    def k_opencv(self) -> np.ndarray:
        """K with the principal point moved by -0.5 px: OpenCV's pixel-centre-on-integer convention."""
        k = self.intrinsics.copy()
        k[0, 2] -= 0.5
        k[1, 2] -= 0.5
        return k

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) points in the optical camera frame."""
        rot, t = self.pose[:3, :3], self.pose[:3, 3]
        return (np.asarray(points, float) - t) @ rot

    def camera_to_world(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) optical-frame points -> (N, 3) world points."""
        return np.asarray(points, float) @ self.pose[:3, :3].T + self.pose[:3, 3]

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points -> (uv (N, 2) continuous pixel coordinates, depth (N,) along the optical axis).

        Points behind the camera get NaN coordinates; the pixel index is ``floor(uv)``.
        """
        cam = self.world_to_camera(np.atleast_2d(points))
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = (cam[:, :2] / z[:, None]) * np.diag(self.intrinsics)[:2] + self.intrinsics[:2, 2]
        uv[z <= 0] = np.nan
        return uv, z

    def backproject(self, uv: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """Continuous pixel coordinates (N, 2) and depths (N,) -> (N, 3) world points."""
        uv = np.atleast_2d(np.asarray(uv, float))
        z = np.broadcast_to(np.asarray(depth, float), (uv.shape[0],))
        k = self.intrinsics
        x = (uv[:, 0] - k[0, 2]) / k[0, 0] * z
        y = (uv[:, 1] - k[1, 2]) / k[1, 1] * z
        return self.camera_to_world(np.column_stack([x, y, z]))

    def ray(self, uv: np.ndarray) -> np.ndarray:
        """Unit viewing rays (N, 3) in the world frame through continuous pixel coordinates."""
        uv = np.atleast_2d(np.asarray(uv, float))
        k = self.intrinsics
        d = np.column_stack([(uv[:, 0] - k[0, 2]) / k[0, 0], (uv[:, 1] - k[1, 2]) / k[1, 1], np.ones(len(uv))])
        d = d @ self.pose[:3, :3].T
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def point_map(self, depth: np.ndarray, stride: int = 1) -> np.ndarray:
        """(H', W', 3) world points of every ``stride``-th pixel centre; invalid depths give NaN.

        With ``stride`` s the result has shape (ceil(H/s), ceil(W/s), 3) and element (r, c)
        is pixel (c*s, r*s).
        """
        d = np.asarray(depth, dtype=np.float32)[::stride, ::stride]
        rows = np.arange(0, self.height, stride, dtype=np.float32) + 0.5
        cols = np.arange(0, self.width, stride, dtype=np.float32) + 0.5
        k = self.intrinsics.astype(np.float32)
        xn = (cols - k[0, 2]) / k[0, 0]
        yn = (rows - k[1, 2]) / k[1, 1]
        cam = np.empty((*d.shape, 3), dtype=np.float32)
        cam[..., 0] = xn[None, :] * d
        cam[..., 1] = yn[:, None] * d
        cam[..., 2] = d
        rot = self.pose[:3, :3].astype(np.float32)
        out = cam @ rot.T + self.pose[:3, 3].astype(np.float32)
        out[~valid_depth(d)] = np.nan
        return out

    def point_cloud(self, frame: CameraFrame, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """RGB-D -> (points (N, 3) world, colours (N, 3) uint8) of the pixels with a valid depth."""
        pts = self.point_map(frame.depth, stride)
        rgb = np.asarray(frame.rgb)[::stride, ::stride]
        ok = np.isfinite(pts[..., 0])
        return pts[ok].astype(float), rgb[ok]


MAX_RANGE = 8.0  # m; farther depths (the simulator's far plane, no return) count as invalid


def valid_depth(depth: np.ndarray, max_range: float = MAX_RANGE) -> np.ndarray:
    """Mask of usable depth values: finite, positive and closer than ``max_range``."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > 0) & (depth < max_range)


def check_frame(frame: CameraFrame) -> None:
    """Raise :class:`FrameError` saying what is wrong with ``frame``; return None when it is usable."""
    rgb, depth = np.asarray(frame.rgb), np.asarray(frame.depth)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise FrameError(
            f"frame '{frame.name}': rgb must be a non-empty (H, W, 3) array, got shape {rgb.shape};"
            " pass the colour image as height x width x 3 uint8"
        )
    if rgb.dtype != np.uint8:
        raise FrameError(f"frame '{frame.name}': rgb must be uint8, got {rgb.dtype}; convert with .astype(np.uint8)")
    if depth.shape != rgb.shape[:2]:
        raise FrameError(
            f"frame '{frame.name}': depth has shape {depth.shape} but rgb is {rgb.shape[:2]};"
            " register the depth image to the colour image (same size) before perception"
        )
    if not np.issubdtype(depth.dtype, np.floating):
        raise FrameError(
            f"frame '{frame.name}': depth must be float metres, got {depth.dtype};"
            " convert millimetre images with depth.astype(np.float32) / 1000"
        )
    k = np.asarray(frame.intrinsics, dtype=float)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise FrameError(f"frame '{frame.name}': intrinsics must be a finite 3x3 K with fx, fy > 0, got {k.tolist()}")
    pose = np.asarray(frame.pose, dtype=float)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
        raise FrameError(f"frame '{frame.name}': pose must be a finite 4x4 world <- camera transform")
    rot = pose[:3, :3]
    if not np.allclose(rot.T @ rot, np.eye(3), atol=1e-4) or np.linalg.det(rot) < 0:
        raise FrameError(f"frame '{frame.name}': pose rotation is not a proper rotation matrix (orthonormal, det +1)")
    if frame.segmentation is not None and np.asarray(frame.segmentation).shape not in ((), rgb.shape[:2]):
        raise FrameError(
            f"frame '{frame.name}': segmentation has shape {np.asarray(frame.segmentation).shape},"
            f" rgb is {rgb.shape[:2]}; pass None when there is no mask"
        )
