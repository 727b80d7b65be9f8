"""The robot-side bridge server: serves any Robot (a hardware Driver, or a SimRobot) over ZeroMQ.

One thread owns the robot and both sockets. Every control period it checks the watchdog,
applies the controller's latest command through :class:`~tianji.control.SafeRobot` (or an
empty command, so the filter's ramps continue), ticks the driver (steps a simulation) and
publishes the state. Between ticks it answers requests on the ROUTER socket at once.
See ``bridge/PROTOCOL.md`` for the messages and what happens in each failure case.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from tianji.bridge import protocol
from tianji.bridge.drivers import Driver
from tianji.bridge.protocol import (
    E_BUSY,
    E_DUPLICATE,
    E_ESTOP,
    E_MALFORMED,
    E_NOT_CONTROLLER,
    E_OUT_OF_ORDER,
    E_SAFETY,
    E_STALE,
    E_UNKNOWN_TYPE,
    ROLES,
    BridgeError,
    ProtocolError,
)
from tianji.bridge.recording import Recorder
from tianji.bridge.session import ControllerSession, DelayTracker, ServerConfig, open_sockets
from tianji.control.errors import InvalidCommandError
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Command, ControlMode, Robot
from tianji.control.safety import SafeRobot, SafetyLimits, SafetyStopError

log = logging.getLogger(__name__)

MAX_DRAIN = 200  # requests handled between two ticks at most, so a flood cannot starve the control loop


class BridgeServer:
    """Serves ``robot`` on ``config.bind`` (commands, ROUTER) and the next port (state, PUB).

    ``robot`` is a :class:`Driver` (connected here, disconnected by :meth:`close`) or any
    connected Robot plus an optional ``stepper`` called once per tick (``world.step`` for a
    SimRobot you built yourself). ``kinematics`` (default: the driver's) serves the safety
    filter's workspace box (``config.safety.workspace``). :meth:`start` runs it in a thread; :meth:`serve` blocks.
    """

    def __init__(
        self,
        robot: Robot,
        config: ServerConfig | None = None,
        stepper: Callable[[], None] | None = None,
        kinematics: Kinematics | None = None,
    ) -> None:
        self.config = cfg = config or ServerConfig()
        self.robot = robot
        self.stepper = stepper
        self._owns_driver = isinstance(robot, Driver)
        if self._owns_driver:
            robot.connect()  # type: ignore[union-attr]
        try:
            spec = robot.spec
            self.rate = float(cfg.rate or spec.control_rate)
            self.period = 1.0 / self.rate
            limits = dataclasses.replace(cfg.safety or SafetyLimits(), dt=self.period)
            if limits.workspace is not None and kinematics is None and isinstance(robot, Driver):
                kinematics = robot.kinematics()
            if limits.workspace is not None and kinematics is None:
                raise BridgeError(
                    "the safety filter's workspace box needs kinematics, and this driver gives none: pass"
                    " kinematics=Kinematics.for_spec(urdf, spec) to BridgeServer, or serve without a workspace"
                )
            person_force = None
            if isinstance(robot, Driver) and robot.person_force() is not None:
                driver = robot

                def person_force() -> float:
                    return float(driver.person_force() or 0.0)

            self.safe = SafeRobot(robot, limits, kinematics=kinematics, person_force=person_force)
            self._setup_sockets()
        except BaseException:
            if self._owns_driver:
                robot.disconnect()  # type: ignore[union-attr]
            raise
        self.recorder = Recorder(cfg.record, "server", self.endpoint) if cfg.record else None
        self._seq = 0
        self._pub_seq = 0
        self._tick_count = 0
        self._controller: ControllerSession | None = None
        self._pending: list[Command] = []
        self._cmd_seq = -1  # seq of the last command applied
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped_reason: str | None = None  # why the robot is holding: watchdog, stop, controller_left
        self.stats: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()  # rejected or dropped requests by error code
        self.events: deque[dict[str, Any]] = deque(maxlen=1000)
        self.tick_times: deque[float] = deque(maxlen=10000)
        self._busy: deque[tuple[float, float]] = deque(maxlen=16)  # (start, end) of blocking camera renders
        self._handlers: dict[str, Callable[[bytes, dict[str, Any], float], None]] = {
            kind: getattr(self, f"_on_{kind}") for kind in protocol.REQUESTS
        }
        self._closed = False
        if self.recorder:
            self._record("tx", "spec", protocol.encode(self._msg("spec", robot=protocol.spec_to_wire(self.safe.spec))))

    # ---------------------------------------------------------------- set-up
    def _setup_sockets(self) -> None:
        sockets = open_sockets(self.config)
        self.ctx, self.authenticator, self.router, self.pub = sockets.ctx, sockets.auth, sockets.router, sockets.pub
        self.curve, self.port, self.state_port = sockets.curve, sockets.port, sockets.state_port
        self.endpoint, self.state_endpoint = sockets.endpoint, sockets.state_endpoint

    def start(self) -> BridgeServer:
        """Run the server in a background thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self.serve, name="tianji-bridge-server", daemon=True)
        self._thread.start()
        return self

    def serve(self, duration: float | None = None) -> None:
        """Run the control loop until :meth:`request_stop`, :meth:`close` or ``duration`` seconds."""
        # wait on the ROUTER's file descriptor with select(): sub-millisecond timeouts without busy polling
        fd = self.router.getsockopt(zmq.FD)
        start = next_tick = time.monotonic()
        failures = 0
        log.info(
            "bridge serving '%s' on %s (state %s) at %.0f Hz",
            self.safe.spec.name,
            self.endpoint,
            self.state_endpoint,
            self.rate,
        )
        idle = False  # the ROUTER said "nothing to read" and nothing has used it since
        while not self._stop.is_set():
            now = time.monotonic()
            if duration is not None and now - start >= duration:
                break
            self._check_watchdog(now)
            if now >= next_tick:
                try:
                    self._tick(now)
                    failures = 0
                except Exception as exc:
                    failures += 1
                    self.stats["tick_errors"] += 1
                    log.exception("bridge tick failed (%d in a row)", failures)
                    self._event("error", detail=f"{type(exc).__name__}: {exc}")
                    if failures >= 50:
                        self._safe_stop("error")
                        raise
                next_tick += self.period
                if time.monotonic() - next_tick > self.period:  # a whole period behind: drop the lost ticks
                    self.stats["overruns"] += 1
                    next_tick = time.monotonic()
                continue
            # zmq's fd is edge-triggered: it signals new activity, not "readable", so the socket is
            # asked (zmq.EVENTS, inside _drain) before sleeping on the fd. _drain ends with that
            # answer "empty" and nothing but _drain uses the ROUTER, so then the loop goes straight
            # back to sleep: after an ack, this thread gets off the cores at once.
            if not idle:
                idle = not self._drain()
                continue
            wake = next_tick
            c = self._controller
            if c is not None and not c.tripped:
                wake = min(wake, c.last_valid + self.config.watchdog)
            select.select([fd], [], [], min(max(0.0, wake - time.monotonic()), 0.05))
            idle = False  # woken by the fd (or the timeout): ask the socket

    def request_stop(self) -> None:
        """Ask :meth:`serve` to return (thread- and signal-safe)."""
        self._stop.set()

    def close(self) -> None:
        """Stop serving, hold the robot, disconnect the driver, close sockets and the recording."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        try:
            self.safe.stop()
        except Exception:
            log.exception("robot stop() failed while closing the bridge")
        if self._owns_driver:
            try:
                self.robot.disconnect()  # type: ignore[attr-defined]
            except Exception:
                log.exception("driver disconnect() failed")
        if self.authenticator:
            self.authenticator.stop()
        self.ctx.destroy(linger=0)
        if self.recorder:
            self.recorder.close()

    def __enter__(self) -> BridgeServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def emergency_stop(self, reason: str = "server") -> None:
        """Latch the e-stop from the robot side (operator button, driver fault). Call from the server thread."""
        self.safe.emergency_stop(reason)
        self._pending.clear()
        self._event("estop", reason=reason)

    @property
    def controller(self) -> str | None:
        """Name of the client in control, or None."""
        return self._controller.name if self._controller else None

    # ----------------------------------------------------------------- tick
    def _tick(self, now: float) -> None:
        self._tick_count += 1
        self.tick_times.append(now)
        c = self._controller
        if c is not None and not c.tripped and self.safe.stopped is None:
            cmds = self._merge(self._pending) if self._pending else ([Command()] if c.commanded else [])
            self._pending.clear()
            for cmd in cmds:
                try:
                    self.safe.command(cmd)
                except (SafetyStopError, InvalidCommandError) as exc:
                    self.stats["filter_rejected"] += 1
                    self._event("command_rejected", detail=str(exc))
        if isinstance(self.robot, Driver):
            self.robot.tick()
        elif self.stepper is not None:
            self.stepper()
        obs = self.safe.observe()
        self._publish(
            "state",
            **protocol.observation_to_wire(obs),
            tick=self._tick_count,
            cmd_seq=self._cmd_seq,
            stopped=self._stopped_reason,
            estop=self.safe.stopped,
            controller=c.name if c else None,
        )

    def _check_watchdog(self, now: float) -> None:
        """Safe stop as soon as the controller has been silent for ``watchdog`` s; release it after the timeout."""
        c = self._controller
        if c is None:
            return
        silent = now - c.last_valid
        if silent > self.config.controller_timeout:
            self._release("timeout", f"silent for {silent:.3f} s")
        elif silent > self.config.watchdog and not c.tripped:
            c.tripped, c.commanded = True, False
            self._pending.clear()
            self._safe_stop("watchdog")
            self.stats["watchdog_stops"] += 1
            self._event("watchdog_stop", t_last=c.last_valid, silent=silent)
            log.warning("bridge watchdog: no command or heartbeat for %.0f ms: robot stopped", silent * 1000)

    def _merge(self, cmds: list[Command]) -> list[Command]:
        """Commands received within one period -> at most one per mode (later values win), so rate limits hold."""
        if len(cmds) == 1:
            return list(cmds)
        names = self.robot.spec.joint_names
        merged: dict[ControlMode, dict[str, Any]] = {}
        for cmd in cmds:
            slot = merged.setdefault(ControlMode(cmd.mode), {"targets": {}})
            if isinstance(cmd.targets, dict):
                slot["targets"].update(cmd.targets)
            elif cmd.targets is not None:
                slot["targets"].update(zip(names, np.asarray(cmd.targets, dtype=float).tolist(), strict=True))
            for key in ("base_twist", "gripper"):
                if getattr(cmd, key) is not None:
                    slot[key] = getattr(cmd, key)
        self.stats["coalesced"] += len(cmds) - 1
        return [
            Command(mode, slot["targets"] or None, base_twist=slot.get("base_twist"), gripper=slot.get("gripper"))
            for mode, slot in merged.items()
        ]

    def _safe_stop(self, reason: str) -> None:
        try:
            self.safe.stop()
        except Exception:
            log.exception("robot stop() failed")
        self._stopped_reason = reason

    def _release(self, why: str, detail: str = "") -> None:
        c = self._controller
        if c is None:
            return
        self._controller = None
        self._pending.clear()
        self._safe_stop("controller_left")
        self._event("controller_left", client=c.name, why=why, detail=detail)
        log.info("bridge controller '%s' left (%s)", c.name, why)

    # ------------------------------------------------------------- messages
    def _msg(self, kind: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        return protocol.message(kind, self._seq, time.monotonic(), **fields)

    def _record(self, direction: str, kind: str, frame: bytes, seq: int = 0) -> None:
        if self.recorder:
            self.recorder.write(direction, kind, frame, seq)

    def _publish(self, kind: str, **fields: Any) -> None:
        self._pub_seq += 1  # the PUB stream has its own sequence, so subscribers can count lost messages
        msg = protocol.message(kind, self._pub_seq, time.monotonic(), **fields)
        frame = protocol.encode(msg)
        try:
            self.pub.send(frame, zmq.NOBLOCK)
            self.stats[f"published_{kind}"] += 1
        except zmq.Again:
            self.stats["publish_dropped"] += 1
        self._record("tx", kind, frame, msg["seq"])

    def _event(self, name: str, **fields: Any) -> None:
        event = {"event": name, "t_server": time.monotonic(), **fields}
        self.events.append(event)
        self._publish("event", **event)

    def _reply(self, identity: bytes, kind: str, **fields: Any) -> None:
        self._seq += 1
        msg = {"v": protocol.PROTOCOL_VERSION, "type": kind, "seq": self._seq, "t": time.monotonic(), **fields}
        frame = protocol.encode(msg)
        try:  # two sends, not send_multipart: this is every ack's path and the sugar costs microseconds
            self.router.send(identity, zmq.SNDMORE | zmq.NOBLOCK)
            self.router.send(frame, zmq.NOBLOCK)
        except zmq.ZMQError:
            self.stats["reply_dropped"] += 1
        if self.recorder:
            self._record("tx", kind, frame, msg["seq"])

    def _error(self, identity: bytes, code: str, message: str, re: int | None = None) -> None:
        self.drops[code] += 1
        self._reply(identity, "error", re=re, code=code, message=message, server_version=protocol.PROTOCOL_VERSION)

    def _drain(self) -> bool:
        """Handle the waiting requests (at most MAX_DRAIN); True when some may still be waiting."""
        router, events, pollin, rcvmore, noblock = self.router, zmq.EVENTS, zmq.POLLIN, zmq.RCVMORE, zmq.NOBLOCK
        for _ in range(MAX_DRAIN):
            # ask before each receive: cheaper than a receive that fails with zmq.Again, and after a
            # reply (a send on this socket) the answer is also what keeps the edge-triggered fd honest
            if not router.get(events) & pollin:
                return False
            frames = [router.recv(noblock)]
            while router.get(rcvmore):
                frames.append(router.recv(noblock))
            self._handle(frames)
        return True

    def _handle(self, frames: list[bytes]) -> None:
        now = time.monotonic()
        identity = frames[0]
        if len(frames) != 2:
            self.stats["received"] += 1
            self._record("rx", "invalid", b"".join(frames[1:]))
            self._error(identity, E_MALFORMED, f"a request is one frame, got {len(frames) - 1}")
            return
        frame = frames[1]
        try:
            msg = protocol.decode(frame, self.config.max_request_bytes)
        except BridgeError as exc:
            self.stats["received"] += 1
            self._record("rx", "invalid", frame[: self.config.max_request_bytes])
            self._error(identity, exc.code, str(exc))
            return
        kind = msg["type"]
        handler = self._handlers.get(kind)
        if self.recorder:
            self._record("rx", kind if handler is not None else "invalid", frame, msg["seq"])
        if handler is None:
            self._error(
                identity, E_UNKNOWN_TYPE, f"unknown request type {kind!r}; known: {protocol.REQUESTS}", msg["seq"]
            )
        else:
            try:
                handler(identity, msg, now)
            except (BridgeError, InvalidCommandError, SafetyStopError) as exc:
                code = E_SAFETY if isinstance(exc, SafetyStopError) else protocol.error_code(exc)
                self._error(identity, code, str(exc), msg["seq"])
            except Exception as exc:  # a bug or a driver fault must not kill the control loop
                log.exception("bridge request %r failed", kind)
                self._error(identity, protocol.E_INTERNAL, f"{type(exc).__name__}: {exc}", msg["seq"])
        self.stats["received"] += 1  # bookkeeping after the reply is on its way

    def _ack(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        self._reply(identity, "ack", re=msg["seq"], t_recv=now, tick=self._tick_count)

    def _session_check(self, identity: bytes, msg: dict[str, Any], now: float) -> ControllerSession:
        """The controller that sent ``msg``, after session, order and staleness checks."""
        c = self._controller
        session = msg.get("session")
        if c is None or session != c.session or identity != c.identity:
            who = f"client '{c.name}'" if c else "nobody"
            raise BridgeError(
                f"this request needs the controller's session, and {who} is in control; send a"
                " 'hello' with role 'controller' first (or 'resume' your session after a reconnect)",
                E_NOT_CONTROLLER,
            )
        seq = msg["seq"]
        if seq <= c.last_seq:
            code, what = (E_DUPLICATE, "a duplicate") if seq == c.last_seq else (E_OUT_OF_ORDER, "out of order")
            raise BridgeError(f"request seq {seq} is {what} (last accepted {c.last_seq}); dropped", code)
        age = c.delay.age(now, float(msg["t"]))
        if self._busy:  # the time this thread could not read it is not the link's delay
            age -= self._busy_overlap(now - age, now)
        if age > self.config.max_age:
            c.last_seq = seq
            raise BridgeError(
                f"request is stale: delayed {age * 1000:.1f} ms more than the fastest seen (bound"
                f" {self.config.max_age * 1000:.0f} ms); dropped, send a fresh one",
                E_STALE,
            )
        c.last_seq = seq
        return c

    def _busy_overlap(self, start: float, end: float) -> float:
        """Seconds of [start, end] this thread spent blocked serving camera frames (the latest intervals)."""
        return sum(max(0.0, min(end, b) - max(start, a)) for a, b in self._busy)

    # ------------------------------------------------------------- requests
    def _on_hello(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        role = protocol.field(msg, "role", str)
        if role not in ROLES:
            raise ProtocolError(f"role must be one of {ROLES}, got {role!r}")
        name = str(protocol.field(msg, "client", str, optional=True) or identity.hex())
        session = None
        if role == "controller":
            c = self._controller
            resume = msg.get("resume")
            if c is not None and not (resume is not None and resume == c.session) and identity != c.identity:
                raise BridgeError(
                    f"robot '{self.safe.spec.name}' is already controlled by client '{c.name}'; only one controller"
                    f" at a time. Retry once it has left or been silent for {self.config.controller_timeout:g} s,"
                    " or connect as an observer",
                    E_BUSY,
                )
            if c is not None and resume == c.session:
                c.identity, c.name, c.last_valid, c.last_seq = identity, name, now, msg["seq"]
                c.delay = DelayTracker()
                c.delay.age(now, float(msg["t"]))
                session = c.session
                self._event("controller_resumed", client=name)
            else:
                session = int.from_bytes(os.urandom(6), "little")
                tracker = DelayTracker()
                tracker.age(now, float(msg["t"]))
                self._controller = ControllerSession(identity, session, name, now, now, msg["seq"], tracker)
                self._event("controller_joined", client=name)
                log.info("bridge controller '%s' joined", name)
        self._reply(
            identity,
            "welcome",
            re=msg["seq"],
            t_recv=now,
            session=session,
            role=role,
            robot=protocol.spec_to_wire(self.safe.spec),
            rate=self.rate,
            state_port=self.state_port,
            watchdog=self.config.watchdog,
            max_age=self.config.max_age,
            controller_timeout=self.config.controller_timeout,
            estop=self.safe.stopped,
            server="tianji-bridge",
        )

    def _on_command(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        c = self._session_check(identity, msg, now)
        if self.safe.stopped is not None:
            raise BridgeError(f"emergency stop is latched ({self.safe.stopped}); send 'reset_estop' first", E_ESTOP)
        cmd = protocol.command_from_wire(msg, self.robot.spec)  # raises before anything is queued
        c.last_valid = now
        resumed, c.tripped = c.tripped, False
        c.commanded = True
        self._stopped_reason = None
        self._pending.append(cmd)
        self._cmd_seq = msg["seq"]
        self._ack(identity, msg, now)  # the command is queued: acknowledge it before publishing the event
        if resumed:
            self._event("watchdog_resumed", client=c.name)

    def _on_heartbeat(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        if msg.get("session") is not None:
            self._session_check(identity, msg, now).last_valid = now
        self._ack(identity, msg, now)

    def _on_stop(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        c = self._session_check(identity, msg, now)
        c.last_valid, c.commanded = now, False
        self._pending.clear()
        self._safe_stop("stop")
        self._ack(identity, msg, now)

    def _on_estop(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        """Anyone connected may press the e-stop; no session needed."""
        reason = str(msg.get("reason") or "client")
        self.emergency_stop(reason)
        if self._controller is not None:
            self._controller.commanded = False
        self._ack(identity, msg, now)

    def _on_reset_estop(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        c = self._session_check(identity, msg, now)
        self.safe.reset()  # raises SafetyStopError while a person-contact force is too high
        c.last_valid, c.commanded = now, False
        self._event("estop_reset", client=c.name)
        self._ack(identity, msg, now)

    def _on_bye(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        c = self._controller
        if c is not None and msg.get("session") == c.session and identity == c.identity:
            self._release("bye")
        self._ack(identity, msg, now)

    def _blocking(self, started: float) -> None:
        """Note that this thread was blocked since ``started`` (rendering), so that time counts as listening.

        A simulator renders in this thread (0.1-0.3 s for a room): requests wait unread meanwhile. The
        watchdog and the staleness check count only the time spent listening, so a camera request
        does not trip them; simulated time does not advance while rendering either.
        """
        ended = time.monotonic()
        self._busy.append((started, ended))
        c = self._controller
        if c is not None:
            c.last_valid += ended - started

    def _on_camera(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        names = protocol.field(msg, "names", list)
        if not all(isinstance(n, str) for n in names) or len(names) > 8:
            raise ProtocolError("field 'names' must list at most 8 camera names (see robot.sensors)")
        started = time.monotonic()
        obs = self.robot.observe(tuple(names))
        self._blocking(started)
        frames = [
            {
                "name": f.name,
                "timestamp": float(f.timestamp),
                "rgb": np.ascontiguousarray(f.rgb, dtype=np.uint8),
                "depth": np.ascontiguousarray(f.depth, dtype=np.float32),
                "intrinsics": np.asarray(f.intrinsics, dtype=np.float64),
                "pose": np.asarray(f.pose, dtype=np.float64),
            }
            for f in obs.cameras.values()
        ]
        self._reply(identity, "camera_frames", re=msg["seq"], t_recv=now, frames=frames)

    def _on_scenario(self, identity: bytes, msg: dict[str, Any], now: float) -> None:
        """A staged scenario's truth (anyone); ``start`` also starts scenario time (the controller only)."""
        action = protocol.field(msg, "action", str)
        since = protocol.field(msg, "since", int, optional=True) or 0
        room = bool(protocol.field(msg, "room", bool, optional=True))
        if not isinstance(self.robot, Driver):
            raise BridgeError("this server serves a plain robot, with no scenario to report", protocol.E_UNSUPPORTED)
        if action == "start":
            self._session_check(identity, msg, now).last_valid = now
        started = time.monotonic()
        truth = self.robot.scenario_request(action, since=since, room=room)
        self._blocking(started)
        if action == "start":
            self._event("scenario_started", scenario=truth.get("scenario"))
        self._reply(identity, "scenario_state", re=msg["seq"], t_recv=now, **truth)
