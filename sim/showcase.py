"""Pictures and the headless care-room demo run behind ``tianji show`` and ``tianji demo``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from tianji.control.errors import UnknownNameError
from tianji.sim import scene as scenes
from tianji.sim.camera import CameraIntrinsics, look_at
from tianji.sim.registry import robot_names
from tianji.sim.world import World, WorldConfig


def show(
    target: str,
    out: Path,
    *,
    width: int = 960,
    height: int = 720,
    preset: str = "home",
    camera: str = "room",
    seed: int = 0,
) -> Path:
    """Render a registered robot (framed to fit) or one of a scene's cameras to a PNG."""
    intr = CameraIntrinsics(width, height, 45.0)
    if target in robot_names():
        with World(WorldConfig(seed=seed)) as world:
            robot = world.add_robot(target, preset=preset)
            world.step(1)
            lo, hi = _aabb(world, robot.body_id)
            center = (lo + hi) / 2
            extent = float(np.linalg.norm(hi - lo))
            eye = center + extent * np.array([0.75, -0.9, 0.45])
            frame = world.render(pose=look_at(eye, center), intrinsics=intr)
    else:
        try:
            scenes.scene_file(target)
        except UnknownNameError:
            raise UnknownNameError(
                f"'{target}' is neither a robot nor a scene. Robots: {', '.join(robot_names())};"
                f" scenes: {', '.join(scenes.scene_names())}"
            ) from None
        with scenes.load(target, seed=seed) as scene:
            cam = scene.camera(camera)
            intr = CameraIntrinsics(width, height, cam.intrinsics.fov_deg, cam.intrinsics.near, cam.intrinsics.far)
            frame = scene.world.render(pose=cam.pose, intrinsics=intr)
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out, frame.rgb)
    return out


def _aabb(world: World, body: int) -> tuple[np.ndarray, np.ndarray]:
    boxes = [world.client.getAABB(body, j) for j in range(-1, world.client.getNumJoints(body))]
    lo = np.min([b[0] for b in boxes], axis=0)
    hi = np.max([b[1] for b in boxes], axis=0)
    return lo, hi


@dataclass
class DemoResult:
    """What a demo run wrote and measured."""

    folder: Path
    picture: Path
    video: Path
    sim_seconds: float
    wall_seconds: float
    frames: int
    robots: dict[str, float]  # robot -> largest joint deviation from its start pose (rad or m)


def run_scene_demo(
    out_root: Path = Path("runs/demo"),
    *,
    scene_name: str = "care_room",
    seconds: float = 10.0,
    seed: int = 0,
    randomize: bool = False,
    gui: bool = False,
    fps: float = 30.0,
    progress: Callable[[float], None] | None = None,
) -> DemoResult:
    """Load the scene, hold every robot at its home pose for ``seconds`` of simulated time,
    and write ``scene.png`` and ``scene.mp4`` under ``out_root/<timestamp>/``."""
    start = time.perf_counter()
    folder = out_root / time.strftime("%Y%m%d-%H%M%S")
    suffix = 1
    while folder.exists():
        folder = out_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
        suffix += 1
    folder.mkdir(parents=True)
    with scenes.load(scene_name, seed=seed, randomize=randomize, gui=gui) as scene:
        cam = scene.camera("room")
        world = scene.world
        start_time = world.time  # after the scene settled
        recorder = world.start_recording(folder / "scene.mp4", cam.pose, cam.intrinsics, fps=fps)
        steps = round(seconds * world.control_rate)
        for i in range(steps):
            world.step()
            if progress is not None:
                progress((i + 1) / steps)
        world.stop_recording()
        picture = folder / "scene.png"
        imageio.imwrite(picture, scene.render("room").rgb)
        deviations = {
            label: float(np.max(np.abs(robot.observe().joint_positions - robot.start_positions)))
            for label, robot in scene.robots.items()
        }
        sim_seconds = world.time - start_time
    return DemoResult(
        folder, picture, folder / "scene.mp4", sim_seconds, time.perf_counter() - start, recorder.frames, deviations
    )
