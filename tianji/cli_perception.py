"""``tianji perceive``: render a robot's head camera in a scene, run perception, write the picture and JSON.

Registered by the main CLI with ``app.command()(perceive)``. Also home of :func:`point_head`,
which the benchmark and tests use to aim TIAGo's head camera.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

PAN_JOINT, TILT_JOINT = "head_1_joint", "head_2_joint"


def point_head(robot: object, target: np.ndarray | tuple[float, float, float], camera: str = "head") -> np.ndarray:
    """Teleport the pan/tilt head joints of ``robot`` (a SimRobot) so ``camera`` looks at ``target``.

    A few fixed-point steps on the angle between the optical axis and the target; returns
    the camera pose (4x4 world <- optical). Joints beyond their limits are clamped.
    """
    import pybullet as pb

    from tianji.sim.camera import pose_from_pybullet

    mount = robot.description.cameras[camera]  # type: ignore[attr-defined]
    spec = robot.spec  # type: ignore[attr-defined]
    q = robot.observe().joint_positions.astype(float)  # type: ignore[attr-defined]
    pan_i, tilt_i = spec.index(PAN_JOINT), spec.index(TILT_JOINT)
    target = np.asarray(target, dtype=float)

    def camera_pose() -> np.ndarray:
        link = robot.link_pose(mount.link).astype(float)  # type: ignore[attr-defined]
        pos, quat = pb.multiplyTransforms(link[:3], link[3:], mount.xyz, pb.getQuaternionFromEuler(mount.rpy))
        return pose_from_pybullet(pos, quat)

    pose = camera_pose()
    for _ in range(6):
        d = pose[:3, :3].T @ (target - pose[:3, 3])
        q[pan_i] -= math.atan2(d[0], d[2])
        q[tilt_i] -= math.atan2(d[1], math.hypot(d[0], d[2]))
        q[pan_i] = float(np.clip(q[pan_i], spec.position_lower[pan_i], spec.position_upper[pan_i]))
        q[tilt_i] = float(np.clip(q[tilt_i], spec.position_lower[tilt_i], spec.position_upper[tilt_i]))
        robot.reset(positions=q)  # type: ignore[attr-defined]
        pose = camera_pose()
    return pose


@contextmanager
def _plain_errors() -> Iterator[None]:
    """Tianji's errors as one plain line and exit code 2, like the rest of the CLI."""
    from tianji.control.errors import TianjiError

    try:
        yield
    except (TianjiError, FileNotFoundError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(code=2) from None


def perceive(
    scene: Annotated[str, typer.Option(help="Scene name or .yaml file.")] = "care_room",
    randomize: Annotated[
        bool, typer.Option(help="Jitter object and robot poses within the scene's documented ranges.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same layout).")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for annotated.png, world_state.json, detections.json.")] = Path(
        "runs/perceive"
    ),
    robot: Annotated[str, typer.Option(help="Scene robot whose camera is used.")] = "tiago",
    camera: Annotated[str, typer.Option(help="Camera of that robot.")] = "head",
    look_at: Annotated[
        str,
        typer.Option(help="Object, place or person of the scene to aim the head at first; 'none' leaves the head."),
    ] = "dining_table",
    width: Annotated[int, typer.Option(help="Image width; 0 keeps the camera's own size.")] = 0,
    height: Annotated[int, typer.Option(help="Image height; 0 keeps the camera's own size.")] = 0,
    compare: Annotated[bool, typer.Option(help="Print the error of each estimate against ground truth.")] = True,
) -> None:
    """Render the robot's head camera, run perception, write the annotated image and the world state as JSON."""
    import imageio.v2 as imageio

    from tianji.perception import Perception, WorldStateBuilder, annotate, result_to_dict, world_state_to_dict
    from tianji.perception.geometry import quat_matrix, yaw_of
    from tianji.sim import scene as scenes
    from tianji.sim.world_state import from_scene

    if (width > 0) != (height > 0) or width < 0 or height < 0:
        err_console.print("[bold red]error:[/bold red] give both --width and --height (positive), or neither")
        raise typer.Exit(code=2)
    with _plain_errors():
        _check_look_at(scenes.scene_file(scene), look_at)
    with _plain_errors(), scenes.load(scene, seed=seed, randomize=randomize) as care:
        if robot not in care.robots:
            raise ValueError(f"scene '{care.name}' has no robot '{robot}'; it has: {', '.join(care.robots)}")
        bot = care.robots[robot]
        if look_at != "none":
            point_head(bot, _target(care, look_at), camera)
        obs = bot.observe()
        frame = bot.camera(camera, size=(width, height) if width else None)
        base = obs.base_pose.astype(float)
        robot_pose = np.array([base[0], base[1], yaw_of(quat_matrix(base[3:]))])
        perception = Perception(care.source)
        result = perception.process(frame, robot_xy=(base[0], base[1]))
        state = WorldStateBuilder(perception.map).update(result, robot_pose)
        truth = from_scene(care, robot)
    out.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(out / "annotated.png", annotate(frame, result))
    (out / "world_state.json").write_text(json.dumps(world_state_to_dict(state), indent=2))
    (out / "detections.json").write_text(json.dumps(result_to_dict(result), indent=2))
    _print_summary(state, truth, compare, frame.size, result.timings.get("total", 0.0))
    console.print(f"wrote [bold]{out / 'annotated.png'}[/bold], world_state.json, detections.json")


def _check_look_at(path: Path, name: str) -> None:
    """Fail early (before building the scene) when ``--look-at`` names nothing in the scene file."""
    import yaml

    config = yaml.safe_load(path.read_text()) or {}
    known = [n for key in ("objects", "places", "robots") for n in (config.get(key) or {})]
    if name != "none" and name not in known:
        raise ValueError(
            f"--look-at '{name}' is not an object, place or robot of the scene; use one of: {', '.join(known)}, none"
        )


def _target(care: object, name: str) -> np.ndarray:
    """World point to look at: an object's centre, a place's surface centre, or a person's pelvis."""
    objects, places, robots = care.objects, care.places, care.robots  # type: ignore[attr-defined]
    if name in objects:
        pos = objects[name].position()
        return pos + np.array([0.0, 0.0, 0.05 if pos[2] > 0.3 else 0.4])
    if name in places and places[name].center is not None:
        c = places[name].center
        return np.array([c[0], c[1], places[name].surface_height or 0.5])
    if name in robots:
        return robots[name].observe().base_pose[:3].astype(float)
    known = ", ".join([*objects, *places, *robots])
    raise ValueError(f"--look-at '{name}' is not an object, place or robot of the scene; use one of: {known}, none")


def _print_summary(state: object, truth: object, compare: bool, size: tuple[int, int], seconds: float) -> None:
    table = Table(title=f"Perceived world state ({size[0]}x{size[1]}, perception {1000 * seconds:.1f} ms)")
    for column in ("name", "source", "position (m)", "confidence", *(["error (cm)"] if compare else [])):
        table.add_column(column)
    for name, obj in state.objects.items():  # type: ignore[attr-defined]
        row = [name, obj.source, " ".join(f"{v:+.3f}" for v in obj.position), f"{obj.confidence:.2f}"]
        if compare:
            gt = truth.objects.get(name)  # type: ignore[attr-defined]
            row.append("-" if gt is None else f"{100 * np.linalg.norm(gt.position - obj.position):.1f}")
        table.add_row(*row)
    for name, person in state.people.items():  # type: ignore[attr-defined]
        row = [f"{name} ({person.posture.value})", person.source, " ".join(f"{v:+.3f}" for v in person.position)]
        row.append(f"{person.confidence:.2f}")
        if compare:
            gt = truth.people.get(name)  # type: ignore[attr-defined]
            row.append(
                "-" if gt is None else f"{100 * np.linalg.norm(gt.position - person.position):.1f} ({gt.posture.value})"
            )
        table.add_row(*row)
    console.print(table)
