"""Bridge server and RemoteRobot over real sockets on 127.0.0.1, against the kinematic fake driver.

Every loop is bounded in count and time; timing bounds leave room for a loaded machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq
from typer.testing import CliRunner

from tianji.bridge import protocol
from tianji.bridge.auth import keygen
from tianji.bridge.client import RemoteRobot
from tianji.bridge.drivers.fake import FakeDriver
from tianji.bridge.drivers.replay import ReplayDriver
from tianji.bridge.protocol import BridgeConnectionError, BridgeError, ControllerBusyError
from tianji.bridge.recording import read_recording
from tianji.bridge.server import BridgeServer, ServerConfig
from tianji.control import Command, InvalidCommandError, UnknownJointError
from tianji.control.safety import SafetyStopError

LOCAL = "tcp://127.0.0.1:0"


@pytest.fixture
def make_server() -> Iterator[Callable[..., BridgeServer]]:
    servers: list[BridgeServer] = []

    def make(driver: Any = None, **config: Any) -> BridgeServer:
        config.setdefault("bind", LOCAL)
        server = BridgeServer(driver or FakeDriver(4, rate=200), ServerConfig(**config)).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


class Raw:
    """A bare DEALER speaking the protocol by hand, to send what RemoteRobot never would."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.seq = 0
        self.session = None

    def send(self, kind: str, seq: int | None = None, t: float | None = None, **fields: Any) -> int:
        if seq is None:
            self.seq += 1
            seq = self.seq
        t = time.monotonic() if t is None else t
        self.sock.send(protocol.encode(protocol.message(kind, seq, t, **fields)))
        return seq

    def recv(self, timeout: float = 2.0) -> dict[str, Any] | None:
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return protocol.decode(self.sock.recv())

    def call(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.send(kind, **fields)
        reply = self.recv()
        assert reply is not None, f"no reply to {kind}"
        return reply

    def hello(self, role: str = "controller") -> dict[str, Any]:
        reply = self.call("hello", role=role, client="raw")
        self.session = reply.get("session")
        return reply

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_remote_robot_moves_and_raises_like_simrobot(make_server) -> None:
    server = make_server()
    with RemoteRobot(server.endpoint) as robot:
        assert robot.spec.joint_names == server.robot.spec.joint_names
        for _ in range(300):  # bounded: the fake joint moves at 2 rad/s toward 0.5 rad
            robot.command(Command(targets={"joint_2": 0.5}))
            if abs(robot.observe().joint_positions[1] - 0.5) < 1e-3:
                break
            time.sleep(0.005)
        assert robot.observe().joint_positions[1] == pytest.approx(0.5, abs=1e-3)
        with pytest.raises(UnknownJointError, match="joint_2"):
            robot.command(Command(targets={"joint_22": 1.0}))
        with pytest.raises(InvalidCommandError, match="NaN"):
            robot.command(Command(targets=[0.0, float("nan"), 0.0, 0.0]))
        with pytest.raises(InvalidCommandError, match="torque"):
            robot.command(Command("torque", [0.0] * 4))
        stats = robot.latency()
        assert stats["n"] > 0 and 0 < stats["p50_ms"] < 100
        assert robot.clock_offset is not None and abs(robot.clock_offset) < 0.05  # same host, same clock


def test_the_caller_reads_the_state_stream_itself(make_server) -> None:
    """No thread is woken per published state: observe(), state() and wait_for_state() read the stream."""
    server = make_server()  # 200 Hz
    with RemoteRobot(server.endpoint) as robot, RemoteRobot(server.endpoint, role="observer") as watcher:
        watcher._io_period = 30.0  # the background thread now reads the stream only every 30 s
        time.sleep(0.05)
        seen = watcher.state()["seq"]
        time.sleep(0.1)
        newest = watcher.state()
        assert newest["seq"] >= seen + 10  # about 20 states in 0.1 s, read by this call
        assert watcher.wait_for_state(newest["seq"], timeout=1.0)["seq"] > newest["seq"]
        robot.emergency_stop("test")
        assert wait_until(lambda: watcher.observe() is not None and watcher.state()["estop"] == "emergency_stop")
        assert any(e["event"] == "estop" for e in watcher.events)  # events come with the states
        assert watcher.counters["dropped_states"] == 0 and watcher.latency()["state_age_ms"] < 100
        robot.reset()


def test_a_command_after_a_watchdog_stop_is_acked_and_resumes(make_server) -> None:
    server = make_server(watchdog=0.1, controller_timeout=5.0)
    raw = Raw(server.endpoint)
    raw.hello()
    cmd = {"mode": "position", "joints": ["joint_1"], "targets": np.array([2.5])}  # far: still on the way
    assert raw.call("command", session=raw.session, **cmd)["type"] == "ack"
    assert wait_until(lambda: server.stats["watchdog_stops"] == 1, timeout=3.0)
    assert raw.call("command", session=raw.session, **cmd)["type"] == "ack"
    assert wait_until(lambda: any(e["event"] == "watchdog_resumed" for e in server.events), timeout=1.0)
    moved = q0 = server.robot.q[0]
    for _ in range(20):  # bounded: keep commanding (the watchdog holds a silent controller again)
        assert raw.call("command", session=raw.session, **cmd)["type"] == "ack"
        time.sleep(0.02)
        moved = server.robot.q[0]
    assert moved != q0  # moving again
    raw.close()


def test_second_controller_is_refused_until_the_first_leaves(make_server) -> None:
    server = make_server(controller_timeout=0.3)
    first = RemoteRobot(server.endpoint, name="first")
    with pytest.raises(ControllerBusyError, match="first"):
        RemoteRobot(server.endpoint, name="second", timeout=1.0)
    with RemoteRobot(server.endpoint, role="observer") as watcher:  # observers are always welcome
        assert watcher.observe().joint_positions.shape == (4,)
        with pytest.raises(BridgeError, match="observer"):
            watcher.command(Command())
    first.close()  # says bye: the seat is free at once
    second = RemoteRobot(server.endpoint, name="second", heartbeat=10.0)  # too slow a heartbeat: it times out
    assert wait_until(lambda: server.controller is None, timeout=5.0)
    third = RemoteRobot(server.endpoint, name="third")
    assert server.controller == "third"
    third.close()
    second.close()


def test_watchdog_stops_a_silent_controller_in_time(make_server) -> None:
    server = make_server(driver=FakeDriver(4, rate=200), watchdog=0.1)
    raw = Raw(server.endpoint)
    raw.hello()
    raw.call("command", session=raw.session, mode="velocity", joints=["joint_1"], targets=np.array([1.0]))
    assert wait_until(lambda: server.stats["watchdog_stops"] == 1, timeout=3.0)
    event = next(e for e in server.events if e["event"] == "watchdog_stop")
    # checked every tick: within watchdog + one period, plus scheduling slack on a loaded machine
    assert event["silent"] <= 0.1 + 1 / 200 + 0.1
    q = server.robot.q.copy()
    time.sleep(0.2)
    np.testing.assert_allclose(server.robot.q, q, atol=1e-9)  # stopped and stays stopped
    raw.close()


def test_estop_latches_until_reset(make_server) -> None:
    server = make_server()
    with RemoteRobot(server.endpoint) as robot, RemoteRobot(server.endpoint, role="observer") as other:
        robot.command(Command(targets={"joint_1": 1.0}))
        other.emergency_stop("test button")  # anyone may press it
        for _ in range(3):
            with pytest.raises(SafetyStopError, match="latched"):
                robot.command(Command(targets={"joint_1": 1.0}))
            time.sleep(0.1)
        assert robot.wait_for_state(timeout=2)["estop"] == "emergency_stop"
        q = server.robot.q.copy()
        time.sleep(0.1)
        np.testing.assert_allclose(server.robot.q, q)
        with pytest.raises(BridgeError, match="observer"):
            other.reset()
        robot.reset()
        robot.command(Command(targets={"joint_1": 0.0}))


def test_stale_duplicate_replayed_and_foreign_messages_are_rejected(make_server) -> None:
    server = make_server(max_age=0.05)
    raw = Raw(server.endpoint)
    raw.hello()
    cmd = {"mode": "position", "joints": ["joint_1"], "targets": np.array([0.2])}
    assert raw.call("command", session=raw.session, **cmd)["type"] == "ack"
    assert raw.call("command", session=raw.session, t=time.monotonic() - 1.0, **cmd)["code"] == "stale"
    raw.send("command", seq=raw.seq, session=raw.session, **cmd)
    assert raw.recv()["code"] == "duplicate"
    raw.send("command", seq=1, session=raw.session, **cmd)
    assert raw.recv()["code"] == "out_of_order"
    assert raw.call("command", session=raw.session + 1, **cmd)["code"] == "not_controller"  # replayed old session
    intruder = Raw(server.endpoint)  # the right session from another connection is not enough
    assert intruder.call("command", seq=raw.seq + 10, session=raw.session, **cmd)["code"] == "not_controller"
    assert server.drops["stale"] == 1 and server.drops["duplicate"] == 1 and server.drops["out_of_order"] == 1
    raw.close()
    intruder.close()


def test_wrong_version_and_oversized_get_error_replies(make_server) -> None:
    server = make_server(max_request_bytes=1024)
    raw = Raw(server.endpoint)
    raw.sock.send(msgpack.packb({"v": 99, "type": "hello", "seq": 1, "t": 0.0, "role": "controller"}))
    reply = raw.recv()
    assert reply["code"] == "version_mismatch" and reply["server_version"] == protocol.PROTOCOL_VERSION
    raw.sock.send(b"\x00" * 5000)
    assert raw.recv()["code"] == "too_large"
    raw.sock.send_multipart([b"a", b"b"])
    assert raw.recv()["code"] == "malformed"
    raw.close()


def _fuzz_frames(rng: np.random.Generator, session: int, n: int) -> Iterator[bytes]:
    """Messages that must all be refused: random bytes, cut frames, wrong fields, NaN, stale, wrong version."""
    good = protocol.encode(
        protocol.message(
            "command", 10**9, 0.0, session=session, mode="position", joints=["joint_1"], targets=np.array([1.0])
        )
    )
    kinds = [*protocol.REQUESTS, "state", "welcome", "", "x" * 50]
    values: list[Any] = [None, 1, -1, 2**70 // 2**10, 1.5, float("nan"), "s", b"b", [1, "a"], {"a": 1}, True]
    for i in range(n):
        choice = i % 8
        if choice == 0:
            yield rng.bytes(int(rng.integers(0, 200)))
        elif choice == 1:
            yield good[: int(rng.integers(0, len(good)))]
        elif choice == 2:
            frame = bytearray(good)
            for _ in range(3):
                frame[int(rng.integers(0, len(frame)))] = int(rng.integers(0, 256))
            yield bytes(frame)
        elif choice == 3:  # the controller's session with NaN or broken targets
            bad_targets = [np.array([np.nan]), np.array([np.inf, 1.0]), np.zeros((2, 2)), np.array([])]
            targets = bad_targets[int(rng.integers(len(bad_targets)))]
            yield protocol.encode(
                protocol.message(
                    "command",
                    int(rng.integers(1, 10**6)),
                    time.monotonic(),
                    session=session,
                    mode=str(rng.choice(["position", "velocity", "torque", "nope"])),
                    joints=["joint_1"],
                    targets=targets,
                )
            )
        elif choice == 4:  # random field values for every message type
            msg = {"v": 1, "type": str(rng.choice(kinds)), "seq": values[int(rng.integers(len(values)))], "t": 0.0}
            for key in ("session", "mode", "joints", "targets", "role", "names", "gripper", "base_twist"):
                if rng.random() < 0.5:
                    msg[key] = values[int(rng.integers(len(values)))]
            yield msgpack.packb(msg)
        elif choice == 5:
            yield msgpack.packb({"v": int(rng.integers(2, 100)), "type": "command", "seq": i, "t": 0.0})
        elif choice == 6:  # stale and replayed: an old timestamp, or a seq already used
            yield protocol.encode(
                protocol.message(
                    "command",
                    1,
                    time.monotonic() - 10.0,
                    session=session,
                    mode="position",
                    joints=["joint_1"],
                    targets=np.array([1.0]),
                )
            )
        else:
            yield msgpack.packb([rng.random(), {"v": 1}], use_bin_type=True) + rng.bytes(3)


def test_fuzz_ten_thousand_messages_never_crash_or_move(make_server) -> None:
    driver = FakeDriver(4, rate=200)
    server = make_server(driver=driver, watchdog=5.0, controller_timeout=30.0)
    raw = Raw(server.endpoint)
    raw.hello()
    rng = np.random.default_rng(0)
    sent = replies = 0
    start = time.monotonic()
    for frame in _fuzz_frames(rng, raw.session, 10_000):
        raw.sock.send(frame)
        sent += 1
        while raw.sock.poll(0):  # keep the reply queue short
            raw.sock.recv()
            replies += 1
        if sent % 500 == 0:  # bounded back-pressure: let the server catch up
            for _ in range(200):
                if server.stats["received"] >= sent - 50:
                    break
                time.sleep(0.005)
    assert wait_until(lambda: server.stats["received"] >= sent - 1, timeout=30.0)
    while raw.sock.poll(200):
        raw.sock.recv()
        replies += 1
    assert time.monotonic() - start < 60
    assert server._thread.is_alive()
    assert sum(server.drops.values()) >= 0.99 * sent and replies >= 0.99 * sent  # each got an error reply
    assert driver.commands == 0 and np.all(driver.q == 0.0)  # nothing ever reached the robot
    with RemoteRobot(server.endpoint, role="observer") as watcher:  # still serving
        assert watcher.observe().joint_positions.tolist() == [0.0] * 4
    raw.close()


def test_unknown_client_key_gets_nothing(make_server, tmp_path: Path) -> None:
    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    server_public, server_secret = keygen(keys, "server")
    client_public, client_secret = keygen(keys, "client")
    _, stranger_secret = keygen(keys, "stranger")
    allowed.mkdir()
    (allowed / "client.key").write_bytes(client_public.read_bytes())
    server = make_server(secret_key=server_secret, allow=allowed)
    with RemoteRobot(server.endpoint, server_key=server_public, client_key=client_secret) as robot:
        robot.command(Command(targets={"joint_1": 0.1}))
        assert robot.observe().joint_positions.shape == (4,)
    with pytest.raises(BridgeConnectionError, match="allow-list"):
        RemoteRobot(server.endpoint, server_key=server_public, client_key=stranger_secret, timeout=0.5)
    with pytest.raises(BridgeConnectionError):  # no keys at all
        RemoteRobot(server.endpoint, timeout=0.5)
    ctx = zmq.Context()  # a stranger's SUB socket: not one state arrives
    sub = ctx.socket(zmq.SUB)
    from tianji.bridge.auth import load_public, make_client_socket

    make_client_socket(sub, load_public(server_public), stranger_secret)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(server.state_endpoint)
    assert not sub.poll(500)
    ctx.destroy(linger=0)


def test_non_loopback_bind_needs_keys() -> None:
    with pytest.raises(BridgeError, match="CurveZMQ is required"):
        BridgeServer(FakeDriver(2), ServerConfig(bind="tcp://0.0.0.0:0"))  # refused before binding


def test_record_then_replay_gives_the_same_states(make_server, tmp_path: Path) -> None:
    record = tmp_path / "run.mcap"
    server = make_server(driver=FakeDriver(3, rate=200), record=record)
    with RemoteRobot(server.endpoint) as robot:
        for i in range(40):  # bounded motion to record
            robot.command(Command(targets={"joint_1": 0.01 * i, "joint_3": -0.02 * i}))
            time.sleep(0.005)
    server.close()
    recorded = [r.decode() for r in read_recording(record, ["tx/state"])]
    assert len(recorded) > 20 and {f"{r.direction}/{r.kind}" for r in read_recording(record)} >= {
        "tx/spec",
        "rx/command",
        "tx/ack",
    }
    by_stamp = {r["stamp"]: r["q"] for r in recorded}
    replay = make_server(driver=ReplayDriver(record, loop=True))  # loops, so a late subscriber sees every state
    seen: dict[float, np.ndarray] = {}
    with RemoteRobot(replay.endpoint, role="observer") as watcher:
        deadline = time.monotonic() + 10.0
        while set(by_stamp) - set(seen) and time.monotonic() < deadline:
            state = watcher.wait_for_state(watcher.state()["seq"], timeout=2.0)
            seen[state["stamp"]] = state["q"]
    assert set(seen) == set(by_stamp)
    for stamp, q in seen.items():
        np.testing.assert_array_equal(q, by_stamp[stamp])


def test_reconnects_after_server_restart(make_server) -> None:
    first = make_server()
    port = first.port
    robot = RemoteRobot(first.endpoint, timeout=0.3, name="steady")
    robot.command(Command(targets={"joint_1": 0.1}))
    first.close()
    with pytest.raises(BridgeConnectionError):
        for _ in range(50):  # bounded: the loss shows within a few requests
            robot.command(Command(targets={"joint_1": 0.1}))
            time.sleep(0.02)
    second = make_server(bind=f"tcp://127.0.0.1:{port}")
    assert wait_until(lambda: robot.counters["reconnects"] >= 1, timeout=10.0)
    robot.command(Command(targets={"joint_1": 0.2}))
    assert second.controller == "steady"
    robot.close()


def test_cli_serve_keygen_drivers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from tianji.cli_bridge import bridge_app

    runner = CliRunner()
    result = runner.invoke(bridge_app, ["drivers"])
    assert result.exit_code == 0 and "sim" in result.output and "fake" in result.output
    result = runner.invoke(bridge_app, ["keygen", str(tmp_path), "--name", "robot1"])
    assert result.exit_code == 0 and (tmp_path / "robot1.key_secret").is_file()
    with caplog.at_level(logging.INFO):
        result = runner.invoke(
            bridge_app,
            ["serve", "--robot", "fake:3", "--bind", LOCAL, "--duration", "0.3", "--record", str(tmp_path / "s.mcap")],
        )
    assert result.exit_code == 0, result.output
    assert "fake3" in result.output and (tmp_path / "s.mcap").is_file()
    result = runner.invoke(bridge_app, ["serve", "--robot", "nosuch:x", "--bind", LOCAL, "--duration", "0.1"])
    assert result.exit_code == 2 and "Known drivers" in result.output


@pytest.mark.slow
def test_bridge_benchmark_quick_run_completes() -> None:
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "bridge.py"
    spec = importlib.util.spec_from_file_location("bridge_bench", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
