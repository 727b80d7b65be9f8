"""Small pose helpers in plain numpy, so controllers need no simulator to do geometry.

Poses are (7,) arrays (x, y, z, qx, qy, qz, qw) as in :class:`~tianji.control.Observation`,
or 4x4 homogeneous matrices; quaternions are (x, y, z, w) everywhere.
"""

from __future__ import annotations

import math

import numpy as np


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a quaternion (x, y, z, w); the quaternion need not be normalised."""
    x, y, z, w = np.asarray(q, dtype=float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) with w >= 0 of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(r, dtype=float)
    t = np.trace(m)
    if t > 0:
        s = 2.0 * math.sqrt(t + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    out = np.array(q)
    out /= np.linalg.norm(out)
    return out if out[3] >= 0 else -out


def pose_to_matrix(pose: np.ndarray) -> np.ndarray:
    """4x4 transform of a (7,) pose (x, y, z, qx, qy, qz, qw); a (3,) position gives identity rotation."""
    p = np.asarray(pose, dtype=float)
    out = np.eye(4)
    out[:3, 3] = p[:3]
    if p.shape[0] >= 7:
        out[:3, :3] = quat_to_matrix(p[3:7])
    return out


def matrix_to_pose(m: np.ndarray) -> np.ndarray:
    """(7,) pose (x, y, z, qx, qy, qz, qw) of a 4x4 transform."""
    m = np.asarray(m, dtype=float)
    return np.concatenate([m[:3, 3], matrix_to_quat(m[:3, :3])])


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform."""
    out = np.eye(4)
    out[:3, :3] = m[:3, :3].T
    out[:3, 3] = -m[:3, :3].T @ m[:3, 3]
    return out


def rotation_log(r: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle, radians) of a 3x3 rotation matrix."""
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    angle = math.acos(cos)
    if angle < 1e-9:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if math.pi - angle < 1e-4:  # near pi the antisymmetric part vanishes: use the symmetric part
        b = (r + np.eye(3)) / 2.0
        axis = np.sqrt(np.clip(np.diag(b), 0.0, None))
        k = int(np.argmax(axis))
        axis = b[k] / max(axis[k], 1e-12)
        return axis / np.linalg.norm(axis) * angle
    return axis / (2.0 * math.sin(angle)) * angle


def rotation_exp(w: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a rotation vector (Rodrigues)."""
    w = np.asarray(w, dtype=float)
    angle = float(np.linalg.norm(w))
    if angle < 1e-12:
        return np.eye(3)
    k = w / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def pose_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(6,) error (dx, dy, dz, rx, ry, rz) that moves 4x4 ``current`` to ``target``, both in one frame.

    The rotation part is the rotation vector of target * current^-1, expressed in that frame.
    """
    dp = target[:3, 3] - current[:3, 3]
    dr = rotation_log(target[:3, :3] @ current[:3, :3].T)
    return np.concatenate([dp, dr])


def yaw_of(quat: np.ndarray) -> float:
    """Heading (rotation about z, radians) of a quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in quat)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def wrap_angle(a: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi
