"""Scenes: a YAML file describing a room, its objects, its robots and its cameras, built into a World.

>>> from tianji.sim import scene
>>> care = scene.load("care_room", seed=3, randomize=True)
>>> care.objects["cup"].position()
>>> care.robots["tiago"].observe()

Scene files live in ``assets/scenes/<name>.yaml`` (or pass a path). Their schema is
documented in ``assets/scenes/care_room.yaml``; randomization ranges are part of each
entry (``randomize: {xy: metres, yaw: radians}``, uniform in +-range).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pybullet as pb
import yaml

from tianji import assets
from tianji.control.errors import AssetError, UnknownNameError, did_you_mean
from tianji.control.robot import CameraFrame
from tianji.control.world_state import Place
from tianji.sim.camera import CameraIntrinsics, look_at
from tianji.sim.sim_robot import SimRobot
from tianji.sim.world import World, WorldConfig

MARKER_TEXTURE = "markers/aruco_4x4_50_id{id}.png"
MARKER_DICTIONARY = "DICT_4X4_50"


@dataclass
class SceneObject:
    """An object placed by a scene: its body, where it came from, how perception can find it."""

    name: str
    body_id: int
    urdf: Path
    fixed: bool
    marker_id: int | None
    world: World = field(repr=False)

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion x, y, z, w) of the object's base frame."""
        return self.world.base_pose(self.body_id)

    def position(self) -> np.ndarray:
        """World position of the object's base frame."""
        return self.pose()[0]


@dataclass(frozen=True)
class SceneCamera:
    """A fixed camera of the scene (for videos, pictures and perception)."""

    name: str
    pose: np.ndarray  # 4x4 world <- optical
    intrinsics: CameraIntrinsics


@dataclass
class Scene:
    """A built scene. Closing it closes its World."""

    name: str
    world: World
    objects: dict[str, SceneObject]
    robots: dict[str, SimRobot]
    cameras: dict[str, SceneCamera]
    room_size: tuple[float, float]
    source: Path
    places: dict[str, Place] = field(default_factory=dict)
    config: dict[str, Any] = field(repr=False, default_factory=dict)

    def camera(self, name: str = "room") -> SceneCamera:
        """A scene camera by name; UnknownNameError lists the cameras."""
        try:
            return self.cameras[name]
        except KeyError:
            raise UnknownNameError(
                f"scene '{self.name}' has no camera '{name}'; it has: {', '.join(self.cameras)}"
            ) from None

    def render(self, camera: str = "room", shadows: bool = True) -> CameraFrame:
        """Render a scene camera."""
        cam = self.camera(camera)
        return self.world.render(pose=cam.pose, intrinsics=cam.intrinsics, name=cam.name, shadows=shadows)

    def object(self, name: str) -> SceneObject:
        """An object by name; UnknownNameError lists the objects."""
        try:
            return self.objects[name]
        except KeyError:
            raise UnknownNameError(
                f"scene '{self.name}' has no object '{name}'.{did_you_mean(name, self.objects)}"
                f" Objects: {', '.join(self.objects)}"
            ) from None

    def close(self) -> None:
        """Close the world."""
        self.world.close()

    def __enter__(self) -> Scene:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scene_names() -> list[str]:
    """Scene files shipped in assets/scenes."""
    return sorted(p.stem for p in (assets.ROOT / "scenes").glob("*.yaml"))


def scene_file(name_or_path: str | Path) -> Path:
    """Resolve a scene name (``care_room``) or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise AssetError(f"scene file not found: {path}")
        return path
    candidate = assets.ROOT / "scenes" / f"{name_or_path}.yaml"
    if not candidate.is_file():
        names = scene_names()
        raise UnknownNameError(
            f"unknown scene '{name_or_path}'.{did_you_mean(str(name_or_path), names)} Known scenes: {', '.join(names)};"
            " or pass a path to a scene .yaml file"
        )
    return candidate


def load(
    name_or_path: str | Path = "care_room",
    *,
    seed: int = 0,
    randomize: bool = False,
    world: World | None = None,
    gui: bool = False,
    settle_steps: int = 30,
) -> Scene:
    """Build a scene into ``world`` (a new headless World by default) and let it settle.

    The same ``seed`` gives the same state to the bit; ``randomize`` jitters the poses of the
    entries that declare a ``randomize`` range, drawing from the World's seeded generator.
    """
    path = scene_file(name_or_path)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AssetError(f"scene file {path} is not valid YAML: {exc}") from exc
    world = world or World(WorldConfig(seed=seed, gui=gui))
    try:
        scene = _build(config, path, world, randomize)
        world.step(settle_steps)
    except BaseException:
        if world is not None:
            world.close()
        raise
    return scene


def build(config: dict[str, Any], world: World, *, path: str | Path = "care_room", randomize: bool = False) -> Scene:
    """Build an already-parsed scene config (e.g. a scene file with entries left out) into ``world``.

    ``path`` (a scene name or file) resolves the config's relative URDF paths and names it in errors.
    Nothing is stepped: the caller settles the scene. Environments use this to build reduced rooms.
    """
    return _build(config, scene_file(path), world, randomize)


def _build(config: dict[str, Any], path: Path, world: World, randomize: bool) -> Scene:
    room = config.get("room", {})
    size = tuple(float(v) for v in room.get("size", (5.0, 4.0)))
    _build_room(world, room)
    objects = {}
    for name, entry in (config.get("objects") or {}).items():
        objects[name] = _place_object(world, name, entry, path, randomize)
    robots = {}
    for label, entry in (config.get("robots") or {}).items():
        robots[label] = _place_robot(world, label, entry, randomize)
    cameras = {}
    for name, entry in (config.get("cameras") or {}).items():
        intr = CameraIntrinsics(
            int(entry.get("width", 640)),
            int(entry.get("height", 480)),
            float(entry.get("fov_deg", 60.0)),
            float(entry.get("near", 0.05)),
            float(entry.get("far", 20.0)),
        )
        cameras[name] = SceneCamera(name, look_at(entry["eye"], entry["target"]), intr)
    places = {name: _place(name, entry, objects, path) for name, entry in (config.get("places") or {}).items()}
    return Scene(str(config.get("name", path.stem)), world, objects, robots, cameras, size, path, places, config)  # type: ignore[arg-type]


def _place(name: str, entry: dict[str, Any], objects: dict[str, SceneObject], path: Path) -> Place:
    pose = np.asarray(entry.get("pose", ()), dtype=float)
    if pose.shape != (3,):
        raise AssetError(f"scene {path}: place '{name}' needs 'pose: [x, y, yaw]'")
    center = None
    surface = entry.get("surface")
    if surface is not None:
        if surface not in objects:
            raise AssetError(f"scene {path}: place '{name}' names surface '{surface}', which is not a scene object")
        center = objects[surface].position()
    height = entry.get("surface_height")
    return Place(name, pose, None if height is None else float(height), center)


def _jitter(world: World, entry: dict[str, Any], randomize: bool) -> tuple[np.ndarray, float]:
    position = np.array(entry.get("position", (0.0, 0.0, 0.0)), dtype=float)
    yaw = float(entry.get("yaw", 0.0))
    ranges = entry.get("randomize") or {}
    if randomize and ranges:
        xy = float(ranges.get("xy", 0.0))
        position[:2] += world.rng.uniform(-xy, xy, size=2)
        yaw += float(world.rng.uniform(-1.0, 1.0) * float(ranges.get("yaw", 0.0)))
    return position, yaw


def _place_object(world: World, name: str, entry: dict[str, Any], scene_path: Path, randomize: bool) -> SceneObject:
    if "urdf" not in entry:
        raise AssetError(f"scene {scene_path}: object '{name}' needs 'urdf: objects/<file>.urdf'")
    urdf = Path(entry["urdf"])
    if not urdf.is_absolute():
        local = scene_path.parent / urdf
        urdf = local if local.is_file() else assets.ROOT / urdf
    position, yaw = _jitter(world, entry, randomize)
    fixed = bool(entry.get("fixed", False))
    body = world.load_urdf(urdf, position, pb.getQuaternionFromEuler((0, 0, yaw)), fixed=fixed)
    marker = entry.get("marker")
    if marker is not None:
        _apply_marker(world, body, int(marker), name)
    if "rgba" in entry:
        world.client.changeVisualShape(body, -1, rgbaColor=list(entry["rgba"]))
    return SceneObject(name, body, urdf, fixed, None if marker is None else int(marker), world)


def _apply_marker(world: World, body: int, marker_id: int, name: str) -> None:
    texture_file = assets.path(MARKER_TEXTURE.format(id=marker_id))
    links = {world.client.getJointInfo(body, j)[12].decode(): j for j in range(world.client.getNumJoints(body))}
    if "marker" not in links:
        raise AssetError(f"object '{name}' has marker id {marker_id} but its URDF has no link named 'marker'")
    texture = world.client.loadTexture(str(texture_file))
    world.client.changeVisualShape(body, links["marker"], textureUniqueId=texture, rgbaColor=[1, 1, 1, 1])


def _place_robot(world: World, label: str, entry: dict[str, Any], randomize: bool) -> SimRobot:
    if "robot" not in entry:
        raise AssetError(f"scene robot '{label}' needs 'robot: <registered name>'")
    position, yaw = _jitter(world, entry, randomize)
    robot = world.add_robot(
        str(entry["robot"]), tuple(position), yaw, preset=str(entry.get("preset", "home")), label=label
    )
    colors = entry.get("colors") or {}
    if colors:
        _recolor(world, robot, colors)
    return robot


def _recolor(world: World, robot: SimRobot, colors: dict[str, list[float]]) -> None:
    """Colour links by regex on their names (first match wins), e.g. a patient's skin and pyjamas."""
    c = world.client
    links = [(-1, c.getBodyInfo(robot.body_id)[0].decode())]
    links += [(j, c.getJointInfo(robot.body_id, j)[12].decode()) for j in range(c.getNumJoints(robot.body_id))]
    for index, link in links:
        for pattern, rgba in colors.items():
            if re.fullmatch(pattern, link):
                c.changeVisualShape(robot.body_id, index, rgbaColor=list(rgba))
                break


def _build_room(world: World, room: dict[str, Any]) -> None:
    """Walls as static boxes around [-sx/2, sx/2] x [-sy/2, sy/2], with a door gap in one wall."""
    sx, sy = (float(v) for v in room.get("size", (5.0, 4.0)))
    height = float(room.get("wall_height", 2.5))
    thick = float(room.get("wall_thickness", 0.1))
    rgba = list(room.get("wall_rgba", (0.93, 0.91, 0.86, 1.0)))
    door = room.get("door") or {}
    door_wall = door.get("wall", "east")
    door_center = float(door.get("center", 0.0))
    door_width = float(door.get("width", 0.9))
    door_height = float(door.get("height", 2.1))
    walls = {  # name: (center of the wall line, along-axis, length)
        "north": ((0.0, sy / 2 + thick / 2), 0, sx + 2 * thick),
        "south": ((0.0, -sy / 2 - thick / 2), 0, sx + 2 * thick),
        "east": ((sx / 2 + thick / 2, 0.0), 1, sy),
        "west": ((-sx / 2 - thick / 2, 0.0), 1, sy),
    }
    if door_wall not in walls:
        raise AssetError(f"room door wall must be one of {list(walls)}, got {door_wall!r}")
    for name, (center, axis, length) in walls.items():
        segments = [(-length / 2, length / 2, 0.0, height)]
        if name == door_wall:  # split around the door, plus a lintel above it
            lo, hi = door_center - door_width / 2, door_center + door_width / 2
            segments = [(-length / 2, lo, 0.0, height), (hi, length / 2, 0.0, height), (lo, hi, door_height, height)]
        for a, b, z0, z1 in segments:
            if b - a <= 1e-6:
                continue
            half = [(b - a) / 2, thick / 2, (z1 - z0) / 2] if axis == 0 else [thick / 2, (b - a) / 2, (z1 - z0) / 2]
            mid = (a + b) / 2
            pos = [center[0] + (mid if axis == 0 else 0.0), center[1] + (mid if axis == 1 else 0.0), (z0 + z1) / 2]
            shape = world.client.createCollisionShape(pb.GEOM_BOX, halfExtents=half)
            visual = world.client.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba)
            world.client.createMultiBody(0, shape, visual, pos)
    if "floor_rgba" in room and world.ground_id >= 0:
        world.client.changeVisualShape(world.ground_id, -1, rgbaColor=list(room["floor_rgba"]))
