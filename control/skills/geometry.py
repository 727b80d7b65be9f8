"""Geometry the care skills share: grasp poses, known-object models, held-object detection, path planning.

Grasp frame convention (TIAGo's Hey5 ``hand_grasping_frame``, measured in the simulator): the
fingers extend along +x, the palm faces +y (fingers curl towards +y when closing), the thumb
is on the +z side. A side grasp therefore approaches along +y with z up; a top grasp has +y
pointing down.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tianji.control.base_nav import OccupancyMap
from tianji.control.robot import Observation
from tianji.control.transforms import matrix_to_pose, quat_to_matrix, rotation_exp, yaw_of
from tianji.control.world_state import WorldState


@dataclass(frozen=True)
class ObjectModel:
    """What the skills know about a kind of object, in its base frame (origin at the footprint centre, z up).

    ``grasp``: "side" (hand beside it, palm towards its axis) or "top" (palm down on it);
    ``grasp_height``: height of the grasp point above the footprint; ``palm_offset``: distance
    of the grasp frame from the grasp point along the approach; ``height``: overall height;
    ``lip``: the point that goes to a person's mouth (rim centre of a cup, bowl of a spoon);
    ``tilt``: how far it is tipped from upright towards the mouth (rad) for a face looking ahead (a face
    looking up adds its elevation: the rim then points down to the mouth); ``align_x``: turn the object's x
    axis towards the mouth (a spoon's bowl leads); ``pitch``: side grasps come from above by this
    angle (rad) so the forearm clears the table.
    """

    grasp: str = "side"
    grasp_height: float = 0.05
    palm_offset: float = 0.045
    height: float = 0.10
    lip: tuple[float, float, float] | None = None
    tilt: float = 0.0
    align_x: bool = False
    pitch: float = 0.35


OBJECT_MODELS: dict[str, ObjectModel] = {
    "cup": ObjectModel("side", 0.06, 0.045, 0.10, lip=(0.0, 0.0, 0.10), tilt=1.6),
    # the bowl is gripped near its rim (6 cm high) and from steeper above, so the little finger clears the table
    "bowl": ObjectModel("side", 0.05, 0.075, 0.06, pitch=0.5),
    "spoon": ObjectModel("top", 0.0, 0.03, 0.006, lip=(0.055, 0.0, 0.003), align_x=True),
    "pill_box": ObjectModel("top", 0.0125, 0.03, 0.025),
}
DEFAULT_MODEL = ObjectModel("side", 0.05, 0.05, 0.10)
RESTING_HEIGHT = 0.03  # m: an object whose footprint is this close to a surface stands on it (a held one is lifted)


def object_model(name: str) -> ObjectModel:
    """The model of a known object (by name, or name prefix such as ``cup_2``), else a generic side grasp."""
    if name in OBJECT_MODELS:
        return OBJECT_MODELS[name]
    for key, model in OBJECT_MODELS.items():
        if name.startswith(key):
            return model
    return DEFAULT_MODEL


def frame_pose(position: Sequence[float], x_axis: np.ndarray, y_axis: np.ndarray) -> np.ndarray:
    """(7,) pose with the given x and y axes (orthonormalized; y is kept, x made orthogonal to it)."""
    y = np.asarray(y_axis, dtype=float)
    y = y / np.linalg.norm(y)
    x = np.asarray(x_axis, dtype=float)
    x = x - (x @ y) * y
    x = x / np.linalg.norm(x)
    m = np.eye(4)
    m[:3, :3] = np.column_stack([x, y, np.cross(x, y)])
    m[:3, 3] = position
    return matrix_to_pose(m)


def rotation_between(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """3x3 rotation of least angle taking direction ``a`` to direction ``b``."""
    a = np.asarray(a, dtype=float) / np.linalg.norm(a)
    b = np.asarray(b, dtype=float) / np.linalg.norm(b)
    axis = np.cross(a, b)
    s = float(np.linalg.norm(axis))
    if s < 1e-9:
        if a @ b > 0:
            return np.eye(3)
        other = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        axis = np.cross(a, other)
        return rotation_exp(axis / np.linalg.norm(axis) * math.pi)  # half a turn about any axis normal to a
    return rotation_exp(axis / s * math.atan2(s, float(a @ b)))


def side_grasp_pose(
    point: Sequence[float], approach: Sequence[float], palm_offset: float, pitch: float = 0.0
) -> np.ndarray:
    """Grasp frame pose beside ``point``, palm towards it along the horizontal ``approach`` tipped down by ``pitch``.

    The fingers stay horizontal and the thumb points up (tilted by ``pitch``): a pitch of
    0.3-0.4 rad keeps the forearm above a table's edge when grasping things that stand on it.
    """
    h = np.array([approach[0], approach[1], 0.0])
    h = h / np.linalg.norm(h)
    a = math.cos(pitch) * h + np.array([0.0, 0.0, -math.sin(pitch)])
    fingers = np.cross(h, np.array([0.0, 0.0, 1.0]))
    return frame_pose(np.asarray(point, dtype=float) - palm_offset * a, fingers, a)


def top_grasp_pose(point: Sequence[float], fingers: Sequence[float], palm_offset: float) -> np.ndarray:
    """Grasp frame pose above ``point``, palm down, fingers along the horizontal ``fingers`` direction."""
    f = np.array([fingers[0], fingers[1], 0.0])
    f = f / np.linalg.norm(f)
    return frame_pose(np.asarray(point, dtype=float) + np.array([0.0, 0.0, palm_offset]), f, np.array([0.0, 0.0, -1.0]))


def base_xy_yaw(obs: Observation) -> np.ndarray:
    """(x, y, yaw) of the robot's base."""
    b = obs.base_pose.astype(float)
    return np.array([b[0], b[1], yaw_of(b[3:7])])


def in_base_frame(point: Sequence[float], obs: Observation) -> np.ndarray:
    """A world point in the base's floor frame (x forward, y left, z up from the floor)."""
    x, y, yaw = base_xy_yaw(obs)
    d = np.asarray(point, dtype=float) - np.array([x, y, 0.0])
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]])


def object_pose(world_state: WorldState, name: str) -> np.ndarray:
    """4x4 world pose of an object (identity rotation when its orientation is not estimated)."""
    obj = world_state.object(name)
    m = np.eye(4)
    if obj.orientation is not None:
        m[:3, :3] = quat_to_matrix(np.asarray(obj.orientation, dtype=float))
    m[:3, 3] = obj.position
    return m


def held_object(world_state: WorldState, obs: Observation, max_distance: float = 0.15) -> str | None:
    """The object the gripper holds, judged from observations: nearest to the grasp frame within ``max_distance``
    with the gripper not fully open, and not resting on a surface (a closed hand parked beside a table is not
    holding what stands on it; an object the world state says is held, ``source="grasp"``, counts wherever it
    is). None when the hand is empty."""
    grip = obs.ee_poses.get("gripper")
    if grip is None or obs.gripper is None or obs.gripper > 0.9:
        return None
    best, best_d = None, max_distance
    for name, obj in world_state.objects.items():
        if obj.source != "grasp" and _resting(world_state, obj.position):
            continue
        model = object_model(name)
        centre = np.asarray(obj.position, dtype=float) + np.array([0.0, 0.0, model.grasp_height])
        d = float(np.linalg.norm(centre - grip[:3].astype(float)))
        if d < best_d:
            best, best_d = name, d
    return best


def _resting(world_state: WorldState, position: Sequence[float]) -> bool:
    """Whether an object's footprint is on a place's surface (within :data:`RESTING_HEIGHT`)."""
    name = place_of(world_state, position)
    if name is None:
        return False
    surface = world_state.place(name).surface_height
    return surface is not None and abs(float(position[2]) - surface) <= RESTING_HEIGHT


def place_of(world_state: WorldState, position: Sequence[float]) -> str | None:
    """The place whose surface holds a point (nearest surface centre at about the point's height), or None."""
    best, best_d = None, 1.5
    for name, place in world_state.places.items():
        if place.center is None or place.surface_height is None:
            continue
        if abs(position[2] - place.surface_height) > 0.1:
            continue
        d = math.hypot(position[0] - place.center[0], position[1] - place.center[1])
        if d < best_d:
            best, best_d = name, d
    return best


# ------------------------------------------------------------------ navigation
def inflate(occupancy: OccupancyMap, radius: float) -> np.ndarray:
    """The map's occupied cells grown by ``radius`` (m): cells where a disc of that radius would hit something."""
    r = math.ceil(radius / occupancy.resolution)
    grid = occupancy.grid
    out = grid.copy()
    ys, xs = np.nonzero(grid)
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if dy * dy + dx * dx <= r * r]
    ny, nx = grid.shape
    for dy, dx in offsets:
        yy, xx = ys + dy, xs + dx
        ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        out[yy[ok], xx[ok]] = True
    return out


def _cell(occupancy: OccupancyMap, xy: Sequence[float]) -> tuple[int, int]:
    return (
        math.floor((xy[1] - occupancy.origin[1]) / occupancy.resolution),
        math.floor((xy[0] - occupancy.origin[0]) / occupancy.resolution),
    )


def _centre(occupancy: OccupancyMap, cell: tuple[int, int]) -> np.ndarray:
    return np.array(
        [
            occupancy.origin[0] + (cell[1] + 0.5) * occupancy.resolution,
            occupancy.origin[1] + (cell[0] + 0.5) * occupancy.resolution,
        ]
    )


def is_free(blocked: np.ndarray, occupancy: OccupancyMap, xy: Sequence[float]) -> bool:
    """Whether a point is free in an inflated grid (off the map counts as blocked)."""
    iy, ix = _cell(occupancy, xy)
    return 0 <= iy < blocked.shape[0] and 0 <= ix < blocked.shape[1] and not blocked[iy, ix]


def _line_free(blocked: np.ndarray, occupancy: OccupancyMap, a: np.ndarray, b: np.ndarray) -> bool:
    n = max(2, int(np.linalg.norm(b - a) / (occupancy.resolution / 2)) + 1)
    return all(is_free(blocked, occupancy, a + t * (b - a)) for t in np.linspace(0.0, 1.0, n))


def plan_path(
    occupancy: OccupancyMap,
    start: Sequence[float],
    goal: Sequence[float],
    clearance: float,
    end_clearance: float | None = None,
) -> list[np.ndarray] | None:
    """Waypoints (x, y) from ``start`` to ``goal`` keeping ``clearance`` m from obstacles; None when there is no path.

    A* on the 8-connected grid inflated by ``clearance``, then shortcut to the fewest straight
    segments. Within 0.4 m of the start and the goal only ``end_clearance`` (default
    ``clearance - 0.17``) is required: places where a robot works are often close to furniture.
    """
    end_clearance = clearance - 0.17 if end_clearance is None else end_clearance
    blocked = inflate(occupancy, clearance)
    near = inflate(occupancy, end_clearance)
    s, g = _cell(occupancy, start), _cell(occupancy, goal)
    ny, nx = blocked.shape
    if not (0 <= g[0] < ny and 0 <= g[1] < nx) or near[g]:
        return None
    r = math.ceil(0.4 / occupancy.resolution)
    for cy, cx in (s, g):
        window = (slice(max(0, cy - r), cy + r + 1), slice(max(0, cx - r), cx + r + 1))
        blocked[window] &= near[window]
    moves = [(dy, dx, math.hypot(dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    frontier: list[tuple[float, tuple[int, int]]] = [(0.0, s)]
    cost = {s: 0.0}
    parent: dict[tuple[int, int], tuple[int, int]] = {}
    while frontier:
        _, cur = heapq.heappop(frontier)
        if cur == g:
            break
        for dy, dx, step in moves:
            nxt = (cur[0] + dy, cur[1] + dx)
            if not (0 <= nxt[0] < ny and 0 <= nxt[1] < nx) or blocked[nxt]:
                continue
            new = cost[cur] + step
            if new < cost.get(nxt, math.inf):
                cost[nxt] = new
                parent[nxt] = cur
                heapq.heappush(frontier, (new + math.hypot(g[0] - nxt[0], g[1] - nxt[1]), nxt))
    if g not in cost:
        return None
    cells = [g]
    while cells[-1] != s:
        cells.append(parent[cells[-1]])
    points = [np.asarray(start[:2], dtype=float)] + [_centre(occupancy, c) for c in reversed(cells[:-1])]
    points[-1] = np.asarray(goal[:2], dtype=float)
    path = [points[0]]
    i = 0
    while i < len(points) - 1:  # greedy shortcut: farthest point visible from the current one
        j = len(points) - 1
        while j > i + 1 and not _line_free(blocked, occupancy, points[i], points[j]):
            j -= 1
        path.append(points[j])
        i = j
    return path
