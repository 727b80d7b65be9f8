"""Render every marked object in PyBullet and check its ArUco marker is detected with the right id.

Each object is loaded in its own DIRECT client, the marker texture is put on its ``marker``
link exactly as the scene loader does, and the marker is seen from straight in front of
its face and from an oblique viewpoint. A detection counts when the expected id is found;
"rot" is the marker's in-image rotation (0 = upright, as it was placed).

    .venv/bin/python assets/check_markers.py            # ER_TINY_RENDERER (default camera)
    .venv/bin/python assets/check_markers.py --opengl   # ER_BULLET_HARDWARE_OPENGL via EGL
    .venv/bin/python assets/check_markers.py --save /tmp/markers   # also write the images

Exit status 1 when any view misses its marker.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pybullet as pb

try:
    from tianji.assets.make_assets import MARKER_IDS, MARKER_SIZES, OBJECT_DIR, texture_path
except ImportError:  # run from a checkout that is not installed
    from make_assets import MARKER_IDS, MARKER_SIZES, OBJECT_DIR, texture_path  # type: ignore[no-redef]

WIDTH, HEIGHT, FOV = 640, 480, 60.0  # camera image and vertical field of view (deg)
OBLIQUE = (0.45, 0.3)  # view direction offset along the card's x and y, per unit of normal


@dataclass
class Result:
    """What the detector found in one view of one object."""

    name: str
    marker_id: int
    view: str
    distance: float
    ids: list[int]
    rotation_deg: float | None

    @property
    def ok(self) -> bool:
        """True when the expected id was detected."""
        return self.marker_id in self.ids


def connect(opengl: bool) -> int:
    """A DIRECT client; with ``opengl`` the EGL renderer plugin is loaded into it."""
    client = pb.connect(pb.DIRECT)
    if opengl:
        spec = importlib.util.find_spec("eglRenderer")
        if (
            spec is None
            or spec.origin is None
            or pb.loadPlugin(spec.origin, "_eglRendererPlugin", physicsClientId=client) < 0
        ):
            pb.disconnect(client)
            raise RuntimeError("the EGL renderer plugin (pybullet's eglRenderer) could not be loaded")
    return client


def marker_link(body: int, client: int) -> int:
    """Index of the link attached by ``marker_joint``."""
    for j in range(pb.getNumJoints(body, physicsClientId=client)):
        if pb.getJointInfo(body, j, physicsClientId=client)[1].decode() == "marker_joint":
            return j
    raise ValueError("no joint named marker_joint")


def render(client: int, eye: np.ndarray, target: np.ndarray, up: np.ndarray, opengl: bool) -> np.ndarray:
    """Greyscale camera image."""
    view = pb.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist())
    proj = pb.computeProjectionMatrixFOV(FOV, WIDTH / HEIGHT, 0.01, 10.0)
    renderer = pb.ER_BULLET_HARDWARE_OPENGL if opengl else pb.ER_TINY_RENDERER
    _, _, rgba, _, _ = pb.getCameraImage(
        WIDTH, HEIGHT, view, proj, renderer=renderer, flags=pb.ER_NO_SEGMENTATION_MASK, physicsClientId=client
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(HEIGHT, WIDTH, 4)[:, :, :3]
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def check_object(name: str, opengl: bool = False, save: Path | None = None) -> list[Result]:
    """Load one object, texture its marker and detect it from a frontal and an oblique view."""
    marker_id, size = MARKER_IDS[name], MARKER_SIZES[name]
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50))
    client = connect(opengl)
    try:
        body = pb.loadURDF(
            str(OBJECT_DIR / f"{name}.urdf"),
            useFixedBase=True,
            flags=pb.URDF_USE_INERTIA_FROM_FILE,
            physicsClientId=client,
        )
        link = marker_link(body, client)
        texture = pb.loadTexture(str(texture_path(marker_id)), physicsClientId=client)
        pb.changeVisualShape(body, link, textureUniqueId=texture, physicsClientId=client)
        state = pb.getLinkState(body, link, physicsClientId=client)
        centre = np.array(state[4])
        axes = np.array(pb.getMatrixFromQuaternion(state[5])).reshape(3, 3)  # card x, y, z columns
        distance = min(max(8.0 * size, 0.4), 1.5)
        results = []
        for view, offset in (("front", (0.0, 0.0)), ("oblique", OBLIQUE)):
            direction = axes[:, 2] + offset[0] * axes[:, 0] + offset[1] * axes[:, 1]
            eye = centre + distance * direction / np.linalg.norm(direction)
            image = render(client, eye, centre, axes[:, 1], opengl)
            corners, ids, _ = detector.detectMarkers(image)
            found = [] if ids is None else [int(i) for i in ids.ravel()]
            rotation = None
            if marker_id in found:
                c = corners[found.index(marker_id)].reshape(4, 2)
                rotation = math.degrees(math.atan2(c[1, 1] - c[0, 1], c[1, 0] - c[0, 0]))
            results.append(Result(name, marker_id, view, distance, found, rotation))
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(save / f"{name}_{view}.png"), image)
        return results
    finally:
        pb.disconnect(client)


def main(argv: list[str] | None = None) -> int:
    """Check every marked object and print a table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opengl", action="store_true", help="render with EGL (ER_BULLET_HARDWARE_OPENGL)")
    parser.add_argument("--save", type=Path, help="folder to write the rendered images to")
    args = parser.parse_args(argv)
    results = [r for name in MARKER_IDS for r in check_object(name, args.opengl, args.save)]
    print(f"renderer: {'ER_BULLET_HARDWARE_OPENGL (EGL)' if args.opengl else 'ER_TINY_RENDERER'}")
    header = ("object", "id", "view", "dist m", "detected", "rot")
    print("{:14s} {:>3s} {:8s} {:>6s} {:10s} {:>5s}  result".format(*header))
    for r in results:
        rot = "-" if r.rotation_deg is None else f"{r.rotation_deg:.0f}"
        found = ",".join(map(str, r.ids)) or "none"
        print(
            f"{r.name:14s} {r.marker_id:3d} {r.view:8s} {r.distance:6.2f} {found:10s} {rot:>5s}  "
            f"{'ok' if r.ok else 'MISSED'}"
        )
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)}/{len(results)} views detected the right marker")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
