"""Keep PyBullet's C-level console output (build banner, loader warnings) out of the user's terminal."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_native_output() -> Iterator[None]:
    """Silence what PyBullet's C code prints while loading models (inertia warnings, ``argv[0]=``).

    Those lines go straight to the process's file descriptors, bypassing Python; set
    TIANJI_PYBULLET_VERBOSE=1 to see them. Errors still surface as exceptions.
    """
    if os.environ.get("TIANJI_PYBULLET_VERBOSE"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
