"""Gripper open/close with grasp detection from the finger opening or a contact-force reading."""

from __future__ import annotations

from collections.abc import Callable

from tianji.control.controllers.base import Controller
from tianji.control.robot import Command, ControlMode, Observation, RobotSpec


class GripperController(Controller):
    """Opens or closes the gripper (``Command.gripper``, 0 closed .. 1 open) and reports a grasp.

    The opening ramps linearly to ``target`` over ``duration`` seconds. While closing, a grasp
    is detected when the fingers stop (opening changes less than ``stall_speed`` per second for
    ``stall_time`` s) while still more than ``empty_opening`` open, i.e. something is between
    them, or when ``contact_force()`` (optional, newtons, e.g. fingertip sensors) exceeds
    ``contact_threshold``. Succeeds when the target is reached or a grasp holds; with
    ``expect_object=True`` closing on nothing is a failure. ``grasped`` says the outcome.
    """

    def __init__(
        self,
        spec: RobotSpec,
        close: bool = True,
        *,
        target: float | None = None,
        duration: float = 1.0,
        empty_opening: float = 0.1,
        stall_speed: float = 0.05,
        stall_time: float = 0.3,
        tolerance: float = 0.05,
        contact_force: Callable[[], float] | None = None,
        contact_threshold: float = 2.0,
        expect_object: bool = False,
        timeout: float | None = 5.0,
    ) -> None:
        super().__init__(timeout)
        if not spec.has_gripper:
            raise ValueError(f"robot '{spec.name}' has no gripper (spec.has_gripper is False)")
        self.spec = spec
        self.close = close
        self.target = float(target if target is not None else (0.0 if close else 1.0))
        if not 0.0 <= self.target <= 1.0:
            raise ValueError(f"gripper target opening must be in [0, 1], got {self.target}")
        self.duration = duration
        self.empty_opening = empty_opening
        self.stall_speed = stall_speed
        self.stall_time = stall_time
        self.tolerance = tolerance
        self.contact_force = contact_force
        self.contact_threshold = contact_threshold
        self.expect_object = expect_object
        self.grasped = False
        self.opening = 1.0
        self._start = 1.0
        self._stalled_since: float | None = None
        self._last_opening: float | None = None

    def _reset(self, obs: Observation) -> None:
        self.opening = self._start = obs.gripper if obs.gripper is not None else 1.0 - self.target
        self.grasped = False
        self._stalled_since = None
        self._last_opening = None

    def _step(self, obs: Observation) -> Command:
        t = self.elapsed(obs)
        self.opening = float(obs.gripper) if obs.gripper is not None else self.opening
        fraction = min(1.0, t / self.duration) if self.duration > 0 else 1.0
        command = self._start + fraction * (self.target - self._start)
        if self.close:
            self._detect(t, command)
        if not self.done and abs(self.opening - self.target) <= self.tolerance:
            if self.expect_object and self.close:
                self.fail(f"gripper closed to {self.opening:.2f} without finding an object")
            else:
                self.succeed("opened" if not self.close else "closed on nothing")
        self._last_opening = self.opening
        return Command(ControlMode.POSITION, gripper=command)

    def _detect(self, t: float, command: float) -> None:
        force = self.contact_force() if self.contact_force is not None else 0.0
        if force >= self.contact_threshold:
            self.grasped = True
            self.succeed(f"grasp detected: contact force {force:.1f} N")
            return
        if self._last_opening is None or self.dt <= 0:
            return
        speed = abs(self.opening - self._last_opening) / self.dt
        pressing = command < self.opening - self.tolerance  # told to close further than it is
        if speed < self.stall_speed and self.opening > self.empty_opening and pressing:
            self._stalled_since = t if self._stalled_since is None else self._stalled_since
            if t - self._stalled_since >= self.stall_time:
                self.grasped = True
                self.succeed(f"grasp detected: fingers stopped at opening {self.opening:.2f}")
        else:
            self._stalled_since = None

    def hold_command(self, obs: Observation) -> Command:
        # keep squeezing after a grasp; otherwise hold the final target
        return Command(ControlMode.POSITION, gripper=self.target)

    def progress(self) -> str:
        return f"opening {self.opening:.2f}, target {self.target:.2f}"
