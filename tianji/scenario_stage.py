"""The simulated side of a care scenario: the room, the patient, the scripted events and the ground truth.

A :class:`ScenarioStage` is what a scenario needs from the simulator and what a real robot
cannot give: the care room loaded with the scenario's patient (held where she settled, see
:mod:`tianji.sim.patient`), the robot at its start pose holding what the scenario says, the
scripted falls at their times, and the truth its verdict is judged on (the force on the patient,
where the robot stands). :class:`tianji.scenario_run.ScenarioRun` drives one in-process; the
``scenario`` bridge driver (:mod:`tianji.scenario_driver`, ``tianji bridge serve
--robot scenario:NAME``) serves one to a remote controller, which reads the truth with the protocol's
``scenario`` request (``bridge/PROTOCOL.md``).

Scenario time starts at :meth:`ScenarioStage.start` (in-process: at once; served: when the
controller asks), so a controller that connects late does not miss a fall.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import cv2
import numpy as np

from tianji.scenario import Scenario

PATIENT = "patient"
ROOM_SIZE = (480, 360)  # room camera image size (w, h), as in the demo's video
FORCE_SAMPLE_EVERY = 6  # control ticks between force samples for the timeline (every tick with contact)


class ScenarioStage:
    """The care room set up for ``scenario`` with ``seed`` (module doc); ``tick()`` after every control step."""

    def __init__(self, scenario: Scenario, *, seed: int = 0, gui: bool = False) -> None:
        from tianji.cli_skills import care_room_config, care_session
        from tianji.sim import patient as patient_body

        self.scenario = s = scenario
        self.seed = seed
        keep = ("tiago", PATIENT, "g1") if s.robot == "g1" else ("tiago", PATIENT)
        config = care_room_config(s.robot, keep)
        entry = config["robots"][PATIENT]
        entry.update({k: v for k, v in s.patient.items() if k in ("preset", "position", "yaw")})
        pin: dict[str, int] = {}

        def hold_patient(scene: Any) -> None:
            pin["cid"] = patient_body.pin(scene.world, scene.robots[PATIENT])

        self.session = care_session(
            s.robot,
            seed=seed,
            randomize=s.randomize,
            gui=gui,
            config=config,
            fast_physics=s.robot != "g1",  # the standing humanoid needs the full 240 Hz
            after_build=hold_patient,
        )
        try:
            self.pin = pin["cid"]
            self.world = self.session.world
            self.patient = self.session.scene.robots[PATIENT]
            if s.start is not None:
                self.session.start_at(s.start)
            if s.holding:
                self.session.give(s.holding)
        except BaseException:
            self.session.close()
            raise
        cam = self.session.scene.camera("room")
        self._room_pose = cam.pose
        self._room_intr = dataclasses.replace(cam.intrinsics, width=ROOM_SIZE[0], height=ROOM_SIZE[1])
        self.t0: float | None = None
        self._falls = list(s.falls)
        self.fell_at: float | None = None  # scenario s of the (first) fall
        self.marks: list[tuple[float, str]] = []  # (scenario s, what happened)
        self.forces: list[tuple[float, float]] = []  # (scenario s, N) sampled for the timeline
        self.max_force = 0.0
        self.force = 0.0
        self._ticks = 0

    # ------------------------------------------------------------- clock
    def start(self) -> None:
        """Start scenario time now: the falls are timed from here, and the force record starts afresh."""
        self.t0 = self.world.time
        self._falls = list(self.scenario.falls)
        self.fell_at, self.marks, self.forces = None, [], []
        self.max_force = self.force = 0.0
        self._ticks = 0

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self.t0 is not None

    @property
    def now(self) -> float:
        """Simulated seconds since :meth:`start` (0 before it)."""
        return 0.0 if self.t0 is None else self.world.time - self.t0

    def tick(self) -> None:
        """After a control step: track the force on the patient, and make the scripted falls happen on time."""
        if self.t0 is None:
            return
        self._ticks += 1
        self.force = force = self.person_force()
        self.max_force = max(self.max_force, force)
        if self._ticks % FORCE_SAMPLE_EVERY == 0 or force > 0:
            self.forces.append((self.now, force))
        while self._falls and self.now >= self._falls[0].at:
            self._fall(self._falls.pop(0).direction)

    def _fall(self, direction: float) -> None:
        from tianji.sim import patient as patient_body

        patient_body.fall(self.world, self.patient, direction, self.pin)
        if self.fell_at is None:
            self.fell_at = self.now
        self.marks.append((self.now, "the patient falls"))

    # ------------------------------------------------------------- truth
    def person_force(self) -> float:
        """Contact force (N) now between the robot (and what it holds) and the patient."""
        contact = self.session.context.contact_force
        return float(contact() or 0.0) if contact else 0.0

    def distance_to(self, person: str) -> float:
        """Horizontal distance (m) from the robot's base to the person's chest."""
        robot = self.session.robot.observe().base_pose[:2]
        body = self.session.scene.robots[person]
        chest = body.link_pose("middle_thorax")[:2]
        return float(math.hypot(*(np.asarray(robot, dtype=float) - np.asarray(chest, dtype=float))))

    def people(self) -> list[str]:
        """The people of the room (the scene's human models)."""
        return [label for label, r in self.session.scene.robots.items() if r.spec.name == "human"]

    def room_image(self) -> np.ndarray:
        """The room camera's view now, ``ROOM_SIZE`` RGB (uint8)."""
        from tianji.sim.camera import render

        room = render(self.world.client, self._room_intr, self._room_pose, segmentation=False).rgb
        return cv2.resize(room, ROOM_SIZE) if room.shape[1] != ROOM_SIZE[0] else room

    def truth(self, since: int = 0, room: bool = False) -> dict[str, Any]:
        """The ground truth as the bridge's ``scenario`` reply carries it (``bridge/PROTOCOL.md``).

        ``since``: force samples already received (only later ones are sent); ``room``: add the room image.
        """
        s = self.scenario
        samples = self.forces[max(0, since) :]
        reply: dict[str, Any] = {
            "scenario": s.name,
            "seed": self.seed,
            "started": self.started,
            "time": self.now,
            "stamp0": float(self.t0) if self.t0 is not None else None,
            "time_limit": float(s.time_limit),
            "person_force": self.force,
            "max_person_force": self.max_force,
            "forces": np.array(samples, dtype=np.float64).reshape(-1, 2),
            "forces_total": len(self.forces),
            "marks": [[t, what] for t, what in self.marks],
            "fell_at": self.fell_at,
            "distances": {p: self.distance_to(p) for p in self.people()},
        }
        if room:
            reply["room"] = np.ascontiguousarray(self.room_image(), dtype=np.uint8)
        return reply

    def close(self) -> None:
        """Close the room's World."""
        self.session.close()
