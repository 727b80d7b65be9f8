"""The simulator driver (``sim:ROBOT[?scene=NAME&seed=N]``): a SimRobot in its own World, stepped by the server.

The reference implementation of :class:`~tianji.bridge.drivers.Driver`: the bridge serves it
exactly like hardware, and ``tick()`` advances the World one control step, so the simulation
runs in real time at the server's rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import yaml

from tianji.bridge.drivers import Driver
from tianji.control.errors import UnknownNameError
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Command, Observation, RobotSpec

PHYSICS_RATE = 240.0  # Hz the physics step aims at; the control rate divides it
DEFAULT_RATE = 100.0  # Hz, when no rate is asked for


def world_config_for(rate: float, physics_rate: float = PHYSICS_RATE) -> tuple[float, int]:
    """(physics timestep, control decimation) giving exactly ``rate`` control steps per simulated second."""
    if not 20.0 <= rate <= 2000.0:
        raise ValueError(f"simulated control rate must be in [20, 2000] Hz, got {rate}")
    if not 60.0 <= physics_rate <= 2000.0:
        raise ValueError(f"physics rate must be in [60, 2000] Hz, got {physics_rate}")
    decimation = max(1, round(physics_rate / rate))
    return 1.0 / (rate * decimation), decimation


class SimDriver(Driver):
    """``SimDriver("tiago", rate=100)``: a registered robot alone on a floor, or in a scene (``scene="care_room"``).

    Driver-string options: ``scene`` (a scene name or file), ``seed``, ``robots`` (comma-separated
    scene robots to keep, e.g. ``tiago,patient``: fewer bodies step and render faster) and
    ``physics`` (physics steps per simulated second, default 240). Example:
    ``sim:tiago?scene=care_room&robots=tiago,patient&physics=120``. In a scene with a patient the
    robot is wired as for in-process skills (:mod:`tianji.sim.care_wiring`): grasp assist and the
    patient-contact force, which the server's safety filter limits.
    """

    def __init__(
        self,
        robot: str = "tiago",
        rate: float | None = None,
        scene: str | None = None,
        seed: str | int = 0,
        robots: str | None = None,
        physics: str | float = PHYSICS_RATE,
    ) -> None:
        if not robot:
            raise ValueError("the sim driver needs a robot name: sim:tiago (see `tianji robots`)")
        if robots and not scene:
            raise ValueError("the sim driver's 'robots' option picks robots of a scene: add scene=NAME")
        self.robot_name = robot
        self.rate = float(rate or DEFAULT_RATE)
        self.scene_name = scene or None
        self.seed = int(seed)
        self.keep_robots = tuple(r.strip() for r in robots.split(",") if r.strip()) if robots else None
        self.physics_rate = float(physics)
        self.world = None
        self.scene = None
        self.robot = None
        self.wiring = None

    def connect(self) -> None:
        """Build the World (and scene) and place the robot."""
        from tianji.sim import World, WorldConfig
        from tianji.sim.care_wiring import wire_care_robot

        timestep, decimation = world_config_for(self.rate, self.physics_rate)
        world = World(WorldConfig(timestep=timestep, control_decimation=decimation, seed=self.seed))
        try:
            if self.scene_name:
                self.scene = self._load_scene(world)
                matches = [r for label, r in self.scene.robots.items() if self.robot_name in (label, r.spec.name)]
                if not matches:
                    raise UnknownNameError(
                        f"scene '{self.scene_name}' has no robot '{self.robot_name}'; it has:"
                        f" {', '.join(self.scene.robots) or 'none'}"
                    )
                self.robot = matches[0]
                self.wiring = wire_care_robot(self.scene, self.robot)  # grasp assist, patient-force sensor
            else:
                self.robot = world.add_robot(self.robot_name)
        except BaseException:
            world.close()
            raise
        self.world = world

    def _load_scene(self, world):
        from tianji.sim import scene as scenes

        if self.keep_robots is None:
            return scenes.load(self.scene_name, world=world, seed=self.seed)
        config = yaml.safe_load(scenes.scene_file(self.scene_name).read_text())
        unknown = [r for r in self.keep_robots if r not in config.get("robots", {})]
        if unknown:
            raise UnknownNameError(
                f"scene '{self.scene_name}' has no robot {', '.join(map(repr, unknown))}; it has:"
                f" {', '.join(config.get('robots', {}))}"
            )
        config["robots"] = {k: v for k, v in config["robots"].items() if k in self.keep_robots}
        loaded = scenes.build(config, world, path=self.scene_name)
        world.step(30)  # settle, as scene.load does
        return loaded

    def disconnect(self) -> None:
        """Close the World (idempotent)."""
        if self.world is not None:
            self.world.close()
            self.world = None

    def _sim(self):
        if self.robot is None or self.world is None:
            raise RuntimeError("SimDriver is not connected: call connect() first")
        return self.robot

    @property
    def spec(self) -> RobotSpec:
        return self._sim().spec

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        return self._sim().observe(cameras)

    def command(self, cmd: Command) -> None:
        self._sim().command(cmd)

    def stop(self) -> None:
        self._sim().stop()

    def kinematics(self) -> Kinematics:
        """Pinocchio kinematics of the robot's URDF in the spec's joint order (for the workspace box)."""
        return Kinematics.for_spec(self._sim().description.urdf_path(), self.spec)

    def person_force(self) -> float | None:
        """Contact force (N) of the robot and what it holds with the scene's patient; None without a scene."""
        return None if self.wiring is None else self.wiring.person_force()

    def tick(self) -> None:
        """One control step of physics."""
        self._sim()
        self.world.step()  # type: ignore[union-attr]
