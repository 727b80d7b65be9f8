"""The world in words, for a model backend's prompt and for replanning after a failure.

:func:`describe` turns a WorldState and its symbolic state into a few plain lines: where the
robot is and what it holds, each place with what stands on it, each person with posture and
whether the robot is near, and the objects it can carry. Positions are metres in the room.
"""

from __future__ import annotations

import math

from tianji.control.world_state import WorldState
from tianji.policies.planner.plan import graspable
from tianji.policies.planner.symbolic import NONE, SymbolicState, from_world_state


def describe(ws: WorldState, state: SymbolicState | None = None, robot: str = "tiago") -> str:
    """A short text description of the room now (see the module doc)."""
    state = state or from_world_state(ws)
    x, y, yaw = (float(v) for v in ws.robot_pose[:3])
    holding = state.get("holding")
    at = state.get("robot_at")
    lines = [
        f"Robot ({robot}): at ({x:.2f}, {y:.2f}) facing {math.degrees(yaw):.0f} deg"
        f"{f', at place {at}' if at != NONE else ', at no named place'};"
        f" holding {holding if holding != NONE else 'nothing'}; gripper {state.get('gripper')}.",
    ]
    movable = graspable(ws.objects)
    for name, place in ws.places.items():
        on = [o for o in movable if state.get("on", (o,)) == name]
        surface = f"surface at {place.surface_height:.2f} m" if place.surface_height is not None else "no surface"
        things = f"; on it: {', '.join(on)}" if on else ""
        lines.append(f"Place {name}: stand at ({place.pose[0]:.2f}, {place.pose[1]:.2f}), {surface}{things}.")
    for name, person in ws.people.items():
        near = "near the robot" if state.get("near", (name,)) == "true" else "not near the robot"
        pos = person.position
        lines.append(f"Person {name}: {person.posture}, at ({pos[0]:.2f}, {pos[1]:.2f}), {near}.")
    for name in movable:
        where = state.get("on", (name,))
        where = "in the robot's hand" if name == holding else (f"on {where}" if where != NONE else "on no surface")
        lines.append(f"Object {name}: {where}.")
    return "\n".join(lines)
