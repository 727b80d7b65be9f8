"""The skill contract: typed parameters, preconditions, a success check from observations, a timeout, a result.

A skill is one step of a care plan (``pick(cup)``, ``navigate_to(bedside)``). It is built
from a parameter dataclass and a :class:`SkillContext` (robot spec, kinematics, floor map,
contact-force hook), then driven tick by tick like a controller, except that every tick it
also gets the current :class:`~tianji.control.world_state.WorldState`, whoever fills it
(the simulator's ground truth today, perception later)::

    skill = get_skill("pick")(PickParams(object="cup"), context)
    unmet = skill.preconditions(world_state, obs)   # [] or reasons
    skill.reset(obs, world_state)
    while not skill.done:
        robot.command(skill.step(robot.observe(), world_state_fn()))
    skill.result()  # SkillResult(succeeded, reason, duration, events)

:class:`~tianji.control.skills.runner.SkillRunner` does that loop. Most skills are a list of
phases, each a controller built when the phase starts (so it aims at the world as it is
then): :class:`PhasedSkill` runs them and calls :meth:`PhasedSkill.check_success` at the end.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from tianji.control.base_nav import OccupancyMap
from tianji.control.controllers.base import Controller
from tianji.control.kinematics import Kinematics
from tianji.control.robot import BaseType, Command, ControlMode, Observation, RobotSpec
from tianji.control.world_state import WorldState

log = logging.getLogger("tianji.control.skills")


class SkillStatus(enum.StrEnum):
    """Where a skill is."""

    IDLE = "idle"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class SkillEvent:
    """Something a skill did that a person or a report should see: an utterance, an alert, a phase."""

    time: float  # robot time (Observation.timestamp), s
    skill: str
    kind: str  # "say" | "alert" | "phase" | "info"
    message: str


@dataclass
class SkillResult:
    """How a skill ended: ``succeeded``, and ``reason`` in words either way; ``duration`` in robot seconds."""

    skill: str
    succeeded: bool
    reason: str
    duration: float
    events: list[SkillEvent] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # measurements, e.g. {"mouth_distance": 0.031}

    @property
    def status(self) -> str:
        """``succeeded`` or ``failed``."""
        return "succeeded" if self.succeeded else "failed"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, for logs and the planner."""
        return {
            "skill": self.skill,
            "status": self.status,
            "reason": self.reason,
            "duration": round(self.duration, 3),
            "events": [dataclasses.asdict(e) for e in self.events],
            "data": {k: _plain(v) for k, v in self.data.items()},
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Condition:
    """A symbolic fact for the planner: ``variable(args) = value``; ``{name}`` refers to a skill parameter.

    Variables: ``holding`` (object name or ``none``), ``robot_at`` (place name or ``none``),
    ``near(person)`` (true/false), ``gripper`` (open/closed), ``on(object)`` (place name or
    ``none``), ``posture(person)`` (a :class:`~tianji.control.world_state.Posture` value),
    ``standing`` (true/false, humanoids), ``hand_closed`` (true/false, dexterous hands).
    A value may be another variable, e.g. ``robot_at = on({object})``.
    """

    variable: str
    value: str
    args: tuple[str, ...] = ()

    def __str__(self) -> str:
        call = f"{self.variable}({', '.join(self.args)})" if self.args else self.variable
        return f"{call} = {self.value}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form: variable, args, value and the text."""
        return {"variable": self.variable, "args": list(self.args), "value": self.value, "text": str(self)}


def cond(text: str) -> Condition:
    """Parse ``"holding = {object}"`` or ``"near({person}) = true"`` into a Condition."""
    left, _, value = (s.strip() for s in text.partition("="))
    if not value:
        raise ValueError(f"condition {text!r} needs the form 'variable = value' or 'variable(arg) = value'")
    if "(" in left:
        name, _, rest = left.partition("(")
        args = tuple(a.strip() for a in rest.rstrip(")").split(",") if a.strip())
        return Condition(name.strip(), value, args)
    return Condition(left, value)


@dataclass
class SkillContext:
    """What a skill needs besides its parameters and the world state.

    ``spec`` is the robot's (the runner fills it from the robot); ``kinematics`` is built by the
    caller from the URDF (``Kinematics.for_spec(get_robot(name).urdf_path(), spec)``: control
    never resolves URDFs itself); ``occupancy`` is the floor map for navigation;
    ``contact_force`` returns the contact force (N) between the robot (and what it holds) and a
    person: the simulator's contact query, or a wrist force/torque sensor. ``on_event`` is called
    for every event (speech synthesis, a caregiver pager, a log).
    """

    spec: RobotSpec | None = None
    kinematics: Kinematics | None = None
    occupancy: OccupancyMap | None = None
    contact_force: Callable[[], float] | None = None
    on_event: Callable[[SkillEvent], None] | None = None
    events: list[SkillEvent] = field(default_factory=list)


class SkillError(ValueError):
    """A skill was built wrongly (unknown parameter, bad value, missing context); the message says how to fix it."""


class Skill(ABC):
    """Base class of every skill. Subclasses set the class variables and implement ``_reset`` / ``_step``.

    ``name`` is the registry name; ``Params`` the parameter dataclass (its fields' metadata
    ``description`` and ``enum`` go into the JSON schema); ``robots`` the robot names it is
    written for; ``requires`` / ``effects`` symbolic conditions (:func:`cond` strings) for the
    planner; ``preconditions_doc`` the checks :meth:`preconditions` makes, in words;
    ``success_doc`` what success means; ``default_timeout`` seconds.
    """

    name: ClassVar[str] = ""
    Params: ClassVar[type] = type(None)
    description: ClassVar[str] = ""
    robots: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[tuple[str, ...]] = ()
    effects: ClassVar[tuple[str, ...]] = ()
    preconditions_doc: ClassVar[tuple[str, ...]] = ()
    success_doc: ClassVar[str] = ""
    default_timeout: ClassVar[float] = 30.0

    def __init__(self, params: Any = None, context: SkillContext | None = None, *, timeout: float | None = None):
        if params is None:
            try:
                params = self.Params()
            except TypeError:
                fields = ", ".join(f.name for f in dataclasses.fields(self.Params))
                raise SkillError(f"skill '{self.name}' needs parameters: {fields}") from None
        if not isinstance(params, self.Params):
            raise SkillError(f"skill '{self.name}' takes {self.Params.__name__}, got {type(params).__name__}")
        self.params = params
        self.context = context or SkillContext()
        self.timeout = float(timeout if timeout is not None else self.default_timeout)
        self.status = SkillStatus.IDLE
        self.reason = ""
        self.t0 = 0.0
        self.now = 0.0
        self.events: list[SkillEvent] = []
        self.data: dict[str, Any] = {}
        self._last_obs: Observation | None = None

    # ------------------------------------------------------------------ API
    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        """Unmet preconditions, each a sentence saying what is wrong and what to do; [] when the skill can start."""
        return []

    def reset(self, obs: Observation, world_state: WorldState) -> None:
        """Start from the current state (clears the previous run's result)."""
        self.status = SkillStatus.RUNNING
        self.reason = ""
        self.t0 = self.now = float(obs.timestamp)
        self.events = []
        self.data = {}
        self._reset(obs, world_state)

    def step(self, obs: Observation, world_state: WorldState) -> Command:
        """One control tick: the command to send now; a hold command once done."""
        if self.status is SkillStatus.IDLE:
            self.reset(obs, world_state)
        self.now = float(obs.timestamp)
        self._last_obs = obs
        if self.done:
            return self.hold_command(obs)
        if self.elapsed > self.timeout:
            self.fail(f"timed out after {self.timeout:.0f} s ({self.progress()})")
            return self.hold_command(obs)
        cmd = self._step(obs, world_state)
        return self.hold_command(obs) if self.done and cmd is None else (cmd or Command(ControlMode.POSITION))

    def refuse(self, obs: Observation, unmet: list[str]) -> None:
        """End without running because preconditions are unmet (the runner calls this)."""
        self.status = SkillStatus.IDLE
        self.t0 = self.now = float(obs.timestamp)
        self.events, self.data = [], {"unmet_preconditions": list(unmet)}
        self.fail("preconditions not met: " + "; ".join(unmet))

    @property
    def done(self) -> bool:
        """True once the skill succeeded or failed."""
        return self.status in (SkillStatus.SUCCEEDED, SkillStatus.FAILED)

    @property
    def succeeded(self) -> bool:
        """True when it finished and its success check passed."""
        return self.status is SkillStatus.SUCCEEDED

    @property
    def elapsed(self) -> float:
        """Robot seconds since reset."""
        return self.now - self.t0

    def result(self) -> SkillResult:
        """The outcome so far (``succeeded=False`` with "still running" before it ends)."""
        reason = self.reason or ("still running" if self.status is SkillStatus.RUNNING else "not started")
        return SkillResult(self.name, self.succeeded, reason, self.elapsed, list(self.events), dict(self.data))

    # ------------------------------------------------------------ helpers
    def succeed(self, reason: str) -> None:
        """Finish with success."""
        if not self.done:
            self.status, self.reason = SkillStatus.SUCCEEDED, reason
            log.info("skill %s succeeded: %s", self.name, reason)

    def fail(self, reason: str) -> None:
        """Finish with failure; ``reason`` says what went wrong."""
        if not self.done:
            self.status, self.reason = SkillStatus.FAILED, reason
            log.warning("skill %s failed: %s", self.name, reason)

    def emit(self, kind: str, message: str) -> SkillEvent:
        """Record an event (say, alert, phase, info), log it and pass it to the context's ``on_event``."""
        event = SkillEvent(self.now, self.name, kind, message)
        self.events.append(event)
        self.context.events.append(event)
        level = logging.WARNING if kind == "alert" else logging.INFO
        log.log(level, "%s [%s] %s", self.name, kind, message)
        if self.context.on_event is not None:
            self.context.on_event(event)
        return event

    @property
    def spec(self) -> RobotSpec:
        """The robot's spec from the context; a clear error when the runner has not set it."""
        if self.context.spec is None:
            raise SkillError(f"skill '{self.name}' has no robot spec: run it with SkillRunner or set context.spec")
        return self.context.spec

    @property
    def kinematics(self) -> Kinematics:
        """The robot's kinematics from the context; a clear error when missing."""
        if self.context.kinematics is None:
            raise SkillError(
                f"skill '{self.name}' needs kinematics: SkillContext(kinematics=Kinematics.for_spec(urdf, spec))"
            )
        return self.context.kinematics

    def hold_command(self, obs: Observation) -> Command:
        """What to send once done: no new joint targets, and a stopped base for mobile robots."""
        twist = (0.0, 0.0, 0.0) if self.context.spec is not None and self.context.spec.base is BaseType.MOBILE else None
        return Command(ControlMode.POSITION, base_twist=twist)

    def progress(self) -> str:
        """How far it got, for timeout messages."""
        return "no progress information"

    @abstractmethod
    def _reset(self, obs: Observation, world_state: WorldState) -> None: ...

    @abstractmethod
    def _step(self, obs: Observation, world_state: WorldState) -> Command | None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params}, status={self.status.value})"


PhaseFactory = Callable[[Observation, WorldState], Controller | None]


@dataclass
class Phase:
    """One step of a phased skill: a name and a factory that builds its controller when the phase starts.

    A factory returning None skips the phase (e.g. "no need to move the base").
    ``monitor(obs, world_state)`` runs every tick of the phase (measure contact, distances).
    """

    name: str
    factory: PhaseFactory
    monitor: Callable[[Observation, WorldState], None] | None = None


class PhasedSkill(Skill):
    """A skill made of phases run in order; fails with the failing phase's message; then checks success.

    Subclasses implement :meth:`phases` (called at reset) and :meth:`check_success` (called
    after the last phase, returns (succeeded, reason)).
    """

    def _reset(self, obs: Observation, world_state: WorldState) -> None:
        self._phases = self.phases(obs, world_state)
        self._index = -1
        self._controller: Controller | None = None
        self.phase = ""

    @abstractmethod
    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        """The phases of this run, built from the state at reset."""

    @abstractmethod
    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        """(succeeded, reason) from observations and the world state, after the last phase."""

    def _advance(self, obs: Observation, world_state: WorldState) -> None:
        while self._controller is None or self._controller.done:
            self._index += 1
            if self._index >= len(self._phases):
                ok, reason = self.check_success(obs, world_state)
                self.succeed(reason) if ok else self.fail(reason)
                return
            phase = self._phases[self._index]
            self.phase = phase.name
            try:
                self._controller = phase.factory(obs, world_state)
            except PhaseError as exc:
                self.fail(f"{phase.name}: {exc}")
                return
            if self._controller is not None:
                self.emit("phase", phase.name)
                self._controller.reset(obs)
                if self._controller.done and not self._controller.succeeded:
                    self.fail(f"{phase.name}: {self._controller.message}")
                    return

    def _step(self, obs: Observation, world_state: WorldState) -> Command | None:
        self._advance(obs, world_state)
        if self.done or self._controller is None:
            return None
        phase = self._phases[self._index]
        cmd = self._controller.step(obs)
        if phase.monitor is not None:
            phase.monitor(obs, world_state)
        if self._controller.done and not self._controller.succeeded:
            self.fail(f"{phase.name}: {self._controller.message}")
        elif self._controller.done:
            self._advance(obs, world_state)
        return cmd

    def progress(self) -> str:
        if self._controller is None:
            return f"in phase '{self.phase}'"
        return f"in phase '{self.phase}': {self._controller.progress()}"


class PhaseError(RuntimeError):
    """A phase could not be planned (no IK solution, no free path); the skill fails with this message."""


class FunctionController(Controller):
    """A controller from a function ``f(obs, elapsed) -> (Command, done)``: for short custom phases."""

    def __init__(self, fn: Callable[[Observation, float], tuple[Command, bool]], timeout: float | None = None):
        super().__init__(timeout)
        self.fn = fn

    def _reset(self, obs: Observation) -> None:
        pass

    def _step(self, obs: Observation) -> Command:
        cmd, finished = self.fn(obs, self.elapsed(obs))
        if finished:
            self.succeed("done")
        return cmd
