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
from tianji.control.robot import CameraFrame, Observation, Robot
from tianji.control.world_state import WorldState
from tianji.perception.detection import PerceptionResult
from tianji.perception.geometry import matrix_quat, quat_matrix, transform, yaw_of
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
        self.last_frame: CameraFrame | None = None  # the image last_result came from (for overlays, videos)
        self.grasp = GraspBelief(on_move=self._move_track)

    def _move_track(self, name: str, position: np.ndarray, timestamp: float) -> None:
        """Keep the tracker's estimate of a held object with the hand (no jump when it is seen again)."""
        track = self.builder.objects.get(name)
        if track is not None:
            track.position, track.last_seen = position.copy(), max(track.last_seen, timestamp)

    def __call__(self) -> WorldState:
        """Observe, perceive (when ``period`` has passed), fuse; the state reflects everything seen so far."""
        obs = self.robot.observe()
        base = np.asarray(obs.base_pose, dtype=float)
        robot_pose = np.array([base[0], base[1], yaw_of(quat_matrix(base[3:7]))])
        last = self.last_result
        if last is not None and 0.0 <= obs.timestamp - last.timestamp < self.period - 1e-9:
            self.builder.robot_pose = robot_pose
            state = self.builder.world_state(max(self.builder.time, float(obs.timestamp)))
            return self.grasp.apply(state, obs)
        obs = self.robot.observe(cameras=[self.camera])
        result = self.perception.process(
            obs.cameras[self.camera], robot_xy=(base[0], base[1]), furniture_poses=self.builder.furniture_poses()
        )
        self.last_result = result
        self.last_frame = obs.cameras[self.camera]
        seen = result.best().get(self.grasp.held) if self.grasp.held is not None else None
        if seen is not None:
            self.grasp.refine(seen.position, obs)
        grip = self.grasp.grip_pose(obs)
        hand = None if grip is None else grip[:3, 3]
        return self.grasp.apply(self.builder.update(result, robot_pose, hand), obs)


class GraspBelief:
    """What the robot holds, from its own grasp: the camera rarely sees an object once it is in the hand.

    When the gripper closes (its opening falls from fully open) with a tracked object within
    ``reach`` of the grasp frame, that object is taken to be held: from then on its position in
    the world state follows the grasp frame at the offset it had, until the gripper opens again,
    where it is left; its orientation turns with the hand the same way. This is the belief a
    manipulation stack keeps about an attached object
    (the hand's own sensing), not a detection; the world state marks it ``source="grasp"``.
    When the camera does see the held object, :meth:`refine` corrects the offset (objects slip
    and turn in a parallel gripper as the hand tilts).
    """

    def __init__(
        self,
        frame: str = "gripper",
        reach: float = 0.15,
        open_above: float = 0.9,
        on_move: Callable[[str, np.ndarray, float], None] | None = None,
        refine_rate: float = 0.5,
    ) -> None:
        self.refine_rate = refine_rate  # share of a fresh detection taken into the in-hand offset
        self.frame = frame
        self.on_move = on_move  # (name, position, time): tell a tracker where the held object went
        self.reach = reach
        self.open_above = open_above
        self.held: str | None = None
        self._offset: np.ndarray | None = None  # object position in the grasp frame
        self._rotation = np.eye(3)  # object orientation in the grasp frame
        self._was_open: bool | None = None  # unknown before the first observation: a gripper already closed
        # then (the tucked arm's) has closed on nothing; only a closing seen from open takes hold of something

    def grip_pose(self, obs: Observation) -> np.ndarray | None:
        """4x4 world pose of the grasp frame in ``obs``, or None when the robot has none."""
        grip = obs.ee_poses.get(self.frame)
        if grip is None:
            return None
        return transform(quat_matrix(np.asarray(grip[3:7], dtype=float)), np.asarray(grip[:3], dtype=float))

    def refine(self, seen: np.ndarray, obs: Observation) -> None:
        """Correct the held object's offset in the hand from a detection of it (it slips and turns in the grip).

        A detection farther than ``reach`` from where the belief puts the object is taken for something else.
        """
        pose = self.grip_pose(obs)
        if pose is None or self._offset is None:
            return
        offset = np.linalg.solve(pose, np.append(np.asarray(seen, dtype=float), 1.0))[:3]
        if float(np.linalg.norm(offset - self._offset)) <= self.reach:
            self._offset = (1.0 - self.refine_rate) * self._offset + self.refine_rate * offset

    def apply(self, state: WorldState, obs: Observation) -> WorldState:
        """``state`` with the held object moved to the hand (and the belief updated from ``obs``)."""
        pose = self.grip_pose(obs)
        if pose is None or obs.gripper is None:
            return state
        is_open = float(obs.gripper) > self.open_above
        if is_open:
            self.held, self._offset, self._rotation = None, None, np.eye(3)
        elif self._was_open and self.held is None:  # closing now: take the nearest object within reach
            near = [
                (float(np.linalg.norm(o.position - pose[:3, 3])), name)
                for name, o in state.objects.items()
                if o.source != "map"
            ]
            near = [n for n in near if n[0] <= self.reach]
            if near:
                self.held = min(near)[1]
                obj = state.objects[self.held]
                self._offset = np.linalg.solve(pose, np.append(obj.position, 1.0))[:3]
                # its orientation turns with the hand from here: as estimated, or upright and unturned (what the
                # skills take an object without an orientation estimate to be)
                rot = np.eye(3) if obj.orientation is None else quat_matrix(np.asarray(obj.orientation, dtype=float))
                self._rotation = pose[:3, :3].T @ rot
        self._was_open = is_open
        if self.held is not None and self.held in state.objects and self._offset is not None:
            held = state.objects[self.held]
            held.position = (pose @ np.append(self._offset, 1.0))[:3]
            held.orientation = matrix_quat(pose[:3, :3] @ self._rotation)
            held.source, held.timestamp = "grasp", float(obs.timestamp)
            if self.on_move is not None:
                self.on_move(self.held, held.position, float(obs.timestamp))
        return state


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
