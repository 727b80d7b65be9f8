"""One frame in, everything perception finds out: markers, colour blobs, people, with timings."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tianji.control.robot import CameraFrame
from tianji.perception.camera import CameraModel, check_frame
from tianji.perception.colour import ColourDetector
from tianji.perception.detection import PerceptionResult
from tianji.perception.geometry import quat_matrix, transform
from tianji.perception.markers import MarkerDetector
from tianji.perception.onnx_person import OnnxPersonDetector
from tianji.perception.person import PersonConfig, PersonDetector
from tianji.perception.scene_map import SceneMap


@dataclass
class PerceptionConfig:
    """Which stages run. Each can be switched off to save time."""

    markers: bool = True
    colour: bool = True
    people: bool = True
    refine_with_depth: bool = True  # correct the marker range with the depth image
    upright: bool = True  # objects stand upright: take only the yaw from a marker


class Perception:
    """Frame -> :class:`PerceptionResult`. Knows the scene map, not the simulator.

    >>> perception = Perception("care_room")
    >>> result = perception.process(frame, robot_xy=(0.6, -0.2))
    """

    def __init__(
        self,
        scene_map: SceneMap | str = "care_room",
        config: PerceptionConfig | None = None,
        person: PersonConfig | None = None,
        onnx_model: str | Path | None = None,
    ) -> None:
        self.map = scene_map if isinstance(scene_map, SceneMap) else SceneMap.load(scene_map)
        self.config = config or PerceptionConfig()
        self.markers = MarkerDetector(
            self.map, refine_with_depth=self.config.refine_with_depth, upright=self.config.upright
        )
        self.colour = ColourDetector(self.map)
        onnx = OnnxPersonDetector(onnx_model) if onnx_model is not None else None
        self.people = PersonDetector(self.map, person, onnx)

    def process(
        self,
        frame: CameraFrame,
        robot_xy: tuple[float, float] | None = None,
        furniture_poses: dict[str, np.ndarray] | None = None,
    ) -> PerceptionResult:
        """Run every enabled stage on ``frame``; FrameError (with what to fix) for an unusable frame.

        ``robot_xy`` is the robot's base position, so its own body is not taken for a person;
        ``furniture_poses`` (4x4 world <- object) override the scene map's nominal layout,
        e.g. from the world-state tracker. Markers seen in this frame override both.
        """
        check_frame(frame)
        camera = CameraModel.from_frame(frame)
        result = PerceptionResult(timestamp=float(frame.timestamp))
        cfg = self.config
        rgb = np.ascontiguousarray(frame.rgb)
        poses = dict(furniture_poses or {})
        t0 = time.perf_counter()
        if cfg.markers:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            result.detections.extend(self.markers.detect(frame, camera, gray))
            for det in result.detections:
                if self.map.objects[det.name].is_furniture and det.orientation is not None:
                    poses[det.name] = transform(quat_matrix(det.orientation), det.position)
        t1 = time.perf_counter()
        if cfg.people:
            result.people.extend(self.people.detect(frame, camera, poses, robot_xy))
        t2 = time.perf_counter()
        if cfg.colour:
            hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
            bodies = [p.points for p in result.people if p.points is not None]
            body_points = np.vstack(bodies) if bodies else None
            found = self.colour.detect(frame, camera, hsv, poses, _silhouettes(result, frame), body_points)
            result.detections.extend(found)
        t3 = time.perf_counter()
        result.timings = {"markers": t1 - t0, "people": t2 - t1, "colour": t3 - t2, "total": t3 - t0}
        return result


def _silhouettes(result: PerceptionResult, frame: CameraFrame) -> np.ndarray | None:
    """People's masks, grown by a couple of pixels, or None when nobody was found."""
    masks = [p.mask for p in result.people if p.mask is not None]
    if not masks:
        return None
    union = np.logical_or.reduce(masks).astype(np.uint8)
    grow = max(1, frame.size[0] // 160)
    return cv2.dilate(union, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)).astype(bool)
