"""G1 environments: balance survival, pushes, falls, walk reward and success against hand computation,
and the simplified collision model."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest
import yaml

import tianji.sim  # noqa: F401  (registers the environments)
from tianji.control import AssetError
from tianji.sim import World, get_robot, load_robot_file
from tianji.sim.envs.g1 import G1BalanceEnv, G1WalkEnv
from tianji.sim.urdf import fit_primitive, prepare_urdf, read_mesh_vertices

ZERO = np.zeros(29, dtype=np.float32)


def _set_base(env: G1BalanceEnv | G1WalkEnv, position, rpy, lin=(0, 0, 0), ang=(0, 0, 0)) -> None:
    """Place the pelvis frame (not its centre of mass) and set its velocities."""
    c = env.world.client
    quat = pb.getQuaternionFromEuler(rpy)
    inertial = c.getDynamicsInfo(env.body, -1)
    com_pos, com_quat = pb.multiplyTransforms(position, quat, inertial[3], inertial[4])
    c.resetBasePositionAndOrientation(env.body, com_pos, com_quat)
    c.resetBaseVelocity(env.body, list(lin), list(ang))


# ------------------------------------------------------------------ balance
def test_home_pose_survives_20_s_without_pushes() -> None:
    env = gym.make("tianji/G1Balance-v0", pushes=False)
    env.reset(seed=0)
    steps, terminated, truncated, info = 0, False, False, {}
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(ZERO)
        steps += 1
    assert steps == 1000 and truncated and not terminated
    assert info["is_success"] and not info["fallen"]
    assert info["base_height"] > 0.7 and info["tilt"] < 0.1
    assert reward == pytest.approx(sum(info["reward_terms"].values()))
    env.close()


def test_pushes_are_applied_to_the_torso_and_move_the_robot() -> None:
    pushed = G1BalanceEnv(push_force=(150.0, 150.0), push_interval=(0.2, 0.2), push_duration=0.1)
    calm = G1BalanceEnv(pushes=False)
    obs_a, _ = pushed.reset(seed=1)
    obs_b, _ = calm.reset(seed=1)
    assert np.array_equal(obs_a, obs_b)  # same start; the push schedule is drawn after it
    direction, forces = None, []
    for _ in range(15):
        _, _, _, _, info = pushed.step(ZERO)
        calm.step(ZERO)
        forces.append(info["push_force"])
        if direction is None and info["push_force"] > 0:
            direction = pushed.push_vector / np.linalg.norm(pushed.push_vector)
    assert forces[:9] == [0.0] * 9  # the first push starts at 0.2 s (physics step 20, in control step 10)
    assert max(forces) == pytest.approx(150.0) and info["pushes"] == 1
    assert direction is not None and direction[2] == 0.0
    dv = pushed.read_state().lin_vel - calm.read_state().lin_vel
    assert float(dv @ direction) > 0.1  # 15 N s on a 35 kg robot: about 0.4 m/s
    pushed.close()
    calm.close()


def test_fall_terminates_with_the_fall_penalty() -> None:
    env = gym.make("tianji/G1Balance-v0", pushes=False)
    env.reset(seed=0)
    base = env.unwrapped
    _set_base(base, (0.0, 0.0, 0.3), (0.0, math.pi / 2, 0.0))  # lying on its front
    _, _, terminated, truncated, info = env.step(ZERO)
    assert terminated and not truncated and info["fallen"] and not info["is_success"]
    assert info["reward_terms"]["fall"] == -10.0 and info["reward_terms"]["alive"] == 0.0
    env.reset(seed=0)
    _set_base(base, (0.0, 0.0, 0.45), (0.0, 0.0, 0.0))  # upright, but the pelvis below 0.5 m
    assert env.step(ZERO)[2]
    env.close()


def test_balance_reward_terms_match_hand_computation() -> None:
    env = G1BalanceEnv(pushes=False)
    env.reset(seed=0)
    roll, lin, ang = 0.3, (0.4, -0.3, 0.2), (0.5, 0.1, -0.2)
    _set_base(env, (0.0, 0.0, 0.77), (roll, 0.0, 0.0), lin, ang)
    env.action, env.prev_action = np.full(29, 0.5), np.zeros(29)
    terms = env.reward_terms()
    r = np.array(pb.getMatrixFromQuaternion(pb.getQuaternionFromEuler((roll, 0.0, 0.0)))).reshape(3, 3)
    w_body = r.T @ np.array(ang)
    expected = {
        "alive": 1.0,
        "orientation": -1.0 * math.sin(roll) ** 2,
        "lin_vel_xy": -0.5 * (0.4**2 + 0.3**2),
        "ang_vel_xy": -0.05 * (w_body[0] ** 2 + w_body[1] ** 2),
        "action_rate": -0.01 * 29 * 0.25,
        "fall": 0.0,
    }
    assert terms.keys() == expected.keys()
    for key, value in expected.items():
        assert terms[key] == pytest.approx(value, abs=1e-6), key
    env.close()


# --------------------------------------------------------------------- walk
def test_walk_reward_terms_match_hand_computation() -> None:
    env = G1WalkEnv()
    env.reset(seed=0)
    yaw, roll = 0.7, 0.2
    lin, ang = (0.5, 0.2, 0.1), (0.3, -0.1, 0.4)
    _set_base(env, (0.3, -0.2, 0.77), (roll, 0.0, yaw), lin, ang)
    env.command = np.array([0.6, -0.1, 0.2])
    env.action, env.prev_action = np.full(29, 0.5), np.full(29, -0.5)
    terms = env.reward_terms()

    # by hand: velocity in the heading frame, world yaw rate, gravity and angular velocity in the pelvis frame
    vx = math.cos(yaw) * lin[0] + math.sin(yaw) * lin[1]
    vy = -math.sin(yaw) * lin[0] + math.cos(yaw) * lin[1]
    lin_err2 = (0.6 - vx) ** 2 + (-0.1 - vy) ** 2
    yaw_err2 = (0.2 - 0.4) ** 2
    r = np.array(pb.getMatrixFromQuaternion(pb.getQuaternionFromEuler((roll, 0.0, yaw)))).reshape(3, 3)
    w_body = r.T @ np.array(ang)
    expected = {
        "track_lin": 1.0 * math.exp(-lin_err2 / 0.25),
        "track_yaw": 0.5 * math.exp(-yaw_err2 / 0.25),
        "lin_vel_z": -2.0 * 0.1**2,
        "ang_vel_xy": -0.05 * (w_body[0] ** 2 + w_body[1] ** 2),
        "orientation": -1.0 * math.sin(roll) ** 2,
        "action_rate": -0.01 * 29 * 1.0,
        "fall": 0.0,
    }
    assert terms.keys() == expected.keys()
    for key, value in expected.items():
        assert terms[key] == pytest.approx(value, abs=1e-6), key
    lin_e, yaw_e = env.tracking_errors(env.read_state())
    assert lin_e == pytest.approx(math.sqrt(lin_err2), abs=1e-6) and yaw_e == pytest.approx(0.2, abs=1e-6)
    _set_base(env, (0.3, -0.2, 0.77), (roll, 1.3, yaw))  # pitched 1.3 rad: fallen
    assert env.reward_terms()["fall"] == -10.0
    env.close()


def test_walk_success_rule_and_episode_mean_errors() -> None:
    env = G1WalkEnv()
    assert env.success((0.25, 0.35), fallen=False, steps=1000)
    assert not env.success((0.26, 0.1), fallen=False, steps=1000)
    assert not env.success((0.1, 0.36), fallen=False, steps=1000)
    assert not env.success((0.1, 0.1), fallen=True, steps=1000)
    assert not env.success((0.1, 0.1), fallen=False, steps=999)

    obs, _ = env.reset(seed=2)
    assert np.array_equal(obs[97:], env.command.astype(np.float32))
    errors = []
    for _ in range(5):
        obs, reward, _, _, info = env.step(ZERO)
        errors.append(env.tracking_errors(env.read_state()))
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
    assert info["tracking_error_lin"] == pytest.approx(np.mean([e[0] for e in errors]), abs=1e-9)
    assert info["tracking_error_yaw"] == pytest.approx(np.mean([e[1] for e in errors]), abs=1e-9)
    env.close()


def test_walk_command_is_resampled_every_5_s_and_standing_still_succeeds_on_a_zero_command() -> None:
    env = gym.make("tianji/G1Walk-v0")
    base = env.unwrapped
    base.command_low = base.command_high = (0.0, 0.0, 0.0)  # every command "stand still"
    env.reset(seed=0)
    truncated, info = False, {}
    while not truncated:
        _, _, terminated, truncated, info = env.step(ZERO)
        assert not terminated
    assert info["is_success"] and info["tracking_error_lin"] < 0.05
    base.command_low, base.command_high = G1WalkEnv.command_low, G1WalkEnv.command_high
    base.stand_probability = 0.0
    obs, _ = env.reset(seed=3)
    commands = [obs[97:].copy()]
    for step in range(1, 252):
        obs, *_ = env.step(ZERO)
        if step in (249, 250):
            commands.append(obs[97:].copy())
    assert np.array_equal(commands[0], commands[1]) and not np.array_equal(commands[1], commands[2])
    low, high = np.array(G1WalkEnv.command_low), np.array(G1WalkEnv.command_high)
    assert np.all((commands[2] >= low) & (commands[2] <= high))
    env.close()


# --------------------------------------------------------- simple collision
def test_simplified_collision_g1_loads_the_same_joints_and_stands(tmp_path: Path) -> None:
    g1 = get_robot("g1")
    entry = {
        "urdf": g1.urdf,
        "base": "floating",
        "dof": 29,
        "spawn_height": g1.spawn_height,
        "home": dict(g1.home),
        "gains": {"kp": g1.kp, "kd": g1.kd},
        "collision": "simple",
    }
    file = tmp_path / "robots.yaml"
    file.write_text(yaml.safe_dump({"g1_simple_test": entry}))
    (desc,) = load_robot_file(file)
    assert desc.collision == "simple"
    with World() as world:
        mesh = world.add_robot("g1", position=(3.0, 0.0))
        simple = world.add_robot("g1_simple_test")
        assert simple.spec.joint_names == mesh.spec.joint_names and simple.dof == 29
        c = world.client
        # every collision shape is a primitive (PyBullet reports the URDF's cylinders as "unknown_file" hulls)
        files = {
            shape[4]
            for j in range(-1, c.getNumJoints(simple.body_id))
            for shape in c.getCollisionShapeData(simple.body_id, j)
        }
        assert files <= {b"", b"unknown_file"}
        world.step(120)  # 2 s
        pose = simple.observe().base_pose
        assert pose[2] > 0.7 and np.linalg.norm(pose[:2]) < 0.05
        feet = {simple._link_index[n] for n in ("left_ankle_roll_link", "right_ankle_roll_link")}
        touching = {contact.link_a for contact in world.contacts(simple.body_id, world.ground_id)}
        assert touching == feet  # standing on its feet only: no fitted shape reaches the floor
    file.write_text(yaml.safe_dump({"g1_bad_test": {**entry, "collision": "capsules"}}))
    with pytest.raises(AssetError, match="collision must be 'mesh' or 'simple'"):
        load_robot_file(file)
    with pytest.raises(ValueError, match="collision must be one of"):
        prepare_urdf(g1.urdf_path(), collision="hull")


def test_fitted_primitives_enclose_the_mesh_and_stl_files_parse(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # a long thin cylinder along a tilted axis -> a capsule; a flat slab -> a box
    t = rng.uniform(-0.2, 0.2, 2000)
    phi = rng.uniform(0, 2 * np.pi, 2000)
    axis = np.array([1.0, 1.0, 0.0]) / math.sqrt(2)
    side1, side2 = np.array([0.0, 0.0, 1.0]), np.array([1.0, -1.0, 0.0]) / math.sqrt(2)
    rod = t[:, None] * axis + 0.03 * (np.cos(phi)[:, None] * side1 + np.sin(phi)[:, None] * side2)
    slab = rng.uniform([-0.2, -0.1, -0.01], [0.2, 0.1, 0.01], (2000, 3)) + np.array([0.5, 0.0, 0.0])
    for points, kind in ((rod, "capsule"), (slab, "box")):
        prim = fit_primitive(points)
        assert prim.kind == kind
        local = (points - np.array(prim.center)) @ np.array(prim.rotation)
        if kind == "box":
            assert np.all(np.abs(local) <= np.array(prim.size) / 2 + 1e-9)
            assert sorted(prim.size) == pytest.approx([0.02, 0.2, 0.4], abs=0.01)
        else:
            z = np.clip(local[:, 2], -prim.length / 2, prim.length / 2)
            dist = np.linalg.norm(local - np.c_[np.zeros_like(z), np.zeros_like(z), z], axis=1)
            assert np.all(dist <= prim.radius + 1e-9)
            assert prim.radius == pytest.approx(0.03, abs=0.003) and prim.length == pytest.approx(0.4, abs=0.02)

    triangles = rng.uniform(-1, 1, (4, 3, 3)).astype(np.float32)
    binary = tmp_path / "part.stl"
    record = np.zeros(4, dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    record["v"] = triangles
    binary.write_bytes(b"\0" * 80 + np.uint32(4).tobytes() + record.tobytes())
    ascii_file = tmp_path / "part_ascii.STL"
    facets = "".join(
        "facet normal 0 0 1\n outer loop\n"
        + "".join(f"  vertex {x} {y} {z}\n" for x, y, z in tri)
        + " endloop\nendfacet\n"
        for tri in triangles.astype(np.float64)
    )
    ascii_file.write_text(f"solid part\n{facets}endsolid part\n")
    for file in (binary, ascii_file):
        assert np.allclose(read_mesh_vertices(file), triangles.reshape(-1, 3), atol=1e-6)
    with pytest.raises(AssetError, match="only STL and OBJ"):
        read_mesh_vertices(tmp_path / "part.dae")


def test_env_speed_benchmark_writes_its_table(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "env_speed.py"
    spec = importlib.util.spec_from_file_location("env_speed", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "env_speed.md"
    args = ["--quick", "--envs", "tianji/G1Balance-v0", "--no-mujoco", "--no-variants", "--out", str(out)]
    assert bench.main(args) == 0
    text = out.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `tianji/G1Balance-v0`"))
    assert "g1 (simple collision)" in row and "1/100 s x 2, 40 it" in row
    assert "python experiments/bench/env_speed.py --quick" in text and "Humanoid-v5 skipped" in text
