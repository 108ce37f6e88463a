"""Shared fixtures: the markets config and small seeded demo catalogs built once per session."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mia_strategies.config import MarketsConfig
from mia_strategies.config import load_markets


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def markets() -> MarketsConfig:
    return load_markets(REPO / "config" / "markets.yaml")


@pytest.fixture(scope="session")
def roll_week_catalog(tmp_path_factory, markets) -> Path:
    """Five light Globex days of ES and MNQ (Mon 8 - Fri 12 Dec 2025), spanning the Dec 11 roll."""
    from catalog.demo import generate_demo_catalog

    path = tmp_path_factory.mktemp("demo") / "catalog"
    generate_demo_catalog(path, markets, trading_days=5, intensity=0.15, seed=11)
    return path


def run_mia(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: int = 900):
    """Run the `mia` console entry point in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mia_strategies.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
