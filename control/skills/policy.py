"""PolicySkill: a learned policy behind the skill interface (any ``callable(obs_dict) -> action``).

The policies layer wraps its stable-baselines3 models as ``lambda obs: model.predict(obs)[0]``;
``to_command`` turns the action into a :class:`~tianji.control.robot.Command` (default: the
action is a vector of position targets for ``joints``), ``success`` judges the outcome from
the observation and the world state. Preconditions, timeout and result work as for scripted
skills, so the planner cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tianji.control.robot import Command, ControlMode, Observation
from tianji.control.skills.base import Skill, SkillContext
from tianji.control.world_state import WorldState

Policy = Callable[[dict[str, np.ndarray]], Any]


@dataclass
class PolicyParams:
    """A policy skill takes its configuration in the constructor; the plan step has no parameters."""


class PolicySkill(Skill):
    """Runs ``policy`` every tick until ``success(obs, world_state)`` holds or the timeout.

    ``observe(obs, world_state) -> dict`` builds the policy's input (default ``obs.as_dict()``);
    ``to_command(action, obs) -> Command`` maps its output (default: position targets for
    ``joints``, or the full joint vector). ``name`` lets several learned skills coexist.
    """

    Params = PolicyParams
    description = "A learned policy run as a skill."

    def __init__(
        self,
        policy: Policy,
        success: Callable[[Observation, WorldState], bool],
        *,
        name: str = "policy",
        joints: Sequence[str] | None = None,
        observe: Callable[[Observation, WorldState], dict[str, np.ndarray]] | None = None,
        to_command: Callable[[Any, Observation], Command] | None = None,
        context: SkillContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(PolicyParams(), context, timeout=timeout)
        self.name = name
        self.policy = policy
        self.success_fn = success
        self.joints = tuple(joints) if joints is not None else None
        self.observe_fn = observe or (lambda obs, ws: obs.as_dict())
        self.to_command = to_command or self._targets
        self.steps = 0

    def _targets(self, action: Any, obs: Observation) -> Command:
        values = np.asarray(action, dtype=float).reshape(-1)
        if self.joints is None:
            return Command(ControlMode.POSITION, values)
        if len(values) != len(self.joints):
            raise ValueError(f"policy '{self.name}' returned {len(values)} values for {len(self.joints)} joints")
        return Command(ControlMode.POSITION, dict(zip(self.joints, values.tolist(), strict=True)))

    def _reset(self, obs: Observation, world_state: WorldState) -> None:
        self.steps = 0

    def _step(self, obs: Observation, world_state: WorldState) -> Command | None:
        if self.success_fn(obs, world_state):
            self.succeed(f"success condition met after {self.steps} policy steps")
            return None
        self.steps += 1
        self.data["policy_steps"] = self.steps
        return self.to_command(self.policy(self.observe_fn(obs, world_state)), obs)

    def progress(self) -> str:
        return f"{self.steps} policy steps"
