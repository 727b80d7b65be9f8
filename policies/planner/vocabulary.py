"""English and Chinese words for the rules planner: verbs -> intents, and names of the scene's things.

The lexicon maps phrases to tokens. Things (objects, places, people) come from the
WorldState: each name is known as itself ("pill_box", "pill box") plus the synonyms below when
the scene has that name, so a scene with a ``kettle`` object understands "kettle" with no code
change. Verbs map to intents that :mod:`~tianji.policies.planner.rules` turns into skill calls.

Tokenizing: English by words, longest phrase first (up to 5 words); Chinese by longest match
over the same lexicon (no segmentation library), so 打开 (open) wins over 打 (hit) and
汤匙 (spoon) over 汤 (soup). Characters the lexicon does not know become ``unknown`` tokens,
which the planner names back to the operator.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from tianji.control.world_state import WorldState

# fmt: off
OBJECT_WORDS: dict[str, tuple[str, ...]] = {
    "cup": (
        "cup", "cups", "mug", "glass", "water", "glass of water", "cup of water", "beverage", "juice", "milk",
        "tea", "coffee", "something to drink", "水杯", "杯子", "杯", "茶杯", "马克杯", "水", "一杯水", "杯水",
        "饮料", "喝的", "茶", "热水", "热茶", "咖啡", "牛奶", "果汁",
    ),
    "bowl": (
        "bowl", "soup", "porridge", "food", "meal", "lunch", "dinner", "breakfast", "cereal", "something to eat",
        "碗", "汤", "粥", "饭", "午饭", "早饭", "晚饭", "饭菜", "吃的",
    ),
    "spoon": ("spoon", "teaspoon", "tablespoon", "勺子", "勺", "汤匙", "调羹", "小勺"),
    "pill_box": (
        "pill box", "pillbox", "pill", "pills", "medicine", "medicines", "medication", "medications", "meds",
        "tablet", "tablets", "medicine box", "pill case", "药盒", "药", "药片", "药丸", "药品",
    ),
}
HOT_WORDS = ("tea", "coffee", "hot", "热水", "热茶", "咖啡", "热", "烫")
PLACE_WORDS: dict[str, tuple[str, ...]] = {
    "dining_table": ("dining table", "table", "dinner table", "餐桌", "饭桌", "桌子", "桌"),
    "bedside": (
        "bedside", "bed", "side of the bed", "beside the bed", "by the bed", "next to the bed",
        "床边", "床旁", "床前", "床",
    ),
    "bedside_table": (
        "bedside table", "nightstand", "night stand", "night table", "side table", "bedside cabinet",
        "bedside locker", "床头柜", "床头桌", "床头",
    ),
    "door": ("door", "doorway", "entrance", "门口", "门"),
    "room_center": (
        "center of the room", "centre of the room", "middle of the room", "room center", "room centre", "center",
        "centre", "middle", "房间中央", "房间中间", "屋子中间", "中间",
    ),
}
PERSON_WORDS: dict[str, tuple[str, ...]] = {
    "patient": (
        "patient", "resident", "grandma", "grandmother", "granny", "grandpa", "grandfather", "old lady", "old man",
        "elderly lady", "lady", "old woman", "woman", "man", "病人", "患者", "老人", "老人家", "奶奶", "爷爷",
        "阿姨", "老太太", "老大爷", "老奶奶", "老爷爷",
    ),
}
PRONOUNS = ("her", "him", "she", "he", "them", "they", "她", "他", "她们", "他们")
POSSESSIVES = ("her", "his", "their", "your", "my", "its", "our")
VERBS: dict[str, tuple[str, ...]] = {
    "bring": (
        "bring", "fetch", "give", "hand", "pass", "serve", "deliver", "hand over", "bring over", "拿给", "递给", "送给",
        "带给", "交给", "端给", "拿来给", "拿过来给", "拿去给", "送去给", "拿来", "拿过来", "送来", "递", "送", "端来",
    ),
    "get": ("get", "grab", "go get", "go and get", "go fetch"),
    "take": ("take", "carry", "拿到", "送到", "带到", "端到", "拿去", "带去", "送去"),
    "pick": (
        "pick up", "pick", "lift", "lift up", "collect", "grasp", "拿起", "拿起来", "拿", "取", "捡起", "捡", "抓起",
        "抓", "端起", "端", "拿走",
    ),
    "place": (
        "put", "place", "set", "put down", "set down", "put back", "put away", "leave", "放", "放到", "放在", "放回",
        "摆到", "摆在", "搁在", "放下", "摆",
    ),
    "move": ("move",),
    "return": ("return", "bring back"),
    "go": (
        "go", "go to", "go back to", "move to", "drive", "drive to", "navigate", "navigate to", "head to",
        "head over to", "walk", "walk to", "come", "come to", "go over to", "get to",
        "去", "到", "走到", "走去", "移动到",
        "前往", "过去", "回到", "开到", "来到", "走过去", "去到",
    ),
    "approach": (
        "approach", "approach person", "go near", "come closer", "get closer", "move closer", "go closer",
        "靠近", "走近", "接近",
    ),
    "look": (
        "look at", "look", "watch", "observe", "turn to", "turn towards", "take a look at", "check", "see", "glance at",
        "看", "看看", "看一下", "看着", "瞧瞧", "观察", "注视",
    ),
    "check_on": ("check on", "check in on", "see how she is", "see how he is", "看看她怎么样", "查看", "探望"),
    "say": (
        "say", "tell", "greet", "say hello", "ask", "inform", "let", "speak", "talk to", "announce", "wish",
        "说", "告诉", "问", "打招呼", "问好", "跟她说", "对她说", "讲",
    ),
    "remind": ("remind", "提醒"),
    "alert": (
        "alert", "call", "notify", "page", "summon", "get help", "call for help", "contact", "ring", "fetch help",
        "alert caregiver", "call the nurse", "呼叫", "通知", "叫", "喊", "联系", "打电话给", "求助", "求救", "叫人",
    ),
    "wait": ("wait", "pause", "hold on", "stay", "等", "等待", "稍等", "等一下", "等一会儿", "等会儿"),
    "feed": ("feed", "spoon feed", "spoon-feed", "eat", "喂", "喂饭", "吃饭", "吃东西", "喂她吃饭"),
    "drink": ("drink", "sip", "喝水", "喝", "喂水", "喝点水"),
    "wipe": ("wipe", "clean", "wash", "sponge", "bathe", "scrub", "擦", "擦拭", "擦洗", "擦一擦", "擦擦", "清洗", "洗"),
    "open": ("open", "release", "let go", "drop", "张开", "打开", "松开", "放开", "松手"),
    "close": ("close", "shut", "合上", "闭合", "握紧", "关上"),
    "wave": ("wave", "wave to", "挥手", "招手"),
    "stand": ("stand up", "stand", "站起来", "站起"),
    "exercise": ("demonstrate", "show", "lead", "teach", "示范", "演示", "带她做", "做操"),
    "help": ("help", "assist", "帮", "帮她", "帮忙", "帮助", "协助", "帮帮", "帮帮她"),
}
SKILL_VERBS = {  # a skill's own name said as words is a verb too
    "navigate_to": "go", "approach_person": "approach", "look_at": "look", "hand_over": "bring", "pick": "pick",
    "place": "place", "alert_caregiver": "alert", "say": "say", "wait": "wait", "wipe": "wipe",
    "bring_to_mouth": "feed", "open_gripper": "open", "close_gripper": "close", "wave": "wave", "stand": "stand",
    "demonstrate_exercise": "exercise",
}
WORDS: dict[str, tuple[str, ...]] = {  # other token kinds -> phrases
    "operator": ("me", "myself", "us", "i", "我", "我们"),
    "caregiver": (
        "nurse", "nurses", "caregiver", "carer", "care worker", "doctor", "staff", "the staff", "family",
        "her daughter", "her son", "someone", "somebody", "the front desk",
        "护士", "护工", "医生", "家属", "人", "值班护士",
    ),
    "it": ("it", "them", "that one", "this one", "它", "它们"),
    "vague": (
        "thing", "things", "something", "stuff", "that", "this", "there", "over there", "here", "the other one",
        "东西", "那个", "这个", "那里", "那边", "这里", "这边", "那儿", "这儿",
    ),
    "gripper": ("gripper", "your hand", "your gripper", "claw", "fingers", "夹爪", "手爪", "爪子"),
    "part": (
        "forearm", "forearms", "upper arm", "upper arms", "arm", "arms", "hand", "hands", "face", "head", "chest",
        "back", "leg", "legs", "foot", "feet", "neck", "mouth", "前臂", "上臂", "手臂", "胳膊", "手", "脸", "头",
        "胸", "胸口", "背", "腿", "脚", "脖子", "嘴", "嘴巴",
    ),
    "side": ("left", "right", "左", "右", "左边", "右边", "左边的", "右边的"),
    "exercise_name": (
        "exercise", "exercises", "workout", "arm raise", "arm raises", "lateral raise", "elbow curl", "stretches",
        "运动", "锻炼", "体操", "动作", "举臂",
    ),
    "prep": (
        "to", "into", "onto", "on", "at", "in", "towards", "toward", "for", "from", "with", "near", "beside", "by",
        "next to", "back to", "back on", "of", "over to",
        "给", "在", "从", "往", "向", "对", "跟", "把", "将", "上", "里",
    ),
    "seq": (
        "then", "and then", "after that", "afterwards", "afterward", "next", "finally", "first", "after", "once done",
        "when you are done", "later",
        "先", "再", "然后", "之后", "接着", "随后", "最后", "以后", "完了", "再去", "首先",
    ),
    "and": ("and", "as well as", "plus", "also", "and also", "和", "并", "并且", "还有", "同时", "以及"),
    "neg": ("don't", "do not", "dont", "never", "no need to", "不要", "别", "不用", "不必"),
    "unit": ("second", "seconds", "sec", "secs", "minute", "minutes", "min", "mins", "秒", "秒钟", "分钟"),
    "urgent": (
        "emergency", "urgent", "urgently", "fell", "fallen", "falling", "bleeding", "紧急", "摔倒", "跌倒", "急",
    ),
    "calm": ("no rush", "when convenient", "not urgent", "whenever", "不急", "不着急"),
    "filler": (
        "please", "kindly", "could you", "can you", "would you", "will you", "would you please", "could you please",
        "i want you to", "i need you to", "i'd like you to", "go ahead and", "now", "right now", "for me", "thanks",
        "thank you", "the", "a", "an", "some", "just", "a little", "up", "down", "over", "back", "again", "own",
        "is", "are", "be", "quickly", "slowly", "gently", "carefully", "quick", "fast", "hurry", "asap", "right away",
        "immediately", "soon", "hot", "cold", "warm", "fresh", "full", "empty", "little", "bit", "know", "if", "ok",
        "okay", "alright", "robot", "tiago", "hey", "hi", "new", "more", "another", "together", "away",
        "请", "麻烦", "麻烦你", "帮我", "一下", "的", "了", "吧", "呢", "啊", "呀", "个", "一个", "一杯", "一些",
        "点", "一点", "那", "这", "谢谢", "好吗", "可以", "能不能", "能", "你", "马上", "现在", "起来", "过来",
        "来", "去吧", "下", "快点", "赶紧", "慢慢", "轻轻", "轻轻地", "小心", "小心地", "地", "着", "一", "好",
        "热", "温", "凉", "冷", "干净", "杯", "碗", "身边", "旁边", "都", "也",
        "moment", "while", "second time", "out", "off",
    ),
}
ZH_NUMBERS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
EN_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "a couple of": 2, "a few": 3,
    "half a": 0.5,
}
# fmt: on
PUNCTUATION = {"，": ",", "、": ",", "。": ".", "；": ";", "！": "!", "？": "?", "：": ":", "“": '"', "”": '"'}
CJK = re.compile(r"[\u3400-\u9fff]")
WORD = re.compile(r"[a-z0-9]+(?:['’\-][a-z]+)*|[\u3400-\u9fff]+|[.,;:!?]")
ZH_NUMBER = re.compile(r"[零一二两三四五六七八九十百]+|\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Token:
    """A piece of the instruction: its text, kind (verb, object, place, person, ...), value, and span."""

    text: str
    kind: str
    value: Any
    start: int
    end: int


def normalize(text: str) -> str:
    """Lower case, full-width forms and Chinese punctuation to ASCII, one space between words."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(PUNCTUATION.get(c, c) for c in text)
    return re.sub(r"\s+", " ", text).strip().lower().replace("’", "'")


def is_chinese(text: str) -> bool:
    """True when the text has any Chinese characters."""
    return bool(CJK.search(text))


def zh_number(text: str) -> float | None:
    """十五 -> 15, 三十 -> 30, 两 -> 2, 12 -> 12; None when not a number."""
    if not text:
        return None
    if text[0].isdigit():
        return float(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return float((ZH_NUMBERS.get(tens, 1) if tens else 1) * 10 + (ZH_NUMBERS.get(ones, 0) if ones else 0))
    if all(c in ZH_NUMBERS for c in text):
        return float(int("".join(str(ZH_NUMBERS[c]) for c in text)))
    return None


class Vocabulary:
    """The lexicon for one WorldState: phrase -> (kind, value); :meth:`tokenize` turns text into tokens."""

    def __init__(self, world_state: WorldState, objects: list[str] | None = None) -> None:
        self.objects = objects if objects is not None else list(world_state.objects)
        self.places = list(world_state.places)
        self.people = list(world_state.people)
        self.lexicon: dict[str, tuple[str, Any]] = {}
        for kind, table in (("verb", VERBS), *((k, {k: v}) for k, v in WORDS.items())):
            for value, phrases in table.items():
                for phrase in phrases:
                    self.lexicon[phrase] = (kind, value)
        for skill, verb in SKILL_VERBS.items():
            self.lexicon.setdefault(skill.replace("_", " "), ("verb", verb))
        self._things("place", self.places, PLACE_WORDS)
        self._things("object", self.objects, OBJECT_WORDS)
        self._things("person", self.people, PERSON_WORDS)
        for pronoun in PRONOUNS:
            self.lexicon[pronoun] = ("person", None)  # resolved by the planner (the only or last person)
        self.max_words = max(len(p.split()) for p in self.lexicon if not is_chinese(p))
        self.max_chars = max(len(p) for p in self.lexicon if is_chinese(p))

    def _things(self, kind: str, names: list[str], synonyms: dict[str, tuple[str, ...]]) -> None:
        for name in names:
            for phrase in (name, name.replace("_", " "), *synonyms.get(name, ())):
                self.lexicon[phrase] = (kind, name)

    def words_for(self, kind: str) -> list[str]:
        """Names of a kind this vocabulary knows (for "objects here: ..." messages)."""
        return {"object": self.objects, "place": self.places, "person": self.people}[kind]

    def tokenize(self, text: str) -> list[Token]:
        """Tokens of a normalized text: longest lexicon match first, unknown words and characters kept."""
        out: list[Token] = []
        pieces = [(m.group(), m.start()) for m in WORD.finditer(text)]
        i = 0
        while i < len(pieces):
            piece, start = pieces[i]
            if is_chinese(piece):
                out.extend(self._tokenize_chinese(piece, start))
                i += 1
                continue
            if piece in ".,;:!?":
                out.append(Token(piece, "punct", piece, start, start + 1))
                i += 1
                continue
            if piece.endswith(("'s", "’s")) and piece[:-2] in self.lexicon:  # "the patient's arm"
                kind, value = self.lexicon[piece[:-2]]
                out.append(Token(piece[:-2], kind, value, start, start + len(piece)))
                i += 1
                continue
            for n in range(min(self.max_words, len(pieces) - i), 0, -1):
                words = [p for p, _ in pieces[i : i + n]]
                if any(is_chinese(w) or w in ".,;:!?" for w in words):
                    continue
                phrase = " ".join(words)
                hit = self.lexicon.get(phrase)
                if hit is None and phrase in EN_NUMBERS:
                    hit = ("number", float(EN_NUMBERS[phrase]))
                if hit is None and n == 1 and re.fullmatch(r"\d+(?:\.\d+)?", phrase):
                    hit = ("number", float(phrase))
                if hit is not None:
                    end = pieces[i + n - 1][1] + len(pieces[i + n - 1][0])
                    out.append(Token(phrase, hit[0], hit[1], start, end))
                    i += n
                    break
            else:
                out.append(Token(piece, "unknown", piece, start, start + len(piece)))
                i += 1
        return out

    def _tokenize_chinese(self, run: str, offset: int) -> list[Token]:
        out: list[Token] = []
        unknown_start = None
        i = 0
        while i < len(run):
            hit = None
            for n in range(min(self.max_chars, len(run) - i), 0, -1):
                phrase = run[i : i + n]
                if phrase in self.lexicon:
                    hit = (phrase, *self.lexicon[phrase])
                    break
            number = ZH_NUMBER.match(run, i)
            if number and (hit is None or len(number.group()) >= len(hit[0])) and zh_number(number.group()) is not None:
                hit = (number.group(), "number", zh_number(number.group()))
            if hit is None:
                if unknown_start is None:
                    unknown_start = i
                i += 1
                continue
            if unknown_start is not None:
                out.append(
                    Token(run[unknown_start:i], "unknown", run[unknown_start:i], offset + unknown_start, offset + i)
                )
                unknown_start = None
            out.append(Token(hit[0], hit[1], hit[2], offset + i, offset + i + len(hit[0])))
            i += len(hit[0])
        if unknown_start is not None:
            out.append(
                Token(run[unknown_start:], "unknown", run[unknown_start:], offset + unknown_start, offset + len(run))
            )
        return out
