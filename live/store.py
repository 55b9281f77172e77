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

Metered energy is kept at write time, in the transaction that stores the cabinets' telemetry,
at two grains: ``meter_night`` (one row per cabinet and night: the first and the last meter
reading, readable in SQL) and ``meter_month``, its rollup (one row per cabinet and month of
evenings, the month's nights packed in a blob, see :data:`MONTH_LAYOUT`).
:meth:`Store.metered_energy` reads the rollup alone: a year of 1,000 cabinets is 12,000 rows,
where it was 365,000 nights (0.25 s of SQLite turning them into text, and up to 1.5 s on a
loaded machine), and it never reads the raw telemetry. A batch's rollup rows are locked
(``ON CONFLICT DO UPDATE``, in key order) before they are read and merged, so ingestion
workers writing the same cabinet's month at once (a shared subscription) lose no reading.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import xarray as xr

from twin._errors import InputValidationError

__all__ = ["MONTH_LAYOUT", "Store", "from_us", "open_store", "to_us"]

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
CREATE TABLE IF NOT EXISTS meter_month (
    cabinet TEXT NOT NULL, month TEXT NOT NULL, nights {blob} NOT NULL,
    PRIMARY KEY (cabinet, month));
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


#: A ``meter_month.nights`` blob: float64 little-endian, 4 rows of 31 days (day 1 first); NaN
#: where the night has no reading. Times are microseconds since the epoch (exact in a float64
#: until the year 2255).
MONTH_LAYOUT: tuple[str, ...] = ("first_us", "first_wh", "last_us", "last_wh")
_DAYS = 31
_EMPTY_MONTH = np.full((len(MONTH_LAYOUT), _DAYS), np.nan, "<f8").tobytes()


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
            try:
                self._conn = psycopg.connect(url, autocommit=False)
            except psycopg.OperationalError as exc:  # no server there, refused, bad password
                shown = parsed._replace(netloc=parsed.netloc.rpartition("@")[2]).geturl()
                if parsed.username:
                    shown = shown.replace("://", f"://{parsed.username}@", 1)
                reason = str(exc).strip().splitlines()[0].removeprefix("connection failed: ")
                msg = f"--db: no PostgreSQL server answered at {shown} ({reason})"
                raise ConnectionError(msg) from None
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
        self._roll_up_history()

    # -- plumbing ----------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text.replace("?", self._ph) if self._ph != "?" else text

    @contextlib.contextmanager
    def _transaction(self, begin: str = "BEGIN") -> Iterator[Any]:
        """A cursor in one transaction (SQLite: ``begin``), committed, or rolled back on error."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                if self.engine == "sqlite":
                    cur.execute(begin)
                yield cur
                self._conn.commit() if self.engine == "postgresql" else cur.execute("COMMIT")
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; returns its rows."""
        with self._transaction() as cur:
            cur.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall() if cur.description else []
        return [tuple(r) for r in rows]

    def write(self, batches: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> list[int]:
        """Run several ``executemany`` in ONE transaction; returns the rows changed by each."""
        counts: list[int] = []
        with self._transaction() as cur:
            for sql, rows in batches:
                if not rows:
                    counts.append(0)
                    continue
                if sql == self.UPSERT_METER:
                    # key order: concurrent writers lock the nights (and months) alike
                    rows = _sorted_nights(rows)
                if self.engine == "postgresql" and sql in _COPY and len(rows) >= _COPY_MIN:
                    counts.append(_copy_insert(cur, rows, *_COPY[sql]))
                    continue
                before = self._conn.total_changes if self.engine == "sqlite" else 0
                cur.executemany(self._sql(sql), rows)
                if self.engine == "sqlite":
                    counts.append(self._conn.total_changes - before)
                else:
                    counts.append(max(cur.rowcount, 0))
                if sql == self.UPSERT_METER:
                    self._roll_up(cur, rows)
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
        tables = ("telemetry", "dead_letter", "meter_night", "meter_month", "commands", "audit")
        if table not in (*tables, "alarms"):
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
        read through the night by the cabinet's telemetry); a reading belongs to the night
        whose evening is the local date twelve hours earlier (:class:`live.ingest.Ingestor`).
        ``time`` is the evening's date at 00:00 UTC (naive datetime64,
        ``attrs["timezone"] = "UTC"``), for ``start <= date < end``; ``metered_hours`` is the
        span between the two readings. A night with a single reading is on the ``time`` axis
        with NaN: one reading measures no energy. Read from the monthly rollup (see the module
        docstring), never from the raw telemetry.
        """
        if start is not None and end is not None and start > end:
            msg = f"start: {start} is after end: {end}"
            raise InputValidationError(msg)
        where: list[str] = ["1=1"]
        params: list[Any] = []
        if cabinets is not None:
            cabinets = list(cabinets)
            where.append(
                "cabinet IN (" + ",".join("?" * len(cabinets)) + ")" if cabinets else "0=1"
            )
            params.extend(cabinets)
        if start is not None:
            where.append("month >= ?")
            params.append(start.strftime("%Y-%m"))
        if end is not None:
            where.append("month <= ?")
            params.append((end - dt.timedelta(days=1)).strftime("%Y-%m"))
        sql = self._sql(
            "SELECT cabinet, month, nights FROM meter_month WHERE "  # noqa: S608 - fixed fragments
            + " AND ".join(where)
        )
        with self._lock:
            # binary results on PostgreSQL: the blobs come as bytes, not as hex text to decode
            cur = self._conn.cursor(binary=True) if self.engine == "postgresql" else None
            cur = cur or self._conn.cursor()
            try:
                cur.execute(sql, tuple(params))
                rows = cur.fetchall()
                self._conn.commit()
            finally:
                cur.close()
        n = len(rows)
        size = len(MONTH_LAYOUT) * _DAYS
        data = np.frombuffer(b"".join(bytes(r[2]) for r in rows), "<f8").reshape(n, size)
        first_us, first_wh, last_us, last_wh = np.split(data, len(MONTH_LAYOUT), axis=1)
        months = np.array([r[1] for r in rows], dtype="datetime64[M]")
        dates = months.astype("datetime64[D]")[:, None] + np.arange(_DAYS)
        seen = ~np.isnan(first_us) & (dates < (months + 1).astype("datetime64[D]")[:, None])
        if start is not None:
            seen &= dates >= np.datetime64(start, "D")
        if end is not None:
            seen &= dates < np.datetime64(end, "D")
        ri, di = np.nonzero(seen)
        # cabinets and nights found in the rows (sorted): per row first, then per night
        row_cabs, row_ci = np.unique(np.array([r[0] for r in rows], dtype=str), return_inverse=True)
        used = np.zeros(len(row_cabs), bool)
        used[row_ci[ri]] = True
        cabs = row_cabs[used]
        ci = (np.cumsum(used) - 1)[row_ci[ri]]
        day = dates[ri, di].astype(np.int64)
        lo = int(day.min()) if len(day) else 0
        present = np.zeros(int(day.max()) - lo + 1 if len(day) else 0, bool)
        present[day - lo] = True
        days = (np.flatnonzero(present) + lo).astype("datetime64[D]")
        ti = (np.cumsum(present) - 1)[day - lo]
        span_us = last_us[ri, di] - first_us[ri, di]
        two = span_us > 0
        energy = np.full((len(cabs), len(days)), np.nan)
        hours = np.full((len(cabs), len(days)), np.nan)
        energy[ci, ti] = np.where(two, last_wh[ri, di] - first_wh[ri, di], np.nan)
        hours[ci, ti] = np.where(two, span_us / 3.6e9, np.nan)
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

    def _roll_up(self, cur: Any, rows: Sequence[Sequence[Any]]) -> None:
        """Merge nights (rows of :data:`UPSERT_METER`, key order) into their months' rollup.

        Each month's row is locked first (an upsert that changes nothing, in key order, which
        returns the row as committed by any other writer), then merged and written back.
        """
        keys: dict[tuple[str, str], int] = {}
        code = np.empty(len(rows), np.int64)
        day = np.empty(len(rows), np.int64)
        for i, r in enumerate(rows):
            month, dom = _month_day(r[1])
            code[i] = keys.setdefault((str(r[0]), month), len(keys))
            day[i] = dom
        vals = np.array([r[2:6] for r in rows], dtype=float).reshape(len(rows), 4)
        order = list(keys)
        current: dict[tuple[str, str], bytes] = {}
        for k in range(0, len(order), _LOCK_CHUNK):
            chunk = order[k : k + _LOCK_CHUNK]
            sql = (
                "INSERT INTO meter_month (cabinet, month, nights) VALUES "
                + ",".join(["(?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (cabinet, month) DO UPDATE SET nights = meter_month.nights "
                "RETURNING cabinet, month, nights"
            )
            cur.execute(self._sql(sql), [v for c, m in chunk for v in (c, m, _EMPTY_MONTH)])
            current.update({(str(c), str(m)): bytes(b) for c, m, b in cur.fetchall()})
        old = np.stack([np.frombuffer(current[k], "<f8") for k in order]).reshape(len(order), 4, -1)
        new = old.copy()
        slot = code * _DAYS + day
        arrival = np.arange(len(rows))
        # per night, the earliest first reading and the latest last (the earlier row on a tie)
        for t_col, sign, later in ((0, 1, False), (2, -1, True)):
            o = np.lexsort((arrival, sign * vals[:, t_col], slot))
            head = np.ones(len(o), bool)
            head[1:] = slot[o][1:] != slot[o][:-1]
            pick = o[head]
            c, d = code[pick], day[pick]
            have = new[c, t_col, d]
            t = vals[pick, t_col]
            take = np.isnan(have) | ((t > have) if later else (t < have))
            new[c[take], t_col, d[take]] = t[take]
            new[c[take], t_col + 1, d[take]] = vals[pick[take], t_col + 1]
        changed = ~np.all((new == old) | (np.isnan(new) & np.isnan(old)), axis=(1, 2))
        cur.executemany(
            self._sql("UPDATE meter_month SET nights = ? WHERE cabinet = ? AND month = ?"),
            [(new[i].astype("<f8").tobytes(), *order[i]) for i in np.flatnonzero(changed)],
        )

    def _roll_up_history(self) -> None:
        """Build the monthly rollup of a store written before it existed (from its nights)."""
        if self.execute("SELECT 1 FROM meter_month LIMIT 1") or not self.execute(
            "SELECT 1 FROM meter_night LIMIT 1"
        ):
            return
        with self._transaction("BEGIN IMMEDIATE") as cur:
            cur.execute(
                "SELECT cabinet, night, first_us, first_wh, last_us, last_wh FROM meter_night "
                "ORDER BY cabinet, night"
            )
            rows = cur.fetchall()
            if rows:
                self._roll_up(cur, rows)


def _month_day(night: object) -> tuple[str, int]:
    """``("YYYY-MM", day - 1)`` of a night ``"YYYY-MM-DD"``; a clear error for anything else."""
    try:
        if not (isinstance(night, str) and len(night) == 10):
            raise ValueError
        d = dt.date.fromisoformat(night)
    except ValueError:
        msg = f"night: {night!r} is not a date YYYY-MM-DD"
        raise InputValidationError(msg) from None
    return night[:7], d.day - 1


def _sorted_nights(rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
    """Meter rows checked (a night is a date) and in key order (a stable sort)."""
    for r in rows:
        _month_day(r[1])
    return sorted(rows, key=lambda r: (str(r[0]), str(r[1])))


#: Months locked and read per statement (3 parameters each: under SQLite's 32,766).
_LOCK_CHUNK = 1000


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
