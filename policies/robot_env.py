"""A reaching environment on any :class:`~tianji.control.Robot`: evaluate a trained reach policy on a served robot.

The simulated ``TiagoReach-v0`` / ``AllegroReach-v0`` reset by teleporting the robot, which a
real robot (or a robot served over the bridge) cannot do. :class:`RobotReachEnv` poses the
same task through the ``Robot`` interface alone, so ``tianji eval RUN --robot tcp://HOST:PORT``
runs a policy trained in simulation against the bridge:

- **reset** drives the task's joints back to the robot's home pose along a minimum-jerk
  trajectory (real time, through the control loop), then samples a goal as the simulated task
  does: the end-effector positions of a random configuration within ``goal_joint_fraction`` of
  each joint's range around home (forward kinematics from the URDF), kept when the task's
  ``_goal_ok`` accepts it;
- **step** moves the joint position targets by ``action x max_joint_delta`` (``control="joint"``),
  or, with ``control="cartesian"``, moves the points by ``action x max_point_delta`` through the
  task's damped least squares on the Jacobian (pinocchio, from the URDF, at the measured pose);
  sends the targets as one position command, waits for the next control period of the task
  (50 Hz, wall clock) and observes;
- observation, reward and success are the simulated task's, from the same class
  (:class:`~tianji.sim.envs.reach.GoalReachEnv`'s ``compute_reward`` and tolerance).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from tianji.control.controllers import JointTrajectoryController
from tianji.control.errors import TianjiError
from tianji.control.kinematics import Kinematics
from tianji.control.loop import ControlLoop
from tianji.control.robot import Command, ControlMode, Robot
from tianji.sim.envs.reach import (
    AllegroReachEnv,
    GoalReachEnv,
    TiagoReachEnv,
    cartesian_targets,
    goal_reward,
    point_distances,
)
from tianji.sim.registry import get_robot

TASKS: dict[str, type[GoalReachEnv]] = {
    "tianji/TiagoReach-v0": TiagoReachEnv,
    "tianji/AllegroReach-v0": AllegroReachEnv,
}


class RobotReachEnv(gym.Env):
    """The reaching task ``task_id`` (a key of :data:`TASKS`) on ``robot``, in real time (module doc)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        task_id: str,
        robot: Robot,
        *,
        reward_type: str = "dense",
        control: str = "joint",
        episode_steps: int = 100,
    ) -> None:
        if task_id not in TASKS:
            raise ValueError(
                f"{task_id} cannot run on a served robot; tasks that can: {', '.join(TASKS)}"
                " (the others need the simulator to reset)"
            )
        task = TASKS[task_id]
        if robot.spec.name != task.robot_name:
            raise ValueError(f"{task_id} needs a '{task.robot_name}' robot; the robot given is '{robot.spec.name}'")
        if reward_type not in ("dense", "sparse"):
            raise ValueError(f"reward_type must be 'dense' or 'sparse', got {reward_type!r}")
        if control not in ("joint", "cartesian"):
            raise ValueError(f"control must be 'joint' or 'cartesian', got {control!r}")
        self.task, self.robot, self.reward_type, self.control = task, robot, reward_type, control
        self.episode_steps = episode_steps
        self.tolerance = task.tolerance
        self.points = task.points
        self.period = 1.0 / task.control_rate
        spec = robot.spec
        self.joints = list(task.joints)
        self._idx = np.array([spec.index(j) for j in self.joints])
        desc = get_robot(spec.name)
        self.kinematics = Kinematics.for_spec(desc.urdf_path(), spec)
        self._frames = [desc.end_effectors[p] for p in self.points]
        lo, hi = spec.position_lower[self._idx], spec.position_upper[self._idx]
        self._lower, self._upper = np.where(np.isfinite(lo), lo, -np.pi), np.where(np.isfinite(hi), hi, np.pi)
        self.home = spec.home.copy()
        n, g = len(self.joints), 3 * len(self.points)
        box = gym.spaces.Box(-np.inf, np.inf, (g,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                "observation": gym.spaces.Box(-np.inf, np.inf, (3 * n + g,), np.float32),
                "achieved_goal": box,
                "desired_goal": box,
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (g if control == "cartesian" else n,), np.float32)
        self.goal = np.zeros(g, dtype=np.float32)
        self.targets = self.home[self._idx].copy()
        self.steps = 0
        self._next_tick = 0.0

    # --------------------------------------------------------------- helpers
    def _points(self, q: np.ndarray) -> np.ndarray:
        """End-effector positions (world frame of the robot's base) of full configuration ``q``."""
        base = np.asarray(self.robot.observe().base_pose, dtype=float)
        return np.concatenate([self.kinematics.fk_pose(q, f, base)[:3] for f in self._frames]).astype(np.float32)

    def _observe(self) -> dict[str, np.ndarray]:
        obs = self.robot.observe()
        achieved = np.concatenate([np.asarray(obs.ee_poses[p][:3]) for p in self.points]).astype(np.float32)
        q, dq = obs.joint_positions[self._idx], obs.joint_velocities[self._idx]
        state = np.concatenate([q, dq, self.targets, achieved]).astype(np.float32)
        return {"observation": state, "achieved_goal": achieved, "desired_goal": self.goal.copy()}

    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray:
        """The simulated task's reward (dense: minus the summed distances; sparse: -1 until within tolerance)."""
        return goal_reward(achieved_goal, desired_goal, self.tolerance, self.reward_type)

    # ----------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        home = {j: float(self.home[i]) for j, i in zip(self.joints, self._idx, strict=True)}
        controller = JointTrajectoryController(self.robot.spec, home, velocity_scale=0.5)
        loop = ControlLoop(self.robot, controller, rate=1.0 / self.period, realtime=True, miss_burst=25, miss_window=50)
        stats = loop.run(max_ticks=1000)
        if not controller.succeeded:
            raise TianjiError(
                f"could not bring the robot back to its home pose ({stats.stopped_reason}: {stats.summary()})"
            )
        start = self.robot.observe().joint_positions.astype(float)
        span = self.task.goal_joint_fraction * (self._upper - self._lower)
        for _ in range(100):
            q = start.copy()
            offset = self.np_random.uniform(-span / 2, span / 2)
            q[self._idx] = np.clip(start[self._idx] + offset, self._lower, self._upper)
            goal = self._points(q)
            if self.task._goal_ok(self, goal.reshape(-1, 3)):  # type: ignore[arg-type]  # the task's rule
                break
        self.goal = goal
        self.targets = start[self._idx].copy()
        self.steps = 0
        self._next_tick = time.monotonic()
        return self._observe(), {"is_success": False}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        act = np.asarray(action, dtype=float).reshape(-1)
        if act.shape != self.action_space.shape or not np.all(np.isfinite(act)):
            raise ValueError(f"action must be {self.action_space.shape} finite values, got {action!r}")
        act = np.clip(act, -1, 1)
        if self.control == "cartesian":
            obs = self.robot.observe()
            q, base = obs.joint_positions.astype(float), np.asarray(obs.base_pose, dtype=float)
            jac = np.vstack([self.kinematics.jacobian(q, f, self.joints, base)[:3] for f in self._frames])
            task = self.task
            targets = cartesian_targets(
                jac, act * task.max_point_delta, self.targets, q[self._idx], task.jacobian_damping, task.max_joint_delta
            )
        else:
            targets = self.targets + act * self.task.max_joint_delta
        self.targets = np.clip(targets, self._lower, self._upper)
        self.robot.command(Command(ControlMode.POSITION, dict(zip(self.joints, self.targets.tolist(), strict=True))))
        self._next_tick += self.period
        delay = self._next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:  # fell behind: do not try to catch up with a burst of commands
            self._next_tick = time.monotonic()
        self.steps += 1
        obs = self._observe()
        distance = float(point_distances(obs["achieved_goal"], self.goal).max())
        info = {"is_success": distance <= self.tolerance, "distance": distance}
        reward = float(self.compute_reward(obs["achieved_goal"], self.goal, info))
        return obs, reward, False, self.steps >= self.episode_steps, info
