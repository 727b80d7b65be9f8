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
from contextlib import contextmanager

import numpy as np
import pytest

from tianji.bridge.client import RemoteRobot
from tianji.bridge.spawn import served_in_subprocess
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


@contextmanager
def served(
    driver: str, rate: float = RATE, watchdog: float = WATCHDOG, controller_timeout: float = 1.0
) -> Iterator[str]:
    """``tianji bridge serve --robot DRIVER`` in a subprocess (stopping itself after 240 s); yields its endpoint.

    The CLI tests give the controller 5 s before its session is dropped (the watchdog still stops the robot
    after 100 ms of silence): on a loaded 2-core machine a client process can stall for a second."""
    options = ["--rate", str(rate), "--watchdog", str(watchdog), "--duration", "240"]
    with served_in_subprocess(driver, *options, "--controller-timeout", str(controller_timeout)) as endpoint:
        yield endpoint


@pytest.fixture
def sim_server() -> Iterator[str]:
    """``tianji bridge serve --robot sim:tiago`` (TIAGo alone on a floor) at 100 Hz."""
    with served("sim:tiago") as endpoint:
        yield endpoint


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


CARE_DRIVER = "sim:tiago?scene=care_room&robots=tiago,patient&physics=120"


def tianji_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """The ``tianji`` command in a fresh process (as a user runs it), output captured."""
    cmd = [sys.executable, "-c", "from tianji.cli import main; main()", *args]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_skill_cli_through_the_bridge_matches_in_process() -> None:
    """``tianji skill look_at --robot tcp://...`` against the served care room, with perception on the head
    camera (frames over the bridge), succeeds like the in-process run on the simulator's ground truth."""
    local = tianji_cli("skill", "look_at", "--arg", "target=cup")
    assert local.returncode == 0, local.stdout + local.stderr
    with served(CARE_DRIVER, rate=60.0, controller_timeout=5.0) as endpoint:
        remote = tianji_cli("skill", "look_at", "--arg", "target=cup", "--robot", endpoint)
    assert remote.returncode == 0, remote.stdout + remote.stderr
    for run in (local, remote):
        assert "succeeded" in run.stdout and "looking at 'cup'" in run.stdout
        error = float(run.stdout.split("angle_error:")[1].split()[0])
        assert error < 0.03  # rad off the camera axis
    assert endpoint in remote.stdout


def test_skill_cli_rejects_a_bad_robot_option_and_sim_only_options_over_the_bridge() -> None:
    bad = tianji_cli("skill", "look_at", "--arg", "target=cup", "--robot", "udp://1.2.3.4:5")
    assert bad.returncode == 2
    assert "--robot must be 'sim'" in bad.stderr and "tcp://HOST:PORT" in bad.stderr
    mixed = tianji_cli("skill", "pick", "--arg", "object=cup", "--robot", "tcp://127.0.0.1:9", "--at", "dining_table")
    assert mixed.returncode == 2
    assert "--at" in mixed.stderr and "served robot starts where it is" in mixed.stderr


def test_eval_of_a_trained_reach_policy_through_the_bridge(tmp_path) -> None:
    """``tianji eval RUN --robot tcp://...`` runs the trained TiagoReach policy on the served TIAGo in real time."""
    import json

    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "env": "tianji/TiagoReach-v0",
                "algo": "sac",
                "timesteps": 200,
                "env_kwargs": {"reward_type": "sparse"},
                "her": {"n_sampled_goal": 2, "goal_selection_strategy": "future"},
                "policy_kwargs": {"net_arch": [32, 32]},
                "hyperparams": {"learning_starts": 100, "batch_size": 32, "buffer_size": 5000},
                "eval": {"freq": 1000, "episodes": 1, "seed": 10},
            }
        )
    )
    runs = tmp_path / "runs"
    trained = tianji_cli("train", "TiagoReach-v0", "--config", str(config), "--runs", str(runs), "--no-progress")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    (run,) = (runs / "TiagoReach-v0").glob("*/*")
    out = tmp_path / "eval.json"
    with served("sim:tiago", rate=100.0, controller_timeout=5.0) as endpoint:
        result = tianji_cli("eval", str(run), "--episodes", "2", "--robot", endpoint, "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["robot"] == endpoint and data["episodes"] == 2 and data["env"] == "tianji/TiagoReach-v0"
    assert data["mean_length"] == 100  # two full real-time episodes of 100 steps
    assert -100.0 <= data["mean_return"] <= 0.0  # sparse: -1 per step until within 2 cm
    bad = tianji_cli("eval", str(run), "--episodes", "1", "--robot", "udp://x")
    assert bad.returncode == 2 and "tcp://HOST:PORT" in bad.stderr


def test_the_zoo_reach_policy_reaches_goals_on_a_served_tiago() -> None:
    """The shipped Cartesian TiagoReach policy, trained in simulation, drives the served robot to its goals:
    the damped-least-squares mapping runs client-side on pinocchio's Jacobian (10 episodes by hand: 9 succeed)."""
    from tianji.policies.evaluate import evaluate
    from tianji.policies.zoo import ZOO_ROOT

    with served("sim:tiago", rate=100.0, controller_timeout=5.0) as endpoint:
        result = evaluate(ZOO_ROOT / "TiagoReach-v0" / "sac", episodes=4, seed=100_000, robot=endpoint)
    assert result.robot == endpoint and result.mean_length == 100
    assert sum(result.episode_successes) >= 2, result.episode_returns  # a random policy reaches none


def test_do_plans_and_runs_through_the_bridge(tmp_path) -> None:
    """``tianji do INSTRUCTION --robot tcp://...``: perception over the bridge, the plan runs on the served robot."""
    import json

    trace = tmp_path / "trace.jsonl"
    with served(CARE_DRIVER, rate=60.0, controller_timeout=5.0) as endpoint:
        run = tianji_cli(
            "do", "go to the patient and alert the caregiver", "--robot", endpoint, "--trace", str(trace), timeout=240
        )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "approach_person" in run.stdout and "succeeded: every step succeeded (2/2 steps" in run.stdout
    assert "[alert]" in run.stdout
    ends = [json.loads(line) for line in trace.read_text().splitlines() if '"step_end"' in line]
    assert [e["skill"] for e in ends][-2:] == ["approach_person", "alert_caregiver"]  # a retry may come first
    assert all(e["status"] == "succeeded" for e in ends[-2:])


def test_demo_runs_a_served_scenario_through_the_bridge(tmp_path) -> None:
    """``tianji demo fall_response --robot tcp://...`` against ``tianji bridge serve --robot scenario:...``: the
    room and the fall run on the server, perception, the planner and the skills on the client, and the verdict
    comes from the server's ground truth; the same criteria hold as in the in-process run."""
    with served("scenario:fall_response?seed=3", rate=60.0, controller_timeout=5.0) as endpoint:
        other = tianji_cli("demo", "drink_assist", "--robot", endpoint, "--out", str(tmp_path))
        oracle = tianji_cli("demo", "--oracle", "--robot", endpoint, "--out", str(tmp_path))
        run = tianji_cli("demo", "--robot", endpoint, "--out", str(tmp_path), timeout=240)  # the served scenario
    assert other.returncode == 2 and "serves scenario 'fall_response' seed 3, not scenario 'drink_assist'" in (
        other.stderr
    )
    assert oracle.returncode == 2 and "drop --oracle" in oracle.stderr
    assert run.returncode == 0, run.stdout + run.stderr
    (report_path,) = tmp_path.glob("fall_response/*/report.md")
    report = report_path.read_text()
    assert "SUCCEEDED" in report and "seed 3" in report and f"served at `{endpoint}`" in report
    assert "the patient falls" in report and "fall detected" in report
    detected = float(report.split("| fall detected within 3 s | yes | ")[1].split(" s after")[0])
    assert 0.0 < detected <= 3.0
    distance = float(report.split("| robot within 1.3 m of patient | yes | ")[1].split(" m")[0])
    assert distance <= 1.3
    assert (report_path.parent / "video.mp4").stat().st_size > 50_000  # room | head camera frames from the server


def test_demo_over_the_bridge_needs_a_served_scenario() -> None:
    """A robot served without a scenario (``sim:tiago``, or hardware) has no room events or truth to give."""
    with served("sim:tiago", rate=100.0) as endpoint:
        run = tianji_cli("demo", "fall_response", "--robot", endpoint)
    assert run.returncode == 2
    assert "serves no scenario" in run.stderr and "scenario:fall_response" in run.stderr
