"""Mobile-base navigation: a 2D occupancy map of the room and a go-to-pose controller that stops before obstacles.

The map is a boolean grid over the floor (True = occupied) built from boxes: furniture
footprints from the simulator's bounding boxes, from a floor plan, or from perception.
:class:`BaseController` drives a differential base (TIAGo) to (x, y, yaw): turn towards the
goal (or, close behind, reverse to it), drive, turn to the final heading, with speed and
acceleration limits; before each command it measures the free distance in front of the robot
(behind it when reversing) in the map and caps the speed
so the base can always brake to a stop ``stop_margin`` short of the first obstacle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from tianji.control.controllers.base import Controller
from tianji.control.robot import Command, ControlMode, Observation
from tianji.control.transforms import wrap_angle, yaw_of


@dataclass
class OccupancyMap:
    """Occupied floor cells. ``grid[iy, ix]`` covers x in origin[0] + ix * resolution (+ resolution), same for y."""

    grid: np.ndarray
    origin: tuple[float, float]
    resolution: float

    @classmethod
    def empty(
        cls, lower: Sequence[float], upper: Sequence[float], resolution: float = 0.05, walls: bool = True
    ) -> OccupancyMap:
        """A free map over the box [lower, upper] (x, y, metres); ``walls`` marks its border cells occupied."""
        if resolution <= 0 or upper[0] <= lower[0] or upper[1] <= lower[1]:
            raise ValueError(f"need resolution > 0 and upper > lower, got {lower}, {upper}, {resolution}")
        nx = math.ceil((upper[0] - lower[0]) / resolution)
        ny = math.ceil((upper[1] - lower[1]) / resolution)
        grid = np.zeros((ny, nx), dtype=bool)
        if walls:
            grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = True
        return cls(grid, (float(lower[0]), float(lower[1])), float(resolution))

    @classmethod
    def from_boxes(
        cls,
        lower: Sequence[float],
        upper: Sequence[float],
        boxes: Iterable[tuple[Sequence[float], Sequence[float]]],
        resolution: float = 0.05,
        height: tuple[float, float] = (0.03, 2.0),
        walls: bool = True,
    ) -> OccupancyMap:
        """A map of the room [lower, upper] with axis-aligned boxes (lo xyz, hi xyz) that reach into ``height``."""
        out = cls.empty(lower, upper, resolution, walls)
        for lo, hi in boxes:
            out.add_box(lo, hi, height)
        return out

    def add_box(
        self, lower: Sequence[float], upper: Sequence[float], height: tuple[float, float] = (0.03, 2.0)
    ) -> None:
        """Mark an axis-aligned box occupied: (x, y) footprint, or (x, y, z) when it overlaps ``height``."""
        if len(lower) >= 3 and (upper[2] < height[0] or lower[2] > height[1]):
            return  # on the floor below the bumpers, or above the robot
        ix0, iy0 = self._cell(lower[0], lower[1])
        ix1, iy1 = self._cell(upper[0], upper[1])
        ny, nx = self.grid.shape
        self.grid[max(iy0, 0) : min(iy1, ny - 1) + 1, max(ix0, 0) : min(ix1, nx - 1) + 1] = True

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return math.floor((x - self.origin[0]) / self.resolution), math.floor((y - self.origin[1]) / self.resolution)

    def occupied(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """Whether world points are occupied; points off the map count as occupied."""
        ix = np.floor((np.asarray(x) - self.origin[0]) / self.resolution).astype(np.int64)
        iy = np.floor((np.asarray(y) - self.origin[1]) / self.resolution).astype(np.int64)
        ny, nx = self.grid.shape
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        out = np.ones(np.shape(ix), dtype=bool)
        out[inside] = self.grid[iy[inside], ix[inside]]
        return out

    def free_distance(
        self, x: float, y: float, heading: float, half_width: float, front: float, max_distance: float
    ) -> float:
        """Free travel (m) along ``heading`` for a robot whose front edge is ``front`` m ahead of (x, y).

        The swept strip is ``2 * half_width`` wide; returns ``max_distance`` when nothing is in reach.
        """
        step = self.resolution / 2
        s = np.arange(0.0, max_distance + step, step)
        lateral = np.arange(-half_width, half_width + step / 2, step)
        c, n = math.cos(heading), math.sin(heading)
        px = x + (front + s)[:, None] * c - lateral[None, :] * n
        py = y + (front + s)[:, None] * n + lateral[None, :] * c
        hits = np.any(self.occupied(px, py), axis=1)
        return float(s[np.argmax(hits)]) if np.any(hits) else float(max_distance)


class BaseController(Controller):
    """Drives a mobile base to ``goal`` = (x, y, yaw) in the world frame with twist commands.

    Speeds stay within ``max_linear`` m/s and ``max_angular`` rad/s, changes within
    ``max_linear_acc`` and ``max_angular_acc``. With an ``occupancy`` map the forward speed is
    capped at sqrt(2 a d), d being the free distance ahead less ``stop_margin``, so the base
    stops before obstacles; when it has stood blocked for ``blocked_timeout`` s the
    controller fails and says where. ``robot_radius`` is the base's footprint radius. A goal
    behind the base and at most ``reverse_within`` m away is reached in reverse (the map checked
    behind) instead of turning round first: a turn on the spot swings whatever the arm holds
    out through a half circle.
    """

    def __init__(
        self,
        goal: Sequence[float],
        *,
        occupancy: OccupancyMap | None = None,
        robot_radius: float = 0.3,
        max_linear: float = 0.4,
        max_angular: float = 0.8,
        max_linear_acc: float = 0.4,
        max_angular_acc: float = 1.0,
        position_tolerance: float = 0.05,
        yaw_tolerance: float = 0.05,
        stop_margin: float = 0.1,
        heading_gain: float = 2.0,
        turn_in_place: float = 0.5,
        blocked_timeout: float = 2.0,
        reverse_within: float = 0.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__(timeout)
        goal = np.asarray(goal, dtype=float)
        if goal.shape != (3,) or not np.all(np.isfinite(goal)):
            raise ValueError(f"base goal must be finite (x, y, yaw), got {goal!r}")
        self.goal = goal
        self.occupancy = occupancy
        self.robot_radius = robot_radius
        self.max_linear, self.max_angular = max_linear, max_angular
        self.max_linear_acc, self.max_angular_acc = max_linear_acc, max_angular_acc
        self.position_tolerance, self.yaw_tolerance = position_tolerance, yaw_tolerance
        self.stop_margin = stop_margin
        self.heading_gain = heading_gain
        self.turn_in_place = turn_in_place
        self.blocked_timeout = blocked_timeout
        self.reverse_within = reverse_within
        self.twist = np.zeros(2)  # last (vx, wz) sent
        self.free_ahead = math.inf
        self.distance = math.inf
        self.blocked = False
        self._blocked_since: float | None = None
        self._arrived = False

    def _reset(self, obs: Observation) -> None:
        self.twist = np.zeros(2)
        self._blocked_since = None
        self._arrived = False
        self.blocked = False

    def pose(self, obs: Observation) -> np.ndarray:
        """(x, y, yaw) of the base from an observation."""
        b = obs.base_pose.astype(float)
        return np.array([b[0], b[1], yaw_of(b[3:7])])

    def _step(self, obs: Observation) -> Command:
        x, y, yaw = self.pose(obs)
        dx, dy = self.goal[0] - x, self.goal[1] - y
        self.distance = math.hypot(dx, dy)
        if self.distance > self.position_tolerance * (2.0 if self._arrived else 1.0):
            self._arrived = False
            bearing = wrap_angle(math.atan2(dy, dx) - yaw)
            direction = 1.0
            if abs(bearing) > math.pi / 2 and self.distance <= self.reverse_within:  # a short way back: reverse
                bearing, direction = wrap_angle(bearing - math.pi), -1.0
            speed_cap = math.sqrt(2.0 * self.max_linear_acc * self.distance)
            vx = 0.0 if abs(bearing) > self.turn_in_place else min(self.max_linear, speed_cap) * math.cos(bearing)
            vx *= direction
            wz = self.heading_gain * bearing
        else:
            self._arrived = True
            heading_error = wrap_angle(self.goal[2] - yaw)
            if abs(heading_error) <= self.yaw_tolerance and abs(self.twist[1]) < 0.1:
                self.succeed(f"at the goal within {self.distance * 100:.1f} cm and {abs(heading_error):.3f} rad")
                self.twist = np.zeros(2)
                return self.hold_command(obs)
            vx, wz = 0.0, self.heading_gain * heading_error
        wz = float(np.clip(wz, -self.max_angular, self.max_angular))
        wz = math.copysign(min(abs(wz), math.sqrt(2.0 * self.max_angular_acc * abs(wz / self.heading_gain))), wz)
        vx = self._obstacle_cap(x, y, yaw, vx, obs)
        dt = self.period(0.02)
        lin, ang = self.max_linear_acc * dt, self.max_angular_acc * dt
        step = np.array([lin, ang])
        self.twist = np.clip(np.array([vx, wz]), self.twist - step, self.twist + step)
        return Command(ControlMode.POSITION, base_twist=(float(self.twist[0]), 0.0, float(self.twist[1])))

    def _obstacle_cap(self, x: float, y: float, yaw: float, vx: float, obs: Observation) -> float:
        """Speed capped so the base can stop before the first obstacle in its way (ahead, or behind when
        reversing); tracks being blocked."""
        if self.occupancy is None or vx == 0.0:
            self._blocked_since = None
            self.blocked = False
            return vx
        backwards = vx < 0.0
        vx = abs(vx)
        heading = wrap_angle(yaw + math.pi) if backwards else yaw
        lookahead = self.max_linear**2 / (2.0 * self.max_linear_acc) + self.stop_margin + 0.5
        self.free_ahead = self.occupancy.free_distance(x, y, heading, self.robot_radius, self.robot_radius, lookahead)
        room = max(0.0, self.free_ahead - self.stop_margin)
        cap = math.sqrt(2.0 * self.max_linear_acc * room)
        dt = self.period(0.02)
        cap = max(0.0, cap - self.max_linear_acc * dt)  # one tick of latency before the brake acts
        self.blocked = cap < 0.02 and vx > 0.02
        if self.blocked:
            now = self.elapsed(obs)
            self._blocked_since = now if self._blocked_since is None else self._blocked_since
            if now - self._blocked_since >= self.blocked_timeout:
                self.fail(
                    f"blocked: an obstacle is {self.free_ahead:.2f} m {'behind' if backwards else 'ahead of'} the"
                    f" base at ({x:.2f}, {y:.2f}), {self.distance:.2f} m short of the goal; plan another route"
                )
            return 0.0
        self._blocked_since = None
        return -min(vx, cap) if backwards else min(vx, cap)

    def hold_command(self, obs: Observation) -> Command:
        return Command(ControlMode.POSITION, base_twist=(0.0, 0.0, 0.0))

    def progress(self) -> str:
        return f"{self.distance:.2f} m from the goal"
