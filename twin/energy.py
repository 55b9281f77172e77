"""Energy of public lighting: pre-LED baseline, LED rollout and the 12-year trajectory.

Dijon Métropole's 12-year contract (February 2018 - 2030) commits to cutting the energy of
public lighting by 65 % against the pre-LED stock, by renewing 93 % of the 34,000 light points
to LED and dimming them by footfall (DESIGN section 4). This module turns a set of light points
into a yearly trajectory and splits the saving between its three levers:

1. **LED renewal** -- an LED luminaire draws :data:`LED_RATIO` (~0.5) of the high-pressure
   sodium (HPS) system it replaces (lamp plus ballast, :data:`HPS_SYSTEM_W`);
2. **switch-off** -- lights off for part of the night (a fraction of the lit hours);
3. **dimming** -- LED lights run below full power on the hours they are lit.

Energy is computed for each calendar year from that year's real dusk-to-dawn hours
(:func:`twin.timeutil.yearly_dark_hours`, from the sun), never from a constant.

The model, for a year with dark hours :math:`H`, LED share :math:`s`, switch-off factor
:math:`o` and dimming factor :math:`d`, and fleet powers :math:`P_{HPS}` (all lights on the
pre-LED stock) and :math:`P_{LED}` (all lights renewed)::

    baseline  = H * P_HPS
    led_only  = H * (s * P_LED + (1 - s) * P_HPS)
    planned   = H * (1 - o) * (s * d * P_LED + (1 - s) * P_HPS)

Switch-off (done per cabinet) applies to every light; dimming applies to the LED lights only
(HPS stock on magnetic ballasts is not dimmed in this model).

Examples
--------
>>> import numpy as np
>>> baseline_power_w(np.array(["residential", "primary"]))
array([ 80.5, 275. ])
>>> led_power_w(np.array(["residential"]))
array([40.25])
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ._errors import InputValidationError
from .assets.lighting import ROAD_CLASSES
from .timeutil import yearly_dark_hours

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "ATTRIBUTION_ORDER",
    "BALLAST_LOSS",
    "CONTRACT_END",
    "CONTRACT_START",
    "HPS_LAMP_W",
    "HPS_SYSTEM_W",
    "LED_RATIO",
    "LED_RATIO_RANGE",
    "LED_TARGET_SHARE",
    "TARGET_PCT",
    "Rollout",
    "baseline_power_w",
    "front_loaded_shares",
    "factors_from_plan",
    "hps_system_w",
    "hps_table",
    "led_power_w",
    "plot_trajectory",
    "trajectory",
    "year_of_target",
]

# --------------------------------------------------------------------------------------------
# domain figures (data)
# --------------------------------------------------------------------------------------------
TARGET_PCT: float = 65.0
"""Energy saving the Dijon contract commits to against the pre-LED stock, in percent."""

LED_TARGET_SHARE: float = 0.93
"""Share of light points renewed to LED by the end of the Dijon contract."""

CONTRACT_START = dt.date(2018, 2, 1)
"""Start of the Dijon public-lighting contract (February 2018)."""

CONTRACT_END = dt.date(2030, 1, 1)
"""Date by which the default rollout has renewed :data:`LED_TARGET_SHARE` of the stock.

The contract runs 12 years from February 2018; the default curve completes the works by the
start of its last calendar year, so that 2030 is a full year at the final LED share.
"""

HPS_LAMP_W: Mapping[str, float] = MappingProxyType(
    {str(k): float(v) for k, v in ROAD_CLASSES["hps_lamp_w"].items()}
)
"""Nominal HPS lamp power (W) of the pre-LED stock per road class (OSM ``highway`` value).

The pre-LED stock is mostly high-pressure sodium, 70-250 W lamps (DESIGN section 4). The class
to wattage mapping is an engineering default, not an inventory: where a municipal inventory
gives the real wattage, pass it as ``power_w`` to :func:`trajectory`.
"""

BALLAST_LOSS: Mapping[float, float] = MappingProxyType(
    {70.0: 0.15, 100.0: 0.14, 150.0: 0.12, 250.0: 0.10}
)
"""Loss of the electromagnetic ballast as a fraction of the HPS lamp power, per lamp power (W).

HPS lamps in the pre-LED stock run on copper-iron (magnetic) ballasts that lose about 10-15 %
of the lamp power (DESIGN section 4); the relative loss falls as the lamp power rises
(catalogue figures for such ballasts give a system power of about 80-83 W for a 70 W lamp,
~168 W for 150 W and ~275 W for 250 W). Between the listed powers the loss is interpolated
linearly, and held constant beyond them (:func:`hps_system_w`).
"""


def hps_system_w(lamp_w: float | np.ndarray) -> np.ndarray:
    """Return the HPS system power (lamp plus ballast loss) for a nominal lamp power.

    Parameters
    ----------
    lamp_w
        Nominal lamp power(s) in W, finite and > 0.

    Returns
    -------
    numpy.ndarray
        System power in W, ``lamp_w * (1 + loss(lamp_w))`` with the loss of
        :data:`BALLAST_LOSS` interpolated on the lamp power.

    Examples
    --------
    >>> hps_system_w(np.array([70.0, 150.0, 250.0]))
    array([ 80.5, 168. , 275. ])
    """
    p = np.asarray(lamp_w, dtype=float)
    if not np.all(np.isfinite(p) & (p > 0)):
        msg = "power_w: lamp powers must be finite and > 0 W"
        raise InputValidationError(msg)
    xs = np.array(sorted(BALLAST_LOSS), dtype=float)
    ys = np.array([BALLAST_LOSS[x] for x in xs], dtype=float)
    out: np.ndarray = p * (1.0 + np.interp(p, xs, ys))
    return out


HPS_SYSTEM_W: Mapping[str, float] = MappingProxyType(
    {k: round(float(hps_system_w(v)), 2) for k, v in HPS_LAMP_W.items()}
)
"""HPS system power (W, lamp + ballast loss) per road class, from :data:`HPS_LAMP_W`."""

LED_RATIO: float = 0.5
"""LED system power as a fraction of the HPS system power it replaces, for the same class.

LED replacements draw ~40-60 % of the HPS system power for the same lighting class
(DESIGN section 4; US DOE retrofit trials measured 31-51 % savings from the retrofit alone).
The documented range is :data:`LED_RATIO_RANGE`; the default is its middle.
"""

LED_RATIO_RANGE: tuple[float, float] = (0.4, 0.6)
"""Plausible range of :data:`LED_RATIO` (DESIGN section 4)."""

ATTRIBUTION_ORDER: tuple[str, ...] = ("led", "switch_off", "dimming")
"""Order in which the saving is attributed to its levers (see :func:`trajectory`)."""


def hps_table() -> pd.DataFrame:
    """Return the per-road-class power table as a DataFrame (for display and export).

    Returns
    -------
    pandas.DataFrame
        Index ``road_class``; columns ``hps_lamp_w``, ``ballast_loss``, ``hps_system_w``,
        ``led_system_w`` (at :data:`LED_RATIO`).

    Examples
    --------
    >>> hps_table().loc["secondary"].to_dict()
    {'hps_lamp_w': 150.0, 'ballast_loss': 0.12, 'hps_system_w': 168.0, 'led_system_w': 84.0}
    """
    rows = []
    for k, lamp in HPS_LAMP_W.items():
        sys_w = HPS_SYSTEM_W[k]
        rows.append(
            {
                "road_class": k,
                "hps_lamp_w": lamp,
                "ballast_loss": round(sys_w / lamp - 1.0, 6),
                "hps_system_w": sys_w,
                "led_system_w": round(LED_RATIO * sys_w, 2),
            }
        )
    return pd.DataFrame(rows).set_index("road_class")


# --------------------------------------------------------------------------------------------
# per-light powers
# --------------------------------------------------------------------------------------------
def _as_str_array(values: Any, field: str) -> np.ndarray:
    if isinstance(values, str):
        msg = f"{field}: expected an array of road classes, got a single string {values!r}"
        raise InputValidationError(msg)
    arr = np.asarray(values, dtype=object).ravel()
    bad = [i for i, v in enumerate(arr) if not isinstance(v, str) or not v.strip()]
    if bad:
        msg = (
            f"{field}: {len(bad)} value(s) are missing or not strings "
            f"(first at position {bad[0]}: {arr[bad[0]]!r})"
        )
        raise InputValidationError(msg)
    return np.array([v.strip() for v in arr], dtype=object)


def _check_led_ratio(led_ratio: float) -> float:
    r = float(led_ratio)
    if not (math.isfinite(r) and 0.0 < r <= 1.0):
        msg = (
            f"led_ratio: {led_ratio!r} must be in (0, 1] (LED system power as a fraction of the "
            f"HPS system power; typical range {LED_RATIO_RANGE[0]}-{LED_RATIO_RANGE[1]})"
        )
        raise InputValidationError(msg)
    return r


def baseline_power_w(road_class: np.ndarray | Iterable[str]) -> np.ndarray:
    """Return the pre-LED (HPS system) power of each light from its road class.

    Parameters
    ----------
    road_class
        OSM ``highway`` value of the road each light stands on, one per light.

    Returns
    -------
    numpy.ndarray
        Float W per light, from :data:`HPS_SYSTEM_W`.

    Raises
    ------
    InputValidationError
        A value is missing or not in the table; the message lists the unknown classes.

    Examples
    --------
    >>> baseline_power_w(["tertiary", "footway"])
    array([114. ,  80.5])
    """
    rc = _as_str_array(road_class, "road_class")
    unknown = sorted({v for v in rc if v not in HPS_SYSTEM_W})
    if unknown:
        msg = (
            f"road_class: unknown class(es) {unknown[:10]} (known: {sorted(HPS_SYSTEM_W)}); "
            "map them to an OSM highway value or give power_w"
        )
        raise InputValidationError(msg)
    return np.array([HPS_SYSTEM_W[v] for v in rc], dtype=float)


def led_power_w(
    road_class: np.ndarray | Iterable[str], *, led_ratio: float = LED_RATIO
) -> np.ndarray:
    """Return the LED system power of each light from its road class.

    Parameters
    ----------
    road_class
        OSM ``highway`` value per light.
    led_ratio
        LED system power as a fraction of the HPS system power, in (0, 1]
        (default :data:`LED_RATIO`).

    Returns
    -------
    numpy.ndarray
        Float W per light: ``led_ratio * baseline_power_w(road_class)``.

    Examples
    --------
    >>> led_power_w(["secondary"], led_ratio=0.4)
    array([67.2])
    """
    return _check_led_ratio(led_ratio) * baseline_power_w(road_class)


_LED_WORDS = frozenset({"led"})
_DISCHARGE_WORDS = frozenset(
    {
        "hps",
        "son",
        "shp",
        "sodium",
        "high_pressure_sodium",
        "sodium_high_pressure",
        "mh",
        "metal_halide",
        "cmh",
        "iodure",
        "mercury",
        "hg",
        "ballon_fluo",
        "discharge",
    }
)


def _column(lights: Any, name: str) -> np.ndarray | None:
    if isinstance(lights, xr.Dataset):
        return np.asarray(lights[name].values) if name in lights.variables else None
    if isinstance(lights, pd.DataFrame):
        return lights[name].to_numpy() if name in lights.columns else None
    if isinstance(lights, Mapping):
        return np.asarray(lights[name]) if name in lights else None
    return None


def _table_columns(lights: Any) -> list[str]:
    if isinstance(lights, xr.Dataset):
        return [str(v) for v in lights.variables]
    if isinstance(lights, pd.DataFrame):
        return [str(c) for c in lights.columns]
    return [str(k) for k in lights]


def _power_column(values: np.ndarray, n: int, field: str) -> np.ndarray:
    try:
        p = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        msg = f"{field}: values must be numbers in W (NaN where unknown)"
        raise InputValidationError(msg) from None
    if p.size != n:
        msg = f"{field}: {p.size} values for {n} lights"
        raise InputValidationError(msg)
    bad = np.flatnonzero(~np.isnan(p) & ~(np.isfinite(p) & (p > 0)))
    if bad.size:
        msg = (
            f"{field}: {bad.size} value(s) are not finite and > 0 W "
            f"(first at position {bad[0]}: {p[bad[0]]!r})"
        )
        raise InputValidationError(msg)
    return p


def _technology_is_led(values: np.ndarray, n: int) -> np.ndarray:
    t = np.asarray(values, dtype=object).ravel()
    if t.size != n:
        msg = f"technology: {t.size} values for {n} lights"
        raise InputValidationError(msg)
    norm = np.array(
        [
            v.strip().lower().replace(" ", "_").replace("-", "_")
            if isinstance(v, str) and v.strip()
            else ""
            for v in t
        ],
        dtype=object,
    )
    unknown = sorted({v for v in norm if v and v not in _LED_WORDS | _DISCHARGE_WORDS})
    if unknown:
        msg = (
            f"technology: unknown value(s) {unknown[:10]}; use 'LED' or a discharge lamp "
            f"({sorted(_DISCHARGE_WORDS)}), empty where unknown"
        )
        raise InputValidationError(msg)
    return np.asarray(norm == "led", dtype=bool)


def _light_powers(lights: Any, *, led_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (pre-LED system W, LED system W) per light from an array or a table."""
    led_ratio = _check_led_ratio(led_ratio)
    if not isinstance(lights, xr.Dataset | pd.DataFrame | Mapping):
        rc = _as_str_array(lights, "road_class")
        if rc.size == 0:
            msg = "lights: no light points given"
            raise InputValidationError(msg)
        base = baseline_power_w(rc)
        return base, led_ratio * base

    cols = {c: _column(lights, c) for c in ("road_class", "power_w", "technology")}
    cols["baseline_power_w"] = _column(lights, "baseline_power_w")
    present = [c for c, v in cols.items() if v is not None]
    if cols["road_class"] is None and cols["baseline_power_w"] is None:
        msg = (
            "lights: the table has neither a 'road_class' nor a 'baseline_power_w' column "
            f"(columns: {_table_columns(lights)[:20]})"
        )
        raise InputValidationError(msg)
    n = int(np.asarray(cols[present[0]]).size)
    if n == 0:
        msg = "lights: no light points given"
        raise InputValidationError(msg)

    nan = np.full(n, np.nan)
    p = nan if cols["power_w"] is None else _power_column(cols["power_w"], n, "power_w")
    b = (
        nan
        if cols["baseline_power_w"] is None
        else _power_column(cols["baseline_power_w"], n, "baseline_power_w")
    )
    # Without a technology column a light with a power is taken as pre-LED stock: the
    # trajectory's baseline is the pre-LED stock, and the rollout sets the LED share.
    is_led = (
        np.zeros(n, dtype=bool)
        if cols["technology"] is None
        else _technology_is_led(cols["technology"], n)
    )

    base = b.copy()
    # discharge lights with a known system power: that is their pre-LED power
    sel = np.isnan(base) & ~np.isnan(p) & ~is_led
    base[sel] = p[sel]
    # the rest from the road-class table
    need = np.isnan(base)
    if need.any():
        if cols["road_class"] is None:
            msg = (
                f"road_class: missing, and {int(need.sum())} light(s) have no baseline_power_w "
                "nor a discharge-lamp power_w to take it from"
            )
            raise InputValidationError(msg)
        rc = np.asarray(cols["road_class"], dtype=object).ravel()
        if rc.size != n:
            msg = f"road_class: {rc.size} values for {n} lights"
            raise InputValidationError(msg)
        base[need] = baseline_power_w(rc[need])
    led = led_ratio * base
    sel = is_led & ~np.isnan(p)
    led[sel] = p[sel]  # LED lights with a known power: their own LED system power
    return base, led


# --------------------------------------------------------------------------------------------
# rollout
# --------------------------------------------------------------------------------------------
def _decimal_year(d: dt.date) -> float:
    start = dt.date(d.year, 1, 1)
    length = (dt.date(d.year + 1, 1, 1) - start).days
    return d.year + (d - start).days / length


def front_loaded_shares(
    *,
    final_share: float = LED_TARGET_SHARE,
    start: dt.date = CONTRACT_START,
    end: dt.date = CONTRACT_END,
    time_constant_years: float = 4.0,
    years: Iterable[int] | None = None,
) -> dict[int, float]:
    """Return yearly mean LED shares of a front-loaded renewal programme.

    The installed share grows as a saturating exponential from 0 at ``start`` to
    ``final_share`` at ``end``::

        s(t) = final_share * (1 - exp(-(t - t0) / tau)) / (1 - exp(-(T - t0) / tau))

    and each year's value is the mean of ``s`` over that calendar year (the share of the
    year's light-hours on LED). With ``tau`` = 4 years, about two thirds of the renewals are
    done in the first four years, as energy-performance contracts usually do to secure the
    savings early. This is an assumed curve, not Dijon's works schedule: pass the real
    yearly shares to :class:`Rollout` when they are known.

    Parameters
    ----------
    final_share
        LED share reached at ``end``, in [0, 1].
    start, end
        Start and completion dates of the works.
    time_constant_years
        Time constant ``tau`` in years (> 0); small values front-load more.
    years
        Years to return; default ``start.year .. end.year`` (``end.year`` included).

    Returns
    -------
    dict
        ``{year: mean LED share over the year}``, non-decreasing.

    Examples
    --------
    >>> s = front_loaded_shares()
    >>> round(s[2018], 3), round(s[2021], 3), s[2030]
    (0.095, 0.562, 0.93)
    """
    fs = float(final_share)
    if not (math.isfinite(fs) and 0.0 <= fs <= 1.0):
        msg = f"final_share: {final_share!r} must be within [0, 1]"
        raise InputValidationError(msg)
    tau = float(time_constant_years)
    if not (math.isfinite(tau) and tau > 0):
        msg = f"time_constant_years: {time_constant_years!r} must be > 0"
        raise InputValidationError(msg)
    if not end > start:
        msg = f"end: {end} must be after start {start}"
        raise InputValidationError(msg)
    t0, t1 = _decimal_year(start), _decimal_year(end)
    norm = 1.0 - math.exp(-(t1 - t0) / tau)

    def integral(a: float, b: float) -> float:
        # integral of s(t) over [a, b], with a, b clipped piecewise around [t0, t1]
        total = 0.0
        lo, hi = max(a, t0), min(b, t1)
        if hi > lo:
            total += (fs / norm) * (
                (hi - lo) - tau * (math.exp(-(lo - t0) / tau) - math.exp(-(hi - t0) / tau))
            )
        if b > t1:
            total += fs * (b - max(a, t1))
        return total

    ys = range(start.year, end.year + 1) if years is None else years
    return {int(y): min(fs, integral(float(y), float(y) + 1.0)) for y in ys}


@dataclasses.dataclass(frozen=True)
class Rollout:
    """The LED renewal programme: the mean share of light points on LED in each year.

    Parameters
    ----------
    shares
        ``{year: LED share}`` with shares in [0, 1], non-decreasing with the year. The share
        of a year is the mean over that year (the fraction of its light-hours on LED). Years
        between two given years are interpolated linearly; years after the last hold its
        value; years before the first take ``initial_share``. Default: the front-loaded curve
        of :func:`front_loaded_shares`, reaching 93 % in 2030 from the February 2018 start.
    initial_share
        LED share before the first given year (default 0: the baseline stock is all HPS).
    label
        A name for plots and attrs.

    Examples
    --------
    >>> r = Rollout({2018: 0.2, 2020: 0.6, 2022: 0.93})
    >>> r.share(2017), r.share(2019), r.share(2030)
    (0.0, 0.4, 0.93)
    >>> Rollout({2018: 0.5, 2019: 0.4})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: Rollout.shares[2019]: 0.4 is below ...
    """

    shares: Mapping[int, float] = dataclasses.field(default_factory=front_loaded_shares)
    initial_share: float = 0.0
    label: str = "front-loaded LED renewal to 93% by 2030"

    def __post_init__(self) -> None:
        if not isinstance(self.shares, Mapping) or not self.shares:
            msg = "Rollout.shares: expected a non-empty mapping {year: LED share}"
            raise InputValidationError(msg)
        init = _share_value(self.initial_share, "Rollout.initial_share")
        clean: dict[int, float] = {}
        for y, v in self.shares.items():
            if isinstance(y, bool) or not isinstance(y, int | np.integer):
                msg = f"Rollout.shares: year {y!r} is not an integer"
                raise InputValidationError(msg)
            clean[int(y)] = _share_value(v, f"Rollout.shares[{int(y)}]")
        clean = dict(sorted(clean.items()))
        prev_name, prev = "Rollout.initial_share", init
        for y, v in clean.items():
            if v < prev:
                msg = (
                    f"Rollout.shares[{y}]: {v} is below {prev} ({prev_name}); "
                    "LED shares must not decrease"
                )
                raise InputValidationError(msg)
            prev_name, prev = f"Rollout.shares[{y}]", v
        object.__setattr__(self, "shares", clean)
        object.__setattr__(self, "initial_share", init)

    def __hash__(self) -> int:
        return hash((tuple(self.shares.items()), self.initial_share, self.label))

    def share(self, year: int) -> float:
        """Return the mean LED share of ``year``."""
        return float(self.shares_for([year])[0])

    def shares_for(self, years: Iterable[int]) -> np.ndarray:
        """Return the mean LED share of each year in ``years``."""
        ys = np.asarray(list(years), dtype=float)
        ks = np.array(list(self.shares), dtype=float)
        vs = np.array(list(self.shares.values()), dtype=float)
        out: np.ndarray = np.asarray(np.interp(ys, ks, vs), dtype=float)
        out[ys < ks[0]] = self.initial_share
        return out

    @classmethod
    def front_loaded(cls, **kwargs: Any) -> Rollout:
        """Build the front-loaded rollout of :func:`front_loaded_shares` with its options."""
        fs = kwargs.get("final_share", LED_TARGET_SHARE)
        end = kwargs.get("end", CONTRACT_END)
        return cls(
            front_loaded_shares(**kwargs),
            label=f"front-loaded LED renewal to {100 * float(fs):.0f}% by {end.year}",
        )


def _share_value(v: Any, field: str) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        msg = f"{field}: {v!r} is not a number"
        raise InputValidationError(msg) from None
    if not (math.isfinite(f) and 0.0 <= f <= 1.0):
        msg = f"{field}: {v!r} must be within [0, 1]"
        raise InputValidationError(msg)
    return f


# --------------------------------------------------------------------------------------------
# trajectory
# --------------------------------------------------------------------------------------------
def _factor_per_year(
    value: float | Mapping[int, float], years: np.ndarray, *, field: str, neutral: float
) -> np.ndarray:
    """Expand a factor (a float, or a step mapping year -> value) over ``years``."""
    if isinstance(value, Mapping):
        if not value:
            msg = f"{field}: empty mapping; give a float or {{year: value}}"
            raise InputValidationError(msg)
        items: dict[int, float] = {}
        for y, v in value.items():
            if isinstance(y, bool) or not isinstance(y, int | np.integer):
                msg = f"{field}: year {y!r} is not an integer"
                raise InputValidationError(msg)
            items[int(y)] = _share_value(v, f"{field}[{int(y)}]")
        ks = np.array(sorted(items), dtype=int)
        vs = np.array([items[k] for k in ks], dtype=float)
        idx = np.searchsorted(ks, years, side="right") - 1
        return np.where(idx >= 0, vs[np.clip(idx, 0, None)], neutral)
    return np.full(years.size, _share_value(value, field))


def trajectory(
    lights: Any,
    *,
    lat: float,
    lon: float,
    years: Iterable[int] = range(2018, 2031),
    rollout: Rollout | None = None,
    dimming_factor: float | Mapping[int, float] = 1.0,
    switch_off_factor: float | Mapping[int, float] = 0.0,
    metered_wh: Mapping[int, float] | None = None,
    led_ratio: float = LED_RATIO,
    target_pct: float = TARGET_PCT,
) -> xr.Dataset:
    """Compute the yearly energy trajectory of a lighting stock against the saving target.

    Parameters
    ----------
    lights
        The light points: an array of road classes (OSM ``highway`` values), or a table
        (``pandas``/``geopandas`` DataFrame, ``xarray.Dataset`` on ``light``, or a mapping of
        arrays) with the columns of the light registry (``twin/assets/schemas/light.csv``),
        all optional but one of the first two, NaN/empty where unknown:

        - ``road_class``: OSM ``highway`` value, for lights whose pre-LED power is not given;
        - ``baseline_power_w``: pre-LED HPS system power (lamp + ballast) in W;
        - ``power_w``: system power at full output in W. For LED lights it is their LED power;
          for discharge lamps it is their pre-LED power (convert a nominal lamp wattage with
          :func:`hps_system_w`);
        - ``technology``: ``"LED"`` or a discharge lamp (``"HPS"``, ``"MH"``, ``"sodium"``,
          ...); lights without it are taken as discharge lamps.

        A light's LED power is its own ``power_w`` if it is LED, else ``led_ratio`` times its
        pre-LED power. The LED share of each year comes from ``rollout``, applied to the whole
        stock (energy-weighted: the same share of every light's power is on LED).
    lat, lon
        Site (degrees, EPSG:4326), for the dusk-to-dawn hours of each year.
    years
        Calendar years of the trajectory (default 2018-2030, the Dijon contract).
    rollout
        LED renewal programme; default :class:`Rollout` (front-loaded, 93 % in 2030).
    dimming_factor
        Fraction of full LED energy that the dimming plan uses on the lit hours, in [0, 1]
        (1: no dimming; e.g. 0.6 from a nightly plan, see :func:`factors_from_plan`). A float
        for every year, or ``{year: factor}``: a step function in force from each given year
        on, 1 (no dimming) before the first.
    switch_off_factor
        Fraction of the lit hours lost to switch-off windows, in [0, 1] (0: none). A float or
        ``{year: factor}`` as for ``dimming_factor`` (0 before the first year).
    metered_wh
        Metered energy in Wh per year, ``{year: Wh}``; the years must be in ``years``.
    led_ratio
        LED system power as a fraction of the HPS system power (default :data:`LED_RATIO`).
    target_pct
        Saving target in percent (default 65).

    Returns
    -------
    xarray.Dataset
        On dim ``year``: ``dark_hours`` (h), ``led_share``, ``dimming_factor``,
        ``switch_off_factor`` (1), ``baseline_wh`` (all-HPS at full power), ``led_only_wh``
        (rollout only), ``planned_wh`` (rollout, switch-off and dimming), ``saving_led_wh``,
        ``saving_switch_off_wh``, ``saving_dimming_wh``, ``saving_wh`` (Wh), ``saving_pct``
        (%), ``metered_wh`` (Wh, NaN where not metered) and, when ``metered_wh`` is given,
        ``saving_pct_metered`` (%, NaN where not metered); scalar ``target_pct`` (%). Attrs:
        ``target_pct``, ``attribution_order``, ``lat``, ``lon``, ``led_ratio``, ``n_lights``,
        ``baseline_power_w``, ``led_power_w``, ``rollout``.

    Notes
    -----
    The saving is attributed to its levers in the order LED renewal, then switch-off, then
    dimming, each taking the saving of its step from the energy left by the previous ones::

        saving_led       = baseline - led_only
        saving_switch_off = led_only - led_only * (1 - o)
        saving_dimming   = led_only * (1 - o) - planned

    so the three add up to ``baseline - planned`` exactly (a telescoping sum). The order
    follows causality and the contract: renewal is the capital programme and makes dimming
    possible (only LED lights are dimmed), so it is credited first and in full; an hour
    switched off saves whatever the light would have drawn, so switch-off comes before
    dimming; dimming is credited with what it saves on the hours still lit. Another order
    would move the interaction terms (e.g. dimming saves less on an already switched-off
    hour) between levers, never the total.

    Raises
    ------
    InputValidationError
        Bad lights, factors, years, rollout or metering; the message names the field.

    Examples
    --------
    >>> ds = trajectory(["residential"] * 10, lat=47.32, lon=5.04, years=[2030],
    ...                 dimming_factor=0.6)
    >>> round(float(ds.saving_pct.sel(year=2030)), 1)  # 1 - (0.07 + 0.93 * 0.5 * 0.6)
    65.1
    """
    base_w, led_w = _light_powers(lights, led_ratio=led_ratio)
    ys_list = list(years)
    if not ys_list:
        msg = "years: no year given"
        raise InputValidationError(msg)
    for y in ys_list:
        if isinstance(y, bool) or not isinstance(y, int | np.integer):
            msg = f"years: {y!r} is not an integer year"
            raise InputValidationError(msg)
    ys = np.array(ys_list, dtype=int)
    if np.unique(ys).size != ys.size or np.any(np.diff(ys) <= 0):
        msg = "years: must be increasing and without repeats"
        raise InputValidationError(msg)
    if rollout is None:
        rollout = Rollout()
    elif not isinstance(rollout, Rollout):
        msg = f"rollout: expected a Rollout, got {type(rollout).__name__}"
        raise InputValidationError(msg)
    tgt = float(target_pct)
    if not (math.isfinite(tgt) and 0.0 < tgt <= 100.0):
        msg = f"target_pct: {target_pct!r} must be in (0, 100]"
        raise InputValidationError(msg)

    d = _factor_per_year(dimming_factor, ys, field="dimming_factor", neutral=1.0)
    o = _factor_per_year(switch_off_factor, ys, field="switch_off_factor", neutral=0.0)
    s = rollout.shares_for(ys)
    hours = np.array([yearly_dark_hours(int(y), lat=lat, lon=lon) for y in ys], dtype=float)

    p_hps = float(base_w.sum())
    p_led = float(led_w.sum())
    e0 = hours * p_hps  # baseline: every light HPS, full power, dusk to dawn
    e1 = hours * (s * p_led + (1.0 - s) * p_hps)  # rollout only
    e2 = e1 * (1.0 - o)  # + switch-off windows (all lights)
    e3 = hours * (1.0 - o) * (s * d * p_led + (1.0 - s) * p_hps)  # + dimming of LED lights
    sav_led, sav_off, sav_dim = e0 - e1, e1 - e2, e2 - e3

    metered = np.full(ys.size, np.nan)
    if metered_wh is not None:
        if not isinstance(metered_wh, Mapping):
            msg = "metered_wh: expected a mapping {year: Wh}"
            raise InputValidationError(msg)
        pos = {int(y): i for i, y in enumerate(ys)}
        for y, v in metered_wh.items():
            if isinstance(y, bool) or not isinstance(y, int | np.integer) or int(y) not in pos:
                msg = f"metered_wh: year {y!r} is not one of years {ys.tolist()}"
                raise InputValidationError(msg)
            try:
                f = float(v)
            except (TypeError, ValueError):
                msg = f"metered_wh[{int(y)}]: {v!r} is not a number of Wh"
                raise InputValidationError(msg) from None
            if not (math.isfinite(f) and f >= 0.0):
                msg = f"metered_wh[{int(y)}]: {v!r} must be finite and >= 0 Wh"
                raise InputValidationError(msg)
            metered[pos[int(y)]] = f

    def var(values: np.ndarray, units: str, long_name: str) -> xr.DataArray:
        return xr.DataArray(values, dims="year", attrs={"units": units, "long_name": long_name})

    data = {
        "dark_hours": var(hours, "h", "dusk-to-dawn hours of the year (from the sun)"),
        "led_share": var(s, "1", "mean share of light points on LED over the year"),
        "dimming_factor": var(d, "1", "fraction of full LED energy used on the lit hours"),
        "switch_off_factor": var(o, "1", "fraction of the lit hours lost to switch-off"),
        "baseline_wh": var(e0, "Wh", "baseline energy: pre-LED HPS stock at full power"),
        "led_only_wh": var(e1, "Wh", "energy with the LED rollout only"),
        "planned_wh": var(e3, "Wh", "planned energy: LED rollout, switch-off and dimming"),
        "saving_led_wh": var(sav_led, "Wh", "saving attributed to LED renewal"),
        "saving_switch_off_wh": var(sav_off, "Wh", "saving attributed to switch-off"),
        "saving_dimming_wh": var(sav_dim, "Wh", "saving attributed to dimming"),
        "saving_wh": var(e0 - e3, "Wh", "total planned saving against the baseline"),
        "saving_pct": var(100.0 * (e0 - e3) / e0, "%", "planned saving against the baseline"),
        "metered_wh": var(metered, "Wh", "metered energy (NaN where not metered)"),
        "target_pct": xr.DataArray(tgt, attrs={"units": "%", "long_name": "saving target"}),
    }
    if metered_wh is not None:
        data["saving_pct_metered"] = var(
            100.0 * (e0 - metered) / e0, "%", "metered saving against the baseline"
        )
    year_attrs = {"long_name": "calendar year", "units": "1"}
    return xr.Dataset(
        data,
        coords={"year": xr.DataArray(ys, dims="year", attrs=year_attrs)},
        attrs={
            "title": "public-lighting energy trajectory",
            "target_pct": tgt,
            "attribution_order": ", ".join(ATTRIBUTION_ORDER),
            "lat": float(lat),
            "lon": float(lon),
            "led_ratio": float(led_ratio),
            "n_lights": int(base_w.size),
            "baseline_power_w": p_hps,
            "led_power_w": p_led,
            "rollout": rollout.label,
        },
    )


def year_of_target(ds: xr.Dataset, *, variable: str = "saving_pct") -> int | None:
    """Return the first year whose saving reaches the target, or ``None``.

    Parameters
    ----------
    ds
        A :func:`trajectory` result.
    variable
        The saving to test: ``"saving_pct"`` (planned) or ``"saving_pct_metered"``.

    Returns
    -------
    int or None
        First year with ``variable >= target_pct`` (NaN years are skipped).

    Examples
    --------
    With dimming to half power, the saving is ``s * (1 - 0.5 * 0.5)``, so the target needs an
    LED share ``s >= 0.867``, which the default rollout reaches in 2027:

    >>> ds = trajectory(["residential"], lat=47.32, lon=5.04, dimming_factor=0.5)
    >>> year_of_target(ds), year_of_target(ds.sel(year=slice(2018, 2026)))
    (2027, None)
    """
    if variable not in ds.data_vars:
        msg = f"variable: {variable!r} is not in the dataset (has {sorted(map(str, ds.data_vars))})"
        raise InputValidationError(msg)
    if "target_pct" in ds.data_vars:
        tgt = float(ds["target_pct"])
    else:
        tgt = float(ds.attrs.get("target_pct", TARGET_PCT))
    v = np.asarray(ds[variable].values, dtype=float)
    hit = np.flatnonzero(~np.isnan(v) & (v >= tgt))
    return int(ds["year"].values[hit[0]]) if hit.size else None


# --------------------------------------------------------------------------------------------
# factors from an optimiser plan
# --------------------------------------------------------------------------------------------
def _slot_seconds(ds: xr.Dataset) -> np.ndarray:
    if "slot_s" in ds.variables:
        slot = np.asarray(ds["slot_s"].values, dtype=float)
        if ds["slot_s"].dims != ("time",):
            msg = f"slot_s: expected dims ('time',), got {ds['slot_s'].dims}"
            raise InputValidationError(msg)
    else:
        if "time" not in ds.coords or ds.sizes.get("time", 0) < 2:
            msg = (
                "slot_s: no slot_s(time) variable, and the time coord has fewer than two "
                "values to derive slot lengths from"
            )
            raise InputValidationError(msg)
        t = np.asarray(ds["time"].values)
        if not np.issubdtype(t.dtype, np.datetime64):
            msg = "time: expected datetime64 values to derive slot lengths (or give slot_s)"
            raise InputValidationError(msg)
        step = np.diff(t).astype("timedelta64[ns]").astype(np.int64) / 1e9
        # each slot lasts until the next one starts; the last one as long as the one before
        slot = np.append(step, step[-1])
    if not np.all(np.isfinite(slot) & (slot > 0)):
        msg = "slot_s: slot durations must be finite and > 0 s (time must be increasing)"
        raise InputValidationError(msg)
    return slot


def factors_from_plan(ds: xr.Dataset) -> tuple[float, float]:
    """Read the (dimming, switch-off) factors of :func:`trajectory` from a dimming plan.

    Parameters
    ----------
    ds
        An optimiser output on dims ``light`` and ``time`` holding:

        - ``power_w(light)``: full (100 %) LED system power in W;
        - ``lighting_class(light, time)``: the EN 13201 class in force, ``"off"`` in
          switch-off windows;
        - ``energy_wh(light, time)``: energy drawn in each slot, in Wh; if absent,
          ``level(light, time)`` (dim level in [0, 1]) times ``power_w`` times the slot
          length is used (power taken as linear in level, no driver floor);
        - slot lengths: ``slot_s(time)`` in s, or derived from the spacing of the ``time``
          coord (each slot lasts until the next starts, the last as long as the previous).

        The time axis must cover the lit period of the night(s) planned (dusk to dawn), so
        that the full-power energy over all slots is what the lights would draw undimmed.
        Energy in off slots (driver standby) is not counted.

    Returns
    -------
    tuple of float
        ``(dimming_factor, switch_off_factor)``: the energy used on the lit slots as a
        fraction of full power on those slots, and the share of full-power light-hours that
        fall in off slots (both power-weighted).

    Raises
    ------
    InputValidationError
        A variable is missing or has the wrong dims, units or values.

    Examples
    --------
    >>> import xarray as xr
    >>> plan = xr.Dataset(
    ...     {
    ...         "power_w": ("light", [40.0, 80.0]),
    ...         "level": (("light", "time"), [[1.0, 0.5, 0.0, 0.5], [1.0, 0.5, 0.5, 0.5]]),
    ...         "energy_wh": (("light", "time"), [[40, 20, 0, 20], [80, 40, 40, 40]]),
    ...         "lighting_class": (("light", "time"), [["M5", "M6", "off", "M6"]] * 2),
    ...         "slot_s": ("time", [3600.0] * 4),
    ...     }
    ... )
    >>> factors_from_plan(plan)
    (0.6666666666666666, 0.25)
    """
    if not isinstance(ds, xr.Dataset):
        msg = f"ds: expected an xarray.Dataset, got {type(ds).__name__}"
        raise InputValidationError(msg)
    for name, dims in (("power_w", ("light",)), ("lighting_class", ("light", "time"))):
        if name not in ds.variables:
            msg = f"{name}: missing from the plan (need power_w(light), lighting_class(light,time))"
            raise InputValidationError(msg)
        if set(ds[name].dims) != set(dims):
            msg = f"{name}: expected dims {dims}, got {ds[name].dims}"
            raise InputValidationError(msg)
    slot_h = _slot_seconds(ds) / 3600.0
    power = np.asarray(ds["power_w"].values, dtype=float)
    if not np.all(np.isfinite(power) & (power >= 0)):
        msg = "power_w: light powers must be finite and >= 0 W"
        raise InputValidationError(msg)
    cls = np.asarray(ds["lighting_class"].transpose("light", "time").values, dtype=object)
    off = np.array([[str(c).strip().lower() == "off" for c in row] for row in cls], dtype=bool)
    full = power[:, None] * slot_h[None, :]  # Wh at 100 % in each slot

    if "energy_wh" in ds.variables:
        ev = ds["energy_wh"]
        if set(ev.dims) != {"light", "time"}:
            msg = f"energy_wh: expected dims ('light', 'time'), got {ev.dims}"
            raise InputValidationError(msg)
        units = ev.attrs.get("units")
        if units is not None and units not in ("Wh", "W h", "W.h"):
            msg = f"energy_wh: units {units!r}, expected 'Wh'"
            raise InputValidationError(msg)
        energy = np.asarray(ev.transpose("light", "time").values, dtype=float)
    elif "level" in ds.variables:
        lv = ds["level"]
        if set(lv.dims) != {"light", "time"}:
            msg = f"level: expected dims ('light', 'time'), got {lv.dims}"
            raise InputValidationError(msg)
        level = np.asarray(lv.transpose("light", "time").values, dtype=float)
        if not np.all(np.isfinite(level) & (level >= 0) & (level <= 1)):
            msg = "level: dim levels must be within [0, 1]"
            raise InputValidationError(msg)
        energy = level * full
    else:
        msg = "energy_wh: missing from the plan, and no level(light, time) to derive it from"
        raise InputValidationError(msg)
    if not np.all(np.isfinite(energy) & (energy >= 0)):
        msg = "energy_wh: energies must be finite and >= 0 Wh"
        raise InputValidationError(msg)

    total = float(full.sum())
    if total <= 0:
        msg = "power_w: the plan has no power to draw (all lights 0 W or no slots)"
        raise InputValidationError(msg)
    lit_full = float(full[~off].sum())
    switch_off = 1.0 - lit_full / total
    dimming = float(energy[~off].sum()) / lit_full if lit_full > 0 else 1.0
    if dimming > 1.0 + 1e-9:
        msg = (
            f"energy_wh: the lit slots draw {dimming:.3f} x their full power; "
            "check energy_wh against power_w and the slot lengths"
        )
        raise InputValidationError(msg)
    return min(dimming, 1.0), switch_off


# --------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------
def plot_trajectory(
    ds: xr.Dataset,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    attribution: str | None = None,
) -> Figure:
    """Plot a :func:`trajectory`: yearly energy, the saving split and the saving % vs target.

    Each year's bar is the baseline, stacked as planned energy + dimming + switch-off + LED
    savings; lines give the LED-only energy and the metered energy (if any); on a second axis
    the planned (and metered) saving in % against the target line.

    Parameters
    ----------
    ds
        A :func:`trajectory` result.
    ax
        Axes to draw on; default a new figure (not registered with pyplot).
    title
        Title; default ``"Public-lighting energy vs the 65% target"``.
    attribution
        Text written at the bottom right (e.g. data credits such as
        ``"© OpenStreetMap contributors, ODbL 1.0"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    need = ("baseline_wh", "led_only_wh", "planned_wh", "saving_pct")
    missing = [v for v in need if v not in ds.data_vars]
    if missing:
        msg = f"ds: missing variable(s) {missing}; pass a trajectory() result"
        raise InputValidationError(msg)
    if ax is None:
        fig = Figure(figsize=(9.0, 6.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    years = np.asarray(ds["year"].values, dtype=int)
    top_wh = float(np.nanmax(ds["baseline_wh"].values))
    mwh, unit = (1e-9, "GWh") if top_wh >= 1e10 else (1e-6, "MWh")

    bottom = np.asarray(ds["planned_wh"].values, dtype=float) * mwh
    ax.bar(years, bottom, color="#4c72b0", label="planned energy")
    parts = (
        ("saving_dimming_wh", "#8fbc8f", "saving: dimming"),
        ("saving_switch_off_wh", "#c6d96b", "saving: switch-off"),
        ("saving_led_wh", "#f2c45a", "saving: LED renewal"),
    )
    for name, color, label in parts:
        if name in ds.data_vars:
            h = np.asarray(ds[name].values, dtype=float) * mwh
            ax.bar(years, h, bottom=bottom, color=color, label=label)
            bottom = bottom + h
    ax.plot(years, ds["baseline_wh"].values * mwh, "k_", ms=18, mew=2, label="baseline (all HPS)")
    ax.plot(years, ds["led_only_wh"].values * mwh, "o--", color="#dd8452", label="LED only")
    metered = ds["metered_wh"].values if "metered_wh" in ds.data_vars else None
    has_metered = metered is not None and bool(np.any(~np.isnan(metered)))
    if has_metered:
        ax.plot(years, np.asarray(metered) * mwh, "s", color="#c44e52", ms=8, label="metered")
    ax.set_xlabel("year")
    ax.set_ylabel(f"energy ({unit}/year)")
    ax.set_xticks(years)
    ax.tick_params(axis="x", labelrotation=45)

    tgt = float(ds["target_pct"]) if "target_pct" in ds.data_vars else TARGET_PCT
    ax2 = ax.twinx()
    ax2.plot(years, ds["saving_pct"].values, "-", color="#55a868", lw=2.5, label="saving %")
    if has_metered and "saving_pct_metered" in ds.data_vars:
        ax2.plot(
            years,
            ds["saving_pct_metered"].values,
            "D",
            color="#8c1b1e",
            label="metered saving %",
        )
    ax2.axhline(tgt, color="#c44e52", ls=":", lw=2, label=f"target {tgt:g}%")
    ax2.set_ylim(0, 100)
    ax2.set_ylabel("saving against baseline (%)")

    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(
        h1 + h2,
        l1 + l2,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        fontsize="small",
        ncol=4,
        frameon=False,
    )
    ax.set_ylim(0, top_wh * mwh * 1.05)
    ax.set_title(title if title is not None else f"Public-lighting energy vs the {tgt:g}% target")
    if attribution:
        fig.text(0.995, 0.005, attribution, ha="right", va="bottom", fontsize=7, color="0.4")
    return fig
