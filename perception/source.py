"""The one switch: a skill asks a callable for the WorldState, fed by ground truth or by perception.

>>> from tianji.sim.world_state import from_scene
>>> world = world_state_source("perception", robot=tiago)              # camera -> perception
>>> world = world_state_source("ground_truth", ground_truth=lambda: from_scene(care))
>>> state = world()  # same WorldState either way

Works with any :class:`tianji.control.Robot` that has a camera (SimRobot, the bridge's
RemoteRobot, a hardware driver), because it only calls ``robot.observe(cameras=[...])``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tianji.control.errors import UnknownNameError
from tianji.control.robot import Robot
from tianji.control.world_state import WorldState
from tianji.perception.detection import PerceptionResult
from tianji.perception.geometry import quat_matrix, yaw_of
from tianji.perception.pipeline import Perception
from tianji.perception.scene_map import SceneMap
from tianji.perception.world_builder import WorldStateBuilder

SOURCES = ("ground_truth", "perception")


class PerceivedWorld:
    """Calling it observes the robot's camera, runs perception and returns the fused WorldState.

    A skill loop calls it every control tick; the camera is used at most once per ``period``
    seconds of robot time (default 0.2 s, 5 Hz) and the calls in between return the tracked
    state with the robot's current pose, so a 60 Hz loop does not render 60 images a second.
    """

    def __init__(
        self,
        robot: Robot,
        scene: SceneMap | str = "care_room",
        camera: str = "head",
        perception: Perception | None = None,
        builder: WorldStateBuilder | None = None,
        period: float = 0.2,
    ) -> None:
        if camera not in robot.spec.sensors:
            raise UnknownNameError(
                f"robot '{robot.spec.name}' has no camera '{camera}'; it has: {', '.join(robot.spec.sensors) or 'none'}"
            )
        self.robot = robot
        self.camera = camera
        self.perception = perception or Perception(scene)
        self.builder = builder or WorldStateBuilder(self.perception.map)
        self.period = period
        self.last_result: PerceptionResult | None = None

    def __call__(self) -> WorldState:
        """Observe, perceive (when ``period`` has passed), fuse; the state reflects everything seen so far."""
        obs = self.robot.observe()
        base = np.asarray(obs.base_pose, dtype=float)
        robot_pose = np.array([base[0], base[1], yaw_of(quat_matrix(base[3:7]))])
        last = self.last_result
        if last is not None and 0.0 <= obs.timestamp - last.timestamp < self.period - 1e-9:
            self.builder.robot_pose = robot_pose
            return self.builder.world_state(max(self.builder.time, float(obs.timestamp)))
        obs = self.robot.observe(cameras=[self.camera])
        result = self.perception.process(
            obs.cameras[self.camera], robot_xy=(base[0], base[1]), furniture_poses=self.builder.furniture_poses()
        )
        self.last_result = result
        return self.builder.update(result, robot_pose)


def world_state_source(
    kind: str,
    *,
    robot: Robot | None = None,
    ground_truth: Callable[[], WorldState] | None = None,
    scene: SceneMap | str = "care_room",
    camera: str = "head",
) -> Callable[[], WorldState]:
    """``"ground_truth"`` returns ``ground_truth`` as is; ``"perception"`` a :class:`PerceivedWorld` on ``robot``."""
    if kind == "ground_truth":
        if ground_truth is None:
            raise ValueError("world_state_source('ground_truth') needs ground_truth=, e.g. lambda: from_scene(scene)")
        return ground_truth
    if kind == "perception":
        if robot is None:
            raise ValueError("world_state_source('perception') needs robot=, the robot whose camera perception uses")
        return PerceivedWorld(robot, scene, camera)
    raise ValueError(f"unknown world state source {kind!r}; use one of: {', '.join(SOURCES)}")
