"""Server configuration and per-controller session state of the bridge (see ``bridge/PROTOCOL.md``)."""

from __future__ import annotations

import logging
import math
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zmq
from zmq.auth.thread import ThreadAuthenticator

from tianji.bridge import auth, protocol
from tianji.bridge.protocol import BridgeError
from tianji.control.safety import SafetyLimits

log = logging.getLogger(__name__)

DRIFT_ALLOWANCE = 1e-4  # s/s: how fast the one-way delay baseline may creep up (clock drift, 100 ppm)


@dataclass(frozen=True)
class ServerConfig:
    """How the server runs. Times in seconds; ``rate`` None means the robot's own ``spec.control_rate``."""

    bind: str = f"tcp://127.0.0.1:{protocol.DEFAULT_PORT}"
    rate: float | None = None
    watchdog: float = 0.1  # no valid command/heartbeat from the controller for this long -> safe stop
    max_age: float = 0.05  # commands delayed more than this beyond the best seen delay are stale
    controller_timeout: float = 1.0  # a silent controller loses control after this long
    secret_key: str | Path | None = None  # server's '.key_secret' file: turns CURVE on
    allow: str | Path | None = None  # directory of allowed client public '.key' files
    insecure: bool = False  # allow a non-loopback bind without CURVE (loud warning)
    record: str | Path | None = None  # MCAP file of every message
    safety: SafetyLimits | None = None
    max_request_bytes: int = protocol.MAX_REQUEST_BYTES

    def __post_init__(self) -> None:
        for name in ("watchdog", "max_age", "controller_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"ServerConfig.{name} must be a positive number of seconds, got {value}")
        if self.rate is not None and not 0 < self.rate <= 2000:
            raise ValueError(f"rate must be in (0, 2000] Hz, got {self.rate}")


class DelayTracker:
    """One-way delay of a peer's messages relative to the smallest seen: works with unsynchronised clocks."""

    def __init__(self) -> None:
        self.base: float | None = None
        self.updated = 0.0

    def age(self, now: float, sent: float) -> float:
        delay = now - sent
        if self.base is None:
            self.base, self.updated = delay, now
            return 0.0
        self.base = min(self.base + DRIFT_ALLOWANCE * (now - self.updated), delay)
        self.updated = now
        return delay - self.base


@dataclass
class ControllerSession:
    identity: bytes
    session: int
    name: str
    since: float
    last_valid: float
    last_seq: int
    delay: DelayTracker
    tripped: bool = False  # the watchdog stopped the robot; the next command resumes
    commanded: bool = False  # has sent a command since the last stop: keep the filter's ramps going


def split_endpoint(bind: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (``tcp://HOST``, PORT); PORT 0 picks free ports."""
    parts = urlsplit(bind)
    if parts.scheme != "tcp" or parts.port is None:
        raise ValueError(f"bind address {bind!r} must look like tcp://HOST:PORT, e.g. tcp://127.0.0.1:5555")
    host = parts.hostname or "*"
    host = f"[{host}]" if ":" in host else host
    return f"tcp://{host}", parts.port


@dataclass
class ServerSockets:
    """The server's bound sockets (ROUTER for requests, PUB for state) and their addresses."""

    ctx: zmq.Context
    auth: ThreadAuthenticator | None
    router: zmq.Socket
    pub: zmq.Socket
    curve: bool
    port: int
    state_port: int
    endpoint: str  # where a client on this host connects
    state_endpoint: str


def free_port_pair(host: str = "127.0.0.1", tries: int = 50) -> int:
    """A port P with P and P + 1 both free on ``host``: the server binds requests on P, state on P + 1.

    For launching a server in another process on a known endpoint (``--bind tcp://host:P``);
    in-process servers can bind port 0 instead. The ports can still be taken before that
    process binds them, so callers retry on a bind error.
    """
    for _ in range(tries):
        with socket.socket() as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            with socket.socket() as second:
                try:
                    second.bind((host, port + 1))
                except OSError:
                    continue
            return port
    raise BridgeError(f"no free pair of adjacent ports on {host} after {tries} tries")


def open_sockets(cfg: ServerConfig) -> ServerSockets:
    """Bind ROUTER on the bind port and PUB on the next (CURVE when configured; refused off loopback without it)."""
    base, port = split_endpoint(cfg.bind)
    curve = cfg.secret_key is not None
    if not curve and not auth.is_loopback(cfg.bind):
        if not cfg.insecure:
            raise BridgeError(
                f"binding {cfg.bind} exposes the robot beyond this machine, so CurveZMQ is required: pass"
                " secret_key (--keys server.key_secret) and allow (--allow DIR of client .key files);"
                " create keys with `tianji bridge keygen`. Use --insecure only on an isolated network."
            )
        log.warning(
            "!!! INSECURE: bridge on %s WITHOUT CurveZMQ: anyone on the network can read the state and"
            " command the robot. Use --keys/--allow. !!!",
            cfg.bind,
        )
    if curve and cfg.allow is None:
        raise BridgeError("CurveZMQ needs an allow-list: pass allow (--allow DIR of client public .key files)")
    ctx = zmq.Context()
    authenticator = auth.start_authenticator(ctx, cfg.allow) if curve else None  # type: ignore[arg-type]
    try:
        router = ctx.socket(zmq.ROUTER)
        pub = ctx.socket(zmq.PUB)
        for sock in (router, pub):
            sock.linger = 0
            if curve:
                auth.make_server_socket(sock, cfg.secret_key)  # type: ignore[arg-type]
        router.rcvhwm = 1000
        router.sndhwm = 1000
        router.maxmsgsize = max(cfg.max_request_bytes * 4, 1 << 20)  # hard cap; the soft one replies
        pub.sndhwm = 100  # a slow subscriber loses its messages, the loop never waits
        if port == 0:
            port = router.bind_to_random_port(base)
            state_port = pub.bind_to_random_port(base)
        else:
            router.bind(f"{base}:{port}")
            state_port = port + 1
            pub.bind(f"{base}:{state_port}")
    except zmq.ZMQError as exc:
        ctx.destroy(linger=0)
        if authenticator:
            authenticator.stop()
        raise BridgeError(
            f"cannot bind {cfg.bind} (and the state port after it): {exc}; pick another --bind port"
        ) from exc
    host = base.split("://", 1)[1]
    connect_host = "127.0.0.1" if host in ("*", "0.0.0.0") else host
    return ServerSockets(
        ctx,
        authenticator,
        router,
        pub,
        curve,
        port,
        state_port,
        f"tcp://{connect_host}:{port}",
        f"tcp://{connect_host}:{state_port}",
    )
