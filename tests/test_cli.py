"""The `tianji` command line, run in-process through typer's test runner."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from typer.testing import CliRunner

from tianji import __version__
from tianji.cli import app

runner = CliRunner()


def test_version_and_help() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    for command in ([], ["robots"], ["show"], ["showcase"], ["demo"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_robots_table_lists_every_robot_with_its_dof() -> None:
    result = runner.invoke(app, ["robots"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, dof in {"g1": 29, "g1_hands": 43, "allegro": 16, "tiago": 48, "human": 36}.items():
        assert any(
            line.split("│")[1].strip() == name and line.split("│")[2].strip() == str(dof)
            for line in result.output.splitlines()
            if line.count("│") > 3
        ), name


def test_show_renders_a_robot_and_the_care_room(tmp_path: Path) -> None:
    for target in ("tiago", "care_room"):
        out = tmp_path / f"{target}.png"
        result = runner.invoke(app, ["show", target, "--out", str(out), "--width", "320", "--height", "240"])
        assert result.exit_code == 0, result.output
        image = imageio.imread(out)
        assert image.shape == (240, 320, 3)
        assert image.std() > 10, f"{target} picture is blank"


def test_show_unknown_target_is_a_plain_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["show", "tiagoo", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert "neither a robot nor a scene" in result.output and "Traceback" not in result.output


def test_showcase_writes_a_picture_and_a_video(tmp_path: Path) -> None:
    result = runner.invoke(app, ["showcase", "--seconds", "0.5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    assert imageio.imread(run / "scene.png").shape == (480, 640, 3)
    with imageio.get_reader(run / "scene.mp4") as reader:
        assert reader.count_frames() == 15  # 0.5 s at 30 fps
        assert np.asarray(reader.get_data(0)).std() > 10
    assert "g1" in result.output and "video" in result.output
