"""Prepare a URDF for PyBullet: resolve ``package://`` meshes, give frame-only links a tiny mass.

Frame-only links are those with no ``<inertial>`` or a zero mass.

PyBullet gives every link without an ``<inertial>`` element a mass of 1 kg and a unit
inertia, which makes sensor and virtual frames (G1's IMU and camera links, the human
model's virtual joint links) heavy bodies and the dynamics wrong. We rewrite such links
with a tiny explicit inertial, resolve every mesh path to an absolute file (failing with
a clear error when one is missing), and cache the rewritten file by content hash.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from tianji.control.errors import AssetError

FRAME_LINK_MASS = 1e-3  # kg, for links that carry no inertia in the URDF
FRAME_LINK_INERTIA = 1e-7  # kg m^2, diagonal
PACKAGE_PREFIX = "package://"


@dataclass(frozen=True)
class Mimic:
    """A joint that follows another: q = multiplier * q_leader + offset."""

    joint: str
    leader: str
    multiplier: float
    offset: float


@dataclass
class PreparedURDF:
    """A URDF rewritten for PyBullet, with what was changed."""

    source: Path
    path: Path  # the rewritten file to load
    frame_links: list[str] = field(default_factory=list)  # links that got FRAME_LINK_MASS (none or zero mass)
    mimics: list[Mimic] = field(default_factory=list)
    robot_name: str = ""
    joint_order: list[str] = field(default_factory=list)  # movable joints in file order


@cache
def example_robot_data_share() -> Path:
    """The folder holding ``example-robot-data/robots/...`` inside the installed wheel."""
    try:
        dist = metadata.distribution("example-robot-data")
    except metadata.PackageNotFoundError:
        raise AssetError("example-robot-data is not installed; run `pip install example-robot-data`") from None
    share = Path(str(dist.locate_file("cmeel.prefix/share")))
    if not (share / "example-robot-data" / "robots").is_dir():
        raise AssetError(
            f"example-robot-data is installed but its robot files are missing from {share};"
            " reinstall it with `pip install --force-reinstall example-robot-data`"
        )
    return share


def package_search_dirs(urdf: Path, extra: tuple[str | Path, ...] = ()) -> list[Path]:
    """Where ``package://NAME/...`` is looked up.

    In order: ``extra``, the URDF's ancestor folders, ROS_PACKAGE_PATH, example-robot-data.
    """
    dirs = [Path(d) for d in extra]
    dirs += list(urdf.resolve().parents)
    dirs += [Path(d) for d in os.environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep) if d]
    dirs.append(example_robot_data_share())
    return dirs


def resolve_uri(uri: str, urdf: Path, search_dirs: list[Path]) -> Path:
    """Absolute path of a mesh or texture reference found in ``urdf``; AssetError if missing."""
    if uri.startswith(PACKAGE_PREFIX):
        rest = uri[len(PACKAGE_PREFIX) :]
        package, _, relative = rest.partition("/")
        for base in search_dirs:
            if base.name == package and (base / relative).is_file():
                return base / relative
            if (base / package / relative).is_file():
                return base / package / relative
        searched = ", ".join(str(d) for d in search_dirs[:6])
        raise AssetError(
            f"mesh '{uri}' referenced by {urdf} was not found: no folder named '{package}' holding"
            f" '{relative}' under {searched}. Pass package_dirs=[<folder containing {package}/>]"
            " or set ROS_PACKAGE_PATH."
        )
    path = Path(uri.removeprefix("file://"))
    if not path.is_absolute():
        path = urdf.parent / path
    if not path.is_file():
        raise AssetError(f"mesh '{uri}' referenced by {urdf} was not found at {path}")
    return path


def prepare_urdf(
    urdf: str | Path, package_dirs: tuple[str | Path, ...] = (), *, collision_from_visual: bool = False
) -> PreparedURDF:
    """Rewrite ``urdf`` for PyBullet (absolute mesh paths, tiny inertia on frame links) and cache it.

    ``collision_from_visual`` gives links that have visuals but no collision geometry a
    collision copy of their visuals (PyBullet uses the convex hull of each mesh), for
    models published for display only, such as the human model.
    """
    source = Path(urdf).expanduser()
    if not source.is_file():
        raise AssetError(
            f"URDF file not found: {source}. Check the path (relative paths are resolved from {Path.cwd()})."
        )
    try:
        tree = ET.parse(source)
    except ET.ParseError as exc:
        raise AssetError(f"URDF {source} is not valid XML: {exc}") from exc
    root = tree.getroot()
    if root.tag != "robot":
        raise AssetError(f"{source} is not a URDF: its root element is <{root.tag}>, expected <robot>")

    search_dirs = package_search_dirs(source, package_dirs)
    for element in root.iter():
        if element.tag in ("mesh", "texture") and "filename" in element.attrib:
            element.attrib["filename"] = str(resolve_uri(element.attrib["filename"], source, search_dirs))

    frame_links = []
    for link in root.findall("link"):
        inertial = link.find("inertial")
        mass = inertial.find("mass") if inertial is not None else None
        massless = mass is not None and float(mass.attrib.get("value", 0.0)) <= 0.0
        if inertial is None or mass is None or massless:
            # no inertia (PyBullet would use 1 kg) or zero mass (a zero-mass base would be static)
            if inertial is not None:
                link.remove(inertial)
            inertial = ET.SubElement(link, "inertial")
            ET.SubElement(inertial, "origin", xyz="0 0 0", rpy="0 0 0")
            ET.SubElement(inertial, "mass", value=f"{FRAME_LINK_MASS:g}")
            i = f"{FRAME_LINK_INERTIA:g}"
            ET.SubElement(inertial, "inertia", ixx=i, iyy=i, izz=i, ixy="0", ixz="0", iyz="0")
            frame_links.append(link.attrib.get("name", "?"))

    if collision_from_visual:
        for link in root.findall("link"):
            if link.find("collision") is None:
                for visual in link.findall("visual"):
                    collision = ET.SubElement(link, "collision")
                    for child in visual:
                        if child.tag in ("origin", "geometry"):
                            collision.append(child)

    mimics = []
    for joint in root.findall("joint"):
        mimic = joint.find("mimic")
        if mimic is not None:
            mimics.append(
                Mimic(
                    joint=joint.attrib["name"],
                    leader=mimic.attrib["joint"],
                    multiplier=float(mimic.attrib.get("multiplier", 1.0)),
                    offset=float(mimic.attrib.get("offset", 0.0)),
                )
            )

    text = ET.tostring(root, encoding="unicode")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    out = _cache_dir() / f"{source.stem}-{digest}.urdf"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, out)  # atomic, so parallel workers never read a half-written file
    movable = [j.attrib["name"] for j in root.findall("joint") if j.attrib.get("type") != "fixed"]
    return PreparedURDF(source, out, frame_links, mimics, root.attrib.get("name", source.stem), movable)


def _cache_dir() -> Path:
    base = os.environ.get("TIANJI_CACHE") or os.path.join(tempfile.gettempdir(), f"tianji-cache-{os.getuid()}")
    path = Path(base) / "urdf"
    path.mkdir(parents=True, exist_ok=True)
    return path
