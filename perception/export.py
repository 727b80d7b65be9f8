"""WorldState and detections as plain JSON-ready dicts (lists of floats, strings), and back."""

from __future__ import annotations

from typing import Any

import numpy as np

from tianji.control.world_state import ObjectState, PersonState, Place, Posture, WorldState
from tianji.perception.detection import PerceptionResult


def _vec(v: np.ndarray | None) -> list[float] | None:
    return None if v is None else [round(float(x), 5) for x in np.ravel(v)]


def _arr(v: list[float] | None) -> np.ndarray | None:
    return None if v is None else np.asarray(v, dtype=float)


def world_state_to_dict(state: WorldState) -> dict[str, Any]:
    """A JSON-serialisable dict of a WorldState (metres, quaternions x, y, z, w)."""
    return {
        "timestamp": float(state.timestamp),
        "source": state.source,
        "robot_pose": _vec(state.robot_pose),
        "objects": {
            n: {
                "position": _vec(o.position),
                "orientation": _vec(o.orientation),
                "confidence": round(float(o.confidence), 4),
                "timestamp": float(o.timestamp),
                "source": o.source,
            }
            for n, o in state.objects.items()
        },
        "places": {
            n: {"pose": _vec(p.pose), "surface_height": p.surface_height, "center": _vec(p.center)}
            for n, p in state.places.items()
        },
        "people": {
            n: {
                "position": _vec(p.position),
                "posture": Posture(p.posture).value,
                "head": _vec(p.head),
                "mouth": _vec(p.mouth),
                "body_parts": {k: _vec(v) for k, v in p.body_parts.items()},
                "confidence": round(float(p.confidence), 4),
                "timestamp": float(p.timestamp),
                "source": p.source,
            }
            for n, p in state.people.items()
        },
    }


def world_state_from_dict(data: dict[str, Any]) -> WorldState:
    """Inverse of :func:`world_state_to_dict`."""
    objects = {
        n: ObjectState(
            n,
            np.asarray(o["position"], float),
            _arr(o.get("orientation")),
            o.get("confidence", 1.0),
            o.get("timestamp", 0.0),
            o.get("source", ""),
        )
        for n, o in data.get("objects", {}).items()
    }
    places = {
        n: Place(n, np.asarray(p["pose"], float), p.get("surface_height"), _arr(p.get("center")))
        for n, p in data.get("places", {}).items()
    }
    people = {
        n: PersonState(
            n,
            np.asarray(p["position"], float),
            Posture(p.get("posture", "unknown")),
            _arr(p.get("head")),
            _arr(p.get("mouth")),
            {k: np.asarray(v, float) for k, v in (p.get("body_parts") or {}).items()},
            p.get("confidence", 1.0),
            p.get("timestamp", 0.0),
            p.get("source", ""),
        )
        for n, p in data.get("people", {}).items()
    }
    return WorldState(
        data.get("timestamp", 0.0),
        objects,
        places,
        people,
        np.asarray(data.get("robot_pose", (0.0, 0.0, 0.0)), float),
        data.get("source", ""),
    )


def result_to_dict(result: PerceptionResult) -> dict[str, Any]:
    """The raw per-frame detections and timings, for logs and debugging."""
    return {
        "timestamp": float(result.timestamp),
        "timings_ms": {k: round(1000 * v, 3) for k, v in result.timings.items()},
        "detections": [
            {
                "name": d.name,
                "source": d.source,
                "position": _vec(d.position),
                "orientation": _vec(d.orientation),
                "confidence": round(float(d.confidence), 4),
                "marker_id": d.marker_id,
                "bbox": list(d.bbox),
                "pixels": d.pixels,
            }
            for d in result.detections
        ],
        "people": [
            {
                "posture": p.posture.value,
                "position": _vec(p.position),
                "head": _vec(p.head),
                "mouth": _vec(p.mouth),
                "confidence": round(float(p.confidence), 4),
                "bbox": list(p.bbox),
                "top": round(p.top, 4),
                "length": round(p.length, 4),
                "area": round(p.area, 4),
                "skin_fraction": round(p.skin_fraction, 4),
                "on_bed": p.on_bed,
                "truncated": p.truncated,
                "source": p.source,
            }
            for p in result.people
        ],
    }
