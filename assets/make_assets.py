"""Generate the care-room objects (URDF) and their ArUco marker textures (PNG).

Run ``.venv/bin/python assets/make_assets.py``: it rewrites ``assets/objects/*.urdf`` and
``assets/markers/*.png`` deterministically. Each object is one rigid link of URDF primitives
(plus a visual-only ``marker`` link); SI units, z up, +x is the front, and the origin is the
centre of the footprint on the floor. ``README.md`` lists the objects.

Marker textures: a PyBullet box face shows only part of its texture, and the renderers
disagree on which part (v is counted up from the PNG's bottom row in both). On a box's +z
face ER_TINY_RENDERER shows the bottom-right 1/4 x 1/4 tile, flipped top-to-bottom; EGL
(ER_BULLET_HARDWARE_OPENGL) shows u in [1/4, 3/4], v in 1/2 -+ 1/(2 sqrt 2) of a thin
square card, upright. ``card_texture`` fills both regions, so either renderer shows one
correct, upright marker on the card's +z face (seen from +z with the card's +y up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

ASSETS = Path(__file__).resolve().parent
OBJECT_DIR = ASSETS / "objects"
MARKER_DIR = ASSETS / "markers"

# ----------------------------------------------------------------------------- data
ARUCO_DICTIONARY = cv2.aruco.DICT_4X4_50
ARUCO_DICTIONARY_NAME = "DICT_4X4_50"
MARKER_IDS = {
    "cup": 1,
    "bowl": 2,
    "pill_box": 4,
    "dining_table": 10,
    "bedside_table": 11,
    "bed": 12,
    "chair": 13,
    "wheelchair": 14,
}
# Edge of the square marker card in metres, white quiet border included (the black square
# is 6/8 of it).
MARKER_SIZES = {
    "cup": 0.045,
    "bowl": 0.04,
    "pill_box": 0.04,
    "dining_table": 0.10,
    "bedside_table": 0.10,
    "bed": 0.12,
    "chair": 0.10,
    "wheelchair": 0.10,
}
MASSES = {
    "bed": 90.0,
    "bedside_table": 15.0,
    "dining_table": 25.0,
    "chair": 6.0,
    "wheelchair": 15.0,
    "cup": 0.30,
    "bowl": 0.25,
    "spoon": 0.03,
    "pill_box": 0.06,
}  # kg
COLOURS = {  # rgba; graspable objects get distinct saturated colours, furniture muted ones
    "red": (0.85, 0.08, 0.08, 1.0),  # cup
    "blue": (0.08, 0.25, 0.85, 1.0),  # bowl
    "yellow": (0.95, 0.80, 0.05, 1.0),  # spoon
    "green": (0.10, 0.65, 0.20, 1.0),  # pill box
    "wood": (0.60, 0.48, 0.36, 1.0),
    "light_wood": (0.76, 0.66, 0.54, 1.0),
    "off_white": (0.90, 0.89, 0.86, 1.0),
    "sheet": (0.86, 0.90, 0.95, 1.0),  # mattress
    "steel": (0.62, 0.64, 0.67, 1.0),
    "fabric": (0.42, 0.46, 0.50, 1.0),  # chair cushion
    "charcoal": (0.22, 0.23, 0.25, 1.0),  # wheelchair seat and backrest
    "tyre": (0.08, 0.08, 0.08, 1.0),
    "marker": (1.0, 1.0, 1.0, 1.0),  # the texture is multiplied by this
}

MARKER_THICKNESS = 0.001  # m
MARKER_GAP = 0.0002  # m between a marker card and the surface it is stuck on
MARKER_MASS = 1e-4  # kg
# PyBullet loads URDF cylinders as convex hulls and pads them with its 1 mm collision margin,
# so collision cylinders are written this much smaller all round to rest where they look.
CYLINDER_MARGIN = 0.001  # m
MARKER_MODULES = 6  # 4 x 4 data bits and a one-module black border
QUIET_MODULES = 1  # white border around the black one, each side
TEXTURE_PX = 1024  # marker texture edge, pixels
PRINT_MODULE_PX = 32  # pixels per module of the printable image

# Orientation (rpy) of a marker card: printed face on local +z, top of the image on local +y.
FACING_FRONT = (math.pi / 2, 0.0, math.pi / 2)  # on a vertical face looking +x, top up (+z)
FACING_UP = (0.0, 0.0, math.pi / 2)  # on a top surface, top towards -x: upright seen from +x

BED = {
    "length": 2.0,
    "width": 0.95,
    "leg": 0.06,
    "leg_height": 0.32,
    "frame": 0.08,
    "mattress": 0.18,
    "head": 0.05,
    "foot": 0.04,
    "head_top": 1.0,
    "foot_top": 0.80,
}
BEDSIDE_TABLE = {
    "depth": 0.45,
    "width": 0.40,
    "height": 0.60,
    "plinth": 0.05,
    "top": 0.03,
    "drawer": 0.15,
    "front": 0.01,
}
DINING_TABLE = {"length": 1.0, "width": 0.70, "height": 0.75, "top": 0.03, "leg": 0.05, "inset": 0.06, "apron": 0.08}
CHAIR = {
    "seat": 0.45,
    "seat_height": 0.45,
    "seat_thickness": 0.04,
    "leg": 0.035,
    "height": 0.90,
    "back_bottom": 0.58,
    "back_top": 0.86,
}
WHEELCHAIR = {
    "seat_depth": 0.45,
    "seat_width": 0.46,
    "seat_height": 0.51,
    "wheel_radius": 0.30,
    "wheel_width": 0.03,
    "wheel_y": 0.29,
    "caster_radius": 0.06,
    "tube": 0.025,
    "back_top": 0.94,
    "handle_height": 0.97,
}
CUP = {"radius": 0.04, "height": 0.10, "wall": 0.004, "bottom": 0.006, "segments": 16}
BOWL = {"radius": 0.07, "height": 0.06, "wall": 0.004, "bottom": 0.006, "segments": 16}
SPOON = {
    "length": 0.16,
    "handle_width": 0.012,
    "handle_thickness": 0.003,
    "head_length": 0.05,
    "head_width": 0.035,
    "head_plate": 0.002,
    "rim": 0.002,
    "rim_height": 0.006,
}
PILL_BOX = {"length": 0.10, "width": 0.05, "height": 0.025}


# ----------------------------------------------------------------------------- geometry
Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Part:
    """One primitive of an object's link: a visual and, unless ``collide`` is off, a collision."""

    shape: str  # "box" | "cylinder" | "sphere"
    size: tuple[float, ...]  # box (x, y, z); cylinder (radius, length along local z); sphere (r,)
    xyz: Vec3
    colour: str
    rpy: Vec3 = (0.0, 0.0, 0.0)
    density: float = 1.0  # relative; the object's mass is shared by density x volume
    collide: bool = True


@dataclass(frozen=True)
class Marker:
    """Pose of the marker card (centre of the thin box) in the object frame."""

    xyz: Vec3
    rpy: Vec3


def box(size: Vec3, xyz: Vec3, colour: str, **kw: object) -> Part:
    """A box part."""
    return Part("box", size, xyz, colour, **kw)  # type: ignore[arg-type]


def cylinder(radius: float, length: float, xyz: Vec3, colour: str, **kw: object) -> Part:
    """A cylinder part, axis along local z."""
    return Part("cylinder", (radius, length), xyz, colour, **kw)  # type: ignore[arg-type]


def ring(radius: float, wall: float, z0: float, z1: float, n: int, colour: str) -> list[Part]:
    """A hollow cylindrical wall of ``n`` boxes; one box faces +x, adjacent boxes overlap inside."""
    width = 2.0 * radius * math.tan(math.pi / n)  # outer corners of neighbours meet
    rc = radius - wall / 2
    parts = []
    for i in range(n):
        a = 2.0 * math.pi * i / n
        xyz = (rc * math.cos(a), rc * math.sin(a), (z0 + z1) / 2)
        parts.append(box((wall, width, z1 - z0), xyz, colour, rpy=(0.0, 0.0, a)))
    return parts


def rotation(rpy: Vec3) -> np.ndarray:
    """URDF rotation matrix: Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def volume(part: Part) -> float:
    """Volume of a part in m^3."""
    if part.shape == "box":
        return float(np.prod(part.size))
    if part.shape == "cylinder":
        return math.pi * part.size[0] ** 2 * part.size[1]
    return 4.0 / 3.0 * math.pi * part.size[0] ** 3


def principal_inertia(part: Part, mass: float) -> np.ndarray:
    """Inertia tensor of a solid part about its own centre, in its own frame."""
    if part.shape == "box":
        x, y, z = part.size
        return mass / 12.0 * np.diag([y * y + z * z, x * x + z * z, x * x + y * y])
    if part.shape == "cylinder":
        r, h = part.size
        side = mass * (3 * r * r + h * h) / 12.0
        return np.diag([side, side, mass * r * r / 2.0])
    return np.eye(3) * 0.4 * mass * part.size[0] ** 2


def inertial(parts: list[Part], mass: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass and inertia tensor about it (link axes) of ``mass`` spread over the parts."""
    weights = np.array([p.density * volume(p) for p in parts])
    masses = mass * weights / weights.sum()
    centres = np.array([p.xyz for p in parts])
    com = masses @ centres / mass
    tensor = np.zeros((3, 3))
    for part, m, c in zip(parts, masses, centres, strict=True):
        rot = rotation(part.rpy)
        d = c - com
        tensor += rot @ principal_inertia(part, m) @ rot.T  # own inertia, then parallel axes
        tensor += m * (d @ d * np.eye(3) - np.outer(d, d))
    return com, tensor


def aabb(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounds (lo, hi) of the colliding parts."""
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for part in (p for p in parts if p.collide):
        rot = rotation(part.rpy)
        if part.shape == "box":
            half = np.abs(rot) @ (np.array(part.size) / 2)
        elif part.shape == "cylinder":
            axis = np.abs(rot[:, 2])
            half = axis * part.size[1] / 2 + part.size[0] * np.sqrt(np.clip(1 - axis**2, 0, 1))
        else:
            half = np.full(3, part.size[0])
        lo = np.minimum(lo, np.array(part.xyz) - half)
        hi = np.maximum(hi, np.array(part.xyz) + half)
    return lo, hi


def recentred(parts: list[Part], marker: Marker | None) -> tuple[list[Part], Marker | None]:
    """Shift everything so the footprint centre is at x = y = 0 and the lowest point at z = 0."""
    lo, hi = aabb(parts)
    shift = -np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]])

    def moved(xyz: Vec3) -> Vec3:
        return tuple(float(v) for v in np.array(xyz) + shift)  # type: ignore[return-value]

    parts = [replace(p, xyz=moved(p.xyz)) for p in parts]
    return parts, (replace(marker, xyz=moved(marker.xyz)) if marker else None)


def card_on_front(x_face: float, y: float, z: float) -> Marker:
    """A marker card stuck on a vertical face at x = ``x_face`` looking +x."""
    return Marker((x_face + MARKER_GAP + MARKER_THICKNESS / 2, y, z), FACING_FRONT)


def card_on_top(x: float, y: float, z_face: float) -> Marker:
    """A marker card lying on a horizontal surface at height ``z_face``."""
    return Marker((x, y, z_face + MARKER_GAP + MARKER_THICKNESS / 2), FACING_UP)


# ----------------------------------------------------------------------------- objects
Built = tuple[list[Part], Marker | None]


def build_bed() -> Built:
    """Hospital-style bed: legs, frame, mattress, headboard at -x, footboard (marker) at +x."""
    d = BED
    hl, hw, lh, fr, mt = d["length"] / 2, d["width"] / 2, d["leg_height"], d["frame"], d["mattress"]
    hb, ht, fb, ft = d["head"], d["head_top"], d["foot"], d["foot_top"]
    x0, x1 = -hl + hb, hl - fb  # between the boards
    xm = (x0 + x1) / 2
    parts = [
        box((d["leg"], d["leg"], lh), (sx * (hl - 0.12), sy * (hw - 0.06), lh / 2), "steel", density=3.0)
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    parts += [
        box((x1 - x0, 2 * hw, fr), (xm, 0.0, lh + fr / 2), "steel"),
        box((x1 - x0 - 0.01, 2 * hw - 0.03, mt), (xm, 0.0, lh + fr + mt / 2), "sheet", density=0.2),
        box((hb, 2 * hw, ht - lh), (x0 - hb / 2, 0.0, (ht + lh) / 2), "wood"),  # headboard
        box((fb, 2 * hw, ft - lh), (x1 + fb / 2, 0.0, (ft + lh) / 2), "wood"),  # footboard
    ]
    return parts, card_on_front(hl, 0.0, ft - 0.14)


def build_bedside_table() -> Built:
    """Bedside cabinet: plinth, carcass, top, drawer front and knob on the +x side."""
    d = BEDSIDE_TABLE
    dx, w, h, f, pl, top = d["depth"], d["width"], d["height"], d["front"], d["plinth"], d["top"]
    body_top = h - top
    drawer_z = body_top - 0.02 - d["drawer"] / 2
    parts = [
        box((dx - 0.04, w - 0.04, pl), (0.0, 0.0, pl / 2), "wood"),
        box((dx - f, w, body_top - pl), (-f / 2, 0.0, (body_top + pl) / 2), "light_wood"),
        box((dx, w, top), (0.0, 0.0, h - top / 2), "wood"),
        box((f, w - 0.02, d["drawer"]), (dx / 2 - f / 2, 0.0, drawer_z), "off_white"),
        Part("sphere", (0.012,), (dx / 2 + 0.008, 0.0, drawer_z), "steel", collide=False),
    ]
    m = MARKER_SIZES["bedside_table"] / 2 + 0.015  # marker centre from the edges
    return parts, card_on_top(dx / 2 - m, w / 2 - m, h)


def build_dining_table() -> Built:
    """Four-legged table with aprons; marker on the top near the front (+x, +y) corner."""
    d = DINING_TABLE
    lx, wy, h, t, leg, ap = d["length"], d["width"], d["height"], d["top"], d["leg"], d["apron"]
    cx, cy = lx / 2 - d["inset"], wy / 2 - d["inset"]  # leg centres
    za = h - t - ap / 2
    parts = [box((lx, wy, t), (0.0, 0.0, h - t / 2), "wood")]
    parts += [box((leg, leg, h - t), (sx * cx, sy * cy, (h - t) / 2), "wood") for sx in (-1, 1) for sy in (-1, 1)]
    parts += [box((2 * cx - leg, 0.02, ap), (0.0, s * cy, za), "wood") for s in (-1, 1)]
    parts += [box((0.02, 2 * cy - leg, ap), (s * cx, 0.0, za), "wood") for s in (-1, 1)]
    m = MARKER_SIZES["dining_table"] / 2 + 0.02
    return parts, card_on_top(lx / 2 - m, wy / 2 - m, h)


def build_chair() -> Built:
    """Dining chair: four legs, cushioned seat, back posts and a backrest panel (marker) at -x."""
    d = CHAIR
    s, sh, st, leg, top = d["seat"], d["seat_height"], d["seat_thickness"], d["leg"], d["height"]
    c = s / 2 - leg / 2 - 0.0025  # leg centres
    b0, b1 = d["back_bottom"], d["back_top"]
    parts = [box((leg, leg, sh - st), (sx * c, sy * c, (sh - st) / 2), "wood") for sx in (-1, 1) for sy in (-1, 1)]
    parts += [box((s, s, st), (0.0, 0.0, sh - st / 2), "fabric")]
    parts += [box((leg, leg, top - sh), (-c, sy * c, (top + sh) / 2), "wood") for sy in (-1, 1)]
    panel_x = -c + 0.005
    parts += [box((0.02, 2 * c - leg, b1 - b0), (panel_x, 0.0, (b0 + b1) / 2), "wood")]
    return parts, card_on_front(panel_x + 0.01, 0.0, (b0 + b1) / 2)


def build_wheelchair() -> Built:
    """Manual wheelchair as one rigid link: seat, backrest (marker), big rear wheels, casters."""
    d = WHEELCHAIR
    sd, sw, sh, tb = d["seat_depth"], d["seat_width"], d["seat_height"], d["tube"]
    wr, wy, cr = d["wheel_radius"], d["wheel_y"], d["caster_radius"]
    hh, bt = d["handle_height"], d["back_top"]
    fy, rail_z = sw / 2 + tb / 2, sh - 0.05  # side frame rails
    axle_x, caster_x, back_x = -0.18, 0.28, -sd / 2 - 0.015
    spin = (math.pi / 2, 0.0, 0.0)  # cylinder axis along y
    parts = [
        box((sd, sw, 0.04), (0.0, 0.0, sh - 0.02), "charcoal", density=0.3),  # seat
        box((0.03, sw, bt - sh - 0.01), (back_x, 0.0, (bt + sh + 0.01) / 2), "charcoal", density=0.3),  # backrest
    ]
    for s in (-1, 1):
        parts += [
            cylinder(wr, d["wheel_width"], (axle_x, s * wy, wr), "tyre", rpy=spin, density=0.25),
            cylinder(0.03, wy - fy, (axle_x, s * (wy + fy) / 2, wr), "steel", rpy=spin),  # axle
            cylinder(cr, 0.025, (caster_x, s * fy, cr), "tyre", rpy=spin),  # caster
            box((tb, tb, rail_z - cr), (caster_x, s * fy, (rail_z + cr) / 2), "steel"),  # fork
            box((caster_x - back_x + tb, tb, tb), ((caster_x + back_x) / 2, s * fy, rail_z), "steel"),  # side rail
            box((tb, tb, hh - rail_z), (back_x - 0.03, s * fy, (hh + rail_z) / 2), "steel"),  # post
            box((0.12, 0.03, 0.03), (back_x - 0.08, s * fy, hh), "charcoal"),  # push handle
            box((0.36, 0.05, 0.03), (-0.04, s * fy, sh + 0.19), "charcoal"),  # armrest
            box((tb, tb, 0.19), (0.12, s * fy, sh + 0.095), "steel"),  # armrest support
            box((tb, tb, rail_z - 0.10), (0.34, s * 0.2, (rail_z + 0.10) / 2), "steel"),  # hanger
            box((0.12, 0.17, 0.01), (0.40, s * 0.1, 0.10), "charcoal"),  # footplate
        ]
    return recentred(parts, card_on_front(back_x + 0.015, 0.0, 0.78))


def build_cup() -> Built:
    """Hollow mug: bottom disc, a ring of wall boxes and a handle on +y; marker on the +x side."""
    d = CUP
    r, h, b = d["radius"], d["height"], d["bottom"]
    parts = [cylinder(r, b, (0.0, 0.0, b / 2), "red")]
    parts += ring(r, d["wall"], b, h, int(d["segments"]), "red")
    parts += [
        box((0.008, 0.010, 0.055), (0.0, r + 0.028, 0.055), "red"),  # grip
        box((0.008, 0.028, 0.008), (0.0, r + 0.012, 0.0785), "red"),  # upper stub
        box((0.008, 0.028, 0.008), (0.0, r + 0.012, 0.0315), "red"),  # lower stub
    ]
    return parts, card_on_front(r, 0.0, (b + h) / 2)


def build_bowl() -> Built:
    """Hollow bowl: bottom disc and a ring of wall boxes; marker on the outer +x side."""
    d = BOWL
    r, h, b = d["radius"], d["height"], d["bottom"]
    parts = [cylinder(r, b, (0.0, 0.0, b / 2), "blue")]
    parts += ring(r, d["wall"], b, h, int(d["segments"]), "blue")
    return parts, card_on_front(r, 0.0, (b + h) / 2)


def build_spoon() -> Built:
    """Flat spoon along x: thin handle at -x, shallow rimmed head at +x (holds a few particles)."""
    d = SPOON
    hl, hw, rim, rh = d["head_length"], d["head_width"], d["rim"], d["rim_height"]
    ht = d["handle_thickness"]
    hx = d["length"] / 2 - hl / 2  # head centre
    parts = [
        box((d["length"] - hl, d["handle_width"], ht), (-hl / 2, 0.0, ht / 2), "yellow"),
        box((hl, hw, d["head_plate"]), (hx, 0.0, d["head_plate"] / 2), "yellow"),
    ]
    for s in (-1, 1):
        parts.append(box((rim, hw, rh), (hx + s * (hl - rim) / 2, 0.0, rh / 2), "yellow"))
        parts.append(box((hl - 2 * rim, rim, rh), (hx, s * (hw - rim) / 2, rh / 2), "yellow"))
    return parts, None


def build_pill_box() -> Built:
    """Closed pill organiser; marker on the lid."""
    d = PILL_BOX
    parts = [box((d["length"], d["width"], d["height"]), (0.0, 0.0, d["height"] / 2), "green")]
    return parts, card_on_top(0.0, 0.0, d["height"])


BUILDERS = {
    "bed": build_bed,
    "bedside_table": build_bedside_table,
    "dining_table": build_dining_table,
    "chair": build_chair,
    "wheelchair": build_wheelchair,
    "cup": build_cup,
    "bowl": build_bowl,
    "spoon": build_spoon,
    "pill_box": build_pill_box,
}


# ----------------------------------------------------------------------------- URDF text
def fmt(values: tuple[float, ...] | np.ndarray) -> str:
    """Numbers as URDF text: 8 significant digits, round-off below 1e-12 and -0 written as 0."""
    return " ".join(f"{(float(v) if abs(float(v)) > 1e-12 else 0.0) + 0.0:.8g}" for v in values)


def geometry(part: Part) -> str:
    """The <geometry> element of a part."""
    if part.shape == "box":
        return f'<geometry><box size="{fmt(part.size)}"/></geometry>'
    if part.shape == "cylinder":
        radius, length = fmt(part.size[:1]), fmt(part.size[1:])
        return f'<geometry><cylinder radius="{radius}" length="{length}"/></geometry>'
    return f'<geometry><sphere radius="{fmt(part.size)}"/></geometry>'


def inertial_xml(com: np.ndarray | Vec3, mass: float, tensor: np.ndarray) -> str:
    """An <inertial> element."""
    names = {"ixx": (0, 0), "ixy": (0, 1), "ixz": (0, 2), "iyy": (1, 1), "iyz": (1, 2), "izz": (2, 2)}
    inertia = " ".join(f'{k}="{fmt((tensor[ij],))}"' for k, ij in names.items())
    return (
        f'    <inertial>\n      <origin xyz="{fmt(tuple(com))}" rpy="0 0 0"/>\n'
        f'      <mass value="{mass:.8g}"/>\n      <inertia {inertia}/>\n    </inertial>\n'
    )


def urdf_text(name: str, parts: list[Part], marker: Marker | None) -> str:
    """The URDF document of one object."""
    used = sorted({p.colour for p in parts} | ({"marker"} if marker else set()))
    out = [
        '<?xml version="1.0"?>\n',
        "<!-- Generated by assets/make_assets.py: edit the generator, not this file. -->\n",
        f'<robot name="{name}">\n',
    ]
    out += [f'  <material name="{c}"><color rgba="{fmt(COLOURS[c])}"/></material>\n' for c in used]
    com, tensor = inertial(parts, MASSES[name])
    out += ['  <link name="base_link">\n', inertial_xml(com, MASSES[name], tensor)]
    for p in parts:
        origin = f'<origin xyz="{fmt(p.xyz)}" rpy="{fmt(p.rpy)}"/>'
        out.append(f'    <visual>{origin}{geometry(p)}<material name="{p.colour}"/></visual>\n')
        if p.collide:
            if p.shape == "cylinder":
                r, length = p.size
                p = replace(p, size=(r - CYLINDER_MARGIN, length - 2 * CYLINDER_MARGIN))
            out.append(f"    <collision>{origin}{geometry(p)}</collision>\n")
    out.append("  </link>\n")
    if marker:
        size = MARKER_SIZES[name]
        card = Part("box", (size, size, MARKER_THICKNESS), (0.0, 0.0, 0.0), "marker")
        out += [
            '  <link name="marker">\n',
            inertial_xml((0.0, 0.0, 0.0), MARKER_MASS, principal_inertia(card, MARKER_MASS)),
            f'    <visual><origin xyz="0 0 0" rpy="0 0 0"/>{geometry(card)}'
            '<material name="marker"/></visual>\n  </link>\n',
            '  <joint name="marker_joint" type="fixed">\n    <parent link="base_link"/>\n'
            '    <child link="marker"/>\n'
            f'    <origin xyz="{fmt(marker.xyz)}" rpy="{fmt(marker.rpy)}"/>\n  </joint>\n',
        ]
    out.append("</robot>\n")
    return "".join(out)


# ----------------------------------------------------------------------------- marker images
def marker_image(marker_id: int, width: int, height: int | None = None) -> np.ndarray:
    """The marker with its white quiet border, upright, scaled to ``width`` x ``height`` px."""
    dictionary = cv2.aruco.getPredefinedDictionary(ARUCO_DICTIONARY)
    modules = np.pad(
        cv2.aruco.generateImageMarker(dictionary, marker_id, MARKER_MODULES), QUIET_MODULES, constant_values=255
    )  # one pixel per module
    return cv2.resize(modules, (width, height or width), interpolation=cv2.INTER_NEAREST)


def card_texture(marker_id: int) -> np.ndarray:
    """Texture for a marker card, correct in ER_TINY_RENDERER and EGL (see the module notes)."""
    n = TEXTURE_PX
    texture = np.full((n, n), 255, dtype=np.uint8)
    texture[3 * n // 4 :, 3 * n // 4 :] = np.flipud(marker_image(marker_id, n // 4))  # tiny
    half_v = round(n / (2 * math.sqrt(2)))
    texture[n // 2 - half_v : n // 2 + half_v, n // 4 : 3 * n // 4] = marker_image(
        marker_id, n // 2, 2 * half_v
    )  # EGL: stretched so it shows square
    return texture


def texture_path(marker_id: int, printable: bool = False) -> Path:
    """The marker texture file, or with ``printable`` the plain marker image for printing."""
    return MARKER_DIR / f"aruco_4x4_50_id{marker_id}{'_print' if printable else ''}.png"


def main() -> None:
    """Write every URDF and marker texture, and print a summary."""
    OBJECT_DIR.mkdir(exist_ok=True)
    MARKER_DIR.mkdir(exist_ok=True)
    for name, build in BUILDERS.items():
        parts, marker = build()
        (OBJECT_DIR / f"{name}.urdf").write_text(urdf_text(name, parts, marker))
        lo, hi = aabb(parts)
        print(
            f"{name:14s} size {fmt(hi - lo):20s} centre {fmt((lo + hi) / 2):20s}"
            f" mass {MASSES[name]:g} kg, {len(parts)} parts, marker {MARKER_IDS.get(name, '-')}"
        )
    for marker_id in sorted(MARKER_IDS.values()):
        cv2.imwrite(str(texture_path(marker_id)), card_texture(marker_id))
        printable = marker_image(marker_id, PRINT_MODULE_PX * (MARKER_MODULES + 2 * QUIET_MODULES))
        cv2.imwrite(str(texture_path(marker_id, printable=True)), printable)


if __name__ == "__main__":
    main()
