"""Benchmarks run end to end and write their tables (no timing is asserted here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "experiments" / "bench"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_sim_speed_benchmark_writes_its_tables(tmp_path: Path) -> None:
    bench = _load("sim_speed")
    out = tmp_path / "sim_speed.md"
    assert bench.main(["--quick", "--robots", "allegro", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| allegro | 16 |" in text
    assert "128x128" in text and "320x240" in text
    assert "python experiments/bench/sim_speed.py" in text


def test_training_benchmark_stops_at_its_budget_and_says_the_target_was_not_met(tmp_path: Path) -> None:
    bench = _load("training")
    out = tmp_path / "training.md"
    args = ["--envs", "TiagoReach-v0", "--seeds", "0", "--budget", "0.1", "--episodes", "2"]
    assert bench.main([*args, "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    text = out.read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| TiagoReach-v0 | SAC |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "0" and cells[4] == "not reached"  # 6 s of training cannot reach 95%
    assert 0 < int(cells[6].replace(",", "")) < 30_000  # the wall-clock budget ended the run early
    assert "**not met**" in text and "python experiments/bench/training.py --envs TiagoReach-v0" in text
