"""Minimum-jerk trajectories: smooth joint or Cartesian motion that starts and ends at rest.

The minimum-jerk profile s(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5 (tau = t / T) has zero velocity
and acceleration at both ends; its peak speed is 1.875 * distance / T and its peak acceleration
5.7735 * distance / T^2, which :func:`min_jerk_duration` inverts to respect velocity and
acceleration limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tianji.control.transforms import matrix_to_pose, pose_to_matrix, rotation_exp, rotation_log

PEAK_VELOCITY = 1.875  # max of ds/dtau
PEAK_ACCELERATION = 10.0 / math.sqrt(3.0)  # max of d2s/dtau2, about 5.7735


def min_jerk(tau: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, ds/dtau, d2s/dtau2) of the minimum-jerk profile at normalised time ``tau`` (clipped to [0, 1])."""
    t = np.clip(np.asarray(tau, dtype=float), 0.0, 1.0)
    s = t**3 * (10 - 15 * t + 6 * t * t)
    ds = 30 * t**2 * (1 - t) ** 2
    dds = 60 * t * (1 - t) * (1 - 2 * t)
    return s, ds, dds


def min_jerk_duration(
    distance: np.ndarray | float,
    max_velocity: np.ndarray | float,
    max_acceleration: np.ndarray | float | None = None,
    minimum: float = 0.0,
) -> float:
    """Shortest duration (s) of a minimum-jerk move over ``distance`` within the velocity (and acceleration) limits."""
    d = np.abs(np.asarray(distance, dtype=float))
    v = np.asarray(max_velocity, dtype=float)
    if np.any(v <= 0):
        raise ValueError(f"max_velocity must be positive, got {max_velocity}")
    duration = float(np.max(PEAK_VELOCITY * d / v, initial=0.0))
    if max_acceleration is not None:
        a = np.asarray(max_acceleration, dtype=float)
        if np.any(a <= 0):
            raise ValueError(f"max_acceleration must be positive, got {max_acceleration}")
        duration = max(duration, float(np.max(np.sqrt(PEAK_ACCELERATION * d / a), initial=0.0)))
    return max(duration, minimum)


@dataclass
class MinJerkTrajectory:
    """A minimum-jerk move from ``start`` to ``goal`` (vectors of any length) over ``duration`` seconds."""

    start: np.ndarray
    goal: np.ndarray
    duration: float

    def __post_init__(self) -> None:
        self.start = np.asarray(self.start, dtype=float)
        self.goal = np.asarray(self.goal, dtype=float)
        if self.start.shape != self.goal.shape:
            raise ValueError(f"start {self.start.shape} and goal {self.goal.shape} must have the same shape")
        if not (np.all(np.isfinite(self.start)) and np.all(np.isfinite(self.goal))):
            raise ValueError("trajectory start and goal must be finite (no NaN or inf)")
        if self.duration < 0 or not math.isfinite(self.duration):
            raise ValueError(f"duration must be finite and >= 0, got {self.duration}")

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, velocity, acceleration) at time ``t`` seconds after the start."""
        delta = self.goal - self.start
        if self.duration <= 0.0:
            return self.goal.copy(), np.zeros_like(delta), np.zeros_like(delta)
        s, ds, dds = min_jerk(t / self.duration)
        return self.start + s * delta, ds / self.duration * delta, dds / self.duration**2 * delta

    def done(self, t: float) -> bool:
        """Whether ``t`` is past the end."""
        return t >= self.duration


@dataclass
class PoseTrajectory:
    """A minimum-jerk move between two 4x4 poses: straight line for the position, constant axis for the rotation."""

    start: np.ndarray
    goal: np.ndarray
    duration: float

    def __post_init__(self) -> None:
        self._rot = rotation_log(self.goal[:3, :3] @ self.start[:3, :3].T)

    @classmethod
    def between(
        cls,
        start: np.ndarray,
        goal: np.ndarray,
        max_linear_velocity: float,
        max_angular_velocity: float,
        minimum: float = 0.0,
    ) -> PoseTrajectory:
        """Shortest trajectory between (7,) or 4x4 poses within linear (m/s) and angular (rad/s) speed limits."""
        a = start if np.shape(start) == (4, 4) else pose_to_matrix(start)
        b = goal if np.shape(goal) == (4, 4) else pose_to_matrix(goal)
        distance = float(np.linalg.norm(b[:3, 3] - a[:3, 3]))
        angle = float(np.linalg.norm(rotation_log(b[:3, :3] @ a[:3, :3].T)))
        duration = max(
            min_jerk_duration(distance, max_linear_velocity), min_jerk_duration(angle, max_angular_velocity), minimum
        )
        return cls(a, b, duration)

    def sample(self, t: float) -> np.ndarray:
        """4x4 pose at time ``t`` seconds after the start."""
        s = float(min_jerk(t / self.duration)[0]) if self.duration > 0 else 1.0
        out = np.eye(4)
        out[:3, 3] = self.start[:3, 3] + s * (self.goal[:3, 3] - self.start[:3, 3])
        out[:3, :3] = rotation_exp(s * self._rot) @ self.start[:3, :3]
        return out

    def sample_pose(self, t: float) -> np.ndarray:
        """(7,) pose at time ``t``."""
        return matrix_to_pose(self.sample(t))
