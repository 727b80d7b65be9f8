"""SimRobot: any registered robot in a :class:`~tianji.sim.World`, behind the one Robot interface.

Control modes
=============
``position``  PyBullet's position motor (a PD loop solved with the constraints) whose force is
              capped at the joint's effort limit; gains from the robot description.
``velocity``  velocity motor capped at the effort limit.
``torque``    motors released, the torque re-applied before every physics step.
Targets outside the position / velocity / effort limits are clamped and counted in
:attr:`SimRobot.clamped`; NaN or inf raises InvalidCommandError and nothing is applied.

A mobile base (TIAGo) follows a base twist (vx, vy, wz in the base frame) through a
planar constraint with a bounded force, so it pushes and is pushed like a heavy base
while its wheels roll freely.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pybullet as pb

from tianji.control.errors import AssetError, InvalidCommandError, RobotClosedError
from tianji.control.robot import BaseType, CameraFrame, Command, ControlMode, Observation, Robot, RobotSpec
from tianji.sim.camera import CameraIntrinsics, pose_from_pybullet, render
from tianji.sim.registry import RobotDescription, get_robot
from tianji.sim.urdf import prepare_urdf
from tianji.sim.world import World

log = logging.getLogger(__name__)

DEFAULT_VELOCITY_LIMIT = 10.0  # rad/s or m/s, when the URDF gives none
DEFAULT_EFFORT_LIMIT = 100.0  # N m or N, when the URDF gives none
BASE_MAX_FORCE = 3000.0  # N, planar base constraint


class SimRobot(Robot):
    """A robot simulated in PyBullet. Create it with :meth:`World.add_robot`."""

    def __init__(
        self,
        world: World,
        name: str | RobotDescription,
        position: Sequence[float] = (0.0, 0.0),
        yaw: float = 0.0,
        preset: str = "home",
    ) -> None:
        self.world = world
        self.description = name if isinstance(name, RobotDescription) else get_robot(name)
        desc = self.description
        pose = desc.preset(preset)
        prepared = prepare_urdf(
            desc.urdf_path(),
            desc.package_dirs,
            collision_from_visual=desc.collision_from_visual,
            collision=desc.collision,
            no_collision_links=desc.no_collision_links,
        )
        self.frame_links = prepared.frame_links
        z = pose.spawn_height + (float(position[2]) if len(position) > 2 else 0.0)
        base_pos = (float(position[0]), float(position[1]), z)
        rpy = pose.spawn_rpy
        base_quat = pb.getQuaternionFromEuler(rpy)
        # yaw in the world is applied after the preset's own base rotation
        base_quat = pb.multiplyTransforms((0, 0, 0), pb.getQuaternionFromEuler((0, 0, yaw)), (0, 0, 0), base_quat)[1]
        self.body_id = world.load_urdf(prepared.path, base_pos, base_quat, fixed=desc.base is BaseType.FIXED)
        self._c = world.client
        self._closed = False
        self._base_link = self._c.getBodyInfo(self.body_id)[0].decode()

        self._read_joints(prepared.joint_order)
        for pattern, damping in desc.joint_damping.items():
            for name, j in zip(self._names, self._pb_index, strict=True):
                if re.fullmatch(pattern, name):
                    self._c.changeDynamics(self.body_id, int(j), jointDamping=damping)
        self._spec = self._build_spec(preset)
        self._mode = np.full(self.dof, 0)  # index into _MODES
        self._target = self._spec.home.copy()
        self._torque = np.zeros(self.dof)
        self._mimics = [
            (self._spec.index(m.joint), self._spec.index(m.leader), m.multiplier, m.offset)
            for m in prepared.mimics
            if m.joint in self._joint_set and m.leader in self._joint_set
        ]
        self.kp, self.kd = desc.kp, desc.kd  # position motor gains; environments may randomize them
        self.clamped: Counter[str] = Counter()  # joint (or "base"/"gripper") -> number of clamped values
        self._base_twist = np.zeros(3)
        self._base_cid: int | None = None
        self._torque_joints: list[int] = []
        self._torque_values: list[float] = []
        self._base_moving = False
        link_ees = [
            (n, self._link_index[link]) for n, link in desc.end_effectors.items() if self._link_index[link] >= 0
        ]
        self._ee_names = [n for n, _ in link_ees]
        self._ee_indices = [i for _, i in link_ees]
        self._base_ees = [(n, link) for n, link in desc.end_effectors.items() if self._link_index[link] < 0]
        self._ee_links: dict[tuple[str, ...], list[int]] = {}  # end_effector_positions: names -> link indices
        # per-step paths: index lists built once, PyBullet functions bound once (a BulletClient attribute
        # lookup builds a new functools.partial every time)
        self._pb_list = self._pb_index.tolist()
        self._active = np.flatnonzero(~self._passive)  # spec indices of the joints the motors drive
        self._active_pb = self._pb_index[self._active].tolist()
        self._active_eff = self._limits[3][self._active].tolist()
        self._active_zeros = [0.0] * len(self._active_pb)
        self._get_joint_states = self._c.getJointStates
        self._get_link_states = self._c.getLinkStates
        self._get_base_velocity = self._c.getBaseVelocity
        self._set_motors = self._c.setJointMotorControlArray

        q0 = np.array(
            [
                pose.joints.get(j, self._spec.home[i]) if preset != "home" else self._spec.home[i]
                for i, j in enumerate(self._spec.joint_names)
            ]
        )
        q0 = np.clip(q0, self._spec.position_lower, self._spec.position_upper)
        self._reset_joints(q0)
        self._target = q0.copy()
        self.start_positions = q0.copy()  # the pose the robot was spawned in (home or a preset)
        self._release_passive()
        self._apply()
        if desc.base is BaseType.MOBILE:
            # the constraint acts on the base's centre-of-mass frame: pin the URDF base frame instead
            inertial = self._c.getDynamicsInfo(self.body_id, -1)
            link_in_com = pb.invertTransform(inertial[3], inertial[4])
            self._base_cid = self._c.createConstraint(
                self.body_id,
                -1,
                -1,
                -1,
                pb.JOINT_FIXED,
                [0, 0, 0],
                link_in_com[0],
                base_pos,
                parentFrameOrientation=link_in_com[1],
                childFrameOrientation=base_quat,
            )
            self._c.changeConstraint(self._base_cid, maxForce=BASE_MAX_FORCE)
            self._base_z = base_pos[2]
            self._base_xy_yaw = np.array([base_pos[0], base_pos[1], pb.getEulerFromQuaternion(base_quat)[2]])
        world.add_physics_hook(self._before_physics_step)

    # --------------------------------------------------------------- set-up
    def _read_joints(self, urdf_order: list[str]) -> None:
        """Joint names, PyBullet indices and limits, in the URDF file's order."""
        c, body = self._c, self.body_id
        names, idx, lower, upper, vel, eff = [], [], [], [], [], []
        self._link_index: dict[str, int] = {c.getBodyInfo(body)[0].decode(): -1}
        infos = [c.getJointInfo(body, j) for j in range(c.getNumJoints(body))]
        for info in infos:
            self._link_index[info[12].decode()] = info[0]
        rank = {name: i for i, name in enumerate(urdf_order)}
        movable = sorted((i for i in infos if i[2] != pb.JOINT_FIXED), key=lambda i: rank.get(i[1].decode(), len(rank)))
        for info in movable:
            j = info[0]
            names.append(info[1].decode())
            idx.append(j)
            lo, hi = float(info[8]), float(info[9])
            lower.append(lo if lo <= hi else -math.inf)  # PyBullet reports continuous joints as lo > hi
            upper.append(hi if lo <= hi else math.inf)
            vel.append(float(info[11]) if info[11] > 0 else DEFAULT_VELOCITY_LIMIT)
            eff.append(float(info[10]) if info[10] > 0 else DEFAULT_EFFORT_LIMIT)
        self._names = tuple(names)
        self._joint_set = set(names)
        self._pb_index = np.array(idx, dtype=np.int64)
        self._limits = tuple(np.array(a) for a in (lower, upper, vel, eff))

    def _build_spec(self, preset: str) -> RobotSpec:
        desc = self.description
        if desc.dof is not None and desc.dof != len(self._names):
            raise AssetError(
                f"robot '{desc.name}' loaded with {len(self._names)} movable joints, its description says {desc.dof}"
            )
        for label, names in (("home", desc.home), (f"preset '{preset}'", desc.preset(preset).joints)):
            unknown = [j for j in names if j not in self._joint_set]
            if unknown:
                raise AssetError(f"robot '{desc.name}': {label} names joints that are not in the URDF: {unknown}")
        for ee, link in desc.end_effectors.items():
            if link not in self._link_index:
                raise AssetError(
                    f"robot '{desc.name}': end effector '{ee}' names link '{link}', which is not in the URDF"
                )
        for cam, mount in desc.cameras.items():
            if mount.link not in self._link_index:
                raise AssetError(
                    f"robot '{desc.name}': camera '{cam}' is on link '{mount.link}', which is not in the URDF"
                )
        lower, upper, vel, eff = self._limits
        home = np.clip(np.array([desc.home.get(j, 0.0) for j in self._names]), lower, upper)
        self._passive = np.array([any(re.fullmatch(p, j) for p in desc.passive_joints) for j in self._names])
        self._gripper: dict[int, tuple[float, float]] = {}
        for pattern, (opened, closed) in desc.gripper.items():
            for i, j in enumerate(self._names):
                if re.fullmatch(pattern, j):
                    self._gripper[i] = (
                        float(np.clip(opened, lower[i], upper[i])),
                        float(np.clip(closed, lower[i], upper[i])),
                    )
        if desc.gripper and not self._gripper:
            raise AssetError(f"robot '{desc.name}': no joint matches the gripper patterns {list(desc.gripper)}")
        # the joints whose travel defines the gripper's opening fraction (observe), as arrays
        moving = [(i, o, c) for i, (o, c) in self._gripper.items() if o != c]
        self._gripper_idx = np.array([i for i, _, _ in moving], dtype=np.int64)
        self._gripper_closed = np.array([c for _, _, c in moving])
        self._gripper_span = np.array([o - c for _, o, c in moving])
        return RobotSpec(
            name=desc.name,
            joint_names=self._names,
            position_lower=lower,
            position_upper=upper,
            velocity_limits=vel,
            effort_limits=eff,
            home=home,
            control_modes=(ControlMode.POSITION, ControlMode.VELOCITY, ControlMode.TORQUE),
            control_rate=self.world.control_rate,
            base=desc.base,
            end_effectors=tuple(desc.end_effectors),
            sensors=tuple(desc.cameras),
            has_gripper=bool(self._gripper),
            passive_joints=tuple(j for j, p in zip(self._names, self._passive, strict=True) if p),
        )

    def _release_passive(self) -> None:
        idx = self._pb_index[self._passive].tolist()
        if idx:
            self._c.setJointMotorControlArray(
                self.body_id, idx, pb.VELOCITY_CONTROL, targetVelocities=[0.0] * len(idx), forces=[0.0] * len(idx)
            )

    # ------------------------------------------------------------ interface
    @property
    def spec(self) -> RobotSpec:
        return self._spec

    @property
    def dof(self) -> int:
        """Number of movable joints."""
        return len(self._names)

    def command(self, cmd: Command) -> None:
        self._check_open()
        mode, indices, values = cmd.resolve(self._spec)  # raises before anything changes
        self._set_targets(_MODE_ID[mode], indices, values)
        if cmd.gripper is not None:
            opening = float(np.clip(cmd.gripper, 0.0, 1.0))
            if opening != cmd.gripper:
                self.clamped["gripper"] += 1
            for i, (opened, closed) in self._gripper.items():
                self._mode[i] = 0
                self._target[i] = closed + opening * (opened - closed)
        if cmd.base_twist is not None:
            twist = np.asarray(cmd.base_twist, dtype=float)
            limits = np.asarray(self.description.base_twist_limits, dtype=float)
            clipped_twist = np.clip(twist, -limits, limits)
            if np.any(clipped_twist != twist):
                self.clamped["base"] += 1
            self._base_twist = clipped_twist
        self._apply()

    def command_positions(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Position targets for the joints at ``indices`` (positions in ``spec.joint_names``, an int array).

        The same as ``command(Command("position", {name: value, ...}))`` for those joints (limits clamp and
        count in :attr:`clamped`, NaN or inf raises InvalidCommandError and nothing is applied), without
        building and resolving a Command: the environments' per-step path.
        """
        self._check_open()
        values = np.asarray(values, dtype=np.float64)
        if not all_finite(values):
            names = [self._names[i] for i in indices]
            self.command(Command(ControlMode.POSITION, dict(zip(names, values.tolist(), strict=True))))  # raises
        self._set_targets(0, indices, values)
        self._apply()

    def _set_targets(self, mode_id: int, indices: np.ndarray, values: np.ndarray) -> None:
        """Clamp validated ``values`` into the limits of ``mode_id`` (an index into _MODES), count what was
        clamped, and store them as the targets of the joints at ``indices``."""
        lower, upper, vel, eff = self._limits
        if mode_id == 0:
            clipped = values.clip(lower[indices], upper[indices])
        elif mode_id == 1:
            clipped = values.clip(-vel[indices], vel[indices])
        else:
            clipped = values.clip(-eff[indices], eff[indices])
        changed = clipped != values
        if np.count_nonzero(changed):
            for i in indices[changed]:
                self.clamped[self._names[i]] += 1
        self._mode[indices] = mode_id
        if mode_id == 2:
            self._torque[indices] = clipped
        else:
            self._target[indices] = clipped

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        self._check_open()
        body = self.body_id
        positions, velocities, _, efforts = zip(*self._get_joint_states(body, self._pb_list), strict=True)
        q = np.array(positions, dtype=np.float32)
        dq = np.array(velocities, dtype=np.float32)
        tau = np.array(efforts, dtype=np.float32)
        if np.count_nonzero(self._mode):
            torque_mode = self._mode == _MODE_ID[ControlMode.TORQUE]
            tau[torque_mode] = self._torque[torque_mode]  # PyBullet reports 0 for externally applied torques
        pos, quat = self.world._base_pose(body)
        base = np.array(pos + quat, dtype=np.float32)
        lin, ang = self._get_base_velocity(body)
        ee = self._end_effector_poses()
        gripper = self.gripper_opening(q)
        frames = {name: self.camera(name) for name in cameras}
        return Observation(
            timestamp=self.world.time,
            joint_positions=q,
            joint_velocities=dq,
            joint_efforts=tau,
            base_pose=base,
            base_twist=np.array(lin + ang, dtype=np.float32),
            ee_poses=ee,
            gripper=gripper,
            cameras=frames,
        )

    def reset(
        self,
        positions: np.ndarray | None = None,
        base_position: Sequence[float] | None = None,
        base_yaw: float | None = None,
    ) -> None:
        """Teleport to joint ``positions`` (default: the start pose) and optionally a new base pose.

        Velocities are zeroed, every joint goes back to position mode holding the new pose,
        and the base stops. Used by environments at the start of an episode.
        """
        self._check_open()
        q = self.start_positions if positions is None else np.asarray(positions, dtype=float)
        if q.shape != (self.dof,) or not np.all(np.isfinite(q)):
            raise InvalidCommandError(f"reset positions must be {self.dof} finite values in spec.joint_names order")
        q = np.clip(q, self._spec.position_lower, self._spec.position_upper)
        self._reset_joints(q)
        if base_position is not None or base_yaw is not None:
            pos, quat = self.world.base_pose(self.body_id)
            if base_position is not None:
                pos = np.asarray(base_position, dtype=float)
            if base_yaw is not None:
                roll, pitch, _ = pb.getEulerFromQuaternion(quat)
                quat = pb.getQuaternionFromEuler((roll, pitch, base_yaw))
            inertial = self._c.getDynamicsInfo(self.body_id, -1)
            com_pos, com_quat = pb.multiplyTransforms(pos, quat, inertial[3], inertial[4])
            self._c.resetBasePositionAndOrientation(self.body_id, com_pos, com_quat)
            self._c.resetBaseVelocity(self.body_id, [0, 0, 0], [0, 0, 0])
            if self._base_cid is not None:
                self._base_z = float(pos[2])
                self._base_xy_yaw = np.array([pos[0], pos[1], pb.getEulerFromQuaternion(quat)[2]])
                self._c.changeConstraint(self._base_cid, list(pos), quat, maxForce=BASE_MAX_FORCE)
        self._target = q.copy()
        self._mode[:] = 0
        self._torque[:] = 0.0
        self._base_twist = np.zeros(3)
        self._apply()

    def reset_joints(self, positions: dict[str, float]) -> None:
        """Teleport the named joints to ``positions`` at rest and hold them there (position mode).

        The other joints keep their state and targets: cheaper than :meth:`reset` when a few joints
        change after it (e.g. pointing the head), at one PyBullet call per named joint.
        """
        self._check_open()
        idx = np.array([self._spec.index(j) for j in positions], dtype=np.int64)  # UnknownJointError names it
        q = np.array(list(positions.values()), dtype=float)
        if not np.all(np.isfinite(q)):
            raise InvalidCommandError(f"reset_joints positions must be finite, got {positions}")
        q = np.clip(q, self._spec.position_lower[idx], self._spec.position_upper[idx])
        reset, body = self._c.resetJointState, self.body_id
        for i, v in zip(self._pb_index[idx].tolist(), q.tolist(), strict=True):
            reset(body, i, v, 0.0)
        self._target[idx] = q
        self._mode[idx] = 0
        self._torque[idx] = 0.0
        self._apply()

    def _reset_joints(self, q: np.ndarray) -> None:
        """Teleport every joint to ``q`` at rest.

        One resetJointState per joint, not one resetJointStatesMultiDof (10x faster): every reset call
        also updates the broadphase AABBs, whose history changes later contacts, so batching would
        change trajectories (bit for bit, e.g. CareDrinking-v0 diverges after 50 steps).
        """
        reset, body = self._c.resetJointState, self.body_id
        for i, v in zip(self._pb_list, q.tolist(), strict=True):
            reset(body, i, v, 0.0)

    def stop(self) -> None:
        """Hold the current joint positions (position mode) and stop the base."""
        self._check_open()
        states = self._get_joint_states(self.body_id, self._pb_list)
        self._target = np.clip(np.array([s[0] for s in states]), self._limits[0], self._limits[1])
        self._mode[:] = 0
        self._torque[:] = 0.0
        self._base_twist = np.zeros(3)
        self._apply()

    def close(self) -> None:
        """Remove the robot from the world; further calls raise RobotClosedError."""
        if self._closed:
            return
        self._closed = True
        self.world.remove_physics_hook(self._before_physics_step)
        for label, robot in list(self.world.robots.items()):  # the label becomes free again
            if robot is self:
                del self.world.robots[label]
        if not self.world._closed:
            if self._base_cid is not None:
                self._c.removeConstraint(self._base_cid)
            self.world.remove_body(self.body_id)

    # ------------------------------------------------- lean per-step reads
    def joint_states(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities) of every joint, float32 in ``spec.joint_names`` order: the
        ``joint_positions`` and ``joint_velocities`` of :meth:`observe`, with one PyBullet call and
        nothing else read (the environments' per-step path)."""
        self._check_open()
        positions, velocities, _, _ = zip(*self._get_joint_states(self.body_id, self._pb_list), strict=True)
        return np.array(positions, dtype=np.float32), np.array(velocities, dtype=np.float32)

    def gripper_opening(self, joint_positions: np.ndarray | None = None) -> float | None:
        """The gripper's opening, 0 closed .. 1 open (the mean over its moving joints; None without a
        gripper), from ``joint_positions`` in ``spec.joint_names`` order, read now if not given."""
        if not len(self._gripper_idx):
            return None
        q = self.joint_states()[0] if joint_positions is None else joint_positions
        fractions = (q[self._gripper_idx] - self._gripper_closed) / self._gripper_span
        return min(1.0, max(0.0, float(fractions.mean())))

    def end_effector_positions(self, names: tuple[str, ...]) -> np.ndarray:
        """(3 k,) float32: the world positions of the end effectors ``names``, stacked, as
        ``observe().ee_poses[name][:3]`` gives them, with one forward-kinematics query."""
        self._check_open()
        links = self._end_effector_links(names)
        if -1 in links:  # an end effector on the base link
            poses = self._end_effector_poses()
            return np.concatenate([poses[n][:3] for n in names])
        states = self._get_link_states(self.body_id, links, computeForwardKinematics=True)
        return np.array([s[4] for s in states], dtype=np.float32).reshape(-1)

    def point_jacobian(
        self,
        names: tuple[str, ...],
        joints: np.ndarray,
        offsets: Sequence[Sequence[float]] | None = None,
        angular: bool = False,
    ) -> np.ndarray:
        """(3 k, m): how the world positions of end effectors ``names`` (the points of
        :meth:`end_effector_positions`) move per unit motion of the spec joints ``joints``, at the
        current joint positions (PyBullet's ``calculateJacobian``), in world axes. ``offsets`` (k x 3 m,
        in each end effector's frame) moves the points off the frames' origins, e.g. to a grasp point;
        ``angular`` adds each frame's angular velocity rows after its point's: (6 k, m)."""
        self._check_open()
        links = self._end_effector_links(names)
        if -1 in links:
            raise AssetError(f"robot '{self.spec.name}': end effectors on the base link have no joint Jacobian")
        positions, _ = self.joint_states()
        order = np.argsort(self._pb_index)  # PyBullet's DoF order: movable joints by joint index
        q = positions[order].astype(np.float64).tolist()
        zeros = [0.0] * len(q)
        column = np.empty(len(q), dtype=np.int64)
        column[order] = np.arange(len(q))  # spec joint -> DoF column (after the base's 6 when it floats)
        points = [None] * len(links) if offsets is None else [tuple(map(float, o)) for o in offsets]
        if len(points) != len(links):
            raise ValueError(f"offsets: one (x, y, z) per end effector ({len(links)}), got {len(points)}")
        # calculateJacobian gives the rows in the base's frame: turn them to world axes (a base that is
        # not at yaw 0, e.g. TIAGo in the care room, would otherwise see its motions rotated)
        base_quat = self._c.getBasePositionAndOrientation(self.body_id)[1]
        rot = np.asarray(pb.getMatrixFromQuaternion(base_quat), dtype=np.float64).reshape(3, 3)
        rows = []
        for link, state, point in zip(links, self._get_link_states(self.body_id, links), points, strict=True):
            # calculateJacobian takes the point in the link's centre-of-mass frame; the end effector is the link frame
            com_to_frame = pb.invertTransform(state[2], state[3])
            # (multiplyTransforms rounds to float32: the frame's own origin is taken as it is, bit for bit)
            local = com_to_frame[0] if point is None else pb.multiplyTransforms(*com_to_frame, point, (0, 0, 0, 1))[0]
            parts = self._c.calculateJacobian(self.body_id, link, local, q, zeros, zeros)
            for part in parts if angular else parts[:1]:
                jac = np.asarray(part, dtype=np.float64)
                rows.append(rot @ jac[:, jac.shape[1] - len(q) + column[joints]])
        return np.vstack(rows)

    def _end_effector_links(self, names: tuple[str, ...]) -> list[int]:
        """PyBullet link indices of end effectors ``names`` (-1: the base), checked and cached per tuple."""
        links = self._ee_links.get(names)
        if links is None:
            known = self.description.end_effectors
            unknown = [n for n in names if n not in known]
            if unknown:
                raise AssetError(f"robot '{self.spec.name}' has no end effector {unknown}; it has: {list(known)}")
            links = self._ee_links[names] = [self._link_index[known[n]] for n in names]
        return links

    # -------------------------------------------------------------- helpers
    def link_pose(self, link: str) -> np.ndarray:
        """(7,) float32 world pose (x, y, z, qx, qy, qz, qw) of a link by URDF name."""
        try:
            index = self._link_index[link]
        except KeyError:
            raise AssetError(f"robot '{self.spec.name}' has no link '{link}'") from None
        if index == -1:
            pos, quat = self.world.base_pose(self.body_id)
        else:
            state = self._c.getLinkState(self.body_id, index, computeForwardKinematics=True)
            pos, quat = state[4], state[5]
        return np.array([*pos, *quat], dtype=np.float32)

    def _end_effector_poses(self) -> dict[str, np.ndarray]:
        """All end-effector poses with one batched forward-kinematics query."""
        if not self._ee_indices:
            return {name: self.link_pose(link) for name, link in self.description.end_effectors.items()}
        states = self._get_link_states(self.body_id, self._ee_indices, computeForwardKinematics=True)
        poses = {name: np.array(s[4] + s[5], dtype=np.float32) for name, s in zip(self._ee_names, states, strict=True)}
        for name, link in self._base_ees:  # end effectors on the base link
            poses[name] = self.link_pose(link)
        return poses

    @property
    def position_targets(self) -> np.ndarray:
        """A copy of the current position targets, in ``spec.joint_names`` order."""
        return self._target.copy()

    def camera(self, name: str, size: tuple[int, int] | None = None) -> CameraFrame:
        """Render a robot-mounted camera (see ``spec.sensors``), optionally at another (width, height)."""
        try:
            mount = self.description.cameras[name]
        except KeyError:
            raise AssetError(
                f"robot '{self.spec.name}' has no camera '{name}'; it has: {list(self.description.cameras) or 'none'}"
            ) from None
        link = self.link_pose(mount.link).astype(np.float64)
        pos, quat = pb.multiplyTransforms(link[:3], link[3:], mount.xyz, pb.getQuaternionFromEuler(mount.rpy))
        width, height = size or (mount.width, mount.height)
        intr = CameraIntrinsics(width, height, mount.fov_deg, mount.near, mount.far)
        return render(self._c, intr, pose_from_pybullet(pos, quat), name=name, timestamp=self.world.time)

    def _apply(self) -> None:
        """Push targets to PyBullet's motors, grouped by mode; passive joints stay free."""
        lower, upper, _, eff = self._limits
        for m in self._mimics:
            follower, leader, mult, offset = m
            self._mode[follower] = self._mode[leader]
            self._target[follower] = np.clip(mult * self._target[leader] + offset, lower[follower], upper[follower])
        if not np.count_nonzero(self._mode):  # all joints in position mode (the usual case): one call, lists built once
            n = len(self._active_pb)
            if n:
                self._set_motors(
                    self.body_id,
                    self._active_pb,
                    pb.POSITION_CONTROL,
                    targetPositions=self._target[self._active].tolist(),
                    targetVelocities=self._active_zeros,
                    forces=self._active_eff,
                    positionGains=[self.kp] * n,
                    velocityGains=[self.kd] * n,
                )
            self._torque_joints = []
            self._torque_values = []
            self._base_moving = self._base_cid is not None and np.count_nonzero(self._base_twist) > 0
            return
        active = ~self._passive
        c, body = self._c, self.body_id
        pos = active & (self._mode == 0)
        if pos.any():
            n = int(pos.sum())
            c.setJointMotorControlArray(
                body,
                self._pb_index[pos].tolist(),
                pb.POSITION_CONTROL,
                targetPositions=self._target[pos].tolist(),
                targetVelocities=[0.0] * n,
                forces=eff[pos].tolist(),
                positionGains=[self.kp] * n,
                velocityGains=[self.kd] * n,
            )
        velm = active & (self._mode == 1)
        if velm.any():
            c.setJointMotorControlArray(
                body,
                self._pb_index[velm].tolist(),
                pb.VELOCITY_CONTROL,
                targetVelocities=self._target[velm].tolist(),
                forces=eff[velm].tolist(),
            )
        tq = active & (self._mode == 2)
        if tq.any():  # release the motors so the torque is the only actuation
            idx = self._pb_index[tq].tolist()
            c.setJointMotorControlArray(
                body, idx, pb.VELOCITY_CONTROL, targetVelocities=[0.0] * len(idx), forces=[0.0] * len(idx)
            )
        # what the per-physics-step hook must do, decided once per command rather than every step
        self._torque_joints = self._pb_index[tq].tolist()
        self._torque_values = self._torque[tq].tolist()
        self._base_moving = self._base_cid is not None and bool(np.any(self._base_twist))

    def _before_physics_step(self) -> None:
        if self._torque_joints:
            self._c.setJointMotorControlArray(
                self.body_id, self._torque_joints, pb.TORQUE_CONTROL, forces=self._torque_values
            )
        if self._base_moving:
            vx, vy, wz = self._base_twist
            x, y, yaw = self._base_xy_yaw
            dt = self.world.config.timestep
            self._base_xy_yaw = np.array(
                [
                    x + (vx * math.cos(yaw) - vy * math.sin(yaw)) * dt,
                    y + (vx * math.sin(yaw) + vy * math.cos(yaw)) * dt,
                    yaw + wz * dt,
                ]
            )
            self._c.changeConstraint(
                self._base_cid,
                [*self._base_xy_yaw[:2], self._base_z],
                pb.getQuaternionFromEuler((0, 0, self._base_xy_yaw[2])),
                maxForce=BASE_MAX_FORCE,
            )

    def _check_open(self) -> None:
        if self._closed:
            raise RobotClosedError(f"robot '{self.description.name}' was closed; add it to the world again")

    def __repr__(self) -> str:
        return f"SimRobot({self.description.name!r}, body={self.body_id}, dof={self.dof})"


def all_finite(values: np.ndarray) -> bool:
    """Whether every value of a 1-D float array is finite, at the cost of one dot product on the per-step path.

    A NaN or inf makes the dot product NaN or inf; only values large enough to overflow it take the
    element-wise check.
    """
    return math.isfinite(values.dot(values)) or bool(np.isfinite(values).all())


_MODES = [ControlMode.POSITION, ControlMode.VELOCITY, ControlMode.TORQUE]
_MODE_ID = {mode: i for i, mode in enumerate(_MODES)}
