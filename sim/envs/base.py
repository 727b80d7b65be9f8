"""Base class of Tianji's Gymnasium environments: one World, seeded resets, camera observations,
normalized actions mapped to joint targets, domain randomization and rendering.

A task subclass builds its bodies once (:meth:`TianjiEnv._build`), then per episode
samples a start state (:meth:`_reset_task`), reads its observation (:meth:`_observe_state`)
and scores a step (:meth:`_evaluate`). Physics state is restored from an in-memory
snapshot at every reset, so episodes cost no reloading.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.control.errors import InvalidCommandError
from tianji.sim.camera import CameraIntrinsics, look_at, render
from tianji.sim.sim_robot import SimRobot, all_finite
from tianji.sim.world import World, WorldConfig

OBS_MODES = ("state", "rgb", "rgbd")
T = TypeVar("T")


@dataclass(frozen=True)
class DomainRandomization:
    """Per-episode perturbations, all off (0) by default.

    ============== =========================================================================
    mass_scale     link masses of the robot and task objects scaled by U(1 - s, 1 + s)
    friction_scale lateral friction of every link scaled by U(1 - s, 1 + s)
    gain_scale     position-motor gains (kp, kd) scaled by U(1 - s, 1 + s)
    obs_noise      Gaussian noise (std, in the observation's own units) on state observations
    action_latency actions applied 0..N control steps late (N drawn per episode)
    ============== =========================================================================
    """

    mass_scale: float = 0.0
    friction_scale: float = 0.0
    gain_scale: float = 0.0
    obs_noise: float = 0.0
    action_latency: int = 0

    @classmethod
    def from_any(cls, value: DomainRandomization | dict[str, Any] | None) -> DomainRandomization:
        """Accept an instance, a dict of its fields (e.g. from YAML) or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"unknown domain randomization keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**value)

    @property
    def enabled(self) -> bool:
        """Whether anything is randomized."""
        return any(getattr(self, f.name) for f in fields(self))


class TianjiEnv(gym.Env):
    """Common machinery; subclasses define the task. See each environment's docstring table."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array", "human"], "render_fps": 50}
    control_rate: ClassVar[float] = 50.0
    physics_timestep: ClassVar[float] = 1.0 / 200.0
    solver_iterations: ClassVar[int] = 50
    camera_robot: ClassVar[str | None] = None  # robot label whose mounted camera gives rgb obs
    camera_name: ClassVar[str] = "head"
    # robots that _reset_task always puts in their start state itself (reset() skips its own reset of them:
    # a reset costs one PyBullet call per joint)
    robots_reset_by_task: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        obs_mode: str = "state",
        image_size: int = 84,
        randomization: DomainRandomization | dict[str, Any] | None = None,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.image_size = image_size
        self.randomization = DomainRandomization.from_any(randomization)
        decimation = max(1, round(1.0 / (self.control_rate * self.physics_timestep)))
        self.world = World(
            WorldConfig(
                timestep=self.physics_timestep,
                control_decimation=decimation,
                solver_iterations=self.solver_iterations,
                gui=render_mode == "human",
            )
        )
        self._step_reads: dict[str, Any] | None = None  # see step_read
        self.robots: dict[str, SimRobot] = {}
        self.task_bodies: list[int] = []  # bodies whose masses / friction get randomized
        self._build()
        # restoreState does not restore Bullet's sleeping state: keep every body awake so resets replay exactly
        for body, _ in self.world.bodies():
            self.world.client.changeDynamics(body, -1, activationState=pb.ACTIVATION_STATE_DISABLE_SLEEPING)
        self.actuated = self._actuated_joints()
        self.action_space = spaces.Box(-1.0, 1.0, shape=(len(self.actuated),), dtype=np.float32)
        self.action_labels = [joint for _, joint in self.actuated]  # what each action element drives (for errors)
        # the default action mapping per robot, resolved once: (robot, action elements, spec joint indices)
        self._action_groups: list[tuple[SimRobot, np.ndarray, np.ndarray]] = []
        for label, robot in self.robots.items():
            idx = [i for i, (lab, _) in enumerate(self.actuated) if lab == label]
            if idx:
                joints = np.array([robot.spec.index(self.actuated[i][1]) for i in idx], dtype=np.int64)
                self._action_groups.append((robot, np.array(idx, dtype=np.int64), joints))
        self.observation_space = self._observation_space()
        self._snapshot = self.world.save_state()
        # PyBullet keeps solver caches that restoreState does not reset; stepping once here makes the
        # first episode start from the same cache state as every later one (bit-identical replays).
        self.world.step()
        self._nominal_dynamics = self._read_dynamics()
        self._pending: list[np.ndarray] = []
        self._latency = 0
        self.steps = 0

    # ------------------------------------------------------------ to define
    def _build(self) -> None:
        """Add robots (``self.robots``) and objects (``self.task_bodies``) to ``self.world``. Called once."""
        raise NotImplementedError

    def _actuated_joints(self) -> list[tuple[str, str]]:
        """(robot label, joint) pairs the action drives, in action order."""
        raise NotImplementedError

    def _reset_task(self) -> None:
        """Sample the episode's start state and goals from ``self.np_random``."""
        raise NotImplementedError

    def _observe_state(self) -> dict[str, np.ndarray] | np.ndarray:
        """The state observation (an array, or the goal dict for goal-conditioned tasks)."""
        raise NotImplementedError

    def _state_space(self) -> spaces.Space:
        """Space of :meth:`_observe_state`."""
        raise NotImplementedError

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        """(reward, terminated, info) after a step; info must hold ``is_success``."""
        raise NotImplementedError

    def _map_action(self, action: np.ndarray) -> None:
        """Default: each action element moves its joint's position target by ``action * max_delta``."""
        for robot, idx, joints in self._action_groups:
            targets = robot.position_targets[joints] + action[idx] * self.max_joint_delta
            robot.command_positions(joints, targets)  # = command(Command("position", {joint: target}))

    max_joint_delta: ClassVar[float] = 0.05  # rad (or m) per control step at |action| = 1

    # ------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._clear_contact_caches()
        self.world.restore_state(self._snapshot)
        for label, robot in self.robots.items():
            if label not in self.robots_reset_by_task:
                robot.reset()
        self._randomize_dynamics()
        self._latency = int(self.np_random.integers(0, self.randomization.action_latency + 1))
        self._pending = []
        self.steps = 0
        self.reset_options = dict(options or {})  # task-specific choices, e.g. {"shape": "cube"}
        self._reset_task()
        self._step_reads = {}
        try:
            obs = self._observation()
        finally:
            self._step_reads = None
        info = {"is_success": False}
        return obs, info

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        act = np.asarray(action, dtype=np.float64).reshape(-1)
        if act.shape != self.action_space.shape:
            raise InvalidCommandError(f"action must have shape {self.action_space.shape}, got {np.shape(action)}")
        if not all_finite(act):
            bad = [self.action_labels[i] for i in np.flatnonzero(~np.isfinite(act))]
            raise InvalidCommandError(
                f"action has NaN or inf for {', '.join(bad)}; nothing was applied. Check the policy's output."
            )
        act = act.clip(-1.0, 1.0)
        if self._latency:
            self._pending.append(act)
            if len(self._pending) > self._latency:
                self._map_action(self._pending.pop(0))
        else:
            self._map_action(act)
        self.world.step()
        self.steps += 1
        self._step_reads = {}
        try:
            reward, terminated, info = self._evaluate()
            obs = self._observation()
        finally:
            self._step_reads = None
        return obs, float(reward), bool(terminated), False, info

    def step_read(self, key: str, read: Callable[[], T]) -> T:
        """``read()``, called once per step for each ``key`` while the step is scored and observed.

        :meth:`_evaluate` and :meth:`_observe_state` often need the same state (a link pose, the
        robot's joints) several times; PyBullet answers each query afresh, so repeated reads cost
        real time at 50 Hz. Between the physics step and the returned observation the state does not
        change, so the first answer is kept under ``key`` and shared. Outside that window (building,
        resetting the task) every call reads afresh. A task whose :meth:`_evaluate` moves a body it
        reads this way must call :meth:`forget_step_reads` after moving it.
        """
        reads = self._step_reads
        if reads is None:
            return read()
        if key not in reads:
            reads[key] = read()
        return reads[key]

    def forget_step_reads(self) -> None:
        """Drop what :meth:`step_read` kept (after moving a body inside :meth:`_evaluate`)."""
        if self._step_reads is not None:
            self._step_reads.clear()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        eye, target = self.render_camera()
        return render(self.world.client, CameraIntrinsics(320, 240, 60.0), look_at(eye, target), segmentation=False).rgb

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        """(eye, target) of the rgb_array render view; override per task."""
        return np.array([1.5, -1.5, 1.5]), np.array([0.0, 0.0, 0.5])

    def close(self) -> None:
        self.world.close()

    # ------------------------------------------------------------- helpers
    def _observation_space(self) -> spaces.Space:
        state = self._state_space()
        if self.obs_mode == "state":
            return state
        images: dict[str, spaces.Space] = {"rgb": spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)}
        if self.obs_mode == "rgbd":
            images["depth"] = spaces.Box(0.0, np.inf, (self.image_size, self.image_size, 1), np.float32)
        if isinstance(state, spaces.Dict):
            return spaces.Dict({**state.spaces, **images})
        return spaces.Dict({"state": state, **images})

    def _observation(self) -> Any:
        state = self._observe_state()
        if self.randomization.obs_noise > 0:
            state = self._noisy(state)
        if self.obs_mode == "state":
            return state
        images = self._images()
        if isinstance(state, dict):
            return {**state, **images}
        return {"state": state, **images}

    def _noisy(self, state: dict[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray] | np.ndarray:
        sigma = self.randomization.obs_noise
        if isinstance(state, dict):
            return {k: (v + self.np_random.normal(0, sigma, v.shape)).astype(np.float32) for k, v in state.items()}
        return (state + self.np_random.normal(0, sigma, state.shape)).astype(np.float32)

    def _images(self) -> dict[str, np.ndarray]:
        label = self.camera_robot or next(iter(self.robots))
        robot = self.robots[label]
        mount = robot.description.cameras.get(self.camera_name)
        if mount is None:
            eye, target = self.render_camera()
            pose = look_at(eye, target)
            intr = CameraIntrinsics(self.image_size, self.image_size, 60.0, 0.05, 5.0)
            frame = render(self.world.client, intr, pose, segmentation=False)
        else:
            frame = robot.camera(self.camera_name, size=(self.image_size, self.image_size))
        out = {"rgb": frame.rgb}
        if self.obs_mode == "rgbd":
            out["depth"] = frame.depth[:, :, None].astype(np.float32)
        return out

    def _clear_contact_caches(self) -> None:
        """Drop Bullet's cached contacts (warm-start impulses), which restoreState keeps.

        Moving every dynamic body far apart and running collision detection releases their
        contact manifolds, so each episode starts as if the world were new and replays exactly.
        """
        c = self.world.client
        for i, (body, _) in enumerate(self.world.bodies()):
            if c.getDynamicsInfo(body, -1)[0] > 0 or c.getNumJoints(body) > 0:
                c.resetBasePositionAndOrientation(body, [1000.0 + 50.0 * i, 1000.0, 1000.0], [0, 0, 0, 1])
        c.performCollisionDetection()

    def _read_dynamics(self) -> dict[tuple[int, int], tuple[float, float]]:
        c = self.world.client
        bodies = [r.body_id for r in self.robots.values()] + self.task_bodies
        return {(b, j): c.getDynamicsInfo(b, j)[:2] for b in bodies for j in range(-1, c.getNumJoints(b))}

    def _randomize_dynamics(self) -> None:
        dr = self.randomization
        if not dr.enabled:
            return
        c, rng = self.world.client, self.np_random
        for (body, link), (mass, friction) in self._nominal_dynamics.items():
            kwargs = {}
            if dr.mass_scale and mass > 0:
                kwargs["mass"] = mass * rng.uniform(1 - dr.mass_scale, 1 + dr.mass_scale)
            if dr.friction_scale:
                kwargs["lateralFriction"] = friction * rng.uniform(1 - dr.friction_scale, 1 + dr.friction_scale)
            if kwargs:
                c.changeDynamics(body, link, **kwargs)
        for robot in self.robots.values():
            scale = rng.uniform(1 - dr.gain_scale, 1 + dr.gain_scale) if dr.gain_scale else 1.0
            robot.kp, robot.kd = robot.description.kp * scale, robot.description.kd * scale

    @staticmethod
    def _box(low: float | list[float], high: float | list[float], n: int) -> spaces.Box:
        return spaces.Box(
            np.broadcast_to(np.float32(low), (n,)).copy(),
            np.broadcast_to(np.float32(high), (n,)).copy(),
            dtype=np.float32,
        )


def angle_between_quaternions(q1: np.ndarray, q2: np.ndarray) -> float:
    """Rotation angle (rad, 0..pi) between two (x, y, z, w) quaternions."""
    dot = abs(float(np.dot(q1 / np.linalg.norm(q1), q2 / np.linalg.norm(q2))))
    return 2.0 * math.acos(min(1.0, dot))
