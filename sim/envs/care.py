"""Care environments: TIAGo helping the patient (the ``human`` model) in a reduced care room.

Shared machinery of ``tianji/Care*-v0`` (the tasks live in ``care_*.py``):

* **Scene.** Each task builds only the parts of ``assets/scenes/care_room.yaml`` it needs (walls,
  bed, some furniture, the patient, TIAGo; never the G1) with :func:`tianji.sim.scene.build`, lets
  the patient settle once, then pins the patient's pelvis where it settled (a constraint of at
  most 600 N: a seated or lying person does not slide). Every episode starts from that snapshot,
  the patient jittered within ranges each task documents and held by its joint position targets.
* **Patient force.** The largest normal contact force between the patient and TIAGo (plus a held
  tool) over the physics steps of a control step is ``info["patient_force"]``; the episode's
  largest is ``info["max_patient_force"]``; every newton above ``force_limit`` (default 10 N)
  costs 0.01 reward.
* **Arm.** Actions move torso and arm targets by at most 0.02 rad (m) per step, kept 0.04 rad
  inside the joint limits: PyBullet lets TIAGo's weak wrist joints overshoot a limit they are
  driven into fast, and the arm works close to a person.
* **TIAGo's ``hand_safety_box``** (a 20 x 11.5 x 18 cm planning volume around the Hey5 hand,
  collision-only in the URDF) is switched off: in PyBullet it collides and renders as a box.
* **Reproducibility.** ``restoreState`` does not restore PyBullet's collision broadphase, so
  every reset re-inserts all collision objects in a fixed order and the environment plays one
  episode when it is built: the same seed and actions then replay bit for bit whatever ran before.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from typing import Any, ClassVar

import numpy as np
import pybullet as pb
import yaml
from gymnasium import spaces

from tianji.control.robot import Observation
from tianji.sim import patient as patient_body
from tianji.sim import scene
from tianji.sim.envs.base import TianjiEnv
from tianji.sim.sim_robot import SimRobot

ARM_JOINTS = ("torso_lift_joint", *(f"arm_{i}_joint" for i in range(1, 8)))
HAND_LINK = "hand_grasping_frame"
SAFETY_BOX_LINK = "hand_safety_box"
DEFAULT_FORCE_LIMIT = 10.0  # N, contact force on the patient above which the reward is penalized
FORCE_WEIGHT = 0.01  # reward per newton above the limit
PATIENT_PIN_FORCE = 600.0  # N, holds a seated / lying patient's pelvis in place (people do not slide)
LIMIT_MARGIN = 0.04  # rad (or m): how far inside its limits a joint target stays
DYNAMIC_FILTER = (1, -1)  # PyBullet's default collision group and mask of a moving link
STATIC_FILTER = (2, -1 ^ 2)  # ... and of a fixed one
ROBOT_GROUP = 64  # collision group bit of TIAGo's links
PASS_GROUP = 128  # collision group bit of bodies that pass through TIAGo (held tools, particles)


@functools.cache
def _care_room() -> dict[str, Any]:
    return yaml.safe_load(scene.scene_file("care_room").read_text())


def care_room_config(objects: tuple[str, ...], overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The care room with only ``objects`` (and TIAGo and the patient), entries updated by ``overrides``."""
    cfg = copy.deepcopy(_care_room())
    unknown = set(objects) - set(cfg["objects"])
    if unknown:
        raise ValueError(f"care room has no objects {sorted(unknown)}; it has {sorted(cfg['objects'])}")
    cfg["objects"] = {k: v for k, v in cfg["objects"].items() if k in objects}
    cfg["robots"] = {k: v for k, v in cfg["robots"].items() if k in ("tiago", "patient")}
    cfg["places"] = {k: v for k, v in cfg["places"].items() if v.get("surface") in (None, *objects)}
    for name, changes in (overrides or {}).items():
        group = cfg["objects"] if name in cfg["objects"] else cfg["robots"]
        group[name] = {**group[name], **changes}
    return cfg


def yaw_of(quat: np.ndarray | tuple[float, ...]) -> float:
    """Heading (rad) of the x axis of an (x, y, z, w) quaternion, projected on the floor."""
    m = pb.getMatrixFromQuaternion(list(quat))
    return math.atan2(m[3], m[0])


class CareEnv(TianjiEnv):
    """A care task: TIAGo (label ``tiago``) and the patient (label ``patient``) in a reduced care room.

    Subclasses set the class variables below, add bodies in :meth:`_build_task` (before the scene
    settles) or :meth:`_after_settle`, call :meth:`_reset_care` from ``_reset_task`` and
    :meth:`_force_penalty` from ``_evaluate``. ``self.tool`` (a body id or -1) counts in the patient
    force. Positions in observations are in TIAGo's base frame (x forward, y left, z up from the
    floor) unless said otherwise. See the module docstring for what all care tasks share.
    """

    camera_robot = "tiago"
    max_joint_delta = 0.02  # rad (m) per control step at |a| = 1: 1 rad/s, a calm arm near a person
    scene_objects: ClassVar[tuple[str, ...]] = ("bed",)
    scene_overrides: ClassVar[dict[str, dict[str, Any]]] = {}
    pin_patient: ClassVar[bool] = True
    settle_steps: ClassVar[int] = 25  # control steps the patient settles at build time
    patient_jitter: ClassVar[tuple[float, float]] = (0.03, 0.08)  # +-m in x and y, +-rad yaw
    patient_posture: ClassVar[dict[str, float]] = {}  # joint -> rad, on top of the scene's preset
    patient_joint_jitter: ClassVar[dict[str, float]] = {}  # joint -> +-rad around the settled pose
    robots_reset_by_task: ClassVar[tuple[str, ...]] = ("tiago", "patient")  # every task calls _reset_care

    def __init__(self, *, force_limit: float = DEFAULT_FORCE_LIMIT, **kwargs: Any) -> None:
        if not force_limit > 0:
            raise ValueError(f"force_limit must be a positive force in newtons, got {force_limit}")
        self.force_limit = float(force_limit)
        self.tool = -1
        self._filters: dict[tuple[int, int], tuple[int, int]] = {}  # (body, link) -> collision group, mask
        self._force_substep = 0
        self._substep_force = 0.0
        self.patient_force = 0.0
        self.max_patient_force = 0.0
        super().__init__(**kwargs)
        # A first episode so that every user episode follows one (PyBullet keeps some collision state
        # across restoreState; see _forget_contacts); the user's own seeding is left untouched.
        self.reset(seed=0)
        self.world.step()
        self._np_random, self._np_random_seed = None, None

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        self.scene = scene.build(care_room_config(self.scene_objects, self.scene_overrides), self.world)
        self.tiago: SimRobot = self.scene.robots["tiago"]
        self.patient: SimRobot = self.scene.robots["patient"]
        self.robots = {"tiago": self.tiago, "patient": self.patient}
        self.task_bodies = [o.body_id for o in self.scene.objects.values() if not o.fixed]
        self._arm_idx = np.array([self.tiago.spec.index(j) for j in ARM_JOINTS])
        self._gripper_joints: tuple[np.ndarray, ...] | None = None  # gripper_targets
        self._hand_link = self.tiago._link_index[HAND_LINK]
        self._drop_safety_box()
        if self.patient_posture:
            q = self.patient.start_positions.copy()
            for joint, value in self.patient_posture.items():
                q[self.patient.spec.index(joint)] = value
            self.patient.reset(q)
        self._build_task()
        self.world.step(self.settle_steps)
        pos, quat = self.world.base_pose(self.patient.body_id)
        self._pin = -1
        if self.pin_patient:  # pinned where it settled, so the pin does not fight the furniture
            self._pin = patient_body.pin(self.world, self.patient, PATIENT_PIN_FORCE)
        self._patient_rest = (pos, quat, self.patient.observe().joint_positions.astype(float))
        self._rest_mouth = self.mouth()
        self._after_settle()
        self._register_filters()
        self.world.add_physics_hook(self._sample_force)

    def _drop_safety_box(self) -> None:
        """Put TIAGo's links in :data:`ROBOT_GROUP`, and make its ``hand_safety_box`` (PAL's
        20 x 11.5 x 18 cm planning volume around the hand, collision-only in the URDF) neither
        collide nor show: it is not a physical part of the robot."""
        c, body = self.world.client, self.tiago.body_id
        safety = self.tiago._link_index.get(SAFETY_BOX_LINK)
        for link in range(-1, c.getNumJoints(body)):
            group, mask = (0, 0) if link == safety else (ROBOT_GROUP, -1 & ~PASS_GROUP)
            c.setCollisionFilterGroupMask(body, link, group, mask)
            self._filters[(body, link)] = (group, mask)
        if safety is not None:
            c.changeVisualShape(body, safety, rgbaColor=[0, 0, 0, 0])

    def ignore_robot(self, body: int) -> None:
        """Let ``body`` pass through TIAGo (held tools overlap the closed hand; particles live in them).

        PyBullet filters a pair when either side's group misses the other's mask, so both sides carry
        a bit: TIAGo's links are in ROBOT_GROUP without PASS_GROUP in their mask, and vice versa.
        """
        c = self.world.client
        for link in range(-1, c.getNumJoints(body)):
            c.setCollisionFilterGroupMask(body, link, PASS_GROUP, -1 & ~ROBOT_GROUP)
            self._filters[(body, link)] = (PASS_GROUP, -1 & ~ROBOT_GROUP)

    def _register_filters(self) -> None:
        """Record PyBullet's default collision filter of every link not set yet (see :meth:`_forget_contacts`)."""
        c = self.world.client
        fixed = {o.body_id for o in self.scene.objects.values() if o.fixed}
        for i in range(c.getNumBodies()):
            body = c.getBodyUniqueId(i)
            static_base = body in fixed or c.getDynamicsInfo(body, -1)[0] == 0
            for link in range(-1, c.getNumJoints(body)):
                if (body, link) not in self._filters:
                    static = static_base if link == -1 else c.getDynamicsInfo(body, link)[0] == 0
                    self._filters[(body, link)] = STATIC_FILTER if static else DYNAMIC_FILTER

    def _build_task(self) -> None:
        """Add the task's own bodies (tools, particles); called once, before the scene settles."""

    def _after_settle(self) -> None:
        """Task set-up that needs the settled scene (before the snapshot); called once."""

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [("tiago", j) for j in ARM_JOINTS]

    def _map_action(self, action: np.ndarray) -> None:
        """Arm targets move by ``action * max_joint_delta``, kept :data:`LIMIT_MARGIN` inside the limits."""
        self.tiago.command_positions(self._arm_idx, self.arm_targets(action[: len(ARM_JOINTS)]))

    def arm_targets(self, action: np.ndarray) -> np.ndarray:
        """New torso and arm position targets for a normalized action (see :meth:`_map_action`).

        PyBullet lets a joint driven hard into its limit overshoot it under load (a held tool, a
        contact), so targets stop short of the limits by 4 % of the range (at most 0.04 rad).
        """
        spec = self.tiago.spec
        lo, hi = spec.position_lower[self._arm_idx], spec.position_upper[self._arm_idx]
        margin = np.minimum(LIMIT_MARGIN, 0.04 * (hi - lo))
        targets = self.tiago.position_targets[self._arm_idx] + np.asarray(action) * self.max_joint_delta
        return np.clip(targets, lo + margin, hi - margin)

    def gripper_targets(self, opening: float) -> tuple[np.ndarray, np.ndarray]:
        """(spec indices, position targets) of TIAGo's hand joints for an opening (0 closed .. 1 open),
        kept inside the limits like the arm's (for :meth:`SimRobot.command_positions`)."""
        if self._gripper_joints is None:  # matched once, not ~150 regex matches every step
            spec = self.tiago.spec
            rows = []
            for pattern, (opened, closed) in self.tiago.description.gripper.items():
                for i, joint in enumerate(spec.joint_names):
                    if re.fullmatch(pattern, joint):
                        lo, hi = spec.position_lower[i], spec.position_upper[i]
                        margin = min(LIMIT_MARGIN, 0.04 * (hi - lo))
                        rows.append((i, opened, closed, lo + margin, hi - margin))
            index, opened, closed, low, high = zip(*rows, strict=True)
            limits = (np.array(v) for v in (opened, closed, low, high))
            self._gripper_joints = (np.array(index, dtype=np.int64), *limits)
        index, opened, closed, low, high = self._gripper_joints
        return index, np.clip(closed + opening * (opened - closed), low, high)

    # -------------------------------------------------------------- episode
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._forget_contacts()
        return super().reset(seed=seed, options=options)

    def _forget_contacts(self) -> None:
        """Rebuild PyBullet's collision broadphase before the snapshot is restored.

        ``restoreState`` keeps the broadphase (its pairs, with their cached contacts and separating
        axes, and its trees) of the end of the last episode, so a pair met again in the next episode
        starts from another cache than in a fresh one and replays drift (seen with particles in the
        cup). Setting a link's collision filter makes PyBullet take it out of the collision world and
        put it back: doing so for every link, in a fixed order, rebuilds the broadphase the same way
        at every reset.
        """
        c = self.world.client
        for (body, link), (group, mask) in self._filters.items():
            c.setCollisionFilterGroupMask(body, link, group, mask)

    def hand_closed(self) -> dict[str, float]:
        """TIAGo's hand joints at their closed positions (from the robot description's gripper table)."""
        spec = self.tiago.spec
        out = {}
        for pattern, (_, closed) in self.tiago.description.gripper.items():
            for i, joint in enumerate(spec.joint_names):
                if re.fullmatch(pattern, joint):
                    out[joint] = float(np.clip(closed, spec.position_lower[i], spec.position_upper[i]))
        return out

    def _reset_care(self, tiago_pose: tuple[float, float, float], arm: dict[str, float] | None = None) -> None:
        """Jitter the patient around its settled pose and put TIAGo at (x, y, yaw) with ``arm`` joints."""
        rng = self.np_random
        pos, quat, q = self._patient_rest
        dxy, dyaw = self.patient_jitter
        shift = rng.uniform(-dxy, dxy, 2)
        turn = float(rng.uniform(-dyaw, dyaw))
        q = q.copy()
        for joint, span in self.patient_joint_jitter.items():
            q[self.patient.spec.index(joint)] += rng.uniform(-span, span)
        new_quat = pb.multiplyTransforms((0, 0, 0), pb.getQuaternionFromEuler((0, 0, turn)), (0, 0, 0), quat)[1]
        self.place_patient(np.array([pos[0] + shift[0], pos[1] + shift[1], pos[2]]), np.array(new_quat), q)
        start = self.tiago.start_positions.copy()
        for joint, value in (arm or {}).items():
            start[self.tiago.spec.index(joint)] = value
        self.tiago.reset(start, base_position=(tiago_pose[0], tiago_pose[1], 0.0), base_yaw=tiago_pose[2])
        self._force_substep = 0
        self._substep_force = 0.0
        self.patient_force = 0.0
        self.max_patient_force = 0.0

    def place_patient(self, position: np.ndarray, quat: np.ndarray, joints: np.ndarray) -> None:
        """Teleport the patient's pelvis (base frame) to a pose, joints to ``joints``, and re-pin it there."""
        patient_body.place(self.world, self.patient, position, quat, joints, self._pin, PATIENT_PIN_FORCE)

    def teleport(self, body: int, position: np.ndarray | list[float], quat: np.ndarray | list[float]) -> None:
        """Put a body's base frame (not its centre of mass) at a pose, at rest."""
        c = self.world.client
        info = c.getDynamicsInfo(body, -1)
        com_pos, com_quat = pb.multiplyTransforms(list(position), list(quat), info[3], info[4])
        c.resetBasePositionAndOrientation(body, com_pos, com_quat)
        c.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])

    def look_at(self, target: np.ndarray) -> None:
        """Point TIAGo's head (pan, tilt) at a world point and hold it there."""
        base = self.tiago.link_pose("base_footprint").astype(float)
        head = self.tiago.link_pose("head_2_link").astype(float)
        yaw = yaw_of(base[3:])
        d = np.asarray(target, dtype=float) - head[:3]
        pan = math.atan2(d[1], d[0]) - yaw
        pan = (pan + math.pi) % (2 * math.pi) - math.pi
        tilt = math.atan2(d[2], math.hypot(d[0], d[1]))
        self.tiago.reset_joints({"head_1_joint": pan, "head_2_joint": tilt})  # clamped into the limits

    # ------------------------------------------------------------- patient
    def mouth(self) -> np.ndarray:
        """World position of the patient's mouth (``tianji.sim.world_state.MOUTH_IN_HEAD``)."""
        from tianji.sim.world_state import MOUTH_IN_HEAD

        def read() -> np.ndarray:
            head = self.patient.link_pose("middle_head").astype(float)
            return np.array(pb.multiplyTransforms(head[:3], head[3:], MOUTH_IN_HEAD, (0, 0, 0, 1))[0])

        return self.step_read("mouth", read)

    def _patient_contact_force(self) -> float:
        c = self.world.client
        body = self.patient.body_id
        total = sum(p[9] for p in c.getContactPoints(bodyA=self.tiago.body_id, bodyB=body))
        if self.tool >= 0:
            total += sum(p[9] for p in c.getContactPoints(bodyA=self.tool, bodyB=body))
        return float(total)

    def _sample_force(self) -> None:
        """Physics hook: the largest force over the physics steps of a control step (skips stale contacts)."""
        if self._force_substep > 0:
            self._substep_force = max(self._substep_force, self._patient_contact_force())
        self._force_substep += 1

    def _force_penalty(self) -> float:
        """Update the patient force of this control step; return the (negative) reward term."""
        self.patient_force = max(self._substep_force, self._patient_contact_force())
        self._substep_force = 0.0
        self._force_substep = 0
        self.max_patient_force = max(self.max_patient_force, self.patient_force)
        return -FORCE_WEIGHT * max(0.0, self.patient_force - self.force_limit)

    def _force_info(self) -> dict[str, float]:
        return {"patient_force": self.patient_force, "max_patient_force": self.max_patient_force}

    # ------------------------------------------------------------- helpers
    def base_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion) of TIAGo's base frame on the floor (yaw only)."""

        def read() -> tuple[np.ndarray, np.ndarray]:
            base = self.tiago.link_pose("base_footprint").astype(float)
            return np.array([base[0], base[1], 0.0]), np.array(pb.getQuaternionFromEuler((0, 0, yaw_of(base[3:]))))

        return self.step_read("base_frame", read)

    def base_rotation(self) -> np.ndarray:
        """(3, 3) rotation of TIAGo's base frame (yaw only) in the world."""
        return self.step_read(
            "base_rotation", lambda: np.array(pb.getMatrixFromQuaternion(self.base_frame()[1].tolist())).reshape(3, 3)
        )

    def to_base(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in TIAGo's base frame."""
        return (np.asarray(points, dtype=float) - self.base_frame()[0]) @ self.base_rotation()

    def tiago_state(self) -> Observation:
        """TIAGo's observation (joints, base, end effectors); read once per step, see :meth:`step_read`."""
        return self.step_read("tiago", self.tiago.observe)

    def tiago_joints(self) -> tuple[np.ndarray, np.ndarray]:
        """TIAGo's joint (positions, velocities), float32; read once per step, see :meth:`step_read`."""
        return self.step_read("tiago_joints", self.tiago.joint_states)

    def arm_state(self) -> np.ndarray:
        """Torso and arm joint positions (8) and velocities (8)."""
        q, dq = self.tiago_joints()
        return np.concatenate([q[self._arm_idx], dq[self._arm_idx]])

    def hand_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World (position, quaternion) of TIAGo's grasping frame."""

        def read() -> tuple[np.ndarray, np.ndarray]:
            p = self.tiago.link_pose(HAND_LINK).astype(float)
            return p[:3], p[3:]

        return self.step_read("hand_pose", read)

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        target = self.mouth()
        base = self.tiago.link_pose("base_footprint")[:3].astype(float)
        middle = 0.5 * (target + base)
        side = np.array([-(target - base)[1], (target - base)[0], 0.0])
        side = side / (np.linalg.norm(side) + 1e-9)
        return middle + 1.6 * side + np.array([0.0, 0.0, 1.0]), middle + np.array([0.0, 0.0, 0.2])

    @staticmethod
    def unbounded(n: int) -> spaces.Box:
        """Box(-inf, inf, (n,)) float32."""
        return TianjiEnv._box(-np.inf, np.inf, n)


class HeldToolEnv(CareEnv):
    """A care task that starts with a tool already in TIAGo's hand.

    Grasping with the Hey5 hand is not the point of these tasks, so the tool is attached to the
    hand's grasping frame by a fixed constraint (created once, re-seated at every reset) at the
    pose ``tool_in_hand`` (x, y, z m; roll, pitch, yaw rad of the tool's base frame in
    ``hand_grasping_frame``). The tool does not collide with TIAGo; it does collide with the
    patient, and its contact force counts in the patient force.
    """

    tool_in_hand: ClassVar[tuple[tuple[float, float, float], tuple[float, float, float]]]
    carry_pose: ClassVar[dict[str, float]]  # torso and arm joints at the start of an episode

    def _make_tool(self) -> int:
        """Create the tool body; return its id."""
        raise NotImplementedError

    def _build_task(self) -> None:
        c = self.world.client
        self.tool = self._make_tool()
        self.task_bodies.append(self.tool)  # its mass and friction get randomized too
        self.ignore_robot(self.tool)
        start = self.tiago.start_positions.copy()
        for joint, value in {**self.carry_pose, **self.hand_closed()}.items():
            start[self.tiago.spec.index(joint)] = value
        self.tiago.reset(start)
        info = c.getDynamicsInfo(self.tool, -1)
        xyz, rpy = self.tool_in_hand
        hand_com = c.getLinkState(self.tiago.body_id, self._hand_link, computeForwardKinematics=True)
        hand_frame = pb.multiplyTransforms(hand_com[4], hand_com[5], xyz, pb.getQuaternionFromEuler(rpy))
        tool_com = pb.multiplyTransforms(*hand_frame, info[3], info[4])  # the tool's centre of mass, world
        inv = pb.invertTransform(hand_com[0], hand_com[1])
        self._tool_in_com = pb.multiplyTransforms(*inv, *tool_com)  # tool COM in the hand link's COM frame
        c.resetBasePositionAndOrientation(self.tool, *tool_com)
        self._grip = c.createConstraint(
            self.tiago.body_id,
            self._hand_link,
            self.tool,
            -1,
            pb.JOINT_FIXED,
            [0, 0, 0],
            self._tool_in_com[0],
            [0, 0, 0],
            self._tool_in_com[1],
            [0, 0, 0, 1],
        )
        c.changeConstraint(self._grip, maxForce=500.0)

    def _reset_tool(self) -> None:
        """Seat the tool in the hand where the constraint holds it (after TIAGo's reset)."""
        c = self.world.client
        hand_com = c.getLinkState(self.tiago.body_id, self._hand_link, computeForwardKinematics=True)
        c.resetBasePositionAndOrientation(
            self.tool, *pb.multiplyTransforms(hand_com[0], hand_com[1], *self._tool_in_com)
        )
        c.resetBaseVelocity(self.tool, [0, 0, 0], [0, 0, 0])

    def tool_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World (position, quaternion) of the tool's base frame."""
        return self.step_read("tool_pose", lambda: self.world.base_pose(self.tool))

    def tool_point(self, local: tuple[float, float, float]) -> np.ndarray:
        """World position of a point given in the tool's base frame."""
        pos, quat = self.tool_pose()
        return np.array(pb.multiplyTransforms(pos, quat, local, (0, 0, 0, 1))[0])

    def tool_axes(self) -> np.ndarray:
        """(6,) the tool's x and z axes in TIAGo's base frame."""
        m = np.array(pb.getMatrixFromQuaternion(self.tool_pose()[1].tolist())).reshape(3, 3)
        rot = self.base_rotation()
        return np.concatenate([rot.T @ m[:, 0], rot.T @ m[:, 2]])
