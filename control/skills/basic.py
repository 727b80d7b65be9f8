"""Skills every robot has: open and close the gripper, wait, say something, alert a caregiver.

``say`` and ``alert_caregiver`` need no audio: they record the utterance or the alert as a
:class:`~tianji.control.skills.base.SkillEvent` (in the result, the context's event list and
the ``tianji.control.skills`` log) and call ``context.on_event``, the hook where a speech
synthesizer or a nurse-call system plugs in. Demo reports show these events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tianji.control.controllers import GripperController
from tianji.control.robot import Command, ControlMode, Observation
from tianji.control.skills.base import Phase, PhasedSkill, Skill
from tianji.control.skills.registry import register
from tianji.control.world_state import WorldState

OPEN_THRESHOLD = 0.9  # opening at or above which the gripper counts as open
CLOSED_THRESHOLD = 0.1  # opening at or below which it counts as closed on nothing


@dataclass
class GripperParams:
    """Gripper motion time."""

    duration: float = field(default=1.0, metadata={"description": "seconds for the full motion", "minimum": 0.1})


@register
class OpenGripper(PhasedSkill):
    """Open the gripper fully."""

    name = "open_gripper"
    Params = GripperParams
    description = "Open the gripper fully (releases whatever it holds)."
    robots = ("tiago",)
    effects = ("gripper = open", "holding = none")
    preconditions_doc = ("the robot has a gripper",)
    success_doc = f"measured opening >= {OPEN_THRESHOLD}"
    default_timeout = 5.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        if not self.spec.has_gripper or obs.gripper is None:
            return [f"robot '{self.spec.name}' has no gripper; use a hand skill (release) instead"]
        return []

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        return [Phase("open", lambda o, w: GripperController(self.spec, close=False, duration=self.params.duration))]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        opening = float(obs.gripper if obs.gripper is not None else 0.0)
        self.data["opening"] = opening
        return opening >= OPEN_THRESHOLD, f"gripper opening {opening:.2f}"


@register
class CloseGripper(OpenGripper):
    """Close the gripper; reports whether it closed on something."""

    name = "close_gripper"
    description = "Close the gripper; reports whether the fingers stopped on an object."
    effects = ("gripper = closed",)
    success_doc = f"fingers stopped on an object (a grasp) or closed to <= {CLOSED_THRESHOLD}"

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        def make(o: Observation, w: WorldState) -> GripperController:
            self._gripper = GripperController(self.spec, close=True, duration=self.params.duration)
            return self._gripper

        return [Phase("close", make)]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        opening = float(obs.gripper if obs.gripper is not None else 1.0)
        grasped = self._gripper.grasped
        self.data.update(opening=opening, grasped=grasped)
        if grasped:
            return True, f"closed on an object (opening {opening:.2f})"
        return opening <= CLOSED_THRESHOLD, f"closed to opening {opening:.2f}"


@dataclass
class WaitParams:
    """How long to wait."""

    seconds: float = field(default=1.0, metadata={"description": "seconds to wait, holding still", "minimum": 0.0})


@register
class Wait(Skill):
    """Hold still for some seconds (targets stay, the base stops)."""

    name = "wait"
    Params = WaitParams
    description = "Hold still for a number of seconds."
    success_doc = "the time has passed"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.timeout = max(self.timeout, self.params.seconds + 5.0)

    def _reset(self, obs: Observation, world_state: WorldState) -> None:
        pass

    def _step(self, obs: Observation, world_state: WorldState) -> Command:
        if self.elapsed >= self.params.seconds:
            self.succeed(f"waited {self.elapsed:.1f} s")
        return self.hold_command(obs)

    def progress(self) -> str:
        return f"waited {self.elapsed:.1f} of {self.params.seconds:.1f} s"


@dataclass
class SayParams:
    """What to say."""

    text: str = field(metadata={"description": "the sentence to say to the person"})


@register
class Say(Skill):
    """Say a sentence: recorded as a ``say`` event (no audio needed; ``context.on_event`` may speak it)."""

    name = "say"
    Params = SayParams
    description = "Say a sentence to the person (recorded as an event; a speech synthesizer may speak it)."
    success_doc = "the utterance was recorded"
    default_timeout = 5.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        return [] if self.params.text.strip() else ["the text to say is empty; pass --arg text='...'"]

    def _reset(self, obs: Observation, world_state: WorldState) -> None:
        pass

    def _step(self, obs: Observation, world_state: WorldState) -> Command:
        self.emit("say", self.params.text)
        self.data["text"] = self.params.text
        self.succeed(f"said: {self.params.text}")
        return Command(ControlMode.POSITION)


@dataclass
class AlertParams:
    """The alert."""

    message: str = field(metadata={"description": "what the caregiver needs to know"})
    urgency: Literal["info", "urgent", "emergency"] = field(
        default="urgent", metadata={"description": "how soon someone must come"}
    )


@register
class AlertCaregiver(Skill):
    """Alert a caregiver: recorded as an ``alert`` event and logged at WARNING (``context.on_event`` may page)."""

    name = "alert_caregiver"
    Params = AlertParams
    description = "Alert a caregiver with a message (recorded as an alert event and logged)."
    success_doc = "the alert was recorded and passed to the event hook"
    default_timeout = 5.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        return [] if self.params.message.strip() else ["the alert message is empty; pass --arg message='...'"]

    def _reset(self, obs: Observation, world_state: WorldState) -> None:
        pass

    def _step(self, obs: Observation, world_state: WorldState) -> Command:
        self.emit("alert", f"[{self.params.urgency}] {self.params.message}")
        self.data.update(message=self.params.message, urgency=self.params.urgency)
        self.succeed(f"caregiver alerted ({self.params.urgency}): {self.params.message}")
        return self.hold_command(obs)
