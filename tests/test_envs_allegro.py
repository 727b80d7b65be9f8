"""AllegroReorient-v0: reward, success and drop terms against hand-computed values on constructed states."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest

import tianji.sim  # noqa: F401
from tianji.sim.envs.allegro import quaternion_angle


def _set_cube(env: gym.Env, position: np.ndarray, yaw_from_goal: float, axis: str = "z") -> None:
    base = env.unwrapped
    goal = base.goal.astype(float)
    offset = pb.getQuaternionFromEuler((yaw_from_goal, 0, 0) if axis == "x" else (0, 0, yaw_from_goal))
    quat = pb.multiplyTransforms((0, 0, 0), goal, (0, 0, 0), offset)[1]
    base.world.client.resetBasePositionAndOrientation(base.cube, position.tolist(), quat)


@pytest.mark.parametrize("reward_type", ["dense", "sparse"])
def test_reorient_reward_and_success_match_hand_computed_values(reward_type: str) -> None:
    env = gym.make("tianji/AllegroReorient-v0", reward_type=reward_type)
    env.reset(seed=2)
    base = env.unwrapped
    rest = base.cube_rest_position()
    for angle, axis in [(0.3, "z"), (0.39, "x"), (0.5, "z"), (2.0, "x")]:
        _set_cube(env, rest, angle, axis)
        reward, terminated, info = base._evaluate()
        assert info["angle"] == pytest.approx(angle, abs=1e-4)
        assert info["is_success"] is (angle < 0.4) and not terminated
        expected = -angle if reward_type == "dense" else (0.0 if angle < 0.4 else -1.0)
        assert reward == pytest.approx(expected, abs=1e-4)
    _set_cube(env, rest - [0, 0, 0.2], 0.1)  # close to the goal, but off the hand: dropped
    reward, terminated, info = base._evaluate()
    assert terminated and info["dropped"] and not info["is_success"]
    env.close()


def test_quaternion_angle_is_batched_and_sign_invariant() -> None:
    q = np.array(pb.getQuaternionFromEuler((0, 0, 0.7)))
    identity = np.array([0, 0, 0, 1.0])
    batch = quaternion_angle(np.stack([q, -q, identity]), np.stack([identity] * 3))
    assert batch == pytest.approx([0.7, 0.7, 0.0], abs=1e-9)
    assert quaternion_angle(q, q) == pytest.approx(0.0, abs=1e-6)
    flipped = np.array(pb.getQuaternionFromEuler((math.pi, 0, 0)))
    assert quaternion_angle(flipped, identity) == pytest.approx(math.pi, abs=1e-6)


def test_cube_rests_on_the_open_hand_and_goal_modes() -> None:
    env = gym.make("tianji/AllegroReorient-v0", goal_mode="full")
    obs, _ = env.reset(seed=0)
    assert np.linalg.norm(obs["desired_goal"]) == pytest.approx(1.0, abs=1e-5)
    for _ in range(50):
        obs, _, terminated, _, info = env.step(np.zeros(16, dtype=np.float32))
    assert not terminated and not info["dropped"]
    assert obs["observation"][34] > env.unwrapped.palm_height()  # cube z above the palm
    env.close()
    with pytest.raises(ValueError, match="goal_mode"):
        gym.make("tianji/AllegroReorient-v0", goal_mode="roll")


POWER_GRASP = np.array([0.0, 1.3, 1.3, 1.3, 0.0, 1.3, 1.3, 1.3, 0.0, 1.3, 1.3, 1.3, 1.396, 0.7, 1.0, 1.0])


def scripted_grasp(env: gym.Env, seed: int, shape: str) -> dict:
    """Lower the wrist over the object, close a power grasp, lift 18 cm and hold."""
    from tianji.sim.envs.allegro import TABLE_TOP

    base = env.unwrapped
    env.reset(seed=seed, options={"shape": shape})
    info: dict = {}
    for k in range(250):
        action = np.zeros(17)
        close = np.clip((POWER_GRASP - base.robot.position_targets) / base.max_joint_delta, -1, 1)
        if k < 40 and base.wrist_height > TABLE_TOP + 0.10 + 1e-6:
            action[16] = max(-1.0, (TABLE_TOP + 0.10 - base.wrist_height) / 0.008)
        elif k < 75:
            action[:16] = close
        else:
            action[:16] = close
            action[16] = 0.5 if base.wrist_height < TABLE_TOP + 0.28 else 0.0
        _, _, terminated, _, info = env.step(action.astype(np.float32))
        if terminated:
            break
    return info


@pytest.mark.parametrize(("shape", "seed"), [("cube", 0), ("cylinder", 1), ("sphere", 1)])
def test_scripted_power_grasp_lifts_each_shape(shape: str, seed: int) -> None:
    env = gym.make("tianji/AllegroGrasp-v0")
    info = scripted_grasp(env, seed, shape)
    assert info["shape"] == shape
    assert info["is_success"], f"lift {info['lift']:.3f} m, held {info['held_steps']} steps"
    assert info["lift"] >= 0.10 and info["held_steps"] >= 50
    env.close()


def test_grasp_reward_terms_and_bad_shape() -> None:
    env = gym.make("tianji/AllegroGrasp-v0")
    env.reset(seed=0, options={"shape": "cube"})
    base = env.unwrapped
    reward, terminated, info = base._evaluate()
    tips = base.robot.observe().ee_poses
    pos = base._object()[0]
    reach = np.mean([np.linalg.norm(p[:3] - pos) for p in tips.values()])
    assert reward == pytest.approx(-reach, abs=1e-5) and not terminated and info["lift"] == pytest.approx(0, abs=1e-3)
    lifted = pos + np.array([0.0, 0.0, 0.2])
    base.world.client.resetBasePositionAndOrientation(base.object_id, lifted.tolist(), [0, 0, 0, 1])
    reward, _, info = base._evaluate()  # lifted 20 cm: lift term saturates at 2.0, held bonus 0.05
    reach = np.mean([np.linalg.norm(p[:3] - lifted) for p in tips.values()])
    assert reward == pytest.approx(-reach + 2.0 + 0.05, abs=1e-4) and info["held_steps"] == 1
    with pytest.raises(ValueError, match="shape"):
        env.reset(seed=0, options={"shape": "torus"})
    env.close()
