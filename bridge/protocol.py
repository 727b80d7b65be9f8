"""The bridge's wire format: msgpack maps, numpy arrays as a typed binary extension, message schemas.

Everything a client in another language needs is in ``bridge/PROTOCOL.md``; this module is the
reference implementation. Every message is one ZeroMQ frame holding one msgpack map with at
least ``v`` (protocol version), ``type``, ``seq`` and ``t`` (the sender's monotonic clock, s).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from tianji.control.errors import InvalidCommandError, TianjiError, UnknownJointError
from tianji.control.robot import BaseType, Command, ControlMode, Observation, RobotSpec

PROTOCOL_VERSION = 1
DEFAULT_PORT = 5555  # commands (ROUTER); state (PUB) is on DEFAULT_PORT + 1
MAX_REQUEST_BYTES = 64 * 1024  # larger client messages are dropped with an error reply
NDARRAY_EXT = 1  # msgpack extension type code of a numpy array

# dtype codes of the array extension: code -> little-endian numpy dtype
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<f8"),
    3: np.dtype("<i4"),
    4: np.dtype("<i8"),
    5: np.dtype("u1"),
    6: np.dtype("?"),
}
_CODES = {dt: code for code, dt in DTYPES.items()}

# client -> server requests, server -> client replies, server PUB topics
REQUESTS = ("hello", "command", "stop", "estop", "reset_estop", "heartbeat", "camera", "scenario", "bye")
REPLIES = ("welcome", "ack", "error", "camera_frames", "scenario_state")
PUBLISHED = ("state", "event")
ROLES = ("controller", "observer")

# error codes of an ``error`` reply
E_MALFORMED = "malformed"  # not msgpack, not a map, missing or mistyped field, truncated array
E_TOO_LARGE = "too_large"
E_VERSION = "version_mismatch"
E_UNKNOWN_TYPE = "unknown_type"
E_NOT_CONTROLLER = "not_controller"  # no session, or a session that is not the current controller's
E_BUSY = "controller_busy"
E_STALE = "stale"
E_DUPLICATE = "duplicate"
E_OUT_OF_ORDER = "out_of_order"
E_INVALID = "invalid_command"
E_UNKNOWN_JOINT = "unknown_joint"
E_ESTOP = "estop_latched"
E_SAFETY = "safety_stop"
E_UNSUPPORTED = "unsupported"  # a request this robot cannot serve (a scenario on hardware)
E_INTERNAL = "internal"


class BridgeError(TianjiError, RuntimeError):
    """The bridge refused a request or broke the protocol; the message says why and what to do."""

    def __init__(self, message: str, code: str = E_INTERNAL) -> None:
        super().__init__(message)
        self.code = code


class ProtocolError(BridgeError):
    """A message that does not follow the protocol (malformed, truncated, wrong types)."""

    def __init__(self, message: str, code: str = E_MALFORMED) -> None:
        super().__init__(message, code)


class VersionMismatchError(BridgeError):
    """Client and server speak different protocol versions."""

    def __init__(self, message: str) -> None:
        super().__init__(message, E_VERSION)


class BridgeConnectionError(BridgeError, ConnectionError):
    """No answer from the server in time (down, wrong address, or keys it does not accept)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "connection")


class ControllerBusyError(BridgeError):
    """Another client is the controller; only one may command the robot at a time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, E_BUSY)


# ------------------------------------------------------------------ encoding
def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return pack_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode {type(obj).__name__} in a bridge message")


def pack_array(arr: np.ndarray) -> msgpack.ExtType:
    """Array -> extension 1: dtype code (u8), ndim (u8), shape (ndim x u32 LE), C-order little-endian data."""
    a = np.asarray(arr)
    code = _CODES.get(a.dtype)  # native little-endian dtypes (every array on this path) hit at once
    if code is None:
        code = _CODES.get(a.dtype.newbyteorder("<"))
        if code is None:  # other dtypes travel as float64
            a = a.astype("<f8")
            code = 2
    if a.ndim > 255:
        raise TypeError("arrays with more than 255 dimensions cannot be encoded")
    header = _shape_struct(a.ndim).pack(code, a.ndim, *a.shape)
    data = a.tobytes() if a.dtype == DTYPES[code] else a.astype(DTYPES[code]).tobytes()
    return msgpack.ExtType(NDARRAY_EXT, header + data)  # tobytes() is C order whatever the layout


_SHAPES: dict[int, struct.Struct] = {}


def _shape_struct(ndim: int) -> struct.Struct:
    """``<BB{ndim}I``, compiled once per ndim (the header of an array extension)."""
    s = _SHAPES.get(ndim)
    if s is None:
        s = _SHAPES[ndim] = struct.Struct(f"<BB{ndim}I")
    return s


def _ext_hook(code: int, data: bytes) -> Any:
    if code != NDARRAY_EXT:
        raise ProtocolError(f"unknown msgpack extension type {code}; only {NDARRAY_EXT} (array) is defined")
    if len(data) < 2:
        raise ProtocolError("truncated array: header shorter than 2 bytes")
    dcode, ndim = data[0], data[1]
    dtype = DTYPES.get(dcode)
    if dtype is None:
        raise ProtocolError(f"unknown array dtype code {dcode}; known codes: {sorted(DTYPES)}")
    head = 2 + 4 * ndim
    if len(data) < head:
        raise ProtocolError("truncated array: shape cut short")
    if ndim == 1:  # commands and states: one-dimensional arrays
        count = int.from_bytes(data[2:6], "little")
        if len(data) - 6 != count * dtype.itemsize:
            raise ProtocolError(
                f"array data is {len(data) - 6} bytes, shape ({count},) of {dtype} needs {count * dtype.itemsize}"
            )
        return np.frombuffer(data, dtype=dtype, offset=6, count=count)
    shape = struct.unpack_from(f"<{ndim}I", data, 2)
    count = math.prod(shape)
    if len(data) - head != count * dtype.itemsize:
        raise ProtocolError(
            f"array data is {len(data) - head} bytes, shape {shape} of {dtype} needs {count * dtype.itemsize}"
        )
    return np.frombuffer(data, dtype=dtype, offset=head, count=count).reshape(shape)


def encode(msg: Mapping[str, Any]) -> bytes:
    """A message map -> one msgpack frame (arrays as extension 1)."""
    return msgpack.packb(msg, default=_default, use_bin_type=True)


def decode(frame: bytes, max_bytes: int | None = None) -> dict[str, Any]:
    """One frame -> a message map with the common fields checked; raises ProtocolError / VersionMismatchError."""
    if max_bytes is not None and len(frame) > max_bytes:
        raise ProtocolError(f"message of {len(frame)} bytes exceeds the {max_bytes}-byte limit", E_TOO_LARGE)
    try:
        msg = msgpack.unpackb(frame, ext_hook=_ext_hook, raw=False, strict_map_key=True, max_bin_len=len(frame))
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types for bad input
        raise ProtocolError(f"not a msgpack message: {type(exc).__name__}: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(f"a message must be a msgpack map, got {type(msg).__name__}")
    version = msg.get("v")
    if version != PROTOCOL_VERSION:
        raise VersionMismatchError(
            f"protocol version {version!r} is not supported; this side speaks version {PROTOCOL_VERSION}."
            " Upgrade the older side so both run the same tianji bridge protocol."
        )
    if not isinstance(msg.get("type"), str):
        raise ProtocolError("field 'type' is missing or not a string")
    if not _is_int(msg.get("seq")):
        raise ProtocolError("field 'seq' is missing or not an integer")
    t = msg.get("t")
    if not isinstance(t, float | int) or isinstance(t, bool) or not math.isfinite(t):
        raise ProtocolError("field 't' is missing or not a finite number (sender's monotonic clock, seconds)")
    return msg


def message(kind: str, seq: int, t: float, **fields: Any) -> dict[str, Any]:
    """A message map with the common fields."""
    return {"v": PROTOCOL_VERSION, "type": kind, "seq": seq, "t": t, **fields}


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def field(msg: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], optional: bool = False) -> Any:
    """``msg[name]`` checked against ``kinds``; ProtocolError names the field when it is missing or mistyped."""
    value = msg.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise ProtocolError(f"field '{name}' of a '{msg.get('type')}' message is missing or has the wrong type")
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


# ------------------------------------------------------------------ spec
def spec_to_wire(spec: RobotSpec) -> dict[str, Any]:
    """RobotSpec -> map (limits as float64 arrays in joint order)."""
    return {
        "name": spec.name,
        "joint_names": list(spec.joint_names),
        "position_lower": spec.position_lower.astype(np.float64),
        "position_upper": spec.position_upper.astype(np.float64),
        "velocity_limits": spec.velocity_limits.astype(np.float64),
        "effort_limits": spec.effort_limits.astype(np.float64),
        "home": spec.home.astype(np.float64),
        "control_modes": [m.value for m in spec.control_modes],
        "control_rate": float(spec.control_rate),
        "base": spec.base.value,
        "end_effectors": list(spec.end_effectors),
        "sensors": list(spec.sensors),
        "has_gripper": bool(spec.has_gripper),
        "passive_joints": list(spec.passive_joints),
    }


def spec_from_wire(d: Mapping[str, Any]) -> RobotSpec:
    """Map -> RobotSpec; ProtocolError when a field is missing or inconsistent."""
    try:
        return RobotSpec(
            name=str(d["name"]),
            joint_names=tuple(str(j) for j in d["joint_names"]),
            position_lower=np.asarray(d["position_lower"], dtype=np.float64),
            position_upper=np.asarray(d["position_upper"], dtype=np.float64),
            velocity_limits=np.asarray(d["velocity_limits"], dtype=np.float64),
            effort_limits=np.asarray(d["effort_limits"], dtype=np.float64),
            home=np.asarray(d["home"], dtype=np.float64),
            control_modes=tuple(ControlMode(m) for m in d["control_modes"]),
            control_rate=float(d["control_rate"]),
            base=BaseType(d["base"]),
            end_effectors=tuple(d.get("end_effectors", ())),
            sensors=tuple(d.get("sensors", ())),
            has_gripper=bool(d.get("has_gripper", False)),
            passive_joints=tuple(d.get("passive_joints", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"robot spec in the welcome message is invalid: {type(exc).__name__}: {exc}") from None


# ------------------------------------------------------------------ state
def observation_to_wire(obs: Observation) -> dict[str, Any]:
    """Observation -> state fields (float32 arrays; cameras are not streamed, ask with a 'camera' request)."""
    return {
        "stamp": float(obs.timestamp),
        "q": np.asarray(obs.joint_positions, dtype=np.float32),
        "dq": np.asarray(obs.joint_velocities, dtype=np.float32),
        "tau": np.asarray(obs.joint_efforts, dtype=np.float32),
        "base_pose": np.asarray(obs.base_pose, dtype=np.float32),
        "base_twist": np.asarray(obs.base_twist, dtype=np.float32),
        "ee": {k: np.asarray(v, dtype=np.float32) for k, v in obs.ee_poses.items()},
        "gripper": None if obs.gripper is None else float(obs.gripper),
    }


def observation_from_wire(msg: Mapping[str, Any]) -> Observation:
    """State message -> Observation (arrays copied so they are writable)."""
    return Observation(
        timestamp=float(msg["stamp"]),
        joint_positions=np.array(msg["q"], dtype=np.float32),
        joint_velocities=np.array(msg["dq"], dtype=np.float32),
        joint_efforts=np.array(msg["tau"], dtype=np.float32),
        base_pose=np.array(msg["base_pose"], dtype=np.float32),
        base_twist=np.array(msg["base_twist"], dtype=np.float32),
        ee_poses={k: np.array(v, dtype=np.float32) for k, v in (msg.get("ee") or {}).items()},
        gripper=msg.get("gripper"),
    )


# ------------------------------------------------------------------ command
def command_to_wire(cmd: Command, spec: RobotSpec) -> dict[str, Any]:
    """Command -> command fields: ``mode``, ``joints`` (names or nil for the full vector), ``targets`` (float64)."""
    mode, indices, values = cmd.resolve(spec)  # the same exceptions as SimRobot, before anything is sent
    full = len(indices) == spec.dof and not isinstance(cmd.targets, Mapping)
    return {
        "mode": mode.value,
        "joints": None if full else [spec.joint_names[i] for i in indices],
        "targets": np.asarray(values, dtype=np.float64),
        "base_twist": None if cmd.base_twist is None else np.asarray(cmd.base_twist, dtype=np.float64),
        "gripper": None if cmd.gripper is None else float(cmd.gripper),
    }


def command_from_wire(msg: Mapping[str, Any], spec: RobotSpec) -> Command:
    """Command message -> validated Command; raises ProtocolError, InvalidCommandError or UnknownJointError."""
    mode = field(msg, "mode", str)
    joints = field(msg, "joints", list, optional=True)
    targets = msg.get("targets")
    if targets is not None and not isinstance(targets, np.ndarray):
        raise ProtocolError("field 'targets' must be an array (extension type 1) or nil")
    if targets is not None and targets.ndim != 1:
        raise InvalidCommandError(f"targets must be one-dimensional, got shape {targets.shape}")
    twist = msg.get("base_twist")
    if twist is not None and not isinstance(twist, np.ndarray):
        raise ProtocolError("field 'base_twist' must be an array of 3 values or nil")
    gripper = msg.get("gripper")
    if gripper is not None and (not isinstance(gripper, float | int) or isinstance(gripper, bool)):
        raise ProtocolError("field 'gripper' must be a number or nil")
    if joints is not None:
        if not all(isinstance(j, str) for j in joints):
            raise ProtocolError("field 'joints' must be a list of joint names")
        if targets is None or len(joints) != len(targets):
            n = "none" if targets is None else len(targets)
            raise InvalidCommandError(f"command names {len(joints)} joints but carries {n} targets")
        if len(set(joints)) != len(joints):
            raise InvalidCommandError("command names a joint twice")
        tgt: Any = dict(zip(joints, targets.tolist(), strict=True))  # resolve() raises UnknownJointError
    else:
        tgt = None if targets is None else targets.astype(np.float64)
    cmd = Command(mode=mode, targets=tgt, base_twist=twist, gripper=None if gripper is None else float(gripper))
    cmd.resolve(spec)  # NaN, lengths, modes: raises before anything is applied
    return cmd


def error_code(exc: BaseException) -> str:
    """The wire error code for an exception raised while handling a request."""
    if isinstance(exc, BridgeError):
        return exc.code
    if isinstance(exc, UnknownJointError):
        return E_UNKNOWN_JOINT
    if isinstance(exc, InvalidCommandError):
        return E_INVALID
    return E_INTERNAL
