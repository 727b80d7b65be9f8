"""Every registered environment: Gymnasium and SB3 checkers, shapes, seeding, limits, NaN, success."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tianji.sim  # noqa: F401  (registers the environments)
from tianji.control import InvalidCommandError
from tianji.sim.envs import ENVIRONMENTS

ENV_IDS = sorted(ENVIRONMENTS)


def _make(env_id: str, **kwargs: object) -> gym.Env:
    return gym.make(env_id, **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("obs_mode", ["state", "rgbd"])
def test_passes_gymnasium_and_sb3_checkers(env_id: str, obs_mode: str) -> None:
    env = _make(env_id, render_mode="rgb_array", obs_mode=obs_mode).unwrapped
    env.spec = None  # the checker would otherwise re-create it in "human" mode, which needs a display
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded Box warnings: joint velocities have no natural bound
        check_env(env)
        sb3_check_env(env)
    frame = env.render()
    assert frame is not None and frame.shape == (240, 320, 3) and frame.std() > 5
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_and_actions_replay_the_same_episode(env_id: str) -> None:
    env = _make(env_id)
    actions = np.random.default_rng(0).uniform(-1, 1, (20, *env.action_space.shape)).astype(np.float32)

    def episode(seed: int) -> bytes:
        obs, _ = env.reset(seed=seed)
        out = [np.concatenate([np.ravel(v) for v in obs.values()]) if isinstance(obs, dict) else obs]
        for a in actions:
            obs, *_ = env.step(a)
            out.append(np.concatenate([np.ravel(v) for v in obs.values()]) if isinstance(obs, dict) else obs)
        return np.concatenate(out).tobytes()

    first, second, other = episode(3), episode(3), episode(4)
    assert first == second
    assert first != other
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_observation_equals_a_fresh_read_of_the_state(env_id: str) -> None:
    """step() reads each piece of state once and shares it (TianjiEnv.step_read); what it returns must
    equal reading everything afresh at the same moment, including after a body moved inside
    _evaluate (the patient's fall in CareFallResponse-v0)."""
    env = _make(env_id)
    base = env.unwrapped
    env.reset(seed=5)
    rng = np.random.default_rng(5)
    steps = 30
    if env_id == "tianji/CareFallResponse-v0":
        steps = base.fall_step + 2
    saw_fall = False
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        base.forget_step_reads()  # nothing kept outside a step; if anything were, it goes now
        fresh = base._observation()
        if isinstance(obs, dict):
            for key in obs:
                np.testing.assert_array_equal(obs[key], fresh[key], err_msg=key)
        else:
            np.testing.assert_array_equal(obs, fresh)
        saw_fall = saw_fall or bool(getattr(base, "fallen", False))
    if env_id == "tianji/CareFallResponse-v0":
        assert saw_fall
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_limits_hold_under_extreme_actions_and_nan_is_refused(env_id: str) -> None:
    env = _make(env_id)
    env.reset(seed=0)
    base = env.unwrapped
    rng = np.random.default_rng(1)
    for k in range(60):
        action = np.sign(rng.uniform(-1, 1, env.action_space.shape)) * (1.0 if k % 2 else 5.0)  # beyond [-1, 1] too
        env.step(action.astype(np.float32))
    for label, joint in base.actuated:
        if label not in base.robots:  # an actuator that is not a robot joint (e.g. a wrist slide)
            continue
        robot = base.robots[label]
        i = robot.spec.index(joint)
        q = robot.observe().joint_positions[i]
        assert robot.spec.position_lower[i] - 0.02 <= q <= robot.spec.position_upper[i] + 0.02, joint
    with pytest.raises(InvalidCommandError, match="NaN"):
        env.step(np.full(env.action_space.shape, np.nan, dtype=np.float32))
    with pytest.raises(InvalidCommandError, match="shape"):
        env.step(np.zeros(3, dtype=np.float32))
    env.close()


@pytest.mark.parametrize("env_id", ["tianji/TiagoReach-v0", "tianji/AllegroReach-v0"])
def test_oracle_reaches_the_goal_and_reward_is_her_compatible(env_id: str) -> None:
    env = _make(env_id, reward_type="sparse")
    obs, _ = env.reset(seed=5)
    base = env.unwrapped
    info = {"is_success": False}
    for _ in range(100):
        robot = base.robot
        current = robot.position_targets[base._joint_idx]
        action = np.clip((base.goal_configuration - current) / base.max_joint_delta, -1, 1).astype(np.float32)
        obs, reward, _, _, info = env.step(action)
        if info["is_success"]:
            break
    assert info["is_success"], f"oracle ended {info['distance']:.4f} m from the goal"
    assert reward == 0.0
    batch = base.compute_reward(np.stack([obs["achieved_goal"]] * 4), np.stack([obs["desired_goal"]] * 4), [{}] * 4)
    assert batch.shape == (4,) and np.all(batch == 0.0)
    far = obs["desired_goal"] + 0.5
    assert base.compute_reward(obs["achieved_goal"], far, {}) == -1.0
    dense = gym.make(env_id, reward_type="dense").unwrapped
    shape = obs["achieved_goal"].shape
    expected = -np.sqrt(3 * 0.03**2) * (shape[0] // 3)  # every point 3 cm off along each axis
    assert dense.compute_reward(np.zeros(shape), np.full(shape, 0.03), {}) == pytest.approx(expected, rel=1e-5)
    env.close()
    dense.close()


@pytest.mark.parametrize("reward_type", ["dense", "sparse"])
def test_reach_step_reward_equals_compute_reward_exactly(reward_type: str) -> None:
    """The step computes the reward on Python floats; HER relabels with the vectorized compute_reward."""
    from tianji.sim.envs.reach import point_distances

    env = _make("tianji/AllegroReach-v0", reward_type=reward_type)
    env.reset(seed=3)
    base = env.unwrapped
    rng = np.random.default_rng(2)
    for k in range(40):
        if k == 20:  # the goal put where the tips are: success, sparse reward -0.0
            base.robot.reset(base.robot.start_positions)
            base.goal = base._points()
            action = np.zeros(16, dtype=np.float32)
        else:
            action = rng.uniform(-1, 1, 16).astype(np.float32)
        obs, reward, _, _, info = env.step(action)
        assert reward == float(base.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        distances = point_distances(obs["achieved_goal"], obs["desired_goal"])
        assert info["distance"] == float(distances.max())
        assert info["is_success"] == bool((distances <= base.tolerance).all())
    env.close()


def test_domain_randomization_changes_dynamics_and_rejects_unknown_keys() -> None:
    env = _make("tianji/AllegroReach-v0", randomization={"mass_scale": 0.3, "gain_scale": 0.2, "obs_noise": 0.01})
    base = env.unwrapped
    body = base.robot.body_id
    env.reset(seed=0)
    m0, kp0 = base.world.client.getDynamicsInfo(body, 2)[0], base.robot.kp
    env.reset(seed=1)
    assert base.world.client.getDynamicsInfo(body, 2)[0] != m0 and base.robot.kp != kp0
    env.close()
    with pytest.raises(ValueError, match="unknown domain randomization"):
        _make("tianji/AllegroReach-v0", randomization={"gravity": 1.0})


def test_sb3_vectorized_with_two_workers() -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env("tianji.sim:tianji/AllegroReach-v0", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    obs = venv.reset()
    assert obs["observation"].shape == (2, 60)
    obs, rewards, _, infos = venv.step(np.zeros((2, 16), dtype=np.float32))
    assert rewards.shape == (2,) and "is_success" in infos[0]
    venv.close()


def test_gymnasium_async_vector_env() -> None:
    envs = gym.make_vec("tianji.sim:tianji/TiagoReach-v0", num_envs=2, vectorization_mode="async")
    obs, info = envs.reset(seed=[1, 2])
    assert obs["desired_goal"].shape == (2, 3) and not np.allclose(obs["desired_goal"][0], obs["desired_goal"][1])
    _, rewards, _, _, info = envs.step(np.zeros((2, 8), dtype=np.float32))
    assert rewards.shape == (2,) and info["is_success"].shape == (2,)
    envs.close()


@pytest.mark.parametrize("env_id", ["tianji/TiagoReach-v0", "tianji/AllegroReach-v0"])
def test_cartesian_control_moves_the_points_and_a_proportional_controller_succeeds(env_id: str) -> None:
    env = _make(env_id, control="cartesian", reward_type="sparse")
    base = env.unwrapped
    n_points = len(base.points)
    assert env.action_space.shape == (3 * n_points,)
    checked = _make(env_id, control="cartesian").unwrapped
    checked.spec = None  # the checker would otherwise re-create it in "human" mode, which needs a display
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(checked)
    checked.close()
    obs, _ = env.reset(seed=7)
    start = obs["achieved_goal"].copy()
    for _ in range(5):  # +x for every point: the points move along +x, the joints stay within their limits
        obs, *_ = env.step(np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), n_points))
    moved = (obs["achieved_goal"] - start).reshape(-1, 3)
    assert np.all(moved[:, 0] > 0.02), moved
    assert np.all(np.abs(moved[:, 0]) > 2 * np.abs(moved[:, 1:]).max(axis=1)), moved
    successes = 0
    for seed in range(5):  # proportional control in Cartesian space: the task a learned policy has to find
        obs, _ = env.reset(seed=100 + seed)
        for _ in range(100):
            error = obs["desired_goal"] - obs["achieved_goal"]
            obs, reward, _, _, info = env.step(np.clip(0.3 * error / base.max_point_delta, -1, 1).astype(np.float32))
        successes += info["is_success"]
        assert reward == (0.0 if info["is_success"] else -1.0)
    assert successes == 5
    with pytest.raises(InvalidCommandError, match=f"{base.points[0]}.y"):
        env.step(np.array([0.0, np.nan, 0.0] * n_points, dtype=np.float32))
    with pytest.raises(ValueError, match="control must be"):
        _make(env_id, control="task")
    env.close()
