"""Kinematics from the real URDFs: FK matches PyBullet, Jacobians match finite differences, IK reaches or refuses."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tianji.control import Command, RobotSpec
from tianji.control.errors import UnknownJointError, UnknownNameError
from tianji.control.kinematics import Kinematics
from tianji.control.transforms import pose_error, pose_to_matrix
from tianji.sim import World, WorldConfig
from tianji.sim.registry import get_robot

# (robot, end-effector link, chain root): TIAGo's arm with the torso, G1's arms, Allegro fingers
CHAINS = [
    ("tiago", "hand_grasping_frame", None),
    ("g1", "left_rubber_hand", "torso_link"),
    ("g1", "right_rubber_hand", "torso_link"),
    ("allegro", "link_3.0_tip", None),
    ("allegro", "link_15.0_tip", None),
]


@pytest.fixture(scope="module")
def specs() -> Iterator[dict[str, RobotSpec]]:
    """Robot specs as SimRobot builds them (joint order and limits), one world for all."""
    with World(WorldConfig(seed=0)) as world:
        yield {
            name: world.add_robot(name, position=(3.0 * i, 0.0)).spec
            for i, name in enumerate(["tiago", "g1", "allegro"])
        }


def kinematics(name: str, spec: RobotSpec) -> Kinematics:
    return Kinematics.for_spec(get_robot(name).urdf_path(), spec)


def test_chains_are_the_arm_and_finger_joints(specs: dict[str, RobotSpec]) -> None:
    tiago = kinematics("tiago", specs["tiago"])
    assert tiago.chain("hand_grasping_frame") == ("torso_lift_joint", *(f"arm_{i}_joint" for i in range(1, 8)))
    g1 = kinematics("g1", specs["g1"])
    assert g1.chain("left_rubber_hand", "torso_link")[0] == "left_shoulder_pitch_joint"
    assert len(g1.chain("left_rubber_hand", "torso_link")) == 7
    assert len(g1.chain("left_rubber_hand")) == 10  # with the three waist joints
    allegro = kinematics("allegro", specs["allegro"])
    assert allegro.chain("link_15.0_tip") == ("joint_12.0", "joint_13.0", "joint_14.0", "joint_15.0")


@pytest.mark.parametrize("name", ["tiago", "g1", "allegro"])
def test_forward_kinematics_matches_pybullet(name: str) -> None:
    """After moving to random in-limit joints, pinocchio's FK equals PyBullet's link poses to 0.1 mm."""
    rng = np.random.default_rng(1)
    with World(WorldConfig(seed=0, gravity=0.0)) as world:
        robot = world.add_robot(name)
        spec = robot.spec
        kin = kinematics(name, spec)
        lo = np.where(np.isfinite(spec.position_lower), spec.position_lower, -1.0)
        hi = np.where(np.isfinite(spec.position_upper), spec.position_upper, 1.0)
        robot.command(Command("position", rng.uniform(lo, hi)))
        world.step(30)
        obs = robot.observe()
    for ee, link in get_robot(name).end_effectors.items():
        pose = kin.fk_pose(obs.joint_positions.astype(float), link, obs.base_pose.astype(float))
        err = pose_error(pose_to_matrix(obs.ee_poses[ee]), pose_to_matrix(pose))
        assert np.linalg.norm(err[:3]) < 1e-4, (ee, err)
        assert np.linalg.norm(err[3:]) < 1e-3, (ee, err)


@pytest.mark.parametrize(("name", "frame", "root"), CHAINS)
def test_jacobian_matches_finite_differences(specs: dict[str, RobotSpec], name: str, frame: str, root: str) -> None:
    kin = kinematics(name, specs[name])
    joints = kin.chain(frame, root)
    q = specs[name].home.copy()
    jac = kin.jacobian(q, frame, joints)
    eps = 1e-6
    base = kin.fk(q, frame)
    numeric = np.zeros_like(jac)
    for k, j in enumerate(joints):
        dq = q.copy()
        dq[kin.index(j)] += eps
        numeric[:, k] = pose_error(base, kin.fk(dq, frame)) / eps
    np.testing.assert_allclose(jac, numeric, atol=1e-5)


@pytest.mark.parametrize(("name", "frame", "root"), CHAINS)
def test_ik_reaches_reachable_targets_within_5mm(specs: dict[str, RobotSpec], name: str, frame: str, root: str) -> None:
    """Targets are FK of seeded random in-limit configurations: full poses and positions, from the home pose."""
    spec = specs[name]
    kin = kinematics(name, spec)
    joints = kin.chain(frame, root)
    cols = [kin.index(j) for j in joints]
    rng = np.random.default_rng(7)
    for _ in range(8):
        q = spec.home.copy()
        q[cols] = rng.uniform(spec.position_lower[cols], spec.position_upper[cols])
        target = kin.fk_pose(q, frame)
        for goal in (target, target[:3]):
            result = kin.ik(frame, goal, spec.home, joints)
            assert result.success and result.reachable, result.message
            reached = kin.fk(result.q, frame)
            assert np.linalg.norm(reached[:3, 3] - target[:3]) < 0.005
            if goal.shape == (7,):
                assert np.linalg.norm(pose_error(reached, pose_to_matrix(target))[3:]) < 0.02
            assert np.all(result.q >= spec.position_lower - 1e-9) and np.all(result.q <= spec.position_upper + 1e-9)
            others = np.setdiff1d(np.arange(spec.dof), cols)
            np.testing.assert_array_equal(result.q[others], spec.home[others])  # only the chain moved


def test_ik_in_the_world_frame_moves_the_real_tiago_there() -> None:
    """A world-frame IK solution, commanded to the simulated TIAGo, puts its gripper within 1 cm of the target."""
    with World(WorldConfig(seed=0)) as world:
        robot = world.add_robot("tiago", position=(0.5, -0.3), yaw=0.7)
        world.step(5)
        obs = robot.observe()
        kin = kinematics("tiago", robot.spec)
        target = obs.base_pose[:3].astype(float) + np.array([0.45 * np.cos(0.7), 0.45 * np.sin(0.7), 0.85])
        result = kin.ik("hand_grasping_frame", target, obs.joint_positions, base_pose=obs.base_pose)
        assert result.success, result.message
        assert result.position_error < 0.001
        arm = kin.chain("hand_grasping_frame")
        robot.command(Command("position", {j: float(result.q[kin.index(j)]) for j in arm}))
        world.step(150)
        reached = robot.observe().ee_poses["gripper"][:3]
    assert np.linalg.norm(reached - target) < 0.01


@pytest.mark.parametrize(
    ("name", "frame", "root", "target"),
    [
        ("tiago", "hand_grasping_frame", None, [3.0, 0.0, 0.8]),  # across the room
        ("g1", "right_rubber_hand", "torso_link", [0.0, -1.2, 0.3]),  # a metre to the side
        ("allegro", "link_3.0_tip", None, [0.0, 0.0, -0.5]),  # below the wrist
    ],
)
def test_ik_reports_targets_beyond_reach(
    specs: dict[str, RobotSpec], name: str, frame: str, root: str, target: list[float]
) -> None:
    kin = kinematics(name, specs[name])
    result = kin.ik(frame, np.array(target), specs[name].home, kin.chain(frame, root))
    assert not result.success and not result.reachable
    assert "beyond the chain's reach" in result.message
    assert result.iterations == 0  # decided from the chain's length, no search


def test_ik_reports_unreachable_orientation_after_search(specs: dict[str, RobotSpec]) -> None:
    """A fingertip pose within reach but with an orientation four joints cannot make: searched, then refused."""
    kin = kinematics("allegro", specs["allegro"])
    q = specs["allegro"].home
    tip = kin.fk_pose(q, "link_3.0_tip")
    target = tip.copy()
    target[3:] = [1.0, 0.0, 0.0, 0.0]  # flipped upside down about x
    result = kin.ik("link_3.0_tip", target, q, restarts=3)
    assert not result.success and not result.reachable
    assert "not reached from 4 starts" in result.message
    assert np.all(result.q <= specs["allegro"].position_upper + 1e-9)


def test_unknown_names_say_what_exists(specs: dict[str, RobotSpec]) -> None:
    kin = kinematics("tiago", specs["tiago"])
    with pytest.raises(UnknownNameError, match="hand_grasping_frame"):
        kin.fk(specs["tiago"].home, "hand_grasping_frme")
    with pytest.raises(UnknownJointError, match="arm_1_joint"):
        Kinematics(get_robot("tiago").urdf_path(), ["arm_1_jiont"])
    with pytest.raises(ValueError, match="finite"):
        kin.ik("hand_grasping_frame", np.array([np.nan, 0.0, 1.0]), specs["tiago"].home)


def test_gravity_torques_hold_tiagos_arm() -> None:
    """Torque mode with pinocchio's gravity torques alone holds TIAGo's arm; with zero torque it falls."""
    drift = {}
    for compensate in (False, True):
        with World(WorldConfig(seed=0)) as world:
            robot = world.add_robot("tiago")
            world.step(30)
            kin = kinematics("tiago", robot.spec)
            arm = [f"arm_{i}_joint" for i in range(1, 8)]
            idx = [robot.spec.index(j) for j in arm]
            start = robot.observe().joint_positions[idx].copy()
            for _ in range(60):
                obs = robot.observe()
                tau = kin.gravity_torques(obs.joint_positions.astype(float), obs.base_pose.astype(float))
                tau = tau if compensate else np.zeros_like(tau)
                robot.command(Command("torque", {j: float(tau[i]) for j, i in zip(arm, idx, strict=True)}))
                world.step()
            drift[compensate] = float(np.max(np.abs(robot.observe().joint_positions[idx] - start)))
    assert drift[True] < 0.01
    assert drift[False] > 0.5
