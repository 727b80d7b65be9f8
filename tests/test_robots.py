"""Robot registry and SimRobot against a real PyBullet world (DIRECT mode)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pybullet as pb
import pytest

from tianji.control import (
    AssetError,
    BaseType,
    Command,
    ControlMode,
    InvalidCommandError,
    RobotClosedError,
    UnknownJointError,
    UnknownNameError,
)
from tianji.sim import World, WorldConfig, get_robot, load_robot_file, register_robot
from tianji.sim.urdf import FRAME_LINK_MASS, prepare_urdf

DOCUMENTED_DOF = {"g1": 29, "g1_hands": 43, "allegro": 16, "tiago": 48, "human": 36}


@pytest.mark.parametrize("name", sorted(DOCUMENTED_DOF))
def test_robot_loads_with_documented_joints_and_no_1kg_frame_links(world: World, name: str) -> None:
    robot = world.add_robot(name)
    assert robot.spec.dof == DOCUMENTED_DOF[name]
    urdf = get_robot(name).urdf_path()
    declared = {
        link.attrib["name"]: float(link.find("inertial/mass").attrib["value"])  # type: ignore[union-attr]
        for link in ET.parse(urdf).getroot().findall("link")
        if link.find("inertial") is not None
    }
    c = world.client
    links = {c.getBodyInfo(robot.body_id)[0].decode(): -1}
    links |= {c.getJointInfo(robot.body_id, j)[12].decode(): j for j in range(c.getNumJoints(robot.body_id))}
    for link, index in links.items():
        mass = c.getDynamicsInfo(robot.body_id, index)[0]
        if index == -1 and robot.spec.base is BaseType.FIXED:
            continue  # PyBullet reports a fixed base as mass 0
        if declared.get(link, 0.0) > 0.0:
            assert mass == pytest.approx(declared[link], abs=1e-9)
        else:  # frame-only link (no inertia or zero mass): tiny explicit mass, never PyBullet's 1 kg
            assert mass == pytest.approx(FRAME_LINK_MASS), f"{name}: frame link {link} has mass {mass}"
    # joint names are the URDF's, in URDF order
    urdf_joints = [j.attrib["name"] for j in ET.parse(urdf).getroot().findall("joint") if j.attrib["type"] != "fixed"]
    assert list(robot.spec.joint_names) == urdf_joints
    obs = robot.observe()
    assert obs.joint_positions.dtype == np.float32 and obs.joint_positions.shape == (robot.spec.dof,)
    assert set(obs.ee_poses) == set(robot.spec.end_effectors) and all(
        np.isfinite(p).all() for p in obs.ee_poses.values()
    )


def test_frame_links_are_given_tiny_mass_in_g1_and_human() -> None:
    g1 = prepare_urdf(get_robot("g1").urdf_path())
    assert {"imu_in_torso", "imu_in_pelvis", "d435_link", "mid360_link"} <= set(g1.frame_links)
    human = prepare_urdf(get_robot("human").urdf_path())
    assert "left_upperleg_virtual" in human.frame_links


def test_home_poses_are_held(world: World) -> None:
    robots = {name: world.add_robot(name, position=(3.0 * i, 0.0)) for i, name in enumerate(["g1", "tiago", "allegro"])}
    world.step(120)  # 2 s
    for name, robot in robots.items():
        obs = robot.observe()
        err = np.abs(obs.joint_positions - robot.spec.home)
        active = ~np.isin(robot.spec.joint_names, robot.spec.passive_joints)
        assert err[active].max() < 0.05, f"{name} drifted {err.max():.3f} from home"
    assert robots["g1"].observe().base_pose[2] > 0.7, "G1 fell while holding its standing pose"


def test_position_command_reaches_target_and_respects_limits(world: World) -> None:
    tiago = world.add_robot("tiago")
    tiago.command(Command(ControlMode.POSITION, {"arm_4_joint": 1.2, "head_1_joint": 0.5}))
    world.step(180)
    q = tiago.observe().joint_positions
    assert q[tiago.spec.index("arm_4_joint")] == pytest.approx(1.2, abs=0.02)
    assert q[tiago.spec.index("head_1_joint")] == pytest.approx(0.5, abs=0.02)
    upper = tiago.spec.position_upper[tiago.spec.index("head_1_joint")]
    tiago.command(Command("position", {"head_1_joint": upper + 1.0}))
    world.step(120)
    assert tiago.observe().joint_positions[tiago.spec.index("head_1_joint")] <= upper + 0.01
    assert tiago.clamped["head_1_joint"] == 1


def test_full_vector_command_and_velocity_and_torque_modes(world: World) -> None:
    hand = world.add_robot("allegro")
    target = hand.spec.home.copy()
    target[hand.spec.index("joint_1.0")] = 1.0
    hand.command(Command(targets=target))
    world.step(120)
    assert hand.observe().joint_positions[hand.spec.index("joint_1.0")] == pytest.approx(1.0, abs=0.05)
    i = hand.spec.index("joint_5.0")
    hand.command(Command("velocity", {"joint_5.0": 0.5}))
    world.step(30)  # 0.5 s at 0.5 rad/s
    assert hand.observe().joint_velocities[i] == pytest.approx(0.5, abs=0.05)
    j = hand.spec.index("joint_9.0")
    before = hand.observe().joint_positions[j]
    hand.command(Command("torque", {"joint_9.0": 0.3}))
    world.step(20)
    obs = hand.observe()
    assert obs.joint_positions[j] > before + 0.2
    assert obs.joint_efforts[j] == pytest.approx(0.3)
    hand.command(Command("torque", {"joint_9.0": 1e6}))
    assert hand.observe().joint_efforts[j] == pytest.approx(hand.spec.effort_limits[j])
    assert hand.clamped["joint_9.0"] == 1


def test_nan_command_is_rejected_and_nothing_is_applied(world: World) -> None:
    tiago = world.add_robot("tiago")
    world.step(10)
    before = tiago.observe().joint_positions.copy()
    with pytest.raises(InvalidCommandError, match="arm_2_joint"):
        tiago.command(Command("position", {"arm_1_joint": 1.0, "arm_2_joint": float("nan")}))
    with pytest.raises(InvalidCommandError, match="base_twist"):
        tiago.command(Command(base_twist=(float("inf"), 0.0, 0.0)))
    world.step(60)
    assert np.allclose(tiago.observe().joint_positions, before, atol=1e-3), "a rejected command moved the robot"


def test_lean_per_step_calls_match_command_and_observe() -> None:
    """command_positions / joint_states / end_effector_positions (the environments' per-step path) give what
    command(Command("position", {...})) and observe() give: the same targets, clamping, counts and values."""
    with World(WorldConfig(seed=0)) as a, World(WorldConfig(seed=0)) as b:
        _lean_calls_match(a, b)


def _lean_calls_match(a: World, b: World) -> None:
    fast, slow = a.add_robot("tiago"), b.add_robot("tiago")
    names = ("torso_lift_joint", "arm_1_joint", "arm_2_joint", "head_1_joint")
    idx = np.array([fast.spec.index(n) for n in names])
    rng = np.random.default_rng(0)
    for _ in range(20):
        values = fast.position_targets[idx] + rng.uniform(-2.0, 2.0, len(names))  # often past a limit
        fast.command_positions(idx, values)
        slow.command(Command("position", dict(zip(names, values.tolist(), strict=True))))
        a.step()
        b.step()
        assert np.array_equal(fast.position_targets, slow.position_targets)
        obs = slow.observe()
        q, dq = fast.joint_states()
        assert np.array_equal(q, obs.joint_positions) and np.array_equal(dq, obs.joint_velocities)
        ees = tuple(obs.ee_poses)
        expected = np.concatenate([obs.ee_poses[e][:3] for e in ees])
        assert np.array_equal(fast.end_effector_positions(ees), expected)
    assert fast.clamped == slow.clamped and sum(fast.clamped.values()) > 0
    assert fast.gripper_opening() == slow.observe().gripper
    with pytest.raises(InvalidCommandError, match="arm_1_joint"):
        fast.command_positions(idx, np.array([0.1, float("nan"), 0.0, 0.0]))
    with pytest.raises(AssetError, match="no end effector"):
        fast.end_effector_positions(("nose",))


def test_reset_joints_moves_only_the_named_joints_and_holds_them(world: World) -> None:
    tiago = world.add_robot("tiago")
    world.step(20)
    before = tiago.observe().joint_positions.copy()
    pan, tilt = tiago.spec.index("head_1_joint"), tiago.spec.index("head_2_joint")
    tiago.reset_joints({"head_1_joint": 0.6, "head_2_joint": -5.0})  # tilt far past its limit: clamped
    q = tiago.observe().joint_positions
    assert q[pan] == pytest.approx(0.6, abs=1e-6) and q[tilt] == pytest.approx(tiago.spec.position_lower[tilt])
    others = np.ones(tiago.dof, dtype=bool)
    others[[pan, tilt]] = False
    assert np.array_equal(q[others], before[others])
    world.step(50)  # held there: the targets moved with the joints
    assert tiago.observe().joint_positions[pan] == pytest.approx(0.6, abs=0.01)
    with pytest.raises(UnknownJointError, match="head_1_joint"):
        tiago.reset_joints({"head_1": 0.0})
    with pytest.raises(InvalidCommandError, match="finite"):
        tiago.reset_joints({"head_1_joint": float("nan")})
    assert tiago.observe().joint_positions[pan] == pytest.approx(0.6, abs=0.01)  # nothing was applied


def test_bad_commands_give_clear_errors(world: World) -> None:
    g1 = world.add_robot("g1")
    with pytest.raises(UnknownJointError, match="left_knee_joint"):  # suggestion for a typo
        g1.command(Command("position", {"left_knee": 0.3}))
    with pytest.raises(InvalidCommandError, match="29 values"):
        g1.command(Command("position", [0.0] * 5))
    with pytest.raises(InvalidCommandError, match="floating base"):
        g1.command(Command(base_twist=(0.1, 0.0, 0.0)))
    with pytest.raises(InvalidCommandError, match="no gripper"):
        g1.command(Command(gripper=0.5))
    with pytest.raises(InvalidCommandError, match="unknown control mode"):
        g1.command(Command("impedance", {"left_knee_joint": 0.3}))


def test_tiago_base_twist_and_gripper(world: World) -> None:
    tiago = world.add_robot("tiago", yaw=np.pi / 2)
    tiago.command(Command(base_twist=(0.5, 0.3, 0.0)))  # vy is clamped: differential drive
    world.step(60)
    tiago.stop()
    world.step(30)
    pose = tiago.observe().base_pose
    assert pose[1] == pytest.approx(0.5, abs=0.05) and abs(pose[0]) < 0.02
    assert tiago.clamped["base"] == 1
    tiago.command(Command(gripper=0.0))
    world.step(90)
    assert tiago.observe().gripper < 0.15
    tiago.command(Command(gripper=1.0))
    world.step(90)
    assert tiago.observe().gripper > 0.85


@pytest.mark.parametrize("yaw", [0.0, np.pi / 2, -2.3])
def test_point_jacobian_matches_finite_differences_in_world_axes(world: World, yaw: float) -> None:
    """Linear and angular rows, with an offset point, for a base turned by ``yaw`` (PyBullet gives base axes)."""
    tiago = world.add_robot("tiago", position=(0.4, -0.3), yaw=yaw)
    joints = np.array([tiago.spec.index(j) for j in ("torso_lift_joint", *(f"arm_{i}_joint" for i in range(1, 8)))])
    offset = np.array([0.02, 0.045, -0.01])
    lo, hi = tiago.spec.position_lower[joints], tiago.spec.position_upper[joints]
    q0 = tiago.start_positions.copy()
    q0[joints] = lo + (hi - lo) * np.linspace(0.3, 0.7, len(joints))  # inside every range, off the tucked pose

    def frame(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tiago.reset(q)
        link = tiago._link_index["hand_grasping_frame"]
        state = world.client.getLinkState(tiago.body_id, link, computeForwardKinematics=True)
        rot = np.array(pb.getMatrixFromQuaternion(state[5])).reshape(3, 3)
        return np.array(state[4]) + rot @ offset, rot

    p0, r0 = frame(q0)
    jac = tiago.point_jacobian(("gripper",), joints, offsets=[offset], angular=True)
    assert jac.shape == (6, len(joints))
    eps = 1e-4
    for col, j in enumerate(joints):
        q = q0.copy()
        q[j] += eps
        p1, r1 = frame(q)
        skew = (r1 @ r0.T - np.eye(3)) / eps  # ~ [w]x for a small turn
        omega = np.array([skew[2, 1], skew[0, 2], skew[1, 0]])
        assert jac[:3, col] == pytest.approx((p1 - p0) / eps, abs=2e-3)
        assert jac[3:, col] == pytest.approx(omega, abs=2e-3)
    tiago.reset(q0)
    assert np.array_equal(tiago.point_jacobian(("gripper",), joints, offsets=[offset]), jac[:3])


def test_same_seed_gives_bit_identical_trajectories() -> None:
    def run(world: World) -> np.ndarray:
        g1 = world.add_robot("g1")
        out = []
        for k in range(40):
            g1.command(
                Command("position", {"left_shoulder_pitch_joint": -0.5 * np.sin(k / 10), "left_knee_joint": 0.5})
            )
            world.step()
            out.append(g1.observe().as_dict()["joint_positions"])
        return np.stack(out)

    with World(WorldConfig(seed=7)) as a, World(WorldConfig(seed=7)) as b:
        first = run(a)
        second = run(b)  # a second world alive in the same process must not interfere
    assert first.tobytes() == second.tobytes()


def test_stop_holds_and_close_releases(world: World) -> None:
    tiago = world.add_robot("tiago")
    tiago.command(Command("velocity", {"head_1_joint": 1.0}))
    world.step(10)
    tiago.stop()
    held = tiago.observe().joint_positions[tiago.spec.index("head_1_joint")]
    world.step(60)
    assert tiago.observe().joint_positions[tiago.spec.index("head_1_joint")] == pytest.approx(held, abs=0.02)
    tiago.close()
    assert "tiago" not in world.robots  # the label is free for a new robot
    with pytest.raises(RobotClosedError):
        tiago.observe()


def test_unknown_robot_lists_known_names(world: World) -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'tiago'") as info:
        world.add_robot("tiagoo")
    assert "g1_hands" in str(info.value)


def test_missing_urdf_and_missing_mesh_errors(tmp_path: Path) -> None:
    with pytest.raises(AssetError, match="not found"):
        register_robot("ghost", urdf=tmp_path / "ghost.urdf")
    urdf = tmp_path / "broken.urdf"
    urdf.write_text(
        '<robot name="broken"><link name="base"><visual><geometry>'
        '<mesh filename="package://nosuchpkg/meshes/base.stl"/></geometry></visual></link></robot>'
    )
    with pytest.raises(AssetError, match=r"package://nosuchpkg/meshes/base\.stl"):
        prepare_urdf(urdf)


def test_user_robot_from_yaml(tmp_path: Path, world: World) -> None:
    urdf = tmp_path / "arm.urdf"
    urdf.write_text(
        """<robot name="arm">
  <link name="base"><inertial><mass value="2"/>
    <inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial>
    <collision><geometry><box size="0.1 0.1 0.1"/></geometry></collision></link>
  <link name="tool"/>
  <link name="upper"><inertial><mass value="0.5"/>
    <inertia ixx="0.001" iyy="0.001" izz="0.001" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <joint name="shoulder" type="revolute"><parent link="base"/><child link="upper"/><origin xyz="0 0 0.1"/>
    <axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="20" velocity="2"/></joint>
  <joint name="tool_joint" type="fixed"><parent link="upper"/><child link="tool"/><origin xyz="0 0 0.3"/></joint>
</robot>"""
    )
    file = tmp_path / "robots.yaml"
    file.write_text(
        f"my_arm:\n  urdf: {urdf.name}\n  base: fixed\n  home: {{shoulder: 0.5}}\n  end_effectors: {{tool: tool}}\n"
    )
    (desc,) = load_robot_file(file)
    assert desc.base is BaseType.FIXED
    arm = world.add_robot("my_arm")
    world.step(60)
    assert arm.spec.joint_names == ("shoulder",)
    assert arm.observe().joint_positions[0] == pytest.approx(0.5, abs=0.02)
    assert "tool" in arm.observe().ee_poses
    file.write_text(f"bad_arm:\n  urdf: {urdf.name}\n  home: {{elbow: 1.0}}\n")
    load_robot_file(file)
    with pytest.raises(AssetError, match="elbow"):
        world.add_robot("bad_arm")


def test_human_presets_lying_and_sitting_hold(world: World) -> None:
    from tianji import assets

    world.load_urdf(assets.path("objects/chair.urdf"), (0.0, 0.0, 0.0))
    sitting = world.add_robot("human", position=(-0.05, 0.0), preset="sitting", label="sitting")
    lying = world.add_robot("human", position=(0.0, 3.0), preset="lying", label="lying")
    world.step(120)
    head, pelvis = sitting.link_pose("middle_head"), sitting.link_pose("middle_pelvis")
    assert 0.5 < pelvis[2] < 0.7 and head[2] > pelvis[2] + 0.4, "the sitting patient slid off or fell back"
    lying_head = lying.link_pose("middle_head")
    assert lying_head[2] < 0.3 and lying_head[0] < -0.3, "lying preset: head on the floor towards -x"
    with pytest.raises(UnknownNameError, match="kneeling"):
        world.add_robot("human", preset="kneeling")


def test_tiago_hand_safety_box_is_not_a_solid(world: World) -> None:
    tiago = world.add_robot("tiago")
    c = world.client
    link = next(
        j for j in range(c.getNumJoints(tiago.body_id)) if c.getJointInfo(tiago.body_id, j)[12] == b"hand_safety_box"
    )
    assert c.getCollisionShapeData(tiago.body_id, link) == ()
    palm = next(
        j for j in range(c.getNumJoints(tiago.body_id)) if c.getJointInfo(tiago.body_id, j)[12] == b"hand_palm_link"
    )
    assert c.getCollisionShapeData(tiago.body_id, palm) != ()
