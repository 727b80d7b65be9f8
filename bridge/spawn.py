"""A bridge server in a child process, for tests and benchmarks: ``tianji bridge serve`` as a user starts it.

:func:`served_in_subprocess` starts ``tianji bridge serve --robot DRIVER`` on a free loopback
port pair, waits (bounded) until it answers a ``hello``, yields the endpoint, and stops it with
SIGTERM (then SIGKILL) however the block ends. The server's output goes to a temporary file,
shown in the error when it exits before answering.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tianji.bridge.protocol import BridgeConnectionError
from tianji.bridge.session import free_port_pair

SERVE = "from tianji.cli_bridge import bridge_app; bridge_app()"


@contextmanager
def served_in_subprocess(
    driver: str,
    *options: str,
    client_keys: Mapping[str, Path] | None = None,
    ready_timeout: float = 60.0,
) -> Iterator[str]:
    """``tianji bridge serve --robot DRIVER --bind tcp://127.0.0.1:P OPTIONS...``; yields ``tcp://127.0.0.1:P``.

    ``client_keys`` (``server_key``, ``client_key`` as for ``RemoteRobot``) are used for the readiness
    check against a CurveZMQ server. Raises RuntimeError when the server exits first, with its output.
    """
    from tianji.bridge.client import RemoteRobot

    endpoint = f"tcp://127.0.0.1:{free_port_pair()}"
    cmd = [sys.executable, "-c", SERVE, "serve", "--robot", driver, "--bind", endpoint, *options]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + ready_timeout
            while True:  # bounded: until it answers a hello
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the bridge server exited ({proc.returncode}): {log.read().decode()[-2000:]}")
                try:
                    RemoteRobot(endpoint, role="observer", timeout=0.5, **dict(client_keys or {})).close()
                    break
                except BridgeConnectionError:
                    if time.monotonic() > deadline:
                        raise
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
