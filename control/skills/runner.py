"""SkillRunner: runs one skill against any Robot at the control rate, refreshing the world state every tick.

It wraps the skill in a controller for :class:`~tianji.control.loop.ControlLoop`, so a skill
run gets the loop's behaviour: fixed rate (real time or as fast as possible), a ``stepper``
hook (``world.step`` in simulation), Ctrl-C and safety stops that stop the robot. The world
state comes from a callable (``lambda: from_scene(scene)`` today, perception later) called
once per tick before the skill steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tianji.control.controllers.base import Controller
from tianji.control.loop import ControlLoop, LoopStats
from tianji.control.robot import Command, Observation, Robot
from tianji.control.skills.base import Skill, SkillResult
from tianji.control.world_state import WorldState

log = logging.getLogger("tianji.control.skills")


class _SkillController(Controller):
    """Adapter: a skill seen as a controller (the world state is fetched each tick)."""

    def __init__(self, skill: Skill, world_state: Callable[[], WorldState], check_preconditions: bool) -> None:
        super().__init__(None)
        self.skill = skill
        self.world_state = world_state
        self.check_preconditions = check_preconditions

    def _reset(self, obs: Observation) -> None:
        ws = self.world_state()
        unmet = self.skill.preconditions(ws, obs) if self.check_preconditions else []
        if unmet:
            self.skill.refuse(obs, unmet)
        else:
            self.skill.reset(obs, ws)
        self._sync()

    def _step(self, obs: Observation) -> Command:
        cmd = self.skill.step(obs, self.world_state())
        self._sync()
        return cmd

    def _sync(self) -> None:
        if self.skill.done:
            (self.succeed if self.skill.succeeded else self.fail)(self.skill.reason)

    def progress(self) -> str:
        return self.skill.progress()


class SkillRunner:
    """Runs skills on ``robot`` (a SafeRobot in practice) with world states from ``world_state()``.

    >>> runner = SkillRunner(safe, lambda: from_scene(scene), stepper=world.step)
    >>> result = runner.run(get_skill("navigate_to")(NavigateParams("bedside"), ctx))

    ``rate`` defaults to the robot's control rate; ``realtime=False`` runs as fast as the
    simulation goes. A skill whose context has no spec gets the robot's. ``callback(tick, obs,
    command)`` runs after every tick (videos, plots).
    """

    def __init__(
        self,
        robot: Robot,
        world_state: Callable[[], WorldState],
        *,
        rate: float | None = None,
        realtime: bool = False,
        stepper: Callable[[], None] | None = None,
        callback: Callable[[int, Observation, Command | None], None] | None = None,
        check_preconditions: bool = True,
    ) -> None:
        self.robot = robot
        self.world_state = world_state
        self.rate = float(rate or robot.spec.control_rate)
        self.realtime = realtime
        self.stepper = stepper
        self.callback = callback
        self.check_preconditions = check_preconditions
        self.stats: LoopStats | None = None

    def run(self, skill: Skill) -> SkillResult:
        """Run ``skill`` to the end (success, failure, its timeout or a safety stop) and return its result."""
        if skill.context.spec is None:
            skill.context.spec = self.robot.spec
        adapter = _SkillController(skill, self.world_state, self.check_preconditions)
        loop = ControlLoop(
            self.robot,
            adapter,
            rate=self.rate,
            realtime=self.realtime,
            stepper=self.stepper,
            callback=self.callback,
            miss_burst=10**6 if not self.realtime else 25,
            miss_window=10**6 if not self.realtime else 50,
        )
        max_ticks = int((skill.timeout + 5.0) * self.rate)  # the skill's own timeout ends it first
        self.stats = stats = loop.run(max_ticks=max_ticks)
        if not skill.done:
            reason = stats.stopped_reason
            if reason.startswith("safety_stop"):
                detail = ""
                events = getattr(self.robot, "events", None)
                if events:
                    detail = f": {events[-1].detail}"
                skill.fail(f"{reason}{detail} ({skill.progress()})")  # where it was: which phase touched whom
            elif reason == "interrupted":
                skill.fail("interrupted (Ctrl-C); the robot was stopped")
            else:
                skill.fail(f"the control loop ended before the skill did ({reason})")
        result = skill.result()
        log.info("skill %s %s in %.1f s: %s", skill.name, result.status, result.duration, result.reason)
        return result
