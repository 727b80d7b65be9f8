"""Cartesian end-effector control: move a frame to a pose along a speed-limited straight line.

The controller keeps its own joint reference ``q_ref`` (started from the measured joints)
and advances it each tick by one damped least-squares step towards the next point of a
minimum-jerk pose trajectory, then sends ``q_ref`` as position targets. Tracking the
reference rather than the measured joints keeps the motion smooth on position-controlled
robots; if something blocks the arm, the reference runs ahead and the contact force grows,
which is what the safety filter's force limit watches for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tianji.control.controllers.base import Controller, Status
from tianji.control.kinematics import Kinematics, damped_least_squares
from tianji.control.robot import Command, ControlMode, Observation, RobotSpec
from tianji.control.trajectory import PoseTrajectory
from tianji.control.transforms import invert, pose_error, pose_to_matrix

MAX_CORRECTION = 0.02  # m or rad: the most of the measured error fed back per second per unit gain


class CartesianController(Controller):
    """Drives ``frame`` to ``target`` (a (7,) pose, or a (3,) position keeping the current orientation).

    ``target`` is in the world frame (``Observation.base_pose`` relates it to the robot), or in
    the robot's base frame with ``in_base_frame=True``. The end effector moves at most
    ``max_linear_velocity`` m/s and ``max_angular_velocity`` rad/s; joints move at most
    ``joint_velocity_scale`` x their velocity limits and accelerate at most
    ``joint_acceleration`` rad/s^2. ``joints`` defaults to the chain from ``root`` (default:
    the URDF root) to ``frame``. ``integral_gain`` (1/s) feeds the measured error back into
    the reference so a sagging position loop still arrives. Succeeds when the measured pose
    is within the tolerances after the trajectory's end; fails ``settle_time`` s later otherwise.
    """

    def __init__(
        self,
        spec: RobotSpec,
        kinematics: Kinematics,
        frame: str,
        target: np.ndarray | Sequence[float],
        *,
        joints: Sequence[str] | None = None,
        root: str | None = None,
        in_base_frame: bool = False,
        max_linear_velocity: float = 0.15,
        max_angular_velocity: float = 0.6,
        joint_velocity_scale: float = 0.5,
        joint_acceleration: float = 5.0,
        position_tolerance: float = 0.005,
        orientation_tolerance: float = 0.05,
        damping: float = 1e-3,
        integral_gain: float = 3.0,
        limit_margin: float = 0.2,
        settle_time: float = 2.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__(timeout)
        if tuple(kinematics.joint_names) != tuple(spec.joint_names):
            raise ValueError("kinematics needs the robot's joint order: build it with Kinematics.for_spec(urdf, spec)")
        self.spec, self.kin, self.frame = spec, kinematics, frame
        self.joints = tuple(joints) if joints is not None else kinematics.chain(frame, root)
        self.cols = np.array([spec.index(j) for j in self.joints], dtype=np.int64)
        self.in_base_frame = in_base_frame
        self.max_linear_velocity = max_linear_velocity
        self.max_angular_velocity = max_angular_velocity
        self.joint_velocity = spec.velocity_limits[self.cols] * joint_velocity_scale
        self.joint_acceleration = joint_acceleration
        self._dq = np.zeros(len(self.cols))
        self.position_tolerance = position_tolerance
        self.orientation_tolerance = orientation_tolerance
        self.damping = damping
        self.integral_gain = integral_gain
        self.limit_margin = limit_margin
        self.settle_time = settle_time
        self.q_ref = np.zeros(spec.dof)
        self.trajectory: PoseTrajectory | None = None
        self.position_error = np.inf
        self.orientation_error = np.inf
        self._target = np.zeros(7)
        self._position_only = False
        self._set(target)

    def _set(self, target: np.ndarray | Sequence[float]) -> None:
        t = np.asarray(target, dtype=float)
        if t.shape not in ((3,), (7,)) or not np.all(np.isfinite(t)):
            raise ValueError(f"Cartesian target must be a finite (3,) position or (7,) pose, got {t!r}")
        self._position_only = t.shape == (3,)
        self._target = t

    def set_target(self, target: np.ndarray | Sequence[float], obs: Observation) -> None:
        """Retarget on the fly (e.g. to follow a moving mouth), replanning from the current reference."""
        self._set(target)
        self.t0 = float(obs.timestamp)
        self._plan(obs, self.kin.fk(self.q_ref, self.frame, self._base(obs)))
        self.status, self.message = Status.RUNNING, ""

    def _base(self, obs: Observation) -> np.ndarray | None:
        return None if self.in_base_frame else obs.base_pose.astype(float)

    def _plan(self, obs: Observation, start: np.ndarray) -> None:
        goal = pose_to_matrix(self._target)
        if self._position_only:
            goal[:3, :3] = start[:3, :3]
        self.trajectory = PoseTrajectory.between(start, goal, self.max_linear_velocity, self.max_angular_velocity)

    def _reset(self, obs: Observation) -> None:
        self.q_ref = obs.joint_positions.astype(float).copy()
        self._dq = np.zeros(len(self.cols))
        self._plan(obs, self.kin.fk(self.q_ref, self.frame, self._base(obs)))

    def _step(self, obs: Observation) -> Command:
        assert self.trajectory is not None
        t = self.elapsed(obs)
        base = self._base(obs)
        to_base = np.eye(4) if base is None else invert(pose_to_matrix(base))
        desired = to_base @ self.trajectory.sample(t)
        rows = slice(0, 3) if self._position_only else slice(0, 6)
        err = pose_error(self.kin.fk(self.q_ref, self.frame), desired)[rows]
        # integral action on the measured error removes the position loop's steady-state offset (gravity)
        measured = pose_error(self.kin.fk(obs.joint_positions.astype(float), self.frame), desired)[rows]
        dt = self.period(1.0 / self.spec.control_rate)
        err = err + self.integral_gain * dt * np.clip(measured, -MAX_CORRECTION, MAX_CORRECTION)
        jac = self.kin.jacobian(self.q_ref, self.frame, self.joints)[rows]
        lo, hi = self.spec.position_lower[self.cols], self.spec.position_upper[self.cols]
        dq = damped_least_squares(jac, err, self.q_ref[self.cols], lo, hi, self.damping, self.limit_margin)
        dq = np.clip(dq, -self.joint_velocity * dt, self.joint_velocity * dt)
        dv = self.joint_acceleration * dt * dt
        dq = np.clip(dq, self._dq - dv, self._dq + dv)
        self._dq = dq
        self.q_ref[self.cols] = np.clip(self.q_ref[self.cols] + dq, lo, hi)
        self._check(obs, t)
        return Command(ControlMode.POSITION, dict(zip(self.joints, self.q_ref[self.cols].tolist(), strict=True)))

    def _check(self, obs: Observation, t: float) -> None:
        assert self.trajectory is not None
        measured = self.kin.fk(obs.joint_positions.astype(float), self.frame, self._base(obs))
        goal = self.trajectory.goal
        err = pose_error(measured, goal)
        self.position_error = float(np.linalg.norm(err[:3]))
        self.orientation_error = 0.0 if self._position_only else float(np.linalg.norm(err[3:]))
        if t < self.trajectory.duration:
            return
        if self.position_error <= self.position_tolerance and self.orientation_error <= self.orientation_tolerance:
            self.succeed(f"reached within {self.position_error * 1000:.1f} mm, {self.orientation_error:.3f} rad")
        elif t >= self.trajectory.duration + self.settle_time:
            q = obs.joint_positions[self.cols].astype(float)
            lower, upper = self.spec.position_lower[self.cols], self.spec.position_upper[self.cols]
            at_limit = [j for j, m in zip(self.joints, np.minimum(q - lower, upper - q), strict=True) if m < 0.02]
            why = "out of reach, at a limit, or blocked"
            if at_limit:
                why += f" (at its limit: {', '.join(at_limit)})"
            self.fail(
                f"'{self.frame}' is {self.position_error * 1000:.0f} mm and {self.orientation_error:.2f} rad from the"
                f" target {self.settle_time:.1f} s after the trajectory ended: {why}"
            )

    def progress(self) -> str:
        return f"{self.position_error * 1000:.0f} mm and {self.orientation_error:.2f} rad from the target"
