"""Control layer: the Robot interface, and (later) controllers, safety filter, control loop, skills.

Knows nothing of PyBullet or ZeroMQ: it works against :class:`Robot`, whatever is behind it.
"""

from tianji.control.errors import (
    AssetError,
    InvalidCommandError,
    RobotClosedError,
    TianjiError,
    UnknownJointError,
    UnknownNameError,
)
from tianji.control.robot import (
    BaseType,
    CameraFrame,
    Command,
    ControlMode,
    Observation,
    Robot,
    RobotSpec,
)
from tianji.control.world_state import ObjectState, PersonState, Place, Posture, WorldState

__all__ = [
    "AssetError",
    "BaseType",
    "CameraFrame",
    "Command",
    "ControlMode",
    "InvalidCommandError",
    "ObjectState",
    "Observation",
    "PersonState",
    "Place",
    "Posture",
    "Robot",
    "RobotClosedError",
    "RobotSpec",
    "TianjiError",
    "UnknownJointError",
    "UnknownNameError",
    "WorldState",
]
