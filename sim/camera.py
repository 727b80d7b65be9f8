"""Pinhole cameras rendered by PyBullet, returned as :class:`~tianji.control.CameraFrame`.

Poses use the OpenCV optical convention (x right, y down, z forward) so perception can
use OpenCV directly; PyBullet's OpenGL camera (y up, looking along -z) is derived here.
The principal point is the image centre in continuous pixel coordinates: pixel (i, j)
covers [i, i+1) x [j, j+1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from tianji.control.robot import CameraFrame

_OPTICAL_TO_GL = np.diag([1.0, -1.0, -1.0])  # flip y and z: optical frame -> OpenGL camera frame


@dataclass(frozen=True)
class CameraIntrinsics:
    """Image size, vertical field of view and clipping planes of a pinhole camera."""

    width: int = 320
    height: int = 240
    fov_deg: float = 60.0  # vertical
    near: float = 0.05
    far: float = 10.0

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if not 1.0 <= self.fov_deg <= 170.0:
            raise ValueError(f"camera fov_deg must be in [1, 170] degrees, got {self.fov_deg}")
        if not 0 < self.near < self.far:
            raise ValueError(f"camera clipping planes need 0 < near < far, got near={self.near}, far={self.far}")

    @property
    def matrix(self) -> np.ndarray:
        """3x3 K with square pixels and the principal point at the image centre."""
        f = 0.5 * self.height / math.tan(math.radians(self.fov_deg) / 2)
        return np.array([[f, 0.0, self.width / 2], [0.0, f, self.height / 2], [0.0, 0.0, 1.0]])

    def projection_gl(self) -> list[float]:
        """PyBullet/OpenGL projection matrix matching :attr:`matrix`.

        PyBullet's renderer samples pixel centres half a pixel off the OpenGL convention
        (measured: drawn +0.5 px in x, -0.5 px in y). The projection is shifted by half a
        pixel so the image agrees with K, whose principal point is the image centre.
        """
        proj = list(pb.computeProjectionMatrixFOV(self.fov_deg, self.width / self.height, self.near, self.far))
        proj[8] += 1.0 / self.width  # column-major: row 0, column 2 (x offset in NDC)
        proj[9] += 1.0 / self.height  # row 1, column 2 (y offset in NDC)
        return proj


def look_at(
    eye: np.ndarray | list[float], target: np.ndarray | list[float], up: tuple[float, float, float] = (0, 0, 1)
) -> np.ndarray:
    """4x4 world <- optical-camera pose for a camera at ``eye`` looking at ``target``."""
    eye_v, target_v = np.asarray(eye, dtype=float), np.asarray(target, dtype=float)
    z = target_v - eye_v
    if np.linalg.norm(z) < 1e-9:
        raise ValueError("look_at: eye and target are the same point")
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=float))
    if np.linalg.norm(x) < 1e-9:  # looking straight along 'up': pick any perpendicular
        x = np.cross(z, [1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([x, y, z])
    pose[:3, 3] = eye_v
    return pose


def pose_from_pybullet(position: tuple[float, ...], quaternion: tuple[float, ...]) -> np.ndarray:
    """4x4 transform from a PyBullet position and (x, y, z, w) quaternion."""
    pose = np.eye(4)
    pose[:3, :3] = np.array(pb.getMatrixFromQuaternion(quaternion)).reshape(3, 3)
    pose[:3, 3] = position
    return pose


def depth_from_buffer(buffer: np.ndarray, near: float, far: float) -> np.ndarray:
    """Convert PyBullet's non-linear [0, 1] depth buffer to metres along the optical axis."""
    return (far * near / (far - (far - near) * buffer)).astype(np.float32)


def render(
    client: object,
    intrinsics: CameraIntrinsics,
    pose: np.ndarray,
    *,
    name: str = "camera",
    timestamp: float = 0.0,
    segmentation: bool = True,
    shadows: bool = False,
    renderer: int = pb.ER_TINY_RENDERER,
) -> CameraFrame:
    """Render RGB, depth (m) and segmentation (body ids, -1 background) from ``pose``."""
    gl_pose = np.eye(4)
    gl_pose[:3, :3] = pose[:3, :3] @ _OPTICAL_TO_GL
    gl_pose[:3, 3] = pose[:3, 3]
    view = np.linalg.inv(gl_pose).T.reshape(-1).tolist()  # column-major for OpenGL
    flags = 0 if segmentation else pb.ER_NO_SEGMENTATION_MASK
    w, h = intrinsics.width, intrinsics.height
    _, _, rgba, depth, seg = client.getCameraImage(  # type: ignore[attr-defined]
        w,
        h,
        viewMatrix=view,
        projectionMatrix=intrinsics.projection_gl(),
        renderer=renderer,
        flags=flags,
        shadow=int(shadows),
        lightDirection=[1.0, 0.6, 2.0],
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()
    depth_m = depth_from_buffer(np.asarray(depth, dtype=np.float32).reshape(h, w), intrinsics.near, intrinsics.far)
    mask = np.asarray(seg, dtype=np.int32).reshape(h, w) if segmentation else None
    return CameraFrame(
        name=name,
        timestamp=timestamp,
        rgb=rgb,
        depth=depth_m,
        intrinsics=intrinsics.matrix,
        pose=pose.copy(),
        segmentation=mask,
    )
