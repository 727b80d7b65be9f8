"""Training configuration: one YAML file per environment and algorithm, in the style of rl-baselines3-zoo.

Example (like ``experiments/configs/TiagoReach-v0_sac.yaml``)::

    env: tianji/TiagoReach-v0
    algo: sac
    timesteps: 100000
    n_envs: 1
    env_kwargs: {reward_type: sparse}
    her: {n_sampled_goal: 4, goal_selection_strategy: future}
    policy_kwargs: {net_arch: [256, 256]}
    hyperparams: {learning_rate: 0.001, batch_size: 256, gamma: 0.95, learning_starts: 1000}

Every key is checked: an unknown key or a value of the wrong type is an error naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tianji.control.errors import TianjiError

T = TypeVar("T")
ALGORITHMS = ("ppo", "sac", "td3", "tqc")
OFF_POLICY = ("sac", "td3", "tqc")


class ConfigError(TianjiError, ValueError):
    """A training configuration that cannot be used as written."""


@dataclass
class EvalConfig:
    """Periodic evaluation on separate seeds; the best model is kept."""

    freq: int = 5000  # environment steps (summed over workers) between evaluations
    episodes: int = 10
    seed: int = 10_000  # evaluation episodes use seeds seed, seed + 1, ...
    stop_success: float | None = None  # end training once an evaluation's success rate reaches this (0..1)
    confirm_episodes: int = 0  # with stop_success: recheck a passing evaluation on this many more episodes

    def __post_init__(self) -> None:
        if self.confirm_episodes < 0:
            raise ConfigError(f"eval.confirm_episodes: must be 0 (off) or more, got {self.confirm_episodes}")
        for key in ("freq", "episodes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"eval.{key}: must be at least 1, got {getattr(self, key)}")
        if self.stop_success is not None and not 0.0 < self.stop_success <= 1.0:
            raise ConfigError(f"eval.stop_success: a success rate in (0, 1], got {self.stop_success}")


@dataclass
class TrainConfig:
    """Everything a training run needs; stored resolved in the run folder."""

    env: str
    algo: str = "ppo"
    timesteps: int = 100_000
    n_envs: int = 1
    seed: int = 0
    device: str = "cpu"
    torch_threads: int = 1  # CPU threads for torch: small MLPs gain nothing from more, and the envs need the cores
    policy: str | None = None  # default: MultiInputPolicy for Dict observations, else MlpPolicy
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)  # passed to the SB3 algorithm's constructor
    normalize: dict[str, Any] | bool = False  # VecNormalize kwargs, or True for the defaults
    her: dict[str, Any] | None = None  # HerReplayBuffer kwargs (off-policy, goal-conditioned envs)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint_freq: int = 50_000
    max_wall_seconds: float | None = None  # a compute budget: training ends after this much wall-clock time
    save_replay_buffer: bool = False

    def __post_init__(self) -> None:
        self.algo = self.algo.lower()
        if self.algo not in ALGORITHMS:
            raise ConfigError(f"algo: '{self.algo}' is not supported; use one of {', '.join(ALGORITHMS)}")
        if self.her is not None and self.algo not in OFF_POLICY:
            raise ConfigError(
                f"her: hindsight replay needs an off-policy algorithm ({', '.join(OFF_POLICY)}), not {self.algo}"
            )
        for key in ("timesteps", "n_envs", "checkpoint_freq"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if self.max_wall_seconds is not None and self.max_wall_seconds <= 0:
            raise ConfigError(f"max_wall_seconds: must be positive seconds, got {self.max_wall_seconds}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"device: use cpu, cuda or auto, got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for YAML."""
        return dataclasses.asdict(self)


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read and validate a YAML config; ``overrides`` (e.g. from the command line) win over the file."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of settings")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(data, source=str(file))


def config_from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a mapping into a TrainConfig, naming the key of any mistake."""
    data = dict(data)
    if "eval" in data:
        data["eval"] = _build(EvalConfig, data["eval"] or {}, f"{source}: eval.")
    return _build(TrainConfig, data, f"{source}: ")


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('. ')} must be a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}unknown key(s) {unknown}; allowed: {sorted(names)}")
    for key, value in data.items():
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"{where}{key}: expected {_type_name(hints[key])}, got {type(value).__name__} {value!r}")
    required = [
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise ConfigError(f"{where}missing required key(s) {missing}")
    return cls(**data)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    if origin is not None:
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint)).replace("NoneType", "null")
