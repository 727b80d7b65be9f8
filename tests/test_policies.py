"""Training, resuming, evaluating, recording and plotting through the CLI, on real environments."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from tianji.cli import app
from tianji.policies.callbacks import read_evaluations
from tianji.policies.config import ConfigError, load_config
from tianji.policies.evaluate import evaluate, load_policy

runner = CliRunner()


def _config(tmp_path: Path, **changes: object) -> Path:
    data = {
        "env": "tianji/AllegroReach-v0",
        "algo": "sac",
        "timesteps": 300,
        "env_kwargs": {"reward_type": "sparse"},
        "her": {"n_sampled_goal": 2, "goal_selection_strategy": "future"},
        "policy_kwargs": {"net_arch": [32, 32]},
        "hyperparams": {"learning_starts": 100, "batch_size": 32, "buffer_size": 5000},
        "eval": {"freq": 200, "episodes": 2, "seed": 10},
        "checkpoint_freq": 150,
        **changes,
    }
    file = tmp_path / "config.yaml"
    file.write_text(yaml.safe_dump(data))
    return file


def _dummy_venv() -> object:
    """A vectorized AllegroReach-v0, for loading saved VecNormalize statistics."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv

    import tianji.sim  # noqa: F401  (registers the environments)

    return DummyVecEnv([lambda: gym.make("tianji/AllegroReach-v0", reward_type="sparse")])


def _train(tmp_path: Path, *args: str) -> Path:
    result = runner.invoke(app, ["train", "AllegroReach-v0", "--runs", str(tmp_path / "runs"), "--no-progress", *args])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs" / "AllegroReach-v0").glob("*/*")
    return run


def test_sac_her_trains_resumes_evaluates_records_and_plots(tmp_path: Path) -> None:
    run = _train(tmp_path, "--config", str(_config(tmp_path)))
    for name in ("config.yaml", "meta.json", "progress.csv", "model.zip", "best_model.zip", "evaluations.npz"):
        assert (run / name).is_file(), name
    meta = json.loads((run / "meta.json").read_text())
    assert meta["seed"] == 0 and set(meta["versions"]) >= {"pybullet", "stable_baselines3", "torch"}
    assert list((run / "checkpoints").glob("model_*_steps.zip"))
    assert any(p.name.startswith("events") for p in run.rglob("*")), "no TensorBoard log"
    (row,) = read_evaluations(run)  # one evaluation at 200 of 300 steps, with the wall time it was reached at
    assert row["timesteps"] == 200 and row["wall_seconds"] > 0 and row["success_rate"] in (0.0, 0.5, 1.0)
    assert row["mean_return"] == pytest.approx(float(np.load(run / "evaluations.npz")["results"].mean()), abs=1e-4)

    resumed = runner.invoke(
        app, ["train", "AllegroReach-v0", "--resume", str(run), "--timesteps", "450", "--no-progress"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert load_policy(run / "model.zip").model.num_timesteps == 450
    assert (run / "progress-00.csv").is_file()  # the first segment's log, kept

    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(run), "--episodes", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["episodes"] == 2 and 0.0 <= data["success_rate"] <= 1.0 and data["mean_length"] == 100
    again = evaluate(run, episodes=2)
    assert again.mean_return == pytest.approx(data["mean_return"])  # seeded: evaluation reproduces

    video = tmp_path / "policy.mp4"
    result = runner.invoke(app, ["record", str(run / "model.zip"), "--out", str(video)])
    assert result.exit_code == 0, result.output
    with imageio.get_reader(video) as reader:
        assert reader.count_frames() == 101  # reset frame + 100 steps

    png = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(run), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert imageio.imread(png).shape[2] in (3, 4)


def test_a_resumed_runs_log_continues_the_first_segments_clock(tmp_path: Path) -> None:
    """SB3 restarts time/time_elapsed in each segment of a resumed run; the curves and the zoo's wall time
    continue it (the G1 zoo run's three segments were each drawn from 0 before)."""
    from tianji.policies.plot import read_progress

    header = "time/total_timesteps,time/time_elapsed,rollout/ep_rew_mean\n"
    (tmp_path / "progress-00.csv").write_text(header + "100,10,1\n200,20,2\n")
    (tmp_path / "progress.csv").write_text(header + "300,5,3\n400,15,\n")
    progress = read_progress(tmp_path)
    assert progress["time/total_timesteps"].tolist() == [100, 200, 300, 400]
    assert progress["time/time_elapsed"].tolist() == [10, 20, 25, 35]
    assert np.isnan(progress["rollout/ep_rew_mean"][3])


def test_ppo_with_vecnormalize_trains_through_the_cli(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        algo="ppo",
        her=None,
        normalize={"norm_obs": True, "norm_reward": True},
        hyperparams={"n_steps": 128, "batch_size": 64},
        timesteps=256,
    )
    run = _train(tmp_path, "--config", str(config))
    assert (run / "vecnormalize.pkl").is_file()
    # the best model (evaluated at step 200) runs with the statistics of that moment, not of the end
    assert (run / "best_model.zip").is_file() and (run / "best_vecnormalize.pkl").is_file()
    best, final = load_policy(run), load_policy(run / "model.zip")
    assert best.path.name == "best_model.zip" and final.path.name == "model.zip"
    assert best.normalizer.obs_rms["observation"].count < final.normalizer.obs_rms["observation"].count
    result = evaluate(run, episodes=1)
    assert result.algo == "ppo" and result.mean_length == 100

    # resumed, training goes on with the normalizer statistics the policy was trained with (they were
    # started afresh before, and a resumed G1 run's success fell from 0.55 to 0.05 until they re-converged)
    from stable_baselines3.common.vec_env import VecNormalize

    (checkpoint,) = (run / "checkpoints").glob("model_*_steps.zip")  # where a resume starts (150 steps)
    stats = checkpoint.with_name(checkpoint.name.replace("model_", "model_vecnormalize_").replace(".zip", ".pkl"))
    before = VecNormalize.load(str(stats), _dummy_venv()).obs_rms["observation"]
    args = ["train", "AllegroReach-v0", "--resume", str(run), "--timesteps", "384", "--no-progress"]
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    final = load_policy(run / "model.zip")
    after = final.normalizer.obs_rms["observation"]
    steps = final.model.num_timesteps - int(checkpoint.stem.split("_")[1])
    assert before.count > 100 and steps > 100
    assert after.count == pytest.approx(before.count + steps, abs=2)  # continued, not started again at 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"learning_rte": 0.1}, "learning_rte"),
        ({"timesteps": "lots"}, "timesteps"),
        ({"eval": {"every": 3}}, "every"),
        ({"eval": {"stop_success": 95}}, "eval.stop_success"),
    ],
)
def test_bad_config_is_a_clear_error_naming_the_key(tmp_path: Path, change: dict, message: str) -> None:
    file = _config(tmp_path, **change)
    with pytest.raises(ConfigError, match=message):
        load_config(file)
    result = runner.invoke(app, ["train", "AllegroReach-v0", "--config", str(file), "--runs", str(tmp_path)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_bad_hyperparameter_and_unknown_env_are_explained(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "AllegroReach-v0",
            "--config",
            str(_config(tmp_path, hyperparams={"learnin_rate": 1})),
            "--runs",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2 and "learnin_rate" in result.output
    result = runner.invoke(app, ["train", "NoSuchEnv-v0", "--runs", str(tmp_path / "r")])
    assert result.exit_code == 2 and "TiagoReach-v0" in result.output


def test_zoo_publish_list_and_reevaluate(tmp_path: Path) -> None:
    from tianji.policies.train import RunResult
    from tianji.policies.zoo import list_zoo, publish, zoo_markdown

    run = _train(tmp_path, "--config", str(_config(tmp_path, timesteps=120, hyperparams={"learning_starts": 100})))
    result = evaluate(run, episodes=2)
    folder = publish(RunResult(run, 120, 1.0, None), result, root=tmp_path / "zoo")
    (entry,) = list_zoo(tmp_path / "zoo")
    assert entry.env == "AllegroReach-v0" and entry.algo == "sac" and entry.timesteps == 120
    assert "| AllegroReach-v0 | SAC | reward_type=sparse | 120 |" in zoo_markdown([entry])
    again = evaluate(folder, episodes=2)  # a zoo folder reproduces its recorded evaluation
    assert again.mean_return == pytest.approx(entry.evaluation["mean_return"], abs=1e-6)
    assert again.success_rate == entry.evaluation["success_rate"]


def test_sweep_runs_seeds_and_grid_in_local_processes_and_gathers_one_table(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        algo="ppo",
        her=None,
        timesteps=64,
        hyperparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
        eval={"freq": 10_000, "episodes": 1, "seed": 10},
    )
    args = ["sweep", "AllegroReach-v0", "--config", str(config), "--seeds", "0-1", "--jobs", "2", "--episodes", "2"]
    args += ["--grid", "hyperparams.learning_rate=0.001,0.0003", "--runs", str(tmp_path / "runs")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "runs" / "sweeps" / "AllegroReach-v0" / "ppo").glob("*")
    data = json.loads((folder / "sweep.json").read_text())
    assert sorted((r["point"]["hyperparams.learning_rate"], r["seed"]) for r in data["runs"]) == [
        (0.0003, 0),
        (0.0003, 1),
        (0.001, 0),
        (0.001, 1),
    ]
    for run in data["runs"]:
        assert run["error"] is None and run["timesteps"] == 64 and 0.0 <= run["success_rate"] <= 1.0
        stored = yaml.safe_load((Path(run["run_dir"]) / "config.yaml").read_text())
        assert (
            stored["seed"] == run["seed"]
            and stored["hyperparams"]["learning_rate"] == run["point"]["hyperparams.learning_rate"]
        )
        again = evaluate(run["run_dir"], episodes=2)  # the table's figures are the run folder's
        assert again.mean_return == pytest.approx(run["mean_return"], abs=1e-6)
    assert [row["seeds"] for row in data["summary"]] == [2, 2]
    assert "hyperparams.learning_rate=0.001 | 2 | 0 |" in (folder / "sweep.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "3-1"], "--seeds: '3-1'"),
        (["--grid", "hyperparams.gamma"], "KEY=V1,V2"),
        (["--grid", "learning_rte=0.1"], "learning_rte"),
        (["--grid", "timesteps=many"], "timesteps"),
    ],
)
def test_sweep_bad_arguments_are_explained_before_any_run(tmp_path: Path, args: list[str], message: str) -> None:
    runs = tmp_path / "runs"
    result = runner.invoke(
        app, ["sweep", "AllegroReach-v0", "--config", str(_config(tmp_path)), "--runs", str(runs), *args]
    )
    assert result.exit_code != 0
    assert message in result.output
    assert not runs.exists()  # validated before any folder or run


def test_the_zoo_ships_the_reach_policies() -> None:
    from tianji.policies.zoo import list_zoo

    shipped = {(e.env, e.algo) for e in list_zoo()}
    assert {("TiagoReach-v0", "sac"), ("AllegroReach-v0", "sac")} <= shipped


def _shipped() -> list[tuple[str, str]]:
    from tianji.policies.zoo import list_zoo

    return sorted((e.env, e.algo) for e in list_zoo())


@pytest.mark.parametrize(("env", "algo"), _shipped())
def test_a_zoo_policy_reproduces_its_recorded_evaluation(env: str, algo: str) -> None:
    from tianji.policies.zoo import ZOO_ROOT

    folder = ZOO_ROOT / env / algo
    recorded = json.loads((folder / "eval.json").read_text())
    assert recorded["episodes"] == 100 and len(recorded["episode_returns"]) == 100
    again = evaluate(folder, episodes=5, seed=recorded["seed"])  # the first 5 of its 100 seeded episodes
    assert again.episode_returns == pytest.approx(recorded["episode_returns"][:5], abs=1e-3)
    assert again.episode_successes == recorded["episode_successes"][:5]
