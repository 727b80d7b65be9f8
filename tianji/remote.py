"""``--robot tcp://HOST:PORT`` for the CLI: skills driven through the ZeroMQ bridge instead of the in-process simulator.

:func:`remote_session` connects a :class:`~tianji.bridge.client.RemoteRobot` and wires it the way
:func:`tianji.cli_skills.care_session` wires the simulator, so ``tianji skill`` and ``tianji do``
run the same skills against either:

- **robot**: the served robot, behind a client-side :class:`~tianji.control.SafeRobot` (the server
  applies its own filter too, with the patient-force limit where the driver measures it);
- **world state**: perception on the robot's head camera (frames come over the bridge), because the
  client cannot see the simulator's ground truth, exactly as on hardware;
- **floor map**: the scene's furniture, from the scene file (the room's known layout);
- **kinematics**: the robot's URDF, looked up by the name in the served spec.

The skill loop runs in real time at the served robot's control rate (the server steps the
simulation, or the hardware moves, on its own clock). CurveZMQ keys come from the environment:
``TIANJI_SERVER_KEY`` (the server's public ``.key`` file) and ``TIANJI_CLIENT_KEY`` (this
client's ``.key_secret``); both unset means a plain connection (loopback servers allow that).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tianji.control.errors import TianjiError

SERVER_KEY_ENV = "TIANJI_SERVER_KEY"
CLIENT_KEY_ENV = "TIANJI_CLIENT_KEY"


def is_remote(robot: str) -> bool:
    """Whether a ``--robot`` value names a bridge endpoint (``tcp://HOST:PORT``) rather than the simulator."""
    return robot.startswith("tcp://")


def check_robot_option(robot: str) -> None:
    """A clear error for a ``--robot`` value that is neither ``sim`` nor ``tcp://HOST:PORT``."""
    if robot != "sim" and not is_remote(robot):
        raise ValueError(
            f"--robot must be 'sim' (the in-process simulator) or 'tcp://HOST:PORT' (a robot served by"
            f" `tianji bridge serve`), got {robot!r}"
        )


def curve_keys() -> dict[str, str | None]:
    """``server_key`` and ``client_key`` for a RemoteRobot, from the environment (module doc); None when unset."""
    return {"server_key": os.environ.get(SERVER_KEY_ENV), "client_key": os.environ.get(CLIENT_KEY_ENV)}


def scenario_status(robot: Any, suggest: str) -> dict[str, Any]:
    """The served scenario's truth (a ``scenario`` ``status`` request); a plain error when the server stages none.

    ``suggest`` is the scenario named in the error's serve command.
    """
    from tianji.bridge.protocol import E_UNSUPPORTED, BridgeError

    try:
        return robot.scenario("status")
    except BridgeError as exc:
        if exc.code != E_UNSUPPORTED:
            raise
        raise TianjiError(
            f"the robot at {robot.endpoint} serves no scenario, and a scenario needs its room, its scripted events"
            f" and its ground truth: serve one with `tianji bridge serve --robot scenario:{suggest}`, or run the"
            " scenario in-process (without --robot)"
        ) from None


@dataclass
class RemoteSession:
    """A served robot wired for skills; the fields mirror :class:`tianji.cli_skills.CareSession`."""

    robot: Any  # RemoteRobot
    safe: Any  # client-side SafeRobot
    context: Any  # SkillContext
    runner: Any  # SkillRunner, real time
    world_state: Callable[[], Any]  # perception on the head camera
    robot_label: str = "tiago"
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        """Say goodbye to the server (it holds the robot) and release the sockets."""
        self.robot.close()


def remote_session(
    endpoint: str, *, scene: str = "care_room", camera: str = "head", timeout: float = 5.0
) -> RemoteSession:
    """Connect to ``endpoint`` as the controller and wire the robot for skills (module doc)."""
    from tianji.bridge.client import RemoteRobot
    from tianji.control.kinematics import Kinematics
    from tianji.control.safety import SafeRobot, SafetyLimits
    from tianji.control.skills import SkillContext, SkillRunner
    from tianji.perception.source import PerceivedWorld
    from tianji.sim.registry import get_robot

    # before taking control: loading the map takes seconds, and a silent controller trips the watchdog
    floor_map = scene_floor_map(scene, exclude=("tiago",))
    # a simulator server renders camera frames in its control thread (0.1-0.3 s in the care room), during
    # which no state comes: allow for that rather than calling the link lost
    robot = RemoteRobot(endpoint, timeout=timeout, state_timeout=2.0, **curve_keys())
    try:
        spec = robot.spec
        try:
            desc = get_robot(spec.name)
        except TianjiError as exc:
            raise TianjiError(
                f"the robot served at {endpoint} is '{spec.name}', which has no model here to plan with: {exc}"
            ) from None
        kinematics = Kinematics.for_spec(desc.urdf_path(), spec)
        safe = SafeRobot(robot, SafetyLimits())
        occupancy = floor_map if spec.name == "tiago" else None
        context = SkillContext(kinematics=kinematics, occupancy=occupancy)
        world_state = PerceivedWorld(robot, scene, camera)
        runner = SkillRunner(safe, world_state, realtime=True)
    except BaseException:
        robot.close()
        raise
    return RemoteSession(robot, safe, context, runner, world_state, robot_label=spec.name)


def scene_floor_map(scene: str, exclude: tuple[str, ...] = ("tiago",)) -> Any:
    """The floor occupancy map of a scene's furniture and people, built from its scene file in a private World."""
    from tianji.sim import World, WorldConfig
    from tianji.sim import scene as scenes
    from tianji.sim.occupancy import room_occupancy

    with World(WorldConfig()) as world:
        loaded = scenes.load(scene, world=world)
        return room_occupancy(loaded, exclude=exclude)


def look_around(session: Any, places: tuple[str, ...] = ("bedside", "dining_table"), dwell: float = 0.6) -> None:
    """Turn the head to each place and hold still a moment, so perception has seen the room before planning.

    A world state built by perception knows only what the camera has seen; the planner needs the
    patient and the objects named in the instruction.
    """
    from tianji.control.skills import make_skill
    from tianji.control.skills.mobile import has_pan_tilt

    has_head = has_pan_tilt(session.robot.spec)  # the G1 has none: it only waits
    for place in places:
        if has_head:
            session.runner.run(make_skill("look_at", {"target": place}, session.context))
        session.runner.run(make_skill("wait", {"seconds": dwell}, session.context))


class RemoteStage:
    """A scenario served by ``tianji bridge serve --robot scenario:NAME``, seen from the controller's side.

    It answers what :class:`~tianji.scenario_stage.ScenarioStage` answers in-process (``now``,
    ``max_force``, ``forces``, ``fell_at``, ``distance_to``, ``room_image``), read from the
    server with the protocol's ``scenario`` request: ``start`` when built (scenario time and the
    scripted falls start then), ``status`` every :attr:`POLL_EVERY` control ticks and when the
    verdict needs the truth. ``now`` is the served robot's own clock (simulated seconds) since the start.
    """

    POLL_EVERY = 6  # control ticks between truth reads (10 Hz at 60 Hz)

    def __init__(self, robot: Any, scenario: Any, seed: int | None = None) -> None:
        self.robot = robot
        truth = scenario_status(robot, f"{scenario.name}?seed={seed or 0}")
        served = (str(truth["scenario"]), int(truth["seed"]))
        if served[0] != scenario.name or (seed is not None and served[1] != seed):
            asked = f"scenario '{scenario.name}'" + (f" seed {seed}" if seed is not None else "")
            raise TianjiError(
                f"the server at {robot.endpoint} serves scenario '{served[0]}' seed {served[1]}, not {asked}:"
                f" restart it with `tianji bridge serve --robot scenario:{scenario.name}?seed={seed or 0}`, or"
                f" ask for the served one (`tianji demo {served[0]} --seed {served[1]} --robot {robot.endpoint}`)"
            )
        self.seed = served[1]
        self.forces: list[tuple[float, float]] = []
        self.max_force = 0.0
        self.fell_at: float | None = None
        self._distances: dict[str, float] = {}
        self._ticks = 0
        self._stamp0 = 0.0  # the served robot's stamp when scenario time started (set by the start reply)
        self._apply(robot.scenario("start"))

    def _apply(self, truth: dict[str, Any]) -> dict[str, Any]:
        if truth.get("stamp0") is not None:
            self._stamp0 = float(truth["stamp0"])
        self.forces.extend((float(t), float(f)) for t, f in truth["forces"])
        self.max_force = float(truth["max_person_force"])
        self.fell_at = truth["fell_at"]
        self._distances = dict(truth["distances"])
        return truth

    def refresh(self, room: bool = False) -> dict[str, Any]:
        """Read the truth now (``room``: with the room camera's image)."""
        return self._apply(self.robot.scenario("status", since=len(self.forces), room=room))

    @property
    def now(self) -> float:
        """Simulated seconds since the scenario started, on the served robot's clock."""
        return float(self.robot.observe().timestamp) - self._stamp0

    def tick(self) -> None:
        """After a control tick: read the truth every :attr:`POLL_EVERY` ticks (force record, falls)."""
        self._ticks += 1
        if self._ticks % self.POLL_EVERY == 0:
            self.refresh()

    def distance_to(self, person: str) -> float:
        """Horizontal distance (m) from the robot's base to the person's chest, from the server's truth."""
        self.refresh()
        if person not in self._distances:
            raise TianjiError(f"the served scenario has no person '{person}'; it has {', '.join(self._distances)}")
        return float(self._distances[person])

    def room_image(self) -> Any:
        """The room camera's view, rendered on the server."""
        return self.refresh(room=True)["room"]
