"""Joint-space control: minimum-jerk moves to joint targets, tracked by the robot's position loop or by our PD."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tianji.control.controllers.base import Controller
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Command, ControlMode, Observation, RobotSpec
from tianji.control.trajectory import MinJerkTrajectory, min_jerk_duration


def resolve_joints(
    spec: RobotSpec, goal: Mapping[str, float] | Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(spec indices, goal values) of a {joint: value} mapping or a full vector, clipped to the limits."""
    if isinstance(goal, Mapping):
        idx = np.array([spec.index(j) for j in goal], dtype=np.int64)
        values = np.array([float(v) for v in goal.values()])
    else:
        values = np.asarray(goal, dtype=float)
        if values.shape != (spec.dof,):
            raise ValueError(
                f"a full joint goal for '{spec.name}' needs {spec.dof} values in spec.joint_names order,"
                f" got shape {values.shape}; or pass {{joint name: value}}"
            )
        idx = np.arange(spec.dof)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"joint goal for '{spec.name}' has NaN or inf values: {values.tolist()}")
    return idx, np.clip(values, spec.position_lower[idx], spec.position_upper[idx])


class JointTrajectoryController(Controller):
    """Moves some joints to goal positions along a minimum-jerk trajectory.

    ``duration`` defaults to the shortest one that keeps every joint under
    ``velocity_scale`` x its velocity limit (and ``max_acceleration`` rad/s^2 when given).
    ``mode="position"`` sends the trajectory as position targets (the robot's own loop tracks
    them); ``mode="torque"`` closes a PD loop here, ``kp (q_ref - q) + kd (dq_ref - dq)``, plus
    gravity compensation when a :class:`Kinematics` is given. Succeeds once the trajectory has
    ended and every joint is within ``tolerance`` rad of its goal; fails when that has not
    happened ``settle_time`` seconds after the end.
    """

    def __init__(
        self,
        spec: RobotSpec,
        goal: Mapping[str, float] | Sequence[float] | np.ndarray,
        duration: float | None = None,
        *,
        velocity_scale: float = 0.5,
        max_acceleration: float | None = None,
        tolerance: float = 0.03,
        settle_time: float = 1.0,
        mode: ControlMode | str = ControlMode.POSITION,
        kp: float | np.ndarray = 50.0,
        kd: float | np.ndarray = 2.0,
        kinematics: Kinematics | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(timeout)
        self.spec = spec
        self.indices, self.goal = resolve_joints(spec, goal)
        self.names = [spec.joint_names[i] for i in self.indices]
        if not 0 < velocity_scale <= 1:
            raise ValueError(f"velocity_scale must be in (0, 1], got {velocity_scale}")
        self.mode = ControlMode(mode)
        if self.mode is ControlMode.VELOCITY:
            raise ValueError("JointTrajectoryController sends position or torque commands; use mode='position'")
        self.duration = duration
        self.velocity_scale = velocity_scale
        self.max_acceleration = max_acceleration
        self.tolerance = tolerance
        self.settle_time = settle_time
        self.kp, self.kd = kp, kd
        self.kinematics = kinematics
        self.trajectory: MinJerkTrajectory | None = None
        self.error = np.inf

    def _reset(self, obs: Observation) -> None:
        start = obs.joint_positions[self.indices].astype(float)
        duration = self.duration
        if duration is None:
            vmax = self.spec.velocity_limits[self.indices] * self.velocity_scale
            duration = min_jerk_duration(self.goal - start, vmax, self.max_acceleration, minimum=0.1)
        self.trajectory = MinJerkTrajectory(start, self.goal, duration)

    def _step(self, obs: Observation) -> Command:
        assert self.trajectory is not None
        t = self.elapsed(obs)
        q = obs.joint_positions[self.indices].astype(float)
        self.error = float(np.max(np.abs(self.goal - q), initial=0.0))
        if t >= self.trajectory.duration:
            if self.error <= self.tolerance:
                self.succeed(f"reached within {self.error:.3f} rad")
            elif t >= self.trajectory.duration + self.settle_time:
                worst = self.names[int(np.argmax(np.abs(self.goal - q)))]
                self.fail(
                    f"joint '{worst}' is still {self.error:.3f} rad from its goal {self.settle_time:.1f} s"
                    " after the trajectory ended: blocked, or tolerance too tight"
                )
        ref, vel, _ = self.trajectory.sample(t)
        if self.mode is ControlMode.POSITION:
            return Command(ControlMode.POSITION, dict(zip(self.names, ref.tolist(), strict=True)))
        dq = obs.joint_velocities[self.indices].astype(float)
        tau = self.kp * (ref - q) + self.kd * (vel - dq)
        if self.kinematics is not None:
            tau = tau + self.kinematics.gravity_torques(obs.joint_positions, obs.base_pose)[self.indices]
        return Command(ControlMode.TORQUE, dict(zip(self.names, tau.tolist(), strict=True)))

    def hold_command(self, obs: Observation) -> Command:
        if self.mode is ControlMode.TORQUE:  # hand the joints back to the robot's position loop
            q = obs.joint_positions[self.indices].astype(float)
            return Command(ControlMode.POSITION, dict(zip(self.names, q.tolist(), strict=True)))
        return Command(ControlMode.POSITION)

    def progress(self) -> str:
        return f"largest joint error {self.error:.3f} rad"


class KeyframeController(Controller):
    """Plays a list of joint keyframes ``[(targets, duration), ...]`` with minimum-jerk moves between them.

    Used for gestures (wave, nod, point): each keyframe's ``targets`` map joint names to
    positions; joints not named in a keyframe keep the value they had. ``hold`` maps joints
    that must stay put throughout (a humanoid's legs) to their positions.
    """

    def __init__(
        self,
        spec: RobotSpec,
        keyframes: Sequence[tuple[Mapping[str, float], float]],
        hold: Mapping[str, float] | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__(timeout)
        if not keyframes:
            raise ValueError("KeyframeController needs at least one (targets, duration) keyframe")
        self.spec = spec
        joints = sorted({spec.index(j) for targets, _ in keyframes for j in targets})
        self.indices = np.array(joints, dtype=np.int64)
        self.names = [spec.joint_names[i] for i in joints]
        self.keyframes = [(dict(t), float(d)) for t, d in keyframes]
        for _, d in self.keyframes:
            if d <= 0:
                raise ValueError(f"keyframe durations must be positive seconds, got {d}")
        self.hold = dict(hold or {})
        self._segments: list[MinJerkTrajectory] = []
        self._ends: np.ndarray = np.zeros(0)

    def _reset(self, obs: Observation) -> None:
        current = obs.joint_positions[self.indices].astype(float)
        self._segments = []
        for targets, duration in self.keyframes:
            goal = current.copy()
            for j, v in targets.items():
                goal[self.names.index(j)] = v
            goal = np.clip(goal, self.spec.position_lower[self.indices], self.spec.position_upper[self.indices])
            self._segments.append(MinJerkTrajectory(current, goal, duration))
            current = goal
        self._ends = np.cumsum([s.duration for s in self._segments])

    def _step(self, obs: Observation) -> Command:
        t = self.elapsed(obs)
        k = int(np.searchsorted(self._ends, t, side="right"))
        if k >= len(self._segments):
            self.succeed(f"played {len(self._segments)} keyframes")
            ref = self._segments[-1].goal
        else:
            ref = self._segments[k].sample(t - (self._ends[k] - self._segments[k].duration))[0]
        targets = {**self.hold, **dict(zip(self.names, ref.tolist(), strict=True))}
        return Command(ControlMode.POSITION, targets)

    def progress(self) -> str:
        return f"{len(self._segments)} keyframes"
