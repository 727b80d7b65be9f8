"""Robot registry: names -> URDF + home pose, presets, end effectors, cameras and gripper.

Built-in robots come from ``robots.yaml`` beside this file (example-robot-data models).
Users add their own with :func:`register_robot` (one call) or :func:`load_robot_file`
(a YAML file with the same schema); files named in ``TIANJI_ROBOTS`` (os.pathsep
separated) are loaded on first use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tianji.control.errors import AssetError, UnknownNameError, did_you_mean
from tianji.control.robot import BaseType

BUILTIN_FILE = Path(__file__).with_name("robots.yaml")


@dataclass(frozen=True)
class CameraMount:
    """A camera rigidly attached to a robot link; ``rpy``/``xyz`` go from the link to the optical frame."""

    link: str
    xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fov_deg: float = 60.0
    width: int = 320
    height: int = 240
    near: float = 0.05
    far: float = 10.0


@dataclass(frozen=True)
class Preset:
    """A named pose: joint positions plus the base placement that goes with it."""

    joints: dict[str, float]
    spawn_height: float
    spawn_rpy: tuple[float, float, float]


@dataclass(frozen=True)
class RobotDescription:
    """Everything needed to load a robot and give it a :class:`~tianji.control.RobotSpec`."""

    name: str
    urdf: str
    description: str = ""
    base: BaseType = BaseType.FIXED
    dof: int | None = None
    home: dict[str, float] = field(default_factory=dict)
    spawn_height: float = 0.0
    spawn_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)
    presets: dict[str, Preset] = field(default_factory=dict)
    end_effectors: dict[str, str] = field(default_factory=dict)
    cameras: dict[str, CameraMount] = field(default_factory=dict)
    gripper: dict[str, tuple[float, float]] = field(default_factory=dict)  # joint regex -> (open, closed)
    passive_joints: tuple[str, ...] = ()  # joint regexes
    base_twist_limits: tuple[float, float, float] = (1.0, 1.0, 1.0)  # |vx| m/s, |vy| m/s, |wz| rad/s
    kp: float = 0.5
    kd: float = 1.0
    package_dirs: tuple[str, ...] = ()
    joint_damping: dict[str, float] = field(default_factory=dict)  # joint regex -> damping, replacing the URDF's
    collision_from_visual: bool = False  # for display-only models without collision geometry
    source: str = "user"
    collision: str = "mesh"  # "mesh": the URDF's collision meshes; "simple": fitted boxes and capsules
    no_collision_links: tuple[str, ...] = ()  # links whose collision shapes are dropped (planning volumes)

    def preset(self, name: str) -> Preset:
        """The named pose; ``"home"`` is always available."""
        if name == "home":
            return Preset(dict(self.home), self.spawn_height, self.spawn_rpy)
        if name not in self.presets:
            known = ["home", *self.presets]
            raise UnknownNameError(
                f"robot '{self.name}' has no pose preset '{name}'.{did_you_mean(name, known)} Known: {', '.join(known)}"
            )
        return self.presets[name]

    def urdf_path(self) -> Path:
        """The URDF as a local file (``package://`` resolved against example-robot-data and package_dirs)."""
        from tianji.sim.urdf import package_search_dirs, resolve_uri

        if self.urdf.startswith("package://"):
            anchor = Path(self.package_dirs[0]) / "_" if self.package_dirs else BUILTIN_FILE
            try:
                return resolve_uri(self.urdf, anchor, package_search_dirs(anchor, self.package_dirs))
            except AssetError as exc:
                raise AssetError(f"robot '{self.name}': URDF {self.urdf} not found ({exc})") from None
        path = Path(self.urdf).expanduser()
        if not path.is_file():
            raise AssetError(f"robot '{self.name}': URDF file not found: {path}")
        return path


_REGISTRY: dict[str, RobotDescription] = {}
_ENV_LOADED = False


def _ensure_loaded() -> None:
    global _ENV_LOADED
    if not _REGISTRY:
        for desc in _parse_file(BUILTIN_FILE, source="example-robot-data"):
            _REGISTRY[desc.name] = desc
    if not _ENV_LOADED:
        _ENV_LOADED = True
        for file in filter(None, os.environ.get("TIANJI_ROBOTS", "").split(os.pathsep)):
            load_robot_file(file)


def robot_names() -> list[str]:
    """Names of every registered robot, built-in first."""
    _ensure_loaded()
    return list(_REGISTRY)


def get_robot(name: str) -> RobotDescription:
    """The description registered under ``name``; UnknownNameError lists the known names."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown robot '{name}'.{did_you_mean(name, _REGISTRY)} Known robots: {', '.join(_REGISTRY)}."
            " Register your own with tianji.sim.register_robot(name, urdf=...) or a YAML file."
        ) from None


def register_robot(
    name: str, urdf: str | Path | None = None, *, replace: bool = False, **fields: Any
) -> RobotDescription:
    """Register a robot from a URDF path (plus any :class:`RobotDescription` field) and return it.

    >>> register_robot("my_arm", urdf="~/robots/my_arm.urdf", base="fixed", home={"joint1": 0.5})
    """
    _ensure_loaded()
    if urdf is None:
        raise ValueError(f"register_robot('{name}') needs urdf=<path to the .urdf file>")
    desc = _description(name, {"urdf": str(urdf), **fields}, Path.cwd(), source="user")
    desc.urdf_path()  # fail now, with the path, rather than at load time
    if name in _REGISTRY and not replace:
        raise ValueError(f"a robot named '{name}' is already registered; pass replace=True to override it")
    _REGISTRY[name] = desc
    return desc


def load_robot_file(path: str | Path, *, replace: bool = True) -> list[RobotDescription]:
    """Register every robot in a YAML file (schema: see robots.yaml); returns them."""
    _ensure_loaded()
    file = Path(path).expanduser()
    descs = _parse_file(file, source=str(file))
    for desc in descs:
        desc.urdf_path()
        if desc.name in _REGISTRY and not replace:
            raise ValueError(f"robot '{desc.name}' from {file} is already registered")
        _REGISTRY[desc.name] = desc
    return descs


def _parse_file(file: Path, source: str) -> list[RobotDescription]:
    if not file.is_file():
        raise AssetError(f"robot file not found: {file}")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AssetError(f"robot file {file} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise AssetError(f"robot file {file} must map robot names to their settings")
    return [_description(name, entry, file.parent, source) for name, entry in data.items()]


_FIELDS = {
    "urdf",
    "description",
    "base",
    "dof",
    "home",
    "spawn_height",
    "spawn_rpy",
    "presets",
    "end_effectors",
    "cameras",
    "gripper",
    "passive_joints",
    "gains",
    "package_dirs",
    "kp",
    "kd",
    "base_twist_limits",
    "collision_from_visual",
    "joint_damping",
    "collision",
    "no_collision_links",
}


def _description(name: str, entry: dict[str, Any], folder: Path, source: str) -> RobotDescription:
    """Build a RobotDescription from a YAML/dict entry, with errors that name the robot and key."""
    if not isinstance(entry, dict) or "urdf" not in entry:
        raise AssetError(f"robot '{name}' ({source}): needs at least 'urdf: <path or package:// URI>'")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise AssetError(f"robot '{name}' ({source}): unknown keys {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    urdf = str(entry["urdf"])
    if not urdf.startswith("package://") and not Path(urdf).expanduser().is_absolute():
        urdf = str((folder / urdf).resolve())
    try:
        base = BaseType(entry.get("base", "fixed"))
    except ValueError:
        raise AssetError(
            f"robot '{name}': base must be one of fixed, floating, mobile; got {entry['base']!r}"
        ) from None
    gains = entry.get("gains", {})
    collision = str(entry.get("collision", "mesh"))
    if collision not in ("mesh", "simple"):
        raise AssetError(f"robot '{name}': collision must be 'mesh' or 'simple', got {collision!r}")
    presets = {
        key: Preset(
            joints={k: float(v) for k, v in (p.get("joints") or {}).items()},
            spawn_height=float(p.get("spawn_height", entry.get("spawn_height", 0.0))),
            spawn_rpy=tuple(p.get("spawn_rpy", entry.get("spawn_rpy", (0.0, 0.0, 0.0)))),
        )
        for key, p in (entry.get("presets") or {}).items()
    }
    cameras = {key: CameraMount(**_camera_fields(name, key, c)) for key, c in (entry.get("cameras") or {}).items()}
    gripper = {pattern: (float(v[0]), float(v[1])) for pattern, v in (entry.get("gripper") or {}).items()}
    for pattern in [*gripper, *entry.get("passive_joints", ())]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise AssetError(f"robot '{name}': '{pattern}' is not a valid joint regex ({exc})") from None
    return RobotDescription(
        name=name,
        urdf=urdf,
        description=str(entry.get("description", "")),
        base=base,
        dof=entry.get("dof"),
        home={k: float(v) for k, v in (entry.get("home") or {}).items()},
        spawn_height=float(entry.get("spawn_height", 0.0)),
        spawn_rpy=tuple(entry.get("spawn_rpy", (0.0, 0.0, 0.0))),
        presets=presets,
        end_effectors=dict(entry.get("end_effectors") or {}),
        cameras=cameras,
        gripper=gripper,
        passive_joints=tuple(entry.get("passive_joints", ())),
        base_twist_limits=tuple(float(v) for v in entry.get("base_twist_limits", (1.0, 1.0, 1.0))),
        kp=float(entry.get("kp", gains.get("kp", 0.5))),
        kd=float(entry.get("kd", gains.get("kd", 1.0))),
        package_dirs=tuple(str((folder / Path(d).expanduser()).resolve()) for d in entry.get("package_dirs", ())),
        joint_damping=_damping(entry.get("joint_damping")),
        collision_from_visual=bool(entry.get("collision_from_visual", False)),
        source=source,
        collision=collision,
        no_collision_links=tuple(entry.get("no_collision_links", ())),
    )


def _damping(value: Any) -> dict[str, float]:
    """``joint_damping`` is one number for every joint or {joint regex: number}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return {".*": float(value)}


def _camera_fields(robot: str, camera: str, entry: dict[str, Any]) -> dict[str, Any]:
    allowed = set(CameraMount.__dataclass_fields__)
    if not isinstance(entry, dict) or "link" not in entry or set(entry) - allowed:
        raise AssetError(f"robot '{robot}', camera '{camera}': needs 'link' and only keys {sorted(allowed)}")
    out = dict(entry)
    for key in ("xyz", "rpy"):
        if key in out:
            out[key] = tuple(float(v) for v in out[key])
    return out
