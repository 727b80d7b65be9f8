"""The skill registry and its JSON Schema (draft 2020-12), which the planner reads to validate and chain plans.

``SKILLS`` maps names to skill classes; ``get_skill(name)`` looks one up (with suggestions),
``make_skill(name, {"object": "cup"}, context)`` builds one from plain values (strings from
the command line are converted to the field types), and ``schema()`` describes every skill:
its parameters (types, descriptions, allowed names), the preconditions it checks, the
symbolic ``requires`` / ``effects`` (see :class:`~tianji.control.skills.base.Condition`), the
robots it runs on, its timeout and what success means. A plan step
``{"skill": "pick", "params": {"object": "cup"}}`` validates against the schema.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from tianji.control.errors import UnknownNameError, did_you_mean
from tianji.control.skills.base import Skill, SkillContext, SkillError, cond
from tianji.control.world_state import WorldState

SKILLS: dict[str, type[Skill]] = {}
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://tianji.dev/schemas/skills.json"

# Names of the care room (assets/scenes/care_room.yaml), used in the schema when no world state is given.
CARE_ROOM_NAMES: dict[str, tuple[str, ...]] = {
    "objects": ("cup", "bowl", "spoon", "pill_box"),
    "places": ("dining_table", "bedside", "bedside_table", "door", "room_center"),
    "people": ("patient",),
    "body_parts": (
        "left_forearm",
        "right_forearm",
        "left_upper_arm",
        "right_upper_arm",
        "left_hand",
        "right_hand",
        "chest",
        "head",
    ),
}


def register(cls: type[Skill]) -> type[Skill]:
    """Class decorator: add a skill to :data:`SKILLS` under ``cls.name`` (checks its declarations)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a class attribute name = '...'")
    if not dataclasses.is_dataclass(cls.Params):
        raise ValueError(f"{cls.__name__}.Params must be a dataclass of the skill's parameters")
    for text in (*cls.requires, *cls.effects):
        cond(text)  # raises on a malformed condition
    SKILLS[cls.name] = cls
    return cls


def get_skill(name: str) -> type[Skill]:
    """The skill class registered as ``name``; UnknownNameError lists the known ones."""
    try:
        return SKILLS[name]
    except KeyError:
        raise UnknownNameError(
            f"no skill named '{name}'.{did_you_mean(name, SKILLS)} Known skills: {', '.join(sorted(SKILLS))}"
        ) from None


def make_skill(
    name: str, params: Mapping[str, Any] | None = None, context: SkillContext | None = None, **kwargs: Any
) -> Skill:
    """Build skill ``name`` from plain parameter values (strings are converted to the declared types)."""
    cls = get_skill(name)
    return cls(parse_params(cls, dict(params or {})), context, **kwargs)


def parse_params(cls: type[Skill], values: dict[str, Any]) -> Any:
    """``cls.Params`` from a dict; SkillError names unknown or missing parameters and bad values."""
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    hints = typing.get_type_hints(cls.Params)
    unknown = [k for k in values if k not in fields]
    if unknown:
        listing = ", ".join(f"{n} ({_type_name(hints[n])})" for n in fields) or "none"
        hint = did_you_mean(unknown[0], fields)
        raise SkillError(f"skill '{cls.name}' has no parameter '{unknown[0]}'.{hint} Its parameters: {listing}")
    converted = {k: _convert(cls.name, k, v, hints[k]) for k, v in values.items()}
    missing = [
        n
        for n, f in fields.items()
        if n not in converted and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise SkillError(
            f"skill '{cls.name}' needs parameter(s) {', '.join(missing)}; e.g. --arg {missing[0]}=..."
            f" ({_type_name(hints[missing[0]])})"
        )
    return cls.Params(**converted)


def _type_name(tp: Any) -> str:
    schema = _type_schema(tp)
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    kind = schema.get("type", "value")
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _convert(skill: str, name: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` (often a string from the command line) to type ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        empty = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if empty and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(skill, name, value, arg)
            except SkillError:
                continue
        raise SkillError(f"skill '{skill}': parameter '{name}' got {value!r}, expected {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            raise SkillError(f"skill '{skill}': parameter '{name}' must be one of {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
        inner = args[0] if args else float
        try:
            out = [inner(v) for v in items]
        except (TypeError, ValueError):
            raise SkillError(
                f"skill '{skill}': parameter '{name}' needs numbers like 0.3,0.1,1.0; got {value!r}"
            ) from None
        return tuple(out) if origin is tuple else out
    try:
        if tp is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if tp in (int, float, str):
            return tp(value)
    except (TypeError, ValueError):
        raise SkillError(f"skill '{skill}': parameter '{name}' got {value!r}, expected {_type_name(tp)}") from None
    return value


def _type_schema(tp: Any) -> dict[str, Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(a) for a in args if a is not type(None)]
        out = options[0] if len(options) == 1 else {"anyOf": options}
        if type(None) in args:
            if "type" in out and isinstance(out["type"], str):
                out = {**out, "type": [out["type"], "null"]}
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (tuple, list):
        inner = _type_schema(args[0]) if args else {"type": "number"}
        out: dict[str, Any] = {"type": "array", "items": inner}
        if origin is tuple and args and args[-1] is not Ellipsis:
            out["minItems"] = out["maxItems"] = len(args)
        return out
    return {
        str: {"type": "string"},
        float: {"type": "number"},
        int: {"type": "integer"},
        bool: {"type": "boolean"},
    }.get(tp, {})


def _names(world_state: WorldState | None, kind: str) -> list[str]:
    if world_state is None:
        return list(CARE_ROOM_NAMES[kind])
    if kind == "objects":
        return list(world_state.objects)
    if kind == "places":
        return list(world_state.places)
    if kind == "people":
        return list(world_state.people)
    parts = {p for person in world_state.people.values() for p in person.body_parts}
    return sorted(parts) or list(CARE_ROOM_NAMES["body_parts"])


def skill_schema(cls: type[Skill], world_state: WorldState | None = None) -> dict[str, Any]:
    """The JSON Schema of one skill's plan step, with its preconditions, requires, effects and success."""
    hints = typing.get_type_hints(cls.Params)
    properties: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls.Params):
        prop = dict(_type_schema(hints[f.name]))
        meta = f.metadata
        if "description" in meta:
            prop["description"] = meta["description"]
        if "names" in meta:  # a name from the world state: objects, places, people, body_parts
            names = _names(world_state, meta["names"])
            extra = list(meta.get("extra_names", ()))
            if isinstance(prop.get("type"), list):  # optional name
                prop["anyOf"] = [{"enum": names + extra}, {"type": "null"}]
                prop.pop("type")
            else:
                prop["enum"] = names + extra
        if "minimum" in meta:
            prop["minimum"] = meta["minimum"]
        if "maximum" in meta:
            prop["maximum"] = meta["maximum"]
        if f.default is not dataclasses.MISSING:
            prop["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
        elif f.default_factory is dataclasses.MISSING:
            required.append(f.name)
        properties[f.name] = prop
    params: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        params["required"] = required
    return {
        "title": cls.name,
        "description": cls.description,
        "type": "object",
        "properties": {"skill": {"const": cls.name}, "params": params},
        "required": ["skill", "params"],
        "additionalProperties": False,
        "robots": list(cls.robots),
        "preconditions": list(cls.preconditions_doc),
        "requires": [cond(c).as_dict() for c in cls.requires],
        "effects": [cond(c).as_dict() for c in cls.effects],
        "success": cls.success_doc,
        "timeout": cls.default_timeout,
    }


def schema(world_state: WorldState | None = None, robot: str | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a plan step for every registered skill (or those for ``robot``).

    With a ``world_state`` the object, place, person and body-part parameters list the names
    it knows; otherwise the care room's names. Each skill is under ``$defs/<name>`` with the
    extra annotations ``robots``, ``preconditions``, ``requires``, ``effects``, ``success`` and
    ``timeout`` (JSON Schema ignores unknown keywords, so validators accept the document).
    """
    chosen = {n: c for n, c in sorted(SKILLS.items()) if robot is None or robot in c.robots or not c.robots}
    defs = {name: skill_schema(cls, world_state) for name, cls in chosen.items()}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "Tianji skill call",
        "description": (
            "One step of a plan: {'skill': name, 'params': {...}}. 'requires' and 'effects' are symbolic"
            " conditions 'variable(args) = value' where {param} stands for a parameter of the call."
        ),
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in defs],
        "$defs": defs,
    }
