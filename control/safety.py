"""The safety filter: a Robot that wraps a Robot and lets only safe commands through.

``SafeRobot(robot, SafetyLimits(...))`` implements :class:`~tianji.control.Robot` itself, so
skills, the control loop and the bridge server use it without knowing it is there. On every
``command()`` it, in order:

1. refuses everything while an emergency stop or a contact stop is latched (``SafetyStopError``);
2. reads the person-contact force (``person_force()`` callable) and, above the limit, stops the
   robot, backs the arm off to where it was commanded before the contact began, and latches;
3. rejects commands with NaN/inf, unknown joints or a wrong shape whole (``InvalidCommandError``):
   nothing of them reaches the robot;
4. clamps position targets into the joint limits (minus a margin), then rate-limits them so the
   target moves within the velocity and acceleration limits (targets the robot has not reached
   yet keep ramping on later commands, so send a command every control step; an empty
   ``Command()`` will do); clamps velocity commands to the velocity and acceleration limits and
   stops joints at a position limit from moving further out; clamps torques to the effort limits;
5. keeps predicted end-effector positions inside a workspace box (with kinematics);
6. clamps the base twist and its acceleration, and the gripper opening to [0, 1].

Every intervention is counted in ``interventions`` (a Counter by reason, one per command that
needed it), kept in ``events`` (the latest 1000) and logged on the ``tianji.control.safety``
logger: limit clamps at DEBUG, rejections and stops at WARNING.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tianji.control.errors import InvalidCommandError, TianjiError
from tianji.control.kinematics import Kinematics
from tianji.control.robot import BaseType, Command, ControlMode, Observation, Robot, RobotSpec

log = logging.getLogger(__name__)

# reasons, the keys of SafeRobot.interventions
POSITION = "position_limit"
VELOCITY = "velocity_limit"
ACCELERATION = "acceleration_limit"
EFFORT = "effort_limit"
INVALID = "invalid_command"
WORKSPACE = "workspace"
PERSON_FORCE = "person_force"
EMERGENCY_STOP = "emergency_stop"
REFUSED = "refused_while_stopped"
BASE_VELOCITY = "base_velocity"
BASE_ACCELERATION = "base_acceleration"
GRIPPER = "gripper_limit"


class SafetyStopError(TianjiError, RuntimeError):
    """A command was refused because a safety stop is latched; ``reason`` says which. Call reset() to clear."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SafetyLimits:
    """What the filter enforces, on top of the robot spec's own limits.

    ``dt`` is the time between commands used for rate limiting (default: 1 / spec.control_rate).
    ``workspace`` is a box ((xmin, ymin, zmin), (xmax, ymax, zmax)) that the ``workspace_frames``
    (URDF links) must stay in, in the world frame or, with ``workspace_in_base_frame``, in the
    robot's base frame (natural for a mobile base); it needs kinematics.
    """

    position_margin: float = 0.0  # rad or m kept clear of each joint limit
    velocity_scale: float = 1.0  # fraction of the spec's velocity limits
    acceleration: float | Sequence[float] = 10.0  # rad/s^2 or m/s^2 per joint
    effort_scale: float = 1.0  # fraction of the spec's effort limits
    base_velocity: tuple[float, float, float] = (0.5, 0.5, 1.0)  # |vx| m/s, |vy| m/s, |wz| rad/s
    base_acceleration: tuple[float, float] = (0.5, 1.5)  # linear m/s^2, angular rad/s^2
    workspace: tuple[Sequence[float], Sequence[float]] | None = None
    workspace_frames: tuple[str, ...] = ()
    workspace_in_base_frame: bool = False
    person_force_limit: float = 10.0  # N
    contact_threshold: float = 1.0  # N: a contact episode starts above this force
    backoff_time: float = 0.5  # s: back off to the target commanded this long before contact began
    dt: float | None = None

    def __post_init__(self) -> None:
        for name in ("velocity_scale", "effort_scale"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"SafetyLimits.{name} must be in (0, 1], got {value}")
        if self.person_force_limit <= 0 or self.position_margin < 0:
            raise ValueError("SafetyLimits.person_force_limit must be > 0 and position_margin >= 0")
        if self.workspace is not None and not self.workspace_frames:
            raise ValueError("a workspace box needs workspace_frames: the URDF links to keep inside it")


@dataclass(frozen=True)
class Intervention:
    """One thing the filter did: when (monotonic seconds), why, and details."""

    time: float
    reason: str
    detail: str


@dataclass
class _JointState:
    """Rate limiter state in spec order."""

    target: np.ndarray
    velocity: np.ndarray
    desired: np.ndarray
    desired_velocity: np.ndarray
    position_mode: np.ndarray  # joints the filter drives with position targets
    velocity_command: np.ndarray
    history: deque[np.ndarray] = field(default_factory=deque)


class SafeRobot(Robot):
    """Wraps ``robot`` so that every command passes the safety filter (see the module docstring).

    ``person_force`` is the hook for the contact force with a person, in newtons: in the
    simulator ``lambda: world.contact_force(robot.body_id, patient.body_id)``, on hardware a
    wrist force/torque sensor reading. ``kinematics`` (built with ``Kinematics.for_spec``) is
    needed for the workspace box.
    """

    def __init__(
        self,
        robot: Robot,
        limits: SafetyLimits | None = None,
        *,
        person_force: Callable[[], float] | None = None,
        kinematics: Kinematics | None = None,
    ) -> None:
        self.robot = robot
        self.limits = limits or SafetyLimits()
        self.person_force = person_force
        self.kinematics = kinematics
        inner = robot.spec
        lim = self.limits
        if lim.workspace is not None:
            if kinematics is None:
                raise ValueError(
                    "the workspace box needs kinematics to predict where a command takes the end effectors:"
                    " pass kinematics=Kinematics.for_spec(urdf, robot.spec)"
                )
            if tuple(kinematics.joint_names) != tuple(inner.joint_names):
                raise ValueError("kinematics must follow the robot's joint order: use Kinematics.for_spec(urdf, spec)")
            for frame in lim.workspace_frames:
                kinematics.frame_id(frame)
        lower, upper = _shrink(inner.position_lower, inner.position_upper, lim.position_margin)
        self._spec = dataclasses.replace(
            inner,
            position_lower=lower,
            position_upper=upper,
            velocity_limits=inner.velocity_limits * lim.velocity_scale,
            effort_limits=inner.effort_limits * lim.effort_scale,
        )
        acc = np.broadcast_to(np.asarray(lim.acceleration, dtype=float), (inner.dof,)).copy()
        if np.any(acc <= 0):
            raise ValueError("SafetyLimits.acceleration must be positive")
        self._acc = acc
        self.dt = lim.dt or 1.0 / inner.control_rate
        self._box = None if lim.workspace is None else tuple(np.asarray(v, dtype=float) for v in lim.workspace)
        self.interventions: Counter[str] = Counter()
        self.events: deque[Intervention] = deque(maxlen=1000)
        self._lock = threading.RLock()
        self._latched: str | None = None  # reason of the latched stop
        self._latch_message = ""
        self._state: _JointState | None = None
        self._last_obs: Observation | None = None
        self._twist = np.zeros(3)
        self._contact_tick: int | None = None
        self._tick = 0
        self._backoff: dict[str, float] | None = None
        self.last_force = 0.0

    # ------------------------------------------------------------ interface
    @property
    def spec(self) -> RobotSpec:
        """The robot's spec with the filter's tighter position, velocity and effort limits."""
        return self._spec

    @property
    def stopped(self) -> str | None:
        """The latched stop's reason (``emergency_stop``, ``person_force``), or None when commands pass."""
        return self._latched

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        """The robot's observation; also checks the person-contact force."""
        with self._lock:
            obs = self.robot.observe(cameras)
            self._last_obs = obs
            self._check_force()
            return obs

    def command(self, cmd: Command) -> None:
        """Filter ``cmd`` and forward what is safe; raises SafetyStopError or InvalidCommandError."""
        with self._lock:
            self._tick += 1
            self._check_force()
            if self._latched is not None:
                self._record(REFUSED, self._latch_message, logging.DEBUG)
                raise SafetyStopError(self._latch_message, self._latched)
            try:
                mode, indices, values = cmd.resolve(self.robot.spec)
            except InvalidCommandError as exc:
                self._record(INVALID, str(exc), logging.WARNING)
                raise
            out, ramping = self._filter_joints(mode, indices, values)
            twist = None if cmd.base_twist is None else self._filter_twist(np.asarray(cmd.base_twist, dtype=float))
            gripper = None
            if cmd.gripper is not None:
                gripper = float(np.clip(cmd.gripper, 0.0, 1.0))
                if gripper != cmd.gripper:
                    self._record(GRIPPER, f"gripper opening {cmd.gripper} clamped to {gripper}")
            self.robot.command(Command(mode, out, base_twist=twist, gripper=gripper))
            if ramping:
                self.robot.command(Command(ControlMode.POSITION, ramping))

    def stop(self) -> None:
        """Hold position and stop the base (during a contact back-off, keep backing off)."""
        with self._lock:
            self._stop_inner()

    def close(self) -> None:
        """Close the wrapped robot."""
        self.robot.close()

    # --------------------------------------------------------------- stops
    def emergency_stop(self, reason: str = "operator") -> None:
        """Stop now and refuse every command until :meth:`reset`. Safe to call from another thread."""
        with self._lock:
            self._latch(EMERGENCY_STOP, f"emergency stop ({reason}) is latched; call reset() to resume")
            self._stop_inner()

    def reset(self) -> None:
        """Clear a latched stop; refused while the person-contact force is still above the limit."""
        with self._lock:
            force = self._read_force()
            if force > self.limits.person_force_limit:
                raise SafetyStopError(
                    f"cannot reset: contact force with the person is still {force:.1f} N"
                    f" (limit {self.limits.person_force_limit:.1f} N); move the robot or the person apart first",
                    PERSON_FORCE,
                )
            if self._latched is not None:
                log.warning("safety stop '%s' reset", self._latched)
            self._latched = None
            self._latch_message = ""
            self._backoff = None
            self._contact_tick = None
            self._state = None  # re-read the joints before the next command

    def summary(self) -> str:
        """One line: interventions by reason, and any latched stop."""
        counts = ", ".join(f"{k}={v}" for k, v in sorted(self.interventions.items())) or "none"
        return f"interventions: {counts}" + (f"; latched: {self._latched}" if self._latched else "")

    # ------------------------------------------------------------ internals
    def _record(self, reason: str, detail: str, level: int = logging.DEBUG) -> None:
        self.interventions[reason] += 1
        self.events.append(Intervention(time.monotonic(), reason, detail))
        log.log(level, "safety %s: %s", reason, detail)

    def _latch(self, reason: str, message: str) -> None:
        if self._latched is None:
            self._latched, self._latch_message = reason, message
            self._record(reason, message, logging.WARNING)

    def _stop_inner(self) -> None:
        self._state = None
        self._twist = np.zeros(3)
        if self._backoff is not None:
            twist = np.zeros(3) if self.robot.spec.base is BaseType.MOBILE else None
            self.robot.command(Command(ControlMode.POSITION, self._backoff, base_twist=twist))
        else:
            self.robot.stop()

    def _read_force(self) -> float:
        if self.person_force is None:
            return 0.0
        force = float(self.person_force())
        return force if math.isfinite(force) else math.inf  # a broken sensor reads as too much force

    def _check_force(self) -> None:
        force = self.last_force = self._read_force()
        lim = self.limits
        if force <= lim.contact_threshold:
            self._contact_tick = None
            return
        if self._contact_tick is None:
            self._contact_tick = self._tick
        if force > lim.person_force_limit and self._latched is None:
            self._backoff = self._backoff_targets()
            message = (
                f"contact force with the person {force:.1f} N exceeded {lim.person_force_limit:.1f} N: stopped and"
                " backed off; call reset() once it is safe"
            )
            self._latch(PERSON_FORCE, message)
            self._stop_inner()

    def _backoff_targets(self) -> dict[str, float] | None:
        """Position targets commanded ``backoff_time`` before the contact began, for the filter's joints."""
        st = self._state
        if st is None or not st.history or not np.any(st.position_mode):
            return None
        ticks_back = round(self.limits.backoff_time / self.dt)
        since_contact = self._tick - (self._contact_tick if self._contact_tick is not None else self._tick)
        k = min(len(st.history), since_contact + ticks_back)
        pose = st.history[-k] if k > 0 else st.history[-1]
        names = self.robot.spec.joint_names
        return {names[i]: float(pose[i]) for i in np.flatnonzero(st.position_mode)}

    def _joint_state(self) -> _JointState:
        if self._state is None:
            obs = self.robot.observe()
            self._last_obs = obs
            q = obs.joint_positions.astype(float)
            n = len(q)
            history: deque[np.ndarray] = deque(maxlen=max(2, int(5.0 / self.dt)))
            self._state = _JointState(q.copy(), np.zeros(n), q.copy(), np.zeros(n), np.zeros(n, bool), np.zeros(n))
            self._state.history = history
        return self._state

    def _filter_joints(
        self, mode: ControlMode, indices: np.ndarray, values: np.ndarray
    ) -> tuple[dict[str, float] | None, dict[str, float] | None]:
        """(safe targets in ``mode``, position targets still ramping for other joints when ``mode`` is not position)."""
        st = self._joint_state()
        spec, names = self._spec, self.robot.spec.joint_names
        out: dict[str, float] = {}
        ramping: dict[str, float] = {}
        if mode is ControlMode.POSITION:
            clipped = np.clip(values, spec.position_lower[indices], spec.position_upper[indices])
            if np.any(clipped != values):
                bad = [names[i] for i in indices[clipped != values]]
                self._record(POSITION, f"position targets clamped into the joint limits for {', '.join(bad)}")
            newly = indices[~st.position_mode[indices]]
            if newly.size and self._last_obs is not None:  # joints coming from another mode start where they are
                st.target[newly] = self._last_obs.joint_positions[newly]
                st.velocity[newly] = 0.0
                st.desired[newly] = st.target[newly]
            st.position_mode[indices] = True
            st.desired_velocity[:] = 0.0
            st.desired_velocity[indices] = (clipped - st.desired[indices]) / self.dt
            st.desired[indices] = clipped
            before = st.target.copy()
            self._rate_limit(st, indices)
            if self._box is not None:
                self._keep_in_workspace(st, indices)
            send = st.position_mode & (st.target != before)  # still ramping, or arrived this tick
            send[indices] = True
            active = np.flatnonzero(send)
            out = {names[i]: float(st.target[i]) for i in active}
            st.history.append(st.target.copy())
        else:
            leaving = indices[st.position_mode[indices]]
            st.velocity_command[leaving] = st.velocity[leaving]  # continue from the ramp's speed
            st.position_mode[indices] = False
            if mode is ControlMode.VELOCITY:
                out = self._filter_velocity(st, indices, values)
            else:
                limit = spec.effort_limits[indices]
                clipped = np.clip(values, -limit, limit)
                if np.any(clipped != values):
                    joints = _names(names, indices, clipped != values)
                    self._record(EFFORT, f"torques clamped to the effort limits for {joints}")
                out = dict(zip([names[i] for i in indices], clipped.tolist(), strict=True))
            if np.any(st.position_mode):  # keep ramping the position joints
                st.desired_velocity[:] = 0.0
                before = st.target.copy()
                self._rate_limit(st, np.zeros(0, dtype=np.int64))
                ramp = np.flatnonzero(st.position_mode & (st.target != before))
                ramping = {names[i]: float(st.target[i]) for i in ramp}
        return out or None, ramping or None

    def _rate_limit(self, st: _JointState, named: np.ndarray) -> None:
        """Move targets towards the desired positions within the velocity and acceleration limits."""
        idx = np.flatnonzero(st.position_mode)
        if idx.size == 0:
            return
        dt, vmax, amax = self.dt, self._spec.velocity_limits[idx], self._acc[idx]
        prev = st.target[idx]
        desired = st.desired[idx]
        v_ff = np.clip(st.desired_velocity[idx], -vmax, vmax)
        err = desired - (prev + v_ff * dt)
        # the fastest approach that still stops exactly on the goal decelerating by amax * dt per step:
        # n whole braking steps cover amax dt^2 n (n + 1) / 2, the remainder is spread over n + 1 steps
        a_dt = amax * dt
        n = np.floor(np.sqrt(0.25 + 2.0 * np.abs(err) / (a_dt * dt)) - 0.5)
        brake = a_dt * n + (np.abs(err) / dt - a_dt * n * (n + 1) / 2) / (n + 1)
        v_fb = np.sign(err) * np.minimum(np.abs(err) / dt, brake)
        v = np.clip(v_ff + v_fb, -vmax, vmax)
        v = np.clip(v, st.velocity[idx] - amax * dt, st.velocity[idx] + amax * dt)
        new = prev + v * dt
        crossed = (np.sign(desired - new) != np.sign(desired - prev)) | (np.abs(desired - new) < 1e-9)
        new = np.where(crossed, desired, new)
        # on arrival the target moves on with the desired position's own velocity (0 for a fixed goal)
        v_arrive = np.clip(v_ff, st.velocity[idx] - amax * dt, st.velocity[idx] + amax * dt)
        st.velocity[idx] = np.where(crossed, v_arrive, v)
        st.target[idx] = new
        limited = np.isin(idx, named) & (np.abs(new - desired) > 1e-9)
        if np.any(limited):
            joints = idx[limited]
            too_fast = np.abs((desired - prev) / dt)[limited] > vmax[limited]
            reason = VELOCITY if np.any(too_fast) else ACCELERATION
            self._record(reason, f"position targets rate-limited for {_names(self.robot.spec.joint_names, joints)}")

    def _filter_velocity(self, st: _JointState, indices: np.ndarray, values: np.ndarray) -> dict[str, float]:
        names = self.robot.spec.joint_names
        vmax = self._spec.velocity_limits[indices]
        v = np.clip(values, -vmax, vmax)
        if np.any(v != values):
            self._record(VELOCITY, f"velocities clamped for {_names(names, indices, v != values)}")
        a = self._acc[indices] * self.dt
        prev = st.velocity_command[indices]
        limited = np.clip(v, prev - a, prev + a)
        if np.any(limited != v):
            self._record(ACCELERATION, f"velocity change limited for {_names(names, indices, limited != v)}")
        if self._last_obs is not None:
            q = self._last_obs.joint_positions[indices]
            out = ((q <= self._spec.position_lower[indices]) & (limited < 0)) | (
                (q >= self._spec.position_upper[indices]) & (limited > 0)
            )
            if np.any(out):
                self._record(POSITION, f"joints at a position limit stopped: {_names(names, indices, out)}")
                limited = np.where(out, 0.0, limited)
        st.velocity_command[indices] = limited
        return dict(zip([names[i] for i in indices], limited.tolist(), strict=True))

    def _filter_twist(self, twist: np.ndarray) -> np.ndarray:
        lim = np.asarray(self.limits.base_velocity, dtype=float)
        out = np.clip(twist, -lim, lim)
        if np.any(out != twist):
            self._record(BASE_VELOCITY, f"base twist {np.round(twist, 3).tolist()} clamped to {lim.tolist()}")
        a_lin, a_ang = self.limits.base_acceleration
        step = np.array([a_lin, a_lin, a_ang]) * self.dt
        limited = np.clip(out, self._twist - step, self._twist + step)
        braking = (np.abs(out) <= np.abs(self._twist)) & (out * self._twist >= 0)  # slowing down is always allowed
        limited = np.where(braking, out, limited)
        if np.any(limited != out):
            self._record(BASE_ACCELERATION, "base twist change limited by the acceleration limit")
        self._twist = limited
        return limited

    def _keep_in_workspace(self, st: _JointState, named: np.ndarray) -> None:
        """Shorten this step of the targets so the workspace frames stay in the box (bisection on the step)."""
        assert self.kinematics is not None and self._last_obs is not None and self._box is not None
        prev = st.history[-1] if st.history else self._last_obs.joint_positions.astype(float)
        base = None if self.limits.workspace_in_base_frame else self._last_obs.base_pose.astype(float)
        new = st.target.copy()
        d_new = self._outside(new, base)
        if d_new <= 0.0:
            return
        d_prev = self._outside(prev, base)
        if d_prev > 0.0:  # already outside: allow only steps that do not go further out
            keep = d_new <= d_prev
            fraction = 1.0 if keep else 0.0
        else:
            lo_s, hi_s = 0.0, 1.0
            for _ in range(10):
                mid = (lo_s + hi_s) / 2
                if self._outside(prev + mid * (new - prev), base) > 0.0:
                    hi_s = mid
                else:
                    lo_s = mid
            fraction = lo_s
        if fraction < 1.0:
            st.target[:] = prev + fraction * (new - prev)
            st.velocity[:] = 0.0
            st.desired[:] = st.target
            detail = f"step scaled to {fraction:.2f}: it would put an end effector {d_new * 1000:.0f} mm out of the box"
            self._record(WORKSPACE, detail, logging.INFO)

    def _outside(self, q: np.ndarray, base: np.ndarray | None) -> float:
        """Total distance (m) by which the workspace frames are outside the box at joint positions ``q``."""
        assert self.kinematics is not None and self._box is not None
        lo, hi = self._box
        total = 0.0
        for frame in self.limits.workspace_frames:
            p = self.kinematics.fk(q, frame, base)[:3, 3]
            total += float(np.linalg.norm(np.maximum(lo - p, 0.0) + np.maximum(p - hi, 0.0)))
        return total


def _shrink(lower: np.ndarray, upper: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Limits pulled in by ``margin`` (never past their midpoint)."""
    lo, hi = lower + margin, upper - margin
    crossed = lo > hi  # only possible for finite limits
    mid = np.where(crossed, (np.where(crossed, lower, 0.0) + np.where(crossed, upper, 0.0)) / 2, 0.0)
    return np.where(crossed, mid, lo), np.where(crossed, mid, hi)


def _names(names: Sequence[str], indices: np.ndarray, mask: np.ndarray | None = None) -> str:
    chosen = indices if mask is None else indices[mask]
    return ", ".join(names[i] for i in chosen)
