"""Skills of the other robots: the G1 humanoid (stand, wave, exercises, reach) and the Allegro hand (grasps).

G1 skills drive :class:`~tianji.control.controllers.WholeBodyPoseController`: the legs hold
the standing stance every tick while the upper body plays keyframes or an IK reach. Their
success checks read the observation: the pelvis still up (standing), hands where they
should be. Allegro grasps move the joints along a *synergy*: one scalar from the open
hand to a grasp posture (``q = open + s * (grasp - open)``), the low-dimensional way
dexterous hands are commanded; a grasp is detected when fingers stop short of the posture.
The power grasp closes its fingers that way, then its thumb along a path as a guarded move
that stops where the thumb meets the object (:class:`PowerGrasp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tianji.control.controllers import HoldController, WholeBodyPoseController
from tianji.control.robot import Command, ControlMode, Observation
from tianji.control.skills.base import FunctionController, Phase, PhasedSkill
from tianji.control.skills.registry import register
from tianji.control.transforms import quat_to_matrix
from tianji.control.world_state import WorldState

STANDING_HEIGHT = 0.6  # m, pelvis above this counts as standing
UPRIGHT_TILT = 0.35  # rad, pelvis z axis within this of vertical
REACH_SECONDS = 2.0  # the arm's move to a reach target (at the motors' speed limits it took 0.3 s, a jolt)
REACH_SETTLE = 1.0  # s held before the hand is measured: the position servos lag the planned motion

# Rehabilitation arm exercises, both arms: (targets, seconds) keyframes of one repetition.
EXERCISES: dict[str, list[tuple[dict[str, float], float]]] = {
    "arm_raise": [  # shoulder flexion: both arms forward and up overhead, then down
        ({"left_shoulder_pitch_joint": -2.4, "right_shoulder_pitch_joint": -2.4, "left_elbow_joint": 0.1,
          "right_elbow_joint": 0.1}, 2.0),
        ({"left_shoulder_pitch_joint": 0.3, "right_shoulder_pitch_joint": 0.3, "left_elbow_joint": 0.97,
          "right_elbow_joint": 0.97}, 2.0),
    ],
    "lateral_raise": [  # shoulder abduction: arms out to the sides to shoulder height, then down
        ({"left_shoulder_roll_joint": 1.5, "right_shoulder_roll_joint": -1.5, "left_elbow_joint": 0.0,
          "right_elbow_joint": 0.0}, 2.0),
        ({"left_shoulder_roll_joint": 0.25, "right_shoulder_roll_joint": -0.25, "left_elbow_joint": 0.97,
          "right_elbow_joint": 0.97}, 2.0),
    ],
    "elbow_curl": [  # elbow flexion with the upper arms still, like a biceps curl
        ({"left_shoulder_pitch_joint": 0.0, "right_shoulder_pitch_joint": 0.0, "left_elbow_joint": -0.8,
          "right_elbow_joint": -0.8}, 1.5),
        ({"left_elbow_joint": 1.9, "right_elbow_joint": 1.9}, 1.5),
        ({"left_shoulder_pitch_joint": 0.3, "right_shoulder_pitch_joint": 0.3, "left_elbow_joint": 0.97,
          "right_elbow_joint": 0.97}, 1.5),
    ],
}  # fmt: skip


def standing(obs: Observation) -> tuple[bool, str]:
    """Whether a humanoid stands: pelvis high enough and upright."""
    height = float(obs.base_pose[2])
    tilt = float(math.acos(np.clip(quat_to_matrix(obs.base_pose[3:].astype(float))[2, 2], -1.0, 1.0)))
    ok = height >= STANDING_HEIGHT and tilt <= UPRIGHT_TILT
    return ok, f"pelvis at {height:.2f} m, tilted {tilt:.2f} rad"


class HumanoidSkill(PhasedSkill):
    """Shared by G1 skills: the whole-body controller and the standing check."""

    robots = ("g1", "g1_hands")

    def _wb(self) -> WholeBodyPoseController:
        return WholeBodyPoseController(self.spec, self.context.kinematics, timeout=60.0)

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        ok, how = standing(obs)
        unmet = [] if ok else [f"the robot is not standing ({how}); it must be stood up by a person first"]
        if not any(j.endswith("shoulder_pitch_joint") for j in self.spec.joint_names):
            unmet.append(f"robot '{self.spec.name}' is not a G1 humanoid (no shoulder joints)")
        return unmet

    def _standing_result(self, obs: Observation, done: str) -> tuple[bool, str]:
        ok, how = standing(obs)
        return (True, f"{done}; still standing ({how})") if ok else (False, f"lost balance: {how}")


@dataclass
class NoParams:
    """No parameters."""


@register
class Stand(HumanoidSkill):
    """Hold the standing pose with the arms at their rest pose."""

    name = "stand"
    Params = NoParams
    description = "Stand still: legs at the standing stance, arms at rest."
    effects = ("standing = true",)
    preconditions_doc = ("the G1 is upright (pelvis above 0.6 m)",)
    success_doc = "pelvis above 0.6 m and within 0.35 rad of upright after 2 s"
    default_timeout = 20.0

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        rest = {
            j: float(self.spec.home[i]) for i, j in enumerate(self.spec.joint_names) if "shoulder" in j or "elbow" in j
        }
        return [Phase("rest pose", lambda o, w: self._wb().pose(rest, 1.5).pose(rest, 0.5))]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        return self._standing_result(obs, "standing")


@register
class Wave(HumanoidSkill):
    """Wave the right hand (a greeting), standing."""

    name = "wave"
    Params = NoParams
    description = "Wave hello with the right hand while standing."
    requires = ("standing = true",)
    preconditions_doc = ("the G1 is standing",)
    success_doc = "the right hand rose above the shoulders during the wave and the robot still stands"
    default_timeout = 20.0

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        self.data["hand_peak"] = -math.inf

        def watch(o: Observation, w: WorldState) -> None:
            hand = o.ee_poses.get("right_hand")
            if hand is not None:
                self.data["hand_peak"] = max(self.data["hand_peak"], float(hand[2] - o.base_pose[2]))

        return [Phase("wave", lambda o, w: self._wb().gesture("wave"), watch)]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        if self.data["hand_peak"] < 0.35:
            return False, f"the hand rose only {self.data['hand_peak']:.2f} m above the pelvis"
        return self._standing_result(obs, f"waved (hand {self.data['hand_peak']:.2f} m above the pelvis)")


@dataclass
class ExerciseParams:
    """Which exercise, how many times."""

    name: Literal["arm_raise", "lateral_raise", "elbow_curl"] = field(
        default="arm_raise", metadata={"description": "the exercise to demonstrate"}
    )
    repetitions: int = field(default=2, metadata={"description": "repetitions", "minimum": 1})


@register
class DemonstrateExercise(HumanoidSkill):
    """Demonstrate a rehabilitation arm exercise (joint-space keyframes), standing, for the patient to copy."""

    name = "demonstrate_exercise"
    Params = ExerciseParams
    description = "Demonstrate a rehabilitation arm exercise: arm_raise, lateral_raise or elbow_curl."
    requires = ("standing = true",)
    preconditions_doc = ("the G1 is standing", "the exercise is known")
    success_doc = (
        "every repetition played, each joint came within 10% of the exercise's range of its extreme, still standing"
    )
    default_timeout = 60.0

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        frames = EXERCISES[self.params.name] * max(1, self.params.repetitions)
        self._closest: dict[str, float] = {}

        def watch(o: Observation, w: WorldState) -> None:
            # how near each joint came to the exercise's extreme (not how far it moved: the arm may start bent,
            # e.g. after a reach, and then moves less to the same extreme)
            for j, q in frames[0][0].items():
                gap = abs(float(o.joint_positions[self.spec.index(j)]) - q)
                self._closest[j] = min(self._closest.get(j, math.inf), gap)

        return [Phase(f"{self.params.name} x{self.params.repetitions}", lambda o, w: self._wb().gesture(frames), watch)]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        targets = EXERCISES[self.params.name][0][0]
        short = []
        for j, q in targets.items():
            amplitude = abs(q - float(self.spec.home[self.spec.index(j)]))
            if amplitude > 0.2 and self._closest.get(j, math.inf) > 0.1 * amplitude:
                short.append(j)
        self.data["gap_to_extreme"] = {j: round(v, 2) for j, v in self._closest.items()}
        if short:
            return False, f"range of motion not reached by {', '.join(short)}"
        return self._standing_result(obs, f"{self.params.repetitions} x {self.params.name}")


@dataclass
class ReachParams:
    """Which hand, where."""

    hand: Literal["left", "right"] = field(default="right", metadata={"description": "which hand"})
    target: tuple[float, float, float] = field(
        default=(0.30, -0.20, 0.25),
        metadata={"description": "world (x, y, z), or with relative=true forward, left, up from the pelvis"},
    )
    relative: bool = field(default=True, metadata={"description": "target is relative to the pelvis position"})


@register
class Reach(HumanoidSkill):
    """Reach a point with one hand (arm IK), standing."""

    name = "reach"
    Params = ReachParams
    description = "Reach a point with the left or right hand while standing (arm inverse kinematics)."
    requires = ("standing = true",)
    preconditions_doc = ("the G1 is standing", "kinematics in the skill context")
    success_doc = "the hand within 3 cm of the target and the robot still stands"
    default_timeout = 20.0

    def _target(self, obs: Observation) -> np.ndarray:
        t = np.asarray(self.params.target, dtype=float)
        if not self.params.relative:
            return t
        r = quat_to_matrix(obs.base_pose[3:].astype(float))
        yaw = math.atan2(r[1, 0], r[0, 0])  # relative targets are in the pelvis' heading frame
        c, s = math.cos(yaw), math.sin(yaw)
        return obs.base_pose[:3].astype(float) + np.array([c * t[0] - s * t[1], s * t[0] + c * t[1], t[2]])

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        self._goal = self._target(obs)
        link = f"{self.params.hand}_rubber_hand"
        if link not in self.kinematics.frames:
            link = f"{self.params.hand}_hand_palm_link"
        return [
            Phase("reach", lambda o, w: self._wb().reach(link, self._goal, duration=REACH_SECONDS)),
            Phase("settle", lambda o, w: HoldController(REACH_SETTLE)),
        ]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        hand = obs.ee_poses[f"{self.params.hand}_hand"][:3].astype(float)
        error = float(np.linalg.norm(hand - self._goal))
        self.data["error"] = error
        if error > 0.03:
            return False, f"the {self.params.hand} hand stopped {error * 100:.1f} cm from the target"
        return self._standing_result(obs, f"reached within {error * 100:.1f} cm")


# ----------------------------------------------------------------------------- Allegro
ALLEGRO_OPEN = np.zeros(16)
# Joint order joint_0.0 .. joint_15.0: index (0-3), middle (4-7), ring (8-11), thumb (12-15). The power grasp
# closes its fingers to ALLEGRO_POWER and its thumb along THUMB_PATH until it meets the object.
ALLEGRO_POWER = np.array([0.0, 1.3, 1.3, 1.3, 0.0, 1.3, 1.3, 1.3, 0.0, 1.3, 1.3, 1.3, 1.396, 0.7, 1.0, 1.0])
ALLEGRO_PINCH = np.array([0.0, 1.1, 0.9, 0.7, 0.0, -0.1, 0.0, 0.0, 0.0, -0.1, 0.0, 0.0, 1.396, 0.9, 0.5, 0.9])
STALL_GAP = 0.15  # rad: a finger joint this far short of its synergy target counts as blocked by an object
THUMB = slice(12, 16)
# The power grasp's thumb (joints 12-15) after the fingers, turned into opposition (12 at its limit): its path
# starts swung away from the fingers (13 high), crosses below the palm towards them (13 down to 0) and curls up
# towards the palm (15 flexing), so it sweeps the space between itself, the fingers and the palm.
THUMB_PATH = np.array([[1.396, 1.1, 1.1, 0.8], [1.396, 0.0, 1.0, 0.4], [1.396, 0.0, 1.0, 1.0]])
CONTACT_LAG = 0.1  # rad: a thumb joint this far behind its command is held back, by an object if it stays so
THUMB_HOLD = 0.4  # s the thumb stays held back before it counts as stopped on the object (free: 0.25 at most)


def _smooth(x: float) -> float:
    """0 -> 1 with zero slope at both ends (smoothstep) of ``x`` clipped to [0, 1]."""
    s = min(1.0, max(0.0, x))
    return s * s * (3 - 2 * s)


@dataclass
class GraspParams:
    """How to close the hand."""

    duration: float = field(default=1.5, metadata={"description": "seconds to close", "minimum": 0.2})
    expect_object: bool = field(default=True, metadata={"description": "fail when closing on nothing"})


class SynergySkill(PhasedSkill):
    """Moves all hand joints along one synergy: ``q = open + s(t) * (posture - open)``, s ramping 0 -> 1."""

    robots = ("allegro",)
    posture: np.ndarray = ALLEGRO_POWER
    fingers: tuple[int, ...] = tuple(range(16))  # joints that must close on the object

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        if self.spec.dof != 16 or not self.spec.joint_names[0].startswith("joint_0"):
            return [f"robot '{self.spec.name}' is not an Allegro hand (16 joints joint_0.0..joint_15.0)"]
        return []

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        start = obs.joint_positions.astype(float).copy()
        goal = np.clip(self.posture, self.spec.position_lower, self.spec.position_upper)
        duration = getattr(self.params, "duration", 1.5)

        def fn(o: Observation, t: float) -> tuple[Command, bool]:
            s = _smooth(t / duration)  # smooth start and stop
            return Command(ControlMode.POSITION, start + s * (goal - start)), t >= duration + 0.5

        self._goal = goal
        return [Phase("close along the synergy", lambda o, w: FunctionController(fn, timeout=duration + 3.0))]

    def _blocked(self, obs: Observation) -> list[int]:
        q = obs.joint_positions.astype(float)
        return [i for i in self.fingers if abs(self._goal[i] - q[i]) > STALL_GAP and abs(self._goal[i]) > 0.3]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        blocked = self._blocked(obs)
        self.data["blocked_joints"] = [self.spec.joint_names[i] for i in blocked]
        grasped = len({i // 4 for i in blocked}) >= 2 and any(i >= 12 for i in blocked)
        self.data["grasped"] = grasped
        if getattr(self.params, "expect_object", False) and not grasped:
            return False, _grasp_miss(blocked)
        return True, ("object held: " if grasped else "closed: ") + f"{len(blocked)} joints stopped short"


def _grasp_miss(blocked: list[int]) -> str:
    """Why a closing hand holds nothing: no digit met the object, or the thumb (joints 12-15) did not oppose it."""
    if not blocked:
        return "the fingers closed without meeting an object"
    if not any(i >= 12 for i in blocked):
        names = ", ".join(("index", "middle", "ring")[f] for f in sorted({i // 4 for i in blocked}))
        return f"the thumb closed without meeting the object ({names} stopped on it): it is not held in opposition"
    return "only the thumb stopped on the object: no finger opposes it"


@register
class PowerGrasp(SynergySkill):
    """Close the fingers around an object, then the opposed thumb until it meets the object (whole-hand wrap).

    Fingers first: in ``duration / 2`` they close along the power synergy and stop where the object blocks
    them, while the thumb turns into opposition at the start of ``THUMB_PATH``, swung away from them. Then the
    thumb follows its path in ``duration`` at most as a guarded move: its command waits while a thumb joint
    lags it by more than ``CONTACT_LAG``, and held back ``THUMB_HOLD`` s on end the thumb has met the object
    and presses on it there. So the thumb stops on the object wherever it lies between the thumb, the fingers
    and the palm, instead of closing to fixed joint targets beside it; ``data["thumb_closed"]`` says how far
    along its path it got (1.0: the whole way, meeting nothing).
    """

    name = "power_grasp"
    Params = GraspParams
    description = "Allegro power grasp: the fingers wrap the object, then the opposed thumb closes until it meets it."
    effects = ("hand_closed = true",)
    success_doc = "the thumb and at least one finger stopped short of the grasp posture (an object is between them)"
    default_timeout = 10.0
    posture = ALLEGRO_POWER

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        lo, hi = self.spec.position_lower.astype(float), self.spec.position_upper.astype(float)
        start = obs.joint_positions.astype(float).copy()
        path = np.clip(THUMB_PATH, lo[THUMB], hi[THUMB])
        shaped = np.clip(np.concatenate([self.posture[:12], path[0]]), lo, hi)  # fingers closed, thumb wide
        along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
        duration = getattr(self.params, "duration", 1.5)
        half = duration / 2
        self._goal = shaped.copy()  # the fingers' targets; the thumb's are its last command
        self._thumb_way = np.zeros(4)
        self.data["thumb_closed"] = 0.0

        def thumb_at(closed: float) -> tuple[np.ndarray, np.ndarray]:
            """The thumb's command ``closed`` (0..1) of the way along its path, and the way it moves there."""
            d = closed * along[-1]
            k = min(int(np.searchsorted(along, d, side="right")) - 1, len(path) - 2)
            u = _smooth((d - along[k]) / (along[k + 1] - along[k]))  # each stretch starts and stops smoothly
            step = path[k + 1] - path[k]
            # a joint that does not move on this stretch closes away from the open hand
            return path[k] + u * step, np.where(step != 0, np.sign(step), np.sign(path[k] - ALLEGRO_OPEN[THUMB]))

        def close_fingers(o: Observation, t: float) -> tuple[Command, bool]:
            # done once the thumb has come to rest at the start of its path, or stuck short of it 0.5 s
            off = np.abs(shaped[THUMB] - o.joint_positions[THUMB])
            there = np.max(off) < CONTACT_LAG / 2 and np.max(np.abs(o.joint_velocities[THUMB])) < 0.2
            done = t >= half + 0.2 and (there or t >= half + 0.5)
            return Command(ControlMode.POSITION, start + _smooth(t / half) * (shaped - start)), done

        def close_thumb(o: Observation, w: WorldState) -> FunctionController:
            # A guarded move: the command waits while a thumb joint lags it by more than CONTACT_LAG in the way
            # it moves (free, it catches up at once; at the shortest duration within 0.25 s); held back
            # THUMB_HOLD s on end, the thumb has met the object and presses on it there.
            state = {"closed": 0.0, "t": 0.0, "held": 0.0}  # fraction of the path, time, time held back

            def fn(o: Observation, t: float) -> tuple[Command, bool]:
                dt, state["t"] = t - state["t"], t
                cmd, way = thumb_at(state["closed"])
                if np.max((cmd - o.joint_positions[THUMB]) * way) > CONTACT_LAG:
                    state["held"] += dt
                else:
                    state["held"] = 0.0
                    state["closed"] = min(1.0, state["closed"] + dt / duration)
                    cmd, way = thumb_at(state["closed"])
                self._goal[THUMB], self._thumb_way = cmd, way
                self.data["thumb_closed"] = round(state["closed"], 3)
                done = state["held"] >= THUMB_HOLD or (state["closed"] >= 1.0 and t >= duration + 0.5)
                return Command(ControlMode.POSITION, self._goal.copy()), done

            return FunctionController(fn, timeout=2 * duration + 3.0)

        return [
            Phase("close the fingers", lambda o, w: FunctionController(close_fingers, timeout=half + 3.0)),
            Phase("close the thumb until it meets the object", close_thumb),
        ]

    def _blocked(self, obs: Observation) -> list[int]:
        q = obs.joint_positions.astype(float)
        fingers = [i for i in range(12) if abs(self._goal[i] - q[i]) > STALL_GAP and abs(self._goal[i]) > 0.3]
        if self.data.get("thumb_closed", 1.0) >= 1.0:  # the thumb went its whole way: it met nothing
            return fingers
        lag = (self._goal[THUMB] - q[THUMB]) * self._thumb_way  # the thumb still held back where it stopped
        return fingers + [12 + k for k in range(4) if lag[k] > CONTACT_LAG / 2]


@register
class PinchGrasp(SynergySkill):
    """Pinch with the index finger and thumb tips; the other fingers stay open."""

    name = "pinch_grasp"
    Params = GraspParams
    description = "Allegro pinch grasp: index finger and thumb tips close on a small object (one synergy)."
    effects = ("hand_closed = true",)
    success_doc = "the thumb and the index finger stopped short of the pinch posture (an object is between them)"
    default_timeout = 10.0
    posture = ALLEGRO_PINCH
    fingers = (1, 2, 3, 12, 13, 14, 15)


@dataclass
class ReleaseParams:
    """How to open the hand."""

    duration: float = field(default=1.0, metadata={"description": "seconds to open", "minimum": 0.2})


@register
class Release(SynergySkill):
    """Open the hand back to the flat posture."""

    name = "release"
    Params = ReleaseParams
    description = "Allegro release: open every finger back to the flat hand."
    effects = ("hand_closed = false",)
    success_doc = "every joint within 0.15 rad of the open posture"
    default_timeout = 10.0
    posture = ALLEGRO_OPEN

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        err = float(np.max(np.abs(obs.joint_positions.astype(float) - self._goal)))
        self.data["error"] = err
        return err <= STALL_GAP, f"open within {err:.2f} rad"
