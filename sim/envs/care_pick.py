"""Picking up the patient's cup from the dining table, with a documented grasp assist."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.sim.envs.care import ARM_JOINTS, CareEnv

TABLE_TOP = 0.75  # m, the dining table's top
GRASP_POINT = (0.0, 0.045, 0.0)  # m, where a held cup's axis sits in hand_grasping_frame (in front of the palm)
CUP_CENTER = (0.0, 0.0, 0.06)  # m, the cup-frame point the hand must bring to GRASP_POINT
GRASP_FORCE = 200.0  # N, the grasp assist's constraint
GRIPPER_JOINT = "hand_index_flex_3_joint"  # labels the gripper element of the action


class CarePickCupEnv(CareEnv):
    """TIAGo grasps the cup on the dining table and lifts it (``tianji/CarePickCup-v0``).

    **Grasp assist.** Grasping a cup with the Hey5 hand's mesh fingers in PyBullet is not reliable,
    so, as in many manipulation benchmarks, a successful grasp is a suction-like assist: when the
    gripper is commanded closed (opening < 0.5) while the cup's centre (6 cm above its base) is
    within ``grasp_tolerance`` (4 cm) of the grasp point (4.5 cm in front of the palm, in
    ``hand_grasping_frame``), a fixed constraint holds the cup where it is relative to the hand;
    commanding the gripper open (opening > 0.5) removes it. The fingers still close physically.

    ===================  ==========================================================================
    Action               Box(-1, 1, (9,)): [0:8] change of the position target of torso_lift_joint
                         (m) and arm_1..arm_7_joint (rad), 0.02 per control step at |a| = 1 (1 rad/s),
                         targets kept 0.04 rad (4 % of the range for the torso) inside the joint
                         limits; [8] gripper opening (a + 1) / 2 (0 closed, 1 open): targets of all
                         the hand joints of TIAGo's gripper table, kept inside their limits the same
                         way; labelled by hand_index_flex_3_joint in ``actuated``.
    Observation          Box(31,) float32, positions in TIAGo's base frame (x forward, y left, z up):
                         [0:8] torso and arm joint positions (m, rad); [8:16] their velocities;
                         [16] measured gripper opening (0..1); [17:20] grasp point (m); [20:23] cup
                         centre (m); [23:26] cup's up axis; [26:29] cup centre - grasp point (m);
                         [29] cup held by the assist (0/1); [30] contact force on the patient (N).
                         With ``obs_mode="rgb"``/``"rgbd"``: a Dict with this as ``state`` plus
                         ``rgb`` (84x84x3 uint8) and ``depth`` (84x84x1 float32, m) from the head
                         camera.
    Reward               -1.0 x distance grasp point -> cup centre (m) + 1.0 while held + 2.0 x lift
                         fraction (cup base height above the table / 0.10 m, clipped to 0..1)
                         - 0.01 per newton of patient force above ``force_limit``.
    Starting state       TIAGo in front of the dining table's south edge at (1.05, 0.62) facing north
                         (+-3 cm, +-0.05 rad), arm tucked, hand open, head looking at the cup; cup
                         upright on the table at (0.98, 1.18) (+-3 cm, yaw +-0.3 rad, handle east);
                         the patient lies in bed (pelvis +-3 cm, +-0.08 rad).
    Success              cup base at least 0.10 m above the table top and its axis within 20 deg
                         of vertical (``info["is_success"]``).
    Termination          success, or the cup off the table (base below 0.5 m); truncation after
                         200 steps (4 s).
    Info                 is_success, held, lift (m), distance (m), patient_force (N, this step's
                         largest), max_patient_force (N, episode).
    Arguments            force_limit (10 N), grasp_tolerance (0.04 m), obs_mode ("state"|"rgb"|
                         "rgbd"), image_size (84), render_mode ("rgb_array"|"human"),
                         randomization (:class:`DomainRandomization`).
    ===================  ==========================================================================
    """

    scene_objects = ("bed", "dining_table", "cup")
    scene_overrides: ClassVar[dict[str, dict[str, Any]]] = {"tiago": {"position": [1.05, 0.62], "yaw": math.pi / 2}}
    robot_pose: ClassVar[tuple[float, float, float]] = (1.05, 0.62, math.pi / 2)
    robot_jitter: ClassVar[tuple[float, float]] = (0.03, 0.05)
    cup_pose: ClassVar[tuple[float, float, float]] = (0.98, 1.18, -math.pi / 2)
    cup_jitter: ClassVar[tuple[float, float]] = (0.03, 0.3)
    lift_height: ClassVar[float] = 0.10
    max_tilt: ClassVar[float] = math.radians(20)

    def __init__(self, *, grasp_tolerance: float = 0.04, **kwargs: Any) -> None:
        if not grasp_tolerance > 0:
            raise ValueError(f"grasp_tolerance must be a positive distance in metres, got {grasp_tolerance}")
        self.grasp_tolerance = float(grasp_tolerance)
        self._grasp = -1
        self._opening = 1.0
        super().__init__(**kwargs)

    def _after_settle(self) -> None:
        self.cup = self.scene.objects["cup"].body_id
        self._gripper_idx = self.tiago.spec.index(GRIPPER_JOINT)

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [("tiago", j) for j in ARM_JOINTS] + [("tiago", GRIPPER_JOINT)]

    def _map_action(self, action: np.ndarray) -> None:
        self._opening = float((action[8] + 1.0) / 2.0)
        hand, hand_targets = self.gripper_targets(self._opening)
        self.tiago.command_positions(
            np.concatenate([self._arm_idx, hand]), np.concatenate([self.arm_targets(action[:8]), hand_targets])
        )

    def _state_space(self) -> spaces.Space:
        return self.unbounded(31)

    # -------------------------------------------------------------- episode
    def _reset_task(self) -> None:
        if self._grasp >= 0:
            self.world.client.removeConstraint(self._grasp)
            self._grasp = -1
        rng = self.np_random
        dxy, dyaw = self.robot_jitter
        x, y, yaw = self.robot_pose
        self._reset_care((x + rng.uniform(-dxy, dxy), y + rng.uniform(-dxy, dxy), yaw + rng.uniform(-dyaw, dyaw)))
        dxy, dyaw = self.cup_jitter
        x, y, yaw = self.cup_pose
        cup_xy = (x + rng.uniform(-dxy, dxy), y + rng.uniform(-dxy, dxy))
        quat = pb.getQuaternionFromEuler((0, 0, yaw + rng.uniform(-dyaw, dyaw)))
        self.teleport(self.cup, [*cup_xy, TABLE_TOP], quat)
        self._opening = 1.0
        self.tiago.command_positions(*self.gripper_targets(1.0))
        self.look_at(np.array([*cup_xy, TABLE_TOP]))

    def grasp_point(self) -> np.ndarray:
        """World position of the grasp point in front of the palm."""
        pos, quat = self.hand_pose()
        return np.array(pb.multiplyTransforms(pos, quat, GRASP_POINT, (0, 0, 0, 1))[0])

    def cup_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """World (position, quaternion) of the cup's base frame."""
        return self.step_read("cup_frame", lambda: self.world.base_pose(self.cup))

    def cup_center(self) -> np.ndarray:
        """World position of the cup's centre (6 cm above its base, on its axis)."""
        pos, quat = self.cup_frame()
        return np.array(pb.multiplyTransforms(pos, quat, CUP_CENTER, (0, 0, 0, 1))[0])

    @property
    def held(self) -> bool:
        """Whether the grasp assist holds the cup."""
        return self._grasp >= 0

    def _update_grasp(self) -> None:
        """Attach the cup when the hand closes around it; release it when the hand opens."""
        c = self.world.client
        if self._grasp >= 0 and self._opening > 0.5:
            c.removeConstraint(self._grasp)
            self._grasp = -1
            return
        near = np.linalg.norm(self.cup_center() - self.grasp_point()) <= self.grasp_tolerance
        if self._grasp < 0 and self._opening < 0.5 and near:
            hand = c.getLinkState(self.tiago.body_id, self._hand_link, computeForwardKinematics=True)
            cup = c.getBasePositionAndOrientation(self.cup)
            rel = pb.multiplyTransforms(*pb.invertTransform(hand[0], hand[1]), cup[0], cup[1])  # cup in hand COM
            self._grasp = c.createConstraint(
                self.tiago.body_id, self._hand_link, self.cup, -1, pb.JOINT_FIXED, [0, 0, 0], rel[0], [0, 0, 0], rel[1]
            )
            c.changeConstraint(self._grasp, maxForce=GRASP_FORCE)

    def _observe_state(self) -> np.ndarray:
        grasp, cup = self.grasp_point(), self.cup_center()
        _, quat = self.cup_frame()
        up = np.array(pb.getMatrixFromQuaternion(quat.tolist())).reshape(3, 3)[:, 2]
        rot = self.base_rotation()
        obs = np.concatenate(
            [
                self.arm_state(),
                [self.tiago.gripper_opening(self.tiago_joints()[0]) or 0.0],
                self.to_base(grasp),
                self.to_base(cup),
                rot.T @ up,
                rot.T @ (cup - grasp),
                [float(self.held), self.patient_force],
            ]
        )
        return obs.astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        self._update_grasp()
        pos, quat = self.cup_frame()
        up = np.array(pb.getMatrixFromQuaternion(quat.tolist())).reshape(3, 3)[:, 2]
        lift = float(pos[2] - TABLE_TOP)
        tilt = math.acos(float(np.clip(up[2], -1.0, 1.0)))
        distance = float(np.linalg.norm(self.cup_center() - self.grasp_point()))
        reward = -distance + float(self.held) + 2.0 * float(np.clip(lift / self.lift_height, 0.0, 1.0))
        reward += self._force_penalty()
        success = lift >= self.lift_height and tilt <= self.max_tilt
        info = {"is_success": success, "held": self.held, "lift": lift, "distance": distance, **self._force_info()}
        return float(reward), bool(success or pos[2] < 0.5), info

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        cup = self.cup_center()
        return cup + np.array([1.2, -1.3, 0.7]), cup + np.array([0.0, -0.3, -0.1])
