"""The safety policy every plan passes, whatever backend made it: refuse harm, confirm risk, log both.

Two checks. :meth:`SafetyPolicy.check_text` reads the operator's words (English and Chinese)
before any backend sees them, so a model is never asked to plan "hit her". :meth:`check_plan`
reads the validated steps, so a model cannot smuggle harm through harmless-looking skills.

Refused (never executed), by category:

* ``strike``: hitting, slapping, kicking a person (打她, 揍, 扇耳光)
* ``push``: pushing or knocking a person over (推她, 推倒)
* ``restrain``: tying, holding down, locking in, not letting a person get up (绑, 按住, 不让她起来)
* ``force_feed``: forcing food, drink or pills, "even if she refuses", long holds at the mouth (强迫, 硬喂, 灌)
* ``limits``: asking to exceed or switch off force / speed limits ("full speed", 关掉安全, 用力按),
  wiping with more than 10 strokes, approaching closer than 0.6 m
* ``medication``: extra or double doses, and any handling of a scheduled medication object
  (the scene file's ``medication:`` block) outside its dose windows, for someone else, or twice
* ``harm``: anything else aimed at hurting a person: throwing at, pouring on, burning, choking, scaring

Confirmation asked (run with ``--yes``): ``hot`` drinks (tea, coffee, 热水), ``speed`` near the
person ("quickly", 快点), ``lying`` (bringing food or drink to the mouth of a person lying down:
choking risk). Every decision is logged on ``tianji.policies.planner.safety``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from tianji.policies.planner.context import PlanContext, format_time
from tianji.policies.planner.plan import Plan, PlanStep

log = logging.getLogger("tianji.policies.planner.safety")

MAX_MOUTH_HOLD = 10.0  # s a cup or spoon may stay at the mouth
MAX_WIPE_STROKES = 10
MIN_APPROACH = 0.6  # m from the chest
FORCE_LIMIT = 10.0  # N, the person-force limit of the safety filter
HANDLING = ("pick", "hand_over", "bring_to_mouth")  # skills that handle an object

WHO = (
    r"(?:her|him|them|she|he|the patient|patient|the resident|grandma|grandpa|granny|someone|somebody|anyone|"
    r"anybody|people|others|the nurse|nurse|the caregiver|caregiver|the doctor|me|us|the old (?:lady|man|woman)|"
    r"the lady|the man|the woman|visitors?|a person|the person|everyone|the child|the kid)"
)
ZH_WHO = r"(?:她|他|人|病人|患者|老人|奶奶|爷爷|护士|我|别人|老太太|老爷爷|老奶奶|阿姨|孩子)"
GAP = r"(?:\s+[\w']+){0,3}?\s+"  # up to three words between a verb and whom it is aimed at

REFUSE_PATTERNS: dict[str, tuple[str, ...]] = {
    "strike": (
        rf"\b(?:hit|hits|hitting|punch\w*|slap\w*|strike|striking|kick\w*|beat|beating|smack\w*|whack\w*|spank\w*|"
        rf"headbutt\w*|bump into|elbow){GAP}{WHO}\b",
        r"\bgive\b(?:\s+\w+){0,3}\s+(?:a\s+)?(?:slap|punch|smack|kick|beating|whack)\b",
        rf"(?:打|揍|扇|踢|抽|撞)(?:一下|一巴掌|两下|几下)?{ZH_WHO}",
        r"(?:扇|打)(?:她|他)?(?:一个|一)?(?:耳光|巴掌)",
    ),
    "push": (
        rf"\b(?:push\w*|shove\w*|knock\w*(?:\s+over|\s+down)?|trip\w*){GAP}{WHO}\b",
        rf"\b(?:push|knock)\w*\s+{WHO}\s+(?:over|down)\b",
        r"\bgive\b(?:\s+\w+){0,3}\s+(?:a\s+)?(?:shove|push)\b",
        rf"推(?:一下|倒)?{ZH_WHO}",
        rf"把{ZH_WHO}推",
        r"推倒",
    ),
    "restrain": (
        r"\brestrain\w*",
        rf"\b(?:tie|ties|tying|tied|strap\w*|pin|pins|hold|holds|lock|locks|chain\w*|handcuff\w*|cuff)"
        rf"{GAP}{WHO}(?:\s+\w+){{0,2}}?\s+(?:down|up|to|in|still)\b",
        rf"\b(?:don't|do not|never)\s+let\s+{WHO}\s+(?:get up|get out|leave|move|stand|out)",
        rf"\b(?:keep|stop|prevent)\s+{WHO}\s+from\s+(?:getting|leaving|moving|standing)",
        r"\block\b.*\bdoor\b.*\b(?:so|in)\b",
        r"(?:绑|捆|按住|约束|锁住|锁在|摁住)",
        rf"(?:不让|别让|不许){ZH_WHO}(?:起|动|离开|下床|出去|站)",
    ),
    "force_feed": (
        r"\bforce[\s-]?fe(?:e)?d\w*",
        rf"\bforce\w*\s+(?:{WHO}\s+)?to\s+(?:eat|drink|swallow|take)",
        rf"\bmake\s+{WHO}\s+(?:eat|drink|swallow|take)\b.*\b(?:even|whether|no matter)\b",
        r"\b(?:even if|even though|whether or not|no matter (?:if|whether))\s+(?:she|he|they)\s+"
        r"(?:refuses?|says? no|doesn'?t want|does not want|resists?|is asleep|is sleeping|cries|is crying)",
        r"\b(?:shove|stuff|push|cram|jam)\w*\b.*\b(?:in|into)\s+(?:her|his|their)\s+mouth",
        r"\bhold\s+(?:her|his|their)\s+(?:mouth|nose|jaw)\s+(?:open|shut|closed)",
        r"(?:强迫|硬喂|强行|灌|塞进|掰开)",
        rf"(?:不管|无论|即使|就算){ZH_WHO}?(?:愿不愿意|要不要|想不想|不想|不要|不愿意|拒绝)",
    ),
    "limits": (
        r"\b(?:full|top|max|maximum)\s+(?:speed|force|power|strength)\b",
        r"\bas\s+(?:fast|hard|quickly|forcefully|strongly|rough(?:ly)?)\s+as\s+(?:you can|possible)\b",
        r"\b(?:ignore|disable|turn off|switch off|bypass|override|remove|deactivate|skip)\b(?:\s+[\w-]+){0,3}?\s+"
        r"(?:safety|limits?|limiter|filter|force limit|speed limit|e-?stop|emergency stop)\b",
        r"\bwithout\s+(?:the\s+|any\s+)?(?:safety|limits?|speed limit|force limit)\b",
        r"\b(?:faster|harder|stronger)\s+than\s+(?:allowed|the limit|normal|usual|the safety)",
        r"\bwith all (?:your|its) (?:strength|force|might|power)\b",
        r"\b(?:press|squeeze|grip|rub|scrub|push)\w*\b(?:\s+[\w']+){0,4}?\s+"
        r"(?:hard|harder|tightly|with force|forcefully)\b",
        r"(?:全速|最快|最大(?:的)?(?:速度|力|力气|力量)|用力(?:按|压|擦|捏|握|推)|使劲|越快越好|尽全力)",
        r"(?:关掉|关闭|忽略|取消|解除|不要)(?:安全|限速|限制|保护|速度限制|力限制)",
    ),
    "medication": (
        r"\b(?:extra|additional|another|more|double|triple|two|three|2|3|all(?: of)?(?: the| her| his)?)\s+"
        r"(?:dose|doses|pills?|tablets?|medicine|medication|meds)\b",
        r"\b(?:double|triple|increase|up)\w*\s+(?:(?:her|his|the)\s+)?(?:dose|dosage|medication|medicine)\b",
        r"\boverdose\w*",
        r"\bsleeping pills?\b",
        r"\b(?:someone else's|other patient's|another patient's|not her|not his)\s+(?:pills|medicine|medication)",
        r"\b(?:pills?|medicine|medication)\s+(?:whenever|any ?time|every time)\b",
        r"\b(?:early|extra)\s+dose\b|\bdose\s+early\b",
        r"\b(?:pills?|medicine|medication|meds|dose)\b.*\bagain\b|\bagain\b.*\b(?:pills?|medicine|medication|meds)\b",
        r"\balready\s+(?:had|took|taken|has had)\b.*\b(?:pills?|medicine|medication|meds|dose)\b",
        r"(?:多给|加倍|双倍|多吃|再吃一次药|再给(?:她|他)?吃(?:一次|一片|一颗)?药|已经吃过药|"
        r"再给(?:她|他)?(?:一|几|两)?(?:片|颗|粒)?药|所有的药|全部的药|安眠药|过量)",
    ),
    "harm": (
        rf"\b(?:hurt|harm|injure|attack|wound|kill|choke|strangle|suffocate|smother|scare|frighten|burn|scald|poison|"
        rf"bite|scratch|pinch|drown|threaten)\w*{GAP}{WHO}\b",
        rf"\b(?:hurt|harm|injure|attack|kill|choke|scare|frighten|burn|scald|pinch)\w*\s+{WHO}\b",
        rf"\bthrow\w*\b.*\b(?:at|on)\s+{WHO}\b",
        rf"\b(?:pour|spill|splash|dump|tip)\w*\b.*\b(?:on|over|onto)\s+{WHO}\b",
        rf"\bdrop\w*\b.*\bon\s+{WHO}\b",
        r"\bcover\s+(?:her|his|their)\s+(?:face|mouth|nose)\b",
        r"\bpull\s+(?:her|his|their)\s+(?:hair|ears?)\b",
        r"(?:伤害|弄伤|攻击|吓唬|吓她|吓他|烫(?:她|他)|泼|扔向|砸(?:她|他)|掐|咬(?:她|他)|捂住|拽|扯(?:她|他)?的?头发|闷死)",
    ),
}
CONFIRM_PATTERNS: dict[str, tuple[str, ...]] = {
    "hot": (
        r"\b(?:hot|boiling|steaming|warm)\s+(?:tea|water|coffee|soup|drink|milk|chocolate|porridge)\b",
        r"\b(?:tea|coffee)\b",
        r"(?:热水|热茶|热汤|热牛奶|咖啡|烫|茶(?!杯))",
    ),
    "speed": (
        r"\b(?:quick|quickly|fast|faster|hurry|rush|asap|as soon as possible|speed up|run|race)\b",
        r"(?:快点|快速|赶紧|赶快|迅速|尽快|跑过去|快去)",
    ),
}
NEGATION = re.compile(r"(?:\b(?:don't|do not|dont|never|not)\s+(?:\w+\s+){0,1}$|(?:不要|别|不许|不能|不可以)$)")
REFUSAL_WORDS = {
    "strike": "I won't hit anyone: striking a person can injure them.",
    "push": "I won't push anyone: a push can make a frail person fall.",
    "restrain": (
        "I won't restrain anyone: tying, holding down or confining a person is not for a robot to do;"
        " I can alert a caregiver if she is at risk."
    ),
    "force_feed": (
        "I won't make her eat, drink or take anything against her will: forcing food or drink can cause choking."
        " I can offer it, or alert a caregiver."
    ),
    "limits": (
        "I won't go past my force and speed limits or switch the safety filter off: they keep the people near me safe."
    ),
    "medication": "I won't handle medication outside the prescribed schedule.",
    "harm": "I won't do something that could hurt a person.",
}
CONFIRM_WORDS = {
    "hot": "Hot drinks can scald if spilled near a person.",
    "speed": "Moving fast near a person is risky (my speed limits still apply).",
    "lying": (
        "She is lying down: eating or drinking lying flat can cause choking; sit her up or make sure she can swallow."
    ),
}


@dataclass(frozen=True)
class SafetyVerdict:
    """``allow``, ``confirm`` or ``refuse``, with the category, the reason for the operator and the words matched."""

    decision: str = "allow"
    category: str = ""
    reason: str = ""
    matched: str = ""


ALLOW = SafetyVerdict()


class SafetyPolicy:
    """Refuses harmful requests and plans, asks to confirm risky ones (see the module doc). Stateless."""

    def check_text(self, instruction: str) -> SafetyVerdict:
        """The operator's words: refuse (first matching category), confirm (hot, speed) or allow."""
        from tianji.policies.planner.vocabulary import normalize

        text = normalize(instruction)
        for category, patterns in REFUSE_PATTERNS.items():
            match = _search(patterns, text)
            if match is not None:
                return self._refuse(instruction, category, REFUSAL_WORDS[category], match)
        for category, patterns in CONFIRM_PATTERNS.items():
            match = _search(patterns, text)
            if match is not None:
                return self._confirm(instruction, category, CONFIRM_WORDS[category], match)
        return ALLOW

    def check_plan(self, plan: Plan, ctx: PlanContext) -> SafetyVerdict:
        """A validated plan's steps against the limits, the medication schedule and the person's posture."""
        confirm = ALLOW
        handed: dict[str, int] = {}
        for i, step in enumerate(plan.steps, 1):
            params = step.with_defaults()
            where = f"step {i} ({step})"
            if step.skill == "bring_to_mouth" and float(params.get("hold_time", 0.0)) > MAX_MOUTH_HOLD:
                return self._refuse(
                    plan.instruction,
                    "force_feed",
                    f"{REFUSAL_WORDS['force_feed']} ({where}: held at the mouth longer than {MAX_MOUTH_HOLD:.0f} s)",
                    where,
                )
            if step.skill == "wipe" and int(params.get("strokes", 0)) > MAX_WIPE_STROKES:
                reason = f"{REFUSAL_WORDS['limits']} ({where}: more than {MAX_WIPE_STROKES} strokes on the skin)"
                return self._refuse(plan.instruction, "limits", reason, where)
            distance = float(params.get("distance", 0.0) or 0.0) if step.skill == "approach_person" else 0.0
            if 0.0 < distance < MIN_APPROACH:
                reason = f"{REFUSAL_WORDS['limits']} ({where}: closer than {MIN_APPROACH} m to the person's chest)"
                return self._refuse(plan.instruction, "limits", reason, where)
            refusal = self._medication(plan, ctx, i, step, handed)
            if refusal is not None:
                return refusal
            person = ctx.world_state.people.get(str(params.get("person", "")))
            lying = person is not None and str(person.posture) == "lying_in_bed"
            if step.skill == "bring_to_mouth" and lying and confirm.decision == "allow":
                confirm = SafetyVerdict("confirm", "lying", CONFIRM_WORDS["lying"], where)
        if confirm.decision == "confirm":
            return self._confirm(plan.instruction, confirm.category, confirm.reason, confirm.matched)
        return ALLOW

    def _medication(
        self, plan: Plan, ctx: PlanContext, i: int, step: PlanStep, handed: dict[str, int]
    ) -> SafetyVerdict | None:
        obj = step.params.get("object")
        dose = ctx.medication.for_object(str(obj)) if step.skill in HANDLING and obj else None
        if dose is None:
            return None
        where = f"step {i} ({step})"
        window = ctx.medication.window_min
        now = ctx.minutes
        times = ", ".join(format_time(t) for t in dose.times)
        if not any(min(abs(now - t), 24 * 60 - abs(now - t)) <= window for t in dose.times):
            reason = (
                f"{REFUSAL_WORDS['medication']} It is {format_time(now)}; the {obj} is prescribed at {times}"
                f" (within {window} min). ({where})"
            )
            return self._refuse(plan.instruction, "medication", reason, where)
        person = step.params.get("person")
        if person is not None and dose.person and person != dose.person:
            reason = f"{REFUSAL_WORDS['medication']} The {obj} is prescribed for {dose.person}, not {person}. ({where})"
            return self._refuse(plan.instruction, "medication", reason, where)
        if step.skill != "pick":
            handed[str(obj)] = handed.get(str(obj), 0) + 1
            if handed[str(obj)] > 1:
                reason = f"{REFUSAL_WORDS['medication']} The plan gives the {obj} more than once: one dose at a time."
                return self._refuse(plan.instruction, "medication", reason, where)
        return None

    def _refuse(self, instruction: str, category: str, reason: str, matched: str) -> SafetyVerdict:
        log.warning("refused (%s): %s -- instruction %r, matched %r", category, reason, instruction, matched)
        return SafetyVerdict("refuse", category, reason, matched)

    def _confirm(self, instruction: str, category: str, reason: str, matched: str) -> SafetyVerdict:
        log.info("confirmation needed (%s): %s -- instruction %r", category, reason, instruction)
        return SafetyVerdict("confirm", category, reason, matched)


def _search(patterns: tuple[str, ...], text: str) -> str | None:
    """The first match of any pattern that is not negated ("don't hit her" is not a request to hit)."""
    for pattern in patterns:
        for match in re.finditer(pattern, text):
            if not NEGATION.search(text[: match.start()]):
                return match.group()
    return None
