"""The pre-LED baseline and per-light powers: HPS lamps and ballasts, the LED ratio.

Domain figures (DESIGN section 4): the pre-LED stock is mostly high-pressure sodium, 70-250 W
lamps plus ~10-15 % ballast loss; LED replacements draw ~40-60 % of the HPS system power for the
same class (US DOE trials: 31-51 % saved on retrofit alone).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from twin._errors import InputValidationError
from twin.assets.lighting import ROAD_CLASSES

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
