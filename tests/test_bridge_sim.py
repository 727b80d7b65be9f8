"""The bridge against the simulated TIAGo (``sim:tiago``), server and clients in separate processes.

The server (``tianji bridge serve``) steps the World in real time at 100 Hz; clients talk to it
over 127.0.0.1. Every wait is bounded; the process fixtures kill what they started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from tianji.bridge.client import RemoteRobot
from tianji.bridge.protocol import BridgeConnectionError
from tianji.bridge.session import free_port_pair
from tianji.control import (
    Command,
    ControlLoop,
    JointTrajectoryController,
    SafeRobot,
    SafetyLimits,
)

RATE = 100.0
WATCHDOG = 0.1
GOAL = {"arm_1_joint": 1.0, "arm_2_joint": -0.6, "arm_4_joint": 1.2, "torso_lift_joint": 0.2}


@pytest.fixture
def sim_server() -> Iterator[str]:
    """``tianji bridge serve --robot sim:tiago`` in a subprocess; yields its endpoint."""
    port = free_port_pair()
    endpoint = f"tcp://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-c",
        "from tianji.cli_bridge import bridge_app; bridge_app()",
        "serve",
        "--robot",
        "sim:tiago",
        "--rate",
        str(RATE),
        "--bind",
        endpoint,
        "--watchdog",
        str(WATCHDOG),
        "--duration",
        "120",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60.0
        while True:  # bounded: wait until it answers a hello
            if proc.poll() is not None:
                raise RuntimeError(f"bridge server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                RemoteRobot(endpoint, role="observer", timeout=0.5).close()
                break
            except BridgeConnectionError:
                if time.monotonic() > deadline:
                    raise
        yield endpoint
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run_trajectory(robot, stepper: Callable[[], None] | None) -> np.ndarray:
    """Move to GOAL with a minimum-jerk trajectory, then hold 0.5 s; the final joint positions."""
    controller = JointTrajectoryController(robot.spec, GOAL)
    realtime = stepper is None
    loop = ControlLoop(robot, controller, rate=RATE, realtime=realtime, stepper=stepper, miss_burst=50, miss_window=50)
    stats = loop.run(max_ticks=int(15 * RATE))
    assert stats.stopped_reason == "done" and controller.succeeded, (stats.summary(), controller.progress())
    hold = ControlLoop(
        robot, lambda obs: Command(), rate=RATE, realtime=realtime, stepper=stepper, miss_burst=50, miss_window=50
    )
    hold.run(max_ticks=int(0.5 * RATE))
    return robot.observe().joint_positions.astype(float)


def test_trajectory_through_bridge_matches_in_process(sim_server: str) -> None:
    from tianji.bridge.drivers.sim import world_config_for
    from tianji.sim import World

    timestep, decimation = world_config_for(RATE)
    with World(timestep=timestep, control_decimation=decimation) as world:
        local = SafeRobot(world.add_robot("tiago"), SafetyLimits(dt=1 / RATE))
        expected = run_trajectory(local, world.step)
        names = local.spec.joint_names
    with RemoteRobot(sim_server, name="trajectory") as remote:
        assert remote.spec.joint_names == names
        got = run_trajectory(remote, None)
        assert remote.latency()["n"] > 100
    idx = [names.index(j) for j in GOAL]
    np.testing.assert_allclose(got[idx], expected[idx], atol=0.02)
    np.testing.assert_allclose(got[idx], list(GOAL.values()), atol=0.05)


def test_killing_the_client_mid_motion_stops_the_robot(sim_server: str) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from tianji.bridge.client import RemoteRobot
        from tianji.control import Command
        robot = RemoteRobot({sim_server!r}, name="doomed")
        start = time.monotonic()
        print("moving", flush=True)
        while time.monotonic() - start < 30:  # bounded; killed long before
            robot.command(Command(targets={{"arm_1_joint": 0.2 + 0.4 * (time.monotonic() - start)}}))
            time.sleep(0.01)
        """
    )
    client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        with RemoteRobot(sim_server, role="observer") as watcher:
            assert client.stdout is not None and client.stdout.readline().strip() == "moving"
            i = watcher.spec.joint_names.index("arm_1_joint")
            q0 = watcher.observe().joint_positions[i]
            time.sleep(1.0)
            assert watcher.observe().joint_positions[i] > q0 + 0.1  # it is moving
            t_kill = time.monotonic()
            os.kill(client.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            stop = None
            while stop is None and time.monotonic() < deadline:
                stop = next((e for e in watcher.events if e.get("event") == "watchdog_stop"), None)
                time.sleep(0.01)
            assert stop is not None, "the watchdog never stopped the robot"
            # CLOCK_MONOTONIC is shared by processes on one machine: compare directly.
            # Bound: watchdog + one period, plus slack for a loaded machine's scheduling.
            assert stop["t_server"] - t_kill <= WATCHDOG + 1 / RATE + 0.15
            assert stop["silent"] <= WATCHDOG + 1 / RATE + 0.15
            time.sleep(0.3)
            q1 = watcher.observe().joint_positions[i]
            time.sleep(0.5)
            assert abs(watcher.observe().joint_positions[i] - q1) < 0.01  # held still
    finally:
        client.kill()
        client.wait(timeout=10)


def test_sim_driver_serves_a_workspace_box() -> None:
    from tianji.bridge.drivers.sim import SimDriver
    from tianji.bridge.server import BridgeServer, ServerConfig

    driver = SimDriver("tiago", rate=RATE)
    limits = SafetyLimits(workspace=((-2, -2, 0.2), (2, 2, 2)), workspace_frames=("arm_7_link",))
    with BridgeServer(driver, ServerConfig(bind="tcp://127.0.0.1:0", safety=limits)) as server:
        assert server.safe.kinematics is not None
        assert server.safe.spec.dof == driver.spec.dof
