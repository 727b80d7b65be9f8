"""The speed benchmark runs end to end and writes its table (no timing is asserted here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "bench" / "sim_speed.py"


def test_sim_speed_benchmark_writes_its_tables(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("sim_speed", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "sim_speed.md"
    assert bench.main(["--quick", "--robots", "allegro", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| allegro | 16 |" in text
    assert "128x128" in text and "320x240" in text
    assert "python experiments/bench/sim_speed.py" in text
