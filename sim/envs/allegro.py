"""Allegro hand tasks: reorient a cube on the upturned palm; grasp and lift an object from a table."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.control.robot import BaseType
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
    # np.linalg.norm(x, axis=-1, keepdims=True), np.sum and np.clip, as the ufuncs they call (fewer Python layers)
    a = a / np.sqrt(np.add.reduce(a * a, axis=-1, keepdims=True))
    d = d / np.sqrt(np.add.reduce(d * d, axis=-1, keepdims=True))
    dot = np.abs(np.add.reduce(a * d, axis=-1)).clip(0.0, 1.0)
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
        self._step_cube: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
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
        self._cube_pose = c.getBasePositionAndOrientation  # bound once (a BulletClient lookup builds a partial)
        self._cube_velocity = c.getBaseVelocity

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
        self._step_cube = None
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
        pos, quat = self._cube_pose(self.cube)
        lin, ang = self._cube_velocity(self.cube)
        return np.array(pos), np.array(quat), np.array(lin), np.array(ang)

    def _observe_state(self) -> dict[str, np.ndarray]:
        q, dq = self.robot.joint_states()  # observe()'s joint_positions and joint_velocities
        cube, self._step_cube = self._step_cube, None  # read by _evaluate right before, in a step
        pos, quat, lin, ang = cube if cube is not None else self._cube_state()
        state = np.concatenate([q, dq, pos, quat, lin, ang]).astype(np.float32)
        return {"observation": state, "achieved_goal": quat.astype(np.float32), "desired_goal": self.goal.copy()}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """Vectorized reward from orientations alone, as SB3's HER needs."""
        return self._angle_reward(quaternion_angle(achieved_goal, desired_goal))

    def _angle_reward(self, angle: np.ndarray) -> np.ndarray:
        if self.reward_type == "sparse":
            return -(angle >= self.success_angle).astype(np.float32)
        return (-angle).astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        self._step_cube = pos, quat, _, _ = self._cube_state()  # _observe_state, right after, reuses it
        quat = quat.astype(np.float32)  # as observed, so the reward equals compute_reward(obs...)
        angle_array = quaternion_angle(quat, self.goal)
        angle = float(angle_array)
        dropped = bool(pos[2] < self.palm_height() - self.drop_depth)
        success = angle < self.success_angle and not dropped
        reward = float(self._angle_reward(angle_array))  # = compute_reward(quat, goal, None)
        return reward, dropped, {"is_success": success, "angle": angle, "dropped": dropped}

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.25, -0.3, 0.8]), np.array([-0.05, 0.0, 0.52])


TABLE_TOP = 0.40  # m
GRASP_CENTER = np.array([0.03, 0.0])  # (x, y) under the palm, where the object is placed
WRIST_START = TABLE_TOP + 0.21  # m, wrist height at the start of an episode
WRIST_RANGE = (TABLE_TOP + 0.08, TABLE_TOP + 0.45)  # m
WRIST_STEP = 0.008  # m per control step at |a| = 1 (0.4 m/s at 50 Hz)
PALM_DOWN_RPY = (0.0, math.pi / 2, 0.0)
SHAPES = ("cube", "cylinder", "sphere")


class AllegroGraspEnv(TianjiEnv):
    """Grasp an object from a table and lift it 10 cm (``tianji/AllegroGrasp-v0``).

    The hand hangs palm down from a wrist on a vertical slide (its only arm motion) above a
    0.4 m table; the object is a cube (5 cm), a cylinder (5 cm x 6 cm) or a sphere (5.6 cm),
    chosen at random each episode.

    ===================  ==========================================================================
    Action               Box(-1, 1, (17,)): change of the position target of joint_0.0..joint_15.0
                         (rad, 0.05 per step at |a| = 1), then the wrist's vertical speed
                         (0.4 m/s at |a| = 1; wrist height kept within 0.48..0.85 m).
    Observation          Box (49,): joint positions (16, rad), joint velocities (16, rad/s), wrist
                         height above the table (1, m), object position relative to the grasp point
                         under the palm (3, m), object orientation (4, quaternion x y z w), object
                         linear velocity (3, m/s), object lift above its start (1, m), fingertip
                         mean distance to the object (1, m), shape one-hot (3: cube, cylinder,
                         sphere), 1 if the object has been held up for any step (1).
                         ``obs_mode="rgb"/"rgbd"``: Dict with ``state`` and ``rgb``/``depth`` from a
                         fixed camera.
    Reward               -1.0 x mean fingertip distance to the object (m) + 2.0 x lift (m, clipped to
                         0.10) / 0.10 + 0.05 per step held at the target height + 5.0 on success.
    Starting state       fingers open, wrist 0.21 m above the table; the object at rest under the
                         palm within +-1.5 cm and a random yaw, mass U(0.05, 0.12) kg.
    Termination          success, or the object falls off the table.
    Truncation           after 250 steps (5 s at 50 Hz).
    Success              the object at least 10 cm above its start for 1 s (50 control steps).
    Info                 is_success, lift (m), held_steps, shape.
    Arguments            obs_mode, image_size, render_mode, randomization; ``reset(options={"shape":
                         "cube"|"cylinder"|"sphere"})`` fixes the object.
    ===================  ==========================================================================
    """

    lift_target: ClassVar[float] = 0.10  # m
    hold_steps: ClassVar[int] = 50  # 1 s at 50 Hz

    def __init__(self, **kwargs: Any) -> None:
        self.shape_index = 0
        self.start_height = 0.0
        self.held = 0
        self.wrist_height = WRIST_START
        # (joint positions, velocities, object position, orientation, velocity, tip distance) read by _evaluate
        super().__init__(**kwargs)

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        c = self.world.client
        desc = dataclasses.replace(
            get_robot("allegro"), base=BaseType.FLOATING, spawn_height=WRIST_START, spawn_rpy=PALM_DOWN_RPY
        )
        self.robot = SimRobot(self.world, desc)
        self.robots = {"allegro": self.robot}
        self._wrist_quat = pb.getQuaternionFromEuler(PALM_DOWN_RPY)
        self._wrist = c.createConstraint(
            self.robot.body_id,
            -1,
            -1,
            -1,
            pb.JOINT_FIXED,
            [0, 0, 0],
            [0, 0, 0],
            [0, 0, WRIST_START],
            childFrameOrientation=self._wrist_quat,
        )
        c.changeConstraint(self._wrist, maxForce=500.0)
        half = [0.35, 0.35, TABLE_TOP / 2]
        table_shape = c.createCollisionShape(pb.GEOM_BOX, halfExtents=half)
        table_visual = c.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=[0.60, 0.48, 0.36, 1.0])
        self.table = c.createMultiBody(0, table_shape, table_visual, [0.05, 0.0, TABLE_TOP / 2])
        shapes = [
            (pb.GEOM_BOX, {"halfExtents": [0.025] * 3}),
            (pb.GEOM_CYLINDER, {"radius": 0.025, "height": 0.06}),
            (pb.GEOM_SPHERE, {"radius": 0.028}),
        ]
        colours = [[0.15, 0.55, 0.95, 1], [0.95, 0.35, 0.15, 1], [0.25, 0.80, 0.30, 1]]
        self.objects = []
        for i, ((geom, size), rgba) in enumerate(zip(shapes, colours, strict=True)):
            col = c.createCollisionShape(geom, **size)
            vis_size = {"length": size["height"], "radius": size["radius"]} if geom == pb.GEOM_CYLINDER else size
            vis = c.createVisualShape(geom, rgbaColor=rgba, **vis_size)
            body = c.createMultiBody(0.08, col, vis, self._parking(i).tolist())
            c.changeDynamics(body, -1, lateralFriction=1.2, rollingFriction=0.001, spinningFriction=0.001)
            self.objects.append(body)
        for link in range(-1, c.getNumJoints(self.robot.body_id)):
            c.changeDynamics(self.robot.body_id, link, lateralFriction=1.2)
        self.task_bodies = [*self.objects, self.table]
        self._tips = tuple(self.robot.description.end_effectors)  # the fingertips
        # bound once (a BulletClient attribute lookup builds a new partial every time)
        self._object_pose = c.getBasePositionAndOrientation
        self._object_velocity = c.getBaseVelocity
        self._change_constraint = c.changeConstraint

    @staticmethod
    def _parking(i: int) -> np.ndarray:
        return np.array([3.0 + i, 3.0, 0.05])

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [("allegro", j) for j in self.robot.spec.joint_names] + [("wrist", "wrist_lift")]

    def _state_space(self) -> spaces.Space:
        return self._box(-np.inf, np.inf, 49)

    # -------------------------------------------------------------- episode
    def _reset_task(self) -> None:
        c, rng = self.world.client, self.np_random
        self.wrist_height = WRIST_START
        c.changeConstraint(self._wrist, [0, 0, WRIST_START], self._wrist_quat, maxForce=500.0)
        self.shape_index = int(rng.integers(len(SHAPES)))
        if "shape" in self.reset_options:
            if self.reset_options["shape"] not in SHAPES:
                raise ValueError(f"options['shape'] must be one of {SHAPES}, got {self.reset_options['shape']!r}")
            self.shape_index = SHAPES.index(self.reset_options["shape"])
        for i, body in enumerate(self.objects):
            c.resetBasePositionAndOrientation(body, self._parking(i).tolist(), [0, 0, 0, 1])
        body = self.objects[self.shape_index]
        half_height = {0: 0.025, 1: 0.03, 2: 0.028}[self.shape_index]
        xy = GRASP_CENTER + rng.uniform(-0.015, 0.015, 2)
        yaw = float(rng.uniform(-math.pi, math.pi))
        c.resetBasePositionAndOrientation(body, [*xy, TABLE_TOP + half_height], pb.getQuaternionFromEuler((0, 0, yaw)))
        c.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])
        c.changeDynamics(body, -1, mass=float(rng.uniform(0.05, 0.12)))
        self.start_height = TABLE_TOP + half_height
        self.held = 0

    @property
    def object_id(self) -> int:
        """Body id of this episode's object."""
        return self.objects[self.shape_index]

    def _map_action(self, action: np.ndarray) -> None:
        super()._map_action(action[:-1])
        low, high = WRIST_RANGE
        self.wrist_height = min(max(self.wrist_height + float(action[-1]) * WRIST_STEP, low), high)
        self._change_constraint(self._wrist, [0, 0, self.wrist_height], self._wrist_quat, maxForce=500.0)

    def _grasp_point(self) -> np.ndarray:
        return np.array([*GRASP_CENTER, self.wrist_height - 0.09])

    def _object(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        body = self.objects[self.shape_index]
        pos, quat = self._object_pose(body)
        lin, _ = self._object_velocity(body)
        return np.array(pos), np.array(quat), np.array(lin)

    def _tip_distance(self, pos: np.ndarray) -> float:
        """Mean distance (m) of the fingertips to ``pos``."""
        tips = self.robot.end_effector_positions(self._tips).reshape(-1, 3)  # observe()'s ee_poses[..][:3]
        # np.mean of np.linalg.norm(tip - pos) per tip, in the same operations: sqrt(d.dot(d)), then the sum
        # (numpy sums fewer than 8 elements left to right) over the count
        distances = [math.sqrt(d.dot(d)) for d in tips - pos]
        return sum(distances) / len(distances)

    def _read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
        q, dq = self.robot.joint_states()  # observe()'s joint_positions and joint_velocities
        pos, quat, lin = self._object()
        return q, dq, pos, quat, lin, self._tip_distance(pos)

    def _observe_state(self) -> np.ndarray:
        q, dq, pos, quat, lin, tips = self.step_read("state", self._read)  # _evaluate's read, shared
        lift = pos[2] - self.start_height
        shape = np.eye(len(SHAPES))[self.shape_index]
        return np.concatenate(
            [
                q,
                dq,
                [self.wrist_height - TABLE_TOP],
                pos - self._grasp_point(),
                quat,
                lin,
                [lift, tips],
                shape,
                [float(self.held > 0)],
            ]
        ).astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        reads = self.step_read("state", self._read)  # _observe_state, right after, shares it
        pos, reach = reads[2], reads[5]
        lift = float(pos[2] - self.start_height)
        self.held = self.held + 1 if lift >= self.lift_target else 0
        success = self.held >= self.hold_steps
        fell = bool(pos[2] < TABLE_TOP - 0.05)
        reward = -1.0 * reach + 2.0 * min(max(lift, 0.0), self.lift_target) / self.lift_target
        reward += 0.05 * (self.held > 0) + 5.0 * success
        info = {"is_success": success, "lift": lift, "held_steps": self.held, "shape": SHAPES[self.shape_index]}
        return float(reward), success or fell, info

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0.45, -0.45, 0.75]), np.array([0.05, 0.0, 0.48])
