"""Floor occupancy maps of a simulated scene, for the mobile base's navigation (control's OccupancyMap).

Obstacles are the axis-aligned bounding boxes of everything that stands on the floor: the
scene's furniture (bed, tables, chair, wheelchair) and the other robots and people (the
patient in bed, the G1). Objects that rest on furniture (cup, spoon) are not obstacles for the
base. The room's walls are the map's border. Ground truth today; a SLAM map later.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tianji.control.base_nav import OccupancyMap
from tianji.sim.scene import Scene

FLOOR_CLEARANCE = 0.1  # m: a body whose bounding box starts below this height stands on the floor


def body_aabb(scene: Scene, body: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) world corners of the union of a body's link bounding boxes."""
    client = scene.world.client
    boxes = [client.getAABB(body, link) for link in range(-1, client.getNumJoints(body))]
    return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)


def obstacle_boxes(
    scene: Scene, exclude: Iterable[str] = ("tiago",), floor_clearance: float = FLOOR_CLEARANCE
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{name: AABB} of the scene's floor-standing objects and robots, except the names in ``exclude``."""
    skip = set(exclude)
    out = {}
    bodies = [(n, o.body_id) for n, o in scene.objects.items()] + [(n, r.body_id) for n, r in scene.robots.items()]
    for name, body in bodies:
        if name in skip:
            continue
        lo, hi = body_aabb(scene, body)
        if lo[2] <= floor_clearance:
            out[name] = (lo, hi)
    return out


def room_occupancy(
    scene: Scene,
    exclude: Iterable[str] = ("tiago",),
    *,
    resolution: float = 0.05,
    height: tuple[float, float] = (0.03, 2.0),
) -> OccupancyMap:
    """The scene's floor map: walls at the room's border, and every floor-standing body but ``exclude``."""
    sx, sy = scene.room_size
    boxes = obstacle_boxes(scene, exclude).values()
    return OccupancyMap.from_boxes((-sx / 2, -sy / 2), (sx / 2, sy / 2), boxes, resolution=resolution, height=height)
