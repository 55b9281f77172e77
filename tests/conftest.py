"""Shared fixtures: the real data (``TWIN_DATA``), an isolated build cache, and real twins.

Tests read real data from ``TWIN_DATA``; when it is unset they use ``../shared/data`` beside
the checkout, as the README's test command does. A missing data folder fails loudly rather than
skipping: the suite is meant to run on the real extracts.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    raw = os.environ.get("TWIN_DATA")
    root = Path(raw).expanduser() if raw else REPO.parent / "shared" / "data"
    return root.resolve()


# Set before any test imports twin: every test sees the same data root and a private cache.
os.environ["TWIN_DATA"] = str(_data_root())
os.environ.setdefault("TWIN_CACHE", tempfile.mkdtemp(prefix="twin-test-cache-"))
os.environ.setdefault("TWIN_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder of real data sets (``TWIN_DATA``)."""
    root = Path(os.environ["TWIN_DATA"])
    if not (root / "montpellier").is_dir() or not (root / "osm").is_dir():
        pytest.fail(
            f"TWIN_DATA={root} does not hold the shared data sets (montpellier/, osm/); "
            "set TWIN_DATA to the shared data folder"
        )
    return root


@pytest.fixture(scope="session")
def montpellier(data_root: Path):  # type: ignore[no-untyped-def]
    """The Montpellier twin (municipal GIS data), built once per session."""
    import twin

    return twin.load("montpellier")


@pytest.fixture(scope="session")
def bondy(data_root: Path):  # type: ignore[no-untyped-def]
    """The Bondy twin (OSM XML extract)."""
    import twin

    return twin.load("bondy")


@pytest.fixture(scope="session")
def paris(data_root: Path):  # type: ignore[no-untyped-def]
    """The Paris-Trocadéro twin (OSMnx GraphML)."""
    import twin

    return twin.load("paris-trocadero")


# the live layer's services (a real Mosquitto and PostgreSQL), in their own module
pytest_plugins = ["live_fixtures"]
