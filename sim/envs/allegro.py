"""In-hand manipulation with the Allegro hand: reorient a cube held on the upturned palm."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.sim.envs.base import TianjiEnv
from tianji.sim.registry import get_robot
from tianji.sim.sim_robot import SimRobot

PALM_UP_RPY = (0.0, -math.pi / 2, 0.0)  # the palm faces the hand's +x: turn +x to world +z
HAND_HEIGHT = 0.5  # m, wrist mount
CUBE_SIZE = 0.06  # m, edge
CUBE_MASS = 0.10  # kg


def quaternion_angle(achieved: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Rotation angle (rad, 0..pi) between (x, y, z, w) quaternions, over the last axis (batched)."""
    a = np.asarray(achieved, dtype=np.float64)
    d = np.asarray(desired, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    dot = np.clip(np.abs(np.sum(a * d, axis=-1)), 0.0, 1.0)
    return 2.0 * np.arccos(dot)


class AllegroReorientEnv(TianjiEnv):
    """Rotate a cube lying on the upturned Allegro hand to a goal orientation (``tianji/AllegroReorient-v0``).

    ===================  ==========================================================================
    Action               Box(-1, 1, (16,)): change of the position target of joint_0.0..joint_15.0
                         (rad), 0.05 per control step at |a| = 1.
    Observation          Dict; ``observation`` (45,): joint positions (16, rad), joint velocities
                         (16, rad/s), cube position (3, m), cube orientation (4, quaternion x y z w),
                         cube linear velocity (3, m/s), cube angular velocity (3, rad/s);
                         ``achieved_goal`` (4,): cube orientation; ``desired_goal`` (4,): goal
                         orientation. ``rgb``/``depth`` from a fixed camera with ``obs_mode``.
    Reward               dense: -(angle between cube and goal orientation, rad); sparse: -1 until
                         the angle is below 0.4 rad, then 0. ``compute_reward`` is vectorized (HER).
    Starting state       hand palm up on a fixed wrist 0.5 m above the floor, fingers open; a 6 cm,
                         0.1 kg cube resting on the palm with a random yaw. The goal is a random
                         yaw about the vertical (``goal_mode="yaw"``) or a uniformly random
                         orientation (``goal_mode="full"``).
    Termination          the cube drops: its centre falls 10 cm below the palm (not a success).
    Truncation           after 200 steps (4 s at 50 Hz).
    Success              angle error below 0.4 rad with the cube still on the hand.
    Info                 is_success, angle (rad), dropped (bool).
    Arguments            reward_type ("dense"|"sparse"), goal_mode ("yaw"|"full"), obs_mode,
                         image_size, render_mode, randomization.
    ===================  ==========================================================================
    """

    success_angle: ClassVar[float] = 0.4  # rad
    drop_depth: ClassVar[float] = 0.10  # m below the palm

    def __init__(self, *, reward_type: str = "dense", goal_mode: str = "yaw", **kwargs: Any) -> None:
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        if goal_mode not in ("yaw", "full"):
            raise ValueError(f"goal_mode must be 'yaw' or 'full', got {goal_mode!r}")
        self.reward_type, self.goal_mode = reward_type, goal_mode
        self.goal = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
        super().__init__(**kwargs)

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        desc = dataclasses.replace(get_robot("allegro"), spawn_height=HAND_HEIGHT, spawn_rpy=PALM_UP_RPY)
        self.robot = SimRobot(self.world, desc)
        self.robots = {"allegro": self.robot}
        self._joint_idx = np.arange(self.robot.dof)
        c = self.world.client
        half = [CUBE_SIZE / 2] * 3
        shape = c.createCollisionShape(pb.GEOM_BOX, halfExtents=half)
        visual = c.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=[0.95, 0.55, 0.10, 1.0])
        self.cube = c.createMultiBody(CUBE_MASS, shape, visual, self.cube_rest_position().tolist())
        c.changeDynamics(self.cube, -1, lateralFriction=1.0)
        self.task_bodies = [self.cube]

    def cube_rest_position(self) -> np.ndarray:
        """Where the cube is placed: over the centre of the palm."""
        return np.array([-0.05, 0.0, HAND_HEIGHT + 0.012 + CUBE_SIZE / 2 + 0.004])

    def palm_height(self) -> float:
        """World height of the palm surface."""
        return HAND_HEIGHT + 0.012

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [("allegro", j) for j in self.robot.spec.joint_names]

    def _state_space(self) -> spaces.Space:
        inf = np.inf
        return spaces.Dict(
            {
                "observation": self._box(-inf, inf, 45),
                "achieved_goal": self._box(-1.0, 1.0, 4),
                "desired_goal": self._box(-1.0, 1.0, 4),
            }
        )

    # -------------------------------------------------------------- episode
    def _reset_task(self) -> None:
        rng = self.np_random
        start = pb.getQuaternionFromEuler((0.0, 0.0, float(rng.uniform(-math.pi, math.pi))))
        self.world.client.resetBasePositionAndOrientation(self.cube, self.cube_rest_position().tolist(), start)
        self.world.client.resetBaseVelocity(self.cube, [0, 0, 0], [0, 0, 0])
        if self.goal_mode == "yaw":
            goal = pb.getQuaternionFromEuler((0.0, 0.0, float(rng.uniform(-math.pi, math.pi))))
        else:  # uniform on SO(3): normalized 4-D Gaussian
            q = rng.normal(size=4)
            goal = tuple(q / np.linalg.norm(q))
        self.goal = np.asarray(goal, dtype=np.float32)

    def _cube_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pos, quat = self.world.client.getBasePositionAndOrientation(self.cube)
        lin, ang = self.world.client.getBaseVelocity(self.cube)
        return np.array(pos), np.array(quat), np.array(lin), np.array(ang)

    def _observe_state(self) -> dict[str, np.ndarray]:
        obs = self.robot.observe()
        pos, quat, lin, ang = self._cube_state()
        state = np.concatenate([obs.joint_positions, obs.joint_velocities, pos, quat, lin, ang]).astype(np.float32)
        return {"observation": state, "achieved_goal": quat.astype(np.float32), "desired_goal": self.goal.copy()}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorized reward from orientations alone, as SB3's HER needs."""
        angle = quaternion_angle(achieved_goal, desired_goal)
        if self.reward_type == "sparse":
            return -(angle >= self.success_angle).astype(np.float32)
        return (-angle).astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        pos, quat, _, _ = self._cube_state()
        quat = quat.astype(np.float32)  # as observed, so the reward equals compute_reward(obs...)
        angle = float(quaternion_angle(quat, self.goal))
        dropped = bool(pos[2] < self.palm_height() - self.drop_depth)
        success = angle < self.success_angle and not dropped
        reward = float(self.compute_reward(quat, self.goal, None))
        return reward, dropped, {"is_success": success, "angle": angle, "dropped": dropped}

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.25, -0.3, 0.8]), np.array([-0.05, 0.0, 0.52])
