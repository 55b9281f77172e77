"""The history store: telemetry, dead letters, metered energy, plans, commands, audit, alarms.

One schema, two engines, chosen by URL:

``sqlite:///path/history.db`` (the default, embedded)
    SQLite in WAL mode: readers never block the writer, a commit is one append to the log
    (``synchronous=NORMAL``: durable across a crash of the process, which is what a killed
    ingestion needs; across a power cut the last commits may go, the database stays sound, see
    sqlite.org/wal.html). Chosen over DuckDB because ingestion is many small appends with a
    unique key, which is what a row store with a B-tree does well, and it is in the standard
    library.
``postgresql://user@host:port/db``
    PostgreSQL through psycopg 3. Telemetry arrives in batches of thousands of rows: a batch is
    streamed with ``COPY`` into a temporary table and moved with one ``INSERT ... SELECT ... ON
    CONFLICT DO NOTHING`` (about 1 us of client time per row, where ``executemany`` costs
    15-25 us: the difference between one ingestion worker keeping up with the broker or not).
    Small batches and the other tables use ``executemany``.

The SQL is the same on both (``INSERT ... ON CONFLICT``); only the placeholders and two column
types differ. Times are stored as integer microseconds since the epoch, UTC.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import xarray as xr

from twin._errors import InputValidationError

__all__ = ["Store", "from_us", "open_store", "to_us"]

Engine = Literal["sqlite", "postgresql"]

_TABLES = """
CREATE TABLE IF NOT EXISTS telemetry (
    asset TEXT NOT NULL, msg_id TEXT NOT NULL, kind TEXT NOT NULL,
    ts_us BIGINT NOT NULL, received_us BIGINT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (asset, msg_id));
CREATE INDEX IF NOT EXISTS telemetry_asset_ts ON telemetry (asset, ts_us);
CREATE TABLE IF NOT EXISTS dead_letter (
    n {serial}, received_us BIGINT NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, payload {blob} NOT NULL);
CREATE TABLE IF NOT EXISTS meter_night (
    cabinet TEXT NOT NULL, night TEXT NOT NULL,
    first_us BIGINT NOT NULL, first_wh DOUBLE PRECISION NOT NULL,
    last_us BIGINT NOT NULL, last_wh DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (cabinet, night));
CREATE TABLE IF NOT EXISTS plans (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, city TEXT NOT NULL, body {blob} NOT NULL,
    created_us BIGINT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, target TEXT NOT NULL,
    assets INTEGER NOT NULL, sent_us BIGINT NOT NULL, expires_us BIGINT NOT NULL,
    attempts INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    acked_us BIGINT);
CREATE INDEX IF NOT EXISTS commands_plan ON commands (plan_id);
CREATE TABLE IF NOT EXISTS audit (
    n {serial}, ts_us BIGINT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    plan_id TEXT NOT NULL, result TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (
    n {serial}, asset TEXT NOT NULL, kind TEXT NOT NULL, raised_us BIGINT NOT NULL,
    acked_us BIGINT, acked_by TEXT, cleared_us BIGINT, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS proposals (
    n {serial}, ts_us BIGINT NOT NULL, city TEXT NOT NULL, kind TEXT NOT NULL,
    rule TEXT NOT NULL, status TEXT NOT NULL, readings TEXT NOT NULL, detail TEXT NOT NULL,
    reviewed_us BIGINT, reviewed_by TEXT);
"""


def to_us(t: dt.datetime) -> int:
    """Microseconds since the epoch of a tz-aware time."""
    return int(t.timestamp() * 1_000_000) if t.microsecond == 0 else _exact_us(t)


def _exact_us(t: dt.datetime) -> int:
    delta = t.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> dt.datetime:
    """The tz-aware UTC time of :func:`to_us`."""
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


class Store:
    """A history store (see the module docstring); open one with :func:`open_store`.

    Safe to share between threads: every call takes the store's lock.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        self._lock = threading.RLock()
        self.engine: Engine
        if parsed.scheme == "sqlite":
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
            if not path:
                msg = f"--db: {url!r}: a SQLite URL is sqlite:///PATH"
                raise InputValidationError(msg)
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = "sqlite"
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._conn: Any = conn
            self._ph = "?"
            ddl = _TABLES.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT", blob="BLOB")
            conn.executescript(ddl)
        elif parsed.scheme in ("postgresql", "postgres"):
            import psycopg

            self.engine = "postgresql"
            self._conn = psycopg.connect(url, autocommit=False)
            self._ph = "%s"
            ddl = _TABLES.format(serial="BIGSERIAL PRIMARY KEY", blob="BYTEA")
            with self._conn.cursor() as cur:
                for stmt in ddl.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
                # this connection's own staging table of the COPY path (see the module docstring)
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS telemetry_in (LIKE telemetry) "
                    "ON COMMIT DELETE ROWS"
                )
            self._conn.commit()
        else:
            msg = f"--db: {url!r} is neither sqlite:///PATH nor postgresql://..."
            raise InputValidationError(msg)

    # -- plumbing ----------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text.replace("?", self._ph) if self._ph != "?" else text

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; returns its rows."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                if self.engine == "sqlite":
                    cur.execute("BEGIN")
                cur.execute(self._sql(sql), tuple(params))
                rows = cur.fetchall() if cur.description else []
                self._conn.commit() if self.engine == "postgresql" else cur.execute("COMMIT")
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()
            return [tuple(r) for r in rows]

    def write(self, batches: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        """Run several ``executemany`` in ONE transaction; returns the rows changed by each."""
        with self._lock:
            cur = self._conn.cursor()
            counts: list[int] = []
            try:
                if self.engine == "sqlite":
                    cur.execute("BEGIN")
                for sql, rows in batches:
                    if not rows:
                        counts.append(0)
                        continue
                    if self.engine == "postgresql" and sql in _COPY and len(rows) >= _COPY_MIN:
                        counts.append(_copy_insert(cur, rows, *_COPY[sql]))
                        continue
                    before = self._conn.total_changes if self.engine == "sqlite" else 0
                    cur.executemany(self._sql(sql), rows)
                    if self.engine == "sqlite":
                        counts.append(self._conn.total_changes - before)
                    else:
                        counts.append(max(cur.rowcount, 0))
                self._conn.commit() if self.engine == "postgresql" else cur.execute("COMMIT")
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()
            return counts

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- telemetry ---------------------------------------------------------------------------
    INSERT_TELEMETRY = (
        "INSERT INTO telemetry (asset, msg_id, kind, ts_us, received_us, body) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (asset, msg_id) DO NOTHING"
    )
    INSERT_DEAD = (
        "INSERT INTO dead_letter (received_us, topic, reason, detail, payload) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    UPSERT_METER = (
        "INSERT INTO meter_night (cabinet, night, first_us, first_wh, last_us, last_wh) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (cabinet, night) DO UPDATE SET "
        "first_wh = CASE WHEN excluded.first_us < meter_night.first_us "
        "THEN excluded.first_wh ELSE meter_night.first_wh END, "
        "first_us = CASE WHEN excluded.first_us < meter_night.first_us "
        "THEN excluded.first_us ELSE meter_night.first_us END, "
        "last_wh = CASE WHEN excluded.last_us > meter_night.last_us "
        "THEN excluded.last_wh ELSE meter_night.last_wh END, "
        "last_us = CASE WHEN excluded.last_us > meter_night.last_us "
        "THEN excluded.last_us ELSE meter_night.last_us END"
    )

    def recent_ids(self, since_us: int) -> set[tuple[str, str]]:
        """``(asset, msg_id)`` of the telemetry received since ``since_us`` (de-duplication)."""
        rows = self.execute(
            "SELECT asset, msg_id FROM telemetry WHERE received_us >= ?", (since_us,)
        )
        return {(str(a), str(m)) for a, m in rows}

    def count(self, table: str, where: str = "", params: Sequence[Any] = ()) -> int:
        """Rows of a table (optionally filtered)."""
        if table not in ("telemetry", "dead_letter", "meter_night", "commands", "audit", "alarms"):
            msg = f"table: {table!r} is not a table of the store"
            raise InputValidationError(msg)
        sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")  # noqa: S608
        return int(self.execute(sql, params)[0][0])

    def dead_letters(self) -> pd.DataFrame:
        """The dead-letter table (``received`` in UTC)."""
        rows = self.execute(
            "SELECT n, received_us, topic, reason, detail, payload FROM dead_letter ORDER BY n"
        )
        df = pd.DataFrame(
            rows, columns=["n", "received_us", "topic", "reason", "detail", "payload"]
        )
        df["received"] = pd.to_datetime(df["received_us"], unit="us", utc=True)
        df["payload"] = [bytes(p) for p in df["payload"]]
        return df.drop(columns="received_us")

    def history(
        self,
        assets: Sequence[str] | None = None,
        *,
        kind: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        fields: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Telemetry as a table indexed by ``time`` (UTC), one column per field asked."""
        import msgspec

        where: list[str] = ["1=1"]
        params: list[Any] = []
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if assets is not None:
            where.append("asset IN (" + ",".join("?" * len(assets)) + ")")
            params.extend(assets)
        if start is not None:
            where.append("ts_us >= ?")
            params.append(to_us(start))
        if end is not None:
            where.append("ts_us < ?")
            params.append(to_us(end))
        sql = (
            "SELECT asset, ts_us, body FROM telemetry WHERE "  # noqa: S608 - fixed fragments
            + " AND ".join(where)
            + " ORDER BY ts_us, asset"
        )
        rows = self.execute(sql, params)
        bodies = msgspec.json.decode(b"[" + b",".join(r[2].encode() for r in rows) + b"]")
        df = pd.DataFrame(
            {"asset": [r[0] for r in rows]},
            index=pd.DatetimeIndex(pd.to_datetime([r[1] for r in rows], unit="us", utc=True)),
        )
        df.index.name = "time"
        for f in fields:
            df[f] = [b.get(f) for b in bodies]
        return df

    # -- metered energy ------------------------------------------------------------------------
    def metered_energy(
        self,
        cabinets: Sequence[str] | None = None,
        *,
        start: dt.date | None = None,
        end: dt.date | None = None,
    ) -> xr.Dataset:
        """Metered energy per cabinet and night (``energy_wh``, dims ``cabinet`` x ``time``).

        A night's energy is the meter index at its last reading minus the first (the meter is
        read through the night by the cabinet's telemetry); ``time`` is the evening's date at
        00:00 UTC (naive datetime64, ``attrs["timezone"] = "UTC"``). Nights without two
        readings are NaN.
        """
        where: list[str] = ["1=1"]
        params: list[Any] = []
        if cabinets is not None:
            where.append("cabinet IN (" + ",".join("?" * len(cabinets)) + ")")
            params.extend(cabinets)
        if start is not None:
            where.append("night >= ?")
            params.append(start.isoformat())
        if end is not None:
            where.append("night < ?")
            params.append(end.isoformat())
        if self.engine == "postgresql":
            cabs, days, ci, ti, e, span = self._meter_rows_pg(where, params)
        else:
            cabs, days, ci, ti, e, span = self._meter_rows_sqlite(where, params)
        energy = np.full((len(cabs), len(days)), np.nan)
        hours = np.full((len(cabs), len(days)), np.nan)
        energy[ci, ti] = e
        hours[ci, ti] = span / 3600.0
        ds = xr.Dataset(
            {
                "energy_wh": (
                    ("cabinet", "time"),
                    energy,
                    {"units": "Wh", "long_name": "metered energy of the night"},
                ),
                "metered_hours": (
                    ("cabinet", "time"),
                    hours,
                    {"units": "h", "long_name": "span between the night's first and last reading"},
                ),
            },
            coords={"cabinet": cabs, "time": days.astype("datetime64[ns]")},
        )
        ds["time"].attrs.update({"timezone": "UTC", "long_name": "evening of the night"})
        return ds

    def _meter_rows_sqlite(self, where: list[str], params: list[Any]) -> tuple[np.ndarray, ...]:
        # one row per cabinet, its nights aggregated as text: a year of 1,000 cabinets is then
        # 1,000 rows to fetch rather than 365,000 (row objects are what costs, not the query)
        cols = ("night", "last_wh - first_wh", "(last_us - first_us) / 1000000.0")
        sql = (
            "SELECT cabinet, "  # noqa: S608 - fixed fragments
            + ", ".join(f"group_concat({c}, ',')" for c in cols)
            + " FROM meter_night WHERE "
            + " AND ".join(where)
            + " GROUP BY cabinet ORDER BY cabinet"
        )
        rows = self.execute(sql, params)
        cabs = np.array([r[0] for r in rows], dtype=str)
        per = [r[1].split(",") for r in rows]
        counts = np.array([len(p) for p in per], dtype=np.int64)
        ci = np.repeat(np.arange(len(rows)), counts)
        ti, nights = pd.factorize(pd.Series([n for p in per for n in p], dtype=object), sort=True)
        days = np.asarray(nights, dtype="datetime64[D]")
        e = np.array(",".join(r[2] for r in rows).split(",") if rows else [], dtype=float)
        span = np.array(",".join(str(r[3]) for r in rows).split(",") if rows else [], dtype=float)
        return cabs, days, ci, ti, e, span

    def _meter_rows_pg(self, where: list[str], params: list[Any]) -> tuple[np.ndarray, ...]:
        # COPY streams the rows as CSV, parsed by pandas' C reader: no Python object per row
        import io

        sql = (
            "COPY (SELECT cabinet, night, last_wh - first_wh, "  # noqa: S608 - fixed fragments
            "(last_us - first_us) / 1000000.0 FROM meter_night WHERE "
            + " AND ".join(where).replace("?", "%s")
            + ") TO STDOUT WITH (FORMAT csv)"
        )
        buf = io.BytesIO()
        with self._lock, self._conn.cursor() as cur:
            with cur.copy(sql, params) as copy:
                for chunk in copy:
                    buf.write(chunk)
            self._conn.commit()
        buf.seek(0)
        df = pd.read_csv(buf, header=None, names=["cabinet", "night", "wh", "s"])
        ci, cabs = pd.factorize(df["cabinet"], sort=True)
        ti, nights = pd.factorize(df["night"], sort=True)
        days = np.asarray(nights, dtype="datetime64[D]")
        return (
            np.asarray(cabs, dtype=str),
            days,
            ci,
            ti,
            df["wh"].to_numpy(float),
            df["s"].to_numpy(float),
        )


#: Statements that PostgreSQL runs as COPY into a staging table: the table and its columns.
_COPY = {Store.INSERT_TELEMETRY: ("telemetry", "asset, msg_id, kind, ts_us, received_us, body")}
#: Rows from which a PostgreSQL batch goes through COPY rather than executemany.
_COPY_MIN = 64


def _copy_insert(cur: Any, rows: Sequence[Sequence[Any]], table: str, columns: str) -> int:
    """Stream ``rows`` into ``<table>_in`` with COPY, then insert the new ones; returns how many."""
    with cur.copy(f"COPY {table}_in ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cur.execute(
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table}_in "  # noqa: S608
        "ON CONFLICT DO NOTHING"
    )
    # the staging table empties at the commit (ON COMMIT DELETE ROWS); a second batch in the
    # same transaction would find the first's rows there, already inserted: nothing counted twice
    return max(int(cur.rowcount), 0)


def open_store(url: str | None = None, *, folder: str | Path | None = None) -> Store:
    """The store at ``url``; default ``sqlite:///<folder>/history.db`` (folder: ``.``)."""
    if url is None:
        url = f"sqlite:///{Path(folder or '.') / 'history.db'}"
    return Store(url)
