"""Fall response: the patient falls somewhere in the room; TIAGo drives to a safe assistance pose."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import pybullet as pb
from gymnasium import spaces

from tianji.control.robot import Command
from tianji.sim import patient as patient_body
from tianji.sim.envs.care import PATIENT_PIN_FORCE, CareEnv, yaw_of

MAX_SPEED = 0.6  # m/s forward at |a| = 1
MAX_TURN = 1.0  # rad/s at |a| = 1
HEAD_JOINTS = ("head_1_joint", "head_2_joint")
AREA = ((-1.9, 1.9), (-1.6, 0.5))  # m, x and y range of the open floor south of the bed and the table
BODY_HALF_LENGTH = 0.95  # m, pelvis to head / feet bound of the lying patient, for placing the fall


class CareFallResponseEnv(CareEnv):
    """The patient falls; TIAGo drives to a safe assistance pose beside them (``tianji/CareFallResponse-v0``).

    The patient stands on the open floor of the care room (held upright by a balance constraint on
    the pelvis) and, at a random time, falls: the model is put lying on its back on the floor next
    to where it stood, head in the direction of the fall (a scripted fall, not a simulated collapse,
    so every seed gives a clean, reproducible fallen pose). TIAGo starts elsewhere on the open
    floor with its arm tucked; it controls its base and head.

    ===================  ==========================================================================
    Action               Box(-1, 1, (4,)): [0] forward speed (x 0.6 m/s), [1] turn rate (x 1 rad/s),
                         [2] head pan and [3] head tilt target changes (x 0.02 rad per step; targets
                         clamped to the joint limits). In ``actuated`` the two base elements are
                         labelled by the wheel joints (the base follows the twist; the wheels roll).
    Observation          Box(15,) float32: [0:2] base x, y (m, room frame); [2:4] cos, sin of the
                         heading; [4] forward speed (m/s); [5] turn rate (rad/s); [6:8] head pan,
                         tilt (rad); [8] fallen (0/1); [9:12] patient's chest in TIAGo's base frame
                         (m; standing or fallen); [12] seconds since the fall (0 before);
                         [13] seconds left before the deadline (the whole allowance before the
                         fall); [14] contact force between TIAGo and the patient (N).
                         With ``obs_mode="rgb"``/``"rgbd"``: a Dict with this as ``state`` plus
                         ``rgb`` (84x84x3 uint8) and ``depth`` (84x84x1 float32, m) from the head
                         camera.
    Reward               after the fall: -1.0 x chest distance (m) - 0.2 x heading error (rad);
                         +10 on success; always -0.01 per newton of patient force above
                         ``force_limit``.
    Starting state       patient standing at a uniform point of the open floor x in [-1.9, 1.9],
                         y in [-1.6, 0.5] m, any heading; TIAGo at a uniform point of the same area
                         at least 1.2 m from the patient, any heading, arm tucked. The fall comes
                         after a uniform 25..100 control steps (0.5-2 s); the fallen pelvis lies
                         0.3 m from the standing spot, body along the fall direction, shoulders and
                         hips +-0.3 rad off straight, the whole body on the open floor.
    Success              after the fall, TIAGo's base centre within 0.8 m (horizontal) of the
                         patient's chest, its heading within 0.35 rad (20 deg) of the direction to
                         the chest, and touching the patient with at most ``force_limit``.
    Termination          success, or the deadline (10 s after the fall) passing; truncation after
                         600 steps (12 s).
    Info                 is_success, fallen, distance (m), heading_error (rad), time_left (s),
                         patient_force (N, this step's largest), max_patient_force (N, episode).
    Arguments            force_limit (10 N), obs_mode ("state"|"rgb"|"rgbd"), image_size (84),
                         render_mode ("rgb_array"|"human"), randomization (:class:`DomainRandomization`).
    ===================  ==========================================================================
    """

    scene_objects = ("bed", "dining_table")
    scene_overrides: ClassVar[dict[str, dict[str, Any]]] = {
        "patient": {"preset": "standing", "position": [0.0, -0.8]},
        "tiago": {"position": [1.0, -1.0], "yaw": 0.0},
    }
    settle_steps = 0  # the standing pose is exact; the pin holds it from the start
    fall_window: ClassVar[tuple[int, int]] = (25, 100)  # control steps
    deadline_steps: ClassVar[int] = 500  # control steps after the fall
    success_distance: ClassVar[float] = 0.8
    success_heading: ClassVar[float] = 0.35
    min_start_distance: ClassVar[float] = 1.2
    limb_jitter: ClassVar[float] = 0.3
    distance_weight: ClassVar[float] = 1.0
    heading_weight: ClassVar[float] = 0.2
    success_bonus: ClassVar[float] = 10.0

    def _after_settle(self) -> None:
        self._head_idx = np.array([self.tiago.spec.index(j) for j in HEAD_JOINTS])

    def _actuated_joints(self) -> list[tuple[str, str]]:
        return [("tiago", "wheel_right_joint"), ("tiago", "wheel_left_joint")] + [("tiago", j) for j in HEAD_JOINTS]

    def _map_action(self, action: np.ndarray) -> None:
        head = self.tiago.position_targets[self._head_idx] + action[2:4] * self.max_joint_delta
        twist = (float(action[0]) * MAX_SPEED, 0.0, float(action[1]) * MAX_TURN)
        self.tiago.command(Command("position", dict(zip(HEAD_JOINTS, head.tolist(), strict=True)), base_twist=twist))

    def _state_space(self) -> spaces.Space:
        return self.unbounded(15)

    # -------------------------------------------------------------- episode
    def _reset_task(self) -> None:
        rng = self.np_random
        (x0, x1), (y0, y1) = AREA
        stand = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        quat = pb.multiplyTransforms(
            (0, 0, 0),
            pb.getQuaternionFromEuler((0, 0, rng.uniform(-math.pi, math.pi))),
            (0, 0, 0),
            pb.getQuaternionFromEuler(self.patient.description.preset("standing").spawn_rpy),
        )[1]
        spawn = self.patient.description.preset("standing").spawn_height
        self.place_patient(np.array([*stand, spawn]), np.array(quat), self.patient.start_positions.copy())
        for _ in range(100):  # a fall that keeps the whole body on the open floor
            direction = rng.uniform(-math.pi, math.pi)
            axis = np.array([math.cos(direction), math.sin(direction)])
            pelvis = stand + 0.3 * axis
            ends = [pelvis + BODY_HALF_LENGTH * axis, pelvis - BODY_HALF_LENGTH * axis]
            if all(x0 - 0.4 <= e[0] <= x1 + 0.4 and y0 - 0.2 <= e[1] <= y1 + 0.3 for e in ends):
                break
        self._fall = (pelvis, direction, rng.uniform(-self.limb_jitter, self.limb_jitter, 4))
        for _ in range(100):
            start = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            far_enough = min(np.linalg.norm(start - stand), np.linalg.norm(start - pelvis)) >= self.min_start_distance
            if far_enough and np.linalg.norm(start - pelvis - 0.9 * axis) >= 0.6:
                break
        self._reset_care((start[0], start[1], rng.uniform(-math.pi, math.pi)))
        self.fall_step = int(rng.integers(self.fall_window[0], self.fall_window[1] + 1))
        self.fallen = False

    def _do_fall(self) -> None:
        """Put the patient lying on its back on the floor, head towards the fall direction."""
        pelvis, direction, limbs = self._fall
        patient_body.fall(self.world, self.patient, direction, self._pin, limbs, pelvis, PATIENT_PIN_FORCE)
        self.fallen = True
        self.forget_step_reads()  # the patient moved

    def chest(self) -> np.ndarray:
        """World position of the patient's chest (``middle_thorax``)."""
        return self.step_read("chest", lambda: self.patient.link_pose("middle_thorax")[:3].astype(float))

    def _approach(self) -> tuple[float, float]:
        """(horizontal distance base -> chest in m, heading error in rad)."""
        pos, quat = self.base_frame()
        d = self.chest()[:2] - pos[:2]
        error = math.atan2(d[1], d[0]) - yaw_of(quat)
        return float(np.linalg.norm(d)), abs((error + math.pi) % (2 * math.pi) - math.pi)

    def _observe_state(self) -> np.ndarray:
        pos, quat = self.base_frame()
        yaw = yaw_of(quat)
        obs = self.tiago_state()
        forward = float(obs.base_twist[0] * math.cos(yaw) + obs.base_twist[1] * math.sin(yaw))
        dt = self.world.control_dt
        since = (self.steps - self.fall_step) * dt if self.fallen else 0.0
        left = (self.fall_step + self.deadline_steps - self.steps) * dt if self.fallen else self.deadline_steps * dt
        state = np.concatenate(
            [
                pos[:2],
                [math.cos(yaw), math.sin(yaw), forward, float(obs.base_twist[5])],
                obs.joint_positions[self._head_idx],
                [float(self.fallen)],
                self.to_base(self.chest()),
                [since, left, self.patient_force],
            ]
        )
        return state.astype(np.float32)

    def _evaluate(self) -> tuple[float, bool, dict[str, Any]]:
        if not self.fallen and self.steps >= self.fall_step:
            self._do_fall()
        reward = self._force_penalty()
        distance, heading = self._approach()
        success = (
            self.fallen
            and distance <= self.success_distance
            and heading <= self.success_heading
            and self.patient_force <= self.force_limit
        )
        left = (self.fall_step + self.deadline_steps - self.steps) * self.world.control_dt
        if self.fallen:
            reward += -self.distance_weight * distance - self.heading_weight * heading
            reward += self.success_bonus if success else 0.0
        info = {
            "is_success": bool(success),
            "fallen": self.fallen,
            "distance": distance,
            "heading_error": heading,
            "time_left": left,
            **self._force_info(),
        }
        return float(reward), bool(success or (self.fallen and left < 0)), info

    def render_camera(self) -> tuple[np.ndarray, np.ndarray]:
        middle = 0.5 * (self.base_frame()[0] + self.chest())
        eye = np.array([2.3 if middle[0] < 0 else -2.3, -1.85, 2.4])  # the far south corner, inside the room
        return eye, np.array([middle[0], middle[1], 0.2])
