"""``tianji skill NAME --arg key=value ... --robot sim``: run one skill in the care room and print its result.

Registered by the main CLI with ``app.command(name="skill")(skill)``. Also home of
:class:`CareSession`, the simulated care room wired for skills (safety filter with the
patient-force limit, grasp assist, floor map, kinematics, ground-truth world state), which the
skill tests and ``experiments/bench/skills.py`` use too.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

ROBOT_OF_SKILL = {
    "g1": ("stand", "wave", "demonstrate_exercise", "reach"),
    "allegro": ("power_grasp", "pinch_grasp", "release"),
}
ALLEGRO_MOUNT = (1.62, 1.25, 0.75)  # above the pill box on the dining table (its footprint centre)


@dataclass
class CareSession:
    """The care room wired for running skills on one robot (TIAGo by default, or the G1, or an Allegro hand).

    ``runner.run(skill)`` runs a skill; ``world_state()`` is the ground truth; ``safe`` is the
    safety filter (10 N person-force limit wired to the contact force of the robot and what it
    holds with the patient); ``assist`` the simulator's grasp assist (TIAGo only).
    """

    scene: Any
    robot: Any
    safe: Any
    context: Any
    runner: Any
    assist: Any = None
    robot_label: str = "tiago"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def world(self) -> Any:
        return self.scene.world

    def world_state(self) -> Any:
        """Ground-truth WorldState of the scene (perception plugs in here later)."""
        from tianji.sim.world_state import from_scene

        return from_scene(self.scene, robot="tiago")

    def run(self, skill_name: str, /, **params: Any) -> Any:
        """Build skill ``skill_name`` with ``params`` and run it; returns its SkillResult."""
        from tianji.control.skills import make_skill

        return self.runner.run(make_skill(skill_name, params, self.context))

    # ------------------------------------------------------------ scenario set-up
    def start_at(self, place_or_pose: str | Iterable[float]) -> None:
        """Teleport TIAGo's base to a place's standing pose (or (x, y, yaw)), arm unchanged."""
        pose = (
            self.scene.places[place_or_pose].pose if isinstance(place_or_pose, str) else np.asarray(list(place_or_pose))
        )
        q = self.robot.observe().joint_positions.astype(float)
        self.robot.reset(q, base_position=(float(pose[0]), float(pose[1]), 0.0), base_yaw=float(pose[2]))
        self.safe.reset()
        self.world.step(5)

    def give(self, name: str) -> None:
        """Put object ``name`` in TIAGo's closed hand in a carry pose (as a pick would leave it)."""
        from tianji.control.skills.arm import TiagoArm
        from tianji.control.skills.geometry import base_xy_yaw, object_model, side_grasp_pose, top_grasp_pose
        from tianji.control.transforms import pose_to_matrix

        obs = self.robot.observe()
        x, y, yaw = base_xy_yaw(obs)
        c, s = math.cos(yaw), math.sin(yaw)
        model = object_model(name)
        fwd, left = (0.7, 0.05) if model.grasp == "top" else (0.47, -0.1)
        carry = np.array([x + fwd * c - left * s, y + fwd * s + left * c, 0.95])
        forward = np.array([c, s])
        if model.grasp == "top":
            grip = top_grasp_pose(carry, forward, model.palm_offset)
        else:
            grip = side_grasp_pose(carry, forward, model.palm_offset, model.pitch)
        arm = TiagoArm(self.robot.spec, self.context.kinematics)
        q = arm.ik(grip, obs.joint_positions.astype(float), base_xy_yaw(obs))
        if q is None:
            raise RuntimeError("no carry pose reachable for the arm; check the robot's pose")
        self.robot.reset(q)
        from tianji.control.robot import Command

        self.robot.command(Command(gripper=1.0))
        g = pose_to_matrix(self.robot.link_pose("hand_grasping_frame").astype(float))
        point = carry  # the object's grasp point sits at the carry point
        body = self.scene.objects[name].body_id
        yaw_obj = math.atan2(g[1, 0], g[0, 0]) + (math.pi / 2 if model.grasp == "side" else 0.0)
        import pybullet as pb

        quat = pb.getQuaternionFromEuler((0.0, 0.0, yaw_obj))
        foot = point - np.array([0.0, 0.0, model.grasp_height])
        info = self.world.client.getDynamicsInfo(body, -1)
        com = pb.multiplyTransforms(foot.tolist(), quat, info[3], info[4])
        self.world.client.resetBasePositionAndOrientation(body, com[0], com[1])
        self.world.client.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])
        for _ in range(60):
            self.robot.command(Command(gripper=0.0))
            self.world.step()
            if self.assist.held == name and (self.robot.observe().gripper or 0.0) < 0.3:
                break
        if self.assist.held != name:
            raise RuntimeError(f"could not put '{name}' in the hand")
        self.safe.reset()

    def close(self) -> None:
        self.scene.close()


def care_room_config(
    robot: str = "tiago", keep_robots: Iterable[str] = ("tiago", "patient"), randomize_patient: bool = True
) -> dict[str, Any]:
    """The care room's scene config with only ``keep_robots`` (the G1 is costly and off the skills' paths)."""
    from tianji.sim import scene

    config = yaml.safe_load(scene.scene_file("care_room").read_text())
    config = copy.deepcopy(config)
    config["robots"] = {k: v for k, v in config["robots"].items() if k in set(keep_robots)}
    patient = config["robots"].get("patient")
    if patient is not None and not randomize_patient:
        patient.pop("randomize", None)  # the scene file's range (+-5 cm, +-0.1 rad) is the default
    return config


def care_session(
    robot: str = "tiago",
    *,
    seed: int = 0,
    randomize: bool = False,
    gui: bool = False,
    keep_robots: Iterable[str] | None = None,
    realtime: bool = False,
    config: dict[str, Any] | None = None,
    fast_physics: bool = False,
    after_build: Callable[[Any], None] | None = None,
) -> CareSession:
    """Load the care room (seeded) and wire ``robot`` ("tiago", "g1" or "allegro") for skills.

    ``fast_physics`` halves the physics rate (120 Hz, 2 steps per 60 Hz control step) for tests
    and benchmarks on slow machines; the control rate stays 60 Hz. ``after_build(scene)`` runs
    before the room settles (scenarios pin the patient there).
    """
    from tianji.control.kinematics import Kinematics
    from tianji.control.safety import SafeRobot, SafetyLimits
    from tianji.control.skills import SkillContext, SkillRunner
    from tianji.sim import World, WorldConfig, scene
    from tianji.sim.care_wiring import PERSON_FORCE_LIMIT, wire_care_robot
    from tianji.sim.occupancy import room_occupancy
    from tianji.sim.registry import get_robot

    if keep_robots is None:
        keep_robots = ("tiago", "patient", "g1") if robot == "g1" or gui else ("tiago", "patient")
    cfg = config or care_room_config(robot, keep_robots)
    physics = {"timestep": 1 / 120, "control_decimation": 2} if fast_physics else {}
    world = World(WorldConfig(seed=seed, gui=gui, **physics))
    path = Path(scene.scene_file("care_room"))
    try:
        care = scene.build(cfg, world, path=path, randomize=randomize)
        extra: dict[str, Any] = {}
        if robot == "allegro":
            sim_robot = _mount_allegro(care)
            extra["allegro"] = sim_robot
        else:
            sim_robot = care.robots[robot]
        if after_build is not None:
            after_build(care)
        world.step(30)
    except BaseException:
        world.close()
        raise
    wiring = wire_care_robot(care, sim_robot)
    assist, person_force = wiring.assist, wiring.person_force
    desc = get_robot("allegro" if robot == "allegro" else robot)
    kin = Kinematics.for_spec(desc.urdf_path(), sim_robot.spec)

    safe = SafeRobot(sim_robot, SafetyLimits(person_force_limit=PERSON_FORCE_LIMIT), person_force=person_force)
    occupancy = room_occupancy(care, exclude=(robot,)) if robot == "tiago" else None
    context = SkillContext(kinematics=kin, occupancy=occupancy, contact_force=person_force)
    session = CareSession(care, sim_robot, safe, context, None, assist, robot, extra)
    session.runner = SkillRunner(safe, session.world_state, stepper=world.step, realtime=realtime)
    return session


def _mount_allegro(care: Any) -> Any:
    """An Allegro hand on a fixed wrist, palm down above the pill box on the dining table."""
    import dataclasses

    from tianji.sim.registry import get_robot
    from tianji.sim.sim_robot import SimRobot

    desc = dataclasses.replace(
        get_robot("allegro"), spawn_height=ALLEGRO_MOUNT[2] + 0.11, spawn_rpy=(0.0, math.pi / 2, 0.0)
    )
    robot = SimRobot(care.world, desc, position=(ALLEGRO_MOUNT[0] - 0.03, ALLEGRO_MOUNT[1]))
    care.world.robots["allegro"] = robot
    return robot


def _parse_args(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--arg needs key=value, got {item!r}; e.g. --arg object=cup")
        out[key.strip()] = value.strip()
    return out


def robot_for(name: str) -> str:
    """Which robot runs skill ``name`` in the care room."""
    for robot, names in ROBOT_OF_SKILL.items():
        if name in names:
            return robot
    return "tiago"


def skill(
    name: Annotated[str, typer.Argument(help="Skill name, e.g. pick, navigate_to, wave (see --list).")] = "",
    arg: Annotated[list[str] | None, typer.Option("--arg", "-a", help="Parameter key=value (repeatable).")] = None,
    robot: Annotated[
        str, typer.Option(help="'sim' (the care room in process) or 'tcp://HOST:PORT' (a robot served by the bridge).")
    ] = "sim",
    gui: Annotated[bool, typer.Option(help="Open the PyBullet window (needs a display).")] = False,
    record: Annotated[Path | None, typer.Option(help="Write an mp4 from the room camera.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    randomize: Annotated[bool, typer.Option(help="Jitter objects and the patient within their ranges.")] = False,
    at: Annotated[str | None, typer.Option(help="Start TIAGo at this place (e.g. dining_table).")] = None,
    holding: Annotated[str | None, typer.Option(help="Start with this object in TIAGo's hand.")] = None,
    list_skills: Annotated[bool, typer.Option("--list", help="List the skills and their parameters.")] = False,
    schema_out: Annotated[Path | None, typer.Option("--schema", help="Write the skills' JSON schema here.")] = None,
) -> None:
    """Run one skill in the simulated care room and print its result (exit code 1 when it fails)."""
    from tianji.control.errors import TianjiError
    from tianji.control.skills import SKILLS, SkillError, make_skill, schema

    if schema_out is not None:
        schema_out.write_text(json.dumps(schema(), indent=2))
        console.print(f"schema of {len(SKILLS)} skills written to [bold]{schema_out}[/bold]")
        return
    if list_skills or not name:
        _print_skills()
        return
    from tianji.remote import check_robot_option, is_remote, remote_session

    try:
        check_robot_option(robot)
        params = _parse_args(arg or [])
        which = robot_for(name)
        if is_remote(robot):
            if at or holding or record is not None or gui or randomize:
                raise ValueError(
                    "--at, --holding, --record, --gui and --randomize set up the in-process simulator;"
                    " with --robot tcp://... the served robot starts where it is (drop those options)"
                )
            session = remote_session(robot)
        else:
            session = care_session(which, seed=seed, randomize=randomize, gui=gui, realtime=gui)
    except (SkillError, TianjiError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(code=2) from None
    try:
        skill_obj = make_skill(name, params, session.context)
        if at:
            session.start_at(at)
        if holding:
            session.give(holding)
        if record is not None:  # in-process only (checked above)
            cam = session.scene.camera("room")
            session.world.start_recording(record, cam.pose, cam.intrinsics)
        where = robot if is_remote(robot) else f"seed {seed}"
        console.print(f"[bold]{name}[/bold] {params or ''} on {session.robot_label} ({where})")
        result = session.runner.run(skill_obj)
    except (SkillError, TianjiError, ValueError, RuntimeError) as exc:
        session.close()
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise typer.Exit(code=2) from None
    videos = [] if is_remote(robot) else session.world.stop_recording()
    session.close()
    _print_result(result, videos)
    if not result.succeeded:
        raise typer.Exit(code=1)


def _print_skills() -> None:
    from tianji.control.skills import SKILLS, schema

    table = Table(title="Skills")
    for column in ("skill", "robot", "parameters", "description"):
        table.add_column(column)
    defs = schema()["$defs"]
    for name in sorted(SKILLS):
        props = defs[name]["properties"]["params"]["properties"]
        params = ", ".join(props) or "-"
        table.add_row(name, ", ".join(SKILLS[name].robots) or "any", params, SKILLS[name].description)
    console.print(table)


def _print_result(result: Any, videos: list[Path]) -> None:
    colour = "green" if result.succeeded else "red"
    console.print(f"[bold {colour}]{result.status}[/bold {colour}] in {result.duration:.1f} s: {result.reason}")
    for event in result.events:
        if event.kind in ("say", "alert"):
            console.print(f"  [{event.kind}] {event.message}")
    for key, value in result.data.items():
        shown = np.round(value, 3).tolist() if isinstance(value, np.ndarray) else value
        console.print(f"  {key}: {shown}")
    for video in videos:
        console.print(f"video: [bold]{video}[/bold]")
