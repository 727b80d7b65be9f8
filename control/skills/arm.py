"""TIAGo arm and base helpers for the care skills: IK checks, joint and Cartesian moves, choosing where to stand.

Manipulation skills need a base pose from which every pose of their motion is reachable. The
:func:`choose_base` search tries the current base pose first, then base poses around the
target (the target at preferred offsets in front of the robot), keeps those that are free in
the floor map and from which IK reaches every pose, and returns the one nearest the robot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tianji.control.base_nav import BaseController, OccupancyMap
from tianji.control.controllers import CartesianController, Controller, JointTrajectoryController, KeyframeController
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Observation, RobotSpec
from tianji.control.skills.base import PhaseError
from tianji.control.skills.geometry import base_xy_yaw, inflate, is_free
from tianji.control.transforms import wrap_angle

GRASP_FRAME = "hand_grasping_frame"
ROBOT_RADIUS = 0.27  # m, TIAGo's base footprint (0.54 m across)
BASE_CLEARANCE = 0.33  # m, free radius required around a chosen base position
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
# Joint groups moved one after the other between TUCK and ELBOW_UP (torso raised first): found by searching the
# orders of joint moves for one that keeps every arm link above 0.85 m wherever it is over 0.5 m ahead of the
# base (a table's edge) and above 0.65 m elsewhere. Interpolating all joints at once sweeps the hand to 0.35 m.
UNFOLD_STAGES: tuple[tuple[tuple[str, ...], float], ...] = (
    (("arm_1_joint", "arm_5_joint", "arm_6_joint"), 2.5),
    (("arm_3_joint", "arm_2_joint", "arm_7_joint"), 2.0),
    (("arm_4_joint",), 1.2),
)
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


class TiagoArm:
    """IK, joint moves and straight-line moves of TIAGo's torso + arm (``hand_grasping_frame``)."""

    def __init__(self, spec: RobotSpec, kinematics: Kinematics) -> None:
        self.spec, self.kin = spec, kinematics
        self.joints = kinematics.chain(GRASP_FRAME)

    def ik(
        self, pose: np.ndarray, q0: np.ndarray, base: np.ndarray, tolerance: float = 0.004, explore: bool = True
    ) -> np.ndarray | None:
        """Joint vector putting the grasp frame at world ``pose`` from base (x, y, yaw), or None.

        With ``explore`` several starts are tried (``q0``, an elbow-up posture, seeded random
        ones) and the solution that keeps the elbow and forearm highest is returned, so the arm
        reaches over a table's edge rather than under it; without, the first solution from ``q0``.
        """
        seeds = [q0]
        if explore:
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
                restarts=3 if explore else 1,
                seed=k,
            )
            if not res.success:
                continue
            if not explore:
                return res.q
            score = self.clearance(res.q, base)
            if best is None or score > best[0]:
                best = (score, res.q)
        return None if best is None else best[1]

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
        self, q: np.ndarray, velocity_scale: float = 0.35, timeout: float = 15.0
    ) -> JointTrajectoryController:
        """Joint-space move of the torso and arm to ``q`` (a full vector; only the arm joints are used)."""
        goal = {j: float(q[self.spec.index(j)]) for j in self.joints}
        return JointTrajectoryController(
            self.spec, goal, velocity_scale=velocity_scale, tolerance=0.05, settle_time=2.0, timeout=timeout
        )

    def is_tucked(self, obs: Observation) -> bool:
        """Whether the arm is folded near its home pose (then it must unfold before reaching out)."""
        q = obs.joint_positions
        return all(abs(float(q[self.spec.index(j)]) - v) < 0.35 for j, v in TUCK.items())

    def unfold(self, obs: Observation) -> Controller | None:
        """From the folded home pose to :data:`ELBOW_UP` in stages that keep the hand off furniture (None: unfolded)."""
        if not self.is_tucked(obs):
            return None
        frames: list[tuple[dict[str, float], float]] = [({"torso_lift_joint": ELBOW_UP["torso_lift_joint"]}, 1.5)]
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


def choose_base(
    arm: TiagoArm,
    obs: Observation,
    target: Sequence[float],
    poses: Sequence[np.ndarray],
    occupancy: OccupancyMap | None,
    *,
    yaw: float | None = None,
    offsets: Sequence[tuple[float, float]] = REACH_OFFSETS,
    max_move: float = 1.0,
    clearance: float = BASE_CLEARANCE,
) -> Reach:
    """Where to stand so that every gripper pose in ``poses`` is reachable; raises PhaseError when nowhere works.

    Tries the current base pose, then the base poses that put ``target`` (world x, y) at each of
    ``offsets`` (forward, lateral) with heading ``yaw`` (default: facing ``target``), within
    ``max_move`` m of the robot and free in ``occupancy``; returns the nearest that works.
    """
    q0 = obs.joint_positions.astype(float)
    current = base_xy_yaw(obs)
    sols = arm.solve_chain(poses, q0, current)
    if sols is not None:
        return Reach(current, sols, False)
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
            candidates.append((move + 0.2 * abs(turn), base))
    candidates.sort(key=lambda item: item[0])
    for _, base in candidates[:12]:
        sols = arm.solve_chain(poses, q0, base)
        if sols is not None:
            return Reach(base, sols, True)
    raise PhaseError(
        f"no base pose within {max_move:.1f} m of the robot reaches ({tx:.2f}, {ty:.2f}) with the gripper"
        " (free of obstacles, inside the arm's reach); navigate closer first"
    )


def base_move(goal: np.ndarray, occupancy: OccupancyMap | None, timeout: float = 30.0) -> BaseController:
    """A slow, careful base move for short repositioning next to furniture."""
    return BaseController(
        goal,
        occupancy=occupancy,
        robot_radius=ROBOT_RADIUS,
        max_linear=0.25,
        max_angular=0.6,
        position_tolerance=0.03,
        yaw_tolerance=0.03,
        stop_margin=0.03,
        timeout=timeout,
    )
