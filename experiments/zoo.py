"""Retrain and re-evaluate every policy of the zoo (``make zoo``), then rewrite experiments/results/zoo.md.

    python experiments/zoo.py                      # everything in ZOO below
    python experiments/zoo.py --only TiagoReach-v0 # one environment
    python experiments/zoo.py --episodes 100
    python experiments/zoo.py --reevaluate         # re-evaluate the shipped entries, no training
    python experiments/zoo.py --only TiagoReach-v0 --publish runs/TiagoReach-v0/sac/<time>  # an existing run

Of a run's best model (picked during training on 20 evaluation episodes) and final model, the one
that succeeds more on 100 validation episodes (other seeds) is shipped, then evaluated on 100
episodes with ``tianji eval``'s seeds.

Each entry is trained with its config in experiments/configs/, evaluated on 100 seeded
episodes, and copied into assets/policies/<env>/<algo>/ (see tianji.policies.zoo).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tianji.policies.config import load_config
from tianji.policies.evaluate import evaluate, save_eval
from tianji.policies.plot import read_progress
from tianji.policies.train import RunResult, train
from tianji.policies.zoo import ZOO_ROOT, choose_model, list_zoo, publish, zoo_markdown

REPO = Path(__file__).resolve().parents[1]
ZOO = [  # (environment, algorithm): config experiments/configs/<env>_<algo>.yaml
    ("TiagoReach-v0", "sac"),
    ("AllegroReach-v0", "sac"),
    ("G1Balance-v0", "ppo"),
]  # not yet: CarePickCup-v0 (no config has reached a useful success rate on 2 CPU cores)
RESULTS = REPO / "experiments" / "results" / "zoo.md"


def finished_run(run_dir: Path) -> RunResult:
    """A finished run folder as train() would have returned it (steps and time from its training log)."""
    progress = read_progress(run_dir)  # (its clock runs on across the segments of a resumed run)
    return RunResult(
        run_dir,
        int(np.nanmax(progress["time/total_timesteps"])),
        float(np.nanmax(progress["time/time_elapsed"])),
        None,
    )


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate and publish; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="environments to rebuild (default: all)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default 100)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="where the training runs go")
    parser.add_argument("--reevaluate", action="store_true", help="only re-evaluate the entries already shipped")
    parser.add_argument("--publish", type=Path, help="publish this finished run (of the one --only entry) untrained")
    args = parser.parse_args(argv)
    if args.publish is not None and (not args.only or len(args.only) != 1):
        parser.error("--publish RUN needs --only ENV naming the one entry it is for")
    for env, algo in ZOO:
        if args.only and env not in args.only:
            continue
        if args.reevaluate:
            folder = ZOO_ROOT / env / algo
            result = evaluate(folder, episodes=args.episodes)
            save_eval(result, folder / "eval.json")
            print(f"== {env} {algo}: success {100 * result.success_rate:.0f}%, return {result.mean_return:.2f}")
            continue
        if args.publish is not None:
            run = finished_run(args.publish)
        else:
            config = load_config(REPO / "experiments" / "configs" / f"{env}_{algo}.yaml")
            print(f"== {env} {algo}: training {config.timesteps:,} steps", flush=True)
            run = train(config, args.runs)
        model, validation = choose_model(run.run_dir, episodes=args.episodes)
        print(f"   validation success {validation}: shipping {model.name}", flush=True)
        result = evaluate(model, episodes=args.episodes)
        folder = publish(run, result, model_file=model, validation=validation)
        print(f"   success {100 * result.success_rate:.0f}%, return {result.mean_return:.2f} -> {folder}", flush=True)
    entries = list_zoo()
    RESULTS.write_text(
        "# Policy zoo\n\n"
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python experiments/zoo.py` (`make zoo`).\n"
        "Success and return over 100 seeded evaluation episodes (`tianji eval assets/policies/<env>/<algo>`).\n\n"
        + zoo_markdown(entries)
    )
    print(zoo_markdown(entries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
