"""A kinematic stand-in robot (``fake[:DOF]``): no physics, targets tracked at the velocity limits.

Cheap enough to serve at 1 kHz on a loaded machine, so the benchmark and the protocol tests
measure the bridge rather than the physics engine. It is also the smallest complete Driver.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from tianji.bridge.drivers import Driver
from tianji.control.robot import BaseType, Command, ControlMode, Observation, RobotSpec


class FakeDriver(Driver):
    """``FakeDriver("7", rate=500)``: a fixed-base arm of ``dof`` revolute joints named ``joint_1``..."""

    def __init__(self, dof: str | int = 7, rate: float | None = None) -> None:
        n = int(dof or 7)
        if not 1 <= n <= 256:
            raise ValueError(f"fake driver: dof must be in [1, 256], got {n}")
        self._spec = RobotSpec(
            name=f"fake{n}",
            joint_names=tuple(f"joint_{i + 1}" for i in range(n)),
            position_lower=np.full(n, -3.0),
            position_upper=np.full(n, 3.0),
            velocity_limits=np.full(n, 2.0),
            effort_limits=np.full(n, 50.0),
            home=np.zeros(n),
            control_modes=(ControlMode.POSITION, ControlMode.VELOCITY),
            control_rate=float(rate or 500.0),
            base=BaseType.FIXED,
            end_effectors=(),
        )
        self.q = np.zeros(n)
        self.dq = np.zeros(n)
        self.target = np.zeros(n)
        self.velocity = np.zeros(n)
        self.velocity_mode = np.zeros(n, dtype=bool)
        self.commands = 0  # commands that reached the "hardware"
        self.stops = 0
        self.connected = False

    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        n = self._spec.dof
        return Observation(
            timestamp=time.monotonic(),
            joint_positions=self.q.astype(np.float32),
            joint_velocities=self.dq.astype(np.float32),
            joint_efforts=np.zeros(n, dtype=np.float32),
            base_pose=np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32),
            base_twist=np.zeros(6, dtype=np.float32),
        )

    def command(self, cmd: Command) -> None:
        mode, idx, values = cmd.resolve(self._spec)
        self.commands += 1
        if mode is ControlMode.POSITION:
            self.target[idx] = np.clip(values, self._spec.position_lower[idx], self._spec.position_upper[idx])
            self.velocity_mode[idx] = False
        else:
            vmax = self._spec.velocity_limits[idx]
            self.velocity[idx] = np.clip(values, -vmax, vmax)
            self.velocity_mode[idx] = True

    def stop(self) -> None:
        self.stops += 1
        self.target = self.q.copy()
        self.velocity_mode[:] = False
        self.velocity[:] = 0.0

    def tick(self) -> None:
        """Move each joint toward its target (or at its velocity) for one control period."""
        dt = 1.0 / self._spec.control_rate
        vmax = self._spec.velocity_limits
        step = np.where(self.velocity_mode, self.velocity * dt, np.clip(self.target - self.q, -vmax * dt, vmax * dt))
        new = np.clip(self.q + step, self._spec.position_lower, self._spec.position_upper)
        self.dq = (new - self.q) / dt
        self.q = new
