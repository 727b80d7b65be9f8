"""The ``rules`` backend: an offline, deterministic parser of English and Chinese care requests.

Steps: normalize and tokenize (:mod:`~tianji.policies.planner.vocabulary`), split into clauses
at sequence words ("then", "after that", 先/再/然后) and at "and" / commas followed by a verb,
split a clause at each further verb (Chinese serial verbs: 去餐桌拿杯子), read each part's
intent and slots (objects, places, people, body parts, numbers), resolve "it" / "her" to what
was mentioned before, turn intents into the calls they ask for, and let
:func:`~tianji.policies.planner.chain.chain` insert what those calls need first.

It never guesses: a word it does not know, an "it" with nothing before it, or a missing
"which arm" comes back as ``cannot`` or ``clarify`` with the words it did not understand and
what it knows instead. Replanning re-derives the rest of a plan from the observed state, trying
another way to the same spot when a navigation failed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tianji.policies.planner.chain import alternatives, chain, satisfied
from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.parse import (
    CAN_DO,
    DEST,
    GREETINGS,
    OBJECT_INTENTS,
    PERSON_CARRY,
    SPEECH,
    Grammar,
    Slots,
    UnresolvedError,
)
from tianji.policies.planner.plan import Outcome, Plan, PlanError, PlanStep, graspable, initial_state
from tianji.policies.planner.vocabulary import Vocabulary

if TYPE_CHECKING:
    from tianji.policies.planner.backends import ReplanRequest


class RulesPlanner:
    """Deterministic planner over the skill library and the scene's words; see the module doc."""

    name = "rules"
    retries_invalid = False  # its plans are built valid; a validation error means the robot cannot do it

    def __init__(self) -> None:
        self._vocab: dict[tuple, Vocabulary] = {}

    def vocabulary(self, ctx: PlanContext) -> Vocabulary:
        """The vocabulary of the context's WorldState (cached by its names)."""
        ws = ctx.world_state
        key = (tuple(ws.objects), tuple(ws.places), tuple(ws.people))
        if key not in self._vocab:
            self._vocab[key] = Vocabulary(ws, graspable(ws.objects))
        return self._vocab[key]

    def propose(self, instruction: str, ctx: PlanContext, feedback: str | None = None) -> Plan:
        """Parse the instruction into a chained plan, or say why not (clarify / cannot)."""
        t0 = time.perf_counter()
        parser = _Parser(instruction, ctx, self.vocabulary(ctx))
        try:
            goals = parser.goals()
            steps = chain(goals, initial_state(ctx), ctx)
            plan = Plan(instruction, steps, self.name, Outcome.PLAN, notes=parser.notes)
        except UnresolvedError as exc:
            plan = Plan(instruction, [], self.name, exc.outcome, exc.message, notes=parser.notes)
        except PlanError as exc:
            plan = Plan(instruction, [], self.name, Outcome.CANNOT, f"I can't do that: {exc}", notes=parser.notes)
        plan.latency_s = time.perf_counter() - t0
        return plan

    def replan(self, request: ReplanRequest, ctx: PlanContext) -> Plan:
        """The rest of the plan from the observed state: another way past the failed step, then what remains.

        An alternative (approach the person instead of a place next to them, and the reverse) is
        used only when the chained plan does not need a step that already failed; otherwise the
        failed step itself is re-derived, unless it is the first thing to do again.
        """
        failed = PlanStep(request.failed_step.skill, dict(request.failed_step.params))  # the planner's own timeouts
        rest = [s for s in request.remaining if not satisfied(s, request.state)]
        tried = [s.as_dict() for s in request.tried]
        reason = f"{failed} failed ({request.reason})"
        for option in alternatives(failed, ctx):
            try:
                steps = chain([option, *rest], request.state, ctx)
            except PlanError:
                continue
            if not any(s.as_dict() in tried for s in steps):
                return Plan(request.instruction, steps, self.name, notes=[f"{reason}; trying {option} instead"])
        try:
            steps = chain([failed, *rest], request.state, ctx)
        except PlanError as exc:
            return Plan(request.instruction, [], self.name, Outcome.CANNOT, f"cannot go on: {exc}", notes=[reason])
        if steps and steps[0].as_dict() in tried:
            message = f"{reason} twice and I know no other way to do it"
            return Plan(request.instruction, [], self.name, Outcome.CANNOT, message, notes=[reason])
        return Plan(request.instruction, steps, self.name, notes=[f"{reason}; re-deriving the steps it needs"])


class _Parser(Grammar):
    """Slots -> goal calls (the intents), for one instruction."""

    # ------------------------------------------------------------------ goals
    def goals(self) -> list[PlanStep]:
        """The calls the instruction asks for, in order (before chaining)."""
        goals: list[PlanStep] = []
        for clause in self.clauses():
            first = next((t for t in clause if t.kind not in ("filler", "punct")), None)
            if first is not None and first.kind == "neg":
                self.notes.append(f"ignored the negated part: '{self._span(clause)}'")
                continue
            for group in self.groups(clause):
                goals.extend(self.resolve(self.slots(group)))
        if not goals:
            raise UnresolvedError(Outcome.CLARIFY, f"I found nothing to do in '{self.instruction}'. I can: {CAN_DO}.")
        return goals

    def resolve(self, s: Slots) -> list[PlanStep]:
        """One group's calls (see the handlers below)."""
        intent = s.intent
        if intent is None:
            return self._verbless(s)
        if s.unknown and intent not in SPEECH:
            self._unknown(s)
        handler = getattr(self, f"_{intent}")
        return handler(s)

    def _unknown(self, s: Slots) -> None:
        word, prep = s.unknown[0]
        if self._carries_person(s):
            raise UnresolvedError(Outcome.CANNOT, PERSON_CARRY)
        if prep in DEST or (s.intent == "go" and not s.places and not s.people):
            raise UnresolvedError(
                Outcome.CANNOT, f"I don't know the place '{word}'. Places here: {self._listing('place')}."
            )
        if (s.intent in OBJECT_INTENTS or s.intent in ("open", "close")) and not s.objects:
            if s.intent in ("open", "close") and "gripper" not in s.flags:
                raise UnresolvedError(Outcome.CANNOT, f"I can only open or close my gripper, not '{word}'.")
            raise UnresolvedError(
                Outcome.CANNOT, f"I don't know the object '{word}'. Objects here: {self._listing('object')}."
            )
        raise UnresolvedError(Outcome.CANNOT, f"I did not understand '{word}' in '{self._span(s.tokens)}'.")

    def _carries_person(self, s: Slots) -> bool:
        """'lift her', 'take her to the bathroom', 'move the patient': a person where an object should be."""
        if s.intent not in ("pick", "take", "move", "return") or s.objects or s.verb is None:
            return False
        after = [t for t in s.tokens[s.tokens.index(s.verb) + 1 :] if t.kind not in ("filler", "punct")]
        return bool(after) and after[0].kind == "person"

    def _verbless(self, s: Slots) -> list[PlanStep]:
        if s.unknown:
            words = " ".join(w for w, _ in s.unknown)
            raise UnresolvedError(Outcome.CANNOT, f"I don't know how to '{words}'. I can: {CAN_DO}.")
        gives = any(t.kind == "prep" and t.text == "给" for t in s.tokens)
        if gives and s.objects:
            return self._bring(s)
        if s.objects or s.places:
            thing = (s.objects or [p for p, _ in s.places])[0]
            raise UnresolvedError(Outcome.CLARIFY, f"What should I do with '{thing}'? I can: {CAN_DO}.")
        return []  # a situation ("she fell") or politeness: nothing to do

    def _objects(self, s: Slots, verb: str) -> list[str]:
        if s.objects:
            self.last_object = s.objects[-1]
            return list(s.objects)
        if "it" in s.flags:
            if self.last_object is None:
                raise UnresolvedError(
                    Outcome.CLARIFY,
                    f"What does 'it' mean? Tell me the object to {verb}: {self._listing('object')}.",
                )
            return [self.last_object]
        if self.last_object is not None and "vague" not in s.flags:
            return [self.last_object]  # 拿起杯子，然后递给病人: the object is left unsaid
        if self._carries_person(s):
            raise UnresolvedError(Outcome.CANNOT, PERSON_CARRY)
        raise UnresolvedError(Outcome.CLARIFY, f"What should I {verb}? Objects here: {self._listing('object')}.")

    def _person(self, s: Slots, *, recipient_only: bool = False) -> str:
        named = [p for p, recipient in s.people if p and (recipient or not recipient_only)]
        if named:
            self.last_person = named[-1]
            return named[-1]
        if "operator" in s.flags:
            raise UnresolvedError(
                Outcome.CLARIFY, f"I don't know where you are; I can bring things to: {self._listing('person')}."
            )
        if "caregiver" in s.flags:
            raise UnresolvedError(
                Outcome.CANNOT, f"The caregiver is not in the room (people here: {self._listing('person')})."
            )
        people = self.vocab.people
        if len(people) == 1:
            self.last_person = people[0]
            return people[0]
        if self.last_person is not None:
            return self.last_person
        raise UnresolvedError(Outcome.CLARIFY, f"For whom? People here: {self._listing('person')}.")

    def _dest(self, s: Slots) -> str | None:
        for name, role in s.places:
            if role == "dest":
                return name
        plain = [name for name, role in s.places if role == "plain"]
        return plain[0] if plain else None

    # ------------------------------------------------------------------ intents
    def _bring(self, s: Slots) -> list[PlanStep]:
        objects = self._objects(s, "bring")
        if any(p in ("mouth", "嘴", "嘴巴") for p in s.parts):  # "bring the cup to her mouth"
            person = self._person(s)
            return [PlanStep("bring_to_mouth", {"object": o, "person": person}) for o in objects]
        place = self._dest(s)
        if place is not None and not any(r for _, r in s.people):
            return [PlanStep("place", {"object": o, "place": place}) for o in objects]
        person = self._person(s)
        return [PlanStep("hand_over", {"object": o, "person": person}) for o in objects]

    def _get(self, s: Slots) -> list[PlanStep]:
        if any(r for p, r in s.people if p) or (s.people and s.objects) or "operator" in s.flags:
            return self._bring(s)
        if self._dest(s) is not None and any(role == "dest" for _, role in s.places):
            return self._place(s)
        return self._pick(s)

    def _take(self, s: Slots) -> list[PlanStep]:
        return self._get(s)

    def _pick(self, s: Slots) -> list[PlanStep]:
        if any(r for p, r in s.people if p):
            return self._bring(s)
        return [PlanStep("pick", {"object": o}) for o in self._objects(s, "pick up")]

    def _place(self, s: Slots) -> list[PlanStep]:
        if s.dest_objects:
            raise UnresolvedError(
                Outcome.CANNOT,
                f"I can only put things on a surface ({self._surfaces()}), not in or on the {s.dest_objects[0]}.",
            )
        if any(r for p, r in s.people if p) and not s.places:
            return self._bring(s)
        if not s.objects and "it" not in s.flags and self.last_object is None:
            holding = self.ctx.holding
            if holding is None:
                raise UnresolvedError(
                    Outcome.CLARIFY, f"What should I put down? Objects here: {self._listing('object')}."
                )
            s.objects.append(holding)
        objects = self._objects(s, "put") if (s.objects or "it" in s.flags) else [str(self.last_object)]
        place = self._dest(s)
        if place is None and "back" in s.flags:
            place = initial_state(self.ctx).get("on", (objects[0],))
            place = None if place == "none" else place
        if place is None:
            raise UnresolvedError(
                Outcome.CLARIFY, f"Where should I put the {objects[0]}? Surfaces here: {self._surfaces()}."
            )
        return [PlanStep("place", {"object": o, "place": place}) for o in objects]

    def _surfaces(self) -> str:
        ws = self.ctx.world_state
        return ", ".join(n for n, p in ws.places.items() if p.surface_height is not None)

    def _move(self, s: Slots) -> list[PlanStep]:
        return self._place(s) if s.objects or "it" in s.flags else self._go(s)

    def _return(self, s: Slots) -> list[PlanStep]:
        return self._move(s)

    def _go(self, s: Slots) -> list[PlanStep]:
        place = self._dest(s)
        if place is not None:
            return [PlanStep("navigate_to", {"place": place})]
        if s.people:
            return [PlanStep("approach_person", {"person": self._person(s)})]
        if "operator" in s.flags or "vague" in s.flags:
            raise UnresolvedError(Outcome.CLARIFY, f"Where exactly? Tell me a place: {self._listing('place')}.")
        raise UnresolvedError(Outcome.CLARIFY, f"Where should I go? Places here: {self._listing('place')}.")

    def _approach(self, s: Slots) -> list[PlanStep]:
        return [PlanStep("approach_person", {"person": self._person(s)})]

    def _look(self, s: Slots) -> list[PlanStep]:
        if s.objects:
            self.last_object = s.objects[-1]
            return [PlanStep("look_at", {"target": s.objects[-1]})]
        if "it" in s.flags and self.last_object:
            return [PlanStep("look_at", {"target": self.last_object})]
        if s.people or s.parts:
            person = self._person(s)
            part = {"mouth": "mouth", "嘴": "mouth", "嘴巴": "mouth", "chest": "chest", "胸": "chest", "胸口": "chest"}
            suffix = next((part[p] for p in s.parts if p in part), None)
            return [PlanStep("look_at", {"target": f"{person}.{suffix}" if suffix else person})]
        if s.places:
            return [PlanStep("look_at", {"target": s.places[0][0]})]
        raise UnresolvedError(Outcome.CLARIFY, "What should I look at?")

    def _check_on(self, s: Slots) -> list[PlanStep]:
        if s.objects or (s.places and not s.people):
            return self._look(s)
        person = self._person(s)
        return [PlanStep("approach_person", {"person": person}), PlanStep("look_at", {"target": person})]

    def _tail(self, s: Slots) -> str:
        """The words after the verb (and after whom they are said to), as said: the text of say / alert."""
        assert s.verb is not None
        rest = s.tokens[s.tokens.index(s.verb) + 1 :]
        i = 0
        while i < len(rest) and rest[i].kind in ("person", "prep", "filler", "caregiver", "operator", "vague"):
            word = rest[i]
            if word.text in ("that", "know", "说", "to"):
                i += 1
                break
            if word.kind == "person" and i and rest[i - 1].kind == "caregiver":
                break  # "tell the nurse she fell": she is the subject
            i += 1
        rest = rest[i:]
        while rest and rest[-1].kind == "punct":
            rest = rest[:-1]
        if len(rest) > 2 and rest[-1].kind == "person" and rest[-2].text in ("to", "for"):
            rest = rest[:-2]  # "say good night to her"
        text = self.text[rest[0].start : rest[-1].end].strip(" ,.;:") if rest else ""
        if i and rest and s.tokens[s.tokens.index(s.verb) + i].text == "to" and s.intent == "say":
            text = "please " + " ".join({"her": "your", "his": "your"}.get(w, w) for w in text.split())
        return text[:1].upper() + text[1:]

    def _say(self, s: Slots) -> list[PlanStep]:
        if "caregiver" in s.flags:
            return self._alert(s, default_urgency="info")
        assert s.verb is not None
        if s.verb.text in GREETINGS:
            return [PlanStep("say", {"text": "您好！" if self.zh else "Hello!"})]
        text = self._tail(s)
        if not text:
            raise UnresolvedError(Outcome.CLARIFY, "What should I say?")
        return [PlanStep("say", {"text": text})]

    def _remind(self, s: Slots) -> list[PlanStep]:
        text = self._tail(s)
        if not text:
            raise UnresolvedError(Outcome.CLARIFY, "What should I remind her of?")
        if self.zh:
            return [PlanStep("say", {"text": f"提醒您：{text}。"})]
        swapped = " ".join({"her": "your", "his": "your", "she": "you", "he": "you"}.get(w, w) for w in text.split())
        return [PlanStep("say", {"text": f"Reminder: please {swapped[:1].lower() + swapped[1:]}."})]

    def _alert(self, s: Slots, default_urgency: str = "urgent") -> list[PlanStep]:
        urgency = "emergency" if self.urgent else "info" if self.calm else default_urgency
        message = self._tail(s) or f"Please come to the patient's room (operator: '{self.instruction.strip()}')."
        params = {"message": message}
        if urgency != "urgent":
            params["urgency"] = urgency
        return [PlanStep("alert_caregiver", params)]

    def _wait(self, s: Slots) -> list[PlanStep]:
        if not s.numbers and s.unit is None:
            return [PlanStep("wait", {})]
        seconds = (s.numbers[0] if s.numbers else 1.0) * (60.0 if s.unit == "minute" else 1.0)
        return [PlanStep("wait", {"seconds": seconds})]

    def _feed(self, s: Slots) -> list[PlanStep]:
        person = self._person(s)
        obj = "cup" if "cup" in s.objects else "spoon"
        if any(o not in ("cup", "spoon") for o in s.objects):
            self.notes.append(f"feeding with the spoon (the {s.objects[0]} cannot go to the mouth)")
        self.last_object = obj
        return [PlanStep("bring_to_mouth", {"object": obj, "person": person})]

    def _drink(self, s: Slots) -> list[PlanStep]:
        person = self._person(s)
        self.last_object = "cup"
        state = self.ctx.world_state.people.get(person)
        if state is not None and state.posture.upright:
            # bring_to_mouth tips the cup only for someone lying in bed; sitting up, she drinks from it herself
            self.notes.append(f"{person} is {state.posture.value}: handing her the cup to drink from")
            return [PlanStep("hand_over", {"object": "cup", "person": person})]
        return [PlanStep("bring_to_mouth", {"object": "cup", "person": person})]

    def _help(self, s: Slots) -> list[PlanStep]:
        raise UnresolvedError(
            Outcome.CLARIFY,
            "How should I help? For example: bring her water, feed her, help her drink, call the nurse.",
        )

    def _wipe(self, s: Slots) -> list[PlanStep]:
        if s.objects or (s.places and not s.parts):
            raise UnresolvedError(Outcome.CANNOT, "I can only wipe a person's forearms and upper arms.")
        if not s.parts:
            raise UnresolvedError(Outcome.CLARIFY, "What should I wipe: her left or right forearm or upper arm?")
        part = s.parts[0]
        segment = {"upper arm": "upper_arm", "upper arms": "upper_arm", "上臂": "upper_arm"}.get(part)
        if segment is None and part in ("forearm", "forearms", "arm", "arms", "前臂", "手臂", "胳膊"):
            segment = "forearm"
        if segment is None:
            raise UnresolvedError(Outcome.CANNOT, f"I can only wipe the forearms and upper arms, not the {part}.")
        if s.side is None:
            raise UnresolvedError(Outcome.CLARIFY, f"Which {part}: left or right?")
        return [PlanStep("wipe", {"body_part": f"{s.side}_{segment}", "person": self._person(s)})]

    def _open(self, s: Slots) -> list[PlanStep]:
        if (s.objects or s.places) and "gripper" not in s.flags:
            thing = (s.objects or [p for p, _ in s.places])[0]
            raise UnresolvedError(Outcome.CANNOT, f"I can only open or close my gripper, not the {thing}.")
        return [PlanStep("open_gripper", {})]

    def _close(self, s: Slots) -> list[PlanStep]:
        if (s.objects or s.places) and "gripper" not in s.flags:
            thing = (s.objects or [p for p, _ in s.places])[0]
            raise UnresolvedError(Outcome.CANNOT, f"I can only open or close my gripper, not the {thing}.")
        return [PlanStep("close_gripper", {})]

    def _wave(self, s: Slots) -> list[PlanStep]:
        return [PlanStep("wave", {})]

    def _stand(self, s: Slots) -> list[PlanStep]:
        if s.places or s.people:
            return self._go(s)
        return [PlanStep("stand", {})]

    def _exercise(self, s: Slots) -> list[PlanStep]:
        if s.exercise is None and not any(t.kind == "exercise_name" for t in s.tokens):
            raise UnresolvedError(Outcome.CANNOT, f"I don't know how to show that. I can: {CAN_DO}.")
        return [PlanStep("demonstrate_exercise", {"name": s.exercise} if s.exercise else {})]
