"""Fixtures of the live tests: a real Mosquitto and a real PostgreSQL, each on a free port.

Both come from the Debian packages that ``./dev test`` installs; each test session starts its
own (never the machine's services), and stops them at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    from live.services import Postgres

    with Postgres(fsync=False) as pg:
        yield pg


@pytest.fixture
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty store: SQLite (WAL) in a temp folder, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    import psycopg

    pg = request.getfixturevalue("postgres_server")
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return pg.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    """The store at ``store_url``, closed after the test."""
    from live.store import open_store

    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def assets(bondy) -> object:  # type: ignore[no-untyped-def]
    """Bondy's assets as the ingestion checks them."""
    from live.ingest import assets_of

    return assets_of(bondy)


@pytest.fixture
def mosquitto() -> Iterator[object]:
    from live.services import Mosquitto

    with Mosquitto() as broker:
        yield broker


def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Poll until ``predicate()`` holds (a bound on waiting for the broker, not a speed check)."""
    end = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < end:
        time.sleep(0.05)
    return predicate()
