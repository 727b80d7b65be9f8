"""Bed bathing: TIAGo wipes the lying patient's right arm with a washcloth (``tianji/CareBedBathing-v0``)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.sim.envs.care import HeldToolEnv

ARM_LINKS = ("right_upperarm", "right_lowerarm")
CLOTH_HALF_EXTENTS = (0.05, 0.035, 0.01)  # m: a 10 x 7 x 2 cm washcloth folded into a pad
CLOTH_MASS = 0.05  # kg
CLOTH_STIFFNESS = 3000.0  # N/m: a soft, wet pad, 1 cm pressed in gives about 30 N
CLOTH_DAMPING = 100.0  # N s/m
POINTS_PER_LINK = 7


class CareBedBathingEnv(HeldToolEnv):
    """TIAGo wipes the right arm of the patient lying in bed (``tianji/CareBedBathing-v0``).

    The patient lies on their back in the care room's bed (head towards -x), pelvis held in place,
    the right arm resting beside the body on the side where TIAGo stands. The episode starts with a
    washcloth pad (10 x 7 x 2 cm, 50 g, a soft contact: 3000 N/m, 100 N s/m) already in TIAGo's
    hand, attached below the closed hand by a fixed constraint (see :class:`HeldToolEnv`), wiping
    face down. The arm carries 14 surface points, 7 along the top of the upper arm and 7 along the
    forearm (rays cast down onto the settled arm when the environment is built, then fixed in each
    link's frame, so they move with the arm). A point is *wiped* once a contact between the cloth
    and the upper arm or forearm lies within 5 cm of it.

    ===================  ==========================================================================
    Action               Box(-1, 1, (8,)): change of the position target of torso_lift_joint (m) and
                         arm_1..arm_7_joint (rad), 0.02 per control step at |a| = 1 (1 rad/s); targets
                         stay 0.04 rad (4 % of the range for the torso) inside the joint limits.
    Observation          Box(82,) float32, positions in TIAGo's base frame (x forward, y left, z up
                         from the floor): [0:8] torso and arm joint positions (m, rad); [8:16] their
                         velocities; [16:19] cloth centre (m); [19:22] cloth x axis (along its 10 cm
                         side); [22:25] cloth z axis (away from the wiping face); [25:67] the 14
                         surface points (m, x y z each, shoulder to wrist); [67:81] wiped flags
                         (0/1, same order); [81] contact force on the patient (N, this step's largest).
                         With ``obs_mode="rgb"``/``"rgbd"``: a Dict with this as ``state`` plus
                         ``rgb`` (84x84x3 uint8) and ``depth`` (84x84x1 float32, m) from the head
                         camera, which starts pointed at the arm.
    Reward               +1.0 per newly wiped point - 1.0 x distance cloth centre -> nearest point
                         not wiped yet (m) - 0.01 per newton of patient force above ``force_limit``.
    Starting state       TIAGo beside the bed at (-1.7, 0.6) facing the bed (+-3 cm, +-0.05 rad), the
                         cloth level 15 cm above the middle of the arm (carry pose +-0.03 rad per
                         joint); the patient's pelvis +-3 cm and +-0.05 rad, right shoulder
                         +-0.08 rad and elbow +-0.1 rad around the settled pose.
    Success              at least 60 % of the surface points wiped (``info["is_success"]``).
    Termination          success; truncation after 300 steps (6 s).
    Info                 is_success, wiped (share 0..1), distance (m), patient_force (N),
                         max_patient_force (N, episode).
    Arguments            force_limit (10 N), obs_mode ("state"|"rgb"|"rgbd"), image_size (84),
                         render_mode ("rgb_array"|"human"), randomization (:class:`DomainRandomization`).
    ===================  ==========================================================================
    """

    scene_objects = ("bed",)
    scene_overrides: ClassVar[dict[str, dict[str, Any]]] = {"tiago": {"position": [-1.7, 0.6], "yaw": 1.5708}}
    patient_jitter = (0.03, 0.05)
    patient_joint_jitter: ClassVar[dict[str, float]] = {"right_shoulder_Z": 0.08, "right_elbow_Z": 0.1}
    tool_in_hand = ((0.06, 0.0, 0.0), (0.0, -np.pi / 2, 0.0))
    carry_pose: ClassVar[dict[str, float]] = {  # the cloth 15 cm above the middle of the arm, face down
        "torso_lift_joint": 0.296,
        "arm_1_joint": 0.905,
        "arm_2_joint": 0.896,
        "arm_3_joint": -1.171,
        "arm_4_joint": 1.82,
        "arm_5_joint": 0.88,
        "arm_6_joint": -1.128,
        "arm_7_joint": 0.703,
    }
    robot_pose: ClassVar[tuple[float, float, float]] = (-1.7, 0.6, np.pi / 2)
    robot_jitter: ClassVar[tuple[float, float]] = (0.03, 0.05)
    arm_jitter: ClassVar[float] = 0.03
    wipe_radius: ClassVar[float] = 0.05  # m
    success_share: ClassVar[float] = 0.6
    wipe_weight: ClassVar[float] = 1.0
    distance_weight: ClassVar[float] = 1.0

    def _make_tool(self) -> int:
        c = self.world.client
        shape = c.createCollisionShape(pb.GEOM_BOX, halfExtents=CLOTH_HALF_EXTENTS)
        visual = c.createVisualShape(pb.GEOM_BOX, halfExtents=CLOTH_HALF_EXTENTS, rgbaColor=[0.55, 0.8, 0.95, 1])
        body = c.createMultiBody(CLOTH_MASS, shape, visual, [0, 0, 1])
        c.changeDynamics(body, -1, lateralFriction=0.5, contactStiffness=CLOTH_STIFFNESS, contactDamping=CLOTH_DAMPING)
        return body

    def _build_task(self) -> None:
        super()._build_task()
        self._arm_links = [self.patient._link_index[name] for name in ARM_LINKS]
        self.points_local: list[tuple[int, np.ndarray]] = []  # (link index, point in the link frame)
        self.wiped = np.zeros(0, dtype=bool)

    def _after_settle(self) -> None:
        self._find_surface_points()

    def _find_surface_points(self) -> None:
        """Cast rays down onto the settled arm: points along the top of each arm link, in link frames."""
        c, body = self.world.client, self.patient.body_id
        joints = [self.patient.link_pose(name)[:3].astype(float) for name in (*ARM_LINKS, "right_hand")]
        points = []
        for k, link in enumerate(self._arm_links):
            start, end = joints[k], joints[k + 1]
            for f in np.linspace(0.12, 0.88, POINTS_PER_LINK):
                p = start + f * (end - start)
                # only bodies in the default group (the patient): not TIAGo's hand, the cloth or the bed
                up = np.array([0.0, 0.0, 1.0])
                hit = c.rayTest((p + 0.3 * up).tolist(), (p - 0.2 * up).tolist(), collisionFilterMask=1)[0]
                surface = np.array(hit[3]) if hit[0] == body and hit[1] == link else p
                frame = c.getLinkState(body, link, computeForwardKinematics=True)
                inv = pb.invertTransform(frame[4], frame[5])
                points.append((link, np.array(pb.multiplyTransforms(*inv, surface.tolist(), (0, 0, 0, 1))[0])))
        self.points_local = points
        self.wiped = np.zeros(len(points), dtype=bool)

    def surface_points(self) -> np.ndarray:
        """(14, 3) world positions of the arm's surface points."""
        c, body = self.world.client, self.patient.body_id

        def read() -> np.ndarray:
            frames = {link: c.getLinkState(body, link, computeForwardKinematics=True) for link in self._arm_links}
            return np.array(
                [
                    pb.multiplyTransforms(frames[link][4], frames[link][5], p.tolist(), (0, 0, 0, 1))[0]
                    for link, p in self.points_local
                ]
            )

        return self.step_read("surface_points", read)

    def _state_space(self) -> spaces.Space:
        return self.unbounded(16 + 3 + 6 + 3 * 2 * POINTS_PER_LINK + 2 * POINTS_PER_LINK + 1)

    def _reset_task(self) -> None:
        rng = self.np_random
        dxy, dyaw = self.robot_jitter
        x, y, yaw = self.robot_pose
        pose = (x + rng.uniform(-dxy, dxy), y + rng.uniform(-dxy, dxy), yaw + rng.uniform(-dyaw, dyaw))
        arm = {j: v + rng.uniform(-self.arm_jitter, self.arm_jitter) for j, v in self.carry_pose.items()}
        arm.update(self.hand_closed())
        self._reset_care(pose, arm)
        self.look_at(self.surface_points().mean(axis=0))
        self._reset_tool()
        self.wiped[:] = False

    def _observe_state(self) -> np.ndarray:
        obs = np.concatenate(
            [
                self.arm_state(),
                self.to_base(self.tool_pose()[0]),
                self.tool_axes(),
                self.to_base(self.surface_points()).ravel(),
                self.wiped.astype(float),
                [self.patient_force],
            ]
        )
        return obs.astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        c = self.world.client
        points = self.surface_points()
        contacts = [
            np.array(p[6])
            for p in c.getContactPoints(bodyA=self.tool, bodyB=self.patient.body_id)
            if p[4] in self._arm_links
        ]
        before = int(self.wiped.sum())
        for contact in contacts:
            self.wiped |= np.linalg.norm(points - contact, axis=1) <= self.wipe_radius
        new = int(self.wiped.sum()) - before
        left = points[~self.wiped]
        cloth = self.tool_pose()[0]
        distance = float(np.linalg.norm(left - cloth, axis=1).min()) if len(left) else 0.0
        reward = self.wipe_weight * new - self.distance_weight * distance + self._force_penalty()
        share = float(self.wiped.mean())
        success = share >= self.success_share
        info = {"is_success": success, "wiped": share, "distance": distance, **self._force_info()}
        return float(reward), success, info

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        arm = self.surface_points().mean(axis=0)
        return arm + np.array([1.3, -1.4, 1.2]), arm + np.array([0.0, -0.2, -0.1])
