"""The rules planner's grammar: clauses, verb groups and slots from the tokens of an instruction.

:class:`Grammar` splits an instruction into clauses at sequence words ("then", "after that",
先/再/然后) and sentence ends, and at "and" / commas followed by a verb; splits a clause at each
further verb (Chinese serial verbs: 去餐桌拿杯子); fixes words whose role depends on context
(possessive "her", "drink" as a noun, "hand" as a verb); and collects each verb group's slots
(objects, places, people, body parts, numbers, words it does not know, with the preposition
before each). :mod:`~tianji.policies.planner.rules` turns slots into skill calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from tianji.policies.planner.context import PlanContext
from tianji.policies.planner.plan import Outcome
from tianji.policies.planner.vocabulary import POSSESSIVES, Token, Vocabulary, is_chinese, normalize

DEST = {
    "to",
    "into",
    "onto",
    "on",
    "at",
    "in",
    "towards",
    "toward",
    "back to",
    "back on",
    "over to",
    "到",
    "在",
    "往",
    "向",
}
RECIPIENT = {"to", "for", "给", "over to", "向", "对"}
SOURCE = {"from", "从"}
DETERMINERS = {"a", "an", "the", "some", "another", "her", "his", "my", "your", "their", "cold", "hot", "warm", "fresh"}
SPEECH = {"say", "remind", "alert"}
CAN_DO = (
    "bring or hand over things, pick up, put down, go to a place or to her, look at, say, remind, alert the"
    " caregiver, wait, feed her, help her drink, wipe an arm, open or close the gripper"
)
OBJECT_INTENTS = {"bring", "get", "take", "pick", "place", "move", "return"}
PERSON_CARRY = "I can't lift, carry or move a person. I can alert a caregiver to help."
GREETINGS = {"greet", "say hello", "打招呼", "问好"}
EXERCISES = {"arm raise": "arm_raise", "arm raises": "arm_raise", "举臂": "arm_raise", "lateral raise": "lateral_raise"}


class UnresolvedError(Exception):
    """The instruction cannot become a plan: ``outcome`` (clarify / cannot) and the words for the operator."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.message = message


@dataclass
class Slots:
    """What one verb's part of a clause mentions."""

    verb: Token | None = None
    tokens: list[Token] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    dest_objects: list[str] = field(default_factory=list)
    people: list[tuple[str | None, bool]] = field(default_factory=list)  # (name or None for a pronoun, recipient)
    places: list[tuple[str, str]] = field(default_factory=list)  # (name, "dest" | "source" | "plain")
    flags: set[str] = field(default_factory=set)  # operator, caregiver, it, vague, gripper, back, urgent, calm
    parts: list[str] = field(default_factory=list)
    side: str | None = None
    numbers: list[float] = field(default_factory=list)
    unit: str | None = None
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (word, preposition before it)
    exercise: str | None = None

    @property
    def intent(self) -> str | None:
        return None if self.verb is None else str(self.verb.value)


class Grammar:
    """One instruction's tokens, clauses, verb groups and slots; subclasses turn slots into calls."""

    def __init__(self, instruction: str, ctx: PlanContext, vocab: Vocabulary) -> None:
        self.instruction = instruction
        self.text = normalize(instruction)
        self.ctx = ctx
        self.vocab = vocab
        self.zh = is_chinese(self.text)
        self.tokens = self._fix(vocab.tokenize(self.text))
        self.notes: list[str] = []
        self.last_object: str | None = None
        self.last_person: str | None = None
        self.urgent = any(t.kind == "urgent" for t in self.tokens)
        self.calm = any(t.kind == "calm" for t in self.tokens)

    # ------------------------------------------------------------------ tokens
    def _fix(self, tokens: list[Token]) -> list[Token]:
        """Context fixes: possessive 'her', 'drink' as a noun, 'hand' / 'face' as verbs."""
        out: list[Token] = []
        for i, t in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            prev = out[-1] if out else None
            owner = prev is not None and (prev.text in POSSESSIVES or prev.kind == "side" or prev.text == "the")
            giving = prev is not None and prev.kind == "verb" and prev.value in ("bring", "get", "take")
            if t.kind == "person" and t.value is None and t.text in POSSESSIVES and nxt is not None and not giving:
                if nxt.kind in ("object", "part", "place", "unknown", "exercise_name", "gripper", "caregiver"):
                    t = replace(t, kind="filler")  # "her water": whose, not to whom ("get her water": to whom)
            elif t.kind == "verb" and t.text in ("drink", "sip") and prev is not None:
                helped = len(out) > 1 and out[-2].kind == "verb" and out[-2].value == "help"  # "help her drink"
                if (prev.text in DETERMINERS or prev.text == "of") and "cup" in self.vocab.objects and not helped:
                    t = replace(t, kind="object", value="cup")
            elif t.kind == "part" and t.text in ("hand", "face") and not owner:
                t = replace(t, kind="verb", value="bring" if t.text == "hand" else "look")
            out.append(t)
        return out

    def clauses(self) -> list[list[Token]]:
        """Split at sequence words and sentence ends, and at 'and' / commas followed by a verb."""
        out: list[list[Token]] = [[]]
        for i, t in enumerate(self.tokens):
            if t.kind == "seq" or (t.kind == "punct" and t.text in ".;!?"):
                out.append([])
                continue
            if t.kind == "and" or (t.kind == "punct" and t.text in ",:"):
                nxt = next((u for u in self.tokens[i + 1 :] if u.kind not in ("filler", "punct")), None)
                speaking = any(u.kind == "verb" and u.value in SPEECH for u in out[-1])
                if nxt is None or nxt.kind in ("verb", "seq", "neg"):
                    out.append([])
                elif speaking:
                    out[-1].append(t)
                continue
            out[-1].append(t)
        return [c for c in out if c]

    def groups(self, clause: list[Token]) -> list[list[Token]]:
        """One group per verb (a serial verb starts a new group); speech verbs keep the rest of the clause."""
        groups: list[list[Token]] = [[]]
        verb: Token | None = None
        for j, t in enumerate(clause):
            if t.kind == "verb" and verb is not None and verb.value not in SPEECH:
                prev = clause[j - 1]
                purpose = (prev.text == "to" and verb.value != "help") or (
                    self.zh and prev.kind == "person" and verb.value in ("bring", "get", "take", "pick")
                )
                if purpose or t.value == verb.value:  # "bring her water to drink", 拿水给她喝, 喂她吃饭
                    continue
                if verb.value == "help" or (verb.value == "go" and not _has_target(groups[-1])):
                    groups[-1].remove(verb)  # "help her drink", "go get the cup": the first verb is implied
                    if verb.value == "go" and t.value == "look":
                        t = replace(t, value="check_on")  # 去看看病人, "go see her"
                else:
                    groups.append([])
                verb = t
            elif t.kind == "verb" and verb is None:
                verb = t
            groups[-1].append(t)
        return [g for g in groups if g]

    def slots(self, group: list[Token]) -> Slots:
        """Collect the group's mentions, with the preposition before each."""
        s = Slots(tokens=group)
        prep = ""
        for j, t in enumerate(group):
            nxt = group[j + 1] if j + 1 < len(group) else None
            if t.kind == "verb" and s.verb is None:
                s.verb = t
            elif t.kind == "prep":
                prep = t.text
                continue
            elif t.kind == "object":
                dest = prep in DEST and s.intent in ("place", "move", "take", "return")
                target = s.dest_objects if dest else s.objects
                if not target or target[-1] != t.value:
                    target.append(str(t.value))
            elif t.kind == "person":
                name = t.value or self._pronoun(t.text)
                s.people.append((name, prep in RECIPIENT))
            elif t.kind == "place":
                post = nxt is not None and nxt.kind == "prep" and nxt.text in ("上", "里")
                role = "source" if prep in SOURCE else "dest" if prep in DEST or post else "plain"
                s.places.append((str(t.value), role))
            elif t.kind in ("operator", "caregiver", "it", "vague", "gripper", "urgent", "calm"):
                s.flags.add(t.kind)
            elif t.kind == "part":
                s.parts.append(t.text)
            elif t.kind == "side":
                s.side = "left" if t.text.startswith(("left", "左")) else "right"
            elif t.kind == "number":
                s.numbers.append(float(t.value))
            elif t.kind == "unit":
                s.unit = "minute" if t.text.startswith(("min", "分")) else "second"
            elif t.kind == "exercise_name":
                s.exercise = EXERCISES.get(t.text, s.exercise)
            elif t.kind == "unknown":
                s.unknown.append((t.text, prep))
            elif t.kind == "filler" and t.text in ("back",):
                s.flags.add("back")
            if t.kind not in ("filler",):
                prep = ""
        if any(t.text in ("put back", "放回", "bring back") or t.value == "return" for t in group):
            s.flags.add("back")
        return s

    def _pronoun(self, word: str) -> str:
        people = self.vocab.people
        if len(people) == 1:
            return people[0]
        if self.last_person is not None:
            return self.last_person
        raise UnresolvedError(
            Outcome.CLARIFY, f"Who do you mean by '{word}'? People here: {', '.join(people) or 'none'}."
        )

    def _span(self, tokens: list[Token]) -> str:
        return self.text[tokens[0].start : tokens[-1].end] if tokens else ""

    def _listing(self, kind: str) -> str:
        return ", ".join(self.vocab.words_for(kind)) or "none"


def _has_target(group: list[Token]) -> bool:
    return any(t.kind in ("place", "person") for t in group)
