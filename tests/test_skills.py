"""Skill library without the heavy simulation: registry, JSON schema, parameter parsing, basic skills, PolicySkill."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tianji.control import Command, Observation
from tianji.control.base_nav import OccupancyMap
from tianji.control.errors import UnknownNameError
from tianji.control.skills import (
    SKILLS,
    PolicySkill,
    SkillContext,
    SkillError,
    SkillRunner,
    get_skill,
    make_skill,
    schema,
)
from tianji.control.skills.base import cond
from tianji.control.skills.geometry import OBJECT_MODELS, plan_path
from tianji.control.world_state import WorldState
from tianji.sim import World

CARE_SKILLS = (
    "navigate_to", "look_at", "pick", "place", "hand_over", "bring_to_mouth", "wipe", "approach_person",
    "open_gripper", "close_gripper", "wait", "alert_caregiver", "say",
)  # fmt: skip


def test_every_skill_is_registered_with_its_schema() -> None:
    for name in (
        *CARE_SKILLS,
        "stand",
        "wave",
        "demonstrate_exercise",
        "reach",
        "power_grasp",
        "pinch_grasp",
        "release",
    ):
        assert name in SKILLS, name
    doc = schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(doc)  # plain JSON
    pick = doc["$defs"]["pick"]
    assert pick["properties"]["params"]["properties"]["object"]["enum"] == ["cup", "bowl", "spoon", "pill_box"]
    assert pick["properties"]["params"]["required"] == ["object"]
    assert {c["text"] for c in pick["effects"]} >= {"holding = {object}"}
    assert {c["text"] for c in doc["$defs"]["hand_over"]["requires"]} >= {"holding = {object}"}
    assert doc["$defs"]["say"]["properties"]["params"]["properties"]["text"]["type"] == "string"
    assert {"$ref": "#/$defs/pick"} in doc["oneOf"]
    for entry in doc["$defs"].values():
        assert entry["success"] and "timeout" in entry
    ws = WorldState(objects={}, places={}, people={})
    assert schema(ws)["$defs"]["pick"]["properties"]["params"]["properties"]["object"]["enum"] == []
    assert set(schema(robot="g1")["$defs"]) >= {"wave", "say"} and "pick" not in schema(robot="g1")["$defs"]


def test_parameters_are_parsed_and_errors_say_how_to_fix_them() -> None:
    skill = make_skill("wait", {"seconds": "2.5"})
    assert skill.params.seconds == 2.5
    reach = make_skill("reach", {"target": "0.1,0.2,0.3", "relative": "false"})
    assert reach.params.target == (0.1, 0.2, 0.3) and reach.params.relative is False
    with pytest.raises(SkillError, match=r"[Dd]id you mean 'object'"):
        make_skill("pick", {"objekt": "cup"})
    with pytest.raises(SkillError, match="needs parameter"):
        make_skill("pick", {})
    with pytest.raises(SkillError, match="must be one of"):
        make_skill("demonstrate_exercise", {"name": "yoga"})
    with pytest.raises(UnknownNameError, match="Known skills"):
        get_skill("fly")
    assert str(cond("near({person}) = true")) == "near({person}) = true"
    with pytest.raises(ValueError):
        cond("holding")


def test_path_planner_goes_around_an_obstacle() -> None:
    occ = OccupancyMap.from_boxes((-2, -2), (2, 2), [((-0.3, -1.0, 0.0), (0.3, 1.6, 0.7))])
    path = plan_path(occ, (-1.2, 0.0), (1.2, 0.0), 0.35)
    assert path is not None and len(path) >= 3
    assert all(not occ.occupied(p[0], p[1]) for p in path)
    assert plan_path(occ, (-1.2, 0.0), (0.0, 0.0), 0.35) is None  # goal inside the box
    assert OBJECT_MODELS["cup"].lip is not None


def test_basic_skills_and_a_policy_skill_on_the_simulated_tiago(world: World) -> None:
    tiago = world.add_robot("tiago")
    events = []
    ctx = SkillContext(on_event=events.append)
    runner = SkillRunner(tiago, WorldState, stepper=world.step)
    said = runner.run(make_skill("say", {"text": "Good morning"}, ctx))
    assert said.succeeded and said.events[0].kind == "say" and events[-1].message == "Good morning"
    alert = runner.run(make_skill("alert_caregiver", {"message": "patient fell"}, ctx))
    assert alert.succeeded and "[urgent] patient fell" in alert.events[0].message
    assert runner.run(make_skill("wait", {"seconds": 0.5}, ctx)).duration == pytest.approx(0.5, abs=0.05)
    closed = runner.run(make_skill("close_gripper", {}, ctx))
    assert closed.succeeded and tiago.observe().gripper < 0.1, closed.reason
    opened = runner.run(make_skill("open_gripper", {}, ctx))
    assert opened.succeeded and opened.data["opening"] > 0.9
    refused = runner.run(make_skill("say", {"text": " "}, ctx))
    assert not refused.succeeded and "preconditions not met" in refused.reason
    assert refused.as_dict()["status"] == "failed"

    i = tiago.spec.index("head_1_joint")
    goal = 0.4

    def policy(obs: dict[str, np.ndarray]) -> np.ndarray:  # a trivial "learned" policy: step the head pan
        return np.array([min(goal, float(obs["joint_positions"][i]) + 0.05)])

    def done(obs: Observation, ws: WorldState) -> bool:
        return abs(float(obs.joint_positions[i]) - goal) < 0.02

    skill = PolicySkill(policy, done, name="pan_head", joints=["head_1_joint"], timeout=5.0)
    result = runner.run(skill)
    assert result.succeeded and result.skill == "pan_head" and result.data["policy_steps"] > 3
    slow = PolicySkill(lambda obs: np.array([0.0]), lambda o, w: False, joints=["head_1_joint"], timeout=0.3)
    failed = runner.run(slow)
    assert not failed.succeeded and "timed out" in failed.reason
    assert isinstance(Command(), Command)


def test_the_cup_is_held_to_the_mouth_only_of_a_person_lying_in_bed(world: World) -> None:
    from tianji.control.world_state import ObjectState, PersonState, Posture

    tiago = world.add_robot("tiago")
    ctx = SkillContext(spec=tiago.spec)
    obs = tiago.observe()
    head, mouth = np.array([0.8, 0.0, 1.2]), np.array([0.7, 0.0, 1.26])

    def unmet(posture: Posture, obj: str) -> list[str]:
        ws = WorldState(
            objects={obj: ObjectState(obj, np.array([0.5, 0.0, 1.0]))},
            people={"patient": PersonState("patient", np.array([0.8, 0.0, 0.7]), posture, head, mouth)},
        )
        return make_skill("bring_to_mouth", {"object": obj, "person": "patient"}, ctx).preconditions(ws, obs)

    sitting = unmet(Posture.SITTING, "cup")
    assert any("only done for a person lying in bed" in u and "hand_over the cup" in u for u in sitting), sitting
    assert not any("lying in bed" in u for u in unmet(Posture.LYING_IN_BED, "cup"))
    assert not any("lying in bed" in u for u in unmet(Posture.SITTING, "spoon"))  # the spoon is fed sitting up


def test_a_swing_that_dips_over_a_lying_person_is_measured(world: World) -> None:
    """bring_to_mouth and hand_over check the joint-space swing to their goal posture: rolling the upper arm
    (arm_3) from -1.5 to +1.5 rad with the elbow bent drops the hand 33 cm midway, over a person lying across
    its path (a dip like that once pressed a patient's upper arm with 74 N); a swing that only rises passes."""
    from tianji.control.kinematics import Kinematics
    from tianji.control.skills.arm import TiagoArm
    from tianji.control.skills.swing import SwingCheck, object_points, swing_margin
    from tianji.control.world_state import PersonState, Posture
    from tianji.sim import get_robot

    tiago = world.add_robot("tiago")
    kin = Kinematics.for_spec(get_robot("tiago").urdf_path(), tiago.spec)
    arm = TiagoArm(tiago.spec, kin)
    base = np.array([0.0, 0.0, 0.0])
    q = tiago.observe().joint_positions.astype(float)

    def posture(arm_3: float) -> np.ndarray:
        out = q.copy()
        for joint, value in (("arm_1_joint", 1.5), ("arm_2_joint", 0.0), ("arm_4_joint", 1.57), ("arm_3_joint", arm_3)):
            out[tiago.spec.index(joint)] = value
        return out

    # lying along y in front of the robot (x ~ 0.35 m), head towards +y, mouth 0.8 m high
    patient = PersonState(
        "patient",
        np.array([0.35, -0.3, 0.7]),
        Posture.LYING_IN_BED,
        np.array([0.35, 0.85, 0.75]),
        np.array([0.35, 0.9, 0.8]),
    )
    check, cup = SwingCheck(patient), object_points(OBJECT_MODELS["cup"])
    dip = swing_margin(arm, posture(-1.5), posture(1.5), base, np.eye(4), cup, check)
    rise = swing_margin(arm, posture(-2.0), posture(-2.5), base, np.eye(4), cup, check)
    assert dip < -0.15, dip  # the cup would pass ~20 cm lower than the floor
    assert rise >= 0.0, rise


def test_a_closed_hand_beside_a_table_does_not_hold_what_stands_on_it(world: World) -> None:
    from tianji.control.skills.geometry import held_object
    from tianji.control.world_state import ObjectState, Place

    tiago = world.add_robot("tiago")
    obs = tiago.observe()
    obs.gripper = 0.0  # closed, as when the arm is tucked
    hand = obs.ee_poses["gripper"][:3].astype(float)
    table = Place("dining_table", np.array([hand[0], hand[1], 0.0]), float(hand[2]), center=hand.copy())
    ws = WorldState(places={"dining_table": table})
    ws.objects["pill_box"] = ObjectState("pill_box", hand - np.array([0.0, 0.0, 0.02]))  # standing beside the hand
    assert held_object(ws, obs) is None
    ws.objects["pill_box"].position = hand + np.array([0.0, 0.0, 0.09])  # lifted off the table
    assert held_object(ws, obs) == "pill_box"
    ws.objects["pill_box"].position = hand - np.array([0.0, 0.0, 0.02])
    ws.objects["pill_box"].source = "grasp"  # the hand's own belief: held wherever it is
    assert held_object(ws, obs) == "pill_box"
