"""Rigid transforms and quaternions in plain numpy, so perception needs no physics engine.

Quaternions are (x, y, z, w), as everywhere in Tianji. Transforms are 4x4 homogeneous
matrices ``T_a_b`` mapping points from frame b to frame a.
"""

from __future__ import annotations

import math

import numpy as np

from tianji.control import transforms


def transform(rotation: np.ndarray | None = None, translation: np.ndarray | None = None) -> np.ndarray:
    """4x4 transform from a 3x3 rotation and a 3-vector (identity parts when omitted)."""
    out = np.eye(4)
    if rotation is not None:
        out[:3, :3] = rotation
    if translation is not None:
        out[:3, 3] = np.asarray(translation, dtype=float).reshape(3)
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


def angle_between(r1: np.ndarray, r2: np.ndarray) -> float:
    """Angle (radians) of the relative rotation between two 3x3 rotations."""
    c = (np.trace(r1.T @ r2) - 1.0) / 2.0
    return math.acos(max(-1.0, min(1.0, c)))


# Shared with the control layer (one implementation of each):
invert = transforms.invert
quat_matrix = transforms.quat_to_matrix
matrix_quat = transforms.matrix_to_quat
wrap_angle = transforms.wrap_angle
