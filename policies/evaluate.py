"""Load a trained policy (a run folder or a model file), evaluate it on seeded episodes, record a video."""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from tianji.policies.config import ConfigError, TrainConfig
from tianji.policies.train import (
    BEST_VECNORMALIZE_FILE,
    VECNORMALIZE_FILE,
    algorithm_class,
    env_id,
    load_run_config,
    make_env,
)
from tianji.sim.video import VideoRecorder


@dataclass
class Policy:
    """A trained model with the configuration and observation normalization it was trained with."""

    model: BaseAlgorithm
    config: TrainConfig
    normalizer: VecNormalize | None
    path: Path

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action for one (unbatched) observation."""
        if self.normalizer is not None:
            obs = self.normalizer.normalize_obs(obs)
        action, _ = self.model.predict(obs, deterministic=deterministic)
        return action

    def make_env(self, **kwargs: Any) -> gym.Env:
        """A single environment as the policy was trained on."""
        return gym.make(env_id(self.config.env), **{**self.config.env_kwargs, **kwargs})


def normalizer_file(model_file: Path) -> Path | None:
    """The VecNormalize statistics that go with a model file, or None if the run did not normalize.

    ``best_model.zip`` goes with ``best_vecnormalize.pkl`` (saved with it); every other model with
    ``vecnormalize.pkl`` (the end of training, when ``model.zip`` and the checkpoints' last were saved).
    """
    folder = model_file.parent
    if model_file.name == "best_model.zip" and (folder / BEST_VECNORMALIZE_FILE).is_file():
        return folder / BEST_VECNORMALIZE_FILE
    stats = folder / VECNORMALIZE_FILE
    return stats if stats.is_file() else None


def default_model(folder: Path) -> Path | None:
    """A run or zoo folder's model: ``best_model.zip`` when its statistics are known, else ``model.zip``.

    A normalizing run from before ``best_vecnormalize.pkl`` existed has only the end-of-training
    statistics, which do not fit an earlier best model: its ``model.zip`` is used instead.
    """
    best, final = folder / "best_model.zip", folder / "model.zip"
    normalized = (folder / VECNORMALIZE_FILE).is_file()
    if best.is_file() and (not normalized or (folder / BEST_VECNORMALIZE_FILE).is_file()):
        return best
    return final if final.is_file() else (best if best.is_file() else None)


def load_policy(run_or_model: str | Path) -> Policy:
    """A run folder (see :func:`default_model`) or a ``.zip`` next to its ``config.yaml``."""
    path = Path(run_or_model)
    if path.is_dir():
        folder = path
        model_file = default_model(folder)
        if model_file is None:
            raise ConfigError(f"{folder} holds no best_model.zip or model.zip; is it a training run or a zoo entry?")
    elif path.suffix == ".zip" and path.is_file():
        folder, model_file = path.parent, path
    else:
        raise ConfigError(f"{path} is neither a run folder nor a model .zip file")
    config = load_run_config(folder)
    # a hindsight-replay model cannot be loaded without an environment to rebuild its buffer around
    env = make_env(config, 1, config.seed) if config.her is not None else None
    model = algorithm_class(config.algo).load(model_file, env=env, device="cpu")
    normalizer = None
    stats = normalizer_file(model_file)
    if stats is not None:
        with stats.open("rb") as handle:
            normalizer = pickle.load(handle)
        normalizer.training = False
    return Policy(model, config, normalizer, model_file)


@dataclass
class EvalResult:
    """Return and success over seeded episodes."""

    env: str
    algo: str
    model: str
    episodes: int
    seed: int
    mean_return: float
    std_return: float
    success_rate: float
    mean_length: float
    robot: str = "sim"  # where it ran: the simulated env, or a served robot's tcp:// endpoint
    episode_returns: list[float] = field(default_factory=list)  # per episode, in seed order
    episode_successes: list[bool] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        return asdict(self)


def evaluate(
    run_or_model: str | Path,
    episodes: int = 20,
    seed: int = 100_000,
    deterministic: bool = True,
    robot: str = "sim",
) -> EvalResult:
    """Run ``episodes`` episodes with seeds ``seed``, ``seed + 1``, ... and summarize them.

    ``robot="sim"`` uses the simulated environment; ``"tcp://HOST:PORT"`` runs the task on the robot
    served there, in real time (reach tasks only, see :mod:`tianji.policies.robot_env`).
    """
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}")
    policy = load_policy(run_or_model)
    remote = None
    if robot == "sim":
        env = policy.make_env()
    elif robot.startswith("tcp://"):
        from tianji.bridge.client import RemoteRobot
        from tianji.policies.robot_env import RobotReachEnv

        remote = RemoteRobot(robot)
        try:
            kwargs = policy.config.env_kwargs
            env = RobotReachEnv(
                env_id(policy.config.env),
                remote,
                reward_type=str(kwargs.get("reward_type", "dense")),
                control=str(kwargs.get("control", "joint")),
            )
        except BaseException:
            remote.close()
            raise
    else:
        raise ConfigError(f"robot must be 'sim' or 'tcp://HOST:PORT' (a served robot), got {robot!r}")
    returns, lengths, successes = [], [], []
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(policy.act(obs, deterministic))
                total += float(reward)
                steps += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(steps)
            successes.append(bool(info.get("is_success", False)))
    finally:
        env.close()
        if remote is not None:
            remote.close()
    return EvalResult(
        env=env_id(policy.config.env),
        algo=policy.config.algo,
        model=str(policy.path),
        episodes=episodes,
        seed=seed,
        mean_return=float(np.mean(returns)),
        std_return=float(np.std(returns)),
        success_rate=float(np.mean(successes)),
        mean_length=float(np.mean(lengths)),
        robot=robot,
        episode_returns=[round(r, 6) for r in returns],
        episode_successes=successes,
    )


def save_eval(result: EvalResult, file: Path) -> Path:
    """Write an evaluation as JSON."""
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(result.to_dict(), indent=2))
    return file


def record(run_or_model: str | Path, out: Path, episodes: int = 1, seed: int = 100_000) -> tuple[Path, int]:
    """Write an mp4 of the policy acting for ``episodes`` episodes; returns (file, frames)."""
    policy = load_policy(run_or_model)
    env = policy.make_env(render_mode="rgb_array")
    recorder = VideoRecorder(out, fps=env.metadata.get("render_fps", 30))
    try:
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            recorder.add(env.render())
            done = False
            while not done:
                obs, _, terminated, truncated, _ = env.step(policy.act(obs))
                recorder.add(env.render())
                done = terminated or truncated
    finally:
        env.close()
        recorder.close()
    return out, recorder.frames
