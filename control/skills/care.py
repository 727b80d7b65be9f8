"""Care skills on a person: bring a cup or spoon to the mouth, wipe along a body part.

Both move the gripper close to a person, so both rely on the safety filter's person-force
limit (10 N): the runner turns a safety stop into a failed result. Both read the person's
points from the world state (mouth, head, body parts), so they follow the person wherever
perception (or the simulator) puts them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tianji.control.controllers import GripperController, HoldController, SequenceController
from tianji.control.controllers.base import Controller
from tianji.control.robot import Observation
from tianji.control.skills.arm import ContactSlide, PosePlanner, StopOnContact, base_move, choose_base, pose7
from tianji.control.skills.base import Phase, PhaseError
from tianji.control.skills.geometry import (
    base_xy_yaw,
    frame_pose,
    held_object,
    in_base_frame,
    object_model,
    object_pose,
    rotation_between,
)
from tianji.control.skills.manipulation import ArmSkill
from tianji.control.skills.registry import register
from tianji.control.skills.swing import SwingCheck, object_points, swing_path
from tianji.control.transforms import matrix_to_pose, pose_to_matrix, rotation_exp
from tianji.control.world_state import Posture, WorldState

MOUTH_DISTANCE = 0.05  # m: success when the object's lip point comes this close to the mouth
MOUTH_STANDOFF = 0.035  # m: target distance of the lip point from the mouth, along the face's normal
CUP_STANDOFF = 0.025  # m, the same for the tipped cup's rim (planned once: a person settling in bed drifts ~1.5 cm)
FORCE_LIMIT = 10.0  # N, the person-force limit the safety filter enforces
CONTACT_GUARD = 2.0  # N: a move towards the face stops at the first contact above this (well under the limit)
APPROACH_SPEED = 0.03  # m/s, the last move to the mouth
APPROACH_FRACTIONS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7)  # of the spoon's last move: it stops at the farthest reached
CUP_BACKOFF = 0.10  # m: the cup's pre-mouth pose is this far back along its body (up, towards the robot)
TILT_STEPS = (0.0, 0.3, -0.3)  # rad added to the cup's planned tilt (candidates)
# rad added when none of TILT_STEPS works: the cup nearer upside down over the mouth (~170-180 deg for a lying
# person). The fingers, across the cup's axis, then point level away from the robot instead of ~35 deg up, so the
# forearm is level too and the arm reaches 2-4 cm farther (at ~145 deg the torso bottoms out first)
FAR_TILT_STEPS = (0.45, 0.6)
CUP_SPINS = 8  # spins about the cup's axis (where the hand sits around it) considered
LIP_SHIFTS = (0.0, 0.7)  # the lip point's side of the mouth: along the face's normal, or leaning towards the robot
CUP_TRIES = 6  # candidates tried with IK, best first (of TILT_STEPS, then of FAR_TILT_STEPS)
REACH_SPARE = 0.03  # m: a base pose is first chosen where the arm reaches this much past the cup's pose at the mouth
HAND_CLEARANCE = 0.045  # m, hand and wrist link origins from the person model (their surfaces are ~2 cm nearer)
PERSON_RADIUS = 0.10  # m, of the capsule from the chest to the head centre that models a lying person's upper body
LIMIT_MARGIN = 0.03  # rad (m for the torso) the planned postures keep from every joint limit
SHIFT_FRACTIONS = (1.0, 0.75, 0.5, 0.25, 0.0)  # of the mouth's drift since planning that the cup follows, tried in turn
MAX_JUMP = 0.5  # rad: the postures before and at the mouth must be this close (one IK branch, a near-straight move)
SHOULDER_HEIGHT = 1.0  # m, roughly where TIAGo's arm leaves the torso: the forearm should point there
# the swing to the cup's pre-mouth posture (tianji.control.skills.swing): over a lying person's body and away from
# the face, the held cup's axis stays SWING_CLEARANCE above the mouth's height: her arms lie at the bed's edge ~8 cm
# below the mouth (a swing that dipped to them once pressed an upper arm with 74 N)
SWING_CLEARANCE = 0.06  # m, for the cup's axis points (at 0 a swing in seed 3 pressed her with 13 N)
FACE_ZONE = 0.20  # m: within this of the mouth (horizontally) the pre-mouth pose's own clearance check applies
# (forward, lateral) offsets of the mouth from the base: a lying person's mouth is ~0.4 m into the bed
MOUTH_OFFSETS = tuple((f, lat) for f in (0.8, 0.85, 0.9, 0.95, 1.0) for lat in (0.0, -0.15, 0.15, -0.3, 0.3))
# the tipped cup's: denser, tried nearest the mouth first (its postures are at the edge of the arm's reach, ~1.02 m
# from the base; the free floor by the bed's head end, between the bed and the bedside table, is ~10 x 15 cm)
CUP_OFFSETS = tuple((0.8 + 0.025 * i, 0.025 * j) for i in range(10) for j in range(-16, 17))
CUP_BASE_TRIES = 24  # base poses tried at most (each a cup plan: IK for up to 2 x CUP_TRIES candidates)
BASE_SLACK = 0.12  # m: a repositioning move blocked this close to its goal turns there instead (and replans)
SEGMENTS = {  # body part -> (start, end) body-part names: the stroke of a wipe
    "left_forearm": ("left_forearm", "left_hand"),
    "right_forearm": ("right_forearm", "right_hand"),
    "left_upper_arm": ("left_upper_arm", "left_forearm"),
    "right_upper_arm": ("right_upper_arm", "right_forearm"),
}
CONTACT_FORCE = 0.3  # N: a wipe sample counts as in contact above this
CONTACT_HOLD = 6  # control ticks (0.1 s): a reading in contact keeps counting this long (simulated contacts chatter)
TOUCH_FORCE = 1.0  # N: the descent onto the limb stops at the first reading above this
TOUCH_SPEED = 0.003  # m/s, the last of the descent onto the limb (simulated skin is stiff: 8-30 N per mm)
STROKE_SPEED = 0.02  # m/s along the limb while touching it
WIPE_BAND = (0.3, 2.0)  # N, averaged over WIPE_WINDOW: the stroke's height servo sinks below, rises above the band
WIPE_WINDOW = 4  # control ticks the stroke's force is averaged over (simulated contacts chatter)
WIPE_RATES = (0.0007, 0.004)  # m/s the stroke's height target sinks (under the band) and rises (over it)
WIPE_SPIKE = 5.0  # N: a single reading above this lifts the hand WIPE_JUMP at once
WIPE_JUMP = 0.0004  # m, that lift
STROKE_SPAN = (0.25, 0.7)  # the stroke runs between these fractions of the segment (off the joints at its ends)
WIPE_OFFSET = 0.06  # m from the limb axis towards the robot: the palm centre; fingertips clear of torso and thigh
WIPE_ABOVE = 0.15  # m above the limb's axis (link origins; ~8 cm over the skin): where the hand lines up
WIPE_NEAR = 0.085  # m above the limb's axis (~1.5-2 cm over the skin): from here the hand feels its way down
WIPE_FLOOR = 0.02  # m under the limb's axis: the hand never goes lower (no contact by then: fail)
WIPE_CONTACT_SHARE = 0.5  # share of stroke samples in contact for success


@dataclass
class CupPlan:
    """Where the cup goes: grasp-frame poses (7,) before and at the mouth, their postures, the mouth then."""

    pre: np.ndarray
    at: np.ndarray
    q_pre: np.ndarray
    q_at: np.ndarray
    mouth: np.ndarray
    via: tuple[np.ndarray, ...] = ()  # postures the swing to q_pre passes first (above the person)


def _body_clearance(points: np.ndarray, head: np.ndarray, chest: np.ndarray) -> float:
    """Smallest distance (m) of ``points`` (N, 3) outside a capsule of :data:`PERSON_RADIUS` from chest to head.

    A coarse model of a person's head, neck and chest, enough to keep a hand beside a face off it.
    """
    axis = head - chest
    length2 = float(axis @ axis)
    t = np.clip((points - chest) @ axis / length2, 0.0, 1.0) if length2 > 1e-9 else np.zeros(len(points))
    nearest = chest + t[:, None] * axis
    return float(np.min(np.linalg.norm(points - nearest, axis=1))) - PERSON_RADIUS


@dataclass
class MouthParams:
    """What to bring to whose mouth."""

    object: str = field(metadata={"description": "the held cup or spoon", "names": "objects"})
    person: str = field(metadata={"description": "who drinks or eats", "names": "people"})
    hold_time: float = field(default=2.0, metadata={"description": "seconds held at the mouth", "minimum": 0.0})


@register
class BringToMouth(ArmSkill):
    """Bring the held cup (tipped, rim first) or spoon (bowl first) to the person's mouth, hold it there, withdraw.

    The last move towards the face stops at the first contact above :data:`CONTACT_GUARD` N and
    backs off, well before the safety filter's 10 N limit.
    """

    name = "bring_to_mouth"
    Params = MouthParams
    description = (
        f"Bring the held cup or spoon to the person's mouth: its lip point (cup rim centre, spoon bowl) to"
        f" {MOUTH_STANDOFF * 100:.1f} cm ({CUP_STANDOFF * 100:.1f} cm for the cup, tipped rim first) in front of the"
        " mouth, held hold_time seconds, then withdrawn."
    )
    requires = ("holding = {object}", "near({person}) = true")
    effects = ()
    preconditions_doc = (
        "the object is a cup or a spoon (it has a lip point) and the gripper holds it",
        "the person is in the world state with a mouth position, within 1.6 m",
        "for the cup: the person lies in bed (the tipped-cup motion is not planned around someone sitting up)",
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
        if object_model(self.params.object).tilt > 0 and person.posture is not Posture.LYING_IN_BED:
            # the tipped-cup motion is planned against a lying person's head and chest only; for someone
            # sitting up, its joint-space swing can sweep through their arms and face (seen: 50 N)
            unmet.append(
                f"holding the {self.params.object} to the mouth is only done for a person lying in bed;"
                f" '{self.params.person}' is {person.posture.value}: hand_over the {self.params.object} instead"
            )
        if held_object(world_state, obs) != self.params.object:
            unmet.append(f"the gripper does not hold '{self.params.object}'; pick it first")
        rel = in_base_frame(person.mouth, obs)
        if math.hypot(rel[0], rel[1]) > 1.6:
            unmet.append(f"'{self.params.person}' is out of reach; approach_person first")
        return unmet

    def _poses(self, obs: Observation, ws: WorldState) -> tuple[np.ndarray, np.ndarray]:
        """(pre, at) grasp-frame *positions* that put the spoon's lip point in front of the mouth.

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
            m = self.kinematics.fk(q, "hand_grasping_frame", pose7(base))
            lip = m[:3, 3] + m[:3, :3] @ lip_in_grip
            target = target + (lip_goal - lip)
        pre = target - 0.12 * d + np.array([0.0, 0.0, 0.06])
        return pre, target

    def _swing(
        self,
        q0: np.ndarray,
        pre: np.ndarray,
        q_pre: np.ndarray,
        q_at: np.ndarray,
        base: np.ndarray,
        obj_in_grip: np.ndarray,
        ws: WorldState,
    ) -> tuple[tuple[np.ndarray, ...], np.ndarray] | None:
        """(postures to pass, the pre-mouth posture) for a swing from ``q0`` that keeps the held object above the
        person's body (:func:`~tianji.control.skills.swing.swing_path`); None when no way does (or its pre-mouth
        posture is too far from ``q_at`` for the short last move)."""
        person = ws.person(self.params.person)
        mouth = np.asarray(person.mouth, dtype=float)
        check = SwingCheck(person, float(mouth[2]) + SWING_CLEARANCE, mouth, FACE_ZONE)
        local = object_points(object_model(self.params.object))
        path = swing_path(self._arm(), q0, pre, q_pre, base, obj_in_grip, local, check)
        if path is None or self._arm().joint_jump(path[-1], q_at) > MAX_JUMP:
            return None
        return tuple(path[:-1]), path[-1]

    def _cup_plan(
        self,
        obs: Observation,
        ws: WorldState,
        base: np.ndarray,
        swing: bool = False,
        spare: float = 0.0,
        far: bool = True,
    ) -> CupPlan | None:
        """Poses and arm configurations that tip the held cup rim first to the mouth from ``base``; None if none works.

        An upright cup cannot reach a lying person's mouth: its body, below the rim, would be
        inside the face. So the cup's axis is tipped from upright towards the mouth by the
        model's tilt plus the face's elevation (a face looking up needs the rim pointing down):
        the body then stands up and back from the face, towards the robot. Candidates vary the
        tilt, the spin about the cup's axis (where the hand sits around the cup) and the side of
        the mouth the lip point is put (straight out of the face, or towards the robot). Those
        whose hand stays :data:`HAND_CLEARANCE` off a coarse model of the head and chest are
        tried, the forearm pointing best at the robot's shoulder first, until IK reaches both
        the pose and the one :data:`CUP_BACKOFF` back along the cup's body, in one posture and
        away from the joint limits (a Cartesian move next to a limit stalls and shakes). The tilts
        of :data:`TILT_STEPS` are tried first, those of :data:`FAR_TILT_STEPS` (nearer upside
        down, reaching farther) only when none of them works (and ``far``). With ``spare`` (m),
        the pose at the mouth moved that much farther from the base must be reachable too (in
        the same posture): a plan with that margin survives the base stopping a little short and
        the mouth drifting.
        """
        model = object_model(self.params.object)
        person = ws.person(self.params.person)
        mouth, head = np.asarray(person.mouth, dtype=float), np.asarray(person.head, dtype=float)
        chest = np.asarray(person.body_parts.get("chest", head), dtype=float)
        normal = (mouth - head) / max(np.linalg.norm(mouth - head), 1e-6)
        grip = pose_to_matrix(obs.ee_poses["gripper"].astype(float))
        obj = object_pose(ws, self.params.object)
        obj_in_grip = np.linalg.inv(grip) @ obj
        lip = np.asarray(model.lip or (0.0, 0.0, 0.0), dtype=float)
        arm = self._arm()
        q0 = obs.joint_positions.astype(float)
        hand = arm.hand_points(q0)
        t = np.array([*(mouth[:2] - base[:2]), 0.0])
        t /= max(float(np.linalg.norm(t)), 1e-6)
        along = np.array([*(chest - head)[:2], 0.0])  # the body's axis; "away" is across it, towards the robot
        along /= max(float(np.linalg.norm(along)), 1e-6)
        away = -t + (t @ along) * along
        away /= max(float(np.linalg.norm(away)), 1e-6)
        up = np.array([0.0, 0.0, 1.0])
        shoulder = np.array([base[0], base[1], SHOULDER_HEIGHT])
        face_elevation = math.asin(float(np.clip(normal[2], 0.0, 1.0)))

        def candidates(extras: tuple[float, ...]) -> list[tuple[float, np.ndarray, np.ndarray]]:
            found = []
            for shift in LIP_SHIFTS:
                side = normal + shift * away
                lip_goal = mouth + CUP_STANDOFF * side / np.linalg.norm(side)
                for extra in extras:
                    tilt = model.tilt + face_elevation + extra
                    axis = math.cos(tilt) * up + math.sin(tilt) * t  # the cup's bottom-to-rim direction
                    turned = rotation_between(obj[:3, 2], axis) @ obj[:3, :3]
                    for spin in np.linspace(-math.pi, math.pi, CUP_SPINS, endpoint=False):
                        goal = np.eye(4)
                        goal[:3, :3] = rotation_exp(axis * spin) @ turned
                        goal[:3, 3] = lip_goal - goal[:3, :3] @ lip
                        g = goal @ np.linalg.inv(obj_in_grip)
                        points = g[:3, :3] @ hand.T + g[:3, 3:4]
                        if _body_clearance(points.T, head, chest) < HAND_CLEARANCE:
                            continue
                        to_shoulder = (shoulder - g[:3, 3]) / max(np.linalg.norm(shoulder - g[:3, 3]), 1e-6)
                        found.append((float(-g[:3, 0] @ to_shoulder), g, axis))  # the forearm leaves along -x
            found.sort(key=lambda item: -item[0])
            return found

        self._rejected: Counter[str] = Counter()  # why candidates failed: said when none works
        any_candidate = False
        for extras in (TILT_STEPS, FAR_TILT_STEPS) if far else (TILT_STEPS,):
            tier = candidates(extras)
            any_candidate = any_candidate or bool(tier)
            for _, g, axis in tier[:CUP_TRIES]:
                pre = g.copy()
                pre[:3, 3] -= CUP_BACKOFF * axis
                q_pre = arm.ik(matrix_to_pose(pre), q0, base)
                q_at = None if q_pre is None else arm.ik(matrix_to_pose(g), q_pre, base, local=True)
                if q_pre is None or q_at is None or arm.joint_jump(q_pre, q_at) > MAX_JUMP:
                    self._rejected["out of reach"] += 1
                    continue
                if min(arm.limit_margin(q_pre), arm.limit_margin(q_at)) < LIMIT_MARGIN:
                    self._rejected["at a joint limit"] += 1
                    continue
                if spare > 0.0:
                    farther = g.copy()
                    farther[:3, 3] += spare * t
                    if arm.ik(matrix_to_pose(farther), q_at, base, local=True) is None:
                        self._rejected["at the edge of the reach"] += 1
                        continue
                via: tuple[np.ndarray, ...] = ()
                if swing:  # the swing from the current posture (planned from where the arm is, once unfolded)
                    found = self._swing(q0, matrix_to_pose(pre), q_pre, q_at, base, obj_in_grip, ws)
                    if found is None:
                        self._rejected["the swing would pass low over her"] += 1
                        continue
                    via, q_pre = found
                return CupPlan(matrix_to_pose(pre), matrix_to_pose(g), q_pre, q_at, mouth, via)
        if not any_candidate:
            self._rejected["the hand too close to her head"] += 1
        return None

    def _replan(self, obs: Observation, ws: WorldState) -> CupPlan | None:
        """The poses planned for the base pose the robot drove to, solved from where it stopped (a few cm off).

        They are moved with the mouth if it moved since (a person settling into the mattress), as far
        as the arm reaches (:data:`SHIFT_FRACTIONS` of the way).
        """
        reach = getattr(self, "_reach", None)
        if reach is None or len(reach.poses) != 2:
            return None
        arm, base = self._arm(), base_xy_yaw(obs)
        mouth = np.asarray(ws.person(self.params.person).mouth, dtype=float)
        q0 = obs.joint_positions.astype(float)
        obj_in_grip = np.linalg.inv(pose_to_matrix(obs.ee_poses["gripper"].astype(float))) @ object_pose(
            ws, self.params.object
        )
        for fraction in SHIFT_FRACTIONS:
            shift = fraction * (mouth - self._planned_mouth)
            pre, at = (np.r_[p[:3] + shift, p[3:]] for p in reach.poses)
            q_pre = arm.ik(pre, q0, base)
            q_at = None if q_pre is None else arm.ik(at, q_pre, base, local=True)
            if q_pre is None or q_at is None or arm.joint_jump(q_pre, q_at) > MAX_JUMP:
                continue
            found = self._swing(q0, pre, q_pre, q_at, base, obj_in_grip, ws)
            if found is not None:
                return CupPlan(pre, at, found[1], q_at, self._planned_mouth + shift, found[0])
        return None

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

    def _force(self) -> float:
        return float(self.context.contact_force()) if self.context.contact_force is not None else 0.0

    def _reachable_on_line(self, pre: np.ndarray, at: np.ndarray, obs: Observation) -> np.ndarray:
        """The farthest of :data:`APPROACH_FRACTIONS` of the way from ``pre`` to ``at`` that the arm reaches in its
        present posture (``at`` itself when none is: the line then goes as far as it can)."""
        q, base = obs.joint_positions.astype(float), base_xy_yaw(obs)
        for fraction in APPROACH_FRACTIONS:
            goal = pre + fraction * (at - pre)
            if self._arm().ik(goal, q, base, tolerance=0.005, local=True) is not None:
                return goal
        return at

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        arm = self._arm()
        mouth = np.asarray(world_state.person(self.params.person).mouth, dtype=float)
        start_q = obs.joint_positions.astype(float).copy()
        tipped = object_model(self.params.object).tilt > 0
        self._plan: CupPlan | None = None
        self._guard: StopOnContact | None = None

        def reposition_cup(o: Observation, w: WorldState) -> Controller | None:
            """Where to stand for the tipped cup, searched nearest the mouth first (not nearest the robot).

            Searched in turn, until a base pose works: with the planned tilts (:data:`TILT_STEPS`) and
            :data:`REACH_SPARE`; with the far tilts too; with neither the spare. Only base poses a straight
            repositioning move reaches count.
            """
            self._planned_mouth = np.asarray(w.person(self.params.person).mouth, dtype=float)

            def planner(spare: float, far: bool) -> PosePlanner:
                def at_base(base: np.ndarray) -> list[np.ndarray] | None:
                    plan = self._cup_plan(o, w, base, spare=spare, far=far)
                    return None if plan is None else [plan.pre, plan.at]

                return at_base

            occupancy = self.context.occupancy
            options = dict(offsets=CUP_OFFSETS, clearance=0.29, tries=CUP_BASE_TRIES, nearest_target=True)
            for k, (spare, far) in enumerate(((REACH_SPARE, False), (REACH_SPARE, True), (0.0, True))):
                try:
                    reach = choose_base(arm, o, mouth, planner(spare, far), occupancy, drive_slack=0.02, **options)
                    break
                except PhaseError:
                    if k == 2:
                        raise
            self._reach = reach
            self.data["base_moved"] = reach.moved
            return base_move(reach.base, occupancy, slack=BASE_SLACK) if reach.moved else None

        def cup_plan() -> CupPlan:
            if self._plan is None:
                why = ", ".join(f"{n} {reason}" for reason, n in getattr(self, "_rejected", Counter()).items())
                raise PhaseError(
                    f"no arm pose tips the cup to the mouth from here ({why or 'none found'}); approach_person first"
                )
            return self._plan

        def to_pre(o: Observation, w: WorldState) -> Controller:
            if not tipped:
                return arm.line(self._poses(o, w)[0], speed=0.1, tolerance=0.02, settle=3.0)
            self._plan = self._cup_plan(o, w, base_xy_yaw(o), swing=True) or self._replan(o, w)
            plan = cup_plan()
            grip = pose_to_matrix(o.ee_poses["gripper"].astype(float))
            axis = (pose_to_matrix(plan.at) @ np.linalg.inv(grip) @ object_pose(w, self.params.object))[:3, 2]
            self.data["cup_tilt"] = math.degrees(math.acos(float(np.clip(axis[2], -1.0, 1.0))))  # from upright
            moves = [arm.move_joints(q, timeout=25.0) for q in (*plan.via, plan.q_pre)]
            return moves[0] if len(moves) == 1 else SequenceController(moves)

        def approach(o: Observation, w: WorldState) -> Controller:
            if not tipped:
                self._q_pre = o.joint_positions.astype(float).copy()  # withdraw returns here, the way it came
                # a line to a pose past the arm's reach shook the hand by +-2 cm and put its little finger on a
                # lying patient's chest (70 N, 97 N): the line ends where the arm reaches in its present posture
                goal = self._reachable_on_line(*self._poses(o, w), o)
                move: Controller = arm.line(goal, speed=APPROACH_SPEED, tolerance=0.015, settle=3.0)
            else:  # a short joint-space move in the planned posture, to where the mouth is now
                plan = cup_plan()
                moved = np.asarray(w.person(self.params.person).mouth, dtype=float) - plan.mouth
                at, q = plan.at, plan.q_at
                for fraction in SHIFT_FRACTIONS[:-1]:  # follow the mouth as far as the arm reaches
                    shifted = np.r_[plan.at[:3] + fraction * moved, plan.at[3:]]
                    found = arm.ik(shifted, plan.q_at, base_xy_yaw(o), local=True)
                    if found is not None and arm.joint_jump(found, plan.q_at) <= 0.3:
                        at, q = shifted, found
                        break
                seconds = float(np.linalg.norm(at[:3] - plan.pre[:3])) / APPROACH_SPEED
                move = arm.move_joints(q, duration=max(seconds, 1.0), timeout=seconds + 10.0)
            self._guard = StopOnContact(move, self._force, CONTACT_GUARD)
            return self._guard

        def hold(o: Observation, w: WorldState) -> Controller:
            if self._guard is None or not self._guard.touched:
                return HoldController(self.params.hold_time)
            self.emit("info", f"touched the person ({self._guard.force:.1f} N): backed off 1.5 cm")
            back = o.ee_poses["gripper"].astype(float).copy()
            d = cup_plan().pre[:3] - cup_plan().at[:3] if tipped else back[:3] - mouth
            back[:3] += 0.015 * d / max(np.linalg.norm(d), 1e-6)
            return SequenceController(
                [arm.line(back[:3], speed=0.02, tolerance=0.01), HoldController(self.params.hold_time)]
            )

        def withdraw(o: Observation, w: WorldState) -> Controller:
            if tipped:
                return arm.move_joints(cup_plan().q_pre, duration=CUP_BACKOFF / 0.05, timeout=15.0)
            # back along the approach, in joint space: a Cartesian line away from the face could run into the
            # person's arm or a joint limit and stall (seen: 39 mm short after 2 s)
            return arm.move_joints(self._q_pre, duration=2.0, timeout=15.0)

        return [
            Phase("reposition base", reposition_cup)
            if tipped
            else self._reposition(
                mouth, lambda o, w: list(self._poses(o, w)), offsets=MOUTH_OFFSETS, clearance=0.29, slack=BASE_SLACK
            ),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            Phase("to pre-mouth", to_pre),
            Phase("approach the mouth", approach, self._monitor),
            Phase("hold at the mouth", hold, self._monitor),
            Phase("withdraw", withdraw),
            Phase("carry pose", lambda o, w: arm.move_joints(start_q, timeout=25.0) if tipped else None),
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
    """Wipe along a limb segment with the flat open hand: feel for it from above, stroke along it lightly, lift.

    Simulated skin is stiff (~8-30 N per mm of push), so the hand descends at 3 mm/s and stops
    at the first reading over :data:`TOUCH_FORCE`; the strokes then servo its height on the
    force (:class:`~tianji.control.skills.arm.ContactSlide`) instead of holding a height.
    """

    name = "wipe"
    Params = WipeParams
    description = (
        "Wipe along a body part (forearm: elbow to wrist, upper arm: shoulder to elbow) with the flat open hand,"
        " fingers across it: feel down slowly until touching, stroke back and forth along it with the hand's"
        " height servoed on the contact force (a light touch), lift."
    )
    requires = ("holding = none", "near({person}) = true")
    effects = ("gripper = open",)
    preconditions_doc = (
        "the gripper holds nothing",
        "the person and the body part's end points are in the world state, within 1.6 m",
        "a contact-force reading is available (SkillContext.contact_force: wrist F/T or the simulator)",
    )
    success_doc = (
        f"at least {WIPE_CONTACT_SHARE:.0%} of the stroke samples in contact (a reading > {CONTACT_FORCE} N within"
        f" {CONTACT_HOLD} control ticks) and every reading under {FORCE_LIMIT:.0f} N"
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

    def _stroke_line(self, ws: WorldState, obs: Observation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, end) hand points of the stroke and the fingers' direction, palm down.

        The fingers point across the limb, away from the robot (TIAGo's natural top-down reach),
        so the thumb lies along the limb rather than poking into the body beside it; the palm's
        centre runs :data:`WIPE_OFFSET` to the robot's side of the limb's axis, keeping the
        fingertips off the torso and thigh next to it. Heights are the limb's axis (link origins).
        """
        a, b = self._segment(ws)
        along = np.array([*(b - a)[:2], 0.0])
        along /= max(float(np.linalg.norm(along)), 1e-6)
        out = np.array([*(base_xy_yaw(obs)[:2] - (a[:2] + b[:2]) / 2), 0.0])
        out -= (out @ along) * along
        out /= max(float(np.linalg.norm(out)), 1e-6)
        start = a + STROKE_SPAN[0] * (b - a) + WIPE_OFFSET * out
        end = a + STROKE_SPAN[1] * (b - a) + WIPE_OFFSET * out
        return start, end, -out

    @staticmethod
    def _hand(point: np.ndarray, fingers: np.ndarray, lift: float) -> np.ndarray:
        """Palm-down grasp-frame pose over ``point`` (``lift`` m above), fingers along ``fingers``."""
        return frame_pose(point + np.array([0.0, 0.0, lift]), fingers, np.array([0.0, 0.0, -1.0]))

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        arm = self._arm()
        start, end, fingers = self._stroke_line(world_state, obs)
        above = self._hand(start, fingers, WIPE_ABOVE)
        self._slide: ContactSlide | None = None
        self._touch: ContactSlide | None = None
        force = self.context.contact_force or (lambda: 0.0)

        def lined_up(o: Observation, w: WorldState) -> Controller:  # a joint move: from any arm pose
            nonlocal start, end, fingers
            start, end, fingers = self._stroke_line(w, o)  # from where the base is now
            q = arm.ik(self._hand(start, fingers, WIPE_ABOVE), o.joint_positions.astype(float), base_xy_yaw(o))
            if q is None:
                raise PhaseError("no arm pose puts the open hand above the body part from here")
            return arm.move_joints(q, timeout=30.0)

        def lower(o: Observation, w: WorldState) -> Controller:
            return arm.line(self._hand(start, fingers, WIPE_NEAR), speed=0.02, tolerance=0.008, settle=1.0)

        def touch(o: Observation, w: WorldState) -> Controller:
            self._touch = ContactSlide(
                self.spec,
                self.kinematics,
                [start[:2]],
                self._hand(start, fingers, 0.0)[3:],
                force,
                sink=TOUCH_SPEED,
                floor=float(start[2] - WIPE_FLOOR),
                touch=TOUCH_FORCE,
                timeout=(WIPE_NEAR + WIPE_FLOOR) / TOUCH_SPEED + 5.0,
            )
            return self._touch

        def strokes(o: Observation, w: WorldState) -> Controller:
            if self._touch is None or not self._touch.touched:
                raise PhaseError(f"the hand found no contact down to {WIPE_FLOOR * 100:.0f} cm under the limb's axis")
            path = [(end if k % 2 == 0 else start)[:2] for k in range(max(1, self.params.strokes))]
            self._slide = ContactSlide(
                self.spec,
                self.kinematics,
                path,
                self._hand(start, fingers, 0.0)[3:],
                force,
                speed=STROKE_SPEED,
                low=WIPE_BAND[0],
                high=WIPE_BAND[1],
                sink=WIPE_RATES[0],
                lift=WIPE_RATES[1],
                spike=WIPE_SPIKE,
                jump=WIPE_JUMP,
                window=WIPE_WINDOW,
                floor=float(start[2] - WIPE_FLOOR),
                timeout=20.0 + 2.0 * max(1, self.params.strokes) * float(np.linalg.norm(end - start)) / STROKE_SPEED,
            )
            return self._slide

        return [
            self._reposition((start + end) / 2, lambda o, w: [above, self._hand(end, fingers, WIPE_ABOVE)]),
            Phase("open hand", lambda o, w: GripperController(self.spec, close=False, duration=0.6)),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            Phase("above the body part", lined_up),
            Phase("lower the hand", lower),
            Phase("touch", touch),
            Phase("strokes", strokes),
            Phase("lift", lambda o, w: arm.line(self._lifted(o), speed=0.04, tolerance=0.03)),
        ]

    @staticmethod
    def _lifted(obs: Observation) -> np.ndarray:
        pose = obs.ee_poses["gripper"].astype(float).copy()
        pose[2] += 0.12
        return pose

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        raw = np.array(self._slide.readings if self._slide is not None else [])
        # a sample is in contact when a reading above CONTACT_FORCE came within the last CONTACT_HOLD ticks
        held = np.array([raw[max(0, k - CONTACT_HOLD + 1) : k + 1].max() for k in range(len(raw))])
        share = float(np.mean(held > CONTACT_FORCE)) if len(held) else 0.0
        peak = float(raw.max()) if len(raw) else 0.0
        self.data.update(contact_share=share, samples=len(held), peak_force=peak)
        if peak > FORCE_LIMIT:
            return False, f"pressed with {peak:.1f} N (limit {FORCE_LIMIT:.0f} N)"
        if share < WIPE_CONTACT_SHARE:
            return False, f"in contact for only {share:.0%} of the stroke ({len(held)} samples)"
        return (
            True,
            f"wiped the {self.params.body_part}: contact {share:.0%} of {len(held)} samples, peak {peak:.1f} N",
        )
