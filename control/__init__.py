"""Control layer: the Robot interface, kinematics, controllers, the safety filter and the control loop.

Knows nothing of PyBullet or ZeroMQ: it works against :class:`Robot`, whatever is behind it.
"""

from tianji.control.base_nav import BaseController, OccupancyMap
from tianji.control.controllers import (
    G1_GESTURES,
    CartesianController,
    Controller,
    GripperController,
    HoldController,
    JointTrajectoryController,
    KeyframeController,
    SequenceController,
    Status,
    WholeBodyPoseController,
)
from tianji.control.errors import (
    AssetError,
    InvalidCommandError,
    RobotClosedError,
    TianjiError,
    UnknownJointError,
    UnknownNameError,
)
from tianji.control.kinematics import IKResult, Kinematics
from tianji.control.loop import ControlLoop, LoopStats
from tianji.control.robot import (
    BaseType,
    CameraFrame,
    Command,
    ControlMode,
    Observation,
    Robot,
    RobotSpec,
)
from tianji.control.safety import SafeRobot, SafetyLimits, SafetyStopError
from tianji.control.trajectory import MinJerkTrajectory, PoseTrajectory, min_jerk_duration
from tianji.control.world_state import ObjectState, PersonState, Place, Posture, WorldState

__all__ = [
    "G1_GESTURES",
    "AssetError",
    "BaseController",
    "BaseType",
    "CameraFrame",
    "CartesianController",
    "Command",
    "ControlLoop",
    "ControlMode",
    "Controller",
    "GripperController",
    "HoldController",
    "IKResult",
    "InvalidCommandError",
    "JointTrajectoryController",
    "KeyframeController",
    "Kinematics",
    "LoopStats",
    "MinJerkTrajectory",
    "ObjectState",
    "Observation",
    "OccupancyMap",
    "PersonState",
    "Place",
    "PoseTrajectory",
    "Posture",
    "Robot",
    "RobotClosedError",
    "RobotSpec",
    "SafeRobot",
    "SafetyLimits",
    "SafetyStopError",
    "SequenceController",
    "Status",
    "TianjiError",
    "UnknownJointError",
    "UnknownNameError",
    "WholeBodyPoseController",
    "WorldState",
    "min_jerk_duration",
]
