"""Run a care scenario end to end: room, patient, perception, planner, executor, events, video and verdict.

:class:`ScenarioRun` wires the layers the way a deployment does. The care room is loaded with
the scenario's patient (held where it settled, see :mod:`tianji.sim.patient`) and the robot
wired for skills (:func:`tianji.cli_skills.care_session`; 120 Hz physics, 240 Hz with the G1). Skills get their
world state from perception on the robot's head camera (or from the simulator's ground truth
with ``oracle=True``). The operator's instruction goes to the planner (or the scenario's fixed
plan through the same validation and safety policy) and the plan to the executor. Scripted
falls happen at their time; after a fall the robot watches until perception reports it, then
plans the scenario's ``on_fall`` response. Every control tick tracks the force on the patient;
two and a half times a simulated second a video frame is composed: the room camera beside the head
camera with perception's overlays. The success criteria are judged by the simulator (ground
truth), whatever the robot believed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from tianji.scenario import NEAR_DISTANCE, Scenario

VIDEO_FPS = 2.5  # frames per simulated second (a render of the room costs about 0.1 s on 2 cores)
PERCEPTION_PERIOD = 0.4  # s of robot time between head-camera frames for perception
PERSON_MEMORY = 600.0  # s a person stays in the world state unseen (perception's default is 30 s)
ROOM_SIZE = (480, 360)  # room camera video size (w, h)
WATCH_CHUNK = 0.5  # s of waiting between checks while watching for a fall
PATIENT = "patient"


@dataclass
class StepRecord:
    """One executed skill: what, when (simulated s from the start) and how it ended."""

    skill: str
    params: dict[str, Any]
    start: float
    end: float | None = None
    status: str = "running"
    reason: str = ""


@dataclass
class ScenarioOutcome:
    """How a scenario run ended and what it measured; ``files`` maps video/report/trace/timeline to paths."""

    scenario: str
    seed: int
    status: str  # succeeded | failed | refused
    reason: str
    source: str  # "perception" or "ground truth": where the skills' world state came from
    instructions: list[str] = field(default_factory=list)
    plans: list[Any] = field(default_factory=list)  # Plan objects
    runs: list[Any] = field(default_factory=list)  # executor RunResults
    steps: list[StepRecord] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # say / alert
    marks: list[tuple[float, str]] = field(default_factory=list)  # (sim s, what): falls, detections
    forces: list[tuple[float, float]] = field(default_factory=list)  # (sim s, N), sampled
    max_force: float = 0.0
    interventions: dict[str, int] = field(default_factory=dict)
    fall_detected_after: float | None = None
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        """True when every success criterion held."""
        return self.status == "succeeded"


class ScenarioRun:
    """One run of a scenario (module doc). ``on_update(state)`` gets a dict for a live display a few times a second."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int = 0,
        planner: str | None = None,
        planner_config: dict[str, Any] | None = None,
        instruction: str | None = None,
        oracle: bool = False,
        gui: bool = False,
        out_dir: Path | None = None,
        video: bool = True,
        confirm: bool = True,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.s = scenario
        self.seed = seed
        self.planner_name = planner
        self.planner_config = planner_config or {}
        self.instruction = instruction
        self.oracle = oracle
        self.gui = gui
        self.out_dir = out_dir
        self.video = video and out_dir is not None
        self.confirm = confirm  # scenario files are the operator's own: risky plans run (and are reported)
        self.on_update = on_update
        self.outcome = ScenarioOutcome(
            scenario.name, seed, "failed", "not run", "ground truth" if oracle else "perception"
        )
        self._status = "starting"
        self._current: StepRecord | None = None
        self._last_update = 0.0
        self._tick = 0
        self._falls = list(scenario.falls)
        self._fell_at: float | None = None
        self._last_frame: np.ndarray | None = None

    # ------------------------------------------------------------ set-up
    def _build(self) -> None:
        from tianji.cli_skills import care_room_config, care_session
        from tianji.sim import patient as patient_body

        s = self.s
        keep = ("tiago", PATIENT, "g1") if s.robot == "g1" else ("tiago", PATIENT)
        config = care_room_config(s.robot, keep)
        entry = config["robots"][PATIENT]
        entry.update({k: v for k, v in s.patient.items() if k in ("preset", "position", "yaw")})
        pin: dict[str, int] = {}

        def hold_patient(scene: Any) -> None:
            pin["cid"] = patient_body.pin(scene.world, scene.robots[PATIENT])

        self.session = care_session(
            s.robot,
            seed=self.seed,
            randomize=s.randomize,
            gui=self.gui,
            config=config,
            fast_physics=s.robot != "g1",  # the standing humanoid needs the full 240 Hz
            after_build=hold_patient,
        )
        self.pin = pin["cid"]
        self.world = self.session.world
        self.patient = self.session.scene.robots[PATIENT]
        if s.start is not None:
            self.session.start_at(s.start)
        if s.holding:
            self.session.give(s.holding)
        self.t0 = self.world.time

    def _wire(self) -> None:
        from tianji.control.skills import SkillRunner
        from tianji.perception.source import PerceivedWorld

        session = self.session
        self.perceived = (
            None if self.oracle else PerceivedWorld(session.robot, self.s.scene, "head", period=PERCEPTION_PERIOD)
        )
        if self.perceived is not None:  # the patient stays in the room while the robot looks elsewhere for minutes
            self.perceived.builder.person_timeout = PERSON_MEMORY
        world_state = session.world_state if self.perceived is None else self.perceived
        runner = SkillRunner(session.safe, world_state, stepper=self.world.step, callback=self._on_tick)
        self.view = SimpleNamespace(  # what the executor drives: the session with this world-state source
            runner=runner, context=session.context, safe=session.safe, world_state=world_state, robot=session.robot
        )
        self.recorder = None
        if self.video:
            from tianji.sim.video import VideoRecorder

            self.recorder = VideoRecorder(self.out_dir / "video.mp4", fps=VIDEO_FPS)  # type: ignore[operator]
            cam = session.scene.camera("room")
            self.room_pose = cam.pose
            self.room_intr = dataclasses.replace(cam.intrinsics, width=ROOM_SIZE[0], height=ROOM_SIZE[1])
        self.every = max(1, round(self.world.control_rate / VIDEO_FPS))

    # -------------------------------------------------------------- ticks
    @property
    def now(self) -> float:
        """Simulated seconds since the scenario started."""
        return self.world.time - self.t0

    def _on_tick(self, tick: int, obs: Any, command: Any) -> None:
        self._tick += 1
        force = float(self.session.context.contact_force() or 0.0) if self.session.context.contact_force else 0.0
        self.outcome.max_force = max(self.outcome.max_force, force)
        if self._tick % 6 == 0 or force > 0:
            self.outcome.forces.append((self.now, force))
        while self._falls and self.now >= self._falls[0].at:
            self._do_fall(self._falls.pop(0).direction)
        if self.recorder is not None and self._tick % self.every == 0:
            self._last_frame = self._frame()
            self.recorder.add(self._last_frame)
        self._update()

    def _do_fall(self, direction: float) -> None:
        from tianji.sim import patient as patient_body

        patient_body.fall(self.world, self.patient, direction, self.pin)
        self._fell_at = self.now
        self.outcome.marks.append((self.now, "the patient falls"))
        self._status = "the patient fell"

    def _frame(self) -> np.ndarray:
        """Room camera | head camera with perception's overlays, and a caption line."""
        from tianji.sim.camera import render

        room = render(self.world.client, self.room_intr, self.room_pose, segmentation=False).rgb
        room = cv2.resize(room, ROOM_SIZE) if room.shape[1] != ROOM_SIZE[0] else room
        head = self._head_image()
        head = cv2.resize(head, (round(head.shape[1] * ROOM_SIZE[1] / head.shape[0]), ROOM_SIZE[1]))
        frame = np.concatenate([room, head], axis=1)
        bar = np.full((40, frame.shape[1], 3), 30, np.uint8)  # 400 px high: a multiple of 8
        step = self._current.skill if self._current else self._status
        text = f"{self.s.title} | t = {self.now:5.1f} s | {step} | max force {self.outcome.max_force:4.1f} N"
        cv2.putText(bar, text, (8, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        return np.concatenate([frame, bar], axis=0)

    def _head_image(self) -> np.ndarray:
        if self.perceived is not None and self.perceived.last_frame is not None:
            from tianji.perception.annotate import annotate

            return annotate(self.perceived.last_frame, self.perceived.last_result, scale=1)
        return self.session.robot.camera("head").rgb

    def _update(self, force: bool = False) -> None:
        if self.on_update is None:
            return
        wall = time.perf_counter()
        if not force and wall - self._last_update < 0.25:
            return
        self._last_update = wall
        self.on_update(
            {
                "status": self._status,
                "sim": self.now,
                "steps": list(self.outcome.steps),
                "max_force": self.outcome.max_force,
                "interventions": sum(self.session.safe.interventions.values()),
            }
        )

    def _on_event(self, event: dict[str, Any]) -> None:
        """Executor trace events: keep the step list for the live display and the report."""
        kind = event.get("event")
        if kind == "step_start":
            self._current = StepRecord(str(event.get("skill")), dict(event.get("params") or {}), self.now)
            self.outcome.steps.append(self._current)
            self._status = f"running {self._current.skill}"
        elif kind == "step_end" and self._current is not None:
            if self._last_frame is not None:  # the poster frame: how the last step to end left the scene
                import imageio.v2 as imageio

                self.outcome.files["frame"] = self.out_dir / "frame.png"  # type: ignore[operator]
                imageio.imwrite(self.outcome.files["frame"], self._last_frame)
            self._current.end = self.now
            self._current.status = str(event.get("status", "done"))
            self._current.reason = str(event.get("reason", ""))
            self._current = None
        self._update(force=True)

    # ------------------------------------------------------------- phases
    def run(self) -> ScenarioOutcome:
        """Run the scenario to its end; always closes the room and writes what it has."""
        wall0 = time.perf_counter()
        self._build()
        try:
            self._wire()
            self._run()
        finally:
            self.outcome.sim_seconds = self.now
            self.outcome.wall_seconds = time.perf_counter() - wall0
            if self.recorder is not None:
                self.outcome.files["video"] = self.recorder.close()
            self.session.close()
        return self.outcome

    def _run(self) -> None:
        from tianji.policies.planner import Executor, TraceWriter, load_config, make_planner

        s = self.s
        config = {**load_config(None), **self.planner_config}
        self.planner = make_planner(self.planner_name or config.get("planner") or "rules", config)
        trace_path = self.out_dir / "trace.jsonl" if self.out_dir is not None else None
        self.trace = TraceWriter(trace_path)
        self.executor = Executor(self.view, self.planner, trace=self.trace, on_event=self._on_event)
        if trace_path is not None:
            self.outcome.files["trace"] = trace_path
        self._status = "looking around"
        self._perceive_briefly()
        first = self.instruction or s.instruction
        if (first is not None or s.plan is not None) and not self._execute(first):
            return self._judge()
        if s.falls or s.on_fall:
            if not self._watch_for_fall():
                return self._judge()
            if s.on_fall and not self._execute(s.on_fall):
                return self._judge()
        self._status = "done"
        return self._judge()

    def _context(self) -> Any:
        from tianji.policies.planner import PlanContext

        return PlanContext.from_session(self.view, time=self.s.clock, scene=self.s.scene, robot=self.s.robot)

    def _perceive_briefly(self) -> None:
        """Look over the room so perception has seen the patient and the objects before planning.

        The bed and the dining table; when the scenario watches someone who may be anywhere, the middle
        of the room first."""
        from tianji.remote import look_around

        places = ("room_center", "bedside", "dining_table") if self.s.watch else ("bedside", "dining_table")
        look_around(self.view, places)

    def _run_skill(self, name: str, params: dict[str, Any]) -> Any:
        from tianji.control.skills import make_skill

        return self.view.runner.run(make_skill(name, params, self.session.context))

    def _execute(self, instruction: str | None) -> bool:
        """Plan (or take the fixed plan), run it; False when the scenario cannot go on."""
        from tianji.policies.planner import Outcome, Plan, PlanError, PlanStep, validate

        ctx = self._context()
        if instruction is not None:
            self._status = "planning"
            self._update(force=True)
            plan = self.planner.plan(instruction, ctx)
        else:
            steps = [PlanStep(p["skill"], dict(p["params"])) for p in self.s.plan or []]
            instruction = f"(fixed plan of {self.s.name})"
            plan = Plan(instruction, steps, "scenario")
            try:
                validate(plan, ctx)
            except PlanError as exc:
                plan = Plan(instruction, [], "scenario", Outcome.CANNOT, f"the scenario's plan is invalid: {exc}")
            else:
                verdict = self.planner.policy.check_plan(plan, ctx)
                if verdict.decision == "refuse":
                    plan = Plan(instruction, [], "scenario", Outcome.REFUSE, verdict.reason, verdict.category)
        self.outcome.instructions.append(instruction)
        self.outcome.plans.append(plan)
        self._status = f"plan: {plan.outcome}"
        self._update(force=True)
        run = self.executor.run(plan, ctx, confirmed=self.confirm)
        self.outcome.runs.append(run)
        self.outcome.events.extend(run.events)
        for reason, count in run.interventions.items():
            self.outcome.interventions[reason] = self.outcome.interventions.get(reason, 0) + count
        return run.succeeded

    def _watch_for_fall(self) -> bool:
        """Watch the patient until perception (or the oracle) reports a fall; False at the time limit."""
        from tianji.control.world_state import Posture

        if self.s.watch:
            seen = self.s.watch in self.view.world_state().people
            self._run_skill("look_at", {"target": self.s.watch if seen else "room_center"})
        self._status = "watching the patient"
        while self.now < self.s.time_limit:
            self._run_skill("wait", {"seconds": WATCH_CHUNK})
            if self._fell_at is None:
                continue
            if self.perceived is not None:
                seen = bool(self.perceived.builder.events)
            else:
                person = self.view.world_state().people.get(PATIENT)
                seen = person is not None and person.posture is Posture.FALLEN
            if seen:
                self.outcome.fall_detected_after = self.now - self._fell_at
                self.outcome.marks.append((self.now, "fall detected"))
                self._status = "fall detected"
                return True
        return False

    # -------------------------------------------------------------- verdict
    def _judge(self) -> None:
        """Check the success criteria against the simulator's ground truth and the runs."""
        o, want = self.outcome, self.s.success
        checks: list[tuple[str, bool, str]] = []
        refused = any(str(p.outcome) == "refuse" for p in o.plans)
        if want.get("refused"):
            checks.append(("the instruction was refused", refused, self._refusal_text() or "it was not refused"))
        elif refused:
            checks.append(("the plan was not refused", False, self._refusal_text()))
        if want.get("completed", True) and not want.get("refused"):
            done = bool(o.runs) and all(r.succeeded for r in o.runs)
            last = o.runs[-1] if o.runs else None
            detail = "every step succeeded" if done else (last.reason if last else "nothing was run")
            checks.append(("the plan completed", done, detail))
        limit = float(want.get("max_patient_force", 10.0))
        checks.append((f"force on the patient <= {limit:g} N", o.max_force <= limit, f"largest {o.max_force:.1f} N"))
        if "fall_detected_within" in want:
            bound, after = float(want["fall_detected_within"]), o.fall_detected_after
            ok = after is not None and after <= bound
            detail = "never" if after is None else f"{after:.1f} s after the fall"
            checks.append((f"fall detected within {bound:g} s", ok, detail))
        for kind, key, label in (("alert", "alert", "caregiver alerted"), ("say", "said", "the robot spoke")):
            if want.get(key):
                said = [e["message"] for e in o.events if e.get("kind") == kind]
                checks.append((label, bool(said), "; ".join(said) or "no such event"))
        if "near" in want:
            d = self._distance_to(str(want["near"]))
            checks.append((f"robot within {NEAR_DISTANCE:g} m of {want['near']}", d <= NEAR_DISTANCE, f"{d:.2f} m"))
        if o.sim_seconds > self.s.time_limit or self.now > self.s.time_limit:
            checks.append((f"within {self.s.time_limit:g} s", False, f"took {self.now:.1f} s"))
        o.checks = checks
        failed = [c for c in checks if not c[1]]
        if refused and not want.get("refused"):
            o.status, o.reason = "refused", self._refusal_text()
        elif failed:
            o.status, o.reason = "failed", "; ".join(f"{name}: {detail}" for name, _, detail in failed)
        else:
            o.status, o.reason = "succeeded", "every success criterion held"

    def _refusal_text(self) -> str:
        return next((p.message for p in self.outcome.plans if str(p.outcome) == "refuse"), "")

    def _distance_to(self, person: str) -> float:
        """Horizontal distance (m) from the robot's base to the person's chest, ground truth."""
        robot = self.session.robot.observe().base_pose[:2]
        body = self.session.scene.robots[person]
        chest = body.link_pose("middle_thorax")[:2]
        return float(math.hypot(*(np.asarray(robot, dtype=float) - np.asarray(chest, dtype=float))))
