"""Skill benchmark: each care skill over seeded trials with the care room randomized -> experiments/results/skills.md.

Run from the repository root::

    python experiments/bench/skills.py                 # 20 trials per skill (long: hours on a loaded machine)
    python experiments/bench/skills.py --trials 5      # fewer trials
    python experiments/bench/skills.py --quick         # 2 trials, prints and writes the table
    python experiments/bench/skills.py --skills pick,place --trials 3
    python experiments/bench/skills.py --workers 2     # trials in parallel processes (one per core)

Every trial loads the care room with ``randomize=True`` and seed = trial index: objects jitter
within the scene file's ranges, TIAGo's start pose and the patient too. The G1 stands where the
scene puts it; its reach targets and exercises are drawn from the seed instead. Each
skill starts from the state its preconditions ask for (set up by teleporting, or by running
the skills before it, as listed in SCENARIOS). Physics at 120 Hz under the 60 Hz control
rate unless ``--full-physics``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "results" / "skills.md"


def _tiago(seed: int, fast: bool, at: str | None = None, give: str | None = None, patient: bool = True) -> Any:
    from tianji.cli_skills import care_session

    s = care_session(
        seed=seed, randomize=True, fast_physics=fast, keep_robots=("tiago", "patient") if patient else ("tiago",)
    )
    if at:
        s.start_at(at)
    if give:
        s.give(give)
    return s


def _g1(seed: int, fast: bool) -> Any:
    """The G1 standing in the doorway (the room's layout randomized; the G1 itself stands where the scene puts it).

    Always at the full 240 Hz, as in the scenarios and the CLI: the standing humanoid needs it (at 120 Hz it fell
    in one of 20 exercises).
    """
    from tianji.cli_skills import care_session

    return care_session("g1", seed=seed, randomize=True, fast_physics=False)


def _reach_target(seed: int) -> dict:
    """A seeded reach: the hand alternates, the target is drawn in a box in front of that shoulder (pelvis frame)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    hand = "right" if seed % 2 == 0 else "left"
    side = -1.0 if hand == "right" else 1.0
    target = (rng.uniform(0.25, 0.40), side * rng.uniform(0.10, 0.30), rng.uniform(0.15, 0.35))
    return {"hand": hand, "target": tuple(round(float(v), 3) for v in target)}


def _exercise(seed: int) -> dict:
    """One repetition of the skill's exercises in turn, by seed."""
    from tianji.control.skills.bodies import EXERCISES

    names = list(EXERCISES)  # in the order the skill defines them
    return {"name": names[seed % len(names)], "repetitions": 1}


def _allegro_bar(seed: int, fast: bool) -> Any:
    """The Allegro hand with a fixed bar under its palm: radius 2.0-3.0 cm and a +-1 cm offset drawn from the seed."""
    import numpy as np
    import pybullet as pb

    from tianji.cli_skills import care_session

    s = care_session("allegro", seed=seed, fast_physics=fast, keep_robots=())
    rng = np.random.default_rng(seed)
    radius = float(rng.uniform(0.020, 0.030))
    palm = s.robot.link_pose("palm_link").astype(float)
    shift = rng.uniform(-0.01, 0.01, size=2)
    pos = [palm[0] + 0.02 + shift[0], palm[1] + shift[1], palm[2] - 0.045 - radius]
    shape = s.world.client.createCollisionShape(pb.GEOM_CYLINDER, radius=radius, height=0.2)
    s.world.client.createMultiBody(0, shape, -1, pos, pb.getQuaternionFromEuler((1.5708, 0, 0)))
    return s


Params = dict | Callable[[int], dict]  # fixed parameters, or drawn from the trial's seed

# skill -> (set-up(seed, fast) -> session, [skills run first (not scored)], (name, params) scored)
SCENARIOS: dict[str, tuple[Callable[[int, bool], Any], list[tuple[str, dict]], tuple[str, Params]]] = {
    "navigate_to": (lambda k, f: _tiago(k, f), [], ("navigate_to", {"place": "dining_table"})),
    "look_at": (lambda k, f: _tiago(k, f), [], ("look_at", {"target": "cup"})),
    "approach_person": (lambda k, f: _tiago(k, f), [], ("approach_person", {"person": "patient"})),
    "pick": (lambda k, f: _tiago(k, f, "dining_table", patient=False), [], ("pick", {"object": "cup"})),
    "place": (
        lambda k, f: _tiago(k, f, "dining_table", patient=False),
        [("pick", {"object": "cup"})],
        ("place", {"object": "cup", "place": "dining_table"}),
    ),
    "hand_over": (
        lambda k, f: _tiago(k, f, "bedside", "cup"),
        [],
        ("hand_over", {"object": "cup", "person": "patient"}),
    ),
    "bring_to_mouth (spoon)": (
        lambda k, f: _tiago(k, f, "bedside", "spoon"),
        [],
        ("bring_to_mouth", {"object": "spoon", "person": "patient"}),
    ),
    "bring_to_mouth (cup)": (
        lambda k, f: _tiago(k, f, "bedside", "cup"),
        [],
        ("bring_to_mouth", {"object": "cup", "person": "patient"}),
    ),
    "wipe": (lambda k, f: _tiago(k, f, "bedside"), [], ("wipe", {"body_part": "right_forearm"})),
    "open_gripper": (lambda k, f: _tiago(k, f, patient=False), [("close_gripper", {})], ("open_gripper", {})),
    "close_gripper": (lambda k, f: _tiago(k, f, patient=False), [], ("close_gripper", {})),
    "wait": (lambda k, f: _tiago(k, f, patient=False), [], ("wait", {"seconds": 1.0})),
    "say": (lambda k, f: _tiago(k, f, patient=False), [], ("say", {"text": "Here is your tea."})),
    "alert_caregiver": (
        lambda k, f: _tiago(k, f, patient=False),
        [],
        ("alert_caregiver", {"message": "The patient asks for help."}),
    ),
    "power_grasp (Allegro)": (_allegro_bar, [], ("power_grasp", {})),
    "release (Allegro)": (_allegro_bar, [("power_grasp", {})], ("release", {})),
    "reach (G1)": (_g1, [], ("reach", _reach_target)),
    "demonstrate_exercise (G1)": (_g1, [], ("demonstrate_exercise", _exercise)),
}
QUICK_SKILLS = ("navigate_to", "pick", "hand_over", "bring_to_mouth (spoon)", "say")


@dataclass
class Row:
    """Outcome of one skill over the trials."""

    skill: str
    trials: int = 0
    successes: int = 0
    durations: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Trial:
    """One seeded trial of one skill (picklable, so worker processes can return it)."""

    skill: str
    seed: int
    succeeded: bool
    duration: float | None  # simulated s; None when the set-up failed
    wall: float | None
    failure: str


def run_trial(label: str, seed: int, fast: bool) -> Trial:
    """Set up the room for ``label`` with ``seed``, run the skills before it, then the scored skill."""
    setup, before, (name, given) = SCENARIOS[label]
    params = given(seed) if callable(given) else given
    session = setup(seed, fast)
    try:
        for pre_name, pre_params in before:
            pre = session.run(pre_name, **pre_params)
            if not pre.succeeded:
                return Trial(label, seed, False, None, None, f"seed {seed}: set-up {pre_name} failed: {pre.reason}")
        start = time.perf_counter()
        result = session.run(name, **params)
        wall = time.perf_counter() - start
    finally:
        session.close()
    print(f"  {label} seed {seed}: {result.status} ({result.duration:.1f} s) {result.reason}", flush=True)
    failure = "" if result.succeeded else f"seed {seed}: {result.reason}"
    return Trial(label, seed, result.succeeded, result.duration, wall, failure)


def run_all(labels: Sequence[str], trials: int, fast: bool, workers: int) -> list[Row]:
    """Every trial of every skill (seeds 0..trials-1), ``workers`` processes at once; one Row per skill."""
    jobs = [(label, seed) for label in labels for seed in range(trials)]
    if workers == 1:
        results = [run_trial(label, seed, fast) for label, seed in jobs]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_trial, label, seed, fast) for label, seed in jobs]
            results = [f.result() for f in futures]
    rows = {label: Row(label) for label in labels}
    for trial in results:
        row = rows[trial.skill]
        row.trials += 1
        row.successes += trial.succeeded
        if trial.duration is not None and trial.wall is not None:
            row.durations.append(trial.duration)
            row.walls.append(trial.wall)
        if trial.failure:
            row.failures.append(trial.failure)
    return list(rows.values())


def markdown(rows: Sequence[Row], trials: int, fast: bool, argv: Sequence[str], elapsed: float) -> str:
    """The results table with the set-up that produced it."""
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    lines = [
        "# Skill benchmark",
        "",
        f"`python experiments/bench/skills.py {shlex.join(argv)}`".replace(" `", "`"),
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, pybullet"
        f" {importlib.metadata.version('pybullet')}, {platform.machine()}, {elapsed / 60:.1f} min wall.",
        f"{trials} seeded trials per skill (seed = trial index), care room randomized (objects, TIAGo start,"
        " patient within +-5 cm / +-0.1 rad). Physics "
        + ("120 Hz" if fast else "240 Hz")
        + " under a 60 Hz control loop (the G1 rows always 240 Hz). Goal: at least 19 of 20.",
        "",
        "| skill | successes | mean duration (sim s) | mean wall s | first failure |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        first = r.failures[0].replace("|", "/") if r.failures else ""
        lines.append(
            f"| {r.skill} | {r.successes}/{r.trials} | {mean(r.durations):.1f} | {mean(r.walls):.1f} | {first[:140]} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: run the trials, print and write the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="2 trials of a few skills")
    parser.add_argument("--skills", default="", help="comma-separated scenario names (default: all)")
    parser.add_argument("--full-physics", action="store_true", help="240 Hz physics (the default World)")
    parser.add_argument("--workers", type=int, default=1, help="trials at once, one process each (one per core)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    trials = 2 if args.quick else args.trials
    names = [s.strip() for s in args.skills.split(",") if s.strip()] or list(QUICK_SKILLS if args.quick else SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown skills {unknown}; choose from {', '.join(SCENARIOS)}")
    start = time.perf_counter()
    print(f"{len(names)} skills x {trials} trials on {args.workers} worker(s)", flush=True)
    rows = run_all(names, trials, not args.full_physics, args.workers)
    text = markdown(rows, trials, not args.full_physics, argv, time.perf_counter() - start)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
