"""The ``scenario`` bridge driver: a care scenario's room served like a robot, with its events and ground truth.

``tianji bridge serve --robot scenario:fall_response?seed=3`` serves the robot the scenario
names (TIAGo, or the G1 for ``rehab_session``) in the room :class:`~tianji.scenario_stage.ScenarioStage`
builds, exactly as the ``sim`` driver serves a robot: the server's safety filter with the
patient-contact force for its limit, at the in-process scenario's control rate. On top, the
protocol's ``scenario`` request starts scenario time (the controller) and reads the truth
(anyone), which ``tianji demo NAME --robot tcp://HOST:PORT`` judges the run on. It is found
through the ``tianji.drivers`` entry-point group, as a third-party driver would be.
"""

from __future__ import annotations

import math
from typing import Any

from tianji.bridge.drivers.sim import SimDriver
from tianji.bridge.protocol import BridgeError, ProtocolError

SCENARIO_RATE = 60.0  # Hz: the control rate of the care room's skills (tianji.cli_skills.care_session)


class ScenarioDriver(SimDriver):
    """``scenario:NAME[?seed=N]`` (module doc). ``NAME`` is a scenario name or a ``.yaml`` file."""

    def __init__(self, name: str = "", rate: float | None = None, seed: str | int = 0) -> None:
        from tianji.scenario import load

        if not name:
            raise ValueError("the scenario driver needs a scenario: scenario:fall_response (see experiments/scenarios)")
        if rate is not None and rate != SCENARIO_RATE:
            raise ValueError(
                f"a served scenario runs at the control rate of the in-process scenario ({SCENARIO_RATE:g} Hz);"
                f" drop --rate {rate:g}"
            )
        self.scenario = load(name)  # a bad file fails here, before anything is served
        super().__init__(self.scenario.robot, seed=seed)
        self.stage: Any = None

    def connect(self) -> None:
        """Build the scenario's room; scenario time starts at the controller's ``scenario`` ``start``."""
        from tianji.scenario_stage import ScenarioStage

        self.stage = stage = ScenarioStage(self.scenario, seed=self.seed)
        self.world, self.robot, self.scene = stage.world, stage.session.robot, stage.session.scene
        if not math.isclose(self.world.control_rate, SCENARIO_RATE, rel_tol=1e-6):
            self.disconnect()
            raise RuntimeError(f"the scenario's room steps at {self.world.control_rate:g} Hz, not {SCENARIO_RATE:g}")
        self.rate = SCENARIO_RATE

    def disconnect(self) -> None:
        """Close the room (idempotent)."""
        if self.stage is not None:
            self.stage.close()
            self.stage, self.world = None, None

    def person_force(self) -> float | None:
        """Contact force (N) of the robot and what it holds with the patient."""
        return None if self.stage is None else self.stage.person_force()

    def tick(self) -> None:
        """One control step of physics, then the scenario's bookkeeping and scripted events."""
        super().tick()
        self.stage.tick()

    def scenario_request(self, action: str, since: int = 0, room: bool = False) -> dict[str, Any]:
        """``start`` (scenario time from now) or ``status``; the truth in either case (``ScenarioStage.truth``)."""
        if self.stage is None:
            raise BridgeError("the scenario's room is not loaded (the driver is not connected)")
        if action == "start":
            self.stage.start()
        elif action != "status":
            raise ProtocolError(f"field 'action' of a 'scenario' request must be 'start' or 'status', got {action!r}")
        return self.stage.truth(since=since, room=room)
