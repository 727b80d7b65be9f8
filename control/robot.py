"""The one Robot interface every backend implements: simulator, bridge client, hardware driver.

Conventions (DESIGN.md): SI units, z up, quaternions (x, y, z, w) as PyBullet gives them,
joint names exactly as in the URDF, arrays float32 in observations.
"""

from __future__ import annotations

import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np

from tianji.control.errors import InvalidCommandError, UnknownJointError, did_you_mean


class ControlMode(enum.StrEnum):
    """How joint targets are interpreted."""

    POSITION = "position"  # radians / metres, tracked by a PD loop with effort limits
    VELOCITY = "velocity"  # rad/s or m/s
    TORQUE = "torque"  # N m or N


class BaseType(enum.StrEnum):
    """How the robot's base moves."""

    FIXED = "fixed"  # bolted to the world (a hand on a wrist mount)
    FLOATING = "floating"  # free 6-DoF, not actuated (a humanoid, a person)
    MOBILE = "mobile"  # planar base driven by a twist (vx, vy, wz)


@dataclass(frozen=True)
class RobotSpec:
    """What a robot is and what it accepts. Arrays are in ``joint_names`` order (URDF order)."""

    name: str
    joint_names: tuple[str, ...]
    position_lower: np.ndarray
    position_upper: np.ndarray
    velocity_limits: np.ndarray
    effort_limits: np.ndarray
    home: np.ndarray
    control_modes: tuple[ControlMode, ...] = (ControlMode.POSITION,)
    control_rate: float = 60.0
    base: BaseType = BaseType.FIXED
    end_effectors: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    has_gripper: bool = False
    passive_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for attr in ("position_lower", "position_upper", "velocity_limits", "effort_limits", "home"):
            value = np.asarray(getattr(self, attr), dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"RobotSpec.{attr} has shape {value.shape}, expected ({n},)")
            object.__setattr__(self, attr, value)
        object.__setattr__(self, "_index", {j: i for i, j in enumerate(self.joint_names)})

    @property
    def dof(self) -> int:
        """Number of movable joints."""
        return len(self.joint_names)

    def index(self, joint: str) -> int:
        """Position of ``joint`` in the spec's arrays; UnknownJointError names close matches."""
        try:
            return self._index[joint]  # type: ignore[attr-defined]
        except KeyError:
            raise UnknownJointError(
                f"robot '{self.name}' has no joint '{joint}'.{did_you_mean(joint, self.joint_names)}"
                f" Its joints are listed in robot.spec.joint_names ({self.dof} joints)."
            ) from None

    def home_dict(self) -> dict[str, float]:
        """Home pose as {joint name: position}."""
        return {j: float(q) for j, q in zip(self.joint_names, self.home, strict=True)}


@dataclass
class CameraFrame:
    """One rendered or captured camera image with everything needed to use it geometrically.

    ``pose`` is the 4x4 transform world <- camera in the OpenCV optical convention
    (x right, y down, z forward); ``intrinsics`` is the 3x3 pinhole matrix K.
    """

    name: str
    timestamp: float
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32, metres along the optical axis
    intrinsics: np.ndarray  # (3, 3)
    pose: np.ndarray  # (4, 4)
    segmentation: np.ndarray | None = None  # (H, W) int32 body ids, -1 for background

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


@dataclass
class Observation:
    """A timestamped snapshot of the robot. Joint arrays follow ``spec.joint_names``."""

    timestamp: float
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    joint_efforts: np.ndarray
    base_pose: np.ndarray  # (7,) x, y, z, qx, qy, qz, qw in the world frame
    base_twist: np.ndarray  # (6,) vx, vy, vz, wx, wy, wz in the world frame
    ee_poses: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (7,) as base_pose
    gripper: float | None = None  # opening, 0 closed .. 1 open
    cameras: dict[str, CameraFrame] = field(default_factory=dict)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Flat dict of float32 arrays (cameras excluded), for policies and the wire."""
        out = {
            "timestamp": np.array([self.timestamp], dtype=np.float32),
            "joint_positions": self.joint_positions.astype(np.float32),
            "joint_velocities": self.joint_velocities.astype(np.float32),
            "joint_efforts": self.joint_efforts.astype(np.float32),
            "base_pose": self.base_pose.astype(np.float32),
            "base_twist": self.base_twist.astype(np.float32),
        }
        for name, pose in self.ee_poses.items():
            out[f"ee/{name}"] = pose.astype(np.float32)
        if self.gripper is not None:
            out["gripper"] = np.array([self.gripper], dtype=np.float32)
        return out


@dataclass(frozen=True)
class Command:
    """A command for one control step.

    ``targets`` is either a mapping {joint name: value} (joints not named keep their last
    target) or a full vector in ``spec.joint_names`` order. ``base_twist`` is (vx, vy, wz) in
    the robot's base frame, m/s and rad/s, for mobile bases. ``gripper`` is the opening,
    0 closed .. 1 open.
    """

    mode: ControlMode | str = ControlMode.POSITION
    targets: Mapping[str, float] | Sequence[float] | np.ndarray | None = None
    base_twist: Sequence[float] | np.ndarray | None = None
    gripper: float | None = None

    def resolve(self, spec: RobotSpec) -> tuple[ControlMode, np.ndarray, np.ndarray]:
        """Validate against ``spec``; return (mode, joint indices, values).

        Raises InvalidCommandError (NaN/inf, wrong length, unsupported mode or field) or
        UnknownJointError, before anything is applied.
        """
        try:
            mode = ControlMode(self.mode)
        except ValueError:
            modes = ", ".join(m.value for m in ControlMode)
            raise InvalidCommandError(f"unknown control mode {self.mode!r}; use one of: {modes}") from None
        if mode not in spec.control_modes:
            allowed = ", ".join(m.value for m in spec.control_modes)
            raise InvalidCommandError(
                f"robot '{spec.name}' does not accept {mode.value} commands; it accepts: {allowed}"
            )
        indices, values = self._resolve_targets(spec)
        bad = [spec.joint_names[i] for i, v in zip(indices, values, strict=True) if not math.isfinite(v)]
        if bad:
            raise InvalidCommandError(
                f"command for robot '{spec.name}' has NaN or inf targets for {', '.join(bad)}; nothing was applied."
                " Check the controller or policy that produced it."
            )
        if self.base_twist is not None:
            if spec.base is not BaseType.MOBILE:
                raise InvalidCommandError(
                    f"robot '{spec.name}' has a {spec.base.value} base; base_twist needs a mobile base"
                )
            twist = np.asarray(self.base_twist, dtype=np.float64)
            if twist.shape != (3,):
                raise InvalidCommandError(f"base_twist must be (vx, vy, wz), got shape {twist.shape}")
            if not np.all(np.isfinite(twist)):
                raise InvalidCommandError(f"base_twist {twist.tolist()} has NaN or inf; nothing was applied")
        if self.gripper is not None:
            if not spec.has_gripper:
                raise InvalidCommandError(f"robot '{spec.name}' has no gripper; leave Command.gripper as None")
            if not math.isfinite(float(self.gripper)):
                raise InvalidCommandError("gripper opening is NaN or inf; nothing was applied")
        return mode, indices, values

    def _resolve_targets(self, spec: RobotSpec) -> tuple[np.ndarray, np.ndarray]:
        if self.targets is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        if isinstance(self.targets, Mapping):
            indices = np.array([spec.index(name) for name in self.targets], dtype=np.int64)
            values = np.array([float(v) for v in self.targets.values()], dtype=np.float64)
            return indices, values
        values = np.asarray(self.targets, dtype=np.float64)
        if values.shape != (spec.dof,):
            raise InvalidCommandError(
                f"a full target vector for robot '{spec.name}' needs {spec.dof} values in spec.joint_names order,"
                f" got shape {values.shape}; or pass a dict {{joint name: value}}"
            )
        return np.arange(spec.dof, dtype=np.int64), values


class Robot(ABC):
    """A robot a controller, policy or planner can drive without knowing what is behind it.

    Implementations: ``tianji.sim.SimRobot`` (PyBullet), the bridge's ``RemoteRobot`` and
    hardware drivers. Use as a context manager so ``close()`` always runs.
    """

    @property
    @abstractmethod
    def spec(self) -> RobotSpec:
        """Static description: joints, limits, modes, sensors, rate, home pose."""

    @abstractmethod
    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        """Current state; renders/captures the named cameras (see ``spec.sensors``) on request."""

    @abstractmethod
    def command(self, cmd: Command) -> None:
        """Apply targets for the next control step. Out-of-limit values are clamped; NaN raises."""

    @abstractmethod
    def stop(self) -> None:
        """Safe hold: hold the current joint positions and stop the base."""

    def close(self) -> None:  # noqa: B027 - optional hook, default does nothing
        """Release resources. Further use raises RobotClosedError where the backend tracks it."""

    def __enter__(self) -> Robot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
