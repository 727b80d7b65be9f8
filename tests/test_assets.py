"""Authored objects: real masses, ArUco markers readable on every marked object, generator is reproducible."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tianji import assets
from tianji.assets import check_markers, make_assets

OBJECTS = sorted(p.stem for p in (assets.ROOT / "objects").glob("*.urdf"))


def test_every_object_link_declares_its_inertia() -> None:
    assert set(OBJECTS) == {
        "bed",
        "bedside_table",
        "dining_table",
        "chair",
        "wheelchair",
        "cup",
        "bowl",
        "spoon",
        "pill_box",
    }
    for name in OBJECTS:
        root = ET.parse(assets.path(f"objects/{name}.urdf")).getroot()
        total = 0.0
        for link in root.findall("link"):
            mass = link.find("inertial/mass")
            assert mass is not None, f"{name}: link {link.attrib['name']} has no inertial (PyBullet would make it 1 kg)"
            total += float(mass.attrib["value"])
        assert total == pytest.approx(make_assets.MASSES[name], rel=0.01), name


@pytest.mark.parametrize("name", sorted(make_assets.MARKER_IDS))
def test_marker_is_detected_with_its_id(name: str) -> None:
    results = check_markers.check_object(name)
    assert results and all(r.ok for r in results), [(r.view, r.ids) for r in results]
