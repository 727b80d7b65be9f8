"""Simulation layer: PyBullet world, robot registry, SimRobot, cameras, scenes.

>>> from tianji.sim import World
>>> with World() as world:
...     tiago = world.add_robot("tiago")
...     world.step(60)
"""

from tianji.sim.native import quiet_native_output

with quiet_native_output():  # pybullet prints its build date on import
    import pybullet  # noqa: F401

from tianji.sim import envs  # registers the Gymnasium environments
from tianji.sim.camera import CameraIntrinsics, look_at
from tianji.sim.registry import (
    CameraMount,
    RobotDescription,
    get_robot,
    load_robot_file,
    register_robot,
    robot_names,
)
from tianji.sim.sim_robot import SimRobot
from tianji.sim.world import Contact, World, WorldConfig

__all__ = [
    "CameraIntrinsics",
    "CameraMount",
    "Contact",
    "RobotDescription",
    "SimRobot",
    "World",
    "WorldConfig",
    "envs",
    "get_robot",
    "load_robot_file",
    "look_at",
    "register_robot",
    "robot_names",
]
