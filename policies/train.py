"""Train a stable-baselines3 agent on a Tianji environment into a reproducible run folder.

A run folder ``runs/<env>/<algo>/<timestamp>/`` holds:

=====================  ======================================================================
``config.yaml``        the resolved configuration (file + command-line overrides)
``meta.json``          seed, git commit, versions of Python / pybullet / SB3 / torch / gymnasium
``progress.csv``       SB3's training log (also TensorBoard events under ``tb/``)
``evaluations.npz``    periodic evaluation results; ``best_model.zip`` the best of them (with
                       ``best_vecnormalize.pkl``, its normalization statistics)
``evaluations.csv``    the same evaluations with the wall-clock seconds each was reached at
``checkpoints/``       model (+ VecNormalize statistics, + replay buffer if configured)
``model.zip``          the final model; ``vecnormalize.pkl`` its normalization statistics
=====================  ======================================================================
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from stable_baselines3 import PPO, SAC, TD3, HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

import tianji.sim  # noqa: F401  (registers the environments)
from tianji.machine import cpu_name
from tianji.policies.callbacks import (
    EVALUATIONS_FILE,
    RichProgress,
    SaveNormalizerOnBest,
    StopAfterWallTime,
    TimedEvalCallback,
)
from tianji.policies.config import ConfigError, TrainConfig, config_from_dict

VECNORMALIZE_FILE = "vecnormalize.pkl"
BEST_VECNORMALIZE_FILE = "best_vecnormalize.pkl"  # the statistics best_model.zip was evaluated with


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The SB3 (or sb3-contrib) class for an algorithm name."""
    if algo == "tqc":
        try:
            from sb3_contrib import TQC
        except ImportError:
            raise ConfigError("algo tqc needs sb3-contrib: pip install sb3-contrib") from None
        return TQC
    return {"ppo": PPO, "sac": SAC, "td3": TD3}[algo]


def env_id(name: str) -> str:
    """Accept ``TiagoReach-v0`` as well as ``tianji/TiagoReach-v0``."""
    if name in gym.registry:
        return name
    if f"tianji/{name}" in gym.registry:
        return f"tianji/{name}"
    known = ", ".join(sorted(k.removeprefix("tianji/") for k in gym.registry if k.startswith("tianji/")))
    raise ConfigError(f"unknown environment '{name}'. Tianji environments: {known}")


def make_env(config: TrainConfig, n_envs: int, seed: int) -> VecEnv:
    """Vectorized environments: SubprocVecEnv for several workers, DummyVecEnv for one."""
    cls = SubprocVecEnv if n_envs > 1 else DummyVecEnv
    return make_vec_env(
        f"tianji.sim:{env_id(config.env)}", n_envs=n_envs, seed=seed, vec_env_cls=cls, env_kwargs=config.env_kwargs
    )


@dataclass
class RunResult:
    """Where a run went and what it reached."""

    run_dir: Path
    timesteps: int
    wall_seconds: float
    best_mean_reward: float | None


def new_run_dir(root: Path, config: TrainConfig) -> Path:
    """``root/<env>/<algo>/<timestamp>``, unique."""
    base = root / env_id(config.env).removeprefix("tianji/") / config.algo
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir, n = base / stamp, 1
    while run_dir.exists():
        run_dir, n = base / f"{stamp}-{n}", n + 1
    run_dir.mkdir(parents=True)
    return run_dir


def run_metadata(config: TrainConfig) -> dict[str, Any]:
    """Seed, git commit and library versions, so a result can be reproduced."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions = {}
    for package in ("tianji", "pybullet", "stable_baselines3", "torch", "gymnasium", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "seed": config.seed,
        "git_commit": commit,
        "python": platform.python_version(),
        "versions": versions,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
    }


def build_model(config: TrainConfig, env: VecEnv, run_dir: Path) -> BaseAlgorithm:
    """The SB3 algorithm with the config's policy, HER and hyperparameters."""
    cls = algorithm_class(config.algo)
    dict_obs = isinstance(env.observation_space, gym.spaces.Dict)
    kwargs: dict[str, Any] = dict(config.hyperparams)
    if config.her is not None:
        if not dict_obs or "desired_goal" not in env.observation_space.spaces:  # type: ignore[attr-defined]
            raise ConfigError(f"her: {config.env} is not goal-conditioned (no desired_goal in its observation)")
        kwargs["replay_buffer_class"] = HerReplayBuffer
        kwargs["replay_buffer_kwargs"] = dict(config.her)
    policy = config.policy or ("MultiInputPolicy" if dict_obs else "MlpPolicy")
    try:
        return cls(
            policy,
            env,
            seed=config.seed,
            device=config.device,
            policy_kwargs=config.policy_kwargs or None,
            tensorboard_log=None,
            verbose=0,
            **kwargs,
        )
    except TypeError as exc:
        raise ConfigError(f"hyperparams: {exc} (see the {cls.__name__} documentation for its arguments)") from None


def train(
    config: TrainConfig,
    runs_root: Path = Path("runs"),
    *,
    resume: Path | None = None,
    progress: bool = True,
    run_dir: Path | None = None,
) -> RunResult:
    """Train per ``config``; with ``resume``, continue the run in that folder from its last checkpoint.

    ``run_dir`` names a new run's folder instead of ``runs_root/<env>/<algo>/<timestamp>`` (sweeps
    start many runs in the same second); it must not exist yet.
    """
    if config.torch_threads < 1:
        raise ConfigError(f"torch_threads must be at least 1, got {config.torch_threads}")
    torch.set_num_threads(config.torch_threads)
    if resume is not None:
        run_dir = resume
    elif run_dir is not None:
        run_dir.mkdir(parents=True)  # an existing folder is an error: it would mix two runs' logs
    else:
        run_dir = new_run_dir(runs_root, config)
    if resume is None:
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        (run_dir / "meta.json").write_text(json.dumps(run_metadata(config), indent=2))
    env = make_env(config, config.n_envs, config.seed)
    eval_env = make_env(config, 1, config.eval.seed)
    start_from = _resume_point(run_dir) if resume is not None else None
    if config.normalize:
        norm = config.normalize if isinstance(config.normalize, dict) else {}
        stats = _normalizer_of(start_from) if start_from is not None else None
        if stats is not None:  # a resumed run goes on with the statistics its policy was trained with
            env = VecNormalize.load(str(stats), env)
            env.training = True
        else:
            env = VecNormalize(env, **norm)
        eval_env = VecNormalize(
            eval_env, training=False, norm_reward=False, **{k: v for k, v in norm.items() if k != "norm_reward"}
        )
    model = _resume(config, start_from, env) if start_from is not None else build_model(config, env, run_dir)
    if resume is not None and (run_dir / "progress.csv").is_file():  # SB3 would overwrite the earlier log
        earlier = len(list(run_dir.glob("progress-*.csv")))
        (run_dir / "progress.csv").rename(run_dir / f"progress-{earlier:02d}.csv")
    model.set_logger(configure(str(run_dir), ["csv", "tensorboard"]))
    done = model.num_timesteps
    callbacks = [
        TimedEvalCallback(
            eval_env,
            csv_path=run_dir / EVALUATIONS_FILE,
            stop_success=config.eval.stop_success,
            callback_on_new_best=SaveNormalizerOnBest(run_dir / BEST_VECNORMALIZE_FILE) if config.normalize else None,
            confirm_episodes=config.eval.confirm_episodes,
            best_model_save_path=str(run_dir),
            log_path=str(run_dir),
            eval_freq=max(1, config.eval.freq // config.n_envs),
            n_eval_episodes=config.eval.episodes,
            verbose=0,
        ),
        CheckpointCallback(
            max(1, config.checkpoint_freq // config.n_envs),
            str(run_dir / "checkpoints"),
            name_prefix="model",
            save_replay_buffer=config.save_replay_buffer,
            save_vecnormalize=bool(config.normalize),
        ),
    ]
    if config.max_wall_seconds is not None:
        callbacks.append(StopAfterWallTime(config.max_wall_seconds))
    if progress:
        callbacks.append(RichProgress(config.timesteps - done, f"{config.env} {config.algo}"))
    start = time.perf_counter()
    try:
        model.learn(config.timesteps - done, callback=CallbackList(callbacks), reset_num_timesteps=resume is None)
    finally:
        model.save(run_dir / "model.zip")
        if isinstance(env, VecNormalize):
            env.save(str(run_dir / VECNORMALIZE_FILE))
        env.close()
        eval_env.close()
    best = callbacks[0].best_mean_reward  # type: ignore[attr-defined]
    return RunResult(
        run_dir, model.num_timesteps, time.perf_counter() - start, None if best == -float("inf") else float(best)
    )


def _resume_point(run_dir: Path) -> Path:
    """The model a resumed run continues from: its newest checkpoint (saved with its replay buffer and
    normalizer statistics), or the final model.zip when there is none."""
    checkpoints = sorted((run_dir / "checkpoints").glob("model_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1]))
    path = checkpoints[-1] if checkpoints else run_dir / "model.zip"
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no checkpoint or model.zip to resume from")
    return path


def _normalizer_of(model_path: Path) -> Path | None:
    """The VecNormalize statistics saved with a model: vecnormalize.pkl beside model.zip, or a checkpoint's own."""
    if model_path.name == "model.zip":
        stats = model_path.with_name(VECNORMALIZE_FILE)
    else:
        stats = model_path.with_name(model_path.name.replace("model_", "model_vecnormalize_").replace(".zip", ".pkl"))
    return stats if stats.is_file() else None


def _resume(config: TrainConfig, path: Path, env: VecEnv) -> BaseAlgorithm:
    """Load the model at ``path`` (see :func:`_resume_point`) to continue training."""
    cls = algorithm_class(config.algo)
    model = cls.load(path, env=env, device=config.device)
    if hasattr(model, "replay_buffer"):
        buffer = path.with_name(path.name.replace("model_", "model_replay_buffer_").replace(".zip", ".pkl"))
        if buffer.is_file():
            model.load_replay_buffer(buffer)
        else:  # no saved buffer (save_replay_buffer: false): refill it before learning again
            model.learning_starts = model.num_timesteps + model.learning_starts
    return model


def load_run_config(run_dir: Path) -> TrainConfig:
    """The resolved config stored in a run folder."""
    file = run_dir / "config.yaml"
    if not file.is_file():
        raise ConfigError(f"{run_dir} is not a training run: it has no config.yaml")
    return config_from_dict(yaml.safe_load(file.read_text()), source=str(file))
