"""Perception on frames rendered by the simulator: projection, markers, postures, falls, the world-state switch, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pybullet as pb
import pytest
import typer
from typer.testing import CliRunner

from tianji.cli_perception import perceive, point_head
from tianji.control.world_state import Posture
from tianji.perception import (
    FALL_HOLD_TIME,
    CameraModel,
    FallDetector,
    PerceivedWorld,
    Perception,
    WorldStateBuilder,
    world_state_source,
)
from tianji.perception.geometry import quat_matrix
from tianji.perception.person import PersonDetector
from tianji.sim import World, scene
from tianji.sim.camera import CameraIntrinsics, look_at
from tianji.sim.world_state import from_scene

SKIN, CLOTHES = (0.80, 0.60, 0.46, 1.0), (0.30, 0.40, 0.55, 1.0)


@pytest.fixture(scope="module")
def perception() -> Perception:
    return Perception("care_room")


@pytest.fixture
def care() -> Iterator[scene.Scene]:
    with scene.load("care_room", seed=0) as s:
        yield s


def _person(care: scene.Scene, preset: str, xy: tuple[float, float], yaw: float) -> None:
    """Replace the patient by a human in ``preset``, dressed (skin on head, hands, forearms)."""
    care.robots["patient"].close()
    care.world.robots.pop("patient", None)
    person = care.world.add_robot("human", xy, yaw, preset=preset, label="patient")
    care.robots["patient"] = person
    c = care.world.client
    for j in range(-1, c.getNumJoints(person.body_id)):
        link = c.getBodyInfo(person.body_id)[0].decode() if j < 0 else c.getJointInfo(person.body_id, j)[12].decode()
        skin = link == "middle_head" or link.endswith(("_hand", "_lowerarm"))
        c.changeVisualShape(person.body_id, j, rgbaColor=list(SKIN if skin else CLOTHES))


def _view(care: scene.Scene, eye: tuple, target: tuple, size: tuple[int, int] = (320, 240)) -> object:
    return care.world.render(pose=look_at(eye, target), intrinsics=CameraIntrinsics(*size, 45.0), shadows=False)


def test_projection_matches_the_simulator_renderer() -> None:
    """Known points project where the simulator draws them (sphere centroids), to within a pixel.

    The tiny renderer samples pixels half a pixel off the documented centres (measured +0.5 px
    in x, -0.5 px in y); the bound here is that sub-pixel tolerance, see perception/README.md.
    """
    with World() as world:
        c = world.client
        visual = c.createVisualShape(pb.GEOM_SPHERE, radius=0.04, rgbaColor=[1, 0, 0, 1])
        points = np.array([[0.2, 0.1, 0.5], [-0.3, 0.2, 0.8], [0.1, -0.3, 0.3]])
        bodies = [c.createMultiBody(0, -1, visual, p.tolist()) for p in points]
        frame = world.render(pose=look_at([1.4, -1.1, 1.2], [0, 0, 0.5]), intrinsics=CameraIntrinsics(640, 480, 45.0))
        cam = CameraModel.from_frame(frame)
        for body, point in zip(bodies, points, strict=True):
            rows, cols = np.nonzero(frame.segmentation == body)
            uv, _ = cam.project(point)
            assert np.hypot(cols.mean() + 0.5 - uv[0, 0], rows.mean() + 0.5 - uv[0, 1]) < 0.8
            # depth + pixel -> world lands on the sphere's surface
            r, col = int(uv[0, 1]), int(uv[0, 0])
            surface = cam.backproject(np.array([[col + 0.5, r + 0.5]]), frame.depth[r, col])[0]
            assert abs(np.linalg.norm(surface - point) - 0.04) < 0.006


def test_markers_seen_by_the_head_camera_give_object_poses(care: scene.Scene, perception: Perception) -> None:
    tiago = care.robots["tiago"]
    point_head(tiago, care.objects["cup"].position() + np.array([0, 0, 0.05]))
    frame = tiago.camera("head", size=(640, 480))
    found = {d.name: d for d in perception.process(frame).detections if d.source == "aruco"}
    truth = from_scene(care)
    assert "cup" in found, "the cup's marker was not found"
    assert np.linalg.norm(found["cup"].position - truth.objects["cup"].position) < 0.005
    yaw = np.arctan2(*quat_matrix(found["cup"].orientation)[[1, 0], 0])
    assert abs(yaw - np.arctan2(*quat_matrix(truth.objects["cup"].orientation)[[1, 0], 0])) < np.radians(3)
    colour = {d.name for d in perception.process(frame).detections if d.source == "colour"}
    assert {"cup", "bowl", "spoon", "pill_box"} <= colour


@pytest.mark.parametrize(
    ("posture", "preset", "place", "eye", "target"),
    [
        ("lying_in_bed", None, None, (-0.3, 0.2, 1.3), (-1.6, 1.4, 0.7)),
        ("sitting", "sitting", "chair", (1.7, -0.8, 1.2), (1.75, 0.72, 0.7)),
        ("standing", "standing", ((0.0, -0.6), 0.3), (1.8, -1.6, 1.25), (0.0, -0.6, 0.9)),
        ("fallen", "lying", ((-0.6, -0.5), 0.0), (0.9, -0.9, 1.25), (-0.6, -0.5, 0.2)),
    ],
)
def test_each_posture_is_classified(
    care: scene.Scene,
    perception: Perception,
    posture: str,
    preset: str | None,
    place: object,
    eye: tuple,
    target: tuple,
) -> None:
    if preset is not None:
        if place == "chair":
            pos, quat = care.objects["chair"].pose()
            _person(care, preset, (float(pos[0]), float(pos[1])), pb.getEulerFromQuaternion(quat)[2])
        else:
            (xy, yaw) = place  # type: ignore[misc]
            _person(care, preset, xy, yaw)
    assert from_scene(care).person("patient").posture.value == posture  # the scene is what we meant
    frame = _view(care, eye, target)
    result = perception.process(frame, robot_xy=eye[:2])
    assert len(result.people) == 1, [p.posture for p in result.people]  # TIAGo and the G1 are not people
    person = result.people[0]
    assert person.posture.value == posture
    truth = from_scene(care).person("patient")
    assert np.linalg.norm(person.position - truth.position) < 0.2
    if person.head is not None:
        assert np.linalg.norm(person.head - truth.head) < 0.2


def test_fall_is_detected_within_the_hold_time_and_not_in_bed(care: scene.Scene, perception: Perception) -> None:
    rate = 5.0
    in_bed = perception.process(_view(care, (-0.3, 0.2, 1.3), (-1.6, 1.4, 0.7)), robot_xy=(-0.3, 0.2))
    builder = WorldStateBuilder(perception.map)
    for i in range(int(60 * rate)):  # a minute in bed
        in_bed.timestamp = i / rate
        builder.update(in_bed)
    assert builder.events == [] and builder.world_state().person("patient").posture is Posture.LYING_IN_BED
    _person(care, "lying", (-0.6, -0.5), 0.0)
    fallen = perception.process(_view(care, (0.9, -0.9, 1.25), (-0.6, -0.5, 0.2)), robot_xy=(0.9, -0.9))
    detector = FallDetector()
    t_fall, event = 100.0, None
    for i in range(int(5 * rate)):
        event = event or detector.update(fallen.people[0].posture, t_fall + i / rate)
    assert event is not None and event.since == t_fall
    assert event.latency <= FALL_HOLD_TIME + 1 / rate


def test_one_switch_between_ground_truth_and_perception(care: scene.Scene) -> None:
    tiago = care.robots["tiago"]
    point_head(tiago, care.objects["cup"].position() + np.array([0, 0, 0.05]))
    truth_source = world_state_source("ground_truth", ground_truth=lambda: from_scene(care))
    perceived = world_state_source("perception", robot=tiago)
    assert isinstance(perceived, PerceivedWorld)
    truth, seen = truth_source(), perceived()
    assert seen.source == "perception" and truth.source == "ground_truth"
    for name in ("cup", "bowl", "pill_box"):
        assert np.linalg.norm(seen.object(name).position - truth.object(name).position) < 0.03
    assert np.linalg.norm(seen.robot_pose[:2] - truth.robot_pose[:2]) < 1e-3
    assert set(seen.places) == set(truth.places)
    first = perceived.last_result
    perceived()  # same robot time: no new image, the tracked state
    assert perceived.last_result is first
    care.world.step(15)  # 0.25 s later: a new image
    perceived()
    assert perceived.last_result is not first
    with pytest.raises(ValueError, match="use one of"):
        world_state_source("oracle")


def test_person_boxes_from_a_detector_replace_the_skin_cue(care: scene.Scene, perception: Perception) -> None:
    """An ONNX-style detector's boxes (here a stand-in object) decide where people are."""
    frame = _view(care, (-0.3, 0.2, 1.3), (-1.6, 1.4, 0.7))

    class Boxes:
        def __init__(self, boxes: list) -> None:
            self.boxes = boxes

        def detect(self, rgb: np.ndarray) -> list:
            return self.boxes

    cam = CameraModel.from_frame(frame)
    everywhere = PersonDetector(perception.map, onnx=Boxes([(0, 0, 320, 240, 0.9)])).detect(frame, cam)
    assert everywhere and everywhere[0].posture is Posture.LYING_IN_BED and everywhere[0].source == "onnx+depth"
    assert PersonDetector(perception.map, onnx=Boxes([])).detect(frame, cam) == []


def test_perceive_cli_writes_picture_and_world_state(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command()(perceive)
    app.command("other")(lambda: None)  # two commands, so `perceive` is a sub-command as in the real CLI
    runner = CliRunner()
    result = runner.invoke(app, ["perceive", "--out", str(tmp_path), "--randomize", "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "annotated.png").stat().st_size > 1000
    state = json.loads((tmp_path / "world_state.json").read_text())
    assert state["source"] == "perception" and "cup" in state["objects"]
    assert "detections" in json.loads((tmp_path / "detections.json").read_text())
    bad = runner.invoke(app, ["perceive", "--out", str(tmp_path), "--look-at", "teapot"])
    assert bad.exit_code == 2 and "not an object, place or robot" in bad.output and "Traceback" not in bad.output
