"""Rigid transforms and quaternions in plain numpy, so perception needs no physics engine.

Quaternions are (x, y, z, w), as everywhere in Tianji. Transforms are 4x4 homogeneous
matrices ``T_a_b`` mapping points from frame b to frame a.
"""

from __future__ import annotations

import math

import numpy as np


def transform(rotation: np.ndarray | None = None, translation: np.ndarray | None = None) -> np.ndarray:
    """4x4 transform from a 3x3 rotation and a 3-vector (identity parts when omitted)."""
    out = np.eye(4)
    if rotation is not None:
        out[:3, :3] = rotation
    if translation is not None:
        out[:3, 3] = np.asarray(translation, dtype=float).reshape(3)
    return out


def invert(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform (uses the transpose of the rotation)."""
    rot = pose[:3, :3]
    out = np.eye(4)
    out[:3, :3] = rot.T
    out[:3, 3] = -rot.T @ pose[:3, 3]
    return out


def apply(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (N, 3) or (3,) points."""
    pts = np.asarray(points, dtype=float)
    return pts @ pose[:3, :3].T + pose[:3, 3]


def rot_x(a: float) -> np.ndarray:
    """Rotation about x by ``a`` radians."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Rotation about y by ``a`` radians."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(a: float) -> np.ndarray:
    """Rotation about z by ``a`` radians."""
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """URDF roll-pitch-yaw (fixed axes x, then y, then z): R = Rz(yaw) Ry(pitch) Rx(roll)."""
    return rot_z(yaw) @ rot_y(pitch) @ rot_x(roll)


def yaw_of(rotation: np.ndarray) -> float:
    """Heading of a rotation's x axis in the world x-y plane, radians."""
    return math.atan2(rotation[1, 0], rotation[0, 0])


def quat_matrix(q: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """3x3 rotation from an (x, y, z, w) quaternion (normalised first)."""
    x, y, z, w = (float(v) for v in np.asarray(q, dtype=float) / np.linalg.norm(q))
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_quat(rotation: np.ndarray) -> np.ndarray:
    """(x, y, z, w) quaternion with w >= 0 from a 3x3 rotation (Shepperd's method)."""
    m = np.asarray(rotation, dtype=float)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
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
    return -out if out[3] < 0 else out


def angle_between(r1: np.ndarray, r2: np.ndarray) -> float:
    """Angle (radians) of the relative rotation between two 3x3 rotations."""
    c = (np.trace(r1.T @ r2) - 1.0) / 2.0
    return math.acos(max(-1.0, min(1.0, c)))


def wrap_angle(a: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi
