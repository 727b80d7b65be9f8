"""Whole-body pose control for a humanoid (G1): the legs hold a standing pose while the upper body moves.

The upper body (waist, arms, hands) follows a queue of segments, each a minimum-jerk move
in joint space: a joint pose (a gesture keyframe) or a hand reach whose goal comes from IK
when the segment starts. Every tick sends one full position command, so the legs are
re-asserted at their stance every step whatever the upper body does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tianji.control.controllers.base import Controller
from tianji.control.kinematics import Kinematics
from tianji.control.robot import Command, ControlMode, Observation, RobotSpec
from tianji.control.trajectory import MinJerkTrajectory, min_jerk_duration

LEG_JOINTS = r".*_(hip|knee|ankle)_.*"

# Upper-body gestures for the Unitree G1 (joint names of g1 / g1_hands): (targets, seconds) keyframes.
G1_GESTURES: dict[str, list[tuple[dict[str, float], float]]] = {
    "wave": [
        ({"right_shoulder_pitch_joint": -0.4, "right_shoulder_roll_joint": -1.3, "right_elbow_joint": -0.6,
          "right_shoulder_yaw_joint": 0.0}, 1.2),
        ({"right_elbow_joint": -0.1}, 0.5),
        ({"right_elbow_joint": -0.9}, 0.5),
        ({"right_elbow_joint": -0.1}, 0.5),
        ({"right_elbow_joint": -0.9}, 0.5),
        ({"right_shoulder_pitch_joint": 0.3, "right_shoulder_roll_joint": -0.25, "right_elbow_joint": 0.97,
          "right_shoulder_yaw_joint": 0.0}, 1.2),
    ],
    "raise_both_hands": [
        ({"left_shoulder_pitch_joint": -2.6, "right_shoulder_pitch_joint": -2.6, "left_elbow_joint": 0.0,
          "right_elbow_joint": 0.0}, 2.5),
        ({"left_shoulder_pitch_joint": 0.3, "right_shoulder_pitch_joint": 0.3, "left_elbow_joint": 0.97,
          "right_elbow_joint": 0.97}, 2.5),
    ],
    "nod": [
        ({"waist_pitch_joint": 0.25}, 0.6),
        ({"waist_pitch_joint": 0.0}, 0.6),
    ],
}  # fmt: skip


@dataclass
class _Segment:
    kind: str  # "pose" or "reach"
    targets: dict[str, float] | None = None
    frame: str = ""
    target: np.ndarray | None = None
    root: str | None = None
    duration: float | None = None


class WholeBodyPoseController(Controller):
    """Legs hold ``stance``; the upper body plays pose and reach segments in order, then succeeds.

    >>> wb = WholeBodyPoseController(spec, kin).gesture("wave").reach("right_rubber_hand", [0.35, -0.2, 1.0])
    >>> ControlLoop(robot, wb, rate=50).run()

    ``stance`` maps leg joints to positions (default: the home pose of every joint matching
    ``leg_joints``). Reach targets are world positions (3,) or poses (7,); ``root`` picks the
    IK chain (default ``torso_link``: the arm only, the waist stays). Moves last ``duration``
    seconds or, by default, as long as ``velocity_scale`` x the joint velocity limits need.
    """

    def __init__(
        self,
        spec: RobotSpec,
        kinematics: Kinematics | None = None,
        *,
        stance: Mapping[str, float] | None = None,
        leg_joints: str = LEG_JOINTS,
        velocity_scale: float = 0.4,
        reach_tolerance: float = 0.005,
        timeout: float | None = None,
    ) -> None:
        super().__init__(timeout)
        self.spec, self.kin = spec, kinematics
        legs = np.array([bool(re.fullmatch(leg_joints, j)) for j in spec.joint_names])
        if stance is None:
            stance = {j: float(spec.home[i]) for i, j in enumerate(spec.joint_names) if legs[i]}
        self.stance = dict(stance)
        self.legs = np.array([j in self.stance for j in spec.joint_names])
        self.upper = np.flatnonzero(~self.legs)
        self.velocity_scale = velocity_scale
        self.reach_tolerance = reach_tolerance
        self.segments: list[_Segment] = []
        self.q_ref = spec.home.copy()
        self._index = 0
        self._trajectory: MinJerkTrajectory | None = None
        self._segment_start = 0.0
        self.reach_errors: list[float] = []  # IK position error (m) of each reach segment, as planned

    # ------------------------------------------------------------- building
    def pose(self, targets: Mapping[str, float], duration: float | None = None) -> WholeBodyPoseController:
        """Queue a move of some upper-body joints to ``targets``."""
        for j in targets:
            if self.legs[self.spec.index(j)]:
                raise ValueError(f"joint '{j}' holds the stance; change the stance instead of posing it")
        self.segments.append(_Segment("pose", targets=dict(targets), duration=duration))
        return self

    def gesture(self, keyframes: str | Sequence[tuple[Mapping[str, float], float]]) -> WholeBodyPoseController:
        """Queue a gesture: a name from :data:`G1_GESTURES` or a list of (targets, seconds) keyframes."""
        if isinstance(keyframes, str):
            if keyframes not in G1_GESTURES:
                raise ValueError(f"unknown gesture '{keyframes}'; known: {', '.join(G1_GESTURES)}")
            keyframes = G1_GESTURES[keyframes]
        for targets, duration in keyframes:
            self.pose(targets, duration)
        return self

    def reach(
        self,
        frame: str,
        target: Sequence[float] | np.ndarray,
        duration: float | None = None,
        root: str | None = "torso_link",
    ) -> WholeBodyPoseController:
        """Queue a reach of ``frame`` (a hand link) to a world position or pose, solved by IK when it starts."""
        if self.kin is None:
            raise ValueError("reach() needs kinematics: WholeBodyPoseController(spec, Kinematics.for_spec(urdf, spec))")
        target = np.asarray(target, dtype=float)
        self.kin.frame_id(frame)
        self.segments.append(_Segment("reach", frame=frame, target=target, root=root, duration=duration))
        return self

    # -------------------------------------------------------------- control
    def _reset(self, obs: Observation) -> None:
        if not self.segments:
            raise ValueError("WholeBodyPoseController has nothing to do: add pose(), gesture() or reach() segments")
        self.q_ref = obs.joint_positions.astype(float).copy()
        for j, v in self.stance.items():
            self.q_ref[self.spec.index(j)] = v
        self._index = 0
        self.reach_errors = []
        self._start_segment(obs)

    def _start_segment(self, obs: Observation) -> None:
        seg = self.segments[self._index]
        goal = self.q_ref.copy()
        if seg.kind == "pose":
            assert seg.targets is not None
            for j, v in seg.targets.items():
                goal[self.spec.index(j)] = v
        else:
            assert self.kin is not None and seg.target is not None
            joints = self.kin.chain(seg.frame, seg.root)
            result = self.kin.ik(
                seg.frame,
                seg.target,
                self.q_ref,
                joints,
                base_pose=obs.base_pose.astype(float),
                position_tolerance=self.reach_tolerance,
            )
            if not result.success:
                self.fail(f"reach of '{seg.frame}' to {np.round(seg.target, 3).tolist()}: {result.message}")
                return
            self.reach_errors.append(result.position_error)
            goal = result.q
        goal = np.clip(goal, self.spec.position_lower, self.spec.position_upper)
        start = self.q_ref[self.upper]
        duration = seg.duration
        if duration is None:
            vmax = self.spec.velocity_limits[self.upper] * self.velocity_scale
            duration = min_jerk_duration(goal[self.upper] - start, vmax, minimum=0.3)
        self._trajectory = MinJerkTrajectory(start, goal[self.upper], duration)
        self._segment_start = float(obs.timestamp)

    def _step(self, obs: Observation) -> Command:
        if self._trajectory is not None and not self.done:
            t = float(obs.timestamp) - self._segment_start
            self.q_ref[self.upper] = self._trajectory.sample(t)[0]
            if self._trajectory.done(t):
                self._index += 1
                if self._index == len(self.segments):
                    self.succeed(f"played {len(self.segments)} segments")
                else:
                    self._start_segment(obs)
        return Command(ControlMode.POSITION, self.q_ref.copy())

    def hold_command(self, obs: Observation) -> Command:
        return Command(ControlMode.POSITION, self.q_ref.copy())

    def progress(self) -> str:
        return f"segment {self._index + 1} of {len(self.segments)}"
