"""The simulator driver (``sim:ROBOT[?scene=NAME&seed=N]``): a SimRobot in its own World, stepped by the server.

The reference implementation of :class:`~tianji.bridge.drivers.Driver`: the bridge serves it
exactly like hardware, and ``tick()`` advances the World one control step, so the simulation
runs in real time at the server's rate.
"""

from __future__ import annotations

from collections.abc import Sequence

from tianji.bridge.drivers import Driver
from tianji.control.errors import UnknownNameError
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Command, Observation, RobotSpec

PHYSICS_RATE = 240.0  # Hz the physics step aims at; the control rate divides it
DEFAULT_RATE = 100.0  # Hz, when no rate is asked for


def world_config_for(rate: float) -> tuple[float, int]:
    """(physics timestep, control decimation) giving exactly ``rate`` control steps per simulated second."""
    if not 20.0 <= rate <= 2000.0:
        raise ValueError(f"simulated control rate must be in [20, 2000] Hz, got {rate}")
    decimation = max(1, round(PHYSICS_RATE / rate))
    return 1.0 / (rate * decimation), decimation


class SimDriver(Driver):
    """``SimDriver("tiago", rate=100)``: a registered robot alone on a floor, or in a scene (``scene="care_room"``)."""

    def __init__(
        self, robot: str = "tiago", rate: float | None = None, scene: str | None = None, seed: str | int = 0
    ) -> None:
        if not robot:
            raise ValueError("the sim driver needs a robot name: sim:tiago (see `tianji robots`)")
        self.robot_name = robot
        self.rate = float(rate or DEFAULT_RATE)
        self.scene_name = scene or None
        self.seed = int(seed)
        self.world = None
        self.scene = None
        self.robot = None

    def connect(self) -> None:
        """Build the World (and scene) and place the robot."""
        from tianji.sim import World, WorldConfig
        from tianji.sim import scene as scenes

        timestep, decimation = world_config_for(self.rate)
        world = World(WorldConfig(timestep=timestep, control_decimation=decimation, seed=self.seed))
        try:
            if self.scene_name:
                self.scene = scenes.load(self.scene_name, world=world, seed=self.seed)
                matches = [r for label, r in self.scene.robots.items() if self.robot_name in (label, r.spec.name)]
                if not matches:
                    raise UnknownNameError(
                        f"scene '{self.scene_name}' has no robot '{self.robot_name}'; it has:"
                        f" {', '.join(self.scene.robots) or 'none'}"
                    )
                self.robot = matches[0]
            else:
                self.robot = world.add_robot(self.robot_name)
        except BaseException:
            world.close()
            raise
        self.world = world

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

    def tick(self) -> None:
        """One control step of physics."""
        self._sim()
        self.world.step()  # type: ignore[union-attr]
