"""``tianji train | eval | record | plot | zoo``: thin command-line layers over ``tianji.policies``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
CONFIG_DIR = Path("experiments/configs")


def default_config(env: str, algo: str | None) -> Path | None:
    """``experiments/configs/<Env>_<algo>.yaml`` if it exists (with algo None: the first for that env)."""
    name = env.removeprefix("tianji/")
    if algo is not None:
        file = CONFIG_DIR / f"{name}_{algo}.yaml"
        return file if file.is_file() else None
    matches = sorted(CONFIG_DIR.glob(f"{name}_*.yaml"))
    return matches[0] if matches else None


def train(
    env: Annotated[str, typer.Argument(help="Environment, e.g. TiagoReach-v0 (the tianji/ prefix is optional).")],
    algo: Annotated[str | None, typer.Option(help="ppo, sac, td3 or tqc (default: the config's).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config (default: experiments/configs/<env>_<algo>.yaml).")
    ] = None,
    timesteps: Annotated[int | None, typer.Option(help="Total environment steps.")] = None,
    n_envs: Annotated[int | None, typer.Option("--n-envs", help="Parallel environments (SubprocVecEnv).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda.")] = None,
    runs: Annotated[Path, typer.Option(help="Root folder of run folders.")] = Path("runs"),
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Train a policy; writes runs/<env>/<algo>/<timestamp>/ (config, versions, logs, checkpoints, model)."""
    from tianji.cli import friendly_errors
    from tianji.policies.config import TrainConfig, config_from_dict, load_config
    from tianji.policies.train import load_run_config
    from tianji.policies.train import train as run_training

    overrides = {"algo": algo, "timesteps": timesteps, "n_envs": n_envs, "seed": seed, "device": device}
    with friendly_errors():
        if resume is not None:
            cfg: TrainConfig = load_run_config(resume)
            if timesteps is not None:
                cfg.timesteps = timesteps
        else:
            file = config or default_config(env, algo)
            if file is not None:
                cfg = load_config(file, **overrides)
            else:
                cfg = config_from_dict({"env": env, **{k: v for k, v in overrides.items() if v is not None}})
            cfg.env = env if "/" in env else f"tianji/{env}"
        console.print(
            f"training [bold]{cfg.env}[/bold] with {cfg.algo.upper()} for {cfg.timesteps:,} steps, seed {cfg.seed}"
        )
        result = run_training(cfg, runs, resume=resume, progress=progress)
    best = "n/a" if result.best_mean_reward is None else f"{result.best_mean_reward:.3f}"
    console.print(
        f"done: {result.timesteps:,} steps in {result.wall_seconds:.0f} s, best eval return {best}\n"
        f"run: [bold]{result.run_dir}[/bold]"
    )


def eval_policy(
    run_or_model: Annotated[Path, typer.Argument(help="A run folder, a zoo folder or a model .zip.")],
    episodes: Annotated[int, typer.Option(help="Number of seeded episodes.")] = 20,
    seed: Annotated[int, typer.Option(help="First episode seed.")] = 100_000,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the result as JSON here.")] = None,
    robot: Annotated[
        str, typer.Option(help="'sim' (the simulated env) or 'tcp://HOST:PORT': the task on a served robot, real time.")
    ] = "sim",
) -> None:
    """Evaluate a policy: mean and std of return, success rate."""
    from tianji.cli import friendly_errors
    from tianji.policies.evaluate import evaluate, save_eval

    with friendly_errors():
        result = evaluate(run_or_model, episodes=episodes, seed=seed, robot=robot)
    table = Table(title=f"{result.env} {result.algo.upper()}, {result.episodes} episodes from seed {result.seed}")
    for column in ("mean return", "std", "success rate", "mean length"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{result.mean_return:.3f}",
        f"{result.std_return:.3f}",
        f"{100 * result.success_rate:.1f}%",
        f"{result.mean_length:.1f}",
    )
    console.print(table)
    summary = {k: v for k, v in result.to_dict().items() if not k.startswith("episode_")}
    console.print_json(json.dumps(summary))  # per-episode figures go to the --json file
    if json_out is not None:
        save_eval(result, json_out)


def record(
    run_or_model: Annotated[Path, typer.Argument(help="A run folder, a zoo folder or a model .zip.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="mp4 file to write.")] = Path("policy.mp4"),
    episodes: Annotated[int, typer.Option(help="Episodes to record.")] = 1,
    seed: Annotated[int, typer.Option(help="First episode seed.")] = 100_000,
) -> None:
    """Record a video of a policy."""
    from tianji.cli import friendly_errors
    from tianji.policies.evaluate import record as record_video

    with friendly_errors():
        path, frames = record_video(run_or_model, out, episodes=episodes, seed=seed)
    console.print(f"wrote [bold]{path}[/bold] ({frames} frames)")


def plot(
    run_dirs: Annotated[list[Path], typer.Argument(help="One or more run folders; same env+algo runs are averaged.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("learning_curves.png"),
) -> None:
    """Plot learning curves (return and success vs timesteps and wall time)."""
    from tianji.cli import friendly_errors
    from tianji.policies.plot import plot_runs

    with friendly_errors():
        path = plot_runs(run_dirs, out)
    console.print(f"wrote [bold]{path}[/bold]")


def zoo() -> None:
    """List the trained policies shipped with Tianji and their evaluated success rates."""
    from tianji.policies.zoo import ZOO_ROOT, list_zoo

    entries = list_zoo()
    if not entries:
        console.print(f"The zoo is empty: no trained policies under {ZOO_ROOT}. Build it with `make zoo`.")
        return
    table = Table(title="Policy zoo (100 seeded evaluation episodes each)")
    for column in ("environment", "algo", "settings", "timesteps", "training time", "success", "return", "path"):
        table.add_column(column)
    for e in entries:
        ev = e.evaluation
        table.add_row(
            e.env,
            e.algo,
            e.settings,
            f"{e.timesteps:,}",
            f"{e.train_seconds / 60:.1f} min",
            f"{100 * ev['success_rate']:.0f}%",
            f"{ev['mean_return']:.2f} +- {ev['std_return']:.2f}",
            str(e.path),
        )
    console.print(table)


def sweep(
    env: Annotated[str, typer.Argument(help="Environment, e.g. TiagoReach-v0.")],
    seeds: Annotated[str, typer.Option(help="Seeds: a range 0-9, a list 0,3,5, or both 0-2,7.")] = "0-2",
    grid: Annotated[
        list[str] | None,
        typer.Option(help="KEY=V1,V2,... (repeatable; dotted keys reach into sections: hyperparams.gamma=0.95,0.98)."),
    ] = None,
    algo: Annotated[str | None, typer.Option(help="ppo, sac, td3 or tqc (default: the config's).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config (default: experiments/configs/<env>_<algo>.yaml).")
    ] = None,
    timesteps: Annotated[int | None, typer.Option(help="Total environment steps of each run.")] = None,
    jobs: Annotated[int, typer.Option(help="Runs at a time as local processes (each uses n_envs cores).")] = 1,
    episodes: Annotated[int, typer.Option(help="Evaluation episodes per run (the same seeds for every run).")] = 20,
    ray_address: Annotated[
        str | None,
        typer.Option(help="Run on a Ray cluster: its address (ray://head:10001, auto) or 'local' (a local Ray)."),
    ] = None,
    runs: Annotated[Path, typer.Option(help="Root; the sweep goes to <runs>/sweeps/<env>/<algo>/<time>.")] = Path(
        "runs"
    ),
) -> None:
    """Train independent runs over seeds and a grid of settings; one table of their evaluated results."""
    import time

    from tianji.cli import friendly_errors
    from tianji.policies.config import config_from_dict, load_config
    from tianji.policies.sweep import (
        SweepRun,
        duration,
        grid_points,
        parse_grid,
        parse_seeds,
        run_sweep,
        summary_rows,
    )
    from tianji.policies.train import env_id

    with friendly_errors():
        seed_list = parse_seeds(seeds)
        grid_values = parse_grid(grid or [])
        overrides = {"algo": algo, "timesteps": timesteps}
        file = config or default_config(env, algo)
        if file is not None:
            base = load_config(file, **overrides)
        else:
            base = config_from_dict({"env": env, **{k: v for k, v in overrides.items() if v is not None}})
        base.env = env_id(env)
        out_dir = runs / "sweeps" / base.env.removeprefix("tianji/") / base.algo / time.strftime("%Y%m%d-%H%M%S")
        n_points = len(grid_points(grid_values))
        where = f"Ray at {ray_address}" if ray_address else f"{jobs} local process(es)"
        console.print(
            f"sweep [bold]{base.env}[/bold] {base.algo.upper()}: {n_points} grid point(s) x {len(seed_list)} seed(s), "
            f"{base.timesteps:,} steps each, on {where}\nfolder: [bold]{out_dir}[/bold]"
        )

        def report(run: SweepRun, finished: int, total: int) -> None:
            outcome = f"[red]failed: {run.error}[/red]" if run.error else f"success {100 * run.success_rate:.0f}%"
            console.print(f"[{finished}/{total}] {Path(run.run_dir).name}: {outcome} ({duration(run.wall_seconds)})")

        results = run_sweep(
            base, grid_values, seed_list, out_dir, jobs=jobs, episodes=episodes, ray_address=ray_address, on_done=report
        )
    table = Table(title=f"{base.env} {base.algo.upper()}: {len(results)} runs, {episodes} evaluation episodes each")
    for column in ("grid point", "seeds", "failed", "success", "return", "training time"):
        table.add_column(column)
    for row in summary_rows(results):
        table.add_row(
            ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row["point"].items()) or "(config as is)",
            str(row["seeds"]),
            str(row["failed"]),
            f"{100 * row['success_mean']:.1f}% +- {100 * row['success_std']:.1f}",
            f"{row['return_mean']:.2f} +- {row['return_std']:.2f}",
            duration(row["wall_seconds"]),
        )
    console.print(table)
    console.print(f"wrote {out_dir / 'sweep.md'} and sweep.json")
    if any(r.error for r in results):
        raise typer.Exit(1)
