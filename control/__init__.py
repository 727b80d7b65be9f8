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
from tianji.control.skills import (
    SKILLS,
    PolicySkill,
    Skill,
    SkillContext,
    SkillResult,
    SkillRunner,
    get_skill,
    make_skill,
    schema,
)
from tianji.control.trajectory import MinJerkTrajectory, PoseTrajectory, min_jerk_duration
from tianji.control.world_state import ObjectState, PersonState, Place, Posture, WorldState

__all__ = [
    "G1_GESTURES",
    "SKILLS",
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
    "PolicySkill",
    "PoseTrajectory",
    "Posture",
    "Robot",
    "RobotClosedError",
    "RobotSpec",
    "SafeRobot",
    "SafetyLimits",
    "SafetyStopError",
    "SequenceController",
    "Skill",
    "SkillContext",
    "SkillResult",
    "SkillRunner",
    "Status",
    "TianjiError",
    "UnknownJointError",
    "UnknownNameError",
    "WholeBodyPoseController",
    "WorldState",
    "get_skill",
    "make_skill",
    "min_jerk_duration",
    "schema",
]
