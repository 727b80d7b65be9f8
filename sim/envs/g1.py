"""Unitree G1 humanoid (29 DoF): stand under random pushes, and follow a commanded planar velocity.

Both environments load the G1 with the simplified collision model by default (every
collision mesh replaced by a fitted box or capsule, see :func:`tianji.sim.urdf.fit_primitive`;
the feet keep their URDF contact spheres and the visual meshes stay) and step the physics
at 1/100 s, 2 steps per 50 Hz control step, with 40 solver iterations. At that setting the
home pose stands, and it survives nearly the same pushes as at 1/200 s with 50 iterations and
mesh collisions (one 0.1 s push with a = 0, 20 seeds: 120 N 18 vs 19 survive, 140 N 13 vs 14);
with 20 iterations only 6 in 10 survive 120 N. Timings: ``experiments/results/env_speed.md``.

Actions set joint position targets around the home pose, slew-limited to ``max_target_rate``
(5 rad/s): PyBullet's position motors are near dead-beat, and targets that jump by up to
1.3 rad every 20 ms (a random policy) drive light links to 100 rad/s, past their joint limits,
and launch the robot off the floor; the rate limit keeps the motion physical.
The environments command the motors with one PyBullet call per step and read only the state
they need, rather than through ``SimRobot.command``/``observe`` (about 30 and 60 us per call
against 5 and 20 us here, on a control step of about 800 us of physics), to keep the environment
layer close to the 10% over raw physics that issue 4 asks for (measured: 14-28% more time than
raw physics on a loaded machine). ``env.targets`` holds the commanded targets
(``robot.position_targets`` is not updated).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.sim.envs.base import TianjiEnv
from tianji.sim.registry import get_robot
from tianji.sim.sim_robot import SimRobot
from tianji.sim.urdf import COLLISION_MODELS


@dataclasses.dataclass
class BaseState:
    """The G1's pelvis and joint state after a step (float64; frames as named)."""

    position: np.ndarray  # (3,) pelvis frame origin, world (m)
    rotation: np.ndarray  # (3, 3) world-from-pelvis rotation
    lin_vel: np.ndarray  # (3,) pelvis centre-of-mass velocity, world (m/s)
    ang_vel: np.ndarray  # (3,) pelvis angular velocity, world (rad/s)
    q: np.ndarray  # (29,) joint positions (rad), spec order
    dq: np.ndarray  # (29,) joint velocities (rad/s)

    @property
    def gravity(self) -> np.ndarray:
        """Unit gravity direction in the pelvis frame ((0, 0, -1) when upright)."""
        return -self.rotation[2, :]

    @property
    def tilt(self) -> float:
        """Angle between the pelvis z axis and the world's z axis (rad)."""
        return math.acos(max(-1.0, min(1.0, float(self.rotation[2, 2]))))

    @property
    def yaw(self) -> float:
        """Heading of the pelvis x axis in the world (rad)."""
        return math.atan2(float(self.rotation[1, 0]), float(self.rotation[0, 0]))

    def heading_velocity(self) -> tuple[float, float]:
        """(vx, vy) of the pelvis in the heading frame (world rotated by the yaw), m/s."""
        yaw = self.yaw
        c, s = math.cos(yaw), math.sin(yaw)
        vx, vy = float(self.lin_vel[0]), float(self.lin_vel[1])
        return c * vx + s * vy, -s * vx + c * vy


class G1Env(TianjiEnv):
    """Shared G1 machinery: loading, action mapping, state observation, falls, pushes, reward terms."""

    physics_timestep: ClassVar[float] = 1.0 / 100.0
    control_rate: ClassVar[float] = 50.0
    solver_iterations: ClassVar[int] = 40
    episode_steps: ClassVar[int] = 1000  # 20 s at 50 Hz; the registered TimeLimit uses the same number
    fall_height: ClassVar[float] = 0.5  # m, pelvis frame origin (standing: 0.775)
    fall_tilt: ClassVar[float] = 0.8  # rad, pelvis z axis from vertical
    push_link: ClassVar[str] = "torso_link"
    weights: ClassVar[dict[str, float]] = {}
    robot_label: ClassVar[str] = "g1"
    robots_reset_by_task: ClassVar[tuple[str, ...]] = ("g1",)  # _reset_task puts it at its (jittered) start

    def __init__(
        self,
        *,
        action_scale: float = 0.25,
        max_target_rate: float = 5.0,
        collision: str = "simple",
        pushes: bool = True,
        push_force: tuple[float, float] = (60.0, 140.0),
        push_duration: float = 0.1,
        push_interval: tuple[float, float] = (2.0, 4.0),
        **kwargs: Any,
    ) -> None:
        if collision not in COLLISION_MODELS:
            raise ValueError(f"collision must be one of {COLLISION_MODELS}, got {collision!r}")
        if not 0.0 < action_scale <= 1.0:
            raise ValueError(
                f"action_scale must be in (0, 1] (a fraction of each joint's half range), got {action_scale}"
            )
        if max_target_rate <= 0.0:
            raise ValueError(f"max_target_rate must be positive rad/s, got {max_target_rate}")
        if not 0.0 <= push_force[0] <= push_force[1]:
            raise ValueError(f"push_force must be (min, max) newtons with 0 <= min <= max, got {push_force}")
        if not 0.0 < push_interval[0] <= push_interval[1]:
            raise ValueError(f"push_interval must be (min, max) seconds with 0 < min <= max, got {push_interval}")
        if push_duration <= 0.0:
            raise ValueError(f"push_duration must be positive seconds, got {push_duration}")
        self.action_scale = float(action_scale)
        self.max_target_step = float(max_target_rate) / self.control_rate  # rad per control step
        self.collision = collision
        self.pushes = bool(pushes)
        self.push_force = (float(push_force[0]), float(push_force[1]))
        self.push_interval = (float(push_interval[0]), float(push_interval[1]))
        self.push_steps = max(1, round(push_duration / self.physics_timestep))  # physics steps per push
        super().__init__(**kwargs)

    # ------------------------------------------------------------- building
    def _build(self) -> None:
        c = self.world.client
        desc = dataclasses.replace(get_robot("g1"), collision=self.collision)
        self.robot = SimRobot(self.world, desc)
        self.world.robots[self.robot_label] = self.robot
        self.robots = {self.robot_label: self.robot}
        spec = self.robot.spec
        self.body = self.robot.body_id
        infos = [c.getJointInfo(self.body, j) for j in range(c.getNumJoints(self.body))]
        names = {info[1].decode(): info[0] for info in infos}
        self._joint_ids = [names[n] for n in spec.joint_names]
        self._push_link = next(info[0] for info in infos if info[12].decode() == self.push_link)
        self.home = spec.home.copy()
        self._lower, self._upper = spec.position_lower.copy(), spec.position_upper.copy()
        self._scale = self.action_scale * (self._upper - self._lower) / 2.0
        self._efforts = spec.effort_limits.tolist()
        n = spec.dof
        self._zeros = [0.0] * n
        # bound once: a BulletClient attribute lookup builds a new partial every time
        self._set_motors = c.setJointMotorControlArray
        self._joint_states = c.getJointStates
        self._base_com_pose = c.getBasePositionAndOrientation
        self._base_velocity = c.getBaseVelocity
        inertial = c.getDynamicsInfo(self.body, -1)
        self._com_to_link = pb.invertTransform(inertial[3], inertial[4])  # pelvis frame from its inertial frame
        self.targets = self.home.copy()  # joint position targets (rad), spec order
        self.action = np.zeros(n)  # last applied action
        self.prev_action = np.zeros(n)
        self._physics_step = 0
        self._next_push = math.inf  # physics step of the next push
        self._push_left = 0
        self._push_vector = np.zeros(3)
        self._push_magnitude = 0.0
        self.push_count = 0
        self.fallen = False
        self.world.add_physics_hook(self._before_physics_step)

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [(self.robot_label, j) for j in self.robot.spec.joint_names]

    def _map_action(self, action: np.ndarray) -> None:
        """Targets move toward home + action * action_scale * half range by at most max_target_step."""
        desired = np.minimum(np.maximum(self.home + action * self._scale, self._lower), self._upper)
        step = self.max_target_step
        self.targets = self.targets + np.minimum(np.maximum(desired - self.targets, -step), step)
        self._command_targets()
        self.prev_action, self.action = self.action, action.copy()

    def _command_targets(self) -> None:
        """Send ``self.targets`` to the position motors: what SimRobot.command does, in one call."""
        n, kp, kd = len(self._zeros), self.robot.kp, self.robot.kd
        self._set_motors(
            self.body,
            self._joint_ids,
            pb.POSITION_CONTROL,
            targetPositions=self.targets.tolist(),
            targetVelocities=self._zeros,
            forces=self._efforts,
            positionGains=[kp] * n,
            velocityGains=[kd] * n,
        )

    def _common_space(self, extra: int = 0) -> spaces.Box:
        # unbounded: velocities have no natural bound, and observation noise may push the rest past theirs
        return self._box(-np.inf, np.inf, 10 + 3 * self.robot.spec.dof + extra)

    # -------------------------------------------------------------- episode
    def _reset_task(self) -> None:
        rng = self.np_random
        q = np.clip(self.home + rng.uniform(-0.03, 0.03, self.home.shape), self._lower, self._upper)
        self.robot.reset(q, base_yaw=float(rng.uniform(-math.pi, math.pi)))
        self.targets = q.copy()  # robot.reset holds q
        self.action = np.zeros_like(self.action)
        self.prev_action = np.zeros_like(self.action)
        self._physics_step = 0
        self._push_left = 0
        self._push_vector = np.zeros(3)
        self._push_magnitude = 0.0
        self.push_count = 0
        self.fallen = False
        self._next_push = self._sample_push_time() if self.pushes else math.inf

    def _sample_push_time(self) -> float:
        wait = float(self.np_random.uniform(*self.push_interval))
        return self._physics_step + max(1, round(wait / self.physics_timestep))

    def _before_physics_step(self) -> None:
        """Start and apply pushes (PyBullet clears external forces after every physics step)."""
        self._physics_step += 1
        if self._push_left == 0 and self._physics_step >= self._next_push:
            angle = float(self.np_random.uniform(-math.pi, math.pi))
            magnitude = float(self.np_random.uniform(*self.push_force))
            self._push_vector = magnitude * np.array([math.cos(angle), math.sin(angle), 0.0])
            self._push_magnitude = magnitude
            self._push_left = self.push_steps
            self.push_count += 1
            self._next_push = self._sample_push_time() + self.push_steps
        if self._push_left > 0:
            c = self.world.client
            point = c.getLinkState(self.body, self._push_link)[0]  # the link's centre of mass
            c.applyExternalForce(self.body, self._push_link, self._push_vector.tolist(), point, pb.WORLD_FRAME)
            self._push_left -= 1
            if self._push_left == 0:
                self._push_vector = np.zeros(3)
                self._push_magnitude = 0.0

    @property
    def push_vector(self) -> np.ndarray:
        """The push force being applied now (N, world frame; zeros between pushes)."""
        return self._push_vector.copy()

    def read_state(self) -> BaseState:
        """The pelvis and joint state, read from PyBullet now."""
        com_pos, com_quat = self._base_com_pose(self.body)
        pos, quat = pb.multiplyTransforms(com_pos, com_quat, *self._com_to_link)
        lin, ang = self._base_velocity(self.body)
        q, dq, _, _ = zip(*self._joint_states(self.body, self._joint_ids), strict=True)
        return BaseState(
            position=np.array(pos),
            rotation=np.array(pb.getMatrixFromQuaternion(quat)).reshape(3, 3),
            lin_vel=np.array(lin),
            ang_vel=np.array(ang),
            q=np.array(q),
            dq=np.array(dq),
        )

    def _common_observation(self, s: BaseState) -> list[np.ndarray]:
        rt = s.rotation.T
        return [s.position[2:], s.gravity, rt @ s.lin_vel, rt @ s.ang_vel, s.q - self.home, s.dq, self.action]

    def _state_now(self) -> BaseState:
        """The robot's state, read once per step (shared by :meth:`_evaluate` and the observation)."""
        return self.step_read("state", self.read_state)

    def is_fallen(self, s: BaseState) -> bool:
        """Pelvis below ``fall_height`` or tilted more than ``fall_tilt``."""
        return bool(s.position[2] < self.fall_height or s.tilt > self.fall_tilt)

    def _common_terms(self, s: BaseState, fallen: bool) -> dict[str, float]:
        """Weighted reward terms shared by the G1 tasks (those named in ``weights``)."""
        r, w = s.rotation, s.ang_vel
        wx = float(r[0, 0] * w[0] + r[1, 0] * w[1] + r[2, 0] * w[2])  # pelvis-frame angular velocity
        wy = float(r[0, 1] * w[0] + r[1, 1] * w[1] + r[2, 1] * w[2])
        change = self.action - self.prev_action
        raw = {
            "alive": 0.0 if fallen else 1.0,
            "orientation": float(r[2, 0] ** 2 + r[2, 1] ** 2),  # x, y of the pelvis-frame gravity, squared
            "lin_vel_z": float(s.lin_vel[2] ** 2),
            "ang_vel_xy": wx * wx + wy * wy,
            "action_rate": float(change @ change),
            "fall": 1.0 if fallen else 0.0,
        }
        return {k: self.weights[k] * v for k, v in raw.items() if k in self.weights}

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        base = self.world.base_pose(self.body)[0]
        target = np.array([base[0], base[1], 0.6])
        return target + np.array([1.8, -1.8, 0.7]), target


class G1BalanceEnv(G1Env):
    """The G1 stands and keeps its balance for 20 s under random pushes (``tianji/G1Balance-v0``).

    ===================  ==========================================================================
    Action               Box(-1, 1, (29,)): position targets of the 29 joints in URDF order
                         (left leg 6, right leg 6, waist 3, left arm 7, right arm 7). The target
                         moves toward home + a * action_scale * (upper - lower) / 2 (rad, within
                         the joint limits) by at most max_target_rate / 50 Hz = 0.1 rad per step;
                         ``env.targets`` holds it. a = 0 holds the home pose (knees slightly bent).
    Observation          Box (97,) float32: [0] pelvis height (m); [1:4] gravity direction in the
                         pelvis frame (unit vector, (0, 0, -1) upright); [4:7] pelvis linear velocity
                         (m/s) and [7:10] angular velocity (rad/s), both in the pelvis frame;
                         [10:39] joint positions minus home (rad); [39:68] joint velocities (rad/s);
                         [68:97] the last applied action. ``obs_mode="rgb"``/``"rgbd"`` adds
                         ``rgb``/``depth`` from the head camera (D435).
    Reward               sum of: alive +1.0 per step not fallen; orientation -1.0 * (gx^2 + gy^2)
                         (pelvis-frame gravity, i.e. sin^2 of the tilt); lin_vel_xy -0.5 *
                         (vx^2 + vy^2) (pelvis, world, m/s); ang_vel_xy -0.05 * (wx^2 + wy^2)
                         (pelvis frame, rad/s); action_rate -0.01 * |a_t - a_(t-1)|^2; fall -10 on
                         the step that falls. Each term is in ``info["reward_terms"]``.
    Pushes               a horizontal force of U(60, 140) N in a uniform random direction on the
                         torso_link's centre of mass for 0.1 s (applyExternalForce, world frame);
                         the first U(2, 4) s into the episode, each next one U(2, 4) s after the
                         previous one ends. 6-14 N s each: 0.2-0.4 m/s for the 33 kg robot. The
                         passive home pose (a = 0) survives one 100 N push (10 of 10 seeds) and one
                         140 N push in 13 of 20: the upper range needs active balance. Off with
                         ``pushes=False``.
    Starting state       home pose +- U(0.03) rad per joint, pelvis 0.785 m above the floor at the
                         origin, random heading U(-pi, pi), at rest.
    Termination          fall: pelvis frame origin below 0.5 m or pelvis tilted more than 0.8 rad.
                         Truncation after 1000 steps (20 s at 50 Hz).
    Success              ``info["is_success"]`` is True on the 1000th step (20 s) if the robot has
                         not fallen; False before.
    Info                 is_success, fallen, base_height (m), tilt (rad), push_force (N, the push
                         being applied, 0 between pushes), pushes (count so far), reward_terms.
    Arguments            pushes (True), push_force ((60, 140) N), push_duration (0.1 s),
                         push_interval ((2, 4) s), action_scale (0.25), max_target_rate (5 rad/s),
                         collision ("simple" | "mesh"), obs_mode ("state"|"rgb"|"rgbd"),
                         image_size (84), render_mode ("rgb_array"|"human"), randomization
                         (:class:`DomainRandomization` or dict).
    Physics              1/100 s steps, 2 per control step (50 Hz), 40 solver iterations.
    ===================  ==========================================================================
    """

    weights: ClassVar[dict[str, float]] = {
        "alive": 1.0,
        "orientation": -1.0,
        "lin_vel_xy": -0.5,
        "ang_vel_xy": -0.05,
        "action_rate": -0.01,
        "fall": -10.0,
    }

    def _state_space(self) -> spaces.Space:
        return self._common_space()

    def _observe_state(self) -> np.ndarray:
        return np.concatenate(self._common_observation(self._state_now())).astype(np.float32)

    def reward_terms(self, s: BaseState | None = None, fallen: bool | None = None) -> dict[str, float]:
        """Weighted reward terms for a state (default: the current one); the reward is their sum."""
        s = s if s is not None else self.read_state()
        fallen = self.is_fallen(s) if fallen is None else fallen
        terms = self._common_terms(s, fallen)
        terms["lin_vel_xy"] = self.weights["lin_vel_xy"] * float(s.lin_vel[0] ** 2 + s.lin_vel[1] ** 2)
        return terms

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        s = self._state_now()
        self.fallen = self.is_fallen(s)
        terms = self.reward_terms(s, self.fallen)
        info = {
            "is_success": bool(not self.fallen and self.steps >= self.episode_steps),
            "fallen": self.fallen,
            "base_height": float(s.position[2]),
            "tilt": s.tilt,
            "push_force": self._push_magnitude,
            "pushes": self.push_count,
            "reward_terms": terms,
        }
        return sum(terms.values()), self.fallen, info


class G1WalkEnv(G1Env):
    """The G1 follows a commanded planar velocity (``tianji/G1Walk-v0``).

    ===================  ==========================================================================
    Action               as :class:`G1BalanceEnv`: (29,) joint position targets around home.
    Observation          Box (100,) float32: the 97 elements of :class:`G1BalanceEnv`, then
                         [97:100] the command: vx, vy (m/s, heading frame: x forward along the
                         pelvis heading, y to its left) and yaw rate wz (rad/s).
    Command              vx ~ U(-0.5, 0.8) m/s, vy ~ U(-0.3, 0.3) m/s, wz ~ U(-0.8, 0.8) rad/s;
                         with probability 0.1 all zero (stand still). Sampled at reset and
                         resampled every 5 s (steps 250, 500, 750).
    Reward               sum of: track_lin +1.0 * exp(-|c_xy - v_xy|^2 / 0.25) (v_xy: pelvis
                         velocity in the heading frame, m/s); track_yaw +0.5 * exp(-(c_wz - wz)^2 /
                         0.25) (world yaw rate, rad/s); lin_vel_z -2.0 * vz^2; ang_vel_xy -0.05 *
                         (wx^2 + wy^2) (pelvis frame); orientation -1.0 * (gx^2 + gy^2); action_rate
                         -0.01 * |a_t - a_(t-1)|^2; fall -10 on the step that falls.
    Starting state       as :class:`G1BalanceEnv`.
    Termination          fall (as :class:`G1BalanceEnv`); truncation after 1000 steps (20 s).
    Success              ``info["is_success"]`` is True on the 1000th step if the robot has not
                         fallen and over the episode the mean linear error |c_xy - v_xy| <= 0.25 m/s
                         and the mean yaw-rate error |c_wz - wz| <= 0.35 rad/s; False before.
    Info                 is_success, fallen, base_height (m), tilt (rad), command (3,),
                         tracking_error_lin (m/s) and tracking_error_yaw (rad/s) (episode means so
                         far), reward_terms.
    Arguments            as :class:`G1BalanceEnv`, but ``pushes`` defaults to False.
    Physics              as :class:`G1BalanceEnv`.
    ===================  ==========================================================================
    """

    weights: ClassVar[dict[str, float]] = {
        "track_lin": 1.0,
        "track_yaw": 0.5,
        "lin_vel_z": -2.0,
        "ang_vel_xy": -0.05,
        "orientation": -1.0,
        "action_rate": -0.01,
        "fall": -10.0,
    }
    command_low: ClassVar[tuple[float, float, float]] = (-0.5, -0.3, -0.8)
    command_high: ClassVar[tuple[float, float, float]] = (0.8, 0.3, 0.8)
    stand_probability: ClassVar[float] = 0.1
    command_period: ClassVar[int] = 250  # control steps (5 s)
    tracking_sigma: ClassVar[float] = 0.25  # (m/s)^2 and (rad/s)^2 in the exp kernels
    max_lin_error: ClassVar[float] = 0.25  # m/s, mean over the episode, for success
    max_yaw_error: ClassVar[float] = 0.35  # rad/s

    def __init__(self, *, pushes: bool = False, **kwargs: Any) -> None:
        self.command = np.zeros(3)  # vx, vy (m/s, heading frame), wz (rad/s)
        self._error_sums = [0.0, 0.0]
        self._error_steps = 0
        super().__init__(pushes=pushes, **kwargs)

    def _state_space(self) -> spaces.Space:
        return self._common_space(extra=3)

    def _reset_task(self) -> None:
        super()._reset_task()
        self._error_sums = [0.0, 0.0]
        self._error_steps = 0
        self.command = self._sample_command()

    def _sample_command(self) -> np.ndarray:
        rng = self.np_random
        command = rng.uniform(self.command_low, self.command_high)
        if rng.uniform() < self.stand_probability:
            command = np.zeros(3)
        return command

    def _observe_state(self) -> np.ndarray:
        return np.concatenate([*self._common_observation(self._state_now()), self.command]).astype(np.float32)

    def tracking_errors(self, s: BaseState) -> tuple[float, float]:
        """(|c_xy - v_xy| m/s, |c_wz - wz| rad/s) for a state and the current command."""
        vx, vy = s.heading_velocity()
        lin = math.hypot(float(self.command[0]) - vx, float(self.command[1]) - vy)
        return lin, abs(float(self.command[2] - s.ang_vel[2]))

    def reward_terms(self, s: BaseState | None = None, fallen: bool | None = None) -> dict[str, float]:
        """Weighted reward terms for a state (default: the current one); the reward is their sum."""
        s = s if s is not None else self.read_state()
        return self._terms(s, self.is_fallen(s) if fallen is None else fallen, self.tracking_errors(s))

    def _terms(self, s: BaseState, fallen: bool, errors: tuple[float, float]) -> dict[str, float]:
        terms = self._common_terms(s, fallen)
        lin, yaw = errors
        terms["track_lin"] = self.weights["track_lin"] * math.exp(-(lin**2) / self.tracking_sigma)
        terms["track_yaw"] = self.weights["track_yaw"] * math.exp(-(yaw**2) / self.tracking_sigma)
        return terms

    def success(self, mean_errors: tuple[float, float], fallen: bool, steps: int) -> bool:
        """The success rule: full episode, not fallen, mean errors within the bounds."""
        lin, yaw = mean_errors
        return bool(
            steps >= self.episode_steps and not fallen and lin <= self.max_lin_error and yaw <= self.max_yaw_error
        )

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        s = self._state_now()
        self.fallen = self.is_fallen(s)
        errors = self.tracking_errors(s)
        terms = self._terms(s, self.fallen, errors)
        sums, n = self._error_sums, self._error_steps + 1
        sums[0] += errors[0]
        sums[1] += errors[1]
        self._error_steps = n
        means = (sums[0] / n, sums[1] / n)
        info = {
            "is_success": self.success(means, self.fallen, self.steps),
            "fallen": self.fallen,
            "base_height": float(s.position[2]),
            "tilt": s.tilt,
            "command": self.command.astype(np.float32),
            "tracking_error_lin": means[0],
            "tracking_error_yaw": means[1],
            "reward_terms": terms,
        }
        if self.steps % self.command_period == 0:  # the next step follows a new command
            self.command = self._sample_command()
        return sum(terms.values()), self.fallen, info
