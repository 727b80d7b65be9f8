"""TIAGo arm and base helpers for the care skills: IK checks, joint and Cartesian moves, choosing where to stand.

Manipulation skills need a base pose from which every pose of their motion is reachable. The
:func:`choose_base` search tries the current base pose first, then base poses around the
target (the target at preferred offsets in front of the robot), keeps those that are free in
the floor map and from which IK reaches every pose, and returns the one nearest the robot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tianji.control.base_nav import BaseController, OccupancyMap
from tianji.control.controllers import CartesianController, Controller, JointTrajectoryController, KeyframeController
from tianji.control.kinematics import Kinematics, damped_least_squares
from tianji.control.robot import Command, ControlMode, Observation, RobotSpec
from tianji.control.skills.base import PhaseError
from tianji.control.skills.geometry import base_xy_yaw, inflate, is_free
from tianji.control.transforms import pose_error, pose_to_matrix, wrap_angle

GRASP_FRAME = "hand_grasping_frame"
REVERSE_WITHIN = 0.6  # m: a repositioning goal this close behind the base is reached in reverse
STOP_MARGIN = 0.03  # m: a repositioning move stops this short of the first obstacle in its way (BaseController)
ROBOT_RADIUS = 0.27  # m, TIAGo's base footprint (0.54 m across)
BASE_CLEARANCE = 0.33  # m, free radius required around a chosen base position
PERSON_HALF_WIDTH = 0.30  # m from a person's centre to the outside of the upper arm hanging beside them
PERSON_GAP = 0.05  # m kept between the robot's foremost point (hand or held object) and the person's side
# (forward, lateral) offsets (m) of a target in the base frame, most comfortable first
REACH_OFFSETS = (
    (0.62, -0.10),
    (0.62, 0.05),
    (0.55, -0.2),
    (0.70, -0.10),
    (0.70, 0.05),
    (0.55, 0.10),
    (0.75, -0.25),
    (0.75, 0.20),
    (0.75, -0.40),
    (0.78, 0.0),
)
ELBOW_UP = {  # a posture with the elbow raised out to the side: the IK start for reaching over furniture
    "torso_lift_joint": 0.35,
    "arm_1_joint": 2.1,
    "arm_2_joint": 0.3,
    "arm_3_joint": 0.45,
    "arm_4_joint": 1.5,
    "arm_5_joint": 0.55,
    "arm_6_joint": -1.3,
    "arm_7_joint": 0.6,
}
ELBOW_LINKS = ("arm_3_link", "arm_4_link", "arm_5_link")
# points of the hand and wrist (link origins) whose distance from a person is checked when planning near one
HAND_LINKS = (
    "hand_palm_link",
    "hand_thumb_abd_link",
    "hand_thumb_flex_2_link",
    "hand_index_flex_3_link",
    "hand_middle_flex_3_link",
    "hand_little_flex_3_link",
    "wrist_ft_link",
    "arm_7_link",
)
# Joint groups moved one after the other between TUCK and ELBOW_UP (torso raised first): found by searching the
# orders of joint moves for one that keeps every arm link above 0.85 m wherever it is over 0.5 m ahead of the
# base (a table's edge) and above 0.65 m elsewhere. Interpolating all joints at once sweeps the hand to 0.35 m.
UNFOLD_STAGES: tuple[tuple[tuple[str, ...], float], ...] = (
    (("arm_1_joint", "arm_5_joint", "arm_6_joint"), 2.5),
    (("arm_3_joint", "arm_2_joint", "arm_7_joint"), 2.0),
    (("arm_4_joint",), 1.2),
)
NEAR_TUCK = 0.6  # rad: an arm this close to TUCK in every joint counts as folded for unfolding
TUCK = {  # arm close to the body, hand in front of the torso (TIAGo's home pose)
    "arm_1_joint": 0.20,
    "arm_2_joint": -1.34,
    "arm_3_joint": -0.20,
    "arm_4_joint": 1.94,
    "arm_5_joint": -1.57,
    "arm_6_joint": 1.37,
    "arm_7_joint": 0.0,
}


def pose7(xy_yaw: Sequence[float], z: float = 0.0) -> np.ndarray:
    """(7,) world pose of a planar base pose (x, y, yaw)."""
    x, y, yaw = (float(v) for v in xy_yaw)
    return np.array([x, y, z, 0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


@dataclass
class Reach:
    """A base pose and the arm configurations that reach a list of gripper poses from it."""

    base: np.ndarray  # (x, y, yaw)
    solutions: list[np.ndarray]  # full joint vectors, one per pose
    moved: bool  # False when the current base pose works
    poses: list[np.ndarray] = field(default_factory=list)  # the gripper poses reached (from a pose planner: its plan)


class TiagoArm:
    """IK, joint moves and straight-line moves of TIAGo's torso + arm (``hand_grasping_frame``)."""

    def __init__(self, spec: RobotSpec, kinematics: Kinematics) -> None:
        self.spec, self.kin = spec, kinematics
        self.joints = kinematics.chain(GRASP_FRAME)
        self.cols = [spec.index(j) for j in self.joints]  # positions of the torso and arm joints in spec order
        # the arm joints alone, for limit_margin(torso=False)
        self._arm_cols = [i for i in self.cols if spec.joint_names[i] != "torso_lift_joint"]

    def ik(
        self,
        pose: np.ndarray,
        q0: np.ndarray,
        base: np.ndarray,
        tolerance: float = 0.004,
        explore: bool = True,
        local: bool = False,
    ) -> np.ndarray | None:
        """Joint vector putting the grasp frame at world ``pose`` from base (x, y, yaw), or None.

        With ``explore`` several starts are tried (``q0``, an elbow-up posture, seeded random
        ones) and the solution that keeps the elbow and forearm highest is returned, so the arm
        reaches over a table's edge rather than under it; without, the first solution from ``q0``
        (or one random restart). ``local`` allows only ``q0`` as the start: a solution next to
        it, in the same posture, or None.
        """
        seeds = [q0]
        if explore and not local:
            up = q0.copy()
            for joint, value in ELBOW_UP.items():
                up[self.spec.index(joint)] = value
            seeds.append(up)
        best: tuple[float, np.ndarray] | None = None
        for k, seed in enumerate(seeds):
            res = self.kin.ik(
                GRASP_FRAME,
                pose,
                seed,
                self.joints,
                base_pose=pose7(base),
                position_tolerance=tolerance,
                orientation_tolerance=0.04,
                restarts=0 if local else 3 if explore else 1,
                seed=k,
            )
            if not res.success:
                continue
            if not explore or local:
                return res.q
            score = self.clearance(res.q, base)
            if best is None or score > best[0]:
                best = (score, res.q)
        return None if best is None else best[1]

    @property
    def wrist_offset(self) -> np.ndarray:
        """(3,) position of the wrist (``arm_7_link``) in the grasp frame: fixed, ~20 cm behind the fingers."""
        if not hasattr(self, "_wrist"):
            q = np.zeros(self.spec.dof)
            self._wrist = (np.linalg.inv(self.kin.fk(q, GRASP_FRAME)) @ self.kin.fk(q, "arm_7_link"))[:3, 3]
        return self._wrist

    def hand_points(self, q: np.ndarray) -> np.ndarray:
        """(N, 3) positions of :data:`HAND_LINKS` in the grasp frame, fingers as they are in ``q``."""
        grip = np.linalg.inv(self.kin.fk(q, GRASP_FRAME))
        return np.array([(grip @ self.kin.fk(q, link))[:3, 3] for link in HAND_LINKS])

    def limit_margin(self, q: np.ndarray, torso: bool = True) -> float:
        """Smallest distance (rad or m) of a torso or arm joint from its limits: near 0 the Cartesian moves stall.

        ``torso=False`` leaves the torso lift out (at the bottom or top of its travel it only sets the height).
        """
        idx = self.cols if torso else self._arm_cols
        lower, upper = self.spec.position_lower[idx], self.spec.position_upper[idx]
        return float(np.min(np.minimum(q[idx] - lower, upper - q[idx])))

    def joint_jump(self, a: np.ndarray, b: np.ndarray) -> float:
        """Largest change of a torso or arm joint between two postures (rad or m)."""
        idx = self.cols
        return float(np.max(np.abs(np.asarray(a)[idx] - np.asarray(b)[idx])))

    def clearance(self, q: np.ndarray, base: np.ndarray) -> float:
        """Height (m) of the lowest of the elbow and forearm joints: higher keeps the arm off furniture."""
        return min(float(self.kin.fk(q, link, pose7(base))[2, 3]) for link in ELBOW_LINKS)

    def solve_chain(self, poses: Sequence[np.ndarray], q0: np.ndarray, base: np.ndarray) -> list[np.ndarray] | None:
        """IK for each pose in turn (the first explored, the next seeded by the previous); None if any fails."""
        out, q = [], q0
        for i, pose in enumerate(poses):
            sol = self.ik(pose, q, base, explore=i == 0)
            if sol is None and i > 0:
                sol = self.ik(pose, q, base, explore=True)
            if sol is None:
                return None
            out.append(sol)
            q = sol
        return out

    def move_joints(
        self, q: np.ndarray, velocity_scale: float = 0.35, timeout: float = 15.0, duration: float | None = None
    ) -> JointTrajectoryController:
        """Joint-space move of the torso and arm to ``q`` (a full vector; only the arm joints are used).

        ``duration`` (s) slows it down below ``velocity_scale`` (short, slow moves near a person).
        """
        goal = {j: float(q[self.spec.index(j)]) for j in self.joints}
        return JointTrajectoryController(
            self.spec,
            goal,
            duration,
            velocity_scale=velocity_scale,
            tolerance=0.05,
            settle_time=2.0,
            timeout=timeout,
        )

    def is_tucked(self, obs: Observation, tolerance: float = 0.35) -> bool:
        """Whether the arm is folded near its home pose (then it must unfold before reaching out)."""
        q = obs.joint_positions
        return all(abs(float(q[self.spec.index(j)]) - v) < tolerance for j, v in TUCK.items())

    def unfold(self, obs: Observation) -> Controller | None:
        """From the folded home pose to :data:`ELBOW_UP` in stages that keep the hand off furniture (None: unfolded).

        An arm knocked a little off the home pose (up to :data:`NEAR_TUCK` rad per joint, e.g. by
        furniture) first goes back to it, with the torso rising.
        """
        if not self.is_tucked(obs, NEAR_TUCK):
            return None
        first = {**TUCK, "torso_lift_joint": ELBOW_UP["torso_lift_joint"]}
        frames: list[tuple[dict[str, float], float]] = [(first, 1.5)]
        for group, seconds in UNFOLD_STAGES:
            frames.append(({j: ELBOW_UP[j] for j in group}, seconds))
        return KeyframeController(self.spec, frames, timeout=20.0)

    def tuck(self, obs: Observation) -> Controller:
        """Back to the folded home pose: to :data:`ELBOW_UP`, then the unfold stages in reverse."""
        if self.is_tucked(obs):
            return JointTrajectoryController(self.spec, TUCK, velocity_scale=0.35, tolerance=0.06, settle_time=2.0)
        frames: list[tuple[dict[str, float], float]] = [(dict(ELBOW_UP), 3.0)]
        for group, seconds in reversed(UNFOLD_STAGES):
            frames.append(({j: TUCK[j] for j in group}, seconds))
        return KeyframeController(self.spec, frames, timeout=25.0)

    def line(
        self, pose: np.ndarray, speed: float = 0.06, tolerance: float = 0.01, settle: float = 2.0
    ) -> CartesianController:
        """Straight-line move of the grasp frame to world ``pose`` at ``speed`` m/s."""
        return CartesianController(
            self.spec,
            self.kin,
            GRASP_FRAME,
            pose,
            max_linear_velocity=speed,
            max_angular_velocity=0.5,
            position_tolerance=tolerance,
            orientation_tolerance=0.08,
            settle_time=settle,
        )


PosePlanner = Callable[[np.ndarray], Sequence[np.ndarray] | None]


class StopOnContact(Controller):
    """Runs ``inner`` but ends, succeeded, at the first ``force()`` reading above ``limit`` N: stop at first contact.

    For moves towards a person: the safety filter's force limit is the last resort, this stops
    the motion at a light touch. ``touched`` and ``force`` tell the caller what happened.
    """

    def __init__(self, inner: Controller, force: Callable[[], float], limit: float) -> None:
        super().__init__(None)
        self.inner, self.read_force, self.limit = inner, force, limit
        self.touched = False
        self.force = 0.0

    def _reset(self, obs: Observation) -> None:
        self.touched, self.force = False, 0.0
        self.inner.reset(obs)

    def _step(self, obs: Observation) -> Command:
        self.force = float(self.read_force())
        if self.force > self.limit:
            self.touched = True
            self.succeed(f"stopped at the first contact ({self.force:.1f} N)")
            return Command(ControlMode.POSITION)
        cmd = self.inner.step(obs)
        if self.inner.done:
            (self.succeed if self.inner.succeeded else self.fail)(self.inner.message)
        return cmd

    def progress(self) -> str:
        return self.inner.progress()


class ContactSlide(Controller):
    """Slides the grasp frame along a path over a surface at ``speed``, its height servoed to a light touch.

    From where the hand is at reset through the world (x, y) points of ``path`` in straight
    lines (back and forth strokes, without stopping in between), orientation held (``orientation``,
    a (4,) quaternion x, y, z, w). Every tick the force is read and averaged over the last
    ``window`` readings (simulated contacts chatter between 0 and a few N from one physics step
    to the next, as an unfiltered sensor would): below ``low`` N the height target sinks at
    ``sink`` m/s (never under ``floor``, world z), above ``high`` N it rises at ``lift`` m/s, and
    a single reading above ``spike`` N lifts it ``jump`` m at once; in between it holds. The
    hand tracks the moving target by damped least squares on its own joint reference (as
    :class:`~tianji.control.controllers.CartesianController` does), so it presses only as
    much as the servo lets it. Along the line it moves at full speed while touching and at a
    third of it otherwise. ``readings`` keeps the raw readings, ``forces`` the averaged ones,
    ``peak`` the largest reading; ends at the last point. With ``touch`` (N) it is a guarded descent instead: the height
    sinks at ``sink`` m/s until a single reading exceeds ``touch`` (``touched``), or fails at ``floor``.
    """

    def __init__(
        self,
        spec: RobotSpec,
        kinematics: Kinematics,
        path: Sequence[Sequence[float]],
        orientation: Sequence[float],
        force: Callable[[], float],
        *,
        speed: float = 0.02,
        low: float = 0.5,
        high: float = 3.0,
        sink: float = 0.002,
        lift: float = 0.006,
        spike: float = 7.0,
        jump: float = 0.0005,
        window: int = 6,
        floor: float = -math.inf,
        touch: float | None = None,
        timeout: float | None = 30.0,
    ) -> None:
        super().__init__(timeout)
        self.spec, self.kin, self.read_force = spec, kinematics, force
        self.joints = kinematics.chain(GRASP_FRAME)
        self.cols = np.array([spec.index(j) for j in self.joints], dtype=np.int64)
        self.path = [np.asarray(p, dtype=float)[:2] for p in path]
        if not self.path:
            raise ValueError("ContactSlide needs at least one (x, y) point in path")
        self.rotation = pose_to_matrix(np.r_[0.0, 0.0, 0.0, np.asarray(orientation, dtype=float)])[:3, :3]
        self.speed, self.low, self.high = speed, low, high
        self.sink, self.lift, self.spike, self.jump, self.floor = sink, lift, spike, jump, floor
        self.window = max(1, window)
        self.touch, self.touched = touch, False
        self.forces: list[float] = []
        self.readings: list[float] = []
        self.peak = 0.0
        self._recent: list[float] = []
        self.q_ref = np.zeros(spec.dof)
        self.points = np.zeros((1, 2))
        self._legs = np.zeros(0)
        self.travelled = 0.0
        self.height = 0.0

    def _reset(self, obs: Observation) -> None:
        self.q_ref = obs.joint_positions.astype(float).copy()
        hand = self.kin.fk(self.q_ref, GRASP_FRAME, obs.base_pose.astype(float))
        self.points = np.array([hand[:2, 3], *self.path])
        self._legs = np.linalg.norm(np.diff(self.points, axis=0), axis=1)  # the path is fixed from here
        self.height, self.travelled = float(hand[2, 3]), 0.0
        self.forces, self.readings, self.peak, self._recent = [], [], 0.0, []

    def _step(self, obs: Observation) -> Command:
        dt = self.period(1.0 / self.spec.control_rate)
        reading = float(self.read_force())
        self.peak = max(self.peak, reading)
        self.readings.append(reading)
        if self.touch is not None:
            return self._descend(obs, reading)
        self._recent = [*self._recent[1 - self.window :], reading] if self.window > 1 else [reading]
        force = float(np.mean(self._recent))
        self.forces.append(force)
        if reading > self.spike:
            self.height += self.jump
        elif force > self.high:
            self.height += self.lift * dt
        elif force < self.low:
            self.height = max(self.floor, self.height - self.sink * dt)
        length = float(self._legs.sum())
        self.travelled = min(length, self.travelled + (1.0 if force >= self.low else 1.0 / 3.0) * self.speed * dt)
        if self.travelled >= length:
            self.succeed(f"slid {length * 100:.0f} cm, peak {self.peak:.1f} N")
        return self._track(obs, self._along(self._legs, self.travelled))

    def _descend(self, obs: Observation, reading: float) -> Command:
        """The guarded descent: sink until the first reading above ``touch`` N."""
        dt = self.period(1.0 / self.spec.control_rate)
        if reading > (self.touch or 0.0):
            self.touched = True
            self.succeed(f"touched at {self.height:.3f} m ({reading:.1f} N)")
            return Command(ControlMode.POSITION)
        if self.height <= self.floor:
            self.fail(f"no contact down to {self.floor:.3f} m")
            return Command(ControlMode.POSITION)
        self.height = max(self.floor, self.height - self.sink * dt)
        return self._track(obs, self.points[0])

    def _track(self, obs: Observation, xy: np.ndarray) -> Command:
        """One damped least-squares step of the joint reference towards the hand at ``xy`` and the servo's height."""
        dt = self.period(1.0 / self.spec.control_rate)
        desired = np.eye(4)
        desired[:3, :3], desired[:3, 3] = self.rotation, (*xy, self.height)
        base = pose_to_matrix(obs.base_pose.astype(float))
        err = pose_error(self.kin.fk(self.q_ref, GRASP_FRAME), np.linalg.inv(base) @ desired)
        jac = self.kin.jacobian(self.q_ref, GRASP_FRAME, self.joints)
        lo, hi = self.spec.position_lower[self.cols], self.spec.position_upper[self.cols]
        dq = damped_least_squares(jac, err, self.q_ref[self.cols], lo, hi, 1e-3, 0.2)
        limit = self.spec.velocity_limits[self.cols] * 0.5 * dt
        self.q_ref[self.cols] = np.clip(self.q_ref[self.cols] + np.clip(dq, -limit, limit), lo, hi)
        return Command(ControlMode.POSITION, dict(zip(self.joints, self.q_ref[self.cols].tolist(), strict=True)))

    def _along(self, legs: np.ndarray, distance: float) -> np.ndarray:
        """The (x, y) point ``distance`` m along the path."""
        for k, leg in enumerate(legs):
            if distance <= leg or k == len(legs) - 1:
                a, b = self.points[k], self.points[k + 1]
                return a + (b - a) * (min(distance, leg) / leg if leg > 1e-9 else 1.0)
            distance -= leg
        return self.points[-1]

    def progress(self) -> str:
        return f"{self.travelled * 100:.0f} cm along, {self.forces[-1] if self.forces else 0.0:.1f} N"


def choose_base(
    arm: TiagoArm,
    obs: Observation,
    target: Sequence[float],
    poses: Sequence[np.ndarray] | PosePlanner,
    occupancy: OccupancyMap | None,
    *,
    yaw: float | None = None,
    offsets: Sequence[tuple[float, float]] = REACH_OFFSETS,
    max_move: float = 1.0,
    clearance: float = BASE_CLEARANCE,
    limit_margin: float = 0.0,
    tries: int = 12,
    nearest_target: bool = False,
    drive_slack: float | None = None,
) -> Reach:
    """Where to stand so that every gripper pose in ``poses`` is reachable; raises PhaseError when nowhere works.

    Tries the current base pose, then the base poses that put ``target`` (world x, y) at each of
    ``offsets`` (forward, lateral) with heading ``yaw`` (default: facing ``target``), within
    ``max_move`` m of the robot and free in ``occupancy``; returns the nearest that works.
    ``poses`` may also be a planner ``f(base) -> poses or None``, for motions whose gripper
    orientation depends on where the robot stands (None: no plan from that base). With ``limit_margin``
    (rad), postures that bring an arm joint closer than that to its limit do not count as reaching
    (a pose reached only at a limit is at the edge of the workspace: moves there stall or swing wide).
    ``tries`` candidates are tried at most; with ``nearest_target`` those nearest ``target`` first (for a
    motion at the edge of the arm's reach) instead of those nearest the robot. With ``drive_slack`` (m), a
    candidate counts only if :func:`base_move` can drive to it in a straight line (turned towards it, or
    reversing when it lies behind within :data:`REVERSE_WITHIN`) without stopping more than that short of
    it: the move's obstacle check sweeps the base's width ahead, so a goal beside furniture can stop it
    early (seen: 0.13 m short, with the bed's edge across one front corner).
    """
    q0 = obs.joint_positions.astype(float)
    current = base_xy_yaw(obs)

    def attempt(base: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
        plan = poses(base) if callable(poses) else poses
        if plan is None:
            return None
        sols = arm.solve_chain(list(plan), q0, base)
        if sols is None or min(arm.limit_margin(q, torso=False) for q in sols) < limit_margin:
            return None
        return list(plan), sols

    found = attempt(current)
    if found is not None:
        return Reach(current, found[1], False, found[0])
    blocked = inflate(occupancy, clearance) if occupancy is not None else None
    tx, ty = float(target[0]), float(target[1])
    candidates = []
    for fwd, lat in offsets:
        for turn in (0.0, 0.35, -0.35):
            heading = yaw if yaw is not None else math.atan2(ty - current[1], tx - current[0])
            heading = wrap_angle(heading + turn)
            c, s = math.cos(heading), math.sin(heading)
            base = np.array([tx - c * fwd + s * lat, ty - s * fwd - c * lat, heading])
            move = math.hypot(base[0] - current[0], base[1] - current[1])
            if move > max_move:
                continue
            if blocked is not None and occupancy is not None and not is_free(blocked, occupancy, base[:2]):
                continue
            driven = drive_slack is None or occupancy is None or _drivable(occupancy, current, base, drive_slack)
            if not driven:
                continue
            cost = math.hypot(base[0] - tx, base[1] - ty) if nearest_target else move
            candidates.append((cost + 0.2 * abs(turn), base))
    candidates.sort(key=lambda item: item[0])
    for _, base in candidates[:tries]:
        found = attempt(base)
        if found is not None:
            return Reach(base, found[1], True, found[0])
    raise PhaseError(
        f"no base pose within {max_move:.1f} m of the robot reaches ({tx:.2f}, {ty:.2f}) with the gripper"
        " (free of obstacles, inside the arm's reach); navigate closer first"
    )


def _drivable(occupancy: OccupancyMap, start: np.ndarray, goal: np.ndarray, slack: float) -> bool:
    """Whether :func:`base_move` drives from ``start`` to ``goal`` ((x, y, yaw)) on a straight line, stopping at most
    ``slack`` m short: the free distance its obstacle check sees along the way, less its stop margin."""
    dx, dy = float(goal[0] - start[0]), float(goal[1] - start[1])
    distance = math.hypot(dx, dy)
    if distance < 0.03:
        return True
    heading = math.atan2(dy, dx)
    if abs(wrap_angle(heading - float(start[2]))) > math.pi / 2 and distance <= REVERSE_WITHIN:
        heading = wrap_angle(heading + math.pi)  # reversing: the map is checked behind
    x, y = float(start[0]), float(start[1])
    free = occupancy.free_distance(x, y, heading, ROBOT_RADIUS, ROBOT_RADIUS, distance + 0.1)
    return free - STOP_MARGIN >= distance - slack


def base_move(
    goal: np.ndarray, occupancy: OccupancyMap | None, timeout: float = 30.0, slack: float = 0.0
) -> Controller:
    """A slow, careful base move for short repositioning next to furniture.

    With ``slack`` (m), a move that stops blocked within that distance of the goal (a goal
    squeezed between furniture) still ends well: the base then turns in place to the goal's yaw.
    """
    drive = BaseController(
        goal,
        occupancy=occupancy,
        robot_radius=ROBOT_RADIUS,
        max_linear=0.25,
        max_angular=0.6,
        position_tolerance=0.03,
        yaw_tolerance=0.03,
        stop_margin=STOP_MARGIN,
        timeout=timeout,
        reverse_within=REVERSE_WITHIN,  # backs away instead of turning round with the arm out
    )
    return drive if slack <= 0.0 else _NearGoal(drive, occupancy, slack)


class _NearGoal(Controller):
    """Runs a base move; when it fails within ``slack`` m of its goal, turns in place to the goal's yaw instead."""

    def __init__(self, drive: BaseController, occupancy: OccupancyMap | None, slack: float) -> None:
        super().__init__(None)
        self.drive, self.occupancy, self.slack = drive, occupancy, slack
        self.turn: BaseController | None = None

    def _reset(self, obs: Observation) -> None:
        self.turn = None
        self.drive.reset(obs)

    def _step(self, obs: Observation) -> Command:
        if self.turn is not None:
            cmd = self.turn.step(obs)
            if self.turn.done:
                (self.succeed if self.turn.succeeded else self.fail)(self.turn.message)
            return cmd
        cmd = self.drive.step(obs)
        if self.drive.succeeded:
            self.succeed(self.drive.message)
        elif self.drive.done:
            x, y, _ = base_xy_yaw(obs)
            goal = np.asarray(self.drive.goal, dtype=float)
            if math.hypot(goal[0] - x, goal[1] - y) > self.slack:
                self.fail(self.drive.message)
                return cmd
            self.turn = BaseController(
                (x, y, float(goal[2])),
                occupancy=self.occupancy,
                robot_radius=ROBOT_RADIUS,
                max_angular=0.6,
                position_tolerance=0.05,
                yaw_tolerance=0.03,
                timeout=15.0,
            )
            self.turn.reset(obs)
        return cmd

    def progress(self) -> str:
        return (self.turn or self.drive).progress()
