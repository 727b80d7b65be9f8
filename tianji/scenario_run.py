"""Run a care scenario end to end: room, patient, perception, planner, executor, events, video and verdict.

:class:`ScenarioRun` wires the layers the way a deployment does. The room, the patient, the
scripted falls and the ground truth are the scenario's stage (:class:`~tianji.scenario_stage.ScenarioStage`:
the care room with the patient held where she settled, the robot wired for skills; 120 Hz
physics, 240 Hz with the G1), in this process, or served by ``tianji bridge serve --robot
scenario:NAME`` and reached with ``robot="tcp://HOST:PORT"`` (:class:`~tianji.remote.RemoteStage`;
the skills then run in real time through the bridge, as on hardware). Skills get their
world state from perception on the robot's head camera (or, in-process, from the simulator's
ground truth with ``oracle=True``). The operator's instruction goes to the planner (or the
scenario's fixed plan through the same validation and safety policy) and the plan to the
executor. After a fall the robot watches until perception reports it, then plans the scenario's
``on_fall`` response. Two and a half times a simulated second a video frame is composed: the
room camera beside the head camera with perception's overlays. The success criteria are judged
on the stage's ground truth (force on the patient, where the robot stands), whatever the robot believed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from tianji.control.errors import TianjiError
from tianji.scenario import NEAR_DISTANCE, Scenario
from tianji.scenario_stage import PATIENT, ROOM_SIZE

VIDEO_FPS = 2.5  # frames per simulated second (a render of the room costs about 0.1 s on 2 cores)
PERCEPTION_PERIOD = 0.4  # s of robot time between head-camera frames for perception
PERSON_MEMORY = 600.0  # s a person stays in the world state unseen (perception's default is 30 s)
WATCH_CHUNK = 0.5  # s of waiting between checks while watching for a fall


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
    robot: str = "sim"  # "sim" (in-process) or the bridge endpoint the scenario was served at
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
    """One run of a scenario (module doc). ``on_update(state)`` gets a dict for a live display a few times a second.

    ``robot``: ``"sim"`` (the stage in this process) or ``"tcp://HOST:PORT"`` (a stage served by
    ``tianji bridge serve --robot scenario:NAME?seed=S``; ``seed`` None takes the server's).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int | None = 0,
        robot: str = "sim",
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
        from tianji.remote import check_robot_option, is_remote

        check_robot_option(robot)
        self.remote = robot if is_remote(robot) else None
        if self.remote and oracle:
            raise TianjiError(
                "--oracle reads the simulator's ground truth for the skills, which a robot served over the bridge does"
                " not give (skills see what its camera sees): drop --oracle, or run in-process with --robot sim"
            )
        if self.remote and gui:
            raise TianjiError(
                "--gui opens the simulator's window in this process, but the scenario runs in the bridge server:"
                " drop --gui (the server's simulator runs headless)"
            )
        self.s = scenario
        self.seed = 0 if seed is None and not self.remote else seed
        self.planner_name = planner
        self.planner_config = planner_config or {}
        self.instruction = instruction
        self.oracle = oracle
        self.gui = gui
        self.out_dir = out_dir
        self.video = video and out_dir is not None
        self.confirm = confirm  # scenario files are the operator's own: risky plans run (and are reported)
        self.on_update = on_update
        source = "ground truth" if oracle else "perception"
        self.outcome = ScenarioOutcome(
            scenario.name, -1 if self.seed is None else self.seed, "failed", "not run", source, robot=robot
        )
        self._status = "starting"
        self._current: StepRecord | None = None
        self._last_update = 0.0
        self._tick = 0
        self._fell_at: float | None = None
        self._last_frame: np.ndarray | None = None
        self.stage: Any = None  # ScenarioStage, or RemoteStage through the bridge

    # ------------------------------------------------------------ set-up
    def _build(self) -> None:
        if self.remote is None:
            from tianji.scenario_stage import ScenarioStage

            self.stage = ScenarioStage(self.s, seed=int(self.seed or 0), gui=self.gui)
            self.session = self.stage.session
            self.stage.start()
            return
        from tianji.remote import RemoteStage, remote_session

        self.session = remote_session(self.remote, scene=self.s.scene)
        try:
            self.stage = RemoteStage(self.session.robot, self.s, seed=self.seed)
        except BaseException:
            self.session.close()
            raise
        self.seed = self.outcome.seed = self.stage.seed

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
        if self.remote is None:  # lockstep with the simulation, as fast as it goes
            runner = SkillRunner(session.safe, world_state, stepper=session.world.step, callback=self._on_tick)
        else:  # the server steps the simulation on its own clock
            runner = SkillRunner(session.safe, world_state, realtime=True, callback=self._on_tick)
        self.view = SimpleNamespace(  # what the executor drives: the session with this world-state source
            runner=runner, context=session.context, safe=session.safe, world_state=world_state, robot=session.robot
        )
        self.recorder = None
        if self.video:
            from tianji.sim.video import VideoRecorder

            self.recorder = VideoRecorder(self.out_dir / "video.mp4", fps=VIDEO_FPS)  # type: ignore[operator]
        self.every = max(1, round(session.robot.spec.control_rate / VIDEO_FPS))

    # -------------------------------------------------------------- ticks
    @property
    def now(self) -> float:
        """Simulated seconds since the scenario started."""
        return self.stage.now if self.stage is not None else 0.0

    def _on_tick(self, tick: int, obs: Any, command: Any) -> None:
        self._tick += 1
        self.stage.tick()  # the force on the patient; in-process also the scripted falls
        self.outcome.max_force = self.stage.max_force
        if self._fell_at is None and self.stage.fell_at is not None:
            self._fell_at = self.stage.fell_at
            self.outcome.marks.append((self._fell_at, "the patient falls"))
            self._status = "the patient fell"
        if self.recorder is not None and self._tick % self.every == 0:
            self._last_frame = self._frame()
            self.recorder.add(self._last_frame)
        self._update()

    def _frame(self) -> np.ndarray:
        """Room camera | head camera with perception's overlays, and a caption line."""
        room = self.stage.room_image()
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
        return self.session.robot.observe(("head",)).cameras["head"].rgb

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
            if self.stage is not None:
                self.outcome.forces = list(self.stage.forces)
                self.outcome.max_force = self.stage.max_force
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
        return self.stage.distance_to(person)
