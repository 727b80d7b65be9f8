"""Skills: typed, checkable steps of a care plan (pick, place, navigate_to, bring_to_mouth, ...).

See control/skills/README.md. Importing this package registers every skill in :data:`SKILLS`.
"""

from tianji.control.skills import basic, bodies, care, manipulation, mobile, policy  # noqa: F401  (registers skills)
from tianji.control.skills.base import (
    Condition,
    Phase,
    PhasedSkill,
    PhaseError,
    Skill,
    SkillContext,
    SkillError,
    SkillEvent,
    SkillResult,
    SkillStatus,
)
from tianji.control.skills.policy import PolicySkill
from tianji.control.skills.registry import SKILLS, get_skill, make_skill, parse_params, register, schema
from tianji.control.skills.runner import SkillRunner

__all__ = [
    "SKILLS",
    "Condition",
    "Phase",
    "PhaseError",
    "PhasedSkill",
    "PolicySkill",
    "Skill",
    "SkillContext",
    "SkillError",
    "SkillEvent",
    "SkillResult",
    "SkillRunner",
    "SkillStatus",
    "get_skill",
    "make_skill",
    "parse_params",
    "register",
    "schema",
]
