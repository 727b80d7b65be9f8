"""Keep a held object's joint-space swing above a person.

Arm skills move to a pose near a person (in front of the mouth, above a hand) in joint space: the
joint trajectory follows the straight line between the two postures, and the hand between them can
pass far lower than at either end. Over a person that is where their arms and lap are: a swing that
dipped pressed a lying patient's upper arm with 74 N (drink_assist, seed 2), another a sitting
patient's forearm with 11 N (medication_reminder, seed 0). These helpers sample the swing with
forward kinematics, measure how far the held object's points come under a floor over the person's
body, and find a higher way round (via the goal pose raised, or a waypoint halfway across above
both ends) when the straight swing dips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tianji.control.skills.arm import GRASP_FRAME, TiagoArm, pose7
from tianji.control.skills.geometry import ObjectModel
from tianji.control.world_state import PersonState, Posture

SWING_SAMPLES = 16  # postures sampled along a swing
SWING_DIP = 0.02  # m the held object may go below its lowest point at the swing's ends (clear of the person there)
BODY_LENGTH = 1.9  # m from a lying person's head along the body (through its centre) to past the feet
BODY_HALF_WIDTH = 0.45  # m: a lying person's shoulders and the arms lying beside the body
SEATED_REACH = 0.8  # m around a person who is not lying (centre and head): lap, legs stretched on a bed, arms
SWING_RAISES = (0.15, 0.25)  # m: a swing that dips goes first to its goal pose raised by these, then down


@dataclass(frozen=True)
class SwingCheck:
    """What a swing must stay clear of: a person, a cap on the floor and a zone left to the goal's own checks.

    ``cap`` (m, world height) bounds the floor from above (e.g. a lying person's mouth height plus a
    clearance: higher ends do not raise the floor past it); ``exempt`` and ``exempt_radius``: points
    horizontally this close to ``exempt`` (the mouth) are not checked, the goal pose's own planning
    keeps the object off the face there.
    """

    person: PersonState
    cap: float = math.inf
    exempt: np.ndarray | None = None
    exempt_radius: float = 0.0

    def over_body(self, p: np.ndarray) -> bool:
        """Whether a world point is horizontally over the person's body (and outside the exempt zone)."""
        if self.exempt is not None and np.linalg.norm(p[:2] - self.exempt[:2]) < self.exempt_radius:
            return False
        centre = np.asarray(self.person.position, dtype=float)[:2]
        head = centre if self.person.head is None else np.asarray(self.person.head, dtype=float)[:2]
        if self.person.posture is Posture.LYING_IN_BED:
            along = centre - head
            body = BODY_LENGTH * along / max(float(np.linalg.norm(along)), 1e-6)
            t = float(np.clip((p[:2] - head) @ body / (body @ body), 0.0, 1.0))
            return float(np.linalg.norm(p[:2] - (head + t * body))) <= BODY_HALF_WIDTH
        return min(float(np.linalg.norm(p[:2] - centre)), float(np.linalg.norm(p[:2] - head))) <= SEATED_REACH


def object_points(model: ObjectModel) -> np.ndarray:
    """(k, 4) homogeneous points along a held object's axis in its base frame: footprint, middle, lip or top."""
    top = model.lip or (0.0, 0.0, model.height)
    return np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, model.height / 2, 1.0], [*top, 1.0]])


def swing_margin(
    arm: TiagoArm,
    q0: np.ndarray,
    q1: np.ndarray,
    base: np.ndarray,
    obj_in_grip: np.ndarray,
    local: np.ndarray,
    check: SwingCheck,
) -> float:
    """Smallest height margin (m) of the held object's ``local`` points over the floor along the swing q0 -> q1.

    The floor is the lower of ``check.cap`` and :data:`SWING_DIP` under the object's lowest point at
    either end (where it is now, and the goal that its own planning cleared). Only points over the
    person's body count (inf when none is). Negative: the swing dips that far under the floor there.
    """

    def points(q: np.ndarray) -> np.ndarray:
        g = arm.kin.fk(q, GRASP_FRAME, pose7(base))
        return (g @ obj_in_grip @ local.T).T[:, :3]

    between = np.linspace(0.0, 1.0, SWING_SAMPLES + 1)[1:-1]
    samples = [points(q0), *(points(q0 + s * (q1 - q0)) for s in between), points(q1)]  # each posture's FK once
    floor = min(check.cap, min(float(samples[0][:, 2].min()), float(samples[-1][:, 2].min())) - SWING_DIP)
    margin = math.inf
    for p in np.concatenate(samples[1:]):
        if check.over_body(p):
            margin = min(margin, float(p[2]) - floor)
    return margin


def swing_path(
    arm: TiagoArm,
    q0: np.ndarray,
    goal: np.ndarray,
    q1: np.ndarray,
    base: np.ndarray,
    obj_in_grip: np.ndarray,
    local: np.ndarray,
    check: SwingCheck,
) -> list[np.ndarray] | None:
    """Postures to move through, in order, from ``q0`` to the pose ``goal`` ((7,), first solved as ``q1``) so that
    the held object stays above the person; the last reaches ``goal``. None when no way found keeps clear.

    Tried in turn: straight to ``q1``; via ``goal`` raised by one of :data:`SWING_RAISES` (solved near ``q1``,
    then a short way down); via a waypoint halfway across above both ends (solved from ``q0``), then ``goal``
    solved again from it (an IK branch near the waypoint's: ``q1`` may lie on another, far away).
    """

    def clear(*postures: np.ndarray) -> bool:
        legs = zip((q0, *postures[:-1]), postures, strict=True)
        return all(swing_margin(arm, a, b, base, obj_in_grip, local, check) >= 0 for a, b in legs)

    if clear(q1):
        return [q1]
    for h in SWING_RAISES:  # (a joint move may end at a limit: the targets stay inside)
        q_high = arm.ik(np.r_[goal[:3] + np.array([0.0, 0.0, h]), goal[3:]], q1, base, local=True)
        if q_high is not None and clear(q_high, q1):
            return [q_high, q1]
    q_mid = _high_waypoint(arm, q0, goal, base, obj_in_grip, local, check)
    if q_mid is None:
        return None
    for q_end in (arm.ik(goal, q_mid, base, local=True), q1):
        if q_end is not None and swing_margin(arm, q_mid, q_end, base, obj_in_grip, local, check) >= 0:
            return [q_mid, q_end]
    return None


def _high_waypoint(
    arm: TiagoArm,
    q0: np.ndarray,
    goal: np.ndarray,
    base: np.ndarray,
    obj_in_grip: np.ndarray,
    local: np.ndarray,
    check: SwingCheck,
) -> np.ndarray | None:
    """A posture halfway across from the hand's pose now to ``goal``, the first of :data:`SWING_RAISES` above
    both, hand turned as at ``goal``, that a clear swing from ``q0`` reaches; None if none."""
    start = arm.kin.fk(q0, GRASP_FRAME, pose7(base))[:3, 3]
    top = max(float(start[2]), float(goal[2])) + SWING_RAISES[0]
    q_mid = arm.ik(np.r_[(start[:2] + goal[:2]) / 2, top, goal[3:]], q0, base)
    if q_mid is None or swing_margin(arm, q0, q_mid, base, obj_in_grip, local, check) < 0:
        return None
    return q_mid
