"""Replays a recording as a robot (``replay:FILE[?loop=1]``): ``tianji bridge replay FILE`` serves it.

The states come from the recording's ``state`` messages (sent by a server, ``tx/state``, or
received by a client, ``rx/state``), one per control period, and the robot spec from its
``meta/spec`` or ``welcome`` message. Commands pass the server's checks and safety filter as
usual and are then discarded: the states follow the recording, whatever a controller sends.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from tianji.bridge.drivers import Driver
from tianji.bridge.protocol import observation_from_wire, spec_from_wire
from tianji.bridge.recording import read_recording
from tianji.control.errors import AssetError
from tianji.control.robot import Command, Observation, RobotSpec


class ReplayDriver(Driver):
    """``ReplayDriver("run.mcap", rate=None, loop="0")``: recorded states, one per tick; rate from the recording."""

    def __init__(self, path: str | Path, rate: float | None = None, loop: str | bool = False) -> None:
        if not path:
            raise ValueError("the replay driver needs a recording: replay:FILE.mcap")
        self.path = Path(path)
        self.loop = str(loop).lower() in ("1", "true", "yes") if not isinstance(loop, bool) else loop
        self._rate = rate
        self.states: list[Observation] = []
        self.index = 0
        self.finished = False
        self._spec: RobotSpec | None = None

    def connect(self) -> None:
        """Read the whole recording (states and spec) into memory."""
        spec = None
        states: dict[str, list[Observation]] = {"tx": [], "rx": []}
        for rec in read_recording(self.path):
            if rec.kind not in ("state", "spec", "welcome"):
                continue
            msg = rec.decode()
            if msg is None:
                continue
            if rec.kind == "state":
                states.setdefault(rec.direction, []).append(observation_from_wire(msg))
            elif spec is None and isinstance(msg.get("robot"), dict):
                spec = spec_from_wire(msg["robot"])
        self.states = states["tx"] or states["rx"]
        if spec is None or not self.states:
            raise AssetError(
                f"{self.path} has no robot spec or no states to replay; record with `tianji bridge serve --record`"
                " or RemoteRobot(..., record=FILE)"
            )
        self._spec = dataclasses.replace(spec, control_rate=float(self._rate)) if self._rate else spec
        self.index = 0

    def disconnect(self) -> None:
        self.states = []

    @property
    def spec(self) -> RobotSpec:
        if self._spec is None:
            raise RuntimeError("ReplayDriver is not connected: call connect() first")
        return self._spec

    def observe(self, cameras: Sequence[str] = ()) -> Observation:
        if cameras:
            raise AssetError("a replayed recording has no camera images")
        return self.states[self.index]

    def command(self, cmd: Command) -> None:
        """Checked by the server, then discarded: the recording decides the states."""

    def stop(self) -> None:
        """Nothing to stop: the recording plays on."""

    def tick(self) -> None:
        """Advance to the next recorded state (hold the last one, or start over with ``loop``)."""
        if self.index + 1 < len(self.states):
            self.index += 1
        elif self.loop:
            self.index = 0
        else:
            self.finished = True
