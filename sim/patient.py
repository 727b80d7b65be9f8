"""The simulated patient's body: hold it where it settled, and a scripted fall onto the floor.

The human model has no balance controller: sitting up in bed or standing, it slumps within
seconds. :func:`pin` holds its pelvis where it settled with a force-limited fixed constraint
(the limbs stay free, so contacts with the robot still register). :func:`fall` puts it lying
on its back on the floor beside where it stood, head towards the fall direction: a scripted
fall (a teleport), not a simulated collapse, so every seed gives a clean, reproducible fallen
pose that perception has to detect from the camera.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as pb

from tianji.sim.sim_robot import SimRobot
from tianji.sim.world import World

PIN_FORCE = 2000.0  # N: holds a 70 kg body against gravity and a robot's push, gives way to a hard collision
FALL_DISTANCE = 0.3  # m, pelvis from the standing spot along the fall direction


def pin(world: World, patient: SimRobot, max_force: float = PIN_FORCE) -> int:
    """Hold the patient's pelvis at its current pose; returns the constraint id (move it with :func:`place`)."""
    c = world.client
    pos, quat = world.base_pose(patient.body_id)
    inertial = c.getDynamicsInfo(patient.body_id, -1)
    base_in_com = pb.invertTransform(inertial[3], inertial[4])  # the constraint acts on the COM frame
    cid = c.createConstraint(
        patient.body_id,
        -1,
        -1,
        -1,
        pb.JOINT_FIXED,
        [0, 0, 0],
        base_in_com[0],
        list(pos),
        parentFrameOrientation=base_in_com[1],
        childFrameOrientation=list(quat),
    )
    c.changeConstraint(cid, maxForce=max_force)
    return cid


def place(
    world: World,
    patient: SimRobot,
    position: np.ndarray,
    quat: np.ndarray,
    joints: np.ndarray,
    cid: int,
    max_force: float = PIN_FORCE,
) -> None:
    """Teleport the pelvis (base frame) to a pose at rest, the joints to ``joints``, and move the pin there."""
    c = world.client
    patient.reset(joints)
    info = c.getDynamicsInfo(patient.body_id, -1)
    com_pos, com_quat = pb.multiplyTransforms(list(position), list(quat), info[3], info[4])
    c.resetBasePositionAndOrientation(patient.body_id, com_pos, com_quat)
    c.resetBaseVelocity(patient.body_id, [0, 0, 0], [0, 0, 0])
    if cid >= 0:
        c.changeConstraint(cid, list(position), list(quat), maxForce=max_force)


def fall(
    world: World,
    patient: SimRobot,
    direction: float,
    cid: int,
    limbs: np.ndarray | None = None,
    pelvis_xy: np.ndarray | None = None,
    max_force: float = PIN_FORCE,
) -> np.ndarray:
    """The patient falls from where it stands towards ``direction`` (rad, world yaw); returns the pelvis position.

    ``limbs`` (4,) spreads the shoulders and hips (rad) for a less tidy pose. ``pelvis_xy`` puts the
    fallen pelvis there (default: :data:`FALL_DISTANCE` from where it stands, along the fall).
    """
    if pelvis_xy is None:
        pelvis_now, _ = world.base_pose(patient.body_id)
        axis = np.array([math.cos(direction), math.sin(direction)])
        pelvis = np.asarray(pelvis_now[:2], dtype=float) + FALL_DISTANCE * axis
    else:
        pelvis = np.asarray(pelvis_xy, dtype=float)
    q = patient.start_positions.copy()
    spread = np.zeros(4) if limbs is None else np.asarray(limbs, dtype=float)
    for joint, value in zip(("right_shoulder_X", "left_shoulder_X", "right_hip_X", "left_hip_X"), spread, strict=True):
        q[patient.spec.index(joint)] = abs(float(value))
    lying = patient.description.preset("lying").spawn_rpy  # head towards -x: turn it to point along the fall
    quat = pb.multiplyTransforms(
        (0, 0, 0), pb.getQuaternionFromEuler((0, 0, direction + math.pi)), (0, 0, 0), pb.getQuaternionFromEuler(lying)
    )[1]
    position = np.array([pelvis[0], pelvis[1], 0.5])
    place(world, patient, position, np.asarray(quat), q, cid, max_force)
    c, body = world.client, patient.body_id
    lowest = min(c.getAABB(body, link)[0][2] for link in range(-1, c.getNumJoints(body)))
    position[2] -= lowest - 0.002  # resting on the floor
    place(world, patient, position, np.asarray(quat), q, cid, max_force)
    return position
