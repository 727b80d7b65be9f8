"""Shared fixtures: real PyBullet worlds in DIRECT mode, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tianji.sim import World, WorldConfig


@pytest.fixture
def world() -> Iterator[World]:
    """A fresh headless world with a floor, seed 0."""
    with World(WorldConfig(seed=0)) as w:
        yield w
