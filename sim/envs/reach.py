"""Goal-conditioned reaching: TIAGo's gripper to a point, the Allegro's fingertips to four points."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from tianji.sim.envs.base import TianjiEnv


def point_distances(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Distance of each point (m) between stacked xyz triples, for one goal (..., 3k) or a batch of them."""
    a = np.asarray(achieved, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    shape = (*a.shape[:-1], a.shape[-1] // 3, 3)
    diff = a.reshape(shape) - d.reshape(shape)
    return np.sqrt(np.add.reduce(diff * diff, axis=-1))  # what np.linalg.norm(diff, axis=-1) computes


def goal_reward(achieved: np.ndarray, desired: np.ndarray, tolerance: float, reward_type: str) -> np.ndarray:
    """Reaching reward: dense, minus the summed point distances; sparse, -1 until every point is within tolerance."""
    distances = point_distances(achieved, desired)
    if reward_type == "sparse":
        return -(distances > tolerance).any(axis=-1).astype(np.float32)
    return -distances.sum(axis=-1).astype(np.float32)


def cartesian_targets(
    jac: np.ndarray,
    step: np.ndarray,
    targets: np.ndarray,
    q: np.ndarray,
    damping: float,
    max_delta: float,
) -> np.ndarray:
    """New joint targets that move points by ``step`` (m, stacked xyz): damped least squares on ``jac``
    (rows: point coordinates, columns: joints), each joint's change clipped to ``max_delta``, and no
    target more than two steps ahead of its joint's measured position ``q`` (anti-windup: a joint
    that lags, saturated or blocked, does not pile up a backlog the Jacobian at ``q`` knows nothing of).
    Shared by the simulated reach tasks and :class:`tianji.policies.robot_env.RobotReachEnv`."""
    damped = jac @ jac.T + damping**2 * np.eye(len(step))
    delta = np.clip(jac.T @ np.linalg.solve(damped, step), -max_delta, max_delta)
    return np.clip(targets + delta, q - 2 * max_delta, q + 2 * max_delta)


class GoalReachEnv(TianjiEnv):
    """Shared reaching task: end-effector points of one robot to goal points.

    Goals are the end-effector positions of a random reachable joint configuration
    (sampled within ``goal_joint_fraction`` of each joint's range around the start pose,
    and kept when every goal satisfies :meth:`_goal_ok`), so every goal can be reached.
    """

    robot_name: ClassVar[str]
    joints: ClassVar[tuple[str, ...]]
    points: ClassVar[tuple[str, ...]]  # end-effector names whose positions are the achieved goal
    tolerance: ClassVar[float]  # m, per point
    goal_joint_fraction: ClassVar[float] = 0.6
    robot_position: ClassVar[tuple[float, float]] = (0.0, 0.0)
    max_point_delta: ClassVar[float] = 0.02  # m per control step at |action| = 1, control="cartesian"
    jacobian_damping: ClassVar[float] = 0.03  # damped least squares: bounded joint steps near singular poses

    def __init__(self, *, reward_type: str = "dense", control: str = "joint", **kwargs: Any) -> None:
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        if control not in ("joint", "cartesian"):
            raise ValueError(f"control must be 'joint' or 'cartesian', got {control!r}")
        self.reward_type = reward_type
        self.control = control
        super().__init__(**kwargs)
        if control == "cartesian":
            self.action_space = spaces.Box(-1.0, 1.0, shape=(3 * len(self.points),), dtype=np.float32)
            self.action_labels = [f"{p}.{axis}" for p in self.points for axis in "xyz"]
        self.goal = np.zeros(3 * len(self.points), dtype=np.float32)
        self.goal_configuration = np.zeros(len(self.joints))

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        self.robot = self.world.add_robot(self.robot_name, position=self.robot_position)
        self.robots = {self.robot_name: self.robot}
        self._joint_idx = np.array([self.robot.spec.index(j) for j in self.joints])

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [(self.robot_name, j) for j in self.joints]

    def _state_space(self) -> spaces.Space:
        n, g = len(self.joints), 3 * len(self.points)
        inf = np.inf
        return spaces.Dict(
            {
                "observation": self._box(-inf, inf, 3 * n + g),
                "achieved_goal": self._box(-inf, inf, g),
                "desired_goal": self._box(-inf, inf, g),
            }
        )

    def _map_action(self, action: np.ndarray) -> None:
        """Joint control: the default (joint target deltas). Cartesian: each point moves by
        ``action * max_point_delta`` (m, world axes), turned into joint target deltas by damped least
        squares on the points' Jacobian, each clipped to ``max_joint_delta``."""
        if self.control == "joint":
            super()._map_action(action)
            return
        idx = self._joint_idx
        targets = cartesian_targets(
            self.robot.point_jacobian(self.points, idx),
            action * self.max_point_delta,
            self.robot.position_targets[idx],
            self.robot.joint_states()[0][idx],
            self.jacobian_damping,
            self.max_joint_delta,
        )
        self.robot.command_positions(idx, targets)

    # -------------------------------------------------------------- episode
    def _reset_task(self) -> None:
        spec = self.robot.spec
        start = self.robot.start_positions
        lo, hi = spec.position_lower[self._joint_idx], spec.position_upper[self._joint_idx]
        lo, hi = np.where(np.isfinite(lo), lo, -np.pi), np.where(np.isfinite(hi), hi, np.pi)
        for _ in range(100):
            q = start.copy()
            span = self.goal_joint_fraction * (hi - lo)
            q[self._joint_idx] = np.clip(start[self._joint_idx] + self.np_random.uniform(-span / 2, span / 2), lo, hi)
            self.robot.reset(q)
            goal = self._points()
            if self._goal_ok(goal.reshape(-1, 3)):
                break
        self.robot.reset()  # back to the start pose; the goal stays
        self.goal = goal.astype(np.float32)
        self.goal_configuration = q[self._joint_idx].copy()  # privileged: for oracle controllers and tests

    def _goal_ok(self, points: np.ndarray) -> bool:
        """Whether sampled goal points are acceptable (override to keep goals in a region)."""
        return True

    def _points(self) -> np.ndarray:
        """The end-effector points, stacked (float32): ``observe().ee_poses[p][:3]`` for each of ``points``."""
        return self.robot.end_effector_positions(self.points)

    def _read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(joint positions, joint velocities, achieved goal), float32, as observe() gives them."""
        q, dq = self.robot.joint_states()
        return q, dq, self._points()

    def _observe_state(self) -> dict[str, np.ndarray]:
        q, dq, achieved = self.step_read("state", self._read)  # _evaluate's read, shared
        idx = self._joint_idx
        # the targets are part of the state: actions move them, and a target that ran ahead of a joint the
        # motor cannot move (saturated against gravity) is invisible in the positions alone
        targets = self.robot.position_targets[idx]
        state = np.concatenate([q[idx], dq[idx], targets, achieved])
        return {"observation": state.astype(np.float32), "achieved_goal": achieved, "desired_goal": self.goal.copy()}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorized reward (works on one goal or a batch), as SB3's HER needs."""
        return goal_reward(achieved_goal, desired_goal, self.tolerance, self.reward_type)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        reads = self.step_read("state", self._read)  # _observe_state, right after, shares it
        # point_distances and goal_reward of one goal on Python floats: the same operations in the same order
        # (numpy sums fewer than 8 elements left to right), so the reward equals compute_reward(obs...) exactly,
        # without a dozen numpy calls on 4-element arrays every step
        a, g = reads[2].tolist(), self.goal.tolist()
        distances = []
        for i in range(0, len(a), 3):
            dx, dy, dz = a[i] - g[i], a[i + 1] - g[i + 1], a[i + 2] - g[i + 2]
            distances.append(math.sqrt(dx * dx + dy * dy + dz * dz))
        tolerance = self.tolerance
        if self.reward_type == "sparse":
            reward = -float(np.float32(any(d > tolerance for d in distances)))
        else:
            reward = -float(np.float32(sum(distances)))
        success = all(d <= tolerance for d in distances)
        return reward, False, {"is_success": success, "distance": max(distances)}


class TiagoReachEnv(GoalReachEnv):
    """TIAGo moves its gripper to a goal point (``tianji/TiagoReach-v0``).

    The base stays where it is; the torso and the seven arm joints move.

    ===================  ==========================================================================
    Action               control="joint" (default): Box(-1, 1, (8,)), change of the position target
                         of torso_lift_joint (m) and arm_1..arm_7_joint (rad), 0.05 per control step
                         at |a| = 1. control="cartesian": Box(-1, 1, (3,)), gripper displacement
                         along world x, y, z, 0.02 m per step at |a| = 1, mapped to the same joint
                         targets by damped least squares on the gripper's Jacobian (each joint at
                         most 0.05 per step, and at most 0.1 ahead of where it is).
    Observation          Dict; ``observation`` (27,): joint positions (8, m/rad), joint velocities
                         (8, m/s rad/s), joint position targets (8, m/rad: what the actions
                         move), gripper position (3, m, world frame);
                         ``achieved_goal`` (3,): gripper position; ``desired_goal`` (3,): goal (m).
                         With ``obs_mode="rgb"``/``"rgbd"`` also ``rgb`` (84x84x3 uint8) and ``depth``
                         (84x84x1 float32, m) from the head camera.
    Reward               dense: -distance (m); sparse: -1 until within 2 cm, then 0.
    Starting state       home pose (arm tucked, torso 0.15 m) at the origin facing +x; the goal is
                         the gripper position of a random reachable configuration (+-30% of each
                         joint range around home), kept 0.35 m above the floor.
    Termination          none; truncation after 100 steps (2 s at 50 Hz).
    Success              gripper within 2 cm of the goal (``info["is_success"]``).
    Info                 is_success, distance (m).
    Arguments            reward_type ("dense"|"sparse"), control ("joint"|"cartesian"), obs_mode
                         ("state"|"rgb"|"rgbd"), image_size (84), render_mode ("rgb_array"|"human"),
                         randomization (:class:`DomainRandomization` or dict).
    ===================  ==========================================================================
    """

    robot_name = "tiago"
    joints = ("torso_lift_joint", *(f"arm_{i}_joint" for i in range(1, 8)))
    points = ("gripper",)
    tolerance = 0.02
    camera_robot = "tiago"

    def _goal_ok(self, points: np.ndarray) -> bool:
        return bool(points[0, 2] > 0.35)

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([1.6, -1.4, 1.5]), np.array([0.2, -0.2, 0.7])


class AllegroReachEnv(GoalReachEnv):
    """The Allegro hand moves its four fingertips to goal points (``tianji/AllegroReach-v0``).

    ===================  ==========================================================================
    Action               control="joint" (default): Box(-1, 1, (16,)), change of the position target
                         of joint_0.0..joint_15.0 (rad), 0.05 per control step at |a| = 1.
                         control="cartesian": Box(-1, 1, (12,)), displacement of each fingertip
                         (index, middle, ring, thumb; world x, y, z), 0.02 m per step at |a| = 1,
                         mapped to joint targets as in TiagoReach-v0.
    Observation          Dict; ``observation`` (60,): joint positions (16, rad), joint velocities
                         (16, rad/s), joint position targets (16, rad), fingertip positions (12,
                         m: index, middle, ring, thumb);
                         ``achieved_goal`` (12,): fingertips; ``desired_goal`` (12,): goals (m).
                         With ``obs_mode="rgb"``/``"rgbd"`` also ``rgb``/``depth`` from a fixed
                         camera looking at the hand.
    Reward               dense: -sum of the four tip distances (m); sparse: -1 until every tip is
                         within 1 cm, then 0.
    Starting state       open hand (home pose) on a fixed wrist 0.5 m above the floor; goals are the
                         tip positions of a random configuration (+-30% of each joint range).
    Termination          none; truncation after 100 steps (2 s at 50 Hz).
    Success              all four tips within 1 cm (``info["is_success"]``).
    Info                 is_success, distance (m, the worst tip).
    Arguments            as :class:`TiagoReachEnv`.
    ===================  ==========================================================================
    """

    robot_name = "allegro"
    joints = tuple(f"joint_{i}.0" for i in range(16))
    points = ("index_tip", "middle_tip", "ring_tip", "thumb_tip")
    tolerance = 0.01

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.35, -0.3, 0.75]), np.array([0.0, 0.0, 0.55])
