"""Controllers against the real simulated robots: joint and Cartesian moves, gripper, G1 whole body, TIAGo base."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pybullet as pb
import pytest
import yaml

from tianji import assets
from tianji.control import Command, Observation
from tianji.control.base_nav import BaseController, OccupancyMap
from tianji.control.controllers import (
    CartesianController,
    GripperController,
    HoldController,
    JointTrajectoryController,
    KeyframeController,
    SequenceController,
    Status,
    WholeBodyPoseController,
)
from tianji.control.kinematics import Kinematics
from tianji.control.loop import ControlLoop
from tianji.control.trajectory import PEAK_VELOCITY, MinJerkTrajectory, min_jerk_duration
from tianji.control.transforms import wrap_angle
from tianji.sim import World, scene
from tianji.sim.registry import get_robot
from tianji.sim.scene import Scene
from tianji.sim.sim_robot import SimRobot

ARM = [f"arm_{i}_joint" for i in range(1, 8)]


def run(world: World, robot: SimRobot, controller: object, seconds: float, callback: object = None) -> None:
    """Run a controller as fast as the simulation goes, at the world's control rate."""
    loop = ControlLoop(
        robot, controller, rate=world.control_rate, realtime=False, stepper=world.step, callback=callback
    )  # type: ignore[arg-type]
    loop.run(max_ticks=int(seconds * world.control_rate))


# ------------------------------------------------------------------ trajectories
def test_min_jerk_starts_and_ends_at_rest_and_respects_the_speed_limit() -> None:
    start, goal = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    duration = min_jerk_duration(goal - start, max_velocity=np.array([0.5, 2.0]), max_acceleration=3.0)
    assert duration == pytest.approx(max(PEAK_VELOCITY * 1.0 / 0.5, np.sqrt(5.7735 * 2.0 / 3.0)), rel=1e-3)
    traj = MinJerkTrajectory(start, goal, duration)
    times = np.linspace(0, duration, 2001)
    samples = [traj.sample(t) for t in times]
    pos = np.array([s[0] for s in samples])
    vel = np.array([s[1] for s in samples])
    acc = np.array([s[2] for s in samples])
    np.testing.assert_allclose(pos[0], start)
    np.testing.assert_allclose(pos[-1], goal)
    np.testing.assert_allclose(vel[[0, -1]], 0.0, atol=1e-12)
    assert np.max(np.abs(vel[:, 0])) == pytest.approx(0.5, rel=1e-3)  # the slowest joint sets the duration
    assert np.max(np.abs(vel[:, 1])) < 2.0
    assert np.max(np.abs(acc)) <= 3.0 + 1e-6
    with pytest.raises(ValueError, match="NaN"):
        MinJerkTrajectory(np.array([np.nan]), np.array([1.0]), 1.0)


# -------------------------------------------------------------------- joint space
def test_joint_trajectory_moves_tiagos_arm_smoothly(world: World) -> None:
    robot = world.add_robot("tiago")
    spec = robot.spec
    goal = {"arm_1_joint": 1.2, "arm_2_joint": -0.6, "arm_4_joint": 1.0}
    ctl = JointTrajectoryController(spec, goal, velocity_scale=0.5)
    refs: list[np.ndarray] = []
    run(world, robot, ctl, 6.0, lambda i, obs, cmd: refs.append(np.array(list(cmd.targets.values()))))
    assert ctl.status is Status.SUCCEEDED, ctl.message
    q = robot.observe().joint_positions
    for joint, target in goal.items():
        assert abs(q[spec.index(joint)] - target) < 0.03
    ref_speed = np.abs(np.diff(np.array(refs), axis=0)) * world.control_rate
    limits = 0.5 * spec.velocity_limits[[spec.index(j) for j in goal]]
    assert np.all(ref_speed.max(axis=0) <= limits * 1.01)  # the trajectory keeps to half the velocity limit


def test_joint_pd_in_torque_mode_with_gravity_compensation(world: World) -> None:
    robot = world.add_robot("tiago")
    spec = robot.spec
    kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), spec)
    goal = {"arm_1_joint": 0.8, "arm_4_joint": 1.4}
    ctl = JointTrajectoryController(spec, goal, 1.5, mode="torque", kp=60.0, kd=4.0, kinematics=kin, tolerance=0.05)
    run(world, robot, ctl, 4.0)
    assert ctl.succeeded, ctl.message
    q = robot.observe().joint_positions
    assert abs(q[spec.index("arm_1_joint")] - 0.8) < 0.05 and abs(q[spec.index("arm_4_joint")] - 1.4) < 0.05


def test_keyframes_in_a_sequence_then_hold(world: World) -> None:
    robot = world.add_robot("tiago")
    frames = [({"head_1_joint": 0.5}, 0.5), ({"head_1_joint": -0.5, "head_2_joint": -0.3}, 0.5)]
    seq = SequenceController([KeyframeController(robot.spec, frames), HoldController(0.3)])
    run(world, robot, seq, 3.0)
    assert seq.succeeded
    q = robot.observe().joint_positions
    assert q[robot.spec.index("head_1_joint")] == pytest.approx(-0.5, abs=0.03)
    assert q[robot.spec.index("head_2_joint")] == pytest.approx(-0.3, abs=0.03)


# ---------------------------------------------------------------------- Cartesian
def test_cartesian_moves_the_gripper_in_a_speed_limited_line(world: World) -> None:
    robot = world.add_robot("tiago", position=(0.3, 0.2), yaw=0.5)
    world.step(5)
    kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), robot.spec)
    start = robot.observe().ee_poses["gripper"].astype(float)
    target = start.copy()
    target[:3] += [0.10, 0.15, -0.10]
    ctl = CartesianController(robot.spec, kin, "hand_grasping_frame", target, max_linear_velocity=0.1)
    path: list[np.ndarray] = []
    run(world, robot, ctl, 8.0, lambda i, obs, cmd: path.append(obs.ee_poses["gripper"].astype(float)))
    assert ctl.succeeded, ctl.message
    reached = robot.observe().ee_poses["gripper"].astype(float)
    assert np.linalg.norm(reached[:3] - target[:3]) < 0.005
    p = np.array(path)[:, :3]
    speed = np.linalg.norm(np.diff(p, axis=0), axis=1) * world.control_rate
    assert speed.max() < 0.1 * 1.2
    # close to a straight line: distance of every point from the start-target segment
    d = target[:3] - start[:3]
    u = d / np.linalg.norm(d)
    rel = p - start[:3]
    off_line = np.linalg.norm(rel - np.outer(rel @ u, u), axis=1)
    assert off_line.max() < 0.02


def test_cartesian_fails_and_says_so_for_an_unreachable_target(world: World) -> None:
    robot = world.add_robot("tiago")
    kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), robot.spec)
    target = robot.observe().ee_poses["gripper"][:3].astype(float) + np.array([0.0, 1.5, 0.0])
    ctl = CartesianController(robot.spec, kin, "hand_grasping_frame", target, max_linear_velocity=1.0, settle_time=0.5)
    run(world, robot, ctl, 6.0)
    assert ctl.status is Status.FAILED
    assert "from the target" in ctl.message and "out of reach" in ctl.message
    assert "(at its limit: " in ctl.message  # which joints stopped it: the arm stretched out sideways
    q = robot.observe().joint_positions
    assert np.all(q >= robot.spec.position_lower - 0.01) and np.all(q <= robot.spec.position_upper + 0.01)


# ------------------------------------------------------------------------ gripper
def _g1_hand_with_cylinder(world: World, place_object: bool) -> tuple[SimRobot, int | None]:
    robot = world.add_robot("g1_hands")
    world.step(10)
    if not place_object:
        return robot, None
    palm = robot.link_pose("right_hand_palm_link").astype(float)
    pos, quat = pb.multiplyTransforms(palm[:3], palm[3:], (0.10, 0.04, 0.0), (0, 0, 0, 1))
    shape = world.client.createCollisionShape(pb.GEOM_CYLINDER, radius=0.02, height=0.12)
    return robot, world.client.createMultiBody(0, shape, -1, pos, quat)  # a fixed bar in the hand


def test_gripper_closing_on_nothing_is_not_a_grasp(world: World) -> None:
    robot, _ = _g1_hand_with_cylinder(world, place_object=False)
    ctl = GripperController(robot.spec, close=True, duration=0.8)
    run(world, robot, ctl, 3.0)
    assert ctl.succeeded and not ctl.grasped and ctl.message == "closed on nothing"
    assert robot.observe().gripper < 0.05
    strict = GripperController(robot.spec, close=True, expect_object=True)
    run(world, robot, strict, 2.0)
    assert strict.status is Status.FAILED and "without finding an object" in strict.message


def test_gripper_detects_a_grasp_from_the_finger_positions(world: World) -> None:
    robot, _ = _g1_hand_with_cylinder(world, place_object=True)
    ctl = GripperController(robot.spec, close=True, duration=0.8)
    run(world, robot, ctl, 3.0)
    assert ctl.succeeded and ctl.grasped, ctl.message
    assert 0.1 < ctl.opening < 0.4  # the fingers stopped on the bar, well short of closed
    opener = GripperController(robot.spec, close=False, duration=0.5)
    run(world, robot, opener, 2.0)
    assert opener.succeeded and robot.observe().gripper > 0.9


def test_gripper_detects_a_grasp_from_contact_force(world: World) -> None:
    robot, bar = _g1_hand_with_cylinder(world, place_object=True)
    assert bar is not None
    ctl = GripperController(
        robot.spec, close=True, duration=0.8, contact_force=lambda: world.contact_force(robot.body_id, bar)
    )
    run(world, robot, ctl, 3.0)
    assert ctl.grasped and "contact force" in ctl.message
    assert ctl.opening > 0.5  # detected at first touch, before the fingers stall


# --------------------------------------------------------------------- G1 whole body
def test_g1_waves_and_reaches_while_the_legs_hold_it_standing(world: World) -> None:
    g1 = world.add_robot("g1")
    world.step(30)
    spec = g1.spec
    kin = Kinematics.for_spec(get_robot("g1").urdf_path(), spec)
    obs = g1.observe()
    target = obs.base_pose[:3].astype(float) + np.array([0.30, -0.20, 0.25])
    wb = WholeBodyPoseController(spec, kin).gesture("wave").reach("right_rubber_hand", target)
    pelvis: list[float] = []
    legs: list[float] = []
    leg_idx = [spec.index(j) for j in wb.stance]
    hand_z: list[float] = []

    def record(i: int, o: Observation, cmd: Command | None) -> None:
        pelvis.append(float(o.base_pose[2]))
        legs.append(float(np.max(np.abs(o.joint_positions[leg_idx] - spec.home[leg_idx]))))
        hand_z.append(float(o.ee_poses["right_hand"][2]))

    run(world, g1, wb, 10.0, record)
    world.step(30)
    assert wb.succeeded, wb.message
    assert max(hand_z) > obs.base_pose[2] + 0.35  # the waving hand went up above the shoulders
    assert max(pelvis) - min(pelvis) < 0.02  # still standing: the pelvis height barely moved
    assert max(legs) < 0.05
    assert wb.reach_errors[0] < 0.005
    assert np.linalg.norm(g1.observe().ee_poses["right_hand"][:3] - target) < 0.015


def test_g1_reach_out_of_range_fails_with_the_reason(world: World) -> None:
    g1 = world.add_robot("g1")
    kin = Kinematics.for_spec(get_robot("g1").urdf_path(), g1.spec)
    wb = WholeBodyPoseController(g1.spec, kin).reach("left_rubber_hand", [1.5, 0.0, 1.0])
    run(world, g1, wb, 1.0)
    assert wb.status is Status.FAILED and "beyond the chain's reach" in wb.message


# --------------------------------------------------------------------------- base
def test_occupancy_map_free_distance() -> None:
    occ = OccupancyMap.from_boxes((-2, -2), (2, 2), [((1.0, -0.5, 0.0), (1.5, 0.5, 0.7))], resolution=0.05)
    assert occ.occupied(1.2, 0.0) and not occ.occupied(0.0, 0.0) and occ.occupied(5.0, 0.0)
    # a 0.3 m radius robot at the origin facing +x: its front is at 0.3, the box starts at 1.0
    assert occ.free_distance(0.0, 0.0, 0.0, 0.3, 0.3, 2.0) == pytest.approx(0.7, abs=0.05)
    assert occ.free_distance(0.0, 0.0, np.pi / 2, 0.3, 0.3, 1.0) == pytest.approx(1.0)  # nothing within 1 m
    assert occ.free_distance(0.0, 0.0, np.pi / 2, 0.3, 0.3, 2.0) == pytest.approx(1.65, abs=0.05)  # the wall
    ignored = OccupancyMap.from_boxes((-2, -2), (2, 2), [((1.0, -0.5, 2.2), (1.5, 0.5, 2.5))])
    assert not ignored.occupied(1.2, 0.0)  # above the robot


@pytest.fixture
def care_room(tmp_path: Path) -> Iterator[Scene]:
    """The care room without the patient and the G1 (far from the base's path, and costly to simulate)."""
    config = yaml.safe_load(assets.path("scenes/care_room.yaml").read_text())
    for label in ("patient", "g1"):
        del config["robots"][label]
    file = tmp_path / "care_room_base.yaml"
    file.write_text(yaml.safe_dump(config))
    with scene.load(file, seed=0) as care:
        yield care


def room_map(care: Scene) -> OccupancyMap:
    """Floor map of the care room from the simulator's bounding boxes of the furniture and other robots."""
    client = care.world.client

    def aabb(body: int) -> tuple[np.ndarray, np.ndarray]:
        boxes = [client.getAABB(body, link) for link in range(-1, client.getNumJoints(body))]
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)

    boxes = [aabb(o.body_id) for o in care.objects.values()]
    boxes += [aabb(r.body_id) for label, r in care.robots.items() if label != "tiago"]
    sx, sy = care.room_size
    return OccupancyMap.from_boxes((-sx / 2, -sy / 2), (sx / 2, sy / 2), boxes)


def test_base_goes_to_the_table_within_its_limits_then_stops_before_driving_through_it(care_room: Scene) -> None:
    tiago, world = care_room.robots["tiago"], care_room.world
    occupancy = room_map(care_room)
    goal = care_room.places["dining_table"].pose
    ctl = BaseController(goal, occupancy=occupancy, max_linear=0.4, max_linear_acc=0.4)
    twists: list[np.ndarray] = []
    run(world, tiago, ctl, 12.0, lambda i, o, c: twists.append(np.array(c.base_twist)))
    assert ctl.succeeded, ctl.message
    pose = ctl.pose(tiago.observe())
    assert np.linalg.norm(pose[:2] - goal[:2]) < 0.05
    assert abs(pose[2] - goal[2]) < 0.06
    tw = np.array(twists)
    assert np.abs(tw[:, 0]).max() <= 0.4 + 1e-9 and np.abs(tw[:, 2]).max() <= 0.8 + 1e-9
    assert np.abs(np.diff(tw[:, 0])).max() * world.control_rate <= 0.4 + 1e-6

    # now send it through the table, to a point behind it against the north wall
    table = care_room.objects["dining_table"]
    through = [table.position()[0] - 0.2, 1.9, np.pi / 2]
    ctl = BaseController(through, occupancy=occupancy, stop_margin=0.1, blocked_timeout=1.0)
    touched: list[float] = []
    run(world, tiago, ctl, 10.0, lambda i, o, c: touched.append(world.contact_force(tiago.body_id, table.body_id)))
    assert ctl.status is Status.FAILED and "blocked" in ctl.message
    assert max(touched) == 0.0  # it never touched the table
    front = tiago.observe().base_pose[1] + 0.3
    table_edge = world.client.getAABB(table.body_id)[0][1]
    assert 0.02 < table_edge - front < 0.3  # stopped short of the table's edge
    assert np.linalg.norm(tiago.observe().base_twist[:2]) < 0.01


def test_base_reverses_to_a_goal_close_behind_without_turning_round(care_room: Scene) -> None:
    """A goal 0.4 m behind (reverse_within 0.6) is reached backwards, the heading never far from the start's:
    turning round on the spot would swing an outstretched arm through a half circle. Without reverse it turns."""
    tiago, world = care_room.robots["tiago"], care_room.world
    occupancy = room_map(care_room)

    def drive(goal: np.ndarray, **kwargs: float) -> float:
        """Drive to ``goal``; the largest heading change on the way (rad)."""
        ctl = BaseController(goal, occupancy=occupancy, **kwargs)
        start, turned = ctl.pose(tiago.observe())[2], [0.0]
        run(world, tiago, ctl, 15.0, lambda i, o, c: turned.append(abs(wrap_angle(ctl.pose(o)[2] - start))))
        assert ctl.succeeded, ctl.message
        assert np.linalg.norm(ctl.pose(tiago.observe())[:2] - goal[:2]) < 0.05
        return max(turned)

    here = BaseController(np.zeros(3)).pose(tiago.observe())
    behind = np.r_[here[:2] - 0.4 * np.array([np.cos(here[2]), np.sin(here[2])]), here[2]]
    assert drive(behind, reverse_within=0.6) < 0.2
    drive(here, reverse_within=0.6)  # forwards, back where it was
    assert drive(behind) > 2.5  # the default turns round first
