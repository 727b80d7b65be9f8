"""Simulator-side wiring of a robot in a care scene: grasp assist and the patient-contact force sensor.

The in-process skill session (``tianji skill``) and the bridge's simulator driver
(``tianji bridge serve --robot "sim:tiago?scene=care_room"``) both call :func:`wire_care_robot`,
so a skill meets the same physics whether it runs in process or through the bridge: TIAGo's
planning-volume box stops colliding, objects resting on furniture can be grasped (the
simulator's grasp assist, see :mod:`tianji.sim.grasp`), and the safety filter gets the contact
force between the patient and the robot plus what it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tianji.sim.grasp import GraspAssist, drop_link_collisions, person_contact_force
from tianji.sim.scene import Scene
from tianji.sim.sim_robot import SimRobot

PATIENT_LABEL = "patient"
PERSON_FORCE_LIMIT = 10.0  # N, the care scenes' limit on force against the patient


@dataclass
class CareWiring:
    """What :func:`wire_care_robot` set up: the grasp assist (TIAGo only) and the person-force sensor."""

    assist: GraspAssist | None
    person_force: Callable[[], float]


def wire_care_robot(scene: Scene, robot: SimRobot) -> CareWiring:
    """Wire ``robot`` (a robot of ``scene``) for care skills; a scene without a patient reads 0 N."""
    world = scene.world
    patient = scene.robots.get(PATIENT_LABEL)
    assist = None
    if robot.spec.name == "tiago":
        drop_link_collisions(world, robot)
        on_furniture = {name: o.body_id for name, o in scene.objects.items() if not o.fixed and o.position()[2] > 0.1}
        assist = GraspAssist(world, robot, on_furniture)

    def person_force() -> float:
        return 0.0 if patient is None or patient is robot else person_contact_force(world, robot, patient, assist)

    return CareWiring(assist, person_force)
