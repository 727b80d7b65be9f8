"""Perception accuracy and speed against simulator ground truth -> experiments/results/perception.md.

Run from the repository root::

    python experiments/bench/perception.py            # 200 views + fall episodes (about 6 min on 2 cores)
    python experiments/bench/perception.py --quick    # smoke run, prints the tables only

Each view is its own seeded, randomized care room (``scene.load(seed=s, randomize=True)``)
with the patient put in one of four postures (seed % 4: lying in bed, sitting on the chair,
standing or fallen on a free floor spot; skin tone and clothing drawn from palettes). TIAGo
is teleported to a free spot and its head aimed (a) at the dining table, 1-2 m from the
table objects, and (b) at the person, 1.5-3 m away; its head camera renders each at
320x240 and 640x480. Ground truth is ``tianji.sim.world_state.from_scene`` and the
segmentation mask (used here only, never by perception). Fall episodes: a standing person
is swapped for a fallen one at t = 1.6 s while perception runs at 5 Hz with a jittering
head; no-fall episodes (in bed, sitting, standing and shuffling) sweep the head for 30 s.
Speed is timed afterwards in one process on one core (OpenCV and BLAS limited to one thread).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from tianji.cli_perception import point_head  # noqa: E402
from tianji.perception import Perception, WorldStateBuilder  # noqa: E402
from tianji.perception.geometry import apply, quat_matrix, transform  # noqa: E402
from tianji.sim import scene as scenes  # noqa: E402
from tianji.sim.world_state import from_scene  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "experiments" / "results" / "perception.md"
POSTURES = ("lying_in_bed", "sitting", "standing", "fallen")
SIZES = ((320, 240), (640, 480))
SKIN = ((0.91, 0.76, 0.65), (0.80, 0.60, 0.46), (0.55, 0.38, 0.26), (0.36, 0.24, 0.17))
CLOTHES = (  # muted everyday colours, plus a saturated burgundy that shares the cup's hue
    (0.62, 0.75, 0.90), (0.50, 0.50, 0.52), (0.20, 0.25, 0.40), (0.80, 0.75, 0.65),
    (0.25, 0.35, 0.28), (0.45, 0.15, 0.20), (0.90, 0.90, 0.88),
)  # fmt: skip
SKIN_LINKS = re.compile(r"middle_head|.*_hand|.*_lowerarm")
SMALL = ("cup", "bowl", "spoon", "pill_box")
TOLERANCE = {"small": 0.05, "furniture": 0.10}  # m: a detection farther than this from the truth is false
MARKER_MIN_PX = 10  # black-square side: below this the marker is out of reach (see the table by size)
MIN_VISIBLE_PX = 40  # at 320x240 (x4 at 640x480): below this an object does not count as visible
RATE = 5.0  # Hz, perception rate in the fall episodes
FALL_AT = 1.6  # s


# ------------------------------------------------------------------ scene set-up
def dress(care: Any, robot: Any, skin: tuple, clothes: tuple) -> None:
    """Colour a human model: skin on head, hands and forearms, clothes elsewhere."""
    c = care.world.client
    for j in range(-1, c.getNumJoints(robot.body_id)):
        link = c.getBodyInfo(robot.body_id)[0].decode() if j < 0 else c.getJointInfo(robot.body_id, j)[12].decode()
        colour = skin if SKIN_LINKS.fullmatch(link) else clothes
        c.changeVisualShape(robot.body_id, j, rgbaColor=[*colour, 1.0])


def obstacles(care: Any, skip: tuple[str, ...] = ()) -> list[tuple[np.ndarray, np.ndarray]]:
    """x-y bounding boxes of every object and robot but those named in ``skip``."""
    c = care.world.client
    bodies = [o.body_id for n, o in care.objects.items() if n not in skip]
    bodies += [r.body_id for n, r in care.robots.items() if n not in skip]
    out = []
    for b in bodies:
        boxes = [c.getAABB(b, j) for j in range(-1, c.getNumJoints(b))]
        out.append((np.min([x[0] for x in boxes], axis=0)[:2], np.max([x[1] for x in boxes], axis=0)[:2]))
    return out


def is_free(care: Any, points: np.ndarray, radius: float, skip: tuple[str, ...] = ()) -> bool:
    """All (N, 2) points inside the room by ``radius`` and ``radius`` clear of every obstacle box."""
    sx, sy = care.room_size
    pts = np.atleast_2d(points)
    if np.any(np.abs(pts[:, 0]) > sx / 2 - radius) or np.any(np.abs(pts[:, 1]) > sy / 2 - radius):
        return False
    for lo, hi in obstacles(care, skip):
        if np.any(np.all((pts > lo - radius) & (pts < hi + radius), axis=1)):
            return False
    return True


def free_spot(
    care: Any, posture: str, rng: np.random.Generator, at: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """(x, y, yaw) where a standing or fallen person fits on the floor clear of furniture and robots."""
    for _ in range(300):
        xy = np.asarray(at, dtype=float) if at is not None else rng.uniform([-2.0, -1.6], [2.0, 1.6])
        yaw = float(rng.uniform(-math.pi, math.pi))
        d = np.array([math.cos(yaw), math.sin(yaw)])  # the lying preset's feet point along +d, its head along -d
        body = xy + np.outer(np.linspace(-0.6, 1.0, 9), d) if posture == "fallen" else xy[None]
        if is_free(care, body, 0.3, skip=("patient",)):
            return xy, yaw
    raise RuntimeError(f"no free floor spot for a {posture} person")


def add_person(care: Any, posture: str, rng: np.random.Generator, spot: tuple[np.ndarray, float] | None = None) -> Any:
    """Replace the patient by a human in ``posture`` (lying_in_bed keeps the bed patient); returns it."""
    patient = care.robots["patient"]
    if posture != "lying_in_bed":
        patient.close()
        care.world.robots.pop("patient", None)
        if posture == "sitting":
            pos, quat = care.objects["chair"].pose()
            xy, yaw = pos[:2], math.atan2(quat_matrix(quat)[1, 0], quat_matrix(quat)[0, 0])
        else:
            xy, yaw = spot if spot is not None else free_spot(care, posture, rng)
        preset = {"sitting": "sitting", "standing": "standing", "fallen": "lying"}[posture]
        patient = care.world.add_robot(
            "human", (float(xy[0]), float(xy[1])), float(yaw), preset=preset, label="patient"
        )
        care.robots["patient"] = patient
    dress(care, patient, SKIN[rng.integers(len(SKIN))], CLOTHES[rng.integers(len(CLOTHES))])
    return patient


def place_robot(care: Any, target: np.ndarray, dist: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """Teleport TIAGo to a free spot ``dist`` m from ``target`` facing it, aim its head; returns its base pose."""
    tiago = care.robots["tiago"]
    spec = tiago.spec
    for _ in range(400):
        theta, r = rng.uniform(-math.pi, math.pi), rng.uniform(*dist)
        base = target[:2] + (r + 0.2) * np.array([math.cos(theta), math.sin(theta)])
        if is_free(care, base, 0.4, skip=("tiago",)):
            break
    else:
        raise RuntimeError("no free spot for TIAGo")
    yaw = theta + math.pi + rng.uniform(-0.15, 0.15)
    q = tiago.observe().joint_positions.astype(float)
    q[spec.index("torso_lift_joint")] = rng.uniform(0.0, 0.35)
    tiago.reset(positions=q, base_position=(base[0], base[1], 0.0), base_yaw=yaw)
    point_head(tiago, target)
    return np.array([base[0], base[1], yaw])


def marker_view(care: Any, perception: Perception, name: str, frame: Any) -> tuple[bool, float]:
    """(marker card faces the camera unoccluded, black-square side in pixels) from ground truth."""
    model = perception.map.objects[name]
    pos, quat = care.objects[name].pose()
    card = transform(quat_matrix(quat), pos) @ model.marker_in_object
    h = model.black_square / 2
    corners = apply(card, np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0], [0, 0, 0]]))
    k, pose = frame.intrinsics, frame.pose
    cam = (corners - pose[:3, 3]) @ pose[:3, :3]
    if np.any(cam[:, 2] <= 0.05):
        return False, 0.0
    uv = cam[:, :2] / cam[:, 2:] * np.diag(k)[:2] + k[:2, 2]
    side = float(np.mean(np.linalg.norm(uv[:4] - np.roll(uv[:4], 1, axis=0), axis=1)))
    w, hgt = frame.size
    if np.any(uv[:4] < 0) or np.any(uv[:4, 0] >= w) or np.any(uv[:4, 1] >= hgt):
        return False, side
    view = pose[:3, 3] - corners[4]
    facing = float(card[:3, 2] @ view) / float(np.linalg.norm(view)) > math.cos(math.radians(75))
    c, r = int(uv[4, 0]), int(uv[4, 1])
    unoccluded = (
        abs(float(frame.depth[r, c]) - cam[4, 2]) < 0.01 and frame.segmentation[r, c] == care.objects[name].body_id
    )
    return bool(facing and unoccluded), side


# ------------------------------------------------------------------ one seeded view
_CACHE: dict[str, Perception] = {}


def _perception() -> Perception:
    """One Perception per worker process (the scene map is parsed once)."""
    if "p" not in _CACHE:
        _CACHE["p"] = Perception("care_room")
    return _CACHE["p"]


def view_task(seed: int) -> dict[str, Any]:
    """Records of one randomized care room: object view and person view, both resolutions."""
    rng = np.random.default_rng(10_000 + seed)
    posture = POSTURES[seed % 4]
    perception = _perception()
    records: dict[str, Any] = {"seed": seed, "posture": posture, "objects": [], "people": [], "frames": []}
    with scenes.load("care_room", seed=seed, randomize=True) as care:
        patient = add_person(care, posture, rng)
        truth = from_scene(care)
        person = truth.people["patient"]
        assert person.posture.value == posture, f"seed {seed}: built {posture}, ground truth says {person.posture}"
        table = np.mean([care.objects[n].position() for n in SMALL], axis=0) + rng.uniform(-0.1, 0.1, 3)
        aim = person.position.copy()
        aim[2] = {"lying_in_bed": 0.75, "sitting": 0.7, "standing": 0.9, "fallen": 0.2}[posture]
        for view, target, dist, sizes in (
            ("objects", table, (1.0, 2.0), SIZES),
            ("person", aim, (1.5, 3.0), SIZES[:1]),  # posture at the simulated camera's own size
        ):
            base = place_robot(care, target, dist, rng)
            for w, h in sizes:
                frame = care.robots["tiago"].camera("head", size=(w, h))
                result = perception.process(frame, robot_xy=(base[0], base[1]))
                records["objects"] += _score_objects(care, perception, truth, frame, result, view, w)
                records["people"].append(_score_person(patient, person, frame, result, view, w))
                if seed < 8:
                    records["frames"].append(frame)
    return records


def _score_objects(care, perception, truth, frame, result, view, w) -> list[dict[str, Any]]:
    counts = np.bincount(frame.segmentation[frame.segmentation >= 0].ravel())
    best = result.best()
    rows = []
    for name, obj in care.objects.items():
        px = int(counts[obj.body_id]) if obj.body_id < len(counts) else 0
        model = perception.map.objects[name]
        marker_ok, side = marker_view(care, perception, name, frame) if model.marker_id is not None else (False, 0.0)
        det = best.get(name)
        err = None if det is None else float(np.linalg.norm(det.position - truth.objects[name].position))
        colour_det = next((d for d in result.detections if d.name == name and d.source == "colour"), None)
        rows.append(
            {
                "view": view, "size": w, "name": name, "px": px, "marker_visible": marker_ok, "side_px": side,
                "range": float(np.linalg.norm(truth.objects[name].position - frame.pose[:3, 3])),
                "source": None if det is None else det.source, "error": err,
                "colour_error": None if colour_det is None
                else float(np.linalg.norm(colour_det.position - truth.objects[name].position)),
            }
        )  # fmt: skip
    return rows


def _score_person(patient, person, frame, result, view, w) -> dict[str, Any]:
    px = int(np.count_nonzero(frame.segmentation == patient.body_id))
    found = result.people[0] if result.people else None
    row = {"view": view, "size": w, "truth": person.posture.value, "px": px, "n_found": len(result.people)}
    row["pred"] = found.posture.value if found else "none"
    if found is not None:
        row["near"] = float(np.linalg.norm(found.position[:2] - person.position[:2])) < 0.6
        for key, est, gt in (("pelvis", found.position, person.position), ("head", found.head, person.head)):
            row[key] = None if est is None else float(np.linalg.norm(est - gt))
        row["mouth"] = None if found.mouth is None else float(np.linalg.norm(found.mouth - person.mouth))
    return row


# ------------------------------------------------------------------ fall episodes
def episode_task(args: tuple[int, str, float]) -> dict[str, Any]:
    """One time series at RATE Hz: ``fall`` (standing, then fallen at FALL_AT) or a no-fall posture."""
    seed, kind, seconds = args
    rng = np.random.default_rng(50_000 + seed)
    perception = _perception()
    builder = WorldStateBuilder(perception.map)
    start = "standing" if kind == "fall" else kind
    postures = []
    with scenes.load("care_room", seed=seed, randomize=True) as care:
        fall_spot = free_spot(care, "fallen", rng) if kind == "fall" else None
        patient = add_person(care, "fallen" if kind == "fall" else start, rng, fall_spot)
        spot = patient.observe().base_pose[:2].astype(float)
        aim = np.array([spot[0], spot[1], {"lying_in_bed": 0.75, "sitting": 0.7}.get(start, 0.5)])
        base = place_robot(care, aim, (2.0, 3.0), rng)  # clear of the fallen body, then stand the person up
        if kind == "fall":
            patient = add_person(care, "standing", rng, fall_spot)
        tiago = care.robots["tiago"]
        q0 = tiago.observe().joint_positions.astype(float)
        pan, tilt = tiago.spec.index("head_1_joint"), tiago.spec.index("head_2_joint")
        for i in range(int(seconds * RATE)):
            t = i / RATE
            if kind == "fall" and i == round(FALL_AT * RATE):
                patient = add_person(care, "fallen", rng, fall_spot)
            elif kind == "standing" and i % 5 == 0:  # shuffle about
                step = spot + rng.normal(0, 0.05, 2)
                if is_free(care, step, 0.3, skip=("patient", "tiago")):
                    spot = step
                    patient.reset(base_position=(spot[0], spot[1], patient.observe().base_pose[2]))
            q = q0.copy()
            sweep = 0.35 * math.sin(2 * math.pi * t / 10.0) if kind != "fall" else 0.0
            q[pan] += sweep + rng.normal(0, 0.02)
            q[tilt] += rng.normal(0, 0.02)
            tiago.reset(positions=q)
            frame = tiago.camera("head")
            frame.timestamp = t
            result = perception.process(frame, robot_xy=(base[0], base[1]))
            builder.update(result, base)
            postures.append(result.people[0].posture.value if result.people else "none")
    return {
        "seed": seed,
        "kind": kind,
        "seconds": seconds,
        "events": [e.time for e in builder.events],
        "postures": postures,
    }


# ------------------------------------------------------------------ speed
def speed(frames: list[Any], repeats: int = 3) -> dict[int, dict[str, float]]:
    """Per image width: frames per second and mean stage times (ms) of Perception.process + builder, one core.

    Both wall time and this process's CPU time are taken: on a shared machine the CPU time is
    the steadier measure of what one core needs per frame.
    """
    cv2.setNumThreads(1)
    perception = Perception("care_room")
    out: dict[int, dict[str, float]] = {}
    for w, _ in SIZES:
        chosen = [f for f in frames if f.size[0] == w]
        builder = WorldStateBuilder(perception.map)
        stages: dict[str, list[float]] = defaultdict(list)
        perception.process(chosen[0])  # warm-up
        for _ in range(repeats):
            for frame in chosen:
                t0, c0 = time.perf_counter(), time.process_time()
                result = perception.process(frame, robot_xy=(frame.pose[0, 3], frame.pose[1, 3]))
                builder.update(result)
                stages["frame"].append(time.perf_counter() - t0)
                stages["cpu"].append(time.process_time() - c0)
                for k, v in result.timings.items():
                    stages[k].append(v)
        per = {k: 1000 * float(np.mean(v)) for k, v in stages.items()}
        per["p95"] = 1000 * float(np.percentile(stages["frame"], 95))
        per["fps"] = 1000.0 / per["frame"]
        per["cpu_fps"] = 1000.0 / per["cpu"]
        per["n"] = len(stages["frame"])
        out[w] = per
    return out


# ------------------------------------------------------------------ report
def _q(values: list[float], scale: float = 1000.0) -> str:
    if not values:
        return "- | - | -"
    v = np.asarray(values) * scale
    return f"{len(v)} | {np.median(v):.1f} | {np.percentile(v, 95):.1f}"


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pool), seconds."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def report(views: list[dict], episodes: list[dict], fps: dict, args: argparse.Namespace, wall: float) -> str:
    objects = [r for v in views for r in v["objects"]]
    people = [r for v in views for r in v["people"]]
    lines = [
        "# Perception accuracy and speed",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `experiments/bench/perception.py`"
        f" ({len(views)} views, {len(episodes)} time-series episodes) in {wall:.0f} s of wall time and"
        f" {_cpu_seconds():.0f} s of CPU time (all processes; rendering and scene loading are most of it) on"
        f" {os.cpu_count()} cores ({platform.processor() or platform.machine()}), {args.workers} worker processes,"
        f" load average {os.getloadavg()[0]:.1f} at the end (other jobs share the machine).",
        f"Rerun: `python experiments/bench/perception.py{' --quick' if args.quick else ''}`."
        " Ground truth: `tianji.sim.world_state.from_scene` and the simulator's segmentation mask"
        " (used only here, never by perception).",
        "",
        "Each view is `scene.load('care_room', seed=s, randomize=True)` with the patient in bed, sitting on the"
        " chair, standing or fallen (seed % 4), random skin tone and clothes; TIAGo is teleported to a free spot"
        " and its head camera (45 deg vertical fov) aimed at the dining table (1-2 m; rendered at 320x240, the"
        " simulated Xtion's size, and 640x480, the real Xtion's) and at the person (1.5-3 m; 320x240).",
        "",
        "## Marked objects: position error of the ArUco estimate (object base frame vs ground truth)",
        "",
        "| image | range to object | detections | median (mm) | p95 (mm) |",
        "| --- | --- | --- | --- | --- |",
    ]
    bins = ((0.0, 1.25), (1.25, 1.75), (1.75, 2.5), (2.5, 9.0))
    for w, h in SIZES:
        aruco = [r for r in objects if r["size"] == w and r["source"] == "aruco"]
        for lo, hi in bins:
            sel = [r["error"] for r in aruco if lo <= r["range"] < hi]
            lines.append(f"| {w}x{h} | {lo:.2f}-{hi:.2f} m | {_q(sel)} |")
        lines.append(f"| {w}x{h} | all | {_q([r['error'] for r in aruco])} |")
    lines += ["", "By object (all ranges): detections, median and p95 error (mm), at 640x480 | 320x240:", ""]
    lines += ["| object | 640x480 n, median, p95 | 320x240 n, median, p95 |", "| --- | --- | --- |"]
    for name in sorted({r["name"] for r in objects}):
        cells = [
            _q(
                [r["error"] for r in objects if r["size"] == w and r["name"] == name and r["source"] == "aruco"]
            ).replace(" | ", ", ")
            for w in (640, 320)
        ]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "ArUco detection rate against the marker's black-square side in pixels (marker facing the camera within"
        " 75 deg, inside the image, unoccluded):",
        "",
        "| side (px) | markers | detected |",
        "| --- | --- | --- |",
    ]
    marked = [r for r in objects if r["marker_visible"]]
    for lo, hi in ((0, 8), (8, 12), (12, 16), (16, 24), (24, 1e9)):
        sel = [r for r in marked if lo <= r["side_px"] < hi]
        hit = sum(r["source"] == "aruco" for r in sel)
        lines.append(f"| {lo}-{hi if hi < 1e9 else 'up'} | {len(sel)} | {hit / max(1, len(sel)):.0%} |")
    lines += ["", "## Colour detection (cup, bowl, spoon, pill box): position error of the colour estimate", ""]
    lines += ["| image | object | detections | median (mm) | p95 (mm) |", "| --- | --- | --- | --- | --- |"]
    for w, h in SIZES:
        for name in SMALL:
            sel = [r["colour_error"] for r in objects if r["size"] == w and r["name"] == name and r["colour_error"]]
            lines.append(f"| {w}x{h} | {name} | {_q(sel)} |")
    lines += ["", "## Detection recall and precision (best detection per object, either method)", ""]
    lines += [
        f"In view: a small object with at least {MIN_VISIBLE_PX} pixels at 320x240 ({4 * MIN_VISIBLE_PX} at 640x480);"
        f" furniture (found by its marker only) with its marker facing the camera, unoccluded and at least"
        f" {MARKER_MIN_PX} px wide. A detection is correct within {TOLERANCE['small'] * 100:.0f} cm (small objects)"
        f" or {TOLERANCE['furniture'] * 100:.0f} cm (furniture) of the truth; precision counts every detection.",
        "",
        "| image | objects | in view | recall | detections | precision |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for w, h in SIZES:
        for group, small in (("small (cup, bowl, spoon, pill box)", True), ("furniture", False)):
            sel = [r for r in objects if r["size"] == w and (r["name"] in SMALL) == small]
            tol = TOLERANCE["small" if small else "furniture"]
            if small:
                vis = [r for r in sel if r["px"] >= MIN_VISIBLE_PX * (w // 320) ** 2]
            else:
                vis = [r for r in sel if r["marker_visible"] and r["side_px"] >= MARKER_MIN_PX]
            found = [r for r in sel if r["error"] is not None]
            good = [r for r in found if r["error"] <= tol]
            recall = sum(r["error"] is not None and r["error"] <= tol for r in vis) / max(1, len(vis))
            precision = len(good) / max(1, len(found))
            lines.append(f"| {w}x{h} | {group} | {len(vis)} | {recall:.1%} | {len(found)} | {precision:.1%} |")
    lines += _posture_section(people)
    lines += _fall_section(episodes)
    lines += [
        "",
        "## Speed (one core: OpenCV and BLAS limited to one thread)",
        "",
        "Whole `Perception.process` (markers, colour, person, posture) plus `WorldStateBuilder.update`,"
        " on rendered frames (rendering not included).",
        "",
        "| image | frames timed | fps (wall) | fps (CPU time) | mean (ms) | p95 (ms) | markers (ms) | colour (ms)"
        " | person (ms) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (w, h), s in ((size, fps[size[0]]) for size in SIZES):
        lines.append(
            f"| {w}x{h} | {s['n']:.0f} | {s['fps']:.0f} | {s['cpu_fps']:.0f} | {s['frame']:.1f} | {s['p95']:.1f}"
            f" | {s['markers']:.1f} |"
            f" {s['colour']:.1f} | {s['people']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _posture_section(people: list[dict]) -> list[str]:
    lines = ["", "## Person and posture", ""]
    labels = [*POSTURES, "none"]
    for title, view in (("person views (head aimed at the person)", "person"), ("table views", "objects")):
        sel = [r for r in people if r["size"] == 320 and r["view"] == view and r["px"] >= 150]
        acc = sum(r["pred"] == r["truth"] for r in sel) / max(1, len(sel))
        lines += [
            f"Confusion matrix at 320x240, {title}, frames with at least 150 px of the person:"
            f" accuracy **{acc:.1%}** over {len(sel)} frames (rows truth, columns estimate).",
            "",
            "| truth \\ estimate | " + " | ".join(labels) + " |",
            "| --- |" + " --- |" * len(labels),
        ]
        counts = Counter((r["truth"], r["pred"]) for r in sel)
        lines += [f"| {t} | " + " | ".join(str(counts[(t, p)]) for p in labels) + " |" for t in POSTURES]
        lines.append("")
    absent = [r for r in people if r["px"] < 20]
    false = sum(r["n_found"] > 0 for r in absent)
    lines += [
        f"Frames without the person in view (< 20 px): {len(absent)}; frames where a person was reported anyway:"
        f" {false}.",
        "",
        "Key-point error (m) of the person found in person views at 320x240 (median, p95):",
        "",
        "| posture | frames | pelvis | head | mouth |",
        "| --- | --- | --- | --- | --- |",
    ]
    for posture in POSTURES:
        sel = [r for r in people if r["size"] == 320 and r["view"] == "person" and r["truth"] == posture]
        sel = [r for r in sel if r["pred"] != "none"]
        cells = []
        for key in ("pelvis", "head", "mouth"):
            v = [r[key] for r in sel if r.get(key) is not None]
            cells.append("-" if not v else f"{np.median(v):.2f}, {np.percentile(v, 95):.2f}")
        lines.append(f"| {posture} | {len(sel)} | " + " | ".join(cells) + " |")
    return lines


def _fall_section(episodes: list[dict]) -> list[str]:
    falls = [e for e in episodes if e["kind"] == "fall"]
    calm = [e for e in episodes if e["kind"] != "fall"]
    latencies = [
        min(t for t in e["events"] if t >= FALL_AT) - FALL_AT for e in falls if any(t >= FALL_AT for t in e["events"])
    ]
    early = sum(any(t < FALL_AT for t in e["events"]) for e in falls)
    hours = sum(e["seconds"] for e in calm) / 3600.0
    alarms = sum(len(e["events"]) for e in calm)
    frames = [p for e in calm for p in e["postures"]]
    lines = [
        "",
        f"## Fall detection (hold time 1.0 s, perception at {RATE:g} Hz on 320x240 head-camera frames)",
        "",
        f"- Fall episodes: {len(falls)} (standing person replaced by a fallen one at t = {FALL_AT} s):"
        f" detected **{len(latencies)}/{len(falls)}**"
        + (
            f", latency from the fall median {np.median(latencies):.2f} s, max {max(latencies):.2f} s"
            if latencies
            else ""
        )
        + f"; alarms before the fall: {early}.",
        f"- No-fall episodes: {len(calm)} ({', '.join(sorted(Counter(e['kind'] for e in calm)))}),"
        f" {hours * 60:.1f} min of simulated time, head sweeping +-0.35 rad: **{alarms} false alarm(s)**,"
        f" i.e. {alarms / max(hours, 1e-9):.1f} per hour (with 0 events in {hours:.2f} h the 95% upper"
        f" bound is {3.0 / max(hours, 1e-9):.0f} per hour);"
        f" single frames classified `fallen`: {sum(p == 'fallen' for p in frames)} of {len(frames)}.",
    ]
    for kind in sorted({e["kind"] for e in calm}):
        ps = Counter(p for e in calm if e["kind"] == kind for p in e["postures"])
        lines.append(f"  - {kind}: per-frame estimates {dict(ps)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the Markdown report unless --quick (then print it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=200, help="number of seeded care-room views")
    parser.add_argument("--falls", type=int, default=8, help="fall episodes")
    parser.add_argument("--calm", type=int, default=6, help="no-fall episodes (30 s each)")
    parser.add_argument("--quick", action="store_true", help="12 views, 2 + 3 short episodes; print only")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    calm_seconds = 30.0
    if args.quick:
        args.views, args.falls, args.calm, calm_seconds = 12, 2, 3, 6.0
    start = time.perf_counter()
    tasks = [(1000 + i, "fall", 5.0) for i in range(args.falls)]
    tasks += [(2000 + i, ("lying_in_bed", "sitting", "standing")[i % 3], calm_seconds) for i in range(args.calm)]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        episode_jobs = [pool.submit(episode_task, t) for t in tasks]
        views = list(pool.map(view_task, range(args.views)))
        episodes = [j.result() for j in episode_jobs]
    frames = [f for v in views for f in v["frames"]]
    fps = speed(frames, repeats=1 if args.quick else 3)
    text = report(views, episodes, fps, args, time.perf_counter() - start)
    if args.quick:
        print(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
