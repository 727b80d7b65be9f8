"""Care skills on a person: bring a cup or spoon to the mouth, wipe along a body part.

Both move the gripper close to a person, so both rely on the safety filter's person-force
limit (10 N): the runner turns a safety stop into a failed result. Both read the person's
points from the world state (mouth, head, body parts), so they follow the person wherever
perception (or the simulator) puts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tianji.control.controllers import GripperController, HoldController
from tianji.control.controllers.base import Controller
from tianji.control.robot import Observation
from tianji.control.skills.base import FunctionController, Phase
from tianji.control.skills.geometry import (
    base_xy_yaw,
    frame_pose,
    held_object,
    in_base_frame,
    object_model,
    object_pose,
)
from tianji.control.skills.manipulation import ArmSkill
from tianji.control.skills.registry import register
from tianji.control.transforms import pose_to_matrix
from tianji.control.world_state import WorldState

MOUTH_DISTANCE = 0.05  # m: success when the object's lip point comes this close to the mouth
MOUTH_STANDOFF = 0.035  # m: target distance of the lip point from the mouth, along the face's normal
FORCE_LIMIT = 10.0  # N, the person-force limit the safety filter enforces
# (forward, lateral) offsets of the mouth from the base: a lying person's mouth is ~0.4 m into the bed
MOUTH_OFFSETS = tuple((f, lat) for f in (0.8, 0.85, 0.9) for lat in (0.0, -0.15, 0.15, -0.3, 0.3))
SEGMENTS = {  # body part -> (start, end) body-part names: the stroke of a wipe
    "left_forearm": ("left_forearm", "left_hand"),
    "right_forearm": ("right_forearm", "right_hand"),
    "left_upper_arm": ("left_upper_arm", "left_forearm"),
    "right_upper_arm": ("right_upper_arm", "right_forearm"),
}
CONTACT_FORCE = 0.3  # N: a wipe sample counts as in contact above this
WIPE_CONTACT_SHARE = 0.5  # share of stroke samples in contact for success


@dataclass
class MouthParams:
    """What to bring to whose mouth."""

    object: str = field(metadata={"description": "the held cup or spoon", "names": "objects"})
    person: str = field(metadata={"description": "who drinks or eats", "names": "people"})
    hold_time: float = field(default=2.0, metadata={"description": "seconds held at the mouth", "minimum": 0.0})


@register
class BringToMouth(ArmSkill):
    """Bring the held cup (tilted) or spoon (bowl first) to the person's mouth, hold it there, withdraw."""

    name = "bring_to_mouth"
    Params = MouthParams
    description = (
        f"Bring the held cup or spoon to the person's mouth: its lip point (cup rim centre, spoon bowl) to"
        f" {MOUTH_STANDOFF * 100:.1f} cm in front of the mouth, held hold_time seconds, then withdrawn."
    )
    requires = ("holding = {object}", "near({person}) = true")
    effects = ()
    preconditions_doc = (
        "the object is a cup or a spoon (it has a lip point) and the gripper holds it",
        "the person is in the world state with a mouth position, within 1.6 m",
    )
    success_doc = (
        f"the lip point came within {MOUTH_DISTANCE * 100:.0f} cm of the mouth, the object is still held, and"
        f" the contact force with the person stayed under {FORCE_LIMIT:.0f} N"
    )
    default_timeout = 75.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        unmet = self._common_preconditions(obs)
        if object_model(self.params.object).lip is None:
            unmet.append(f"'{self.params.object}' cannot be brought to a mouth; use the cup or the spoon")
        if self.params.person not in world_state.people:
            return [*unmet, f"person '{self.params.person}' is not in the world state"]
        person = world_state.person(self.params.person)
        if person.mouth is None or person.head is None:
            return [*unmet, f"the mouth of '{self.params.person}' is not known (perception found no face)"]
        if held_object(world_state, obs) != self.params.object:
            unmet.append(f"the gripper does not hold '{self.params.object}'; pick it first")
        rel = in_base_frame(person.mouth, obs)
        if math.hypot(rel[0], rel[1]) > 1.6:
            unmet.append(f"'{self.params.person}' is out of reach; approach_person first")
        return unmet

    def _poses(self, obs: Observation, ws: WorldState) -> tuple[np.ndarray, np.ndarray]:
        """(pre, at) grasp-frame *positions* that put the lip point in front of the mouth.

        The hand's orientation is left to the IK (a lying person's mouth is at the edge of the
        arm's reach): the grasp-frame position is found by a few fixed-point steps of
        position-only IK, moving it by the lip point's remaining error each time.
        """
        model = object_model(self.params.object)
        person = ws.person(self.params.person)
        mouth, head = np.asarray(person.mouth, dtype=float), np.asarray(person.head, dtype=float)
        normal = (mouth - head) / max(np.linalg.norm(mouth - head), 1e-6)
        grip = pose_to_matrix(obs.ee_poses["gripper"].astype(float))
        lip_in_grip = (
            np.linalg.inv(grip) @ object_pose(ws, self.params.object) @ np.array([*(model.lip or (0, 0, 0)), 1.0])
        )[:3]
        toward = mouth[:2] - base_xy_yaw(obs)[:2]
        d = np.array([*toward, 0.0]) / max(np.linalg.norm(toward), 1e-6)
        if model.tilt > 0:  # a cup: rim beside the mouth on the robot's side, so its body clears the face
            lip_goal = mouth + 0.6 * MOUTH_STANDOFF * normal - 1.1 * MOUTH_STANDOFF * d
        else:
            lip_goal = mouth + MOUTH_STANDOFF * normal
        base = base_xy_yaw(obs)
        target = lip_goal - grip[:3, :3] @ lip_in_grip
        q = obs.joint_positions.astype(float)
        arm = self._arm()
        for _ in range(4):
            sol = arm.ik(target, q, base, tolerance=0.005, explore=False)
            if sol is None:
                break
            q = sol
            m = self.kinematics.fk(
                q, "hand_grasping_frame", np.r_[base[:2], 0.0, 0.0, 0.0, math.sin(base[2] / 2), math.cos(base[2] / 2)]
            )
            lip = m[:3, 3] + m[:3, :3] @ lip_in_grip
            target = target + (lip_goal - lip)
        pre = target - 0.12 * d + np.array([0.0, 0.0, 0.06])
        return pre, target

    def _lip_distance(self, ws: WorldState) -> float:
        model = object_model(self.params.object)
        lip = (object_pose(ws, self.params.object) @ np.array([*(model.lip or (0, 0, 0)), 1.0]))[:3]
        mouth = np.asarray(ws.person(self.params.person).mouth, dtype=float)
        return float(np.linalg.norm(lip - mouth))

    def _monitor(self, obs: Observation, ws: WorldState) -> None:
        self.data["mouth_distance"] = min(self.data.get("mouth_distance", math.inf), self._lip_distance(ws))
        if self.context.contact_force is not None:
            force = float(self.context.contact_force())
            self.data["max_force"] = max(self.data.get("max_force", 0.0), force)

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        arm = self._arm()
        mouth = np.asarray(world_state.person(self.params.person).mouth, dtype=float)
        self._at: np.ndarray | None = None

        def approach(o: Observation, w: WorldState) -> Controller:
            self._at = self._poses(o, w)[1]
            return arm.line(self._at, speed=0.03, tolerance=0.015, settle=3.0)

        def withdraw(o: Observation, w: WorldState) -> Controller:
            pose = o.ee_poses["gripper"].astype(float).copy()
            d = pose[:2] - mouth[:2]
            pose[:2] += 0.12 * d / max(np.linalg.norm(d), 1e-6)
            pose[2] += 0.06
            return arm.line(pose, speed=0.06, tolerance=0.03)

        return [
            self._reposition(mouth, lambda o, w: list(self._poses(o, w)), offsets=MOUTH_OFFSETS, clearance=0.29),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            Phase("to pre-mouth", lambda o, w: arm.line(self._poses(o, w)[0], speed=0.1, tolerance=0.02, settle=3.0)),
            Phase("approach the mouth", approach, self._monitor),
            Phase("hold at the mouth", lambda o, w: HoldController(self.params.hold_time), self._monitor),
            Phase("withdraw", withdraw),
        ]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        best = float(self.data.get("mouth_distance", math.inf))
        force = float(self.data.get("max_force", 0.0))
        if held_object(world_state, obs) != self.params.object:
            return False, f"'{self.params.object}' was dropped"
        if force > FORCE_LIMIT:
            return False, f"pressed on the person with {force:.1f} N (limit {FORCE_LIMIT:.0f} N)"
        if best > MOUTH_DISTANCE:
            return False, f"the {self.params.object} came only within {best * 100:.1f} cm of the mouth"
        return True, f"the {self.params.object} was {best * 100:.1f} cm from the mouth; peak contact {force:.1f} N"


@dataclass
class WipeParams:
    """What to wipe."""

    body_part: str = field(metadata={"description": "the body part to wipe", "enum": list(SEGMENTS)})
    person: str = field(default="patient", metadata={"description": "whose body part", "names": "people"})
    strokes: int = field(default=2, metadata={"description": "strokes along the part (there and back = 2)"})
    hand: Literal["open"] = field(default="open", metadata={"description": "flat open hand (a washcloth proxy)"})


@register
class Wipe(ArmSkill):
    """Wipe along a limb segment with the flat open hand: find contact from above, stroke along it, lift."""

    name = "wipe"
    Params = WipeParams
    description = (
        "Wipe along a body part (forearm: elbow to wrist, upper arm: shoulder to elbow) with the flat open hand:"
        " descend until touching, stroke along it at that height, lift."
    )
    requires = ("holding = none", "near({person}) = true")
    effects = ("gripper = open",)
    preconditions_doc = (
        "the gripper holds nothing",
        "the person and the body part's end points are in the world state, within 1.6 m",
        "a contact-force reading is available (SkillContext.contact_force: wrist F/T or the simulator)",
    )
    success_doc = (
        f"at least {WIPE_CONTACT_SHARE:.0%} of the stroke samples in contact (> {CONTACT_FORCE} N) and the force"
        f" under {FORCE_LIMIT:.0f} N throughout"
    )
    default_timeout = 90.0

    def _segment(self, ws: WorldState) -> tuple[np.ndarray, np.ndarray]:
        person = ws.person(self.params.person)
        a, b = SEGMENTS[self.params.body_part]
        return np.asarray(person.body_parts[a], dtype=float), np.asarray(person.body_parts[b], dtype=float)

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        unmet = self._common_preconditions(obs)
        if self.params.body_part not in SEGMENTS:
            return [*unmet, f"cannot wipe '{self.params.body_part}'; choose one of {', '.join(SEGMENTS)}"]
        if self.params.person not in world_state.people:
            return [*unmet, f"person '{self.params.person}' is not in the world state"]
        parts = world_state.person(self.params.person).body_parts
        missing = [p for p in SEGMENTS[self.params.body_part] if p not in parts]
        if missing:
            return [*unmet, f"the position of {', '.join(missing)} is not known"]
        if self.context.contact_force is None:
            unmet.append("wipe needs a contact-force reading: set SkillContext.contact_force")
        holding = held_object(world_state, obs)
        if holding is not None:
            unmet.append(f"the gripper holds '{holding}'; put it down first")
        mid = np.mean(self._segment(world_state), axis=0)
        rel = in_base_frame(mid, obs)
        if math.hypot(rel[0], rel[1]) > 1.6:
            unmet.append(f"'{self.params.person}' is out of reach; approach_person first")
        return unmet

    def _hand(self, point: np.ndarray, along: np.ndarray, lift: float) -> np.ndarray:
        """Palm-down grasp-frame pose over ``point`` (``lift`` m above), fingers along the segment."""
        return frame_pose(point + np.array([0.0, 0.0, lift]), along, np.array([0.0, 0.0, -1.0]))

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        arm = self._arm()
        start, end = self._segment(world_state)
        along = end - start
        along[2] = 0.0
        along /= max(np.linalg.norm(along), 1e-6)
        start_in = start + 0.25 * (end - start)  # stay off the joints at the ends
        end_in = start + 0.85 * (end - start)
        self._samples: list[float] = []
        self._contact_z: float | None = None
        force = self.context.contact_force or (lambda: 0.0)

        def touch(o: Observation, w: WorldState) -> Controller:
            inner = arm.line(self._hand(start_in, along, -0.04), speed=0.02, tolerance=0.005, settle=0.5)

            def fn(obs_: Observation, t: float) -> tuple[object, bool]:
                cmd = inner.step(obs_)
                if force() > 1.0:
                    self._contact_z = float(obs_.ee_poses["gripper"][2])
                    return cmd, True
                return cmd, inner.done

            return FunctionController(fn, timeout=15.0)  # type: ignore[arg-type]

        def stroke(k: int) -> Phase:
            def make(o: Observation, w: WorldState) -> Controller:
                if self._contact_z is None:
                    from tianji.control.skills.base import PhaseError

                    raise PhaseError("the hand found no contact above the body part")
                target = end_in if k % 2 == 0 else start_in
                pose = self._hand(np.array([target[0], target[1], self._contact_z - 0.004]), along, 0.0)
                return arm.line(pose, speed=0.05, tolerance=0.02, settle=0.5)

            return Phase(f"stroke {k + 1}", make, lambda o, w: self._samples.append(force()))

        above = self._hand(start_in, along, 0.10)
        phases = [
            self._reposition((start + end) / 2, lambda o, w: [above, self._hand(end_in, along, 0.05)]),
            Phase("open hand", lambda o, w: GripperController(self.spec, close=False, duration=0.6)),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            Phase("above the body part", lambda o, w: arm.line(above, speed=0.1, tolerance=0.02, settle=3.0)),
            Phase("touch", touch),
            *[stroke(k) for k in range(max(1, self.params.strokes))],
            Phase("lift", lambda o, w: arm.line(self._lifted(o), speed=0.06, tolerance=0.03)),
        ]
        return phases

    @staticmethod
    def _lifted(obs: Observation) -> np.ndarray:
        pose = obs.ee_poses["gripper"].astype(float).copy()
        pose[2] += 0.12
        return pose

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        samples = np.array(self._samples)
        share = float(np.mean(samples > CONTACT_FORCE)) if len(samples) else 0.0
        peak = float(samples.max()) if len(samples) else 0.0
        self.data.update(contact_share=share, samples=len(samples), peak_force=peak)
        if peak > FORCE_LIMIT:
            return False, f"pressed with {peak:.1f} N (limit {FORCE_LIMIT:.0f} N)"
        if share < WIPE_CONTACT_SHARE:
            return False, f"in contact for only {share:.0%} of the stroke ({len(samples)} samples)"
        return (
            True,
            f"wiped the {self.params.body_part}: contact {share:.0%} of {len(samples)} samples, peak {peak:.1f} N",
        )
