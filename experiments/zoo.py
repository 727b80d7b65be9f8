"""Retrain and re-evaluate every policy of the zoo (``make zoo``), then rewrite experiments/results/zoo.md.

    python experiments/zoo.py                      # everything in ZOO below
    python experiments/zoo.py --only TiagoReach-v0 # one environment
    python experiments/zoo.py --episodes 100
    python experiments/zoo.py --reevaluate         # re-evaluate the shipped entries, no training

Each entry is trained with its config in experiments/configs/, evaluated on 100 seeded
episodes, and copied into assets/policies/<env>/<algo>/ (see tianji.policies.zoo).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tianji.policies.config import load_config
from tianji.policies.evaluate import evaluate, save_eval
from tianji.policies.train import train
from tianji.policies.zoo import ZOO_ROOT, list_zoo, publish, zoo_markdown

REPO = Path(__file__).resolve().parents[1]
ZOO = [  # (environment, algorithm): config experiments/configs/<env>_<algo>.yaml
    ("TiagoReach-v0", "sac"),
    ("AllegroReach-v0", "sac"),
]  # not yet: CarePickCup-v0 and G1Balance-v0 (no config has reached a useful success rate on 2 CPU cores)
RESULTS = REPO / "experiments" / "results" / "zoo.md"


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate and publish; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="environments to rebuild (default: all)")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes (default 100)")
    parser.add_argument("--runs", type=Path, default=REPO / "runs", help="where the training runs go")
    parser.add_argument("--reevaluate", action="store_true", help="only re-evaluate the entries already shipped")
    args = parser.parse_args(argv)
    for env, algo in ZOO:
        if args.only and env not in args.only:
            continue
        if args.reevaluate:
            folder = ZOO_ROOT / env / algo
            result = evaluate(folder, episodes=args.episodes)
            save_eval(result, folder / "eval.json")
            print(f"== {env} {algo}: success {100 * result.success_rate:.0f}%, return {result.mean_return:.2f}")
            continue
        config = load_config(REPO / "experiments" / "configs" / f"{env}_{algo}.yaml")
        print(f"== {env} {algo}: training {config.timesteps:,} steps", flush=True)
        run = train(config, args.runs)
        result = evaluate(run.run_dir, episodes=args.episodes)
        folder = publish(run, result)
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
