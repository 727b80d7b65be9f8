"""The controller contract every skill building block follows: ``reset(obs)``, ``step(obs) -> Command``, ``done``.

A controller is a small object that turns observations into commands for one goal (move
the arm there, close the gripper, drive to the table). It never talks to the robot itself:
a :class:`~tianji.control.loop.ControlLoop` (or a skill, or a test) calls ``reset`` once with
the first observation, then ``step`` every control tick and sends the returned command
(through the safety filter) until ``done``. Time comes from ``Observation.timestamp``, so the
same controller runs against the simulator and real hardware.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable

from tianji.control.robot import Command, ControlMode, Observation


class Status(enum.StrEnum):
    """Where a controller is: running, or finished well or badly (``message`` says why)."""

    IDLE = "idle"  # not reset yet
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Controller(ABC):
    """Base class: subclasses implement :meth:`_reset` and :meth:`_step` and call :meth:`succeed` / :meth:`fail`.

    ``timeout`` (seconds after ``reset``) fails the controller when it has not finished by then.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.status = Status.IDLE
        self.message = ""
        self.t0 = 0.0
        self._last_time: float | None = None
        self.dt = 0.0  # seconds since the previous step (0 on the first)

    # ------------------------------------------------------------------- API
    def reset(self, obs: Observation) -> None:
        """Start (or restart) from the robot's current state."""
        self.status = Status.RUNNING
        self.message = ""
        self.t0 = float(obs.timestamp)
        self._last_time = None
        self._reset(obs)

    def step(self, obs: Observation) -> Command:
        """One control tick: the command to send now. After ``done`` it returns a hold command."""
        if self.status is Status.IDLE:
            self.reset(obs)
        now = float(obs.timestamp)
        self.dt = 0.0 if self._last_time is None else max(0.0, now - self._last_time)
        self._last_time = now
        if self.done:
            return self.hold_command(obs)
        if self.timeout is not None and self.elapsed(obs) > self.timeout:
            self.fail(f"timed out after {self.timeout:.1f} s ({self.progress()})")
            return self.hold_command(obs)
        return self._step(obs)

    @property
    def done(self) -> bool:
        """True once the controller succeeded or failed."""
        return self.status in (Status.SUCCEEDED, Status.FAILED)

    @property
    def succeeded(self) -> bool:
        """True when it finished and reached its goal."""
        return self.status is Status.SUCCEEDED

    # --------------------------------------------------------------- helpers
    def period(self, nominal: float) -> float:
        """Seconds since the previous step, or ``nominal`` on the first step (no previous one yet)."""
        return self.dt if self.dt > 0 else nominal

    def elapsed(self, obs: Observation) -> float:
        """Seconds since ``reset``."""
        return float(obs.timestamp) - self.t0

    def succeed(self, message: str = "") -> None:
        """Finish with success."""
        self.status, self.message = Status.SUCCEEDED, message

    def fail(self, message: str) -> None:
        """Finish with failure; ``message`` says what went wrong."""
        self.status, self.message = Status.FAILED, message

    def progress(self) -> str:
        """A short description of how far it got, for timeout messages."""
        return "no progress information"

    def hold_command(self, obs: Observation) -> Command:
        """What to send once finished: nothing new (targets stay where they are)."""
        return Command(ControlMode.POSITION)

    @abstractmethod
    def _reset(self, obs: Observation) -> None: ...

    @abstractmethod
    def _step(self, obs: Observation) -> Command: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status.value})"


class SequenceController(Controller):
    """Runs controllers one after another; fails as soon as one fails."""

    def __init__(self, controllers: Iterable[Controller], timeout: float | None = None) -> None:
        super().__init__(timeout)
        self.controllers = list(controllers)
        if not self.controllers:
            raise ValueError("SequenceController needs at least one controller")
        self.index = 0

    def _reset(self, obs: Observation) -> None:
        self.index = 0
        self.controllers[0].reset(obs)

    def _step(self, obs: Observation) -> Command:
        current = self.controllers[self.index]
        cmd = current.step(obs)
        if current.done:
            if not current.succeeded:
                self.fail(f"step {self.index + 1} ({type(current).__name__}) failed: {current.message}")
            elif self.index + 1 == len(self.controllers):
                self.succeed(current.message)
            else:
                self.index += 1
                self.controllers[self.index].reset(obs)
        return cmd

    def progress(self) -> str:
        return f"at step {self.index + 1} of {len(self.controllers)}"


class HoldController(Controller):
    """Sends nothing new for ``duration`` seconds (the robot keeps its targets), then succeeds."""

    def __init__(self, duration: float) -> None:
        super().__init__()
        self.duration = duration

    def _reset(self, obs: Observation) -> None:
        pass

    def _step(self, obs: Observation) -> Command:
        if self.elapsed(obs) >= self.duration:
            self.succeed()
        return Command(ControlMode.POSITION)
