"""Care environments: scripted oracles (PyBullet IK on ground truth) show each success flag can fire.

The generic checks (Gymnasium / SB3 checkers, replay, limits, NaN) run for these environments in
test_envs.py; here: one quick oracle episode per task, a few more seeds in the slow suite, the
force report, and replays that follow a long, different episode.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pybullet as pb
import pytest

import tianji.sim  # noqa: F401  (registers the environments)
from tianji.sim.envs.care import CareEnv
from tianji.sim.envs.care_bathing import CareBedBathingEnv
from tianji.sim.envs.care_fall import CareFallResponseEnv
from tianji.sim.envs.care_feeding import CareDrinkingEnv, CareFeedingEnv
from tianji.sim.envs.care_pick import GRASP_POINT, CarePickCupEnv

CARE_IDS = [
    "tianji/CarePickCup-v0",
    "tianji/CareDrinking-v0",
    "tianji/CareFeeding-v0",
    "tianji/CareBedBathing-v0",
    "tianji/CareFallResponse-v0",
]


# ------------------------------------------------------------------ oracle tools
def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about ``axis`` by ``angle`` (Rodrigues)."""
    k = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * cross + (1 - math.cos(angle)) * cross @ cross


def matrix(quat: np.ndarray | tuple[float, ...]) -> np.ndarray:
    return np.array(pb.getMatrixFromQuaternion(list(quat))).reshape(3, 3)


def quaternion(rot: np.ndarray) -> list[float]:
    """(x, y, z, w) of a rotation matrix, via the axis-angle PyBullet understands."""
    angle = math.acos(float(np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)))
    if angle < 1e-9:
        return [0.0, 0.0, 0.0, 1.0]
    if angle > math.pi - 1e-6:  # 180 degrees: the axis is the column of rot + I with the largest norm
        m = rot + np.eye(3)
        axis = m[:, int(np.argmax(np.linalg.norm(m, axis=0)))]
    else:
        axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    return list(pb.getQuaternionFromAxisAngle((axis / np.linalg.norm(axis)).tolist(), angle))


class HandOracle:
    """Moves a frame fixed in TIAGo's hand (a held tool, the grasp point) along a speed-limited path.

    Each call steps a commanded pose towards the target (at most ``speed`` m and ``turn`` rad),
    solves PyBullet's IK for the hand on the privileged robot state, and returns the arm action
    that moves the joint targets there.
    """

    def __init__(self, env: CareEnv, offset: tuple, speed: float = 0.004, turn: float = math.radians(1.5)) -> None:
        self.env, self.speed, self.turn = env, speed, turn
        self.offset_p = np.array(offset[0], dtype=float)
        self.offset_r = matrix(pb.getQuaternionFromEuler(offset[1]))
        robot = env.tiago
        self.order = np.argsort(robot._pb_index)  # spec indices in PyBullet's joint order
        lo, hi = robot.spec.position_lower, robot.spec.position_upper
        self.lo, self.hi = np.where(np.isfinite(lo), lo, -10.0), np.where(np.isfinite(hi), hi, 10.0)
        self.cmd_p, self.cmd_r = self.pose()

    def pose(self) -> tuple[np.ndarray, np.ndarray]:
        pos, quat = self.env.hand_pose()
        rot = matrix(quat)
        return pos + rot @ self.offset_p, rot @ self.offset_r

    def act(self, target_p: np.ndarray, target_r: np.ndarray) -> np.ndarray:
        step = target_p - self.cmd_p
        norm = float(np.linalg.norm(step))
        self.cmd_p = self.cmd_p + (step if norm <= self.speed else step * self.speed / norm)
        rel = target_r @ self.cmd_r.T
        angle = math.acos(float(np.clip((np.trace(rel) - 1) / 2, -1.0, 1.0)))
        if angle > 1e-6:
            axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
            if np.linalg.norm(axis) < 1e-9:
                self.cmd_r = target_r
            else:
                self.cmd_r = rotation(axis, min(angle, self.turn)) @ self.cmd_r
        hand_r = self.cmd_r @ self.offset_r.T
        hand_p = self.cmd_p - hand_r @ self.offset_p
        robot, c = self.env.tiago, self.env.world.client
        current = np.array([s[0] for s in c.getJointStates(robot.body_id, robot._pb_index.tolist())])
        solution = c.calculateInverseKinematics(
            robot.body_id,
            self.env._hand_link,
            hand_p.tolist(),
            quaternion(hand_r),
            lowerLimits=self.lo[self.order].tolist(),
            upperLimits=self.hi[self.order].tolist(),
            jointRanges=(self.hi - self.lo)[self.order].tolist(),
            restPoses=current[self.order].tolist(),
            maxNumIterations=40,
            residualThreshold=1e-5,
        )
        q = np.empty(robot.dof)
        q[self.order] = solution
        idx = self.env._arm_idx
        return np.clip((q[idx] - robot.position_targets[idx]) / self.env.max_joint_delta, -1, 1).astype(np.float32)


def facing_frame(env: CareDrinkingEnv | CareFeedingEnv) -> tuple[np.ndarray, np.ndarray]:
    """(u, axis): horizontal direction from in front of the face towards the mouth, and up x u."""
    forward = matrix(env.patient.link_pose("middle_head")[3:])[:, 0]
    u = -np.array([forward[0], forward[1], 0.0])
    u /= np.linalg.norm(u)
    return u, np.cross([0.0, 0.0, 1.0], u)


# ---------------------------------------------------------------------- oracles
def drink(env: CareDrinkingEnv, seed: int) -> dict:
    """Cup upright to 15 cm in front of the mouth, tilt to 45 deg, rim 4 cm off the mouth, then pour:
    tilt 1 deg more whenever no particle has left the cup for 8 steps."""
    env.reset(seed=seed)
    oracle = HandOracle(env, env.tool_in_hand)
    tilt, held_before, last_pour = 45.0, 1.0, -100
    info: dict = {}
    for k in range(300):
        mouth = env.mouth()
        u, axis = facing_frame(env)
        upright = np.column_stack([np.cross(axis, [0, 0, 1]), axis, [0, 0, 1]])
        if k < 50:
            angle, back, up = 0.0, 0.15, 0.03
        elif k < 80:
            angle, back, up = 45.0, 0.15, 0.03
        elif k < 105:
            angle, back, up = 45.0, 0.04, 0.015
        else:
            held = env.particles.shares()[0]
            last_pour = k if held < held_before else last_pour
            held_before = held
            tilt = min(125.0, tilt + 1.0) if k - last_pour > 8 else tilt
            angle, back, up = tilt, 0.04, 0.015
        cup_r = rotation(axis, math.radians(angle)) @ upright
        rim = np.array([0, 0, 0.10]) + 0.04 * (upright.T @ u)  # the rim's point nearest the mouth, cup frame
        cup_p = mouth - back * u + np.array([0, 0, up]) - cup_r @ rim
        _, _, terminated, _, info = env.step(oracle.act(cup_p, cup_r))
        if terminated:
            break
    return info


def feed(env: CareFeedingEnv, seed: int) -> dict:
    """Spoon level, pointing at the face: 10 cm in front of the mouth, then the bowl at the mouth."""
    env.reset(seed=seed)
    oracle = HandOracle(env, env.tool_in_hand, speed=0.003, turn=math.radians(0.75))
    info: dict = {}
    for k in range(200):
        u, axis = facing_frame(env)
        spoon_r = np.column_stack([u, axis, [0, 0, 1]])
        back = 0.10 if k < 40 else 0.0
        spoon_p = env.mouth() - back * u - spoon_r @ np.array(env.tool_tip)
        _, _, terminated, _, info = env.step(oracle.act(spoon_p, spoon_r))
        if terminated:
            break
    return info


def bathe(env: CareBedBathingEnv, seed: int) -> dict:
    """Cloth face down, lowered onto the shoulder end of the arm, then slid along it to the wrist."""
    env.reset(seed=seed)
    oracle = HandOracle(env, env.tool_in_hand)
    cloth_r = np.eye(3)
    info: dict = {}
    for k in range(300):
        points = env.surface_points()
        along = min(len(points) - 1, max(0, (k - 40) // 12))
        # the pad is flat and 10 cm long: ride on the highest point under it, lightly touching
        under = np.linalg.norm(points[:, :2] - points[along, :2], axis=1) <= 0.07
        lift = 0.08 if k < 30 else 0.0
        target = np.array([*points[along, :2], points[under, 2].max() + lift + 0.01])
        _, _, terminated, _, info = env.step(oracle.act(target, cloth_r))
        if terminated:
            break
    return info


PICK_HIGHER = 0.03  # m above the cup's centre: near the rim, so the wrist clears the table
PICK_BACK, PICK_ABOVE = 0.05, 0.12  # m: start the approach above and in front of the cup


def pick(env: CarePickCupEnv, seed: int) -> dict:
    """Palm towards the cup: above and in front of it, in until the cup sits at the grasp point, close, lift."""
    env.reset(seed=seed)
    oracle = HandOracle(env, (GRASP_POINT, (0.0, 0.0, 0.0)), speed=0.005)
    info: dict = {}
    phase, hold = "behind", np.zeros(3)
    for k in range(200):
        cup = env.cup_center() + np.array([0, 0, PICK_HIGHER])
        toward = cup - env.base_frame()[0]
        toward[2] = 0.0
        toward /= np.linalg.norm(toward)
        # grasp frame: y (the palm's normal) towards the cup, z down, fingers (x) level and sideways
        hand_r = np.column_stack([np.cross(toward, [0, 0, -1.0]), toward, [0, 0, -1.0]])
        if phase == "behind":
            target, opening = cup - PICK_BACK * toward + np.array([0, 0, PICK_ABOVE]), 1.0
            phase = "in" if k >= 50 else phase
        elif phase == "in":
            target, opening = cup - 0.01 * toward, 1.0  # stop short: the palm must not push the cup
            if np.linalg.norm(cup - oracle.pose()[0]) < 0.025 or k >= 120:
                phase, hold, closed_at = "lift", cup.copy(), k
        else:
            target, opening = hold + np.array([0, 0, 0.15 if k - closed_at > 10 else 0.0]), 0.0
        action = np.append(oracle.act(target, hand_r), 2 * opening - 1).astype(np.float32)
        _, _, terminated, _, info = env.step(action)
        if terminated:
            break
    return info


def respond(env: CareFallResponseEnv, seed: int) -> dict:
    """Before the fall: stay. After it: drive towards the point 0.6 m beside the chest on the robot's
    side of the body until within 0.75 m of the chest, then turn to face the chest."""
    env.reset(seed=seed)
    info: dict = {}
    for _ in range(600):
        action = np.zeros(4, dtype=np.float32)
        if env.fallen:
            pos, quat = env.base_frame()
            chest = env.chest()
            pelvis = env.patient.link_pose("middle_pelvis")[:3]
            body = (chest - pelvis)[:2] / np.linalg.norm((chest - pelvis)[:2])
            side = np.array([-body[1], body[0]])
            side = side if np.dot(pos[:2] - chest[:2], side) > 0 else -side
            goal = chest[:2] + 0.6 * side
            yaw = math.atan2(float(matrix(quat)[1, 0]), float(matrix(quat)[0, 0]))
            to_goal = goal - pos[:2]
            if np.linalg.norm(to_goal) > 0.1 and np.linalg.norm(chest[:2] - pos[:2]) > 0.75:
                heading = math.atan2(to_goal[1], to_goal[0])
                speed_ok = 1.0
            else:
                heading = math.atan2(chest[1] - pos[1], chest[0] - pos[0])
                speed_ok = 0.0
            error = (heading - yaw + math.pi) % (2 * math.pi) - math.pi
            action[1] = np.clip(2.0 * error, -1, 1)
            action[0] = speed_ok * np.clip(2.0 * np.linalg.norm(to_goal), 0, 1) * max(0.0, math.cos(error)) ** 4
        _, _, terminated, _, info = env.step(action)
        if terminated:
            break
    return info


ORACLES = {
    "tianji/CarePickCup-v0": (CarePickCupEnv, pick),
    "tianji/CareDrinking-v0": (CareDrinkingEnv, drink),
    "tianji/CareFeeding-v0": (CareFeedingEnv, feed),
    "tianji/CareBedBathing-v0": (CareBedBathingEnv, bathe),
    "tianji/CareFallResponse-v0": (CareFallResponseEnv, respond),
}


# ------------------------------------------------------------------------ tests
@pytest.mark.parametrize("env_id", CARE_IDS)
def test_oracle_reaches_success(env_id: str) -> None:
    cls, oracle = ORACLES[env_id]
    env = cls()
    env.reset(seed=1)
    if env_id != "tianji/CareFallResponse-v0":  # the manipulation tasks start looking at the patient or the cup
        seen = np.unique(env.tiago.camera("head", size=(84, 84)).segmentation)
        target = env.cup if env_id == "tianji/CarePickCup-v0" else env.patient.body_id
        assert target in seen, f"{env_id}: the head camera does not see body {target} (sees {seen})"
    info = oracle(env, seed=1)
    env.close()
    assert info["is_success"], f"{env_id}: oracle ended with {info}"
    assert 0.0 <= info["max_patient_force"] < np.inf


@pytest.mark.slow
@pytest.mark.parametrize("env_id", CARE_IDS)
def test_oracle_success_rate_over_seeds(env_id: str) -> None:
    cls, oracle = ORACLES[env_id]
    env = cls()
    results = [oracle(env, seed=seed) for seed in range(2, 7)]
    env.close()
    rate = np.mean([r["is_success"] for r in results])
    assert rate >= 0.8, f"{env_id}: oracle success {rate:.0%}: {results}"


def test_force_on_the_patient_is_reported_and_penalized_above_the_limit() -> None:
    """Press the washcloth 3 cm into the arm; the same actions with a 1000 N limit give the unpenalized reward."""
    runs = []
    for limit in (10.0, 1000.0):
        env = CareBedBathingEnv(force_limit=limit)
        env.reset(seed=0)
        oracle = HandOracle(env, env.tool_in_hand, speed=0.006)
        rewards, infos = [], []
        for _ in range(60):
            target = env.surface_points()[3] - np.array([0.0, 0.0, 0.02])
            _, reward, _, _, info = env.step(oracle.act(target, np.eye(3)))
            rewards.append(reward)
            infos.append(info)
        env.close()
        runs.append((np.array(rewards), infos))
    (strict, infos), (loose, _) = runs
    forces = np.array([i["patient_force"] for i in infos])
    assert forces.max() > 10.0 and infos[-1]["max_patient_force"] == pytest.approx(forces.max())
    assert np.allclose(loose - strict, 0.01 * np.maximum(0.0, forces - 10.0), atol=1e-6)


def test_replay_is_identical_after_a_long_different_episode() -> None:
    """PyBullet keeps collision caches across restoreState; the care envs rebuild them (particles make it show)."""
    env = gym.make("tianji/CareDrinking-v0")
    rng = np.random.default_rng(0)
    short, long = rng.uniform(-1, 1, (15, 8)).astype(np.float32), rng.uniform(-1, 1, (60, 8)).astype(np.float32)

    def episode(seed: int, actions: np.ndarray) -> np.ndarray:
        out = [env.reset(seed=seed)[0]]
        out += [env.step(a)[0] for a in actions]
        return np.array(out)

    first = episode(3, short)
    episode(5, long)
    assert np.array_equal(first, episode(3, short))
    env.close()


def test_vectorized_with_two_subprocess_workers() -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env(
        "tianji.sim:tianji/CareFeeding-v0",
        n_envs=2,
        seed=0,
        vec_env_cls=SubprocVecEnv,
        vec_env_kwargs={"start_method": "fork"},  # no re-import in the workers: faster
    )
    obs = venv.reset()
    assert obs.shape == (2, 35)
    obs, rewards, _, infos = venv.step(np.zeros((2, 8), dtype=np.float32))
    assert rewards.shape == (2,) and "max_patient_force" in infos[0] and not np.array_equal(obs[0], obs[1])
    venv.close()


def test_domain_randomization_reaches_the_held_tool() -> None:
    env = CareFeedingEnv(randomization={"mass_scale": 0.3, "friction_scale": 0.3})
    env.reset(seed=0)
    first = env.world.client.getDynamicsInfo(env.tool, -1)[0]
    env.reset(seed=1)
    assert env.world.client.getDynamicsInfo(env.tool, -1)[0] != first
    env.close()


def test_bad_arguments_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="force_limit"):
        CareFeedingEnv(force_limit=0.0)
    with pytest.raises(ValueError, match="grasp_tolerance"):
        CarePickCupEnv(grasp_tolerance=-0.01)
