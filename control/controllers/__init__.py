"""Controllers: small objects with ``reset(obs)`` / ``step(obs) -> Command`` / ``done`` that skills compose.

See control/README.md for the contract and examples.
"""

from tianji.control.controllers.base import Controller, HoldController, SequenceController, Status
from tianji.control.controllers.cartesian import CartesianController
from tianji.control.controllers.gripper import GripperController
from tianji.control.controllers.joint import JointTrajectoryController, KeyframeController
from tianji.control.controllers.whole_body import G1_GESTURES, WholeBodyPoseController

__all__ = [
    "G1_GESTURES",
    "CartesianController",
    "Controller",
    "GripperController",
    "HoldController",
    "JointTrajectoryController",
    "KeyframeController",
    "SequenceController",
    "Status",
    "WholeBodyPoseController",
]
