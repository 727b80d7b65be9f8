"""Bridge wire format, driver discovery and address checks: no sockets, no simulator."""

from __future__ import annotations

import struct

import msgpack
import numpy as np
import pytest

from tianji.bridge import protocol
from tianji.bridge.auth import is_loopback
from tianji.bridge.drivers import available_drivers, driver_class, load_driver, parse_driver
from tianji.bridge.drivers.fake import FakeDriver
from tianji.bridge.drivers.sim import world_config_for
from tianji.bridge.protocol import ProtocolError, VersionMismatchError
from tianji.control import Command, InvalidCommandError, UnknownJointError, UnknownNameError


@pytest.fixture
def spec():
    return FakeDriver(4).spec


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<i4", "<i8", "u1", "?"])
def test_arrays_round_trip_typed(dtype: str) -> None:
    a = (np.arange(12) % 2 if dtype == "?" else np.arange(12)).astype(dtype).reshape(3, 4)
    out = protocol.decode(protocol.encode(protocol.message("x", 1, 0.0, a=a)))["a"]
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 4)
    np.testing.assert_array_equal(out, a)


def test_array_layout_is_documented() -> None:
    ext = protocol.pack_array(np.array([1.5, -2.0], dtype=np.float32))
    assert ext.code == 1
    assert ext.data[:2] == bytes([1, 1]) and struct.unpack("<I", ext.data[2:6]) == (2,)
    assert np.frombuffer(ext.data[6:], "<f4").tolist() == [1.5, -2.0]


def test_truncated_array_and_bad_frames_are_protocol_errors() -> None:
    frame = protocol.encode(protocol.message("command", 1, 0.0, targets=np.zeros(3)))
    bad_ext = msgpack.packb({"v": 1, "type": "x", "seq": 1, "t": 0.0, "a": msgpack.ExtType(1, b"\x02\x01\x03\x00")})
    for bad in (frame[:-5], b"", b"\xc1", msgpack.packb([1, 2]), bad_ext, msgpack.packb({"v": 1, "type": 3})):
        with pytest.raises(ProtocolError):
            protocol.decode(bad)
    with pytest.raises(ProtocolError, match="exceeds"):
        protocol.decode(b"x" * 100, max_bytes=10)


def test_wrong_version_is_a_clear_error() -> None:
    with pytest.raises(VersionMismatchError, match="version 2"):
        protocol.decode(msgpack.packb({"v": 2, "type": "hello", "seq": 1, "t": 0.0}))


def test_spec_round_trip(spec) -> None:
    frame = protocol.encode(protocol.message("spec", 0, 0.0, robot=protocol.spec_to_wire(spec)))
    back = protocol.spec_from_wire(protocol.decode(frame)["robot"])
    assert back.joint_names == spec.joint_names and back.control_modes == spec.control_modes
    np.testing.assert_array_equal(back.position_upper, spec.position_upper)


def test_command_round_trip_and_validation(spec) -> None:
    for cmd in (Command(targets={"joint_2": 0.5}), Command(targets=[0.1, 0.2, 0.3, 0.4]), Command("velocity", [0] * 4)):
        wire = protocol.decode(
            protocol.encode(protocol.message("command", 1, 0.0, **protocol.command_to_wire(cmd, spec)))
        )
        back = protocol.command_from_wire(wire, spec)
        assert back.resolve(spec)[2].tolist() == cmd.resolve(spec)[2].tolist()
    with pytest.raises(InvalidCommandError, match="NaN"):
        protocol.command_to_wire(Command(targets={"joint_1": float("nan")}), spec)
    nan = {"mode": "position", "joints": ["joint_1"], "targets": np.array([np.nan])}
    with pytest.raises(InvalidCommandError, match="NaN"):
        protocol.command_from_wire(nan, spec)
    with pytest.raises(UnknownJointError, match="joint_1"):
        protocol.command_from_wire({"mode": "position", "joints": ["joint_11"], "targets": np.zeros(1)}, spec)
    with pytest.raises(InvalidCommandError, match="torque"):
        protocol.command_from_wire({"mode": "torque", "targets": np.zeros(4)}, spec)
    with pytest.raises(ProtocolError):
        protocol.command_from_wire({"mode": "position", "targets": [1.0, 2.0]}, spec)


def test_driver_strings_and_builtin_discovery() -> None:
    assert parse_driver("sim:tiago?scene=care_room&seed=3") == ("sim", "tiago", {"scene": "care_room", "seed": "3"})
    assert parse_driver("fake") == ("fake", "", {})
    assert {"sim", "fake", "replay"} <= set(available_drivers())
    assert driver_class("sim").__name__ == "SimDriver"  # without the entry point installed
    assert load_driver("fake:3", rate=200).spec.dof == 3
    with pytest.raises(UnknownNameError, match="Known drivers"):
        load_driver("simm:tiago")
    assert world_config_for(500) == (1 / 500, 1)
    assert world_config_for(60) == pytest.approx((1 / 240, 4))


def test_loopback_detection() -> None:
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1") and is_loopback("tcp://[::1]:5")
    assert not is_loopback("tcp://0.0.0.0:5555") and not is_loopback("tcp://*:5555")
    assert not is_loopback("tcp://192.168.1.4:5555") and not is_loopback("tcp://robot.local:5555")


def test_workspace_box_needs_kinematics() -> None:
    from tianji.bridge.protocol import BridgeError
    from tianji.bridge.server import BridgeServer, ServerConfig
    from tianji.control.safety import SafetyLimits

    limits = SafetyLimits(workspace=((-1, -1, 0), (1, 1, 2)), workspace_frames=("joint_1",))
    with pytest.raises(BridgeError, match="needs kinematics"):
        BridgeServer(FakeDriver(2), ServerConfig(bind="tcp://127.0.0.1:0", safety=limits))
