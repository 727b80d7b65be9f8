"""TIAGo mobile skills: drive to a named place, approach a person, point the head (and camera) at something.

Navigation plans a path on the floor map (A* on the occupancy grid grown by the robot's
radius, shortcut to straight segments) and drives it with one
:class:`~tianji.control.base_nav.BaseController` per segment, which also brakes for anything
the map shows ahead. Without a map the base drives straight to the goal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tianji.control.base_nav import BaseController, OccupancyMap
from tianji.control.controllers import JointTrajectoryController, SequenceController
from tianji.control.controllers.base import Controller, HoldController
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Observation, RobotSpec
from tianji.control.skills.arm import (
    BASE_CLEARANCE,
    GRASP_FRAME,
    PERSON_GAP,
    PERSON_HALF_WIDTH,
    ROBOT_RADIUS,
    pose7,
)
from tianji.control.skills.base import Phase, PhasedSkill, PhaseError
from tianji.control.skills.geometry import base_xy_yaw, held_object, inflate, is_free, plan_path
from tianji.control.skills.registry import register
from tianji.control.transforms import quat_to_matrix, wrap_angle
from tianji.control.world_state import WorldState

ARRIVED_POSITION = 0.10  # m
ARRIVED_YAW = 0.10  # rad
PATH_CLEARANCE = 0.42  # m from obstacles to the base centre along the path (0.25 m near its ends)
FINAL_RUN = 0.35  # m driven straight along the goal's heading at the end of a path
HEAD_FRAME = "xtion_rgb_optical_frame"
PAN, TILT = "head_1_joint", "head_2_joint"
LOOK_TOLERANCE = 0.06  # rad between the camera's optical axis and the target
FACE_DWELL = 0.6  # s the head holds still on the person's face at the end of approach_person
FACE_LOOKS = 3  # looks at most to find the face (each re-aims at what perception saw in the last)
FACE_SEARCH_STEP = 0.25  # m the aim moves up when the last look showed the body but not the head
HEAD_ABOVE_PELVIS = 0.6  # m from an upright adult's pelvis up to the head, to look at a head not seen yet
FACE_ABOVE_HEAD = 0.1  # m from an upright person's head frame (at the neck) up to the middle of the face
HELD_EXTENT = 0.05  # m a held object reaches beyond the grasp frame (a cup's radius)
APPROACH_RADII = (0.7, 0.8, 0.9, 1.0, 1.1)  # m from the chest, nearest first
FAR_RADII = (1.2, 1.3, 1.4, 1.5)  # m, only when what the hand holds out would otherwise reach the person


def _at_limit(spec: RobotSpec, obs: Observation, joint: str, margin: float = 0.02) -> bool:
    """Whether ``joint`` stands within ``margin`` rad of either of its position limits."""
    i = spec.index(joint)
    q = float(obs.joint_positions[i])
    return q <= float(spec.position_lower[i]) + margin or q >= float(spec.position_upper[i]) - margin


def has_pan_tilt(spec: RobotSpec) -> bool:
    """Whether the robot has TIAGo's pan/tilt head (the G1 has none), so the head camera can be pointed."""
    return PAN in spec.joint_names and TILT in spec.joint_names


def drive_path(goal: np.ndarray, obs: Observation, occupancy: OccupancyMap | None, timeout: float = 90.0) -> Controller:
    """A controller driving the base along a planned path to ``goal`` (x, y, yaw); PhaseError when none exists.

    The path ends with a straight run of :data:`FINAL_RUN` m along the goal's heading when that
    stretch is free, so the base arrives facing where it will work (a table, a bed) and its
    obstacle check looks where it is going.
    """
    start = base_xy_yaw(obs)
    waypoints: list[np.ndarray] = [goal[:2]]
    if occupancy is not None:
        heading = np.array([math.cos(goal[2]), math.sin(goal[2])])
        pre = goal[:2] - FINAL_RUN * heading
        near = inflate(occupancy, PATH_CLEARANCE - 0.17)
        run_free = all(is_free(near, occupancy, goal[:2] - t * heading) for t in np.linspace(0, FINAL_RUN, 8))
        far = math.hypot(*(pre - start[:2])) > 0.2 and math.hypot(*(goal[:2] - start[:2])) > FINAL_RUN
        via = pre if run_free and far else goal[:2]
        path = plan_path(occupancy, start[:2], via, PATH_CLEARANCE)
        if path is None:
            raise PhaseError(
                f"no free path from ({start[0]:.2f}, {start[1]:.2f}) to ({goal[0]:.2f}, {goal[1]:.2f})"
                f" with {PATH_CLEARANCE:.2f} m clearance; the goal is blocked or enclosed"
            )
        waypoints = path[1:] + ([goal[:2]] if via is pre else [])
        if not waypoints:  # already there (the path is just the start): one leg that turns to the goal's yaw
            waypoints = [goal[:2]]
    legs: list[Controller] = []
    for i, point in enumerate(waypoints):
        last = i == len(waypoints) - 1
        if last:
            yaw = float(goal[2])
        else:
            nxt = waypoints[i + 1]
            yaw = math.atan2(nxt[1] - point[1], nxt[0] - point[0])
        legs.append(
            BaseController(
                [float(point[0]), float(point[1]), yaw],
                occupancy=occupancy,
                robot_radius=ROBOT_RADIUS,
                max_linear=0.4,
                max_angular=0.8,
                position_tolerance=0.04 if last else 0.08,
                yaw_tolerance=0.04 if last else 0.25,
                stop_margin=0.03,
            )
        )
    return SequenceController(legs, timeout=timeout)


def _arrived(obs: Observation, goal: np.ndarray) -> tuple[bool, float, float]:
    pose = base_xy_yaw(obs)
    dist = math.hypot(pose[0] - goal[0], pose[1] - goal[1])
    dyaw = abs(wrap_angle(pose[2] - goal[2]))
    return dist <= ARRIVED_POSITION and dyaw <= ARRIVED_YAW, dist, dyaw


@dataclass
class NavigateParams:
    """Where to go."""

    place: str = field(metadata={"description": "a named place of the room", "names": "places"})


@register
class NavigateTo(PhasedSkill):
    """Drive to a named place's standing pose along a collision-free path."""

    name = "navigate_to"
    Params = NavigateParams
    description = "Drive the base to a named place (its standing pose), around furniture and people."
    robots = ("tiago",)
    effects = ("robot_at = {place}",)
    preconditions_doc = ("the place is in the world state", "the robot has a mobile base")
    success_doc = f"base within {ARRIVED_POSITION * 100:.0f} cm and {ARRIVED_YAW} rad of the place's pose"
    default_timeout = 120.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        if self.params.place not in world_state.places:
            return [f"place '{self.params.place}' is not in the world state (known: {', '.join(world_state.places)})"]
        if self.context.occupancy is None:
            return []
        goal = world_state.place(self.params.place).pose
        if not is_free(inflate(self.context.occupancy, PATH_CLEARANCE - 0.17), self.context.occupancy, goal[:2]):
            return [f"place '{self.params.place}' at ({goal[0]:.2f}, {goal[1]:.2f}) is occupied in the floor map"]
        return []

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        self._goal = np.asarray(world_state.place(self.params.place).pose, dtype=float)
        return [Phase("drive", lambda o, w: drive_path(self._goal, o, self.context.occupancy))]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        ok, dist, dyaw = _arrived(obs, self._goal)
        self.data.update(position_error=dist, yaw_error=dyaw)
        text = f"{dist * 100:.1f} cm and {dyaw:.3f} rad from '{self.params.place}'"
        return ok, (f"at {self.params.place}: " if ok else "stopped short: ") + text


@dataclass
class PersonParams:
    """Whom to approach."""

    person: str = field(metadata={"description": "who to go to", "names": "people"})
    distance: float = field(
        default=0.0, metadata={"description": "metres from the person's chest; 0 picks the nearest free spot"}
    )


@register
class ApproachPerson(PhasedSkill):
    """Go and stand beside a person, facing their chest, at the nearest free spot around them, and look at their head.

    The last phases turn the head camera to the person's face (for someone upright, the middle of
    the face above the head frame at the neck; not seen yet: where an upright person's face is, then
    higher while the body is cut off at the top of the image), so perception sees the face that
    ``bring_to_mouth`` needs.
    """

    name = "approach_person"
    Params = PersonParams
    description = (
        "Drive to a free spot beside the person (0.7-1.1 m from their chest; farther when the hand holds something"
        " out ahead) and face them."
    )
    robots = ("tiago",)
    effects = ("near({person}) = true", "robot_at = none")
    preconditions_doc = ("the person is in the world state", "a free spot around them is reachable")
    success_doc = "base at the chosen spot (10 cm, 0.1 rad), facing the person, chest within 1.2 m (or the spot's)"
    default_timeout = 120.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        if self.params.person not in world_state.people:
            return [f"person '{self.params.person}' is not in the world state (known: {', '.join(world_state.people)})"]
        return []

    def _spot(self, obs: Observation, ws: WorldState) -> np.ndarray:
        person = ws.person(self.params.person)
        chest = np.asarray(person.body_parts.get("chest", person.position), dtype=float)
        occ = self.context.occupancy
        here = base_xy_yaw(obs)
        if self.params.distance > 0:
            radii: tuple[float, ...] = (self.params.distance,)
        else:  # what the hand holds out must stop short of the arm hanging at the person's side
            forward, lateral, extent = self._hand_ahead(obs, ws)
            clear = PERSON_HALF_WIDTH + PERSON_GAP + extent
            radii = tuple(r for r in (*APPROACH_RADII, *FAR_RADII) if math.hypot(r - forward, lateral) >= clear)[:5]
        self._far = max(1.2, min(radii) + 0.15)  # the success check's bound on the distance to the chest
        blocked = inflate(occ, BASE_CLEARANCE + 0.02) if occ is not None else None
        best: tuple[float, np.ndarray] | None = None
        for radius in radii:
            for angle in np.linspace(-math.pi, math.pi, 24, endpoint=False):
                xy = chest[:2] + radius * np.array([math.cos(angle), math.sin(angle)])
                if blocked is not None and occ is not None and not is_free(blocked, occ, xy):
                    continue
                cost = 2.0 * radius + 0.3 * float(np.linalg.norm(xy - here[:2]))
                if best is None or cost < best[0]:
                    best = (cost, np.array([xy[0], xy[1], math.atan2(chest[1] - xy[1], chest[0] - xy[0])]))
        if best is None:
            raise PhaseError(f"no free spot within {max(radii):.1f} m of '{self.params.person}' for the base")
        return best[1]

    def _hand_ahead(self, obs: Observation, ws: WorldState) -> tuple[float, float, float]:
        """(forward, lateral, extent) m: where the hand is in the base frame, and how far beyond it what it holds
        reaches (a carried cup is about 0.56 m straight ahead; the spoon and the pill box are carried off to the right).
        """
        kin = self.context.kinematics
        if kin is None or GRASP_FRAME not in kin.frames:
            return ROBOT_RADIUS, 0.0, 0.0
        hand = kin.fk(obs.joint_positions.astype(float), GRASP_FRAME)[:3, 3]
        return float(hand[0]), float(hand[1]), HELD_EXTENT if held_object(ws, obs) is not None else 0.0

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        self._far = 1.2

        def drive(o: Observation, w: WorldState) -> Controller:
            self._goal = self._spot(o, w)
            self.data["spot"] = self._goal
            return drive_path(self._goal, o, self.context.occupancy)

        aims: list[np.ndarray] = []  # where the head looked so far, for the looks that find the face

        def face(o: Observation, w: WorldState) -> Controller | None:
            if not has_pan_tilt(self.spec) or self.context.kinematics is None:
                return None
            person = w.person(self.params.person)
            upright = person.posture.upright
            if person.head is not None:
                # the head frame is at the neck: aimed there from close by, the top of the head leaves the image
                point = np.add(person.head, (0.0, 0.0, FACE_ABOVE_HEAD if upright else 0.0))
                if aims and np.linalg.norm(aims[-1] - point) < 0.05:
                    return None  # already looking at the face
            elif aims:  # the last look did not show the head: it is above the image
                point = aims[-1] + np.array([0.0, 0.0, FACE_SEARCH_STEP])
            else:  # never seen: where an upright person's head is
                rise = HEAD_ABOVE_PELVIS + FACE_ABOVE_HEAD if upright else 0.1
                point = np.add(person.position, (0.0, 0.0, rise))
            aims.append(point)
            turn = turn_head(self.kinematics, self.spec, o, point)
            return SequenceController([turn, HoldController(FACE_DWELL)])  # perception gets still frames of the face

        looks = [Phase("look at them", face) for _ in range(FACE_LOOKS)]
        return [Phase("drive", drive), *looks]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        ok, dist, _dyaw = _arrived(obs, self._goal)
        person = world_state.person(self.params.person)
        chest = np.asarray(person.body_parts.get("chest", person.position), dtype=float)
        pose = base_xy_yaw(obs)
        gap = math.hypot(chest[0] - pose[0], chest[1] - pose[1])
        self.data.update(position_error=dist, person_distance=gap)
        if not ok:
            return False, f"stopped {dist * 100:.0f} cm from the spot beside '{self.params.person}'"
        if gap > self._far:
            return False, f"'{self.params.person}' moved: now {gap:.2f} m away"
        return True, f"beside '{self.params.person}' ({person.posture.value}), {gap:.2f} m from the chest"


@dataclass
class LookParams:
    """What to look at."""

    target: str = field(
        metadata={
            "description": "an object, a place, a person (their head), or person.part (e.g. patient.mouth)",
            "names": "objects",
            "extra_names": ("patient", "patient.mouth", "patient.chest", "dining_table", "bedside"),
        }
    )


def turn_head(kin: Kinematics, spec: RobotSpec, obs: Observation, point: np.ndarray) -> JointTrajectoryController:
    """A head move that aims the camera's optical axis at ``point``."""
    return JointTrajectoryController(spec, head_angles(kin, spec, obs, point), velocity_scale=0.5, tolerance=0.02)


def head_angles(kin: Kinematics, spec: RobotSpec, obs: Observation, point: np.ndarray) -> dict[str, float]:
    """Pan and tilt that aim the head camera's optical axis at ``point`` (a few fixed-point steps on the kinematics)."""
    q = obs.joint_positions.astype(float).copy()
    ip, it = spec.index(PAN), spec.index(TILT)
    base = pose7(base_xy_yaw(obs), float(obs.base_pose[2]))
    for _ in range(8):
        m = kin.fk(q, HEAD_FRAME, base)
        d = m[:3, :3].T @ (point - m[:3, 3])
        q[ip] = float(np.clip(q[ip] - math.atan2(d[0], d[2]), spec.position_lower[ip], spec.position_upper[ip]))
        q[it] = float(
            np.clip(q[it] - math.atan2(d[1], math.hypot(d[0], d[2])), spec.position_lower[it], spec.position_upper[it])
        )
    return {PAN: q[ip], TILT: q[it]}


def look_point(ws: WorldState, target: str) -> np.ndarray:
    """World point for a look_at target name; PhaseError lists what is known."""
    name, _, part = target.partition(".")
    if name in ws.people:
        person = ws.person(name)
        if not part or part == "head":
            return np.asarray(person.head if person.head is not None else person.position, dtype=float)
        if part == "mouth" and person.mouth is not None:
            return np.asarray(person.mouth, dtype=float)
        if part in person.body_parts:
            return np.asarray(person.body_parts[part], dtype=float)
        raise PhaseError(f"person '{name}' has no part '{part}' (known: mouth, {', '.join(person.body_parts)})")
    if target in ws.objects:
        return np.asarray(ws.object(target).position, dtype=float) + np.array([0.0, 0.0, 0.04])
    if target in ws.places:
        place = ws.place(target)
        if place.center is not None:
            return np.array([place.center[0], place.center[1], place.surface_height or 0.5])
        return np.array([place.pose[0], place.pose[1], 0.5])
    known = [*ws.objects, *ws.places, *ws.people]
    raise PhaseError(f"nothing named '{target}' to look at (known: {', '.join(known)})")


def _axis_angle(obs: Observation, point: np.ndarray) -> float:
    cam = obs.ee_poses.get("head")
    if cam is None:
        return math.inf
    axis = quat_to_matrix(cam[3:].astype(float))[:, 2]
    d = point - cam[:3].astype(float)
    return float(math.acos(np.clip(axis @ d / max(np.linalg.norm(d), 1e-9), -1.0, 1.0)))


@register
class LookAt(PhasedSkill):
    """Point the head (and its camera) at an object, place, person or body part."""

    name = "look_at"
    Params = LookParams
    description = "Turn the head so its camera looks at an object, a place, a person's head or a body part."
    robots = ("tiago",)
    preconditions_doc = ("the target is in the world state", "the robot has head pan/tilt joints")
    success_doc = f"the head camera's optical axis within {LOOK_TOLERANCE} rad of the target"
    default_timeout = 10.0

    def preconditions(self, world_state: WorldState, obs: Observation) -> list[str]:
        unmet = []
        if not has_pan_tilt(self.spec):
            unmet.append(f"robot '{self.spec.name}' has no head pan/tilt joints ({PAN}, {TILT})")
        if self.context.kinematics is None:
            unmet.append("no kinematics in the skill context")
        try:
            look_point(world_state, self.params.target)
        except PhaseError as exc:
            unmet.append(str(exc))
        return unmet

    def phases(self, obs: Observation, world_state: WorldState) -> list[Phase]:
        def aim(o: Observation, w: WorldState) -> Controller:
            self._point = look_point(w, self.params.target)
            return turn_head(self.kinematics, self.spec, o, self._point)

        return [Phase("turn head", aim)]

    def check_success(self, obs: Observation, world_state: WorldState) -> tuple[bool, str]:
        point = look_point(world_state, self.params.target)
        angle = _axis_angle(obs, point)
        self.data["angle_error"] = angle
        if angle > LOOK_TOLERANCE:
            limits = [joint for joint in (PAN, TILT) if _at_limit(self.spec, obs, joint)]
            if limits:
                return False, (
                    f"'{self.params.target}' is beyond the head's reach from where the robot stands: turned to the"
                    f" limit{'s' if len(limits) > 1 else ''} of {' and '.join(limits)}, the camera still points"
                    f" {angle:.2f} rad away from it"
                )
            return False, (
                f"the camera points {angle:.2f} rad away from where the world state now puts"
                f" '{self.params.target}' (the head was aimed where it was seen when the turn began)"
            )
        return True, f"looking at '{self.params.target}' ({angle:.3f} rad off axis)"
