"""Kinematics from a robot's URDF with pinocchio: forward kinematics, Jacobians, damped least-squares IK.

Why pinocchio (PyPI ``pin``): it is the reference rigid-body library of the robotics
community (LAAS-CNRS, BSD), reads URDF directly, ships wheels for Linux/macOS/Windows,
computes frame Jacobians analytically in microseconds, and also gives gravity torques.
ikpy is pure Python and chains only; placo builds on pinocchio and adds a QP solver we
do not need. Only the kinematic tree is loaded: meshes and ``package://`` paths are never read.

Frames: everything is expressed in the robot's **base frame** (the URDF root link, the frame
``Observation.base_pose`` gives in the world) unless a ``base_pose`` (7,) is passed, in which
case inputs and outputs are in the world frame. Joint vectors are in ``joint_names`` order
(pass ``robot.spec.joint_names`` and ``obs.joint_positions`` works as is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import numpy as np

from tianji.control.errors import AssetError, UnknownJointError, UnknownNameError, did_you_mean
from tianji.control.robot import RobotSpec
from tianji.control.transforms import invert, matrix_to_pose, pose_error, pose_to_matrix


@cache
def _pinocchio() -> ModuleType:
    """pinocchio, imported on first use (about 0.3 s) so importing tianji.control stays fast."""
    try:
        import pinocchio
    except ImportError as exc:  # pragma: no cover - only without the dependency
        raise ImportError(f"tianji.control.kinematics needs pinocchio: run `pip install pin` ({exc})") from exc
    return pinocchio


@dataclass(frozen=True)
class IKResult:
    """Outcome of :meth:`Kinematics.ik`.

    ``q`` is the full joint vector (``joint_names`` order): the input configuration with the
    chain's joints replaced by the best solution found, always inside the joint limits.
    ``success`` is True when both errors are within tolerance; ``reachable`` is False when
    the target was judged out of reach (beyond the chain's length, or not reached from any
    start); ``message`` says which.
    """

    q: np.ndarray
    success: bool
    reachable: bool
    position_error: float  # metres
    orientation_error: float  # radians; 0 for position-only targets
    iterations: int
    message: str


class Kinematics:
    """The kinematic tree of one robot, loaded from its URDF file.

    >>> kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), robot.spec)
    >>> arm = kin.chain("hand_grasping_frame", root="base_footprint")  # torso + 7 arm joints
    >>> result = kin.ik("hand_grasping_frame", target_pose, obs.joint_positions, joints=arm,
    ...                 base_pose=obs.base_pose)
    """

    def __init__(
        self,
        urdf: str | Path,
        joint_names: Sequence[str] | None = None,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> None:
        pin = self._pin = _pinocchio()
        path = Path(urdf).expanduser()
        if not path.is_file():
            raise AssetError(f"URDF file not found: {path}; pass get_robot(name).urdf_path() or a path to a .urdf")
        try:
            self.model = pin.buildModelFromUrdf(str(path))
        except (RuntimeError, ValueError) as exc:
            raise AssetError(f"pinocchio could not read {path}: {exc}. Check that the file is valid URDF.") from exc
        self.data = self.model.createData()
        self.urdf = path
        model_joints = [self.model.names[i] for i in range(1, self.model.njoints)]
        self.joint_names: tuple[str, ...] = tuple(joint_names) if joint_names is not None else tuple(model_joints)
        ids = []
        for name in self.joint_names:
            if not self.model.existJointName(name):
                raise UnknownJointError(
                    f"joint '{name}' is not in {path.name}.{did_you_mean(name, model_joints)}"
                    " Pass the robot's spec.joint_names, or None for the URDF's own joints."
                )
            ids.append(self.model.getJointId(name))
        self._jid = np.array(ids, dtype=np.int64)
        nqs = np.array([self.model.nqs[j] for j in ids])
        self._idx_q = np.array([self.model.idx_qs[j] for j in ids], dtype=np.int64)
        self._idx_v = np.array([self.model.idx_vs[j] for j in ids], dtype=np.int64)
        self._scalar = nqs == 1  # revolute / prismatic; the rest are continuous (cos, sin)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        lo = np.where(self._scalar, self.model.lowerPositionLimit[self._idx_q], -math.inf)
        hi = np.where(self._scalar, self.model.upperPositionLimit[self._idx_q], math.inf)
        self.lower = np.asarray(lower, dtype=float) if lower is not None else lo
        self.upper = np.asarray(upper, dtype=float) if upper is not None else hi
        self._neutral = pin.neutral(self.model)
        self._world_aligned = pin.ReferenceFrame.LOCAL_WORLD_ALIGNED

    @classmethod
    def for_spec(cls, urdf: str | Path, spec: RobotSpec) -> Kinematics:
        """Kinematics whose joint vectors and limits are the robot spec's."""
        return cls(urdf, spec.joint_names, spec.position_lower, spec.position_upper)

    # ----------------------------------------------------------------- names
    @property
    def frames(self) -> list[str]:
        """Names of every frame (links and fixed joints) in the model."""
        return [f.name for f in self.model.frames]

    def frame_id(self, frame: str) -> int:
        """Pinocchio frame index of a link (preferred) or joint frame."""
        if self.model.existBodyName(frame):
            return int(self.model.getBodyId(frame))
        if self.model.existFrame(frame):
            return int(self.model.getFrameId(frame))
        raise UnknownNameError(
            f"no link or frame '{frame}' in {self.urdf.name}.{did_you_mean(frame, self.frames)}"
            " End-effector links are listed in the robot registry (sim/robots.yaml, end_effectors)."
        )

    def index(self, joint: str) -> int:
        """Position of ``joint`` in this object's joint vectors."""
        try:
            return self._index[joint]
        except KeyError:
            raise UnknownJointError(f"no joint '{joint}'.{did_you_mean(joint, self.joint_names)}") from None

    def chain(self, frame: str, root: str | None = None) -> tuple[str, ...]:
        """Movable joints from ``root`` (a frame; default the URDF root) out to ``frame``, root first.

        E.g. TIAGo's ``hand_grasping_frame`` gives the torso and 7 arm joints; G1's hand from
        ``torso_link`` gives the 7 arm joints without the waist.
        """
        tip = self._ancestors(self.model.frames[self.frame_id(frame)].parentJoint)
        if root is not None:
            base = set(self._ancestors(self.model.frames[self.frame_id(root)].parentJoint))
            tip = [j for j in tip if j not in base]
        names = [self.model.names[j] for j in reversed(tip)]
        return tuple(n for n in names if n in self._index)

    def _ancestors(self, joint: int) -> list[int]:
        out = []
        while joint > 0:
            out.append(joint)
            joint = self.model.parents[joint]
        return out

    # --------------------------------------------------------------- kinematics
    def to_pinocchio(self, q: np.ndarray) -> np.ndarray:
        """Pinocchio configuration of a joint vector (continuous joints become cos, sin)."""
        q = np.asarray(q, dtype=float)
        if q.shape != (len(self.joint_names),):
            raise ValueError(
                f"joint vector has shape {q.shape}; expected ({len(self.joint_names)},) in joint_names order"
            )
        out = self._neutral.copy()
        out[self._idx_q[self._scalar]] = q[self._scalar]
        for i in np.flatnonzero(~self._scalar):
            out[self._idx_q[i]] = math.cos(q[i])
            out[self._idx_q[i] + 1] = math.sin(q[i])
        return out

    def fk(self, q: np.ndarray, frame: str, base_pose: np.ndarray | None = None) -> np.ndarray:
        """4x4 pose of ``frame``: in the base frame, or the world frame when ``base_pose`` is given."""
        fid = self.frame_id(frame)
        self._pin.framesForwardKinematics(self.model, self.data, self.to_pinocchio(q))
        m = self.data.oMf[fid].homogeneous
        return m if base_pose is None else pose_to_matrix(base_pose) @ m

    def fk_pose(self, q: np.ndarray, frame: str, base_pose: np.ndarray | None = None) -> np.ndarray:
        """(7,) pose (x, y, z, qx, qy, qz, qw) of ``frame``, like ``Observation.ee_poses``."""
        return matrix_to_pose(self.fk(q, frame, base_pose))

    def jacobian(
        self,
        q: np.ndarray,
        frame: str,
        joints: Sequence[str] | None = None,
        base_pose: np.ndarray | None = None,
    ) -> np.ndarray:
        """(6, n) Jacobian of ``frame``: rows (vx, vy, vz, wx, wy, wz) of the frame origin, columns ``joints``.

        Velocities are in the base frame's axes (the world's when ``base_pose`` is given);
        ``joints`` defaults to the chain from the root to ``frame``.
        """
        fid = self.frame_id(frame)
        cols = self._idx_v[[self.index(j) for j in (joints if joints is not None else self.chain(frame))]]
        pq = self.to_pinocchio(q)
        j = self._pin.computeFrameJacobian(self.model, self.data, pq, fid, self._world_aligned)[:, cols]
        if base_pose is not None:
            r = pose_to_matrix(base_pose)[:3, :3]
            j = np.vstack([r @ j[:3], r @ j[3:]])
        return j

    def gravity_torques(self, q: np.ndarray, base_pose: np.ndarray | None = None) -> np.ndarray:
        """Joint torques (``joint_names`` order) that hold ``q`` against gravity, base fixed at ``base_pose``."""
        g = np.array([0.0, 0.0, -9.81])
        if base_pose is not None:  # gravity seen from a tilted base
            g = pose_to_matrix(base_pose)[:3, :3].T @ g
        self.model.gravity.linear = g
        tau = self._pin.computeGeneralizedGravity(self.model, self.data, self.to_pinocchio(q))
        return np.asarray(tau)[self._idx_v]

    def reach(self, joints: Sequence[str], frame: str, q: np.ndarray) -> tuple[np.ndarray, float]:
        """(origin of the first joint in the base frame, an upper bound on how far ``frame`` can get from it)."""
        self._pin.framesForwardKinematics(self.model, self.data, self.to_pinocchio(q))
        ids = [int(self._jid[self.index(j)]) for j in joints]
        origin = np.array(self.data.oMi[ids[0]].translation)
        fid = self.frame_id(frame)
        length = float(np.linalg.norm(self.model.frames[fid].placement.translation))
        path = self._ancestors(self.model.frames[fid].parentJoint)
        for j in path:
            if j == ids[0]:
                break
            length += float(np.linalg.norm(self.model.jointPlacements[j].translation))
        for name, j in zip(joints, ids, strict=True):
            kind = self.model.joints[j].shortname()
            if kind.startswith("JointModelP") and "Planar" not in kind:  # prismatic: add its travel
                travel = float(self.upper[self.index(name)] - self.lower[self.index(name)])
                length += travel if math.isfinite(travel) else 0.0
        return origin, length

    # ---------------------------------------------------------------------- IK
    def ik(
        self,
        frame: str,
        target: np.ndarray,
        q0: np.ndarray,
        joints: Sequence[str] | None = None,
        *,
        base_pose: np.ndarray | None = None,
        position_tolerance: float = 1e-3,
        orientation_tolerance: float = 1e-2,
        orientation_weight: float = 0.3,
        damping: float = 1e-2,
        max_iterations: int = 150,
        restarts: int = 6,
        max_step: float = 0.3,
        seed: int = 0,
    ) -> IKResult:
        """Damped least-squares IK for ``frame`` moving only ``joints`` (default: its whole chain).

        ``target`` is a (7,) pose or a (3,) position (position-only IK), in the base frame or,
        with ``base_pose``, in the world frame. Joint limits are respected at every iteration
        (clamped, and joints pressed against a limit leave the least-squares problem). When the
        start ``q0`` does not converge, up to ``restarts`` random starts within the limits
        (seeded) are tried; the best configuration is returned either way.
        """
        target = np.asarray(target, dtype=float)
        if target.shape not in ((3,), (7,)) or not np.all(np.isfinite(target)):
            raise ValueError(f"IK target must be a finite (3,) position or (7,) pose, got {target!r}")
        position_only = target.shape == (3,)
        goal = pose_to_matrix(target)
        if base_pose is not None:
            goal = invert(pose_to_matrix(base_pose)) @ goal
        joints = tuple(joints) if joints is not None else self.chain(frame)
        if not joints:
            raise ValueError(f"no movable joints move frame '{frame}'; check the joints argument")
        cols = np.array([self.index(j) for j in joints])
        q = np.array(q0, dtype=float).copy()
        q[cols] = np.clip(q[cols], self.lower[cols], self.upper[cols])
        origin, length = self.reach(joints, frame, q)
        distance = float(np.linalg.norm(goal[:3, 3] - origin))
        if distance > length * 1.001:
            message = f"target is {distance:.3f} m from joint '{joints[0]}', beyond the chain's reach of {length:.3f} m"
            return IKResult(q, False, False, distance - length, 0.0, 0, message)
        rng = np.random.default_rng(seed)
        best: tuple[float, np.ndarray, float, float] | None = None
        iterations = 0
        for attempt in range(restarts + 1):
            if attempt > 0:
                lo = np.where(np.isfinite(self.lower[cols]), self.lower[cols], -math.pi)
                hi = np.where(np.isfinite(self.upper[cols]), self.upper[cols], math.pi)
                q[cols] = rng.uniform(lo, hi)
            q, pos_err, rot_err, n = self._solve(
                frame,
                goal,
                q,
                cols,
                position_only,
                orientation_weight,
                damping,
                max_iterations,
                max_step,
                position_tolerance,
                orientation_tolerance,
            )
            iterations += n
            score = pos_err + orientation_weight * rot_err
            if best is None or score < best[0]:
                best = (score, q.copy(), pos_err, rot_err)
            if pos_err <= position_tolerance and rot_err <= orientation_tolerance:
                return IKResult(q, True, True, pos_err, rot_err, iterations, "reached")
        assert best is not None
        _, q_best, pos_err, rot_err = best
        message = (
            f"not reached from {restarts + 1} starts: closest is {pos_err * 1000:.1f} mm and"
            f" {math.degrees(rot_err):.1f} deg away; the target is out of reach or blocked by joint limits"
        )
        return IKResult(q_best, False, False, pos_err, rot_err, iterations, message)

    def _solve(
        self,
        frame: str,
        goal: np.ndarray,
        q: np.ndarray,
        cols: np.ndarray,
        position_only: bool,
        w_rot: float,
        damping: float,
        max_iterations: int,
        max_step: float,
        tol_p: float,
        tol_r: float,
    ) -> tuple[np.ndarray, float, float, int]:
        """One DLS descent from ``q``; returns (q, position error, orientation error, iterations)."""
        fid = self.frame_id(frame)
        vcols = self._idx_v[cols]
        lo, hi = self.lower[cols], self.upper[cols]
        rows = slice(0, 3) if position_only else slice(0, 6)
        weights = np.array([1.0, 1.0, 1.0, w_rot, w_rot, w_rot])[rows]
        pos_err = rot_err = math.inf
        for it in range(1, max_iterations + 1):
            pq = self.to_pinocchio(q)
            self._pin.framesForwardKinematics(self.model, self.data, pq)
            err = pose_error(self.data.oMf[fid].homogeneous, goal)
            pos_err = float(np.linalg.norm(err[:3]))
            rot_err = 0.0 if position_only else float(np.linalg.norm(err[3:]))
            if pos_err <= tol_p and rot_err <= tol_r:
                return q, pos_err, rot_err, it
            jac = self._pin.computeFrameJacobian(self.model, self.data, pq, fid, self._world_aligned)
            jac = jac[rows][:, vcols] * weights[:, None]
            e = err[rows] * weights
            dq = damped_least_squares(jac, e, q[cols], lo, hi, damping)
            scale = max(1.0, float(np.max(np.abs(dq))) / max_step)
            q[cols] = np.clip(q[cols] + dq / scale, lo, hi)
        return q, pos_err, rot_err, max_iterations


def damped_least_squares(
    jac: np.ndarray,
    err: np.ndarray,
    q: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    damping: float = 1e-2,
    limit_margin: float = 0.0,
) -> np.ndarray:
    """Joint step ``dq`` that reduces task error ``err`` (rows of ``jac``), respecting joint limits.

    Levenberg-Marquardt damping grows with the error (Sugihara 2011), so steps stay bounded
    near singularities and far from the goal; joints at a limit that the step would push
    further out are removed from the problem and the step is solved again. With
    ``limit_margin`` > 0 (radians or metres) a joint moving towards a limit closer than that
    is used less and less (weighted least norm), so it slows down smoothly instead of
    stopping dead, which would jerk the other joints.
    """
    n = jac.shape[1]
    lam = damping**2 + 0.5 * float(err @ err)
    weight = np.ones(n)
    dq = np.zeros(n)
    for attempt in range(4):
        js = jac * np.sqrt(weight)
        dq = np.sqrt(weight) * np.linalg.solve(js.T @ js + lam * np.eye(n), js.T @ err)
        room = np.where(dq < 0, q - lower, upper - q)  # distance to the limit the step heads for
        new = np.clip(room / limit_margin, 0.0, 1.0) ** 2 if limit_margin > 0 and attempt == 0 else weight.copy()
        new[room <= 1e-9] = 0.0  # at the limit and pushed outwards: leave the problem
        if np.array_equal(new, weight):
            break
        weight = np.maximum(new, 0.0)
    return dq
