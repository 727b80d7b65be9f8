"""What perception knows before it looks: the object catalogue and the room's fixed layout.

Read from the project's own files without a physics engine: the scene YAML
(``assets/scenes/<name>.yaml``: room size, object names, marker ids, nominal poses, places)
and each object's URDF (``assets/objects/*.urdf``: visual boxes and cylinders, colours and the
``marker_joint`` mounting of the ArUco card). A real deployment writes the same two files
for its room.
"""

from __future__ import annotations

import colorsys
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tianji import assets
from tianji.control.errors import AssetError, UnknownNameError, did_you_mean
from tianji.control.world_state import Place
from tianji.perception.geometry import apply, rot_z, rpy_matrix, transform

MARKER_DICTIONARY = "DICT_4X4_50"  # the scene's documented dictionary (assets/README.md)
BLACK_SQUARE_FRACTION = 0.75  # the card has a one-module white border: black square = 6/8 of the card edge
CARD_THICKNESS = 0.001  # m; the printed face is half of it in front of the marker link origin
COLOUR_SATURATION_MIN = 0.6  # objects whose main colour is at least this saturated are found by colour
FURNITURE_HEIGHT_MIN = 0.3  # m; taller objects are furniture: removed as background when looking for people


@dataclass(frozen=True)
class Box:
    """An oriented box: centre and rotation in its parent frame, half extents along its own axes."""

    center: np.ndarray
    rotation: np.ndarray
    half: np.ndarray

    def moved(self, pose: np.ndarray) -> Box:
        """This box expressed in the frame where ``pose`` (4x4 parent <- box parent) applies."""
        return Box(apply(pose, self.center), pose[:3, :3] @ self.rotation, self.half)

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Mask of (N, 3) points inside the box grown by ``margin`` on every side."""
        local = np.abs((points - self.center) @ self.rotation)
        return np.all(local <= self.half + margin, axis=1)


@dataclass
class ObjectModel:
    """One catalogued object: how to recognise it and where its base frame is."""

    name: str
    marker_id: int | None = None
    marker_size: float | None = None  # edge of the whole card (white border included), m
    marker_in_object: np.ndarray | None = None  # 4x4 object base <- marker link (URDF marker_joint)
    colour: np.ndarray = field(default_factory=lambda: np.full(3, 0.5))  # main rgb 0..1
    size: np.ndarray = field(default_factory=lambda: np.zeros(3))  # x, y, z extent of its boxes, m
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))  # bounding-box centre, object frame
    boxes: list[Box] = field(default_factory=list)  # visual primitives (cylinders as boxes), object frame
    fixed: bool = False  # bolted down in the scene: its nominal pose is prior knowledge
    top_height: float | None = None  # height of its main top surface (table top, mattress), m

    @property
    def colour_detectable(self) -> bool:
        """A saturated, distinctive colour that colour segmentation can find."""
        return colorsys.rgb_to_hsv(*self.colour)[1] >= COLOUR_SATURATION_MIN

    @property
    def is_furniture(self) -> bool:
        """Tall enough to be furniture (removed as background when looking for people)."""
        return float(self.size[2]) >= FURNITURE_HEIGHT_MIN

    @property
    def black_square(self) -> float | None:
        """Edge of the marker's black square (what ArUco measures), m."""
        return None if self.marker_size is None else BLACK_SQUARE_FRACTION * self.marker_size


@dataclass
class SceneMap:
    """The room (x in [-sx/2, sx/2], y in [-sy/2, sy/2], floor z = 0), its objects and places."""

    name: str
    room_size: tuple[float, float]
    objects: dict[str, ObjectModel]
    nominal_poses: dict[str, np.ndarray]  # name -> 4x4 world <- object, from the scene file
    places: dict[str, Place] = field(default_factory=dict)
    wall_height: float = 2.5
    bed_names: tuple[str, ...] = ("bed",)
    place_surfaces: dict[str, str] = field(default_factory=dict)  # place -> object whose top it works on

    @classmethod
    def load(cls, scene: str | Path = "care_room") -> SceneMap:
        """Read ``assets/scenes/<scene>.yaml`` (or a path to a scene file) and the URDFs it names."""
        path = Path(scene)
        if path.suffix not in (".yaml", ".yml"):
            path = assets.ROOT / "scenes" / f"{scene}.yaml"
            if not path.is_file():
                known = sorted(p.stem for p in (assets.ROOT / "scenes").glob("*.yaml"))
                raise UnknownNameError(
                    f"no scene named '{scene}'.{did_you_mean(str(scene), known)} Known: {', '.join(known)};"
                    " or pass the path of a scene .yaml file"
                )
        if not path.is_file():
            raise AssetError(f"scene file not found: {path}")
        config = yaml.safe_load(path.read_text()) or {}
        return cls.from_config(config, path)

    @classmethod
    def from_config(cls, config: dict[str, Any], path: Path) -> SceneMap:
        """Build from a parsed scene file (``path`` resolves relative URDF paths)."""
        room = config.get("room") or {}
        size = tuple(float(v) for v in room.get("size", (5.0, 4.0)))
        objects, poses = {}, {}
        for name, entry in (config.get("objects") or {}).items():
            urdf = Path(entry.get("urdf", ""))
            if not urdf.is_absolute():
                local = path.parent / urdf
                urdf = local if local.is_file() else assets.ROOT / urdf
            model = parse_urdf(urdf, name)
            model.fixed = bool(entry.get("fixed", False))
            if entry.get("marker") is not None:
                model.marker_id = int(entry["marker"])
            objects[name] = model
            pos = np.array(entry.get("position", (0.0, 0.0, 0.0)), dtype=float)
            poses[name] = transform(rot_z(float(entry.get("yaw", 0.0))), pos)
        places, surfaces = {}, {}
        for name, entry in (config.get("places") or {}).items():
            surface = entry.get("surface")
            if surface is not None:
                surfaces[name] = str(surface)
            center = poses[surface][:3, 3].copy() if surface in poses else None
            height = entry.get("surface_height")
            places[name] = Place(
                name, np.asarray(entry["pose"], float), None if height is None else float(height), center
            )
        return cls(
            str(config.get("name", path.stem)),
            size,  # type: ignore[arg-type]
            objects,
            poses,
            places,
            float(room.get("wall_height", 2.5)),
            place_surfaces=surfaces,
        )

    def object(self, name: str) -> ObjectModel:
        """A catalogued object by name; UnknownNameError lists the catalogue."""
        try:
            return self.objects[name]
        except KeyError:
            raise UnknownNameError(
                f"no object '{name}' in scene map '{self.name}'.{did_you_mean(name, self.objects)}"
                f" Objects: {', '.join(self.objects)}"
            ) from None

    @property
    def marker_names(self) -> dict[int, str]:
        """ArUco id -> object name."""
        return {m.marker_id: n for n, m in self.objects.items() if m.marker_id is not None}

    def inside_room(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Mask of (N, 3) points inside the walls (shrunk by ``margin``) and below the wall top."""
        sx, sy = self.room_size
        return (
            (np.abs(points[:, 0]) <= sx / 2 - margin)
            & (np.abs(points[:, 1]) <= sy / 2 - margin)
            & (points[:, 2] <= self.wall_height - margin)
        )

    def furniture_boxes(self, poses: dict[str, np.ndarray] | None = None) -> list[tuple[str, list[Box]]]:
        """World-frame primitives of every piece of furniture, at ``poses`` where given, else nominal."""
        poses = poses or {}
        out = []
        for name, model in self.objects.items():
            if not model.is_furniture:
                continue
            pose = poses.get(name, self.nominal_poses.get(name))
            if pose is not None:
                out.append((name, [b.moved(pose) for b in model.boxes]))
        return out

    def beds(self, poses: dict[str, np.ndarray] | None = None) -> list[tuple[np.ndarray, ObjectModel]]:
        """(4x4 world <- bed pose, model) of each bed, detected pose where given, else nominal."""
        poses = poses or {}
        return [
            (poses.get(n, self.nominal_poses[n]), self.objects[n])
            for n in self.bed_names
            if n in self.objects and n in self.nominal_poses
        ]


def parse_urdf(path: Path, name: str | None = None) -> ObjectModel:
    """Catalogue entry from an object URDF: visual primitives, main colour, marker mounting."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise AssetError(f"cannot read object URDF {path}: {exc}; check the scene file's 'urdf:' entry") from exc
    materials = {
        m.get("name"): np.array([float(v) for v in m.find("color").get("rgba").split()[:3]])  # type: ignore[union-attr]
        for m in root.iter("material")
        if m.find("color") is not None
    }
    base = next((link for link in root.iter("link") if link.get("name") == "base_link"), None)
    if base is None:
        raise AssetError(f"object URDF {path} has no link 'base_link'; objects are one base_link plus a marker")
    boxes: list[Box] = []
    volume_by_colour: dict[str, float] = {}
    for visual in base.findall("visual"):
        box = _visual_box(visual)
        if box is None:
            continue
        boxes.append(box)
        mat = visual.find("material")
        if mat is not None and mat.get("name") in materials:
            key = str(mat.get("name"))
            volume_by_colour[key] = volume_by_colour.get(key, 0.0) + float(np.prod(2 * box.half))
    if not boxes:
        raise AssetError(f"object URDF {path} has no box or cylinder visuals on base_link")
    lo, hi = _bounds(boxes)
    colour = materials[max(volume_by_colour, key=volume_by_colour.__getitem__)] if volume_by_colour else np.full(3, 0.5)
    model = ObjectModel(
        name or root.get("name", path.stem),
        colour=colour,
        size=hi - lo,
        center=(hi + lo) / 2,
        boxes=boxes,
        top_height=_top_height(boxes, hi - lo),
    )
    for joint in root.iter("joint"):
        if joint.get("name") == "marker_joint":
            model.marker_in_object = _origin(joint)
            card = next((link for link in root.iter("link") if link.get("name") == "marker"), None)
            geom = None if card is None else card.find("visual/geometry/box")
            if geom is not None:
                model.marker_size = float(geom.get("size", "0").split()[0])
    return model


def _origin(element: ET.Element) -> np.ndarray:
    origin = element.find("origin")
    xyz = [0.0, 0.0, 0.0] if origin is None else [float(v) for v in origin.get("xyz", "0 0 0").split()]
    rpy = [0.0, 0.0, 0.0] if origin is None else [float(v) for v in origin.get("rpy", "0 0 0").split()]
    return transform(rpy_matrix(*rpy), xyz)


def _visual_box(visual: ET.Element) -> Box | None:
    pose = _origin(visual)
    geom = visual.find("geometry")
    if geom is None:
        return None
    if (b := geom.find("box")) is not None:
        half = np.array([float(v) for v in b.get("size", "0 0 0").split()]) / 2
    elif (c := geom.find("cylinder")) is not None:
        r, length = float(c.get("radius", 0)), float(c.get("length", 0))
        half = np.array([r, r, length / 2])
    elif (s := geom.find("sphere")) is not None:
        half = np.full(3, float(s.get("radius", 0)))
    else:
        return None
    return Box(pose[:3, 3], pose[:3, :3], half)


def _bounds(boxes: list[Box]) -> tuple[np.ndarray, np.ndarray]:
    corners = []
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    for b in boxes:
        corners.append(b.center + (signs * b.half) @ b.rotation.T)
    pts = np.vstack(corners)
    return pts.min(axis=0), pts.max(axis=0)


def _top_height(boxes: list[Box], size: np.ndarray) -> float | None:
    """Top of the highest box covering at least half the footprint (table top, mattress)."""
    footprint = float(size[0] * size[1])
    tops = [
        float(b.center[2] + b.half[2])
        for b in boxes
        if math.isclose(abs(b.rotation[2, 2]), 1.0, abs_tol=1e-6) and 4 * b.half[0] * b.half[1] >= 0.5 * footprint
    ]
    return max(tops) if tops else None
