"""World: one PyBullet physics client with a fixed step, control decimation, seeding and cameras.

Every call goes through the World's own client (``pybullet_utils.bullet_client``), so
several Worlds in one process never see each other's bodies.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import pybullet as pb
from pybullet_utils.bullet_client import BulletClient

from tianji.control.errors import AssetError, TianjiError
from tianji.control.robot import CameraFrame
from tianji.sim.camera import CameraIntrinsics, look_at, render
from tianji.sim.native import quiet_native_output
from tianji.sim.video import VideoRecorder

if TYPE_CHECKING:
    from tianji.sim.sim_robot import SimRobot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorldConfig:
    """Physics settings. ``control_rate = 1 / (timestep * control_decimation)``."""

    timestep: float = 1.0 / 240.0
    control_decimation: int = 4  # physics steps per control step (60 Hz with the default timestep)
    gravity: float = -9.81
    seed: int = 0
    gui: bool = False
    solver_iterations: int = 50
    ground: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.timestep <= 0.05:
            raise ValueError(f"timestep must be in (0, 0.05] s, got {self.timestep}")
        if self.control_decimation < 1:
            raise ValueError(f"control_decimation must be >= 1, got {self.control_decimation}")


@dataclass
class Contact:
    """One contact point between two bodies, as PyBullet reports it (force in newtons)."""

    body_a: int
    body_b: int
    link_a: int
    link_b: int
    position: np.ndarray  # on body b, world frame
    normal: np.ndarray  # from b to a
    normal_force: float


@dataclass
class _Recording:
    recorder: VideoRecorder
    intrinsics: CameraIntrinsics
    pose: np.ndarray | Callable[[], np.ndarray]
    every: int
    counter: int = field(default=0)


class World:
    """A simulated world. Use as a context manager, or call :meth:`close`.

    >>> with World(WorldConfig(seed=1)) as world:
    ...     robot = world.add_robot("tiago")
    ...     world.step()
    """

    def __init__(self, config: WorldConfig | None = None, **overrides: object) -> None:
        self.config = WorldConfig(**{**(config.__dict__ if config else {}), **overrides})  # type: ignore[arg-type]
        mode = pb.GUI if self.config.gui else pb.DIRECT
        if self.config.gui and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
            # PyBullet's GUI exits the whole process when it finds no X server: refuse first
            raise TianjiError(
                "the PyBullet window (gui / render_mode='human') needs a display, and DISPLAY is not set."
                " Run headless (the default) or under a desktop / Xvfb."
            )
        try:
            with quiet_native_output():
                self.client = BulletClient(connection_mode=mode)
        except pb.error as exc:  # GUI without a display
            raise TianjiError(
                f"could not open a PyBullet {'GUI' if self.config.gui else 'DIRECT'} window: {exc}."
                " Without a display, leave gui off (headless)."
            ) from exc
        self.client.setTimeStep(self.config.timestep)
        self.client.setGravity(0, 0, self.config.gravity)
        self.client.setPhysicsEngineParameter(
            numSolverIterations=self.config.solver_iterations, deterministicOverlappingPairs=1
        )
        self.rng = np.random.default_rng(self.config.seed)
        self.time = 0.0
        self.robots: dict[str, SimRobot] = {}
        self._physics_hooks: list[Callable[[], None]] = []
        self._recordings: list[_Recording] = []
        self._closed = False
        # bound once: a BulletClient attribute lookup builds a new functools.partial every time
        self._step_simulation = self.client.stepSimulation
        self._get_base_com_pose = self.client.getBasePositionAndOrientation
        self._com_inverse: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        self.ground_id = self._add_ground() if self.config.ground else -1

    # ----------------------------------------------------------------- time
    @property
    def control_dt(self) -> float:
        """Seconds per control step."""
        return self.config.timestep * self.config.control_decimation

    @property
    def control_rate(self) -> float:
        """Control steps per second."""
        return 1.0 / self.control_dt

    def step(self, n: int = 1) -> None:
        """Advance ``n`` control steps (each ``control_decimation`` physics steps)."""
        self._check_open()
        hooks, dt = self._physics_hooks, self.config.timestep
        for _ in range(n):
            for _ in range(self.config.control_decimation):  # step_physics, inlined
                for hook in hooks:
                    hook()
                self._step_simulation()
                self.time += dt
            for rec in self._recordings:
                rec.counter += 1
                if rec.counter % rec.every == 0:
                    pose = rec.pose() if callable(rec.pose) else rec.pose
                    rec.recorder.add(render(self.client, rec.intrinsics, pose, segmentation=False).rgb)

    def step_physics(self) -> None:
        """One physics step, after the per-step hooks (torque re-application, base motion)."""
        for hook in self._physics_hooks:
            hook()
        self._step_simulation()
        self.time += self.config.timestep

    def add_physics_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` before every physics step (SimRobot uses it for torque and base control)."""
        self._physics_hooks.append(hook)

    def remove_physics_hook(self, hook: Callable[[], None]) -> None:
        """Stop running ``hook``."""
        if hook in self._physics_hooks:
            self._physics_hooks.remove(hook)

    # --------------------------------------------------------------- bodies
    def _add_ground(self) -> int:
        shape = self.client.createCollisionShape(pb.GEOM_PLANE)
        # planes have no visual in the tiny renderer: draw the floor as a large thin box
        visual = self.client.createVisualShape(
            pb.GEOM_BOX,
            halfExtents=[30, 30, 0.001],
            visualFramePosition=[0, 0, -0.001],
            rgbaColor=[0.78, 0.72, 0.64, 1.0],
        )
        body = self.client.createMultiBody(0, shape, visual)
        self.client.changeDynamics(body, -1, lateralFriction=0.9)
        return body

    def load_urdf(
        self,
        path: str | Path,
        position: tuple[float, float, float] | np.ndarray = (0.0, 0.0, 0.0),
        orientation: tuple[float, float, float, float] | np.ndarray = (0.0, 0.0, 0.0, 1.0),
        *,
        fixed: bool = False,
        flags: int = 0,
    ) -> int:
        """Load a URDF file (used as is) and return its body id. Orientation is (x, y, z, w)."""
        self._check_open()
        file = Path(path)
        if not file.is_file():
            raise AssetError(f"URDF file not found: {file}")
        try:
            with quiet_native_output():
                return self.client.loadURDF(
                    str(file),
                    list(position),
                    list(orientation),
                    useFixedBase=fixed,
                    flags=flags | pb.URDF_USE_INERTIA_FROM_FILE,
                )
        except pb.error as exc:
            raise AssetError(f"PyBullet could not load {file}: {exc}. Check that the file is valid URDF.") from exc

    def add_robot(
        self,
        name: str,
        position: tuple[float, float] | tuple[float, float, float] = (0.0, 0.0),
        yaw: float = 0.0,
        *,
        preset: str = "home",
        label: str | None = None,
    ) -> SimRobot:
        """Load a registered robot in a named pose; ``position`` is (x, y) or (x, y, z offset)."""
        from tianji.sim.sim_robot import SimRobot

        robot = SimRobot(self, name, position=position, yaw=yaw, preset=preset)
        key = label or name
        if key in self.robots:
            key = f"{key}_{robot.body_id}"
        self.robots[key] = robot
        return robot

    def remove_body(self, body_id: int) -> None:
        """Remove a body (object or robot) from the world."""
        self._check_open()
        self.client.removeBody(body_id)
        self._com_inverse.pop(body_id, None)

    def bodies(self) -> Iterator[tuple[int, str]]:
        """(body id, name) of every body in the world."""
        for i in range(self.client.getNumBodies()):
            uid = self.client.getBodyUniqueId(i)
            yield uid, self.client.getBodyInfo(uid)[1].decode()

    def base_pose(self, body_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion x, y, z, w) of a body's base link frame, as the URDF defines it.

        PyBullet reports the base's centre of mass; the inertial offset is undone here.
        """
        pos, quat = self._base_pose(body_id)
        return np.array(pos), np.array(quat)

    def _base_pose(self, body_id: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """:meth:`base_pose` as PyBullet's tuples (the per-step path of SimRobot.observe)."""
        inverse = self._com_inverse.get(body_id)
        if inverse is None:
            info = self.client.getDynamicsInfo(body_id, -1)
            inverse = self._com_inverse[body_id] = pb.invertTransform(info[3], info[4])
        com_pos, com_quat = self._get_base_com_pose(body_id)
        return pb.multiplyTransforms(com_pos, com_quat, *inverse)

    # ------------------------------------------------------------- contacts
    def contacts(self, body_a: int, body_b: int | None = None) -> list[Contact]:
        """Contact points of ``body_a`` (with ``body_b`` only, when given) after the last step."""
        kwargs = {"bodyA": body_a} if body_b is None else {"bodyA": body_a, "bodyB": body_b}
        return [
            Contact(c[1], c[2], c[3], c[4], np.array(c[6]), np.array(c[7]), float(c[9]))
            for c in self.client.getContactPoints(**kwargs)
        ]

    def contact_force(self, body_a: int, body_b: int | None = None) -> float:
        """Sum of normal forces (N) between ``body_a`` and ``body_b`` (or anything)."""
        return float(sum(c.normal_force for c in self.contacts(body_a, body_b)))

    # -------------------------------------------------------------- cameras
    def render(
        self,
        eye: tuple[float, float, float] | np.ndarray | None = None,
        target: tuple[float, float, float] | np.ndarray | None = None,
        *,
        pose: np.ndarray | None = None,
        intrinsics: CameraIntrinsics | None = None,
        name: str = "camera",
        shadows: bool = True,
    ) -> CameraFrame:
        """Render from a camera placed at ``eye`` looking at ``target`` (or a 4x4 optical ``pose``)."""
        self._check_open()
        if pose is None:
            if eye is None or target is None:
                raise ValueError("render() needs eye and target, or pose")
            pose = look_at(eye, target)
        return render(
            self.client, intrinsics or CameraIntrinsics(), pose, name=name, timestamp=self.time, shadows=shadows
        )

    def start_recording(
        self,
        path: str | Path,
        pose: np.ndarray | Callable[[], np.ndarray],
        intrinsics: CameraIntrinsics | None = None,
        fps: float = 30.0,
    ) -> VideoRecorder:
        """Record an mp4 from a camera pose (fixed, or a callable for a moving camera) while stepping."""
        every = max(1, round(self.control_rate / fps))
        recorder = VideoRecorder(path, fps=self.control_rate / every)
        self._recordings.append(_Recording(recorder, intrinsics or CameraIntrinsics(640, 480, 60.0), pose, every))
        return recorder

    def stop_recording(self) -> list[Path]:
        """Finish every recording and return the written files."""
        paths = [rec.recorder.close() for rec in self._recordings]
        self._recordings.clear()
        return paths

    # ---------------------------------------------------------------- state
    def save_state(self) -> int:
        """Snapshot the physics state in memory; returns an id for :meth:`restore_state`."""
        return self.client.saveState()

    def restore_state(self, state_id: int) -> None:
        """Return to a snapshot taken with :meth:`save_state` (same bodies must exist)."""
        self.client.restoreState(stateId=state_id)

    def close(self) -> None:
        """Finish recordings and disconnect. Safe to call twice."""
        if self._closed:
            return
        self.stop_recording()
        for robot in list(self.robots.values()):
            robot.close()
        self._closed = True
        with suppress(pb.error):
            self.client.disconnect()

    def _check_open(self) -> None:
        if self._closed:
            raise TianjiError("this World is closed; create a new World")

    def __enter__(self) -> World:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
