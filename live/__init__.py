"""Live operation: telemetry in over MQTT, plans out through a safety gate, history kept.

Submodules: :mod:`live.telemetry` (topics, payloads and their validation),
:mod:`live.ingest` (validation, state, de-duplication), :mod:`live.store` (the history store,
SQLite or PostgreSQL by URL) and :mod:`live.services` (a private Mosquitto and PostgreSQL for
tests, benchmarks and trials).

The only package that does network and database I/O.
"""

from __future__ import annotations

from live import ingest as ingest
from live import store as store
from live import telemetry as telemetry
from live.ingest import Ingestor
from live.store import Store, open_store

__all__ = ["Ingestor", "Store", "ingest", "open_store", "store", "telemetry"]
