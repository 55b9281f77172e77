"""Calibrate the pedestrian demand the lighting plan reads against footfall counters.

The plan reads footfall through a :class:`~twin.scenarios.demand.Demand` (by default the
calendar forecast, :class:`~twin.scenarios.calendar.CalendarDemand`: a daily footfall per segment
from its road class and points of interest, times the hourly walking profile
:data:`~twin.scenarios.profiles.HOURLY_PROFILES` of the day type). Counters give persons per
period on their segment; this module fits two numbers to them, the ones the data can identify
and the plan can use:

* ``scale``: the day's walking against the prior's (a multiplier of every segment's footfall);
* ``night_share``: the share of a weekday's walking in the evening and night hours
  :data:`NIGHT_HOURS` (19:00-07:00 local), the hours the lighting serves.

The calibrated footfall is the prior's times ``f_day`` in the day hours and ``f_night`` in the
night hours, where ``f_day D + f_night N = scale`` and ``f_night N / scale = night_share`` (``D``,
``N``: the prior weekday profile's day and night shares). Both are found in closed form, by Poisson
maximum likelihood: ``f_night`` is the counted total of the fitted counters' night hours over the
prior's expectation of the same hours, ``f_day`` the same by day. One half of the day alone (no
night counts, say) identifies its own factor only; the other keeps the prior's ratio, and the
result says so.

What it changes in the plan: the plan reads each segment's footfall as a share of that segment's
busiest hour of the day (:func:`optimize.dimming.forecast_night`), so ``scale`` cancels out of it
(it reaches only the ``service`` objective's weights); ``night_share`` changes the evening and
night slots against the day's peak, hence the adaptive classes of P-class streets. Montpellier's
plan for the night of 2026-12-03 is not very sensitive to it: 16,211 kWh (64.8% saved) at the
default 17.3%, 16,230 kWh (64.8%) at 26%, 16,190 kWh (64.9%) at 12%; most of its lights are on
M-class roads, and a P-class slot takes the busier of its footfall and its traffic.

Observations
------------
One row per counter and counting period (:func:`read_counts` reads them from a CSV file; the live
history store gives them through :func:`live.counts.footfall_observations`):

``counter``
    Counter id (a registry ``sensor`` of type ``footfall``, or any id with a ``segment``).
``segment``
    Optional: the segment id the counter counts on (default: the registry counter's).
``start``
    Start of the period: ISO 8601 with a UTC offset (``2024-03-04T08:00:00+01:00``, ``...Z``),
    or without one, then in the city's local time (an hour a DST change makes ambiguous or
    skips is refused); ``dd/mm/yyyy HH:MM`` is read too.
``end`` or ``minutes``
    End of the period (same forms), or its length in minutes. Without either, the caller gives
    the period length (``period_minutes``). A period lies within one clock hour (an hour, a
    quarter of an hour, ...): the fit compares hours.
``count``
    Persons counted in the period (both directions).

French open-data exports are read as they come: ``;`` or ``,`` separated, UTF-8 or Latin-1, a
decimal comma, and the French column names of :data:`COLUMN_ALIASES`.

Every row is accepted or rejected with its counter id and reason (:func:`check_counts`): no
counter id, no such counter in the registry (and no segment given), no such segment, a segment
nobody may walk, a negative or NaN count, an unreadable time, a period end not after its start, a
period not within one clock hour, a time outside the range asked, a counter given two segments,
a second row of one counter and start.

Fit and report
--------------
Counters are held out by the fixed rule of the traffic calibration
(:func:`twin.scenarios.calibration.held_out` on the counter id: CRC-32 modulo 10, buckets
``0 .. 10 holdout - 1``). Each counter-hour's counted and modelled persons are compared with the
GEH statistic, before (the prior) and after calibration, on fitted and held-out counters.

Cities without counters (Montpellier)
-------------------------------------
None of the shipped data sets counts pedestrians: Montpellier's 3,314 counts are of vehicles
(pneumatic or magnetic tubes, ``VilleMTP_MTP_Comptage``), its signal file lists junctions
(``Passage Piéton`` names a signalised crossing, not a count), Dijon's cycle files are geometry,
the OSM extracts have no counts. So nothing here can calibrate the two numbers above for
Montpellier; its plan keeps the default profile, and reports say the footfall is uncalibrated.

The proxy chosen is the city's own marking of its pedestrian streets: the road file's
``OCCUPATION = Piéton`` (641 centrelines), which the build does not read (it takes a street's
class from its type and traffic direction). A highway engineer accepts a municipal pedestrian
zone as where walking concentrates. :func:`proxy_report` sets it against the prior's daily
footfall. What it can check: where the model puts the walking (the marked streets should rank
among the busiest). What it cannot calibrate: the level (it holds no number of persons), the
evening and night share (it holds no time), hence nothing the plan reads: a segment's footfall
reaches the plan only as a share of its own busiest hour. On Montpellier the marked streets are
modelled mostly as residential streets (574 of 641): 790 pedestrians a weekday on average,
against 935 on the other walkable streets, and 7.6% of them among the busiest quarter of walkable
segments. A counter campaign on a few of them is what would calibrate them; until then the check
says where the model is weakest, and changes nothing.

Examples
--------
>>> c = FootfallCalibration(scale=1.4, night_share=0.2)
>>> d, n = c.factors()
>>> round(d * (1 - prior_night_share()) + n * prior_night_share(), 6)
1.4
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from twin._errors import InputValidationError
from twin._files import read_report
from twin.scenarios.profiles import HOURLY_PROFILES

if TYPE_CHECKING:
    from twin.model import Twin
    from twin.scenarios.providers import Demand

__all__ = [
    "COLUMN_ALIASES",
    "NIGHT_HOURS",
    "CalibratedFootfall",
    "FootfallCalibration",
    "FootfallFit",
    "calibrate_footfall",
    "check_counts",
    "load_footfall_calibration",
    "pedestrian_marking",
    "prior_night_share",
    "proxy_report",
    "read_counts",
]

log = logging.getLogger(__name__)

NIGHT_HOURS: tuple[int, ...] = (19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6)
"""Local clock hours of the evening and night (19:00-07:00): the lit hours of most of the year
(dusk is 17:00-22:00 and dawn 05:45-08:30 in metropolitan France)."""

FILE = "footfall_calibration.json"
"""What ``twin footfall calibrate --out DIR`` writes and ``--footfall-calibration DIR`` reads."""

COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    "counter": ("counter", "sensor", "compteur", "id compteur", "identifiant du compteur",
                "nom du compteur"),
    "segment": ("segment", "troncon"),
    "start": ("start", "debut", "date", "date et heure de comptage", "horodatage"),
    "end": ("end", "fin"),
    "minutes": ("minutes", "duree min", "period minutes"),
    "count": ("count", "comptage", "comptage horaire", "nombre", "passages"),
}  # fmt: skip
"""Column names read (lower case, accents, ``_`` and ``-`` ignored), per column."""

REJECT_COLUMNS = ("source", "counter", "field", "value", "reason")
_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$", re.IGNORECASE)


def prior_night_share(night_hours: Sequence[int] = NIGHT_HOURS) -> float:
    """Share of a weekday's walking in ``night_hours`` by the default profile.

    >>> round(prior_night_share(), 4)
    0.1728
    """
    prof = np.asarray(HOURLY_PROFILES["walk"]["weekday"], dtype=float)
    return float(prof[list(_hours(night_hours))].sum() / prof.sum())


def _hours(night_hours: Sequence[int]) -> tuple[int, ...]:
    hours = tuple(int(h) for h in night_hours)
    if not hours or any(not 0 <= h <= 23 for h in hours) or len(set(hours)) != len(hours):
        msg = f"night_hours: {tuple(night_hours)!r} must be distinct hours 0-23, at least one"
        raise InputValidationError(msg)
    if len(hours) == 24:
        msg = "night_hours: all 24 hours leave no day hours to tell the night share from"
        raise InputValidationError(msg)
    return hours


@dataclasses.dataclass(frozen=True)
class FootfallCalibration:
    """The calibrated walk demand: a daily scale and the share of walking at night.

    Parameters
    ----------
    scale : float
        The day's walking against the prior's (> 0).
    night_share : float, optional
        Share of a weekday's walking in ``night_hours`` (0-1, exclusive); default: the prior's
        (:func:`prior_night_share`).
    night_hours : tuple of int
        Local clock hours of the night.
    """

    scale: float = 1.0
    night_share: float | None = None
    night_hours: tuple[int, ...] = NIGHT_HOURS

    def __post_init__(self) -> None:
        object.__setattr__(self, "night_hours", _hours(self.night_hours))
        if not (isinstance(self.scale, int | float) and np.isfinite(self.scale) and self.scale > 0):
            msg = f"FootfallCalibration.scale: {self.scale!r} must be a finite number > 0"
            raise InputValidationError(msg)
        share = self.night_share
        if share is None:
            object.__setattr__(self, "night_share", prior_night_share(self.night_hours))
        elif not (isinstance(share, int | float) and 0 < share < 1):
            msg = f"FootfallCalibration.night_share: {share!r} must be a share in (0, 1)"
            raise InputValidationError(msg)

    @property
    def prior_night_share(self) -> float:
        """The default profile's night share for these hours."""
        return prior_night_share(self.night_hours)

    def factors(self) -> tuple[float, float]:
        """Multipliers of the prior's footfall in the day hours and in the night hours."""
        n0 = self.prior_night_share
        share = float(self.night_share)  # type: ignore[arg-type]
        return self.scale * (1 - share) / (1 - n0), self.scale * share / n0

    def hour_factors(self) -> np.ndarray:
        """Multiplier of the prior's footfall per local clock hour (24 values)."""
        day, night = self.factors()
        out = np.full(24, day)
        out[list(self.night_hours)] = night
        return out

    def apply(self, demand: Demand, *, timezone: str) -> CalibratedFootfall:
        """``demand`` with its footfall calibrated (traffic unchanged)."""
        return CalibratedFootfall(demand, self, timezone=timezone)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (what :func:`load_footfall_calibration` reads back)."""
        day, night = self.factors()
        return {
            "scale": self.scale,
            "night_share": self.night_share,
            "night_hours": list(self.night_hours),
            "prior_night_share": self.prior_night_share,
            "day_factor": day,
            "night_factor": night,
        }


class CalibratedFootfall:
    """A :class:`~twin.scenarios.demand.Demand` whose footfall is calibrated by counters.

    Footfall is the base demand's times the calibration's factor of the local hour; traffic is
    the base demand's.

    Parameters
    ----------
    base : Demand
    calibration : FootfallCalibration
    timezone : str
        The local clock of :data:`NIGHT_HOURS` (the city's time zone).
    """

    def __init__(self, base: Demand, calibration: FootfallCalibration, *, timezone: str) -> None:
        self.base = base
        self.calibration = calibration
        self.timezone = timezone
        self._factor = calibration.hour_factors()

    def _hour_factor(self, times: np.ndarray) -> np.ndarray:
        arr = np.asarray(times)
        if not np.issubdtype(arr.dtype, np.datetime64):
            msg = f"times: expected naive-UTC datetime64 values, got dtype {arr.dtype}"
            raise InputValidationError(msg)
        idx = pd.DatetimeIndex(arr.astype("datetime64[ns]")).tz_localize("UTC")
        return np.asarray(self._factor[np.asarray(idx.tz_convert(self.timezone).hour)])

    def footfall(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Pedestrians per hour, shape ``(len(segments), len(times))``."""
        base = np.asarray(self.base.footfall(segments, times), dtype=float)
        return np.asarray(base * self._hour_factor(times)[None, :])

    def traffic(self, segments: Sequence[str], times: np.ndarray) -> np.ndarray:
        """Vehicles per hour, the base demand's."""
        return np.asarray(self.base.traffic(segments, times))


# observations
# ------------------------------------------------------------------------------------------------
def _key(name: str) -> str:
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[_\-()]", " ", text.lower()).split())


def read_counts(path: str | Path) -> pd.DataFrame:
    """Read counter observations from a CSV file (the columns of the module docstring).

    The separator (``;`` or ``,``) and the encoding (UTF-8, else Latin-1) are found from the
    file; columns are renamed to ``counter``, ``segment``, ``start``, ``end``, ``minutes`` and
    ``count`` by :data:`COLUMN_ALIASES` and kept as text (:func:`check_counts` reads them and
    reports what it cannot). A ``source`` column gives each row's line in the file.

    Raises
    ------
    InputValidationError
        An unreadable file, or no counter, start or count column (naming the names read).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        msg = f"{path}: cannot be read ({exc})"
        raise InputValidationError(msg) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    header = text.split("\n", 1)[0]
    sep = ";" if header.count(";") > header.count(",") else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = f"{path}: not a CSV table ({exc})"
        raise InputValidationError(msg) from None
    names: dict[str, str] = {}
    for col in frame.columns:
        k = _key(col)
        for target, aliases in COLUMN_ALIASES.items():
            if k in aliases and target not in names.values():
                names[col] = target
    frame = frame.rename(columns=names)[list(names.values())]
    missing = [c for c in ("counter", "start", "count") if c not in frame.columns]
    if missing:
        msg = (
            f"{path}: no {', '.join(missing)} column (read: "
            + "; ".join(f"{t}: {', '.join(a)}" for t, a in COLUMN_ALIASES.items() if t in missing)
            + ")"
        )
        raise InputValidationError(msg)
    if sep == ";":  # French exports write decimals with a comma
        frame["count"] = frame["count"].str.replace(",", ".", regex=False)
    frame.insert(0, "source", [f"line {i + 2}" for i in range(len(frame))])
    return frame.reset_index(drop=True)


def _times(values: pd.Series, tz: str) -> tuple[pd.Series, pd.Series]:
    """Naive-UTC times of text values, and which were refused as ambiguous local times."""
    text = values.astype(str).str.strip()
    has_offset = text.str.contains(_OFFSET)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    dst = pd.Series(False, index=values.index)
    if has_offset.any():
        got = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
        out[has_offset] = got.dt.tz_localize(None)
    naive = ~has_offset & (text != "")
    if naive.any():
        got = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
        redo = got.isna()
        if redo.any():
            got[redo] = pd.to_datetime(text[naive][redo], format="%d/%m/%Y %H:%M", errors="coerce")
        local = pd.DatetimeIndex(got).tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        utc = pd.Series(local.tz_convert("UTC").tz_localize(None), index=got.index)
        out[naive] = utc
        dst[naive] = (utc.isna() & got.notna()).to_numpy()
    return out, dst


def _footfall_counters(tw: Twin) -> pd.Series:
    sensors = tw.registry["sensor"]
    foot = sensors[sensors["sensor_type"] == "footfall"]
    out: pd.Series = foot["segment"].astype(str)
    return out


def check_counts(
    obs: pd.DataFrame,
    tw: Twin,
    *,
    period: tuple[dt.date, dt.date] | None = None,
    period_minutes: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accept or reject every observation, with its counter id and reason.

    Parameters
    ----------
    obs : pandas.DataFrame
        Columns ``counter``, ``start``, ``count``, and ``end`` or ``minutes`` (or
        ``period_minutes``); optional ``segment`` and ``source`` (a row label for reports).
    tw : twin.model.Twin
    period : (datetime.date, datetime.date), optional
        First and last local day of the observations to use; the others are rejected.
    period_minutes : float, optional
        Length of every period where the table has no ``end`` or ``minutes``.

    Returns
    -------
    (accepted, rejected)
        ``accepted``: ``source``, ``counter``, ``segment``, ``start``, ``end`` (naive UTC),
        ``count``; ``rejected``: ``source``, ``counter``, ``field``, ``value``, ``reason`` (one
        row per rejected observation, its first problem). Together they hold every row.
    """
    for col in ("counter", "start", "count"):
        if col not in obs.columns:
            msg = f"observations: column {col!r} is missing"
            raise InputValidationError(msg)
    if period is not None and not period[0] <= period[1]:
        msg = f"period: {period[0]} is after {period[1]}"
        raise InputValidationError(msg)
    if "end" not in obs.columns and "minutes" not in obs.columns and period_minutes is None:
        msg = "observations: no end or minutes column; give the period length (period_minutes)"
        raise InputValidationError(msg)
    if period_minutes is not None and not (np.isfinite(period_minutes) and period_minutes > 0):
        msg = f"period_minutes: {period_minutes!r} must be a number > 0"
        raise InputValidationError(msg)
    tz = tw.city.timezone
    obs = obs.reset_index(drop=True)
    n = len(obs)
    source = (
        obs["source"].astype(str) if "source" in obs.columns else pd.Series(
            [f"row {i}" for i in range(n)], dtype=object)
    )  # fmt: skip
    counter = obs["counter"].fillna("").astype(str).str.strip()
    reason = pd.Series("", index=obs.index, dtype=object)
    field = pd.Series("", index=obs.index, dtype=object)
    value = pd.Series("", index=obs.index, dtype=object)

    def refuse(mask: Any, name: str, values: pd.Series, why: str) -> None:
        m = np.asarray(mask, dtype=bool) & (reason == "").to_numpy()
        reason[m], field[m], value[m] = why, name, values[m].astype(str)

    refuse(counter == "", "counter", counter, "no counter id")
    count = pd.to_numeric(obs["count"], errors="coerce")
    refuse(~(count >= 0), "count", obs["count"], "negative or NaN count")
    start, dst_s = _times(obs["start"], tz)
    refuse(dst_s, "start", obs["start"], "local time a DST change makes ambiguous or skips")
    refuse(start.isna(), "start", obs["start"], "not a time")
    if "end" in obs.columns and obs["end"].astype(str).str.strip().ne("").any():
        end, dst_e = _times(obs["end"], tz)
        refuse(dst_e, "end", obs["end"], "local time a DST change makes ambiguous or skips")
        refuse(end.isna(), "end", obs["end"], "not a time")
        end_col, end_raw = "end", obs["end"]
    else:
        if "minutes" in obs.columns:
            minutes = pd.to_numeric(obs["minutes"], errors="coerce")
            refuse(~(minutes > 0), "minutes", obs["minutes"], "not a period length > 0")
            end_col, end_raw = "minutes", obs["minutes"]
        else:
            minutes = pd.Series(float(period_minutes or 0), index=obs.index)
            end_col, end_raw = "minutes", minutes
        end = start + pd.to_timedelta(minutes.where(minutes > 0), unit="min")
    refuse(~(end > start), end_col, end_raw, "period end not after its start")
    within = (start.dt.floor("h") == (end - pd.Timedelta(microseconds=1)).dt.floor("h")) & (
        end - start <= pd.Timedelta(hours=1)
    )
    refuse(~within, end_col, end_raw, "period not within one clock hour (hourly GEH)")
    if period is not None:
        lo = pd.Timestamp(period[0]).tz_localize(tz).tz_convert("UTC").tz_localize(None)
        hi = pd.Timestamp(period[1] + dt.timedelta(days=1)).tz_localize(tz)
        hi = hi.tz_convert("UTC").tz_localize(None)
        outside = (start < lo) | (end > hi)
        refuse(outside, "start", obs["start"], f"outside the range {period[0]} to {period[1]}")
    # the counter's segment: the row's, else the registry counter's
    registry = _footfall_counters(tw)
    given = (
        obs["segment"].fillna("").astype(str).str.strip()
        if "segment" in obs.columns
        else pd.Series("", index=obs.index)
    )
    segment = given.where(given != "", counter.map(registry).fillna(""))
    refuse(
        (given == "") & (segment == ""),
        "counter",
        counter,
        "no such footfall counter in the registry (and no segment given)",
    )
    seg = tw.registry["segment"]
    known = segment.isin(seg.index.astype(str))
    refuse(~known, "segment", segment, "no matching segment in the twin")
    walk = seg["walk"].astype(bool)
    walk.index = walk.index.astype(str)
    refuse(known & ~segment.map(walk).fillna(False).astype(bool), "segment", segment,
           "segment nobody may walk (no footfall in the model)")  # fmt: skip
    ok = (reason == "").to_numpy()
    first_seg = segment[ok].groupby(counter[ok]).transform("first")
    other = pd.Series(False, index=obs.index)
    other[ok] = (segment[ok] != first_seg).to_numpy()
    refuse(other, "segment", segment, "counter tied to another segment on an earlier row")
    ok = (reason == "").to_numpy()
    dup = pd.Series(False, index=obs.index)
    dup[ok] = pd.DataFrame({"c": counter[ok], "s": start[ok]}).duplicated().to_numpy()
    refuse(dup, "start", obs["start"], "second row of this counter and start")
    ok = (reason == "").to_numpy()
    accepted = pd.DataFrame(
        {
            "source": source[ok].to_numpy(),
            "counter": counter[ok].to_numpy(),
            "segment": segment[ok].to_numpy(),
            "start": start[ok].to_numpy(),
            "end": end[ok].to_numpy(),
            "count": count[ok].to_numpy(float),
        }
    )
    bad = ~ok
    rejected = pd.DataFrame(
        {
            "source": source[bad].to_numpy(),
            "counter": counter[bad].to_numpy(),
            "field": field[bad].to_numpy(),
            "value": value[bad].to_numpy(),
            "reason": reason[bad].to_numpy(),
        },
        columns=list(REJECT_COLUMNS),
    )
    for r in rejected.itertuples():
        log.debug("%s (counter %s): %s=%r: %s", r.source, r.counter, r.field, r.value, r.reason)
    return accepted, rejected


# fit
# ------------------------------------------------------------------------------------------------
def _geh(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    from twin.scenarios.calibration import geh

    return np.asarray(geh(m, c))


@dataclasses.dataclass
class FootfallFit:
    """What :func:`calibrate_footfall` found.

    Attributes
    ----------
    calibration : FootfallCalibration
        The fitted scale and night share.
    table : pandas.DataFrame
        One row per counter and clock hour: ``counter``, ``segment``, ``hour`` (naive UTC),
        ``local_hour``, ``night``, ``covered_s`` (seconds of the hour counted), ``observed``
        (persons), ``prior`` and ``modelled`` (persons expected in the counted periods, before
        and after), ``geh_prior``, ``geh``, ``holdout``.
    counters : pandas.DataFrame
        One row per counter: hours, observed and modelled totals, share of hours with GEH < 5
        before and after, ``holdout``.
    rows, accepted : int
        Observations read, and accepted.
    rejected : pandas.DataFrame
        The rejected observations with their counter id and reason (:func:`check_counts`).
    identified : dict
        Whether the fitted hours held counts to fit the ``day`` and the ``night`` factor.
    """

    calibration: FootfallCalibration
    table: pd.DataFrame
    counters: pd.DataFrame
    rows: int
    accepted: int
    rejected: pd.DataFrame
    identified: dict[str, bool]

    def shares(self) -> dict[str, float]:
        """Share of counter-hours with GEH < 5 and the mean GEH, fitted and held out.

        Before and after calibration; NaN where there is no counter-hour.
        """
        out: dict[str, float] = {}
        t = self.table
        for part, sel in (("fitted", ~t["holdout"]), ("holdout", t["holdout"])):
            for when, col in (("before", "geh_prior"), ("after", "geh")):
                g = t.loc[sel, col].to_numpy(float)
                out[f"share_geh_below_5_{part}_{when}"] = (
                    float((g < 5).mean()) if g.size else np.nan
                )
                out[f"mean_geh_{part}_{when}"] = float(g.mean()) if g.size else np.nan
        out["counters_fitted"] = float((~self.counters["holdout"]).sum())
        out["counters_holdout"] = float(self.counters["holdout"].sum())
        return out

    def summary(self) -> str:
        """Return a readable summary."""
        c = self.calibration
        s = self.shares()
        by = {str(k): int(v) for k, v in self.rejected.groupby("reason")["source"].count().items()}
        text = (
            f"observations: {self.rows} read, {self.accepted} accepted, "
            f"{self.rows - self.accepted} rejected"
            + (" (" + ", ".join(f"{n} {r}" for r, n in by.items()) + ")" if len(by) else "")
            + f"\ncounters: {s['counters_fitted']:.0f} fitted, {s['counters_holdout']:.0f} held "
            f"out; counter-hours: {int((~self.table['holdout']).sum())} fitted, "
            f"{int(self.table['holdout'].sum())} held out\n"
            f"scale {c.scale:.3f} of the prior's walking; night share "
            f"({_span(c.night_hours)} local) {100 * float(c.night_share or 0):.1f}% "
            f"(prior {100 * c.prior_night_share:.1f}%)"
        )
        missing = [k for k, v in self.identified.items() if not v]
        if missing:
            text += f"; not identified (no fitted counts): {', '.join(missing)} factor"
        for part, label in (("fitted", "fitted counters"), ("holdout", "held-out counters")):
            text += (
                f"\nGEH < 5 per counter-hour on {label}: "
                f"{_pct(s[f'share_geh_below_5_{part}_before'])} before, "
                f"{_pct(s[f'share_geh_below_5_{part}_after'])} after (mean GEH "
                f"{s[f'mean_geh_{part}_before']:.2f} -> {s[f'mean_geh_{part}_after']:.2f})"
            )
        return text


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f}%"


def _span(hours: Sequence[int]) -> str:
    hs = list(hours)
    return f"{hs[0]:02d}:00-{(hs[-1] + 1) % 24:02d}:00" if hs else ""


def calibrate_footfall(
    tw: Twin,
    obs: pd.DataFrame,
    *,
    demand: Demand | None = None,
    period: tuple[dt.date, dt.date] | None = None,
    period_minutes: float | None = None,
    holdout: float = 0.3,
    night_hours: Sequence[int] = NIGHT_HOURS,
) -> FootfallFit:
    """Fit the walk demand's scale and night share to counter observations.

    Parameters
    ----------
    tw : twin.model.Twin
    obs : pandas.DataFrame
        Observations (:func:`read_counts`, :func:`live.counts.footfall_observations`).
    demand : Demand, optional
        The prior (default: the calendar forecast the lighting plan reads,
        :meth:`CalendarDemand.from_twin <twin.scenarios.calendar.CalendarDemand.from_twin>`).
    period, period_minutes
        See :func:`check_counts`.
    holdout : float
        Share of counters left out of the fit, in tenths, by the fixed rule of
        :func:`twin.scenarios.calibration.held_out` on their ids.
    night_hours : sequence of int
        Local clock hours of the night share.

    Raises
    ------
    InputValidationError
        No observation accepted, or none on a fitted counter.
    """
    from twin.scenarios.calibration import held_out

    if not (0 <= holdout <= 0.9):
        msg = f"holdout: {holdout!r} must be a share in 0-0.9 (tenths)"
        raise InputValidationError(msg)
    hours = _hours(night_hours)
    if demand is None:
        from twin.scenarios.calendar import CalendarDemand

        demand = CalendarDemand.from_twin(tw)
    accepted, rejected = check_counts(obs, tw, period=period, period_minutes=period_minutes)
    if accepted.empty:
        why = rejected.groupby("reason")["source"].count().to_dict() if len(rejected) else {}
        msg = f"observations: none accepted of {len(obs)} ({why or 'the table is empty'})"
        raise InputValidationError(msg)
    # the prior's persons expected in each period (the profiles are constant within an hour)
    segs = sorted(set(accepted["segment"]))
    times = np.unique(accepted["start"].to_numpy("datetime64[ns]"))
    rate = np.asarray(demand.footfall(segs, times), dtype=float)
    si = pd.Index(segs).get_indexer(accepted["segment"])
    ti = np.searchsorted(times, accepted["start"].to_numpy("datetime64[ns]"))
    dur_s = (accepted["end"] - accepted["start"]).dt.total_seconds().to_numpy(float)
    accepted["prior"] = rate[si, ti] * dur_s / 3600.0
    accepted["covered_s"] = dur_s
    accepted["hour"] = accepted["start"].dt.floor("h")
    table = (
        accepted.groupby(["counter", "hour"], sort=True)
        .agg(
            segment=("segment", "first"),
            covered_s=("covered_s", "sum"),
            observed=("count", "sum"),
            prior=("prior", "sum"),
        )
        .reset_index()
    )
    local = pd.DatetimeIndex(table["hour"]).tz_localize("UTC").tz_convert(tw.city.timezone)
    table["local_hour"] = np.asarray(local.hour, dtype=int)
    table["night"] = table["local_hour"].isin(hours)
    buckets = tuple(range(round(10 * holdout)))
    ids = sorted(set(table["counter"]))
    held = dict(zip(ids, held_out(ids, buckets).tolist(), strict=True))
    table["holdout"] = table["counter"].map(held).astype(bool)
    fit = table[~table["holdout"]]
    if fit.empty:
        msg = (
            f"observations: every counter is held out ({len(ids)} counters, holdout {holdout}); "
            "give more counters or a smaller holdout"
        )
        raise InputValidationError(msg)
    n0 = prior_night_share(hours)
    factor: dict[str, float | None] = {}
    for part, sel in (("day", ~fit["night"]), ("night", fit["night"])):
        expected = float(fit.loc[sel, "prior"].sum())
        factor[part] = float(fit.loc[sel, "observed"].sum()) / expected if expected > 0 else None
    identified = {k: v is not None for k, v in factor.items()}
    f_day, f_night = factor["day"], factor["night"]
    if f_day is None and f_night is None:
        msg = "observations: the prior expects nobody at the fitted counters' hours"
        raise InputValidationError(msg)
    f_day = f_night if f_day is None else f_day
    f_night = f_day if f_night is None else f_night
    assert f_day is not None  # noqa: S101 - narrowed above
    assert f_night is not None  # noqa: S101
    scale = f_day * (1 - n0) + f_night * n0
    if not scale > 0:
        msg = "observations: the fitted counters counted nobody; no scale can be fitted"
        raise InputValidationError(msg)
    share = min(max(f_night * n0 / scale, 1e-6), 1 - 1e-6)
    calib = FootfallCalibration(scale=scale, night_share=share, night_hours=hours)
    hf = calib.hour_factors()
    table["modelled"] = table["prior"] * hf[table["local_hour"].to_numpy()]
    obs_h = table["observed"].to_numpy(float)
    table["geh_prior"] = _geh(table["prior"].to_numpy(float), obs_h)
    table["geh"] = _geh(table["modelled"].to_numpy(float), obs_h)
    table = table[
        ["counter", "segment", "hour", "local_hour", "night", "covered_s", "observed", "prior",
         "modelled", "geh_prior", "geh", "holdout"]
    ]  # fmt: skip
    g = table.groupby("counter", sort=True)
    counters = pd.DataFrame(
        {
            "segment": g["segment"].first(),
            "hours": g.size(),
            "observed": g["observed"].sum(),
            "prior": g["prior"].sum(),
            "modelled": g["modelled"].sum(),
            "share_geh_below_5_before": g["geh_prior"].apply(lambda x: float((x < 5).mean())),
            "share_geh_below_5": g["geh"].apply(lambda x: float((x < 5).mean())),
            "holdout": g["holdout"].first(),
        }
    ).reset_index()
    return FootfallFit(
        calibration=calib,
        table=table.reset_index(drop=True),
        counters=counters,
        rows=len(obs),
        accepted=len(accepted),
        rejected=rejected,
        identified=identified,
    )


def load_footfall_calibration(
    folder: str | Path, *, city: str | None = None
) -> FootfallCalibration:
    """The calibration a ``twin footfall calibrate --out FOLDER`` run wrote.

    Raises
    ------
    InputValidationError
        A missing or unreadable file, another city, or parameters out of range (naming them).
    """
    path = Path(folder) / FILE
    report = read_report(path, "twin footfall calibrate --out")
    if city is not None and report.get("city") != city:
        msg = f"{path}: city {report.get('city')!r} is not the twin's ({city!r})"
        raise InputValidationError(msg)
    params = report.get("params")
    if not isinstance(params, dict):
        msg = f"{path}: no params"
        raise InputValidationError(msg)
    try:
        scale: Any = params.get("scale")
        return FootfallCalibration(
            scale=scale,
            night_share=params.get("night_share"),
            night_hours=tuple(params.get("night_hours") or ()),
        )
    except (InputValidationError, TypeError) as exc:
        msg = f"{path}: {exc}"
        raise InputValidationError(msg) from None


# cities without counters: the municipal pedestrian marking as a proxy
# ------------------------------------------------------------------------------------------------
def pedestrian_marking(tw: Twin, *, field: str = "OCCUPATION", value: str = "Piéton") -> pd.Series:
    """Whether the city's road file marks each segment's centreline as pedestrian.

    Reads ``field`` of the municipal roads layer (Montpellier's ``OCCUPATION``) and matches it
    to the segments by the layer's id (the segments' ``osmid``).

    Returns
    -------
    pandas.Series
        Bool per segment id.

    Raises
    ------
    InputValidationError
        The twin is not built from municipal files, or its road file has no ``field``.
    """
    from twin import municipal
    from twin.cache import input_files

    src = tw.city.source
    if src.get("kind") != "municipal":
        msg = f"{tw.city.name}: built from {src.get('kind')!r} data, not municipal road files"
        raise InputValidationError(msg)
    roads = src["roads"]
    spec = {**roads, "fields": {"id": roads["fields"]["id"], "marking": field}}
    layer, _ = municipal.read_layer(input_files(tw.city)["roads"], spec, what="roads")
    text = layer["marking"].fillna("").astype(str).str.strip().str.casefold()
    marked = dict(zip(layer["id"].astype(str), text == value.casefold(), strict=True))
    seg = tw.registry["segment"]
    out: pd.Series = seg["osmid"].astype(str).map(marked).fillna(False).astype(bool)
    out.name = "marked"
    return out


def proxy_report(
    tw: Twin, *, demand: Demand | None = None, field: str = "OCCUPATION", value: str = "Piéton"
) -> tuple[dict[str, float], pd.DataFrame]:
    """The municipal pedestrian marking against the prior's daily footfall (no counts needed).

    Returns
    -------
    (figures, table)
        ``figures``: marked segments and their length, the median and mean weekday footfall of
        the marked and of the other walkable segments, the share of the marked ones in the prior's
        busiest quarter of walkable segments, and the registry counters on marked segments;
        ``table``: one row per walkable segment (``highway``, ``marked``, ``footfall_daily``,
        ``rank_pct``).
    """
    marked = pedestrian_marking(tw, field=field, value=value)
    seg = tw.registry["segment"]
    walk = seg["walk"].astype(bool).to_numpy()
    ids = seg.index.astype(str)[walk]
    if demand is None:
        from twin.scenarios.calendar import CalendarDemand

        demand = CalendarDemand.from_twin(tw)
    # a weekday's footfall: the sum of the 24 hours of a Tuesday (local)
    from twin.scenarios.profiles import local_slots

    times, _ = local_slots(dt.date(2025, 3, 4), tz=tw.city.timezone, slot_minutes=60)
    daily = np.asarray(demand.footfall(list(ids), times), dtype=float).sum(axis=1)
    table = pd.DataFrame(
        {
            "highway": seg["highway"].to_numpy()[walk],
            "marked": marked.to_numpy()[walk],
            "footfall_daily": daily,
        },
        index=pd.Index(ids, name="segment"),
    )
    table["rank_pct"] = table["footfall_daily"].rank(pct=True)
    m = table["marked"].to_numpy()
    sensors = tw.registry["sensor"]
    counters = sensors.loc[sensors["sensor_type"] == "footfall", "segment"].astype(str)
    figures = {
        "marked_segments": float(m.sum()),
        "marked_km": float(seg.loc[marked.to_numpy() & walk, "length_m"].sum() / 1000.0),
        "walkable_segments": float(len(table)),
        "median_footfall_marked": float(np.median(daily[m])) if m.any() else np.nan,
        "median_footfall_other": float(np.median(daily[~m])) if (~m).any() else np.nan,
        "mean_footfall_marked": float(daily[m].mean()) if m.any() else np.nan,
        "mean_footfall_other": float(daily[~m].mean()) if (~m).any() else np.nan,
        "share_marked_in_top_quarter": float((table["rank_pct"][m] > 0.75).mean())
        if m.any()
        else np.nan,
        "marked_as_residential": float((table["highway"][m] == "residential").sum()),
        "counters_on_marked": float(counters.map(marked.rename(index=str)).fillna(False).sum()),
        "counters": float(len(counters)),
    }
    return figures, table
