"""Simulator-side grasp assist ("magic grasp"): a closing gripper near an object attaches it with a fixed constraint.

Why: grasping with TIAGo's Hey5 hand in PyBullet is unreliable (thin under-actuated fingers
pass through or push away objects), and grasp physics is not what the care skills are
about. Like many manipulation benchmarks, the simulator therefore *assists* the grasp:
:class:`GraspAssist` watches the robot's **commanded** gripper opening; when it is closing
below ``close_below`` and a graspable object touches the hand or has its centre within
``distance`` of the grasp frame, the object is welded to the hand with a fixed constraint
at its current relative pose (and stops colliding with the robot); when the commanded
opening rises above ``open_above`` the constraint is removed and the object falls free.

This is a simulation shortcut, said plainly: skills do not know about it. They command the
gripper as on hardware and check success from what they observe (the object follows the
gripper, is lifted off the table). On a real robot the hand's own grasp does the work.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

import numpy as np
import pybullet as pb

from tianji.control.errors import AssetError
from tianji.sim.sim_robot import SimRobot
from tianji.sim.world import World

log = logging.getLogger(__name__)

SAFETY_BOX_LINK = "hand_safety_box"


def drop_link_collisions(world: World, robot: SimRobot, link: str = SAFETY_BOX_LINK) -> bool:
    """Make one link of ``robot`` collide with nothing (and hide it); False when the robot has no such link.

    TIAGo's URDF has a 20 x 11.5 x 18 cm collision box around the hand (``hand_safety_box``, PAL's
    planning volume, not a physical part) that bumps into everything; a stopgap until
    ``sim/urdf.py`` drops it for every user.
    """
    index = robot._link_index.get(link)
    if index is None or index < 0:
        return False
    world.client.setCollisionFilterGroupMask(robot.body_id, index, 0, 0)
    world.client.changeVisualShape(robot.body_id, index, rgbaColor=[0, 0, 0, 0])
    return True


class GraspAssist:
    """Attaches graspable ``objects`` ({name: body id} or body ids) to ``robot``'s ``link`` on a closing gripper.

    Registered as a World physics hook; checks once per control step. ``held`` names the
    attached object (or None). ``hand_links`` (regex) are the links whose contact counts.
    ``grasp_window`` (s): an object is attached only while the commanded opening is falling or
    this long after it stopped falling, so a closed hand moving past an object does not pick it
    up. ``max_force`` (N) is the constraint's strength.
    """

    def __init__(
        self,
        world: World,
        robot: SimRobot,
        objects: Mapping[str, int] | Iterable[int],
        link: str = "hand_grasping_frame",
        *,
        close_below: float = 0.6,
        open_above: float = 0.7,
        distance: float = 0.07,
        hand_links: str = r"hand_.*",
        grasp_window: float = 1.5,
        max_force: float = 300.0,
    ) -> None:
        if not robot.description.gripper:
            raise AssetError(f"robot '{robot.spec.name}' has no gripper; GraspAssist needs one")
        self.world, self.robot = world, robot
        items = objects.items() if isinstance(objects, Mapping) else ((str(b), b) for b in objects)
        self.objects: dict[str, int] = {str(k): int(v) for k, v in items}
        if link not in robot._link_index:
            raise AssetError(f"robot '{robot.spec.name}' has no link '{link}' for the grasp frame")
        self.link = robot._link_index[link]
        self.close_below, self.open_above = close_below, open_above
        self.distance = distance
        self.grasp_window = grasp_window
        self.max_force = max_force
        self.hand_links = {i for name, i in robot._link_index.items() if re.fullmatch(hand_links, name) and i >= 0}
        spec = robot.spec
        self._gripper: list[tuple[int, float, float]] = []
        for pattern, (opened, closed) in robot.description.gripper.items():
            for i, joint in enumerate(spec.joint_names):
                if re.fullmatch(pattern, joint):
                    lo, hi = spec.position_lower[i], spec.position_upper[i]
                    o, c = float(np.clip(opened, lo, hi)), float(np.clip(closed, lo, hi))
                    if o != c:
                        self._gripper.append((i, o, c))
        self.held: str | None = None
        self._constraint: int | None = None
        self._last_opening = self.commanded_opening()
        self._falling_until = -1.0
        self._substep = 0
        self.attach_count = 0
        world.add_physics_hook(self._hook)

    def commanded_opening(self) -> float:
        """The opening (0 closed .. 1 open) the robot's gripper joints are commanded to."""
        targets = self.robot.position_targets
        fractions = [(targets[i] - c) / (o - c) for i, o, c in self._gripper]
        return float(np.clip(np.mean(fractions), 0.0, 1.0)) if fractions else 1.0

    def held_body(self) -> int | None:
        """Body id of the held object, or None."""
        return None if self.held is None else self.objects[self.held]

    def _hook(self) -> None:
        self._substep += 1
        if self._substep % self.world.config.control_decimation:
            return
        opening = self.commanded_opening()
        now = self.world.time
        if opening < self._last_opening - 1e-6:
            self._falling_until = now + self.grasp_window
        self._last_opening = opening
        if self.held is not None:
            if opening > self.open_above:
                self.release()
            return
        if opening < self.close_below and now <= self._falling_until:
            name = self._candidate()
            if name is not None:
                self.attach(name)

    def _grasp_position(self) -> np.ndarray:
        return np.array(self.world.client.getLinkState(self.robot.body_id, self.link, computeForwardKinematics=True)[4])

    def _candidate(self) -> str | None:
        """The graspable object touching the hand or nearest the grasp frame within ``distance``."""
        c = self.world.client
        grasp = self._grasp_position()
        best, best_d = None, self.distance
        for name, body in self.objects.items():
            pos = np.array(c.getBasePositionAndOrientation(body)[0])  # centre of mass
            d = float(np.linalg.norm(pos - grasp))
            if d > 0.25:
                continue
            touching = any(p[3] in self.hand_links for p in c.getContactPoints(bodyA=self.robot.body_id, bodyB=body))
            if touching:
                d = min(d, 0.5 * self.distance)
            if d <= best_d:
                best, best_d = name, d
        return best

    def attach(self, name: str) -> None:
        """Weld object ``name`` to the grasp frame at its current relative pose."""
        if self.held is not None:
            self.release()
        c, body = self.world.client, self.objects[name]
        hand = c.getLinkState(self.robot.body_id, self.link, computeForwardKinematics=True)
        obj = c.getBasePositionAndOrientation(body)
        inv = pb.invertTransform(hand[0], hand[1])  # constraint frames are in the link's centre-of-mass frame
        rel_pos, rel_quat = pb.multiplyTransforms(inv[0], inv[1], obj[0], obj[1])
        self._constraint = c.createConstraint(
            self.robot.body_id, self.link, body, -1, pb.JOINT_FIXED, [0, 0, 0], rel_pos, [0, 0, 0], rel_quat
        )
        c.changeConstraint(self._constraint, maxForce=self.max_force)
        for link in range(-1, c.getNumJoints(self.robot.body_id)):
            c.setCollisionFilterPair(self.robot.body_id, body, link, -1, 0)
        self.held = name
        self.attach_count += 1
        log.info("grasp assist: '%s' attached to the hand", name)

    def release(self) -> None:
        """Remove the constraint; the object collides with the robot again."""
        if self.held is None:
            return
        c, body = self.world.client, self.objects[self.held]
        if self._constraint is not None:
            c.removeConstraint(self._constraint)
        for link in range(-1, c.getNumJoints(self.robot.body_id)):
            c.setCollisionFilterPair(self.robot.body_id, body, link, -1, 1)
        log.info("grasp assist: '%s' released", self.held)
        self.held, self._constraint = None, None

    def close(self) -> None:
        """Release any object and stop watching."""
        self.release()
        self.world.remove_physics_hook(self._hook)


def person_contact_force(world: World, robot: SimRobot, person: SimRobot, assist: GraspAssist | None = None) -> float:
    """Contact force (N) between a person and the robot plus the object it holds: the safety filter's input."""
    force = world.contact_force(robot.body_id, person.body_id)
    held = assist.held_body() if assist is not None else None
    if held is not None:
        force += world.contact_force(held, person.body_id)
    return force
