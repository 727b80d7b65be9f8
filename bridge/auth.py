"""CurveZMQ keys and authentication for the bridge (pyzmq's own implementation; nothing hand-rolled).

``keygen(dir, name)`` writes ``name.key`` (public, give it to the other side) and
``name.key_secret`` (keep it private). The server loads its secret file and an allow-list
directory of client public ``*.key`` files; pyzmq's ZAP authenticator refuses every other
client during the CURVE handshake, so an unknown client never receives a byte of state.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from tianji.control.errors import AssetError

log = logging.getLogger(__name__)


def is_loopback(endpoint: str) -> bool:
    """True when ``endpoint`` cannot be reached from another machine (127.0.0.0/8, ::1, localhost, ipc, inproc)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = urlsplit(endpoint).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # '*', an interface name or a host name: reachable from outside


def keygen(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Write a CURVE key pair ``name.key`` / ``name.key_secret`` into ``directory``; returns (public, secret)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.auth.create_certificates(str(d), name)
    Path(secret).chmod(0o600)
    return Path(public), Path(secret)


def load_secret(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) keys of a ``*.key_secret`` file."""
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"key file not found: {p}; create one with `tianji bridge keygen DIR NAME`")
    public, secret = zmq.auth.load_certificate(str(p))
    if not secret:
        raise AssetError(f"{p} holds only a public key; pass the '.key_secret' file of the pair")
    return public, secret


def load_public(path: str | Path) -> bytes:
    """The public key of a ``*.key`` (or ``*.key_secret``) file."""
    p = Path(path)
    if not p.is_file():
        raise AssetError(f"public key file not found: {p}; copy the other side's '.key' file here")
    return zmq.auth.load_certificate(str(p))[0]


def start_authenticator(ctx: zmq.Context, allow_dir: str | Path) -> ThreadAuthenticator:
    """Start pyzmq's ZAP handler on ``ctx`` accepting only the client public keys in ``allow_dir``."""
    d = Path(allow_dir)
    if not d.is_dir():
        raise AssetError(
            f"client allow-list directory not found: {d}; put each allowed client's public '.key' file there"
        )
    keys = sorted(d.glob("*.key"))
    if not keys:
        log.warning("allow-list %s holds no client keys: every client will be refused", d)
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("tianji.bridge.zap"))
    auth.start()
    auth.configure_curve(domain="*", location=str(d))
    return auth


def make_server_socket(sock: zmq.Socket, secret_file: str | Path) -> None:
    """Turn on CURVE server mode with the server's key pair (before bind)."""
    public, secret = load_secret(secret_file)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True


def make_client_socket(sock: zmq.Socket, server_public: bytes, secret_file: str | Path) -> None:
    """Turn on CURVE client mode: our key pair and the server's public key (before connect)."""
    public, secret = load_secret(secret_file)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
