"""TIAGo manipulation skills: pick an object, place it on a surface, hand it over to a person.

Each skill plans at reset from the world state: the gripper poses of its motion (from the
object models in :mod:`~tianji.control.skills.geometry`), then where the base must stand for
the arm to reach them all (:func:`~tianji.control.skills.arm.choose_base`; the base moves
only when the current pose does not work). Arm motions are a joint-space move to a pose
above or beside the target (IK), then slow straight lines. Success is checked from the world
state and observations at the end: where the object is, whether it follows the gripper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tianji.control.controllers import GripperController, HoldController, SequenceController
from tianji.control.robot import Observation
from tianji.control.skills.arm import PERSON_GAP, PERSON_HALF_WIDTH, TiagoArm, base_move, choose_base
from tianji.control.skills.base import Phase, PhasedSkill, PhaseError
from tianji.control.skills.geometry import (
    base_xy_yaw,
    held_object,
    in_base_frame,
    object_model,
    object_pose,
    place_of,
    side_grasp_pose,
    top_grasp_pose,
)
from tianji.control.skills.registry import register
from tianji.control.skills.swing import SwingCheck, object_points, swing_path
from tianji.control.transforms import matrix_to_pose, pose_to_matrix, quat_to_matrix, rotation_exp
from tianji.control.world_state import WorldState

REACH_LIMIT = 1.4  # m, farthest an object may be from the base for pick / place to start (base moves <= 1 m)
LIFT = 0.12  # m, lift after a grasp
PRE = 0.12  # m, pre-grasp distance along the approach
LIFTED = 0.05  # m, an object this much above where it was counts as lifted
PLACE_DISTANCE = 0.68  # m, from the place's standing pose towards the surface centre: where things are put
PLACE_CLEARANCE = 0.12  # m, from other objects and people when placing
DROP_HEIGHT = 0.012  # m, the object's footprint above the surface when the gripper opens
PLACED_CLEARANCE = 0.12  # m the folding hand keeps from the centre of what it just put down
HANDOVER_RAISE = 0.15  # m, above the hand of a person lying down
HANDOVER_FRONT = 0.45  # m, in front of the chest toward the robot, when the hands are not known
HEAD_TO_CHEST = 0.35  # m, below the head centre
PELVIS_TO_CHEST = 0.25  # m, above the body centre of a sitting or standing person
HANDOVER_TOLERANCE = 0.20  # m, how close to the hand-over point the object must be when released
# rad: the base moves until the hand-over postures keep this off every arm joint's limit (from too close,
# a top-grasped pill box was held out with the upper arm rolled to its limit, and the swing there dipped into a lap)
HANDOVER_LIMIT_MARGIN = 0.05
FOLD_REACH = 0.72  # m ahead of the base centre, the hand on the way to the folded pose (ELBOW_UP), fingers included
STEP_BACK_MAX = 0.55  # m the base reverses at most to fold the arm clear (of a person, of what it put down)
SIDE_TURNS = (0.0, 0.3, 0.6, 0.9, 1.2)  # rad, turns (to the left) of a side grasp's approach, tried in order
WRIST_CLEARANCE = 0.15  # m, horizontal, from a side grasp's wrist to the centres of neighbouring objects


class ArmSkill(PhasedSkill):
    """Shared by TIAGo arm skills: kinematics and arm helpers, the held-object check, and base repositioning."""

    robots = ("tiago",)

    def _arm(self) -> TiagoArm:
        if not hasattr(self, "_arm_cache"):
            self._arm_cache = TiagoArm(self.spec, self.kinematics)
        return self._arm_cache

    def _common_preconditions(self, obs: Observation) -> list[str]:
        unmet = []
        if self.context.kinematics is None:
            unmet.append("no kinematics in the skill context: SkillContext(kinematics=Kinematics.for_spec(urdf, spec))")
        if not self.spec.has_gripper or obs.gripper is None:
            unmet.append(f"robot '{self.spec.name}' has no gripper")
        return unmet

    def _reposition(
        self, target: np.ndarray, poses_fn: object, yaw: float | None = None, slack: float = 0.0, **kwargs: Any
    ) -> Phase:
        """Phase that chooses a base pose reaching ``poses_fn(obs, ws)`` and drives there when needed.

        The choice is kept in ``self._reach``; ``slack`` goes to :func:`base_move`.
        """

        def make(obs: Observation, ws: WorldState) -> object:
            poses = poses_fn(obs, ws)  # type: ignore[operator]
            reach = choose_base(self._arm(), obs, target, poses, self.context.occupancy, yaw=yaw, **kwargs)
            self._reach = reach
            self.data["base_moved"] = reach.moved
            return base_move(reach.base, self.context.occupancy, slack=slack) if reach.moved else None

        return Phase("reposition base", make)  # type: ignore[arg-type]

    def _back_off(self, point_fn: object, clearance: float) -> Phase:
        """Phase: reverse along the heading (at most :data:`STEP_BACK_MAX`) until folding the arm keeps clear of
        ``point_fn(obs, ws)`` (x, y) by ``clearance``: the fold passes a posture with the hand :data:`FOLD_REACH`
        ahead of the base, which knocked a just-placed cup off the table and hit a sitting patient's upper arm."""

        def make(obs: Observation, ws: WorldState) -> object:
            here = base_xy_yaw(obs)
            point = np.asarray(point_fn(obs, ws), dtype=float)[:2]  # type: ignore[operator]
            heading = np.array([math.cos(here[2]), math.sin(here[2])])
            for back in np.arange(0.0, STEP_BACK_MAX + 1e-9, 0.05):
                xy = here[:2] - back * heading
                if math.hypot(*(point - xy)) >= FOLD_REACH + clearance:
                    break
            if back < 0.03:
                return None
            self.data["stepped_back"] = float(back)
            return base_move(np.array([xy[0], xy[1], here[2]]), self.context.occupancy)

        return Phase("step back", make)  # type: ignore[arg-type]

    def _ik_move(self, pose_fn: object, label: str) -> Phase:
        """Phase: joint-space move to the IK solution of ``pose_fn(obs, ws)`` from where the base is now."""

        def make(obs: Observation, ws: WorldState) -> object:
            pose = pose_fn(obs, ws)  # type: ignore[operator]
            q = self._arm().ik(pose, obs.joint_positions.astype(float), base_xy_yaw(obs))
            if q is None:
                raise PhaseError(f"no arm configuration reaches the {label} pose from here")
            return self._arm().move_joints(q)

        return Phase(f"arm to {label}", make)  # type: ignore[arg-type]


@dataclass
class PickParams:
    """What to pick."""

    object: str = field(metadata={"description": "object to pick up", "names": "objects"})


@register
class Pick(ArmSkill):
    """Pick an object up from a surface: approach, grasp, lift, hold it close to carry."""

    name = "pick"
    Params = PickParams
    description = "Pick an object up from the surface it stands on and hold it ready to carry."
    requires = ("holding = none", "robot_at = on({object})")
    effects = ("holding = {object}", "on({object}) = none", "gripper = closed")
    preconditions_doc = (
        "the object is in the world state",
        "the gripper holds nothing",
        f"the object is within {REACH_LIMIT} m of the robot (navigate to its place first)",
    )
    success_doc = f"the object follows the gripper and is at least {LIFTED} m above where it stood"
    default_timeout = 75.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        unmet = self._common_preconditions(obs)
        name = self.params.object
        if name not in world_state.objects:
            known = ", ".join(world_state.objects) or "none"
            return [*unmet, f"object '{name}' is not in the world state (known: {known})"]
        holding = held_object(world_state, obs)
        if holding is not None:
            unmet.append(f"the gripper already holds '{holding}'; place it or hand it over first")
        pos = world_state.object(name).position
        rel = in_base_frame(pos, obs)
        if math.hypot(rel[0], rel[1]) > REACH_LIMIT:
            where = place_of(world_state, pos)
            hint = f"navigate_to {where} first" if where else "navigate closer first"
            unmet.append(f"'{name}' is {math.hypot(rel[0], rel[1]):.1f} m away, out of reach; {hint}")
        return unmet

    def _grasp_poses(self, obs: Observation, ws: WorldState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pre-grasp, grasp, lifted) gripper poses for the object where it is now."""
        model = object_model(self.params.object)
        pos = np.asarray(ws.object(self.params.object).position, dtype=float)
        point = pos + np.array([0.0, 0.0, model.grasp_height])
        base = base_xy_yaw(obs)
        approach = point[:2] - base[:2]
        if np.linalg.norm(approach) < 0.2:
            approach = np.array([math.cos(base[2]), math.sin(base[2])])
        if model.grasp == "top":
            grasp = top_grasp_pose(point, approach, model.palm_offset)
            pre = grasp.copy()
            pre[2] += PRE
        else:
            approach = self._side_approach(ws, point, approach)
            grasp = side_grasp_pose(point, approach, model.palm_offset, model.pitch)
            a = quat_to_matrix(grasp[3:])[:, 1]  # the approach: the palm's normal
            pre = grasp.copy()
            pre[:3] -= PRE * a
            pre[2] += 0.03
        lifted = grasp.copy()
        lifted[2] += LIFT
        return pre, grasp, lifted

    def _side_approach(self, ws: WorldState, point: np.ndarray, approach: np.ndarray) -> np.ndarray:
        """Horizontal approach direction of a side grasp whose wrist stays clear of the object's neighbours.

        The fingers of a side grasp are horizontal, so the wrist sits ~20 cm to the left of the
        grasp point seen along the approach: right above a neighbour standing there (the cup
        beside the bowl), which the forearm then shoves aside. Turning the approach to the left
        swings the wrist back towards the robot; the smallest turn of :data:`SIDE_TURNS` that
        keeps it :data:`WRIST_CLEARANCE` from every neighbour's centre is taken (else the clearest).
        """
        model = object_model(self.params.object)
        others = [
            np.asarray(o.position[:2], dtype=float)
            for name, o in ws.objects.items()
            if name != self.params.object
            and abs(o.position[2] - point[2]) < 0.2
            and np.linalg.norm(np.asarray(o.position[:2]) - point[:2]) < 0.4
        ]
        if not others:
            return approach
        wrist = self._arm().wrist_offset
        best: tuple[float, np.ndarray] | None = None
        for turn in SIDE_TURNS:
            c, s = math.cos(turn), math.sin(turn)
            h = np.array([c * approach[0] - s * approach[1], s * approach[0] + c * approach[1]])
            grasp = pose_to_matrix(side_grasp_pose(point, h, model.palm_offset, model.pitch))
            at = (grasp[:3, :3] @ wrist + grasp[:3, 3])[:2]
            clear = min(float(np.linalg.norm(at - o)) for o in others)
            if clear >= WRIST_CLEARANCE:
                return h
            if best is None or clear > best[0]:
                best = (clear, h)
        assert best is not None
        return best[1]

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        self._start = np.asarray(world_state.object(self.params.object).position, dtype=float).copy()
        arm = self._arm()

        def carry(o: Observation, w: WorldState) -> object:
            grip = o.ee_poses["gripper"].astype(float)
            local = in_base_frame(grip[:3], o)
            target = np.array([max(0.45, local[0] - 0.15), local[1], max(local[2], 0.92)])
            x, y, yaw = base_xy_yaw(o)
            c, s = math.cos(yaw), math.sin(yaw)
            world = np.array([x + c * target[0] - s * target[1], y + s * target[0] + c * target[1], target[2]])
            return arm.line(np.r_[world, grip[3:]], speed=0.1, tolerance=0.02)

        return [
            Phase("open gripper", lambda o, w: GripperController(self.spec, close=False, duration=0.8)),
            self._reposition(self._start, lambda o, w: list(self._grasp_poses(o, w))),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            self._ik_move(lambda o, w: self._grasp_poses(o, w)[0], "pre-grasp"),
            Phase("approach", lambda o, w: arm.line(self._grasp_poses(o, w)[1], speed=0.05, tolerance=0.012)),
            Phase("close gripper", lambda o, w: GripperController(self.spec, close=True, duration=1.0)),
            Phase("lift", lambda o, w: arm.line(self._lift_pose(o), speed=0.06, tolerance=0.02)),
            Phase("carry pose", carry),
        ]

    @staticmethod
    def _lift_pose(obs: Observation) -> np.ndarray:
        pose = obs.ee_poses["gripper"].astype(float).copy()
        pose[2] += LIFT
        return pose

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        name = self.params.object
        pos = np.asarray(world_state.object(name).position, dtype=float)
        rise = float(pos[2] - self._start[2])
        holding = held_object(world_state, obs)
        self.data.update(lift=rise, holding=holding)
        if holding != name:
            return False, f"'{name}' is not in the gripper after the grasp (it is {rise * 100:.0f} cm above its start)"
        if rise < LIFTED:
            return False, f"'{name}' rose only {rise * 100:.1f} cm; it slipped or is stuck"
        return True, f"holding '{name}', {rise * 100:.0f} cm above the table"


@dataclass
class PlaceParams:
    """Where to put the held object."""

    object: str = field(metadata={"description": "the held object", "names": "objects"})
    place: str = field(metadata={"description": "place whose surface receives it", "names": "places"})
    position: tuple[float, float] | None = field(
        default=None, metadata={"description": "world (x, y) spot on the surface; default: chosen automatically"}
    )


@register
class Place(ArmSkill):
    """Put the held object down on a place's surface, release it and withdraw the arm."""

    name = "place"
    Params = PlaceParams
    description = "Put the held object down on the surface of a place, let go and withdraw the arm."
    requires = ("holding = {object}", "robot_at = {place}")
    effects = ("holding = none", "on({object}) = {place}", "gripper = open")
    preconditions_doc = (
        "the gripper holds the object",
        "the place is known and has a surface (surface_height)",
        f"the spot is within {REACH_LIMIT} m of the robot",
    )
    success_doc = (
        "the gripper is empty, the object rests on the surface (within 3 cm of its height) within"
        " 10 cm of the chosen spot"
    )
    default_timeout = 75.0

    def _spot(self, ws: WorldState) -> np.ndarray:
        """(x, y) where the object goes: the given position or a free spot in front of the place's standing pose."""
        if self.params.position is not None:
            return np.asarray(self.params.position, dtype=float)
        place = ws.place(self.params.place)
        stand = np.asarray(place.pose[:2], dtype=float)
        centre = np.asarray(place.center[:2], dtype=float) if place.center is not None else stand
        d = centre - stand
        dist = float(np.linalg.norm(d))
        axis = d / dist if dist > 1e-6 else np.array([math.cos(place.pose[2]), math.sin(place.pose[2])])
        nominal = stand + axis * min(PLACE_DISTANCE, dist)
        others = [np.asarray(o.position[:2], dtype=float) for n, o in ws.objects.items() if n != self.params.object]
        for person in ws.people.values():
            others += [np.asarray(p[:2], dtype=float) for p in person.body_parts.values()]
        side = np.array([-axis[1], axis[0]])
        for shift in (0.0, 0.08, -0.08, 0.16, -0.16, 0.24, -0.24):
            for along in (0.0, -0.06, 0.05):
                spot = nominal + shift * side + along * axis
                if all(np.linalg.norm(spot - p) >= PLACE_CLEARANCE for p in others):
                    return spot
        raise PhaseError(f"no free spot on '{self.params.place}' near where the robot can reach; clear some space")

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        unmet = self._common_preconditions(obs)
        name, where = self.params.object, self.params.place
        if name not in world_state.objects:
            return [*unmet, f"object '{name}' is not in the world state"]
        if where not in world_state.places:
            return [*unmet, f"place '{where}' is not in the world state (known: {', '.join(world_state.places)})"]
        if world_state.place(where).surface_height is None:
            unmet.append(f"place '{where}' has no surface to put things on; choose a table or the bedside table")
        holding = held_object(world_state, obs)
        if holding != name:
            unmet.append(f"the gripper does not hold '{name}' (holding: {holding or 'nothing'}); pick it first")
        if not unmet:
            try:
                rel = in_base_frame([*self._spot(world_state), 0.0], obs)
            except PhaseError as exc:
                return [str(exc)]
            if math.hypot(rel[0], rel[1]) > REACH_LIMIT:
                unmet.append(f"'{where}' is {math.hypot(rel[0], rel[1]):.1f} m away; navigate_to {where} first")
        return unmet

    def _poses(self, obs: Observation, ws: WorldState) -> tuple[np.ndarray, np.ndarray]:
        """(above, down) gripper poses that put the held object's footprint on the spot."""
        grip = pose_to_matrix(obs.ee_poses["gripper"].astype(float))
        obj = object_pose(ws, self.params.object)
        offset = np.linalg.inv(grip) @ obj  # object in the gripper frame, as held now
        spot = self._spot(ws)
        height = float(ws.place(self.params.place).surface_height or 0.0)
        turn = math.atan2(spot[1] - obs.base_pose[1], spot[0] - obs.base_pose[0]) - math.atan2(
            obj[1, 3] - obs.base_pose[1], obj[0, 3] - obs.base_pose[0]
        )
        target = grip.copy()
        target[:3, :3] = rotation_exp(np.array([0.0, 0.0, turn])) @ grip[:3, :3]  # same hand pose relative to robot
        obj_at = target @ offset
        target[:3, 3] += np.array([spot[0], spot[1], height + DROP_HEIGHT]) - obj_at[:3, 3]
        above = target.copy()
        above[2, 3] += 0.10
        return matrix_to_pose(above), matrix_to_pose(target)

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        arm = self._arm()
        self._planned = self._poses(obs, world_state)
        self.data["spot"] = self._spot(world_state)
        spot = self.data["spot"]

        def retreat(o: Observation, w: WorldState) -> object:
            pose = o.ee_poses["gripper"].astype(float).copy()
            back = quat_to_matrix(pose[3:])[:, 1]  # palm normal: move against it, then up
            pose[:3] -= 0.08 * np.array([back[0], back[1], 0.0])
            pose[2] += 0.08
            return arm.line(pose, speed=0.08, tolerance=0.03)

        return [
            self._reposition(np.array([*spot, 0.0]), lambda o, w: list(self._poses(o, w))),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            self._ik_move(lambda o, w: self._poses(o, w)[0], "above the spot"),
            Phase("lower", lambda o, w: arm.line(self._poses(o, w)[1], speed=0.04, tolerance=0.012)),
            Phase("open gripper", lambda o, w: GripperController(self.spec, close=False, duration=0.8)),
            Phase("retreat", retreat),
            self._back_off(lambda o, w: spot, PLACED_CLEARANCE),
            Phase("tuck arm", lambda o, w: arm.tuck(o)),
        ]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        name = self.params.object
        pos = np.asarray(world_state.object(name).position, dtype=float)
        height = float(world_state.place(self.params.place).surface_height or 0.0)
        off = float(np.linalg.norm(pos[:2] - self.data["spot"]))
        self.data.update(height_error=float(pos[2] - height), spot_error=off)
        if held_object(world_state, obs) == name:
            return False, f"'{name}' is still in the gripper"
        if abs(pos[2] - height) > 0.03:
            return False, f"'{name}' is at {pos[2]:.2f} m, not on the {height:.2f} m surface of '{self.params.place}'"
        if off > 0.10:
            return False, f"'{name}' landed {off * 100:.0f} cm from the chosen spot"
        return True, f"'{name}' is on '{self.params.place}', {off * 100:.1f} cm from the chosen spot"


@dataclass
class HandOverParams:
    """What to hand over, to whom."""

    object: str = field(metadata={"description": "the held object", "names": "objects"})
    person: str = field(metadata={"description": "who receives it", "names": "people"})
    hold_time: float = field(
        default=2.0, metadata={"description": "seconds the object is held out before letting go", "minimum": 0.0}
    )


@register
class HandOver(ArmSkill):
    """Hold the object out just above the person's nearest hand, wait for them to take it, let go, withdraw."""

    name = "hand_over"
    Params = HandOverParams
    description = (
        f"Hold the object out {HANDOVER_RAISE * 100:.0f} cm above the hand nearest the robot (a person lying down) or"
        f" {HANDOVER_FRONT * 100:.0f} cm in front of the chest (sitting or standing), wait"
        " hold_time seconds for them to take it (assumed taken then: no pull sensing yet), open, withdraw."
    )
    requires = ("holding = {object}", "near({person}) = true")
    effects = ("holding = none", "gripper = open")
    preconditions_doc = ("the gripper holds the object", "the person is in the world state, within 1.6 m")
    success_doc = (
        f"the object was let go within {HANDOVER_TOLERANCE * 100:.0f} cm of the hand-over point and the gripper"
        " is empty"
    )
    default_timeout = 75.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        unmet = self._common_preconditions(obs)
        if self.params.person not in world_state.people:
            return [*unmet, f"person '{self.params.person}' is not in the world state"]
        if held_object(world_state, obs) != self.params.object:
            unmet.append(f"the gripper does not hold '{self.params.object}'; pick it first")
        rel = in_base_frame(self._point(world_state), obs)
        if math.hypot(rel[0], rel[1]) > 1.6:
            unmet.append(f"'{self.params.person}' is {math.hypot(rel[0], rel[1]):.1f} m away; approach_person first")
        return unmet

    def _point(self, ws: WorldState) -> np.ndarray:
        """The hand-over point: above the hand nearest the robot of a person lying down, else in front of the chest.

        A sitting person's hand may hang low with the forearm rising steeply from it: a cup held out above such
        a hand came down onto the forearm (12-30 N), so sitting and standing people get the point in front of
        the chest, as when perception has not seen the hands.
        """
        person = ws.person(self.params.person)
        robot = np.array([ws.robot_pose[0], ws.robot_pose[1], 0.0])
        hands = [
            np.asarray(person.body_parts[h], dtype=float) for h in ("left_hand", "right_hand") if h in person.body_parts
        ]
        if hands and not person.posture.upright:
            hand = min(hands, key=lambda h: float(np.linalg.norm(h[:2] - robot[:2])))
            return hand + np.array([0.0, 0.0, HANDOVER_RAISE])
        # in front of the chest, far enough out that the arm does not brush the person's arms or lap on the way
        if "chest" in person.body_parts:
            chest = np.asarray(person.body_parts["chest"], dtype=float)
        elif person.head is not None:
            chest = np.asarray(person.head, dtype=float) - np.array([0.0, 0.0, HEAD_TO_CHEST])
        else:  # only the body centre seen: a sitting or standing person's chest is higher (at the pelvis, the
            # point was over a sitting patient's lap, down at the mattress, and the cup could not be held out there)
            rise = PELVIS_TO_CHEST if person.posture.upright else 0.0
            chest = np.asarray(person.position, dtype=float) + np.array([0.0, 0.0, rise])
        d = robot[:2] - chest[:2]
        return chest + np.array([*(HANDOVER_FRONT * d / max(np.linalg.norm(d), 1e-6)), 0.0])

    def _poses(self, obs: Observation, ws: WorldState) -> tuple[np.ndarray, np.ndarray]:
        """(pre, out) gripper poses putting the object's centre at the hand-over point, hand as held now."""
        grip = obs.ee_poses["gripper"].astype(float)
        obj = np.asarray(ws.object(self.params.object).position, dtype=float)
        centre = obj + np.array([0.0, 0.0, object_model(self.params.object).grasp_height])
        target = grip.copy()
        target[:3] += self._target - centre
        pre = target.copy()
        toward = self._target[:2] - base_xy_yaw(obs)[:2]
        pre[:2] -= 0.12 * toward / max(np.linalg.norm(toward), 1e-6)
        pre[2] += 0.06
        return pre, target

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        arm = self._arm()
        self._target = self._point(world_state)
        self.data["handover_point"] = self._target
        self._swing: list[np.ndarray] = []  # the approach's postures, from where it started

        def release(o: Observation, w: WorldState) -> object:
            obj = np.asarray(w.object(self.params.object).position, dtype=float)
            centre = obj + np.array([0.0, 0.0, object_model(self.params.object).grasp_height])
            self.data["release_error"] = float(np.linalg.norm(centre - self._target))
            return GripperController(self.spec, close=False, duration=0.8)

        def withdraw(o: Observation, w: WorldState) -> object:
            """Straight back off the person's hand, then the approach's swing in reverse: tucking from the held-out
            posture swung the forearm sideways into a sitting patient's upper arm (39 N)."""
            back = self._swing[-2::-1]  # the swing's postures in reverse, ending where it started
            moves = [arm.line(self._withdraw_pose(o), speed=0.08, tolerance=0.03), *map(arm.move_joints, back)]
            return SequenceController(moves)

        def approach(o: Observation, w: WorldState) -> object:
            """Joint-space move to the pose before holding out, on a swing that keeps the object above the person
            (:mod:`tianji.control.skills.swing`: a straight swing once pressed a sitting patient's forearm)."""
            pre, q0, base = self._poses(o, w)[0], o.joint_positions.astype(float), base_xy_yaw(o)
            # the posture nearest the arm's (a short swing) first, then the IK's own choice
            solutions = [q for q in (arm.ik(pre, q0, base, local=True), arm.ik(pre, q0, base)) if q is not None]
            if not solutions:
                raise PhaseError("no arm configuration reaches the hand-over approach pose from here")
            grip = pose_to_matrix(o.ee_poses["gripper"].astype(float))
            obj_in_grip = np.linalg.inv(grip) @ object_pose(w, self.params.object)
            local = object_points(object_model(self.params.object))
            check = SwingCheck(w.person(self.params.person))
            for q in solutions:
                path = swing_path(arm, q0, pre, q, base, obj_in_grip, local, check)
                if path is not None:
                    self._swing = [q0, *path]  # the withdraw comes back this way
                    moves = [arm.move_joints(p) for p in path]
                    return moves[0] if len(moves) == 1 else SequenceController(moves)
            raise PhaseError(
                f"every way the arm found to the hand-over pose passes low over '{self.params.person}'"
                " (their arms or lap); approach_person from another side"
            )

        return [
            # next to the person with the object held out: the base keeps its heading (turning swings the hand
            # sideways, into their arm), and moves until the postures keep clear of the joint limits
            self._reposition(
                self._target,
                lambda o, w: list(self._poses(o, w)),
                yaw=float(base_xy_yaw(obs)[2]),
                limit_margin=HANDOVER_LIMIT_MARGIN,
            ),
            Phase("unfold arm", lambda o, w: arm.unfold(o)),
            Phase("arm to hand-over approach", approach),
            Phase("hold out", lambda o, w: arm.line(self._poses(o, w)[1], speed=0.04, tolerance=0.015)),
            Phase("wait for the person", lambda o, w: HoldController(self.params.hold_time)),
            Phase("let go", release),
            Phase("withdraw", withdraw),
            self._back_off(lambda o, w: w.person(self.params.person).position, PERSON_HALF_WIDTH + PERSON_GAP),
            Phase("tuck arm", lambda o, w: arm.tuck(o)),
        ]

    def _withdraw_pose(self, obs: Observation) -> np.ndarray:
        pose = obs.ee_poses["gripper"].astype(float).copy()
        toward = self._target[:2] - base_xy_yaw(obs)[:2]
        pose[:2] -= 0.12 * toward / max(np.linalg.norm(toward), 1e-6)
        pose[2] += 0.08
        return pose

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        error = float(self.data.get("release_error", math.inf))
        if held_object(world_state, obs) == self.params.object:
            return False, f"'{self.params.object}' is still in the gripper"
        if error > HANDOVER_TOLERANCE:
            return False, f"let go {error * 100:.0f} cm from the hand-over point"
        return True, f"handed '{self.params.object}' to '{self.params.person}' ({error * 100:.1f} cm from the point)"
