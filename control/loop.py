"""ControlLoop: runs a controller or policy against any Robot at a fixed rate and measures how well it kept time.

Each tick: ``obs = robot.observe()``, ``cmd = controller.step(obs)`` (or ``policy(obs)``),
``robot.command(cmd)``, then the optional ``stepper()`` (``world.step`` in simulation), then
wait for the next tick. Ticks are scheduled on absolute deadlines (``start + k / rate``) so
timing errors do not accumulate; the wait sleeps, then spins the last ``spin`` seconds for
precision. In real-time mode a tick whose work ends after the next tick's start is a
deadline miss; ``miss_burst`` misses within the last ``miss_window`` ticks stop the robot.
With ``realtime=False`` the loop runs as fast as possible (simulation: the stepper advances
the world one control step per tick). The loop calls ``robot.stop()`` on an exception, a
miss burst, Ctrl-C or ``request_stop()``; a normal end (controller done, duration, ticks)
leaves the last command in force.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tianji.control.controllers.base import Controller
from tianji.control.robot import Command, Observation, Robot
from tianji.control.safety import SafetyStopError

log = logging.getLogger(__name__)

Policy = Callable[[Observation], Command | None]
MAX_RATE = 1000.0  # Hz; 500 Hz is the highest rate the project tests


@dataclass
class LoopStats:
    """What a run did and how well it kept time. Jitter is |actual period - 1/rate|, real-time runs only."""

    rate: float
    realtime: bool
    ticks: int = 0
    wall_time: float = 0.0  # s
    achieved_rate: float = 0.0  # ticks per wall second
    jitter_p50_ms: float = math.nan
    jitter_p99_ms: float = math.nan
    jitter_max_ms: float = math.nan
    compute_p50_ms: float = math.nan  # observe + step + command + stepper
    compute_p99_ms: float = math.nan
    deadline_misses: int = 0
    stopped_reason: str = ""  # done | duration | max_ticks | interrupted | stop_requested | deadline_misses | ...
    controller_status: str | None = None
    periods_ms: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def summary(self) -> str:
        """One line for logs and reports."""
        timing = (
            f", jitter p50 {self.jitter_p50_ms:.3f} ms p99 {self.jitter_p99_ms:.3f} ms, {self.deadline_misses} misses"
            if self.realtime
            else ""
        )
        return (
            f"{self.ticks} ticks in {self.wall_time:.2f} s ({self.achieved_rate:.1f} Hz for {self.rate:g} Hz"
            f"{' real-time' if self.realtime else ' as fast as possible'}){timing}, compute p99"
            f" {self.compute_p99_ms:.2f} ms; stopped: {self.stopped_reason}"
        )


class ControlLoop:
    """Runs ``controller`` (a :class:`Controller`, or a policy ``obs -> Command | None``) on ``robot``.

    >>> loop = ControlLoop(SafeRobot(robot), CartesianController(...), rate=100, stepper=world.step)
    >>> stats = loop.run(duration=5.0)
    """

    def __init__(
        self,
        robot: Robot,
        controller: Controller | Policy,
        rate: float = 50.0,
        *,
        realtime: bool = True,
        stepper: Callable[[], None] | None = None,
        cameras: Sequence[str] = (),
        miss_burst: int = 5,
        miss_window: int = 10,
        spin: float = 0.0005,
        callback: Callable[[int, Observation, Command | None], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0 < rate <= MAX_RATE or not math.isfinite(rate):
            raise ValueError(f"rate must be in (0, {MAX_RATE:g}] Hz, got {rate}")
        if miss_burst < 1 or miss_window < miss_burst:
            raise ValueError(f"need 1 <= miss_burst <= miss_window, got {miss_burst} and {miss_window}")
        self.robot = robot
        self.controller = controller
        self.rate = float(rate)
        self.period = 1.0 / self.rate
        self.realtime = realtime
        self.stepper = stepper
        self.cameras = tuple(cameras)
        self.miss_burst = miss_burst
        self.miss_window = miss_window
        self.spin = spin
        self.callback = callback
        self.clock = clock
        self.stats: LoopStats | None = None
        self._stop = threading.Event()
        if stepper is not None and realtime and abs(robot.spec.control_rate - self.rate) > 1e-6:
            log.warning(
                "ControlLoop at %.1f Hz steps a simulation whose control rate is %.1f Hz: simulated time runs"
                " %.2fx real time; make them equal for a real-time simulation",
                self.rate,
                robot.spec.control_rate,
                robot.spec.control_rate / self.rate,
            )

    def request_stop(self) -> None:
        """Ask the loop to stop the robot and return at the next tick (thread- and signal-safe)."""
        self._stop.set()

    def run(self, duration: float | None = None, max_ticks: int | None = None) -> LoopStats:
        """Run until the controller is done, ``duration`` s of wall time or ``max_ticks`` ticks, whichever is first.

        Returns the :class:`LoopStats` (also kept in ``self.stats``). Ctrl-C and safety stops end the
        run with the robot stopped and return normally; any other exception stops the robot and
        is re-raised.
        """
        self._stop.clear()
        stats = LoopStats(self.rate, self.realtime)
        self.stats = stats
        periods: list[float] = []
        compute: list[float] = []
        recent: deque[bool] = deque(maxlen=self.miss_window)
        is_controller = isinstance(self.controller, Controller) or hasattr(self.controller, "reset")
        clock, period = self.clock, self.period
        start = clock()
        next_tick = start
        last_start: float | None = None
        try:
            while True:
                if self._stop.is_set():
                    self._safe_stop()
                    stats.stopped_reason = "stop_requested"
                    break
                if self.realtime:
                    self._wait_until(next_tick)
                tick_start = clock()
                if last_start is not None:
                    periods.append(tick_start - last_start)
                last_start = tick_start
                obs = self.robot.observe(self.cameras)
                if is_controller:
                    if stats.ticks == 0:
                        self.controller.reset(obs)  # type: ignore[union-attr]
                    cmd = self.controller.step(obs)  # type: ignore[union-attr]
                else:
                    cmd = self.controller(obs)  # type: ignore[operator]
                if cmd is not None:
                    self.robot.command(cmd)
                if self.stepper is not None:
                    self.stepper()
                if self.callback is not None:
                    self.callback(stats.ticks, obs, cmd)
                end = clock()
                compute.append(end - tick_start)
                stats.ticks += 1
                next_tick += period
                if self.realtime:
                    missed = end > next_tick
                    recent.append(missed)
                    if missed:
                        stats.deadline_misses += 1
                        if end > next_tick + period:  # more than a whole period late: drop the lost ticks
                            next_tick = end
                    if sum(recent) >= self.miss_burst:
                        self._safe_stop()
                        stats.stopped_reason = "deadline_misses"
                        log.warning(
                            "control loop stopped the robot: %d deadline misses in the last %d ticks at %.0f Hz",
                            sum(recent),
                            len(recent),
                            self.rate,
                        )
                        break
                if is_controller and self.controller.done:  # type: ignore[union-attr]
                    stats.stopped_reason = "done"
                    break
                if max_ticks is not None and stats.ticks >= max_ticks:
                    stats.stopped_reason = "max_ticks"
                    break
                if duration is not None and end - start >= duration:
                    stats.stopped_reason = "duration"
                    break
        except KeyboardInterrupt:
            self._safe_stop()
            stats.stopped_reason = "interrupted"
            log.warning("control loop interrupted (Ctrl-C): robot stopped")
        except SafetyStopError as exc:
            self._safe_stop()
            stats.stopped_reason = f"safety_stop: {exc.reason}"
            log.warning("control loop ended by a safety stop: %s", exc)
        except BaseException as exc:
            self._safe_stop()
            stats.stopped_reason = f"error: {type(exc).__name__}: {exc}"
            raise
        finally:
            self._finish(stats, start, periods, compute)
        return stats

    # ------------------------------------------------------------ internals
    def _wait_until(self, deadline: float) -> None:
        remaining = deadline - self.clock()
        if remaining > self.spin:
            time.sleep(remaining - self.spin)
        while self.clock() < deadline:
            pass

    def _safe_stop(self) -> None:
        """robot.stop(), which must not itself end the shutdown."""
        try:
            self.robot.stop()
        except Exception:  # the robot may be what failed; report and carry on
            log.exception("robot.stop() failed while the control loop was shutting down")

    def _finish(self, stats: LoopStats, start: float, periods: list[float], compute: list[float]) -> None:
        stats.wall_time = self.clock() - start
        stats.achieved_rate = stats.ticks / stats.wall_time if stats.wall_time > 0 else 0.0
        if isinstance(self.controller, Controller):
            stats.controller_status = self.controller.status.value
        if compute:
            c = np.asarray(compute) * 1000.0
            stats.compute_p50_ms, stats.compute_p99_ms = (float(v) for v in np.percentile(c, [50, 99]))
        if periods:
            p = np.asarray(periods) * 1000.0
            stats.periods_ms = p
            if self.realtime:
                jitter = np.abs(p - self.period * 1000.0)
                stats.jitter_p50_ms, stats.jitter_p99_ms = (float(v) for v in np.percentile(jitter, [50, 99]))
                stats.jitter_max_ms = float(jitter.max())
        log.info("control loop: %s", stats.summary())
