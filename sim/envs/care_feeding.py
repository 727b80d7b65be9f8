"""Care tasks with particles: giving the patient a drink from a cup and food from a spoon."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji import assets
from tianji.sim.envs.care import HeldToolEnv, yaw_of

PARKING = np.array([3.5, -1.8])  # outside the room's east wall: where consumed particles are put away


class Particles:
    """Small spheres (water drops or food bits), created once and placed at every reset.

    Particles do not collide with TIAGo (its closed hand reaches into the tool's volume).
    A particle is *consumed* once it comes within ``mouth_radius`` of the mouth (it is then put
    away outside the room and stays counted), *spilled* once it is neither consumed nor within
    ``keep_radius`` of the tool's centre; both are latched for the episode.
    """

    def __init__(
        self,
        env: HeldToolEnv,
        count: int,
        radius: float,
        mass: float,
        rgba: list[float],
        friction: tuple[float, float] = (0.6, 1e-4),
    ) -> None:
        c = env.world.client
        self.env = env
        self.radius = radius
        shape = c.createCollisionShape(pb.GEOM_SPHERE, radius=radius)
        visual = c.createVisualShape(pb.GEOM_SPHERE, radius=radius, rgbaColor=rgba)
        self.ids = []
        for i in range(count):
            body = c.createMultiBody(mass, shape, visual, self._parking(i))
            c.changeDynamics(
                body, -1, lateralFriction=friction[0], rollingFriction=friction[1], spinningFriction=friction[1]
            )
            env.ignore_robot(body)  # the closed hand reaches into the tool's volume
            self.ids.append(body)
        self.consumed = np.zeros(count, dtype=bool)
        self.spilled = np.zeros(count, dtype=bool)

    def _parking(self, i: int) -> list[float]:
        return [float(PARKING[0] + 0.03 * (i % 10)), float(PARKING[1] + 0.03 * (i // 10)), self.radius]

    def __len__(self) -> int:
        return len(self.ids)

    def place(self, positions: np.ndarray) -> None:
        """Put every particle at a world position, at rest; clear the counts."""
        c = self.env.world.client
        for body, p in zip(self.ids, positions, strict=True):
            c.resetBasePositionAndOrientation(body, p.tolist(), [0, 0, 0, 1])
            c.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])
        self.consumed[:] = False
        self.spilled[:] = False

    def positions(self, indices: np.ndarray | None = None) -> np.ndarray:
        """(k, 3) world positions of the particles at ``indices`` (default: all)."""
        c = self.env.world.client
        ids = self.ids if indices is None else [self.ids[i] for i in indices]
        return np.array([c.getBasePositionAndOrientation(b)[0] for b in ids])

    def update(self, mouth: np.ndarray, mouth_radius: float, center: np.ndarray, keep_radius: float) -> tuple[int, int]:
        """Latch newly consumed and spilled particles; return how many of each this call found.

        Only particles not latched yet are read (latched ones no longer count), so the per-step cost
        falls as the episode goes on.
        """
        live = np.flatnonzero(~(self.consumed | self.spilled))
        if not len(live):
            return 0, 0
        pos = self.positions(live)
        near_mouth = np.linalg.norm(pos - mouth, axis=1) <= mouth_radius
        eaten, lost = live[near_mouth], live[~near_mouth & (np.linalg.norm(pos - center, axis=1) > keep_radius)]
        c = self.env.world.client
        for i in eaten.tolist():
            c.resetBasePositionAndOrientation(self.ids[i], self._parking(i), [0, 0, 0, 1])
            c.resetBaseVelocity(self.ids[i], [0, 0, 0], [0, 0, 0])
        self.consumed[eaten] = True
        self.spilled[lost] = True
        return len(eaten), len(lost)

    def shares(self) -> np.ndarray:
        """(3,) shares of particles still held, consumed and spilled."""
        n = len(self)
        consumed, spilled = int(self.consumed.sum()), int(self.spilled.sum())
        return np.array([(n - consumed - spilled) / n, consumed / n, spilled / n])


class FeedingTaskEnv(HeldToolEnv):
    """Shared by drinking and feeding: a held tool with particles, brought to the sitting patient's mouth.

    The patient sits on the care room's chair (bolted down here) at (-1.2, 0.35), facing +x, pelvis
    held in place, head turned 43 deg to the right (towards TIAGo) and chin slightly up; TIAGo
    stands at the patient's front right, its base 0.7 m from the mouth, facing it.
    """

    scene_objects = ("bed", "chair")
    scene_overrides: ClassVar[dict[str, dict[str, Any]]] = {
        "chair": {"position": [-1.2, 0.35, 0.0], "yaw": 0.0, "fixed": True, "randomize": {}},
        "patient": {"preset": "sitting", "position": [-1.2, 0.35]},
        "tiago": {"position": [-0.65, -0.1], "yaw": 2.4},
    }
    patient_posture: ClassVar[dict[str, float]] = {
        "middle_cervical_Y": -0.75,  # head turned 43 degrees to the right, towards TIAGo
        "middle_cervical_Z": -0.1,  # chin slightly up
    }
    patient_joint_jitter: ClassVar[dict[str, float]] = {
        "middle_cervical_Z": 0.1,  # nod
        "middle_cervical_Y": 0.15,  # turn
        "middle_thoracic_Z": 0.05,  # lean
    }
    robot_distance: ClassVar[float] = 0.7  # m, TIAGo's base from the mouth (horizontal)
    robot_bearing: ClassVar[float] = -0.8  # rad, direction from the mouth to TIAGo, from the patient's facing
    robot_jitter: ClassVar[tuple[float, float]] = (0.03, 0.05)  # +-m along x and y, +-rad yaw
    arm_jitter: ClassVar[float] = 0.03  # +-rad (m for the torso) on each carry-pose joint
    particle_count: ClassVar[int]
    particle_radius: ClassVar[float]
    particle_mass: ClassVar[float]
    particle_rgba: ClassVar[list[float]]
    particle_friction: ClassVar[tuple[float, float]] = (0.6, 1e-4)  # lateral, rolling / spinning
    mouth_radius: ClassVar[float]
    keep_radius: ClassVar[float]
    tool_center: ClassVar[tuple[float, float, float]]  # tool-frame point particles are kept around
    tool_tip: ClassVar[tuple[float, float, float]]  # tool-frame point that the distance reward measures
    success_consumed: ClassVar[float] = 0.5
    success_spilled: ClassVar[float] = 0.2
    distance_weight: ClassVar[float] = 1.0
    consumed_weight: ClassVar[float] = 1.0
    spilled_weight: ClassVar[float] = 1.0

    def _build_task(self) -> None:
        super()._build_task()
        self.particles = Particles(
            self,
            self.particle_count,
            self.particle_radius,
            self.particle_mass,
            self.particle_rgba,
            self.particle_friction,
        )
        self._layout = self._particle_layout()

    def _particle_layout(self) -> np.ndarray:
        """(n, 3) particle positions in the tool frame at the start of an episode."""
        raise NotImplementedError

    def _state_space(self) -> spaces.Space:
        return self.unbounded(35)

    def _reset_task(self) -> None:
        rng = self.np_random
        mouth = self._rest_mouth
        bearing = yaw_of(self._patient_rest[1]) + self.robot_bearing
        dxy, dyaw = self.robot_jitter
        x = mouth[0] + self.robot_distance * np.cos(bearing) + rng.uniform(-dxy, dxy)
        y = mouth[1] + self.robot_distance * np.sin(bearing) + rng.uniform(-dxy, dxy)
        yaw = np.arctan2(mouth[1] - y, mouth[0] - x) + rng.uniform(-dyaw, dyaw)
        arm = {j: v + rng.uniform(-self.arm_jitter, self.arm_jitter) for j, v in self.carry_pose.items()}
        arm.update(self.hand_closed())
        self._reset_care((x, y, yaw), arm)
        self.look_at(self.mouth() - np.array([0.0, 0.0, 0.15]))
        self._reset_tool()
        pos, quat = self.tool_pose()
        self.particles.place(np.array([pb.multiplyTransforms(pos, quat, p, (0, 0, 0, 1))[0] for p in self._layout]))

    def _observe_state(self) -> np.ndarray:
        mouth = self.mouth()
        tool = self.tool_pose()[0]
        tip = self.tool_point(self.tool_tip)
        obs = np.concatenate(
            [
                self.arm_state(),
                self.to_base(tool),
                self.tool_axes(),
                self.to_base(mouth),
                self.to_base(mouth) - self.to_base(tip),
                self.particles.shares(),
                [self.patient_force],
            ]
        )
        return obs.astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        mouth = self.mouth()
        eaten, lost = self.particles.update(
            mouth, self.mouth_radius, self.tool_point(self.tool_center), self.keep_radius
        )
        distance = float(np.linalg.norm(mouth - self.tool_point(self.tool_tip)))
        reward = -self.distance_weight * distance + self.consumed_weight * eaten - self.spilled_weight * lost
        reward += self._force_penalty()
        held, consumed, spilled = self.particles.shares()
        success = bool(consumed >= self.success_consumed and spilled <= self.success_spilled)
        info = {
            "is_success": success,
            "consumed": float(consumed),
            "spilled": float(spilled),
            "distance": distance,
            **self._force_info(),
        }
        return float(reward), success or held == 0, info


class CareDrinkingEnv(FeedingTaskEnv):
    """TIAGo gives the sitting patient a drink from a cup (``tianji/CareDrinking-v0``).

    The episode starts with the cup already in TIAGo's hand (attached to ``hand_grasping_frame``
    by a fixed constraint, see :class:`HeldToolEnv`): the care room's red mug (8 cm x 10 cm,
    hollow) holding 24 "water" particles (spheres of 6 mm radius, 1 g, low rolling friction). A
    particle is *consumed* (drunk) once it comes within 4 cm of the mouth point
    (``world_state.MOUTH_IN_HEAD``, 2.5 cm in front of the lips); it is then put away outside the
    room. It is *spilled* once it is more than 15 cm from the cup's centre without having been
    consumed. Pouring needs the cup's rim brought to the mouth and tilted past about 45 deg.

    ===================  ==========================================================================
    Action               Box(-1, 1, (8,)): change of the position target of torso_lift_joint (m) and
                         arm_1..arm_7_joint (rad), 0.02 per control step at |a| = 1 (1 rad/s); targets
                         stay 0.04 rad (4 % of the range for the torso) inside the joint limits.
    Observation          Box(35,) float32, positions in TIAGo's base frame (x forward, y left, z up
                         from the floor): [0:8] torso and arm joint positions (m, rad); [8:16] their
                         velocities; [16:19] cup base frame origin (m); [19:22] its x axis;
                         [22:25] its z axis (up when level); [25:28] patient's mouth (m);
                         [28:31] mouth - rim centre (m); [31:34] shares of the particles held, consumed,
                         spilled; [34] contact force on the patient (N, this step's largest).
                         With ``obs_mode="rgb"``/``"rgbd"``: a Dict with this as ``state`` plus
                         ``rgb`` (84x84x3 uint8) and ``depth`` (84x84x1 float32, m) from the head
                         camera, which starts pointed at the patient's chin.
    Reward               -1.0 x distance rim centre -> mouth (m) + 1.0 per particle consumed
                         - 1.0 per particle spilled (both counted once, when it happens)
                         - 0.01 per newton of patient force above ``force_limit``.
    Starting state       cup upright 0.45 m in front of TIAGo, 0.85 m high, the particles in three
                         layers;
                         TIAGo's base at the nominal spot +-3 cm, heading at the mouth +-0.05 rad;
                         carry pose +-0.03 rad per joint, hand closed around the cup. The patient's
                         pelvis +-3 cm and +-0.08 rad, neck nod +-0.1, turn +-0.15, upper back
                         +-0.05 rad around the settled pose.
    Success              at least 50 % of the particles consumed while at most 20 % are spilled.
    Termination          success, or no particle left in the cup; truncation after 300 steps (6 s).
    Info                 is_success, consumed, spilled (shares 0..1), distance (m), patient_force (N),
                         max_patient_force (N, episode).
    Arguments            force_limit (10 N), obs_mode ("state"|"rgb"|"rgbd"), image_size (84),
                         render_mode ("rgb_array"|"human"), randomization (:class:`DomainRandomization`).
    ===================  ==========================================================================
    """

    tool_in_hand = ((0.0, 0.045, -0.05), (0.0, 0.0, -np.pi / 2))
    carry_pose: ClassVar[dict[str, float]] = {  # the cup upright 0.45 m in front of TIAGo, 0.85 m high
        "torso_lift_joint": 0.22,
        "arm_1_joint": 0.287,
        "arm_2_joint": -0.388,
        "arm_3_joint": -1.784,
        "arm_4_joint": 1.879,
        "arm_5_joint": -2.05,
        "arm_6_joint": 1.093,
        "arm_7_joint": 0.346,
    }
    particle_count = 24
    particle_radius = 0.006
    particle_mass = 0.001
    particle_rgba: ClassVar[list[float]] = [0.35, 0.6, 0.95, 1.0]
    mouth_radius = 0.04
    keep_radius = 0.15
    tool_center = (0.0, 0.0, 0.05)
    tool_tip = (0.0, 0.0, 0.1)

    def _make_tool(self) -> int:
        return self.world.load_urdf(assets.path("objects/cup.urdf"), (0, 0, 1), (0, 0, 0, 1))

    def _particle_layout(self) -> np.ndarray:
        r = self.particle_radius
        ring = [(0.022 * np.cos(a), 0.022 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 7, endpoint=False)]
        points = []
        for layer in range(3):
            z = 0.006 + r + 0.0005 + layer * 2.1 * r
            shift = layer * 0.45
            points.append((0.0, 0.0, z))
            points += [
                (x * np.cos(shift) - y * np.sin(shift), x * np.sin(shift) + y * np.cos(shift), z) for x, y in ring
            ]
        return np.array(points)


class CareFeedingEnv(FeedingTaskEnv):
    """TIAGo feeds the sitting patient with a spoon (``tianji/CareFeeding-v0``).

    The episode starts with the care room's spoon already in TIAGo's hand (attached to
    ``hand_grasping_frame`` by a fixed constraint, see :class:`HeldToolEnv`), its bowl level and
    holding 8 food bits (spheres of 4.5 mm radius, 2 g, high rolling friction: food does not roll).
    A bit is *consumed* once it comes within 4 cm of the mouth point (``world_state.MOUTH_IN_HEAD``,
    2.5 cm in front of the lips) and then put away; *spilled* once it is more than 10 cm from the
    bowl's centre without having been consumed. Feeding is bringing the bowl to the mouth level
    and steady.

    ===================  ==========================================================================
    Action               Box(-1, 1, (8,)): change of the position target of torso_lift_joint (m) and
                         arm_1..arm_7_joint (rad), 0.02 per control step at |a| = 1 (1 rad/s); targets
                         stay 0.04 rad (4 % of the range for the torso) inside the joint limits.
    Observation          Box(35,) float32, positions in TIAGo's base frame (x forward, y left, z up
                         from the floor): [0:8] torso and arm joint positions (m, rad); [8:16] their
                         velocities; [16:19] spoon base frame origin (m); [19:22] its x axis;
                         [22:25] its z axis (up when level); [25:28] patient's mouth (m);
                         [28:31] mouth - bowl centre (m); [31:34] shares of the particles held, consumed,
                         spilled; [34] contact force on the patient (N, this step's largest).
                         With ``obs_mode="rgb"``/``"rgbd"``: a Dict with this as ``state`` plus
                         ``rgb`` (84x84x3 uint8) and ``depth`` (84x84x1 float32, m) from the head
                         camera, which starts pointed at the patient's chin.
    Reward               -1.0 x distance bowl centre -> mouth (m) + 1.0 per particle consumed
                         - 1.0 per particle spilled (both counted once, when it happens)
                         - 0.01 per newton of patient force above ``force_limit``.
    Starting state       spoon level 0.5 m in front of TIAGo, 1 m high, the bits in a 4 x 2 grid in
                         its bowl;
                         TIAGo's base at the nominal spot +-3 cm, heading at the mouth +-0.05 rad;
                         carry pose +-0.03 rad per joint, hand closed around the spoon. The patient's
                         pelvis +-3 cm and +-0.08 rad, neck nod +-0.1, turn +-0.15, upper back
                         +-0.05 rad around the settled pose.
    Success              at least 50 % of the bits consumed while at most 20 % are spilled.
    Termination          success, or no particle left in the spoon; truncation after 200 steps (4 s).
    Info                 is_success, consumed, spilled (shares 0..1), distance (m), patient_force (N),
                         max_patient_force (N, episode).
    Arguments            force_limit (10 N), obs_mode ("state"|"rgb"|"rgbd"), image_size (84),
                         render_mode ("rgb_array"|"human"), randomization (:class:`DomainRandomization`).
    ===================  ==========================================================================
    """

    tool_in_hand = ((0.05, 0.02, 0.0), (0.0, 0.0, 0.0))
    carry_pose: ClassVar[dict[str, float]] = {  # the spoon level, 0.5 m in front of TIAGo, 1 m high
        "torso_lift_joint": 0.062,
        "arm_1_joint": 0.078,
        "arm_2_joint": 0.293,
        "arm_3_joint": -2.75,
        "arm_4_joint": 2.31,
        "arm_5_joint": -0.212,
        "arm_6_joint": -1.164,
        "arm_7_joint": -0.477,
    }
    particle_count = 8
    particle_radius = 0.0045
    particle_mass = 0.002
    particle_rgba: ClassVar[list[float]] = [0.95, 0.55, 0.2, 1.0]
    particle_friction = (1.0, 0.05)
    mouth_radius = 0.04
    keep_radius = 0.1
    tool_center = (0.055, 0.0, 0.005)
    tool_tip = (0.055, 0.0, 0.005)

    def _make_tool(self) -> int:
        return self.world.load_urdf(assets.path("objects/spoon.urdf"), (0, 0, 1), (0, 0, 0, 1))

    def _particle_layout(self) -> np.ndarray:
        z = 0.002 + self.particle_radius + 0.0005
        return np.array([(0.055 + dx, dy, z) for dx in (-0.015, -0.005, 0.005, 0.015) for dy in (-0.005, 0.005)])
