"""RemoteRobot: the controller side of the bridge, a drop-in :class:`~tianji.control.Robot`.

``RemoteRobot("tcp://host:5555")`` says hello (protocol version check, robot spec), sends
commands and waits for their acknowledgement (so bad commands raise the same exceptions as
``SimRobot``: ``InvalidCommandError``, ``UnknownJointError``, and ``SafetyStopError`` while the
e-stop is latched), sends heartbeats so the robot's watchdog stays calm, and reconnects with
exponential backoff when the server stops answering. ``latency()`` gives round-trip statistics.

Threads: a request is sent by the calling thread, which then sleeps in the receive itself, so
the reply wakes exactly that thread. The state stream is read by the thread that asks for a
state (``observe()``, ``state()``, ``wait_for_state()``) and by a background thread every 10 ms
at most (heartbeats, events, counters), never by a thread woken for each state: at 1 kHz that
would put a thread hand-off beside every command's round trip.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from tianji.bridge import auth, protocol
from tianji.bridge.protocol import (
    E_BUSY,
    E_ESTOP,
    E_INVALID,
    E_SAFETY,
    E_STALE,
    E_UNKNOWN_JOINT,
    E_VERSION,
    BridgeConnectionError,
    BridgeError,
    ControllerBusyError,
    VersionMismatchError,
)
from tianji.bridge.recording import Recorder
from tianji.bridge.session import split_endpoint
from tianji.control.errors import InvalidCommandError, RobotClosedError, UnknownJointError
from tianji.control.robot import CameraFrame, Command, Observation, Robot, RobotSpec
from tianji.control.safety import EMERGENCY_STOP, SafetyStopError

log = logging.getLogger(__name__)


class RemoteRobot(Robot):
    """A robot served by ``tianji bridge serve``, driven over ZeroMQ (see ``bridge/PROTOCOL.md``).

    ``role="observer"`` only watches (any number of observers; one controller at a time).
    With CurveZMQ pass ``server_key`` (the server's public ``.key`` file) and ``client_key``
    (this client's ``.key_secret`` file, whose public half is on the server's allow-list).
    ``record`` writes every message to an MCAP file.
    """

    def __init__(
        self,
        endpoint: str = f"tcp://127.0.0.1:{protocol.DEFAULT_PORT}",
        *,
        role: str = "controller",
        name: str | None = None,
        timeout: float = 1.0,
        heartbeat: float = 0.02,
        state_timeout: float = 0.5,
        server_key: str | Path | None = None,
        client_key: str | Path | None = None,
        reconnect: bool = True,
        record: str | Path | None = None,
    ) -> None:
        if role not in protocol.ROLES:
            raise ValueError(f"role must be one of {protocol.ROLES}, got {role!r}")
        if (server_key is None) != (client_key is None):
            raise ValueError("CurveZMQ needs both server_key (server's .key) and client_key (your .key_secret)")
        self.endpoint = endpoint
        self._base, self._port = split_endpoint(endpoint)
        self.role = role
        self.name = name or f"{role}-{os.getpid()}"
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.state_timeout = state_timeout
        self._server_public = auth.load_public(server_key) if server_key else None
        self._client_key = client_key
        self.reconnect_enabled = reconnect
        self.recorder = Recorder(record, "client", endpoint) if record else None
        self.ctx = zmq.Context()
        self._lock = threading.RLock()  # guards the DEALER socket and the request sequence
        self._seq = 0
        self._session: int | None = None
        self._spec: RobotSpec | None = None
        # The state stream is read by whichever thread needs it (observe(), state(), wait_for_state()),
        # in that thread, and by the I/O thread every `_io_period` s: no thread is woken per
        # published state (1 kHz), so a command's reply never waits behind one. _sub_lock guards
        # the SUB socket; the newest state is one tuple (state, local time read), swapped atomically.
        self._sub_lock = threading.Lock()
        self._latest: tuple[dict[str, Any] | None, float] = (None, 0.0)
        self._io_period = min(heartbeat / 2.0, 0.01)
        self._last_request = 0.0
        self._rtts: deque[float] = deque(maxlen=10000)
        self._offset: tuple[float, float] | None = None  # (rtt, server - client clock) of the best sample
        self.events: deque[dict[str, Any]] = deque(maxlen=1000)
        self.counters: Counter[str] = Counter()  # states, dropped_states, stale_rejected, reconnects...
        self._last_state_seq: int | None = None
        self._connected = threading.Event()
        self._closed = False
        self._stop = threading.Event()
        self.welcome: dict[str, Any] = {}
        self.dealer: zmq.Socket | None = None
        self._rcvtimeo = -1
        self.sub: zmq.Socket | None = None
        try:
            self._connect()
            self._io = threading.Thread(target=self._io_loop, name="tianji-remote-robot", daemon=True)
            self._io.start()
            self.wait_for_state(timeout=max(self.timeout, 2.0 / self._spec.control_rate))  # type: ignore[union-attr]
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ interface
    @property
    def spec(self) -> RobotSpec:
        """The robot's spec as the server's safety filter enforces it."""
        assert self._spec is not None
        return self._spec

    @property
    def session(self) -> int | None:
        """The controller session id (None for observers)."""
        return self._session

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        """The latest state (never older than ``state_timeout``); cameras are fetched with a request."""
        self._check_open()
        self._read_states()
        state, received = self._latest
        age = time.monotonic() - received
        if state is None or age > self.state_timeout:
            raise BridgeConnectionError(
                f"no state from the robot at {self.endpoint} for {age:.2f} s (limit {self.state_timeout:g} s):"
                " is `tianji bridge serve` still running and reachable? The robot's watchdog holds it meanwhile."
            )
        obs = protocol.observation_from_wire(state)
        if cameras:
            obs.cameras = self.cameras(cameras)
        return obs

    def command(self, cmd: Command) -> None:
        """Validate locally (same exceptions as SimRobot), send, and wait for the robot's acknowledgement."""
        self._check_open()
        self._need_controller("command")
        fields = protocol.command_to_wire(cmd, self.spec)
        fields["session"] = self._session
        self._call("command", self.timeout, fields)

    def stop(self) -> None:
        """Safe hold on the robot side (hold joint positions, stop the base)."""
        self._check_open()
        self._need_controller("stop")
        self._request("stop", session=self._session)

    def close(self) -> None:
        """Leave (``bye``, so another controller may take over at once) and close the sockets."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._connected.is_set() and self._session is not None:
            try:
                with self._lock:
                    self._send_and_wait("bye", min(self.timeout, 0.5), session=self._session)
            except (BridgeError, zmq.ZMQError):
                pass
        io = getattr(self, "_io", None)
        if io is not None and io is not threading.current_thread():
            io.join(timeout=2.0)
        # a thread in wait_for_state() polls the SUB holding _sub_lock (50 ms at a time): let it go first
        held = self._sub_lock.acquire(timeout=1.0)
        try:
            self.ctx.destroy(linger=0)
        finally:
            if held:
                self._sub_lock.release()
        if self.recorder:
            self.recorder.close()

    # -------------------------------------------------------------- extras
    def emergency_stop(self, reason: str = "client") -> None:
        """Latch the robot's e-stop (any client may); commands then raise SafetyStopError until :meth:`reset`."""
        self._check_open()
        self._request("estop", reason=reason)

    def reset(self) -> None:
        """Clear a latched e-stop (controller only), like ``SafeRobot.reset()``."""
        self._check_open()
        self._need_controller("reset")
        self._request("reset_estop", session=self._session)

    def cameras(self, names: Sequence[str]) -> dict[str, CameraFrame]:
        """Render/capture the named robot cameras (``spec.sensors``) on the robot side."""
        reply = self._request("camera", names=list(names), timeout=max(self.timeout, 5.0))
        return {
            f["name"]: CameraFrame(
                name=f["name"],
                timestamp=f["timestamp"],
                rgb=np.array(f["rgb"]),
                depth=np.array(f["depth"]),
                intrinsics=np.array(f["intrinsics"]),
                pose=np.array(f["pose"]),
            )
            for f in reply["frames"]
        }

    def scenario(self, action: str = "status", since: int = 0, room: bool = False) -> dict[str, Any]:
        """A served scenario's ground truth (``scenario:NAME`` driver); ``action="start"`` starts its clock.

        ``since``: force samples already received; ``room``: also render the room camera. Raises
        :class:`~tianji.bridge.protocol.BridgeError` (code ``unsupported``) when the robot serves none.
        """
        self._check_open()
        fields: dict[str, Any] = {"action": action, "since": int(since), "room": bool(room)}
        if action == "start":
            self._need_controller("start a scenario")
            fields["session"] = self._session
        return self._request("scenario", timeout=max(self.timeout, 5.0), **fields)

    def state(self) -> dict[str, Any] | None:
        """The latest raw state message (fields ``tick``, ``cmd_seq``, ``stopped``, ``estop``, ``controller``...)."""
        self._read_states()
        return self._latest[0]

    def wait_for_state(self, after_seq: int | None = None, timeout: float = 1.0) -> dict[str, Any]:
        """Block until a state newer than ``after_seq`` (any state when None) arrives; returns it."""
        deadline = time.monotonic() + timeout
        self._read_states()
        while True:
            state = self._latest[0]
            if state is not None and (after_seq is None or state["seq"] > after_seq):
                return state
            left = deadline - time.monotonic()
            if left <= 0 or self._closed:
                raise BridgeConnectionError(
                    f"no state from {self.endpoint} within {timeout:g} s; is the server running at that address?"
                )
            # wait on the socket itself (in slices, so a reconnect may replace it); while this thread
            # holds it, it keeps the newest state current for the other threads
            if not self._sub_lock.acquire(timeout=left):
                continue
            try:
                self._drain_sub()
                state = self._latest[0]
                if state is None or (after_seq is not None and state["seq"] <= after_seq):
                    sub = self.sub
                    wait_ms = max(1, min(50, math.ceil((deadline - time.monotonic()) * 1000)))
                    if sub is not None and not self._closed and sub.poll(wait_ms):
                        self._drain_sub()
            except zmq.ZMQError:
                if not self._closed:
                    raise
            finally:
                self._sub_lock.release()

    @property
    def clock_offset(self) -> float | None:
        """Server clock minus this client's clock (s), from the request with the smallest round trip."""
        return None if self._offset is None else self._offset[1]

    def latency(self) -> dict[str, float]:
        """Request round trips (command/heartbeat -> ack), ms: n, p50, p99, max, mean; plus state age and drops."""
        rtts = np.asarray(self._rtts, dtype=float) * 1000.0
        out = {"n": float(rtts.size)}
        if rtts.size:
            p50, p99 = np.percentile(rtts, [50, 99])
            out.update(p50_ms=float(p50), p99_ms=float(p99), max_ms=float(rtts.max()), mean_ms=float(rtts.mean()))
        state, received = self._latest
        if state is not None:
            out["state_age_ms"] = (time.monotonic() - received) * 1000.0
        out["dropped_states"] = float(self.counters["dropped_states"])
        out["clock_offset_ms"] = float("nan") if self._offset is None else self._offset[1] * 1000.0
        return out

    # ------------------------------------------------------------ internals
    def _check_open(self) -> None:
        if self._closed:
            raise RobotClosedError(f"RemoteRobot({self.endpoint!r}) was closed; create a new one")

    def _need_controller(self, what: str) -> None:
        if self.role != "controller":
            raise BridgeError(f"an observer cannot {what}; connect with role='controller'", protocol.E_NOT_CONTROLLER)

    def _open_sockets(self) -> None:
        self.dealer = self.ctx.socket(zmq.DEALER)
        self._rcvtimeo = -1  # the socket's RCVTIMEO (ms), set by _exchange
        self.dealer.linger = 0
        self.dealer.routing_id = b"tj-" + os.urandom(8)
        self.dealer.sndhwm = 100
        if self._server_public is not None:
            auth.make_client_socket(self.dealer, self._server_public, self._client_key)  # type: ignore[arg-type]
        self.dealer.connect(f"{self._base}:{self._port}")

    def _connect(self, resume: int | None = None) -> None:
        """Hello -> welcome on a fresh DEALER; then (re)open the state SUB socket."""
        with self._lock:
            if self.dealer is not None:
                self.dealer.close(linger=0)
            self._open_sockets()
            try:
                welcome = self._send_and_wait(
                    "hello", self.timeout, role=self.role, client=self.name, resume=resume, wall_time=time.time()
                )
            except BridgeConnectionError:
                hint = (
                    " With CurveZMQ, check that server_key is the server's public key and that this client's"
                    " public key is on the server's allow-list."
                    if self._server_public is not None
                    else ""
                )
                raise BridgeConnectionError(
                    f"no answer from a tianji bridge at {self.endpoint} within {self.timeout:g} s: start one with"
                    f" `tianji bridge serve`, or check the address and port.{hint}"
                ) from None
            self.welcome = welcome
            self._spec = protocol.spec_from_wire(welcome["robot"])
            self._session = welcome.get("session")
        sub = self.ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = 1000
        if self._server_public is not None:
            auth.make_client_socket(sub, self._server_public, self._client_key)  # type: ignore[arg-type]
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"{self._base}:{int(welcome['state_port'])}")
        with self._sub_lock:
            if self.sub is not None:
                self.sub.close(linger=0)
            self.sub = sub
            self._last_state_seq = None
        self._connected.set()

    def _request(self, kind: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        return self._call(kind, timeout or self.timeout, fields)

    def _call(self, kind: str, timeout: float, fields: dict[str, Any]) -> dict[str, Any]:
        if not self._connected.is_set():
            raise BridgeConnectionError(
                f"connection to {self.endpoint} lost; reconnecting in the background (the robot's watchdog"
                " holds it meanwhile). Retry shortly."
            )
        with self._lock:
            try:
                return self._exchange(kind, timeout, fields)
            except BridgeConnectionError:
                self._connected.clear()  # the I/O thread reconnects
                raise

    def _send_and_wait(self, kind: str, timeout: float, **fields: Any) -> dict[str, Any]:
        return self._exchange(kind, timeout, fields)

    def _exchange(self, kind: str, timeout: float, fields: dict[str, Any]) -> dict[str, Any]:
        """One request, one reply (matched by ``re``); raises the exception an error reply maps to.

        The calling thread sends and then sleeps in a blocking receive (``RCVTIMEO``): the reply's
        arrival wakes this thread directly, with no poll-then-receive round through the GIL.
        """
        self._seq += 1
        seq = self._seq
        t0 = time.monotonic()
        frame = protocol.encode({"v": protocol.PROTOCOL_VERSION, "type": kind, "seq": seq, "t": t0, **fields})
        dealer = self.dealer
        assert dealer is not None
        try:
            dealer.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            raise BridgeConnectionError(f"cannot send to {self.endpoint}: send queue full (server gone?)") from None
        if self.recorder:
            self.recorder.write("tx", kind, frame, seq)
        self._last_request = t0
        deadline = t0 + timeout
        wait_ms = max(1, math.ceil(timeout * 1000))
        while True:
            if wait_ms != self._rcvtimeo:  # a socket option call only when the wait changes
                dealer.rcvtimeo = self._rcvtimeo = wait_ms
            try:
                raw = dealer.recv()
            except zmq.Again:
                raise BridgeConnectionError(f"no reply from {self.endpoint} to '{kind}' within {timeout:g} s") from None
            t3 = time.monotonic()
            try:
                reply = protocol.decode(raw)
            except VersionMismatchError:
                raise
            except BridgeError as exc:
                self.counters["bad_replies"] += 1
                log.warning("ignoring a malformed reply from the bridge: %s", exc)
                reply = None
            if reply is not None:
                if self.recorder:
                    self.recorder.write("rx", reply["type"], raw, reply["seq"])
                if reply.get("re") == seq:
                    self._note_timing(t0, t3, reply)
                    if reply["type"] == "error":
                        self._raise(reply, kind)
                    return reply
                # else: a late reply to an earlier request that timed out
            left = deadline - time.monotonic()
            if left <= 0:
                raise BridgeConnectionError(f"no reply from {self.endpoint} to '{kind}' within {timeout:g} s")
            wait_ms = max(1, math.ceil(left * 1000))

    def _note_timing(self, t0: float, t3: float, reply: dict[str, Any]) -> None:
        rtt = t3 - t0
        self._rtts.append(rtt)
        t1 = reply.get("t_recv")
        if isinstance(t1, float):
            offset = ((t1 - t0) + (float(reply["t"]) - t3)) / 2.0
            if self._offset is None or rtt <= self._offset[0] * 1.5:
                self._offset = (min(rtt, self._offset[0]) if self._offset else rtt, offset)

    def _raise(self, reply: dict[str, Any], kind: str) -> None:
        code, message = reply.get("code"), str(reply.get("message", "")) + f" [{reply.get('code')}]"
        self.counters[f"error_{code}"] += 1
        if code == E_STALE:  # transient: the next command supersedes it
            log.warning("bridge dropped a stale %s: %s", kind, message)
            return
        if code == E_UNKNOWN_JOINT:
            raise UnknownJointError(message)
        if code == E_INVALID:
            raise InvalidCommandError(message)
        if code == E_ESTOP:
            raise SafetyStopError(message, EMERGENCY_STOP)
        if code == E_SAFETY:
            raise SafetyStopError(message, "safety_stop")
        if code == E_BUSY:
            raise ControllerBusyError(message)
        if code == E_VERSION:
            raise VersionMismatchError(
                f"the server speaks bridge protocol {reply.get('server_version')}, this client"
                f" {protocol.PROTOCOL_VERSION}: install matching tianji versions on both sides"
            )
        raise BridgeError(message, str(code))

    # ------------------------------------------------------------ I/O thread
    def _io_loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            if not self._connected.is_set():
                if not self.reconnect_enabled:
                    self._stop.wait(0.05)
                    continue
                try:
                    self.counters["reconnect_attempts"] += 1
                    self._connect(resume=self._session)
                    self.counters["reconnects"] += 1
                    log.info("reconnected to %s", self.endpoint)
                    backoff = 0.05
                except (BridgeError, zmq.ZMQError) as exc:
                    log.info("reconnect to %s failed (%s); next try in %.2f s", self.endpoint, exc, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2.0, 2.0)
                continue
            try:
                self._read_states()
            except zmq.ZMQError:
                if self._stop.is_set():
                    return
                raise
            now = time.monotonic()
            if now - self._last_request >= self.heartbeat and self._lock.acquire(blocking=False):
                try:
                    self._send_and_wait("heartbeat", self.timeout, session=self._session)
                except BridgeConnectionError:
                    log.warning("bridge at %s stopped answering; reconnecting", self.endpoint)
                    self._connected.clear()
                except BridgeError as exc:  # e.g. lost the controller session after a long silence
                    log.warning("bridge heartbeat refused: %s", exc)
                    self._connected.clear()
                finally:
                    self._lock.release()
            self._stop.wait(self._io_period)

    def _read_states(self) -> None:
        """Read what the state stream holds, unless another thread is reading it right now (then it is current)."""
        if self._sub_lock.acquire(blocking=False):
            try:
                self._drain_sub()
            except zmq.ZMQError:
                if not self._closed:
                    raise
            finally:
                self._sub_lock.release()

    def _drain_sub(self) -> None:
        """Read every message waiting on the SUB socket, keeping the newest state and every event (holds _sub_lock)."""
        sub = self.sub
        if sub is None:
            return
        latest = None
        events, pollin = zmq.EVENTS, zmq.POLLIN
        for _ in range(1000):
            if not sub.get(events) & pollin:
                break
            raw = sub.recv(zmq.NOBLOCK)
            try:
                msg = protocol.decode(raw)
            except BridgeError:
                self.counters["bad_states"] += 1
                continue
            if self.recorder:
                self.recorder.write("rx", msg["type"], raw, msg["seq"])
            last = self._last_state_seq  # the PUB stream has its own sequence: a gap is a lost message
            if last is not None and msg["seq"] > last + 1:
                self.counters["dropped_states"] += msg["seq"] - last - 1
            self._last_state_seq = msg["seq"]
            if msg["type"] == "state":
                self.counters["states"] += 1
                latest = msg
            elif msg["type"] == "event":
                self.events.append(msg)
        if latest is not None:
            self._latest = (latest, time.monotonic())

    def __repr__(self) -> str:
        name = self._spec.name if self._spec else "?"
        return f"RemoteRobot({self.endpoint!r}, robot={name!r}, role={self.role!r})"
