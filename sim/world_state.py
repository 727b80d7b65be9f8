"""Ground-truth WorldState from a simulated scene: what perception will estimate, read off the simulator."""

from __future__ import annotations

import numpy as np
import pybullet as pb

from tianji.control.world_state import ObjectState, PersonState, Posture, WorldState
from tianji.sim.scene import Scene
from tianji.sim.sim_robot import SimRobot

# The human model is y-up (ISB): the mouth sits forward (+x) and slightly up (+y) of the head frame.
MOUTH_IN_HEAD = (0.10, 0.06, 0.0)
BODY_PARTS = {  # name -> link of the human model
    "left_forearm": "left_lowerarm",
    "right_forearm": "right_lowerarm",
    "left_upper_arm": "left_upperarm",
    "right_upper_arm": "right_upperarm",
    "left_hand": "left_hand",
    "right_hand": "right_hand",
    "chest": "middle_thorax",
    "head": "middle_head",
}
STANDING_PELVIS_HEIGHT = 0.8  # m, pelvis above this with the head above it: standing
UPRIGHT_HEAD_RISE = 0.35  # m, head this much above the pelvis: upright (sitting or standing)


def person_state(scene: Scene, label: str, robot: SimRobot) -> PersonState:
    """Posture, head, mouth and body-part positions of a human model in the scene."""
    pelvis = robot.link_pose("middle_pelvis")[:3].astype(float)
    head_pose = robot.link_pose("middle_head").astype(float)
    head = head_pose[:3]
    mouth = np.array(pb.multiplyTransforms(head_pose[:3], head_pose[3:], MOUTH_IN_HEAD, (0, 0, 0, 1))[0])
    parts = {part: robot.link_pose(link)[:3].astype(float) for part, link in BODY_PARTS.items()}
    return PersonState(
        name=label,
        position=pelvis,
        posture=classify_posture(scene, pelvis, head),
        head=head,
        mouth=mouth,
        body_parts=parts,
        timestamp=scene.world.time,
    )


def classify_posture(scene: Scene, pelvis: np.ndarray, head: np.ndarray) -> Posture:
    """Posture from pelvis and head heights, and whether the body is over the bed."""
    if head[2] - pelvis[2] > UPRIGHT_HEAD_RISE:
        return Posture.STANDING if pelvis[2] > STANDING_PELVIS_HEIGHT else Posture.SITTING
    bed = scene.objects.get("bed")
    if bed is not None:
        lo, hi = (np.array(v) for v in scene.world.client.getAABB(bed.body_id))
        if lo[0] <= pelvis[0] <= hi[0] and lo[1] <= pelvis[1] <= hi[1] and pelvis[2] > 0.3:
            return Posture.LYING_IN_BED
    return Posture.FALLEN


def from_scene(scene: Scene, robot: str = "tiago") -> WorldState:
    """Everything a care skill needs, from the simulator's ground truth."""
    objects = {}
    for name, obj in scene.objects.items():
        pos, quat = obj.pose()
        objects[name] = ObjectState(name, pos, quat, 1.0, scene.world.time, "ground_truth")
    people = {
        label: person_state(scene, label, r) for label, r in scene.robots.items() if r.description.name == "human"
    }
    robot_pose = np.zeros(3)
    if robot in scene.robots:
        base = scene.robots[robot].observe().base_pose.astype(float)
        robot_pose = np.array([base[0], base[1], pb.getEulerFromQuaternion(base[3:])[2]])
    return WorldState(scene.world.time, objects, dict(scene.places), people, robot_pose, "ground_truth")
