"""Perception: camera frames -> detections -> world state (OpenCV; knows nothing of PyBullet).

>>> from tianji.perception import Perception, WorldStateBuilder
>>> perception = Perception("care_room")              # scene map: catalogue + fixed layout
>>> builder = WorldStateBuilder(perception.map)
>>> result = perception.process(frame, robot_xy=(x, y))  # frame: tianji.control.CameraFrame
>>> state = builder.update(result, robot_pose=(x, y, yaw))  # tianji.control.WorldState

See perception/README.md for conventions, posture rules and limitations.
"""

from tianji.perception.annotate import annotate
from tianji.perception.camera import CameraModel, FrameError, check_frame
from tianji.perception.colour import ColourDetector
from tianji.perception.detection import Detection, PerceptionResult, PersonDetection
from tianji.perception.export import result_to_dict, world_state_from_dict, world_state_to_dict
from tianji.perception.markers import MarkerDetector
from tianji.perception.onnx_person import OnnxPersonDetector
from tianji.perception.person import PersonConfig, PersonDetector
from tianji.perception.pipeline import Perception, PerceptionConfig
from tianji.perception.posture import FALL_HOLD_TIME, FallDetector, FallEvent, classify_posture
from tianji.perception.scene_map import ObjectModel, SceneMap
from tianji.perception.source import PerceivedWorld, world_state_source
from tianji.perception.world_builder import WorldStateBuilder

__all__ = [
    "FALL_HOLD_TIME",
    "CameraModel",
    "ColourDetector",
    "Detection",
    "FallDetector",
    "FallEvent",
    "FrameError",
    "MarkerDetector",
    "ObjectModel",
    "OnnxPersonDetector",
    "PerceivedWorld",
    "Perception",
    "PerceptionConfig",
    "PerceptionResult",
    "PersonConfig",
    "PersonDetection",
    "PersonDetector",
    "SceneMap",
    "WorldStateBuilder",
    "annotate",
    "check_frame",
    "classify_posture",
    "result_to_dict",
    "world_state_from_dict",
    "world_state_source",
    "world_state_to_dict",
]
