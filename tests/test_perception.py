"""Perception without the simulator: camera model, frame checks, marker pose, posture, fall detector, tracking."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tianji import assets
from tianji.control.robot import CameraFrame, Observation
from tianji.control.world_state import Posture
from tianji.perception import (
    CameraModel,
    Detection,
    FallDetector,
    FrameError,
    MarkerDetector,
    Perception,
    PerceptionResult,
    PersonDetection,
    SceneMap,
    WorldStateBuilder,
    classify_posture,
    world_state_from_dict,
    world_state_to_dict,
)
from tianji.perception.geometry import apply, invert, matrix_quat, quat_matrix, rot_z, rpy_matrix, transform
from tianji.perception.onnx_person import OnnxPersonDetector, parse_output
from tianji.perception.source import GraspBelief

PERCEPTION_DIR = Path(__file__).resolve().parents[1] / "perception"


@pytest.fixture(scope="module")
def care_map() -> SceneMap:
    return SceneMap.load("care_room")


def _k(w: int = 320, h: int = 240, fov: float = 45.0) -> np.ndarray:
    f = 0.5 * h / math.tan(math.radians(fov) / 2)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    return transform(np.column_stack([x, np.cross(z, x), z]), eye)


def _frame(w: int = 320, h: int = 240, **kw: object) -> CameraFrame:
    fields = {
        "name": "test",
        "timestamp": 0.0,
        "rgb": np.zeros((h, w, 3), np.uint8),
        "depth": np.full((h, w), 10.0, np.float32),
        "intrinsics": _k(w, h),
        "pose": _look_at(np.array([0.0, -1.5, 1.2]), np.array([0.0, 0.0, 0.5])),
    }
    fields.update(kw)
    return CameraFrame(**fields)  # type: ignore[arg-type]


def test_perception_does_not_import_pybullet_or_zmq() -> None:
    for path in PERCEPTION_DIR.glob("*.py"):
        text = path.read_text()
        for banned in ("pybullet", "pybullet_utils", "zmq"):
            assert f"import {banned}" not in text and f"from {banned}" not in text, f"{path.name} imports {banned}"
    code = (
        "import sys, tianji.perception, tianji.perception.source;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pybullet', 'pybullet_utils', 'zmq')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_geometry_round_trips() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = rpy_matrix(*rng.uniform(-math.pi, math.pi, 3))
        assert np.allclose(quat_matrix(matrix_quat(r)), r, atol=1e-9)
        t = transform(r, rng.normal(size=3))
        assert np.allclose(invert(t) @ t, np.eye(4), atol=1e-9)


def test_projection_round_trip() -> None:
    """World -> pixel + depth -> world is the identity; pixel centres sit at +0.5 (pixel i covers [i, i+1))."""
    cam = CameraModel(_k(), _look_at(np.array([1.0, -2.0, 1.3]), np.array([0.0, 0.0, 0.6])), 320, 240)
    pts = np.random.default_rng(1).uniform([-0.5, -0.5, 0.0], [0.5, 0.5, 1.2], (50, 3))
    uv, z = cam.project(pts)
    assert np.all(z > 0)
    assert np.allclose(cam.backproject(uv, z), pts, atol=1e-9)
    centre = cam.backproject(np.array([[160.0, 120.0]]), 2.0)[0]  # principal point: on the optical axis
    assert np.allclose(centre, cam.pose[:3, 3] + 2.0 * cam.pose[:3, 2])
    depth = np.full((240, 320), 2.0, np.float32)
    grid = cam.point_map(depth)
    assert np.allclose(grid[7, 11], cam.backproject(np.array([[11.5, 7.5]]), 2.0)[0], atol=1e-5)
    assert cam.k_opencv[0, 2] == 159.5 and cam.k_opencv[1, 2] == 119.5
    assert np.isnan(cam.project(cam.pose[:3, 3] - cam.pose[:3, 2])[0]).all()  # behind the camera


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rgb": np.zeros((0, 0, 3), np.uint8)}, "non-empty"),
        ({"rgb": np.zeros((240, 320), np.uint8)}, "(H, W, 3)"),
        ({"rgb": np.zeros((240, 320, 3), np.float32)}, "uint8"),
        ({"depth": np.zeros((120, 160), np.float32)}, "register the depth"),
        ({"depth": np.zeros((240, 320), np.uint16)}, "float metres"),
        ({"intrinsics": np.eye(2)}, "3x3"),
        ({"pose": np.full((4, 4), np.nan)}, "finite 4x4"),
        ({"pose": np.diag([1.0, 1.0, -1.0, 1.0])}, "proper rotation"),
    ],
)
def test_bad_frames_raise_a_clear_error(care_map: SceneMap, change: dict, words: str) -> None:
    with pytest.raises(FrameError, match=None) as info:
        Perception(care_map).process(_frame(**change))
    assert words in str(info.value)


def test_black_empty_or_invalid_frames_give_empty_results(care_map: SceneMap) -> None:
    perception = Perception(care_map)
    for depth in (
        np.full((240, 320), 10.0),
        np.zeros((240, 320)),
        np.full((240, 320), np.nan),
        np.full((240, 320), 1.0),
    ):
        result = perception.process(_frame(depth=depth.astype(np.float32)))
        assert result.detections == [] and result.people == []
        assert set(result.timings) >= {"markers", "colour", "people", "total"}
    tiny = perception.process(_frame(1, 1, intrinsics=_k(1, 1)))
    assert tiny.detections == [] and tiny.people == []


def test_scene_map_reads_markers_and_mountings(care_map: SceneMap) -> None:
    assert care_map.marker_names == {
        1: "cup",
        2: "bowl",
        4: "pill_box",
        10: "dining_table",
        11: "bedside_table",
        12: "bed",
        13: "chair",
        14: "wheelchair",
    }
    cup = care_map.object("cup")
    assert cup.marker_size == pytest.approx(0.045) and cup.black_square == pytest.approx(0.03375)
    assert np.allclose(cup.marker_in_object[:3, 3], [0.0407, 0.0, 0.053])
    assert cup.colour_detectable and not care_map.object("bed").colour_detectable
    assert care_map.object("dining_table").top_height == pytest.approx(0.75)
    assert care_map.object("bed").top_height == pytest.approx(0.58)
    assert care_map.place_surfaces["dining_table"] == "dining_table"


def test_marker_at_a_known_pose_is_found_without_the_simulator(care_map: SceneMap) -> None:
    """The printed cup marker warped into a synthetic RGB-D frame gives back the cup's base frame."""
    w, h = 640, 480
    k = _k(w, h)
    cup_pose = transform(rot_z(-1.2), [0.3, 0.1, 0.75])
    cam_pose = _look_at(np.array([0.3 + 0.9, 0.1 - 0.8, 1.25]), np.array([0.3, 0.1, 0.8]))
    cam = CameraModel(k, cam_pose, w, h)
    model = care_map.object("cup")
    card = cup_pose @ model.marker_in_object @ transform(None, (0, 0, 0.0005))  # printed face
    s = model.marker_size / 2
    corners = apply(card, np.array([[-s, s, 0], [s, s, 0], [s, -s, 0], [-s, -s, 0]]))
    uv, _ = cam.project(corners)
    printed = cv2.imread(str(assets.path("markers/aruco_4x4_50_id1_print.png")), cv2.IMREAD_GRAYSCALE)
    n = printed.shape[0]
    src = np.array([[0, 0], [n, 0], [n, n], [0, n]], np.float32)
    warp = cv2.getPerspectiveTransform(src, (uv - 0.5).astype(np.float32))  # continuous -> OpenCV pixel centres
    gray = cv2.warpPerspective(printed, warp, (w, h), flags=cv2.INTER_AREA, borderValue=128)
    # depth: the card's plane where the card is, far wall elsewhere
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones_like(cols)], axis=-1)
    normal_c = cam_pose[:3, :3].T @ card[:3, 2]
    point_c = cam.world_to_camera(card[:3, 3][None])[0]
    depth = (normal_c @ point_c) / (rays @ normal_c)
    inside = cv2.warpPerspective(np.full((n, n), 255, np.uint8), warp, (w, h)) > 0
    depth = np.where(inside, depth, 5.0).astype(np.float32)
    frame = _frame(w, h, rgb=np.repeat(gray[..., None], 3, axis=2), depth=depth, intrinsics=k, pose=cam_pose)
    (det,) = MarkerDetector(care_map).detect(frame, cam)
    assert det.name == "cup" and det.marker_id == 1 and det.source == "aruco"
    assert np.linalg.norm(det.position - cup_pose[:3, 3]) < 0.003
    yaw = math.atan2(quat_matrix(det.orientation)[1, 0], quat_matrix(det.orientation)[0, 0])
    assert abs(yaw - (-1.2)) < math.radians(1.0)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0.85, 1.6, True, 0.58), Posture.LYING_IN_BED),
        ((1.30, 0.6, False, None), Posture.SITTING),
        ((1.78, 0.5, False, None), Posture.STANDING),
        ((0.30, 1.7, False, None), Posture.FALLEN),
        ((0.75, 1.5, False, None), Posture.FALLEN),  # low and long: on the floor, partly propped up
        ((1.25, 0.4, True, 0.58), Posture.SITTING),  # sitting up in bed
    ],
)
def test_posture_rules(args: tuple, expected: Posture) -> None:
    assert classify_posture(*args)[0] is expected


def test_posture_with_the_head_out_of_the_image_uses_the_feet() -> None:
    assert classify_posture(1.40, 0.5, False, None, top_cut=True)[0] is Posture.STANDING
    assert classify_posture(1.20, 0.6, False, None, top_cut=True, feet_offset=0.45)[0] is Posture.SITTING
    assert classify_posture(1.20, 0.5, False, None, top_cut=True, feet_offset=0.05)[0] is Posture.STANDING


def test_posture_on_a_bed_with_the_head_cut_off_is_sitting_not_standing() -> None:
    # the camera close to someone sitting up in bed sees them cut at the top of the image
    assert classify_posture(1.44, 0.24, True, 0.58, top_cut=True)[0] is Posture.SITTING
    assert classify_posture(1.40, 0.3, False, None, top_cut=True)[0] is Posture.STANDING  # off the bed: standing
    assert classify_posture(2.20, 0.4, True, 0.58)[0] is Posture.STANDING  # standing on the mattress
    assert classify_posture(0.95, 1.6, True, 0.58, top_cut=True)[0] is Posture.LYING_IN_BED


def test_fall_detector_raises_once_after_the_hold_time() -> None:
    det = FallDetector(hold_time=1.0)
    rate = 10.0
    events = [det.update("standing", i / rate) for i in range(10)]
    events += [det.update(Posture.FALLEN, 1.0 + i / rate) for i in range(30)]
    raised = [e for e in events if e is not None]
    assert len(raised) == 1
    assert raised[0].since == pytest.approx(1.0) and raised[0].latency <= 1.0 + 1 / rate + 1e-9
    assert det.fallen
    det.update("standing", 5.0)  # re-armed
    assert not det.fallen
    for i in range(20):
        det.update("fallen", 6.0 + i / rate)
    assert len(det.events) == 2


def test_fall_detector_ignores_short_blips_and_lying_in_bed() -> None:
    det = FallDetector(hold_time=1.0)
    t = 0.0
    for _ in range(200):  # 40 s in bed with a 0.6 s misclassification every 4 s
        for posture in ["lying_in_bed"] * 17 + ["fallen"] * 3:
            assert det.update(posture, t) is None
            t += 0.2
    assert det.events == []
    # an unseen person between fallen frames: short gaps keep the timer, long ones restart it
    det2 = FallDetector(hold_time=1.0, max_gap=1.0)
    det2.update("fallen", 0.0)
    det2.update("unknown", 0.5)
    assert det2.update("fallen", 1.0) is not None
    det3 = FallDetector(hold_time=1.0, max_gap=1.0)
    det3.update("fallen", 0.0)
    det3.update("unknown", 2.0)
    assert det3.update("fallen", 2.5) is None


def _det(name: str, pos: tuple, t: float, source: str = "aruco", conf: float = 0.9) -> Detection:
    q = np.array([0, 0, 0, 1.0]) if source == "aruco" else None
    return Detection(name, np.array(pos, float), q, conf, t, source)


def test_world_state_builder_tracks_fuses_and_forgets(care_map: SceneMap) -> None:
    builder = WorldStateBuilder(care_map, object_timeout=5.0, person_timeout=2.0)
    state = builder.update(PerceptionResult(0.0, [_det("cup", (1.0, 1.2, 0.75), 0.0)]), (0.5, 0.0, 1.57))
    assert state.source == "perception" and np.allclose(state.robot_pose, (0.5, 0.0, 1.57))
    assert state.object("cup").source == "aruco"
    assert state.object("bed").source == "map"  # fixed furniture known from the map before it is seen
    assert "bedside" in state.places and state.place("dining_table").surface_height == 0.75
    # colour agreeing with the marker only refreshes it; the marker estimate is kept
    state = builder.update(PerceptionResult(1.0, [_det("cup", (1.02, 1.2, 0.75), 1.0, "colour", 0.7)]))
    assert np.allclose(state.object("cup").position, (1.0, 1.2, 0.75)) and state.object("cup").timestamp == 1.0
    # the cup moved: the track jumps
    state = builder.update(PerceptionResult(2.0, [_det("cup", (0.5, 1.2, 0.75), 2.0)]))
    assert np.allclose(state.object("cup").position, (0.5, 1.2, 0.75))
    person = PersonDetection(np.array([0.0, -0.5, 0.14]), Posture.FALLEN, 0.9, 2.0)
    state = builder.update(PerceptionResult(2.0, people=[person]))
    assert state.person("patient").posture is Posture.FALLEN
    for i in range(1, 8):
        builder.update(PerceptionResult(2.0 + 0.2 * i, people=[person]))
    assert len(builder.events) == 1 and builder.fallen
    state = builder.update(PerceptionResult(7.5))  # 5.5 s after the cup was seen, 3.1 s after the person
    assert "cup" not in state.objects and "patient" not in state.people
    assert state.object("dining_table").source == "map"


def test_the_robots_hand_at_a_face_keeps_the_head_and_mouth(care_map: SceneMap) -> None:
    builder = WorldStateBuilder(care_map)
    head, mouth = np.array([-1.8, 1.43, 1.21]), np.array([-1.7, 1.43, 1.27])
    seen = PersonDetection(np.array([-1.8, 1.43, 0.78]), Posture.SITTING, 0.6, 1.0, head=head, mouth=mouth)
    builder.update(PerceptionResult(1.0, people=[seen]))
    # the spoon and hand at the mouth join the body's points and pull the head estimate 20 cm towards the robot
    pulled = PersonDetection(
        np.array([-1.62, 1.25, 0.78]), Posture.SITTING, 0.6, 2.0, head=head - (0, 0.2, 0), mouth=mouth - (0, 0.2, 0)
    )
    state = builder.update(PerceptionResult(2.0, people=[pulled]), hand=mouth + np.array([0.05, -0.1, 0.02]))
    person = state.person("patient")
    assert np.allclose(person.mouth, mouth) and np.allclose(person.head, head)
    assert np.allclose(person.position[:2], (-1.8, 1.43))
    state = builder.update(PerceptionResult(3.0, people=[pulled]), hand=mouth + np.array([0.3, -0.6, 0.0]))  # hand away
    assert np.allclose(state.person("patient").mouth, mouth - (0, 0.2, 0))


def test_a_partial_view_of_someone_in_bed_does_not_overrule_the_whole_view(care_map: SceneMap) -> None:
    builder = WorldStateBuilder(care_map)
    head, mouth = np.array([-1.78, 1.42, 1.2]), np.array([-1.68, 1.42, 1.26])
    whole = PersonDetection(
        np.array([-1.77, 1.42, 0.75]), Posture.SITTING, 0.6, 1.0, head=head, mouth=mouth, on_bed=True
    )
    builder.update(PerceptionResult(1.0, people=[whole]))
    # close up, the camera sees only the legs on the mattress: "lying", with a head guessed at their far end
    legs = PersonDetection(
        np.array([-1.22, 1.42, 0.72]),
        Posture.LYING_IN_BED,
        0.9,
        2.0,
        head=np.array([-1.69, 1.4, 0.88]),
        mouth=np.array([-1.75, 1.39, 0.98]),
        on_bed=True,
        truncated=True,
    )
    person = builder.update(PerceptionResult(2.0, people=[legs])).person("patient")
    assert person.posture is Posture.SITTING and np.allclose(person.mouth, mouth)
    assert np.allclose(person.position, (-1.77, 1.42, 0.75)) and person.timestamp == 2.0
    lying = dataclasses.replace(legs, truncated=False, timestamp=3.0)  # a whole view of her lying down: believed
    assert builder.update(PerceptionResult(3.0, people=[lying])).person("patient").posture is Posture.LYING_IN_BED


def test_grasp_belief_follows_the_hand_and_corrects_the_offset_from_a_detection(care_map: SceneMap) -> None:
    builder = WorldStateBuilder(care_map)
    state = builder.update(PerceptionResult(0.0, [_det("spoon", (1.0, 1.2, 0.75), 0.0, "colour")]))
    belief = GraspBelief()

    def obs(x: float, opening: float) -> Observation:
        z = np.zeros(3)
        grip = np.array([x, 1.2, 0.80, 0, 0, 0, 1.0])
        return Observation(0.0, z, z, z, np.array([0, 0, 0, 0, 0, 0, 1.0]), np.zeros(6), {"gripper": grip}, opening)

    assert belief.apply(state, obs(1.0, 0.0)).object("spoon").source == "colour"  # closed from the start: not held
    assert belief.held is None
    belief.apply(state, obs(1.0, 1.0))
    state = belief.apply(builder.world_state(), obs(1.0, 0.0))  # closes on the spoon 5 cm under the grasp frame
    assert belief.held == "spoon"
    state = belief.apply(builder.world_state(), obs(1.5, 0.0))
    assert np.allclose(state.object("spoon").position, (1.5, 1.2, 0.75)) and state.object("spoon").source == "grasp"
    for _ in range(10):  # the camera sees it 4 cm lower in the hand: it slipped
        belief.refine(np.array([1.5, 1.2, 0.71]), obs(1.5, 0.0))
    held = belief.apply(builder.world_state(), obs(1.5, 0.0)).object("spoon")
    assert held.position[2] == pytest.approx(0.71, abs=1e-3)
    belief.refine(np.array([1.5, 1.6, 0.71]), obs(1.5, 0.0))  # 40 cm away: something else
    assert belief.apply(builder.world_state(), obs(1.5, 0.0)).object("spoon").position[1] == pytest.approx(1.2)
    turned = obs(1.5, 0.0)  # the hand turns 90 degrees about the vertical: so does what it holds
    turned.ee_poses["gripper"][3:] = (0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4))
    held = belief.apply(builder.world_state(), turned).object("spoon")
    assert np.allclose(quat_matrix(held.orientation) @ [1.0, 0.0, 0.0], (0.0, 1.0, 0.0), atol=1e-9)
    assert np.allclose(held.position, (1.5, 1.2, 0.71), atol=1e-3)  # the offset was along the hand's axis


def test_world_state_json_round_trip(care_map: SceneMap) -> None:
    builder = WorldStateBuilder(care_map)
    person = PersonDetection(
        np.array([0.0, -0.5, 1.0]), Posture.STANDING, 0.9, 1.0, head=np.array([0, -0.5, 1.5]), mouth=None
    )
    state = builder.update(PerceptionResult(1.0, [_det("cup", (1.0, 1.2, 0.75), 1.0)], [person]), (0, 0, 0))
    data = json.loads(json.dumps(world_state_to_dict(state)))
    back = world_state_from_dict(data)
    assert back.person("patient").posture is Posture.STANDING and back.person("patient").mouth is None
    assert np.allclose(back.object("cup").position, state.object("cup").position)
    assert back.place("bedside").surface_height == state.place("bedside").surface_height


def test_onnx_output_layouts_and_missing_model(tmp_path: Path) -> None:
    yolo = np.zeros((1, 6, 3), np.float32)  # (1, 4 + 2 classes, 3 boxes): person is class 0
    yolo[0, :, 0] = [320, 240, 100, 200, 0.9, 0.1]
    yolo[0, :, 1] = [100, 100, 50, 50, 0.1, 0.8]
    boxes = parse_output(yolo, 0, (640, 480), (640, 640))
    assert boxes[0][4] == pytest.approx(0.9) and boxes[0][0] == pytest.approx(270) and boxes[0][1] == pytest.approx(105)
    ssd = np.array([[[[0, 1, 0.7, 0.1, 0.2, 0.3, 0.4], [0, 3, 0.9, 0, 0, 1, 1]]]], np.float32)
    (box,) = parse_output(ssd, 1, (100, 50), (300, 300), layout="ssd")
    assert box == pytest.approx((10, 10, 30, 20, 0.7))
    with pytest.raises(FileNotFoundError, match="ONNX person detector not found"):
        OnnxPersonDetector(tmp_path / "missing.onnx")
