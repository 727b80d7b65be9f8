"""Where an environment's step time goes: physics, the rest of the step, and resets (a diagnostic, prints only).

``env_speed.py`` gives the environment layer's cost as one figure (time outside ``stepSimulation``
over time inside it, random actions, resets included). This splits that figure, to show what to
work on: per control step, the microseconds inside ``stepSimulation``, the rest of ``env.step``
(action mapping, PyBullet state reads and motor writes, reward, observation, Gymnasium's
wrappers), and ``env.reset`` spread over the steps of an episode::

    python experiments/bench/env_layer_breakdown.py                      # every registered environment
    python experiments/bench/env_layer_breakdown.py tianji/G1Balance-v0 --seconds 10

Wall-clock figures on a shared machine: compare environments within one run, not across runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium as gym
import numpy as np

import tianji.sim  # noqa: F401  (registers the environments)


def _env_speed() -> ModuleType:
    """The sibling ``env_speed.py`` (its SimulationClock), loaded by path: experiments/ is not a package."""
    spec = importlib.util.spec_from_file_location("env_speed", Path(__file__).with_name("env_speed.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def breakdown(env_id: str, seconds: float) -> dict[str, Any]:
    """Step ``env_id`` with seeded random actions for ``seconds``; microseconds per step by part."""
    env = gym.make(env_id)
    try:
        clock = _env_speed().SimulationClock(env.unwrapped.world)
        env.reset(seed=0)
        actions = np.random.default_rng(0).uniform(-1, 1, (1024, *env.action_space.shape)).astype(np.float32)
        stepping = resetting = physics_in_resets = 0.0
        steps = resets = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            _, _, terminated, truncated, _ = env.step(actions[steps % len(actions)])
            t1 = time.perf_counter()
            stepping += t1 - t0
            steps += 1
            if terminated or truncated:
                before = clock.inside
                env.reset()
                resetting += time.perf_counter() - t1
                physics_in_resets += clock.inside - before
                resets += 1
        physics = clock.inside - physics_in_resets
        total = stepping + resetting
        return {
            "env": env_id,
            "steps": steps,
            "episode": steps / max(resets, 1),
            "physics_us": 1e6 * physics / steps,
            "rest_of_step_us": 1e6 * (stepping - physics) / steps,
            "reset_us": 1e6 * resetting / steps,
            "reset_ms_each": 1e3 * resetting / max(resets, 1),
            "layer_cost": total / clock.inside - 1.0,
        }
    finally:
        env.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("env_ids", nargs="*", help="environment ids (default: every tianji/ environment)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of stepping per environment")
    args = parser.parse_args(argv)
    ids = args.env_ids or sorted(k for k in gym.registry if k.startswith("tianji/"))
    columns = ["steps", "steps/episode", "physics us/step", "rest of step us", "resets us/step", "reset ms", "cost"]
    print("| environment | " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    keys = ("steps", "episode", "physics_us", "rest_of_step_us", "reset_us", "reset_ms_each")
    for env_id in ids:
        r = breakdown(env_id, args.seconds)
        cells = [f"`{env_id}`", *(f"{r[k]:.2f}" if k == "reset_ms_each" else f"{r[k]:.0f}" for k in keys)]
        print("| " + " | ".join([*cells, f"{100 * r['layer_cost']:.1f}%"]) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
