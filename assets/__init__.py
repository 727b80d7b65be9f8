"""Files this project authors: scene objects (URDF), ArUco marker textures and scene files.

They install with the package, so :func:`path` finds them from any working directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

ROOT = Path(str(resources.files(__name__)))


def path(relative: str) -> Path:
    """Absolute path of an asset given relative to the assets folder, e.g. ``"scenes/care_room.yaml"``.

    Raises FileNotFoundError naming the folder that was searched when the asset does not exist.
    """
    full = ROOT / relative
    if not full.exists():
        raise FileNotFoundError(f"asset '{relative}' not found under {ROOT}")
    return full
