"""Care, G1 and Allegro skills in the simulated care room (real PyBullet, seeded, randomized layout).

One seeded trial per skill (the 20-trial run is ``experiments/bench/skills.py``). The sessions
use 120 Hz physics under the 60 Hz control rate to keep the suite fast.
"""

from __future__ import annotations

import numpy as np
import pybullet as pb

from tianji.cli_skills import care_session
from tianji.control import Command
from tianji.control.skills import make_skill

# Beside the bed at the patient's chest, facing the bed: the scene's "bedside" place, just clear of the bedside table.
BESIDE_THE_BED = (-1.70, 0.45, 1.5708)


def test_navigation_look_at_and_approach_person() -> None:
    s = care_session(seed=3, randomize=True, fast_physics=True)
    try:
        nav = s.run("navigate_to", place="dining_table")
        assert nav.succeeded, nav.reason
        assert nav.data["position_error"] < 0.1
        look = s.run("look_at", target="cup")
        assert look.succeeded and look.data["angle_error"] < 0.06, look.reason
        behind = s.run("look_at", target="room_center")  # behind the robot's right shoulder: past the pan limit
        assert not behind.succeeded and behind.data["angle_error"] > 0.2
        assert "beyond the head's reach from where the robot stands" in behind.reason, behind.reason
        assert "limit of head_1_joint" in behind.reason
        near = s.run("approach_person", person="patient")
        assert near.succeeded, near.reason
        assert near.data["person_distance"] < 1.2
        again = s.run("approach_person", person="patient")  # already there: a short turn, not an error
        assert again.succeeded and again.duration < 5.0, again.reason
        assert s.safe.interventions["person_force"] == 0
        bad = s.run("navigate_to", place="kitchen")
        assert not bad.succeeded and "not in the world state" in bad.reason
    finally:
        s.close()


def test_a_carried_cup_stays_clear_of_a_sitting_patient_on_approach_and_after_the_hand_over() -> None:
    """Stopping 0.9 m from a sitting patient put a carried cup into her upper arm, and folding the arm after the
    hand-over swung the forearm into it (drink_assist, 5 of 20 rooms): the spot keeps the cup's reach clear of her
    side, and the base backs off before the arm folds."""
    from tianji.cli_skills import care_room_config
    from tianji.control.skills.arm import PERSON_GAP, PERSON_HALF_WIDTH
    from tianji.control.skills.manipulation import FOLD_REACH
    from tianji.sim import patient as patient_body

    config = care_room_config("tiago", ("tiago", "patient"))
    config["robots"]["patient"].update(preset="sitting_in_bed", position=[-1.75, 1.42, 0.58])  # as in drink_assist
    s = care_session(
        seed=11,
        randomize=True,
        fast_physics=True,
        config=config,
        after_build=lambda scene: patient_body.pin(scene.world, scene.robots["patient"]),
    )
    try:
        s.give("cup")
        near = s.run("approach_person", person="patient")
        assert near.succeeded, near.reason
        assert 0.95 <= near.data["person_distance"] <= 1.3  # cup ~0.6 m ahead + 0.3 m half width + 0.1 m gap
        given = s.run("hand_over", object="cup", person="patient")
        assert given.succeeded, given.reason
        base = s.robot.observe().base_pose[:2]
        person = s.world_state().person("patient").position[:2]
        assert np.linalg.norm(base - person) >= FOLD_REACH + PERSON_HALF_WIDTH + PERSON_GAP - 0.05  # folded clear
        assert s.safe.interventions["person_force"] == 0
    finally:
        s.close()


def test_pick_the_cup_then_place_it_back_on_the_table() -> None:
    s = care_session(seed=1, randomize=True, fast_physics=True, keep_robots=("tiago",))
    try:
        s.start_at("dining_table")
        far = s.run("place", object="cup", place="dining_table")
        assert not far.succeeded and "pick it first" in far.reason
        pick = s.run("pick", object="cup")
        assert pick.succeeded, pick.reason
        assert s.assist.held == "cup" and pick.data["lift"] > 0.05
        again = s.run("pick", object="spoon")
        assert not again.succeeded and "already holds 'cup'" in again.reason
        place = s.run("place", object="cup", place="dining_table")
        assert place.succeeded, place.reason
        assert s.assist.held is None and abs(place.data["height_error"]) < 0.03
    finally:
        s.close()


def test_hand_over_and_spoon_to_the_mouth_of_the_lying_patient() -> None:
    # seed 11: the room where a straight line to a mouth past the arm's reach shook the hand onto her chest (70 N)
    s = care_session(seed=11, randomize=True, fast_physics=True)
    try:
        s.start_at("bedside")
        s.give("spoon")
        feed = s.run("bring_to_mouth", object="spoon", person="patient")
        assert feed.succeeded, feed.reason
        assert feed.data["mouth_distance"] <= 0.05 and feed.data.get("max_force", 0.0) <= 10.0
        assert s.safe.interventions["person_force"] == 0
    finally:
        s.close()
    s = care_session(seed=4, randomize=True, fast_physics=True)
    try:
        s.start_at("bedside")
        s.give("cup")
        handed = s.run("hand_over", object="cup", person="patient", hold_time=1.0)
        assert handed.succeeded, handed.reason
        assert s.assist.held is None and s.safe.interventions["person_force"] == 0
    finally:
        s.close()


def test_g1_stands_waves_and_exercises() -> None:
    s = care_session("g1", seed=0, fast_physics=True)
    try:
        for name, params in [
            ("stand", {}),
            ("wave", {}),
            ("demonstrate_exercise", {"name": "arm_raise", "repetitions": 1}),
        ]:
            result = s.run(name, **params)
            assert result.succeeded, f"{name}: {result.reason}"
        for hand, target in [("right", (0.30, -0.20, 0.25)), ("left", (0.35, 0.25, 0.30))]:
            # the G1 faces -y in the doorway: relative targets are in its heading frame
            reached = s.run("reach", hand=hand, target=target)
            assert reached.succeeded, reached.reason
            assert reached.data["error"] < 0.03
        # an exercise from the bent arm a reach leaves: the range is judged by how near the joints came to its extreme
        wrong = s.runner.run(make_skill("demonstrate_exercise", {"name": "elbow_curl"}, s.context))
        assert wrong.succeeded, wrong.reason
    finally:
        s.close()


def _bar_under_the_palm(s: object, forward: float, radius: float = 0.025) -> int:
    """A fixed bar (along y) with its top 4.5 cm below the Allegro's palm link, ``forward`` m along world +x; its id."""
    palm = s.robot.link_pose("palm_link").astype(float)  # type: ignore[attr-defined]
    client = s.world.client  # type: ignore[attr-defined]
    shape = client.createCollisionShape(pb.GEOM_CYLINDER, radius=radius, height=0.2)
    pos = [palm[0] + forward, palm[1], palm[2] - 0.045 - radius]
    return client.createMultiBody(0, shape, -1, pos, pb.getQuaternionFromEuler((1.5708, 0, 0)))


THUMB_JOINTS = ("joint_12.0", "joint_13.0", "joint_14.0", "joint_15.0")


def test_allegro_grasps_a_bar_with_synergies_and_releases() -> None:
    s = care_session("allegro", seed=0, fast_physics=True, keep_robots=())
    try:
        hand = s.robot
        empty = s.run("power_grasp")
        assert not empty.succeeded and "without meeting an object" in empty.reason
        assert empty.data["thumb_closed"] == 1.0  # the thumb went its whole way and met nothing
        assert s.run("release").succeeded
        bar = _bar_under_the_palm(s, 0.02)
        grasp = s.run("power_grasp")
        assert grasp.succeeded and grasp.data["grasped"], grasp.reason
        assert s.world.contact_force(hand.body_id, bar) > 0.0
        hand.command(Command())
        assert s.run("release").succeeded
    finally:
        s.close()


def test_allegro_power_grasp_closes_the_thumb_on_the_bar_where_it_lies() -> None:
    # 9 mm past the spot the fixed synergy was made for, a thin bar 1 cm past it, a thick one 1 cm short of it:
    # the fixed synergy's thumb closed beside the first two (its fingers stopped on them)
    for forward, radius in [(0.029, 0.025), (0.03, 0.020), (0.01, 0.030)]:
        s = care_session("allegro", seed=0, fast_physics=True, keep_robots=())
        try:
            bar = _bar_under_the_palm(s, forward, radius)
            grasp = s.run("power_grasp")
            assert grasp.succeeded and grasp.data["grasped"], (forward, radius, grasp.reason)
            assert set(THUMB_JOINTS) & set(grasp.data["blocked_joints"]), grasp.data
            assert grasp.data["thumb_closed"] < 1.0  # stopped on the bar, short of the end of its path
            axis = np.array(s.world.client.getBasePositionAndOrientation(bar)[0])
            tip = s.robot.observe().ee_poses["thumb_tip"][:3].astype(float)
            gap = float(np.hypot(tip[0] - axis[0], tip[2] - axis[2])) - radius
            assert gap < 0.016, (forward, radius, gap)  # its 12 mm tip sphere on the bar
            assert s.run("release").succeeded
        finally:
            s.close()


def test_allegro_power_grasp_says_when_the_thumb_cannot_reach_the_bar() -> None:
    s = care_session("allegro", seed=0, fast_physics=True, keep_robots=())
    try:
        _bar_under_the_palm(s, 0.06)  # 4 cm past the spot: the fingers reach it, the thumb's path ends short of it
        grasp = s.run("power_grasp")
        assert not grasp.succeeded and not grasp.data["grasped"]
        assert "thumb closed without meeting the object" in grasp.reason, grasp.reason
        assert grasp.data["thumb_closed"] == 1.0
        blocked = grasp.data["blocked_joints"]
        assert len(blocked) >= 3 and not set(THUMB_JOINTS) & set(blocked), blocked  # the fingers closed on it
    finally:
        s.close()


def test_pick_the_bowl_without_shoving_its_neighbours() -> None:
    s = care_session(seed=1, randomize=True, fast_physics=True, keep_robots=("tiago",))
    try:
        s.start_at("dining_table")
        before = {name: np.array(o.position) for name, o in s.world_state().objects.items()}
        pick = s.run("pick", object="bowl")
        assert pick.succeeded, pick.reason
        assert s.assist.held == "bowl" and pick.data["lift"] > 0.05
        after = s.world_state().objects
        for name in ("cup", "spoon", "pill_box"):  # the wrist passes beside them, not over them
            assert np.linalg.norm(np.array(after[name].position) - before[name]) < 0.01, name
    finally:
        s.close()


def test_cup_tipped_to_the_mouth_of_the_lying_patient() -> None:
    s = care_session(seed=0, randomize=True, fast_physics=True)
    try:
        s.start_at(BESIDE_THE_BED)
        s.give("cup")
        drink = s.run("bring_to_mouth", object="cup", person="patient")
        assert drink.succeeded, drink.reason
        assert drink.data["mouth_distance"] <= 0.05 and drink.data.get("max_force", 0.0) < 10.0
        assert s.safe.interventions["person_force"] == 0 and s.assist.held == "cup"
    finally:
        s.close()


def test_cup_to_the_mouth_from_the_scene_bedside_place() -> None:
    """From the scene's bedside place the mouth (seed 7) is 1.12 m away, and no base pose within 1 m of the robot
    reached it with the tipped cup (no base pose ... reaches): the base goes to the free spot nearest the mouth that
    a straight move reaches, between the bed and the bedside table, and the cup is tipped farther if it must."""
    s = care_session(seed=7, randomize=True, fast_physics=True)
    try:
        s.start_at("bedside")
        s.give("cup")
        drink = s.run("bring_to_mouth", object="cup", person="patient")
        assert drink.succeeded, drink.reason
        assert drink.data["base_moved"] and drink.data["mouth_distance"] <= 0.05
        assert drink.data.get("max_force", 0.0) < 10.0 and s.safe.interventions["person_force"] == 0
        assert s.assist.held == "cup"
    finally:
        s.close()


def test_wipe_forearm_with_a_light_touch() -> None:
    s = care_session(seed=0, randomize=True, fast_physics=True)
    try:
        s.start_at("bedside")
        result = s.run("wipe", body_part="right_forearm")
        assert result.succeeded, result.reason
        assert result.data["contact_share"] >= 0.5 and result.data["peak_force"] < 10.0
        assert s.safe.interventions["person_force"] == 0
    finally:
        s.close()
