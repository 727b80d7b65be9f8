"""Fuse per-frame detections over time into the ``WorldState`` that skills and the planner use.

Tracking is deliberately simple: one track per object name (names are unique in the
catalogue) and per person. A new detection close to its track (within ``jump``) is blended
in; a marker pose is never overwritten by a colour blob that agrees with it (the blob only
refreshes it); a detection far from its track means the object moved and replaces it.
Tracks not seen for ``object_timeout`` / ``person_timeout`` seconds are dropped; fixed
furniture never seen yet is reported at its scene-map pose with source ``"map"``.
Confidence fades linearly with the age of the last sighting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from tianji.control.world_state import ObjectState, PersonState, Place, Posture, WorldState
from tianji.perception.detection import Detection, PerceptionResult, PersonDetection
from tianji.perception.geometry import matrix_quat, quat_matrix, transform
from tianji.perception.posture import FALL_HOLD_TIME, FallDetector, FallEvent
from tianji.perception.scene_map import SceneMap

MAP_CONFIDENCE = 0.3  # fixed furniture at its scene-map pose, not seen yet
HEAD_MEMORY_DISTANCE = 0.3  # m: a person whose body moved less keeps the head and mouth last seen
HAND_AT_FACE = 0.35  # m: the robot's hand this close to a head hides the face; head, mouth and position are kept


@dataclass
class _ObjectTrack:
    name: str
    position: np.ndarray
    orientation: np.ndarray | None
    confidence: float
    last_seen: float
    source: str
    hits: int = 1


@dataclass
class _PersonTrack:
    name: str
    detection: PersonDetection
    last_seen: float
    fall: FallDetector


class WorldStateBuilder:
    """Feed :class:`PerceptionResult` frames in time order; read a :class:`WorldState` back."""

    def __init__(
        self,
        scene_map: SceneMap,
        *,
        object_timeout: float = 60.0,
        person_timeout: float = 30.0,
        smoothing: float = 0.5,
        jump: float = 0.15,
        person_names: tuple[str, ...] = ("patient",),
        fall_hold_time: float = FALL_HOLD_TIME,
        map_priors: bool = True,
    ) -> None:
        self.map = scene_map
        self.object_timeout = object_timeout
        self.person_timeout = person_timeout
        self.smoothing = smoothing
        self.jump = jump
        self.person_names = person_names
        self.fall_hold_time = fall_hold_time
        self.map_priors = map_priors
        self.objects: dict[str, _ObjectTrack] = {}
        self.people: dict[str, _PersonTrack] = {}
        self.events: list[FallEvent] = []
        self.robot_pose = np.zeros(3)
        self.time = 0.0

    def update(
        self,
        result: PerceptionResult,
        robot_pose: np.ndarray | tuple[float, float, float] | None = None,
        hand: np.ndarray | None = None,
    ) -> WorldState:
        """Fold one frame's result in and return the world state at its time.

        ``hand`` is the robot's own hand (world position), when known: near a face it hides it
        and its points join the person's, so that person's head, mouth and position are kept.
        """
        self.time = max(self.time, float(result.timestamp))
        if robot_pose is not None:
            self.robot_pose = np.asarray(robot_pose, dtype=float).reshape(3)
        for det in result.best().values():
            self._update_object(det)
        self._update_people(result.people, float(result.timestamp), hand)
        return self.world_state()

    def _update_object(self, det: Detection) -> None:
        track = self.objects.get(det.name)
        if track is None or float(np.linalg.norm(det.position - track.position)) > self.jump:
            self.objects[det.name] = _ObjectTrack(
                det.name, det.position.copy(), det.orientation, det.confidence, det.timestamp, det.source
            )
            return
        if det.source != "aruco" and track.source == "aruco":
            track.last_seen = det.timestamp  # the blob confirms the marker pose; keep the better estimate
            track.hits += 1
            return
        a = self.smoothing if det.source == track.source else 1.0
        track.position = (1 - a) * track.position + a * det.position
        if det.orientation is not None:
            track.orientation = det.orientation
        track.confidence = max(det.confidence, track.confidence * 0.9)
        track.last_seen, track.source = det.timestamp, det.source
        track.hits += 1

    def _update_people(self, people: list[PersonDetection], now: float, hand: np.ndarray | None = None) -> None:
        unmatched = dict(self.people)
        for det in people:
            name = self._match(det, unmatched)
            track = self.people.get(name)
            if track is None:
                track = _PersonTrack(name, det, now, FallDetector(self.fall_hold_time, person=name))
                self.people[name] = track
            unmatched.pop(name, None)
            previous = track.detection
            if hand is not None and previous.head is not None and np.linalg.norm(hand - previous.head) <= HAND_AT_FACE:
                # the robot's hand is at the face (feeding, drinking): its points would pull the head to it
                det = dataclasses.replace(det, head=previous.head, mouth=previous.mouth, position=previous.position)
            elif (
                det.truncated
                and not previous.truncated
                and det.on_bed
                and previous.on_bed
                and (det.posture != previous.posture)
            ):
                # a close, partial view of someone in bed (only the legs, say) contradicts the last whole view:
                # it says less, so the whole view's posture, head, mouth and position stand until the next one
                det = dataclasses.replace(
                    det,
                    posture=previous.posture,
                    head=previous.head,
                    mouth=previous.mouth,
                    position=previous.position,
                    truncated=False,
                )
            elif det.head is None and previous.head is not None and self._same_place(det, previous):
                # the face is out of view this frame (the camera looks at the hands, the body is cut off):
                # keep where the head and mouth were last seen while the body has not moved
                det = dataclasses.replace(det, head=previous.head, mouth=previous.mouth)
            track.detection, track.last_seen = det, now
            event = track.fall.update(det.posture, now, tuple(float(v) for v in det.position))
            if event is not None:
                self.events.append(event)
        for track in unmatched.values():  # not seen in this frame: neither confirms nor cancels a fall
            track.fall.update(Posture.UNKNOWN, now)

    @staticmethod
    def _same_place(a: PersonDetection, b: PersonDetection, tolerance: float = HEAD_MEMORY_DISTANCE) -> bool:
        """Whether two detections of a person are at the same spot in the same posture (head memory holds)."""
        return a.posture == b.posture and float(np.linalg.norm(a.position[:2] - b.position[:2])) <= tolerance

    def _match(self, det: PersonDetection, free: dict[str, _PersonTrack]) -> str:
        if free:
            name, track = min(
                free.items(), key=lambda kv: float(np.linalg.norm(kv[1].detection.position - det.position))
            )
            if float(np.linalg.norm(track.detection.position - det.position)) < 1.5 or len(self.person_names) == 1:
                return name
        for name in self.person_names:
            if name not in self.people:
                return name
        return f"person_{len(self.people) + 1}"

    def furniture_poses(self) -> dict[str, np.ndarray]:
        """4x4 world <- object of tracked furniture with an orientation: the background for person finding."""
        out = {}
        for name, track in self.objects.items():
            model = self.map.objects.get(name)
            if model is not None and model.is_furniture and track.orientation is not None:
                out[name] = transform(quat_matrix(track.orientation), track.position)
        return out

    def world_state(self, now: float | None = None) -> WorldState:
        """The fused state at ``now`` (default: the last frame's time), stale tracks removed."""
        now = self.time if now is None else now
        objects = {}
        for name, track in list(self.objects.items()):
            age = now - track.last_seen
            if age > self.object_timeout:
                del self.objects[name]
                continue
            fade = 1.0 - max(0.0, age) / self.object_timeout
            objects[name] = ObjectState(
                name, track.position.copy(), track.orientation, track.confidence * fade, track.last_seen, track.source
            )
        if self.map_priors:
            for name, model in self.map.objects.items():
                if model.fixed and name not in objects:
                    pose = self.map.nominal_poses[name]
                    objects[name] = ObjectState(
                        name, pose[:3, 3].copy(), matrix_quat(pose[:3, :3]), MAP_CONFIDENCE, 0.0, "map"
                    )
        people = {}
        for name, track in list(self.people.items()):
            age = now - track.last_seen
            if age > self.person_timeout:
                del self.people[name]
                continue
            det = track.detection
            people[name] = PersonState(
                name,
                det.position.copy(),
                det.posture,
                None if det.head is None else det.head.copy(),
                None if det.mouth is None else det.mouth.copy(),
                {},
                det.confidence * (1.0 - max(0.0, age) / self.person_timeout),
                track.last_seen,
                det.source,
            )
        return WorldState(now, objects, self._places(objects), people, self.robot_pose.copy(), "perception")

    def _places(self, objects: dict[str, ObjectState]) -> dict[str, Place]:
        places = {}
        for name, place in self.map.places.items():
            surface = self.map.place_surfaces.get(name)
            center = place.center
            if surface in objects and objects[surface].source != "map":
                center = objects[surface].position.copy()
            places[name] = Place(
                name, place.pose.copy(), place.surface_height, None if center is None else center.copy()
            )
        return places

    @property
    def fallen(self) -> bool:
        """True while any tracked person has a confirmed fall."""
        return any(t.fall.fallen for t in self.people.values())
