"""The package installs as tianji.*, the layers keep their import rules, assets are found anywhere."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import tianji
from tianji import assets

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module", ["tianji.sim", "tianji.control", "tianji.perception", "tianji.policies", "tianji.bridge", "tianji.assets"]
)
def test_layers_import_as_tianji_subpackages(module: str) -> None:
    imported = __import__(module, fromlist=["_"])
    assert imported.__name__ == module


@pytest.mark.parametrize("layer", ["control", "perception"])
def test_control_and_perception_know_nothing_of_pybullet_or_zmq(layer: str) -> None:
    for file in (ROOT / layer).rglob("*.py"):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"pybullet", "pybullet_utils", "zmq"}, f"{file} imports {name}"


def test_no_bare_layer_imports() -> None:
    layers = {"sim", "control", "perception", "policies", "bridge"}
    for folder in ["sim", "control", "perception", "policies", "bridge", "tianji", "tests", "experiments"]:
        for file in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    assert node.module.split(".")[0] not in layers, f"{file}: bare import of {node.module}"
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        assert alias.name.split(".")[0] not in layers, f"{file}: bare import of {alias.name}"


def test_assets_are_found_from_any_working_directory(tmp_path: Path) -> None:
    code = "from tianji import assets; print(assets.path('scenes/care_room.yaml'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()).is_file()


def test_missing_asset_error_names_the_folder() -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.urdf"):
        assets.path("objects/nope.urdf")


def test_version_is_exposed() -> None:
    assert tianji.__version__.count(".") == 2


def _package(folder: Path) -> str:
    parts = folder.relative_to(ROOT).parts
    return ".".join(parts if parts[0] == "tianji" else ("tianji", *parts))


def test_a_built_wheel_ships_the_policy_zoo_and_its_policies_load_from_it(tmp_path: Path) -> None:
    """What `pip install tianji` gets: every subpackage, and the zoo's files as package data that load outside
    the checkout."""
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT)]
    subprocess.run([*build, "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("tianji-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / "site")
        names = set(archive.namelist())
    for env in ("TiagoReach-v0", "AllegroReach-v0"):
        for file in ("model.zip", "config.yaml", "eval.json", "meta.json", "vecnormalize.pkl"):
            assert f"tianji/assets/policies/{env}/sac/{file}" in names
    packages = sorted(  # every package of the checkout (layer folders install as tianji.<layer>)
        _package(init.parent)
        for layer in ("tianji", "sim", "control", "perception", "policies", "bridge", "assets")
        for init in (ROOT / layer).rglob("__init__.py")
    )
    for package in packages:
        assert package.replace(".", "/") + "/__init__.py" in names, f"the wheel lacks {package}"
    code = (
        f"import importlib\nfor p in {packages!r}: importlib.import_module(p)\n"
        "from tianji.policies.zoo import list_zoo; from tianji.policies.evaluate import load_policy\n"
        "for e in list_zoo(): load_policy(e.path); print(e.path)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.split()
    assert len(loaded) >= 2 and all(Path(p).is_relative_to(tmp_path / "site") for p in loaded), loaded
