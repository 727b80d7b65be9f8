"""Run traces: one JSON object per line, and ``tianji trace FILE`` as a readable timeline.

Every event has ``event`` (its kind), ``t`` (wall time, Unix seconds) and ``sim_t`` (robot time
from ``Observation.timestamp``: simulated seconds in the simulator). Kinds and their fields:

* ``start``: instruction, backend, robot, clock (scene time HH:MM)
* ``plan``: plan (``Plan.as_dict()``: outcome, steps, message, category, attempts, latency_s)
* ``safety``: decision (refuse / confirm / confirmed / intervention), category, reason
* ``step_start``: index, skill, params, attempt
* ``step_end``: index, skill, attempt, status, reason, duration (robot s), observed (symbolic
  facts after the step), expected (the facts the step promised), interventions (safety filter
  counts by reason during the step), events (say / alert)
* ``replan``: n, failed_step, reason, world (text), plan
* ``end``: status (succeeded / failed / refused / not_run), reason, steps, replans, interventions
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tianji.policies.planner.plan import Plan, PlanStep


class TraceWriter:
    """Appends events to a JSON-lines file; ``sim_time()`` gives the robot time stamped on each."""

    def __init__(self, path: str | Path | None, sim_time: Callable[[], float] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.sim_time = sim_time or (lambda: 0.0)
        self.events: list[dict[str, Any]] = []
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")

    def write(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record one event (also kept in ``events``)."""
        record = {"event": event, "t": round(time.time(), 4), "sim_t": round(float(self.sim_time()), 4), **fields}
        self.events.append(record)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record, ensure_ascii=False, default=_plain) + "\n")
        return record


def _plain(value: Any) -> Any:
    if isinstance(value, Plan | PlanStep):
        return value.as_dict()
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """The events of a trace file; ValueError names the first line that is not JSON."""
    events = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number} is not JSON ({exc.msg}); is this a tianji trace?") from None
    return events


def timeline(events: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Rows (wall offset, sim time, what, detail) for printing."""
    if not events:
        return []
    t0 = float(events[0].get("t", 0.0))
    rows = []
    for e in events:
        kind = e.get("event", "?")
        offset, sim = f"+{float(e.get('t', t0)) - t0:7.2f}s", f"{float(e.get('sim_t', 0.0)):7.2f}s"
        rows.append((offset, sim, kind, _detail(e)))
    return rows


def _steps(plan: dict[str, Any]) -> str:
    steps = plan.get("steps") or []
    shown = " -> ".join(str(PlanStep.from_dict(s)) for s in steps)
    head = f"{plan.get('outcome', '?')} by {plan.get('backend', '?')}"
    return f"{head}: {shown}" if shown else f"{head}: {plan.get('message', '')}"


def _detail(e: dict[str, Any]) -> str:
    kind = e.get("event")
    if kind == "start":
        return f"'{e.get('instruction', '')}' ({e.get('backend')} planner, {e.get('robot')}, clock {e.get('clock')})"
    if kind == "plan":
        return _steps(e.get("plan") or {})
    if kind == "safety":
        return f"{e.get('decision')} [{e.get('category', '')}] {e.get('reason', '')}"
    if kind == "step_start":
        step = PlanStep(str(e.get("skill")), dict(e.get("params") or {}))
        return f"#{e.get('index')} {step} (attempt {e.get('attempt')})"
    if kind == "step_end":
        extra = ""
        if e.get("interventions"):
            extra = " | safety filter: " + ", ".join(f"{k}={v}" for k, v in e["interventions"].items())
        said = "".join(f" | {ev['kind']}: {ev['message']}" for ev in e.get("events", ()) if ev["kind"] != "phase")
        head = f"#{e.get('index')} {e.get('skill')} {e.get('status')} in {e.get('duration', 0):.1f}s"
        return f"{head}: {e.get('reason')}{said}{extra}"
    if kind == "replan":
        return f"#{e.get('n')} after {e.get('failed_step')} failed ({e.get('reason')}) -> {_steps(e.get('plan') or {})}"
    if kind == "end":
        return f"{e.get('status')}: {e.get('reason')} ({e.get('steps')} steps, {e.get('replans')} replans)"
    return json.dumps({k: v for k, v in e.items() if k not in ("event", "t", "sim_t")}, ensure_ascii=False)
