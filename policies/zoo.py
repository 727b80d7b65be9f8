"""The policy zoo: trained policies shipped in ``assets/policies/<env>/<algo>/``.

Each entry holds ``model.zip``, ``config.yaml``, ``meta.json`` (versions, commit, training
time and machine), ``eval.json`` (100 seeded episodes) and ``vecnormalize.pkl`` when the
policy normalizes its observations. ``make zoo`` (``experiments/zoo.py``) retrains and
re-evaluates every entry.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tianji import assets
from tianji.policies.evaluate import EvalResult, save_eval
from tianji.policies.train import VECNORMALIZE_FILE, RunResult

ZOO_ROOT = assets.ROOT / "policies"


@dataclass
class ZooEntry:
    """One shipped policy and its recorded evaluation."""

    env: str
    algo: str
    path: Path
    evaluation: dict[str, Any]
    meta: dict[str, Any]

    @property
    def timesteps(self) -> int:
        """Training steps."""
        return int(self.meta.get("timesteps", 0))

    @property
    def train_seconds(self) -> float:
        """Wall-clock training time on the machine in ``meta["machine"]``."""
        return float(self.meta.get("train_seconds", 0.0))

    @property
    def settings(self) -> str:
        """The environment arguments it was trained with, e.g. ``control=cartesian, reward_type=sparse``."""
        file = self.path / "config.yaml"
        if not file.is_file():
            return ""
        kwargs = (yaml.safe_load(file.read_text()) or {}).get("env_kwargs") or {}
        return ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items()))


def list_zoo(root: Path = ZOO_ROOT) -> list[ZooEntry]:
    """Every complete entry under ``root``, sorted by environment and algorithm."""
    entries = []
    for eval_file in sorted(root.glob("*/*/eval.json")):
        folder = eval_file.parent
        if not (folder / "model.zip").is_file():
            continue
        meta_file = folder / "meta.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        entries.append(ZooEntry(folder.parent.name, folder.name, folder, json.loads(eval_file.read_text()), meta))
    return entries


VALIDATION_SEED = 200_000  # model choice; the recorded evaluation uses tianji eval's seeds (100_000 + i)


def choose_model(run_dir: Path, episodes: int = 100) -> tuple[Path, dict[str, float]]:
    """The run's ``best_model.zip`` or ``model.zip``, whichever succeeds more on ``episodes`` validation
    episodes (seeds other than the recorded evaluation's): the best model is picked by a few evaluation
    episodes during training, a noisy choice. Returns the file and each candidate's validation success."""
    from tianji.policies.evaluate import default_model, evaluate

    candidates = [f for f in (run_dir / "best_model.zip", run_dir / "model.zip") if f.is_file()]
    usable = default_model(run_dir)  # a best model without its normalization statistics cannot be judged
    candidates = [f for f in candidates if f.name == "model.zip" or f == usable]
    scores = {}
    for file in candidates:
        result = evaluate(file, episodes=episodes, seed=VALIDATION_SEED)
        scores[file.name] = (result.success_rate, result.mean_return)
    chosen = max(candidates, key=lambda f: scores[f.name])
    return chosen, {name: success for name, (success, _) in scores.items()}


def publish(
    run: RunResult,
    evaluation: EvalResult,
    root: Path = ZOO_ROOT,
    model_file: Path | None = None,
    validation: dict[str, float] | None = None,
) -> Path:
    """Copy a finished run's model (``model_file``, default the run's default model), config, the
    model's normalization statistics and its evaluation into the zoo."""
    from tianji.policies.evaluate import default_model, normalizer_file

    env = evaluation.env.removeprefix("tianji/")
    folder = root / env / evaluation.algo
    folder.mkdir(parents=True, exist_ok=True)
    model = model_file or default_model(run.run_dir)
    if model is None:
        raise FileNotFoundError(f"{run.run_dir} holds no model to publish")
    shutil.copy(model, folder / "model.zip")
    shutil.copy(run.run_dir / "config.yaml", folder / "config.yaml")
    stats = normalizer_file(model)
    (folder / VECNORMALIZE_FILE).unlink(missing_ok=True)
    if stats is not None:
        shutil.copy(stats, folder / VECNORMALIZE_FILE)
    meta = json.loads((run.run_dir / "meta.json").read_text())
    meta.update({"timesteps": run.timesteps, "train_seconds": round(run.wall_seconds, 1), "model": model.name})
    if validation:
        meta["validation_success"] = validation  # per candidate, on VALIDATION_SEED episodes
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    save_eval(evaluation, folder / "eval.json")
    return folder


def zoo_markdown(entries: list[ZooEntry]) -> str:
    """The zoo table for experiments/results/zoo.md and the README."""
    lines = [
        "| environment | algorithm | settings | timesteps | training time | machine | success (100 episodes) "
        "| return (mean +- std) |",
        "| --- | --- | --- | ---: | ---: | --- | ---: | ---: |",
    ]
    for e in entries:
        ev = e.evaluation
        lines.append(
            f"| {e.env} | {e.algo.upper()} | {e.settings} | {e.timesteps:,} | {e.train_seconds / 60:.1f} min "
            f"| {e.meta.get('machine', '?')} | {100 * ev['success_rate']:.0f}% "
            f"| {ev['mean_return']:.2f} +- {ev['std_return']:.2f} |"
        )
    return "\n".join(lines) + "\n"
