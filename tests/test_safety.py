"""The safety filter against the simulated robots: clamps, NaN rejection, person-force stop, e-stop, workspace box."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml

from tianji import assets
from tianji.control import Command, InvalidCommandError, Observation, Robot, RobotSpec
from tianji.control.controllers import CartesianController, SequenceController
from tianji.control.kinematics import Kinematics
from tianji.control.loop import ControlLoop
from tianji.control.safety import SafeRobot, SafetyLimits, SafetyStopError
from tianji.sim import World, scene
from tianji.sim.registry import get_robot
from tianji.sim.scene import Scene


class Recorder(Robot):
    """Passes everything through to a real robot and keeps the commands that reached it."""

    def __init__(self, robot: Robot) -> None:
        self.robot = robot
        self.commands: list[Command] = []

    @property
    def spec(self) -> RobotSpec:
        return self.robot.spec

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        return self.robot.observe(cameras)

    def command(self, cmd: Command) -> None:
        self.commands.append(cmd)
        self.robot.command(cmd)

    def stop(self) -> None:
        self.robot.stop()

    def sent(self, joint: str) -> np.ndarray:
        """Every value sent for ``joint``, in order."""
        return np.array([c.targets[joint] for c in self.commands if isinstance(c.targets, dict) and joint in c.targets])


def test_position_targets_are_clamped_and_rate_limited(world: World) -> None:
    tiago = world.add_robot("tiago")
    rec = Recorder(tiago)
    limits = SafetyLimits(position_margin=0.05, velocity_scale=0.5, acceleration=4.0)
    safe = SafeRobot(rec, limits)
    spec, dt = tiago.spec, 1.0 / world.control_rate
    i = spec.index("arm_1_joint")
    upper, vmax = spec.position_upper[i], 0.5 * spec.velocity_limits[i]
    assert safe.spec.position_upper[i] == pytest.approx(upper - 0.05)
    assert safe.spec.velocity_limits[i] == pytest.approx(vmax)
    safe.command(Command("position", {"arm_1_joint": 10.0}))  # far beyond the 2.75 rad limit
    for _ in range(180):
        world.step()
        safe.command(Command())  # an empty command every step keeps the ramp going
    sent = rec.sent("arm_1_joint")
    assert sent.max() == pytest.approx(upper - 0.05)  # clamped into the limit, minus the margin
    speed = np.diff(sent) / dt
    assert speed.max() == pytest.approx(vmax)  # as fast as allowed, half the velocity limit, and no faster
    assert np.abs(np.diff(speed)).max() / dt <= 4.0 + 1e-6  # nor accelerating faster than 4 rad/s^2
    assert tiago.observe().joint_positions[i] == pytest.approx(upper - 0.05, abs=0.02)
    assert safe.interventions["position_limit"] == 1 and safe.interventions["velocity_limit"] == 1
    assert not tiago.clamped  # nothing out of limits ever reached the robot


def test_velocity_torque_base_and_gripper_are_clamped(world: World) -> None:
    tiago = world.add_robot("tiago")
    rec = Recorder(tiago)
    safe = SafeRobot(rec, SafetyLimits(velocity_scale=0.5, effort_scale=0.5, base_velocity=(0.3, 0.0, 0.5)))
    spec = tiago.spec
    i = spec.index("arm_4_joint")
    safe.command(Command("velocity", {"arm_4_joint": 100.0}))
    assert rec.sent("arm_4_joint")[-1] == pytest.approx(10.0 / world.control_rate)  # acceleration-limited first step
    for _ in range(60):
        safe.command(Command("velocity", {"arm_4_joint": 100.0}))
    assert rec.sent("arm_4_joint").max() == pytest.approx(0.5 * spec.velocity_limits[i])
    safe.command(Command("torque", {"arm_4_joint": -1000.0}))
    assert rec.sent("arm_4_joint")[-1] == pytest.approx(-0.5 * spec.effort_limits[i])
    safe.command(Command(base_twist=(2.0, 0.4, -3.0), gripper=1.7))
    assert rec.commands[-1].gripper == 1.0
    first = np.asarray(rec.commands[-1].base_twist)
    np.testing.assert_allclose(first, [0.5 / world.control_rate, 0.0, -1.5 / world.control_rate])
    for _ in range(60):
        safe.command(Command(base_twist=(2.0, 0.4, -3.0)))
    np.testing.assert_allclose(rec.commands[-1].base_twist, [0.3, 0.0, -0.5])
    safe.command(Command(base_twist=(0.0, 0.0, 0.0)))  # stopping is never rate-limited
    np.testing.assert_allclose(rec.commands[-1].base_twist, 0.0)
    for reason in ("velocity_limit", "acceleration_limit", "effort_limit", "base_velocity", "base_acceleration"):
        assert safe.interventions[reason] >= 1, reason
    assert safe.interventions["gripper_limit"] == 1


def test_nan_and_inf_are_rejected_and_never_reach_the_robot(world: World, caplog: pytest.LogCaptureFixture) -> None:
    tiago = world.add_robot("tiago")
    rec = Recorder(tiago)
    safe = SafeRobot(rec)
    world.step(10)
    before = tiago.observe().joint_positions.copy()
    bad = [
        Command("position", {"arm_1_joint": float("nan")}),
        Command("position", {"arm_1_joint": 0.5, "arm_2_joint": float("inf")}),
        Command("velocity", np.full(tiago.spec.dof, np.nan)),
        Command(base_twist=(float("nan"), 0.0, 0.0)),
        Command(gripper=float("-inf")),
    ]
    with caplog.at_level(logging.WARNING, logger="tianji.control.safety"):
        for cmd in bad:
            with pytest.raises(InvalidCommandError, match="NaN or inf"):
                safe.command(cmd)
    world.step(30)
    assert rec.commands == []  # nothing reached the robot
    assert safe.interventions["invalid_command"] == 5
    assert sum("invalid_command" in r.message for r in caplog.records) == 5
    np.testing.assert_allclose(tiago.observe().joint_positions, before, atol=0.01)


def test_emergency_stop_latches_until_reset(world: World) -> None:
    tiago = world.add_robot("tiago")
    safe = SafeRobot(tiago)
    spec = tiago.spec
    i = spec.index("arm_1_joint")
    for _ in range(20):  # velocity commands ramp up within the acceleration limit, one command per step
        safe.command(Command("velocity", {"arm_1_joint": 0.8}))
        world.step()
    assert tiago.observe().joint_velocities[i] > 0.5
    safe.emergency_stop("test")
    world.step(10)  # stopping
    held = tiago.observe().joint_positions[i]
    for _ in range(5):
        with pytest.raises(SafetyStopError, match=r"emergency stop \(test\) is latched") as err:
            safe.command(Command("position", {"arm_1_joint": 0.0}))
        assert err.value.reason == "emergency_stop"
        world.step(6)
    assert abs(tiago.observe().joint_positions[i] - held) < 0.01  # latched: it stayed
    assert safe.stopped == "emergency_stop"
    assert safe.interventions["emergency_stop"] == 1 and safe.interventions["refused_while_stopped"] == 5
    safe.reset()
    assert safe.stopped is None
    for _ in range(120):
        safe.command(Command("position", {"arm_1_joint": 0.0}))
        world.step()
    assert abs(tiago.observe().joint_positions[i]) < 0.03  # moves again after reset


def test_emergency_stop_from_another_thread_ends_the_control_loop(world: World) -> None:
    tiago = world.add_robot("tiago")
    safe = SafeRobot(tiago)
    spin = {"arm_1_joint": 0.6}
    loop = ControlLoop(
        safe,
        lambda obs: Command("velocity", spin),
        rate=world.control_rate,
        stepper=world.step,
        miss_burst=1000,
        miss_window=1000,
    )  # timing is not under test here
    timer = threading.Timer(0.3, safe.emergency_stop, kwargs={"reason": "button"})
    timer.start()
    stats = loop.run(duration=5.0)
    timer.join()
    assert stats.stopped_reason == "safety_stop: emergency_stop"
    assert stats.wall_time < 2.0
    world.step(20)
    assert abs(tiago.observe().joint_velocities[tiago.spec.index("arm_1_joint")]) < 0.05


def test_workspace_box_keeps_the_gripper_below_its_ceiling(world: World) -> None:
    tiago = world.add_robot("tiago")
    world.step(5)
    kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), tiago.spec)
    box = ((-0.5, -1.0, 0.3), (1.2, 1.0, 0.9))  # in TIAGo's base frame: the gripper stays under 0.9 m
    limits = SafetyLimits(workspace=box, workspace_frames=("hand_grasping_frame",), workspace_in_base_frame=True)
    safe = SafeRobot(tiago, limits, kinematics=kin)
    start = tiago.observe().ee_poses["gripper"].astype(float)
    target = start[:3] + np.array([0.15, 0.0, 0.3])  # 1.07 m: above the ceiling
    ctl = CartesianController(safe.spec, kin, "hand_grasping_frame", target, settle_time=0.5)
    heights: list[float] = []
    loop = ControlLoop(
        safe,
        ctl,
        rate=world.control_rate,
        realtime=False,
        stepper=world.step,
        callback=lambda i, o, c: heights.append(float(o.ee_poses["gripper"][2])),
    )
    loop.run(max_ticks=180)
    assert start[2] < 0.9
    assert max(heights) < 0.9 + 0.01
    assert max(heights) > 0.85  # it went up to the ceiling, not just stopped
    assert safe.interventions["workspace"] > 0
    with pytest.raises(ValueError, match="needs kinematics"):
        SafeRobot(tiago, limits)


@pytest.fixture
def bedside(tmp_path: Path) -> Iterator[Scene]:
    """The care room with TIAGo parked beside the patient's chest (and no G1)."""
    config = yaml.safe_load(assets.path("scenes/care_room.yaml").read_text())
    del config["robots"]["g1"]
    config["robots"]["tiago"].update(position=[-1.85, 0.62], yaw=1.5708, randomize={})
    file = tmp_path / "bedside.yaml"
    file.write_text(yaml.safe_dump(config))
    with scene.load(file, seed=0) as care:
        yield care


def test_person_force_limit_stops_the_arm_driven_into_the_patient(
    bedside: Scene, caplog: pytest.LogCaptureFixture
) -> None:
    tiago, patient, world = bedside.robots["tiago"], bedside.robots["patient"], bedside.world
    kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), tiago.spec)

    def force() -> float:
        return world.contact_force(tiago.body_id, patient.body_id)

    safe = SafeRobot(tiago, SafetyLimits(person_force_limit=10.0), person_force=force)
    chest = patient.link_pose("middle_thorax")[:3].astype(float)
    above = np.array([chest[0], chest[1] - 0.08, 1.0])
    into = above - np.array([0.0, 0.0, 0.45])  # 20 cm into the patient's chest
    fast = {"joint_velocity_scale": 0.9, "joint_acceleration": 10.0, "position_tolerance": 0.02}
    approach = SequenceController(
        [
            CartesianController(safe.spec, kin, "hand_grasping_frame", above, max_linear_velocity=0.35, **fast),
            CartesianController(safe.spec, kin, "hand_grasping_frame", into, max_linear_velocity=0.1),
        ]
    )
    forces: list[float] = []
    loop = ControlLoop(
        safe,
        approach,
        rate=world.control_rate,
        realtime=False,
        stepper=world.step,
        callback=lambda i, o, c: forces.append(force()),
    )
    with caplog.at_level(logging.WARNING, logger="tianji.control.safety"):
        stats = loop.run(max_ticks=600)
    assert approach.index == 1  # it was on the way down into the patient
    assert stats.stopped_reason == "safety_stop: person_force"
    assert safe.stopped == "person_force" and safe.interventions["person_force"] == 1
    assert safe.last_force > 10.0
    assert any("exceeded 10.0 N" in r.message for r in caplog.records)
    touch_z = float(tiago.observe().ee_poses["gripper"][2])
    after: list[float] = []
    for _ in range(60):  # one second after the stop
        world.step()
        after.append(force())
    assert max(after[30:]) < 1.0  # backed off: no more pressing on the patient
    assert float(tiago.observe().ee_poses["gripper"][2]) > touch_z + 0.005  # the gripper moved back up
    with pytest.raises(SafetyStopError, match="call reset"):
        safe.command(Command("position", {"arm_1_joint": 0.0}))
    safe.reset()
    safe.command(Command())  # accepted again


def test_position_ramps_continue_in_their_own_mode_while_other_joints_take_velocities(world: World) -> None:
    tiago = world.add_robot("tiago")
    rec = Recorder(tiago)
    safe = SafeRobot(rec)
    safe.command(Command("position", {"arm_1_joint": 2.0}))  # a ramp of about 1.8 rad
    for _ in range(10):
        safe.command(Command("velocity", {"arm_4_joint": 0.2}))
    modes = {(str(c.mode), name) for c in rec.commands if isinstance(c.targets, dict) for name in c.targets}
    assert modes == {("position", "arm_1_joint"), ("velocity", "arm_4_joint")}  # never a position sent as a speed
    assert 0.0 < rec.sent("arm_1_joint")[-1] - rec.sent("arm_1_joint")[0] < 0.5
