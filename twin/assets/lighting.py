"""Lighting requirements: EN 13201-2 classes, CEN/TR 13201-1 class selection, dimming levels.

Three things live here, all as data plus small vectorised functions:

1. The EN 13201-2:2015 performance tables (M, C and P classes) and :func:`class_value`.
2. The CEN/TR 13201-1:2014 selection of a class from weighted parameters
   (:func:`select_m_class`, :func:`select_c_class`, :func:`select_p_class`), its re-evaluation
   for a time slot with less traffic (:func:`adaptive_class`), and the design class of every
   road segment from its OSM ``highway`` value, speed and lanes (:func:`design_classes`, with
   the per-road-class defaults of :data:`ROAD_CLASSES`).
3. The output a luminaire designed for one class needs to meet another
   (:func:`required_fraction`), used on lights x time slots.

Examples
--------
>>> class_value("M3"), class_unit("M3"), class_value("P4"), class_unit("P4")
(1.0, 'cd/m2', 5.0, 'lx')
>>> design_classes(np.array(["primary", "residential"]), speed_kmh=np.array([50.0, 30.0]),
...                lanes=np.array([2.0, 1.0])).tolist()
['M3', 'P2']
>>> float(required_fraction("M3", "M5", maintenance_margin=0.0))
0.5
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

import numpy as np
import pandas as pd

from twin._errors import InputValidationError

__all__ = [
    "C_PARAMETERS",
    "C_VOLUME_THRESHOLDS",
    "LIGHTING_CLASSES",
    "M_PARAMETERS",
    "MAINTENANCE_MARGIN",
    "OFF",
    "P_AVERAGE_CAP",
    "P_PARAMETERS",
    "P_USE_THRESHOLDS",
    "ROAD_CLASSES",
    "UNMATCHED_CLASS",
    "VOLUME_THRESHOLDS",
    "LightingClass",
    "adaptive_class",
    "darker",
    "class_number",
    "class_series",
    "class_table",
    "class_unit",
    "class_value",
    "design_classes",
    "design_table",
    "road_class_defaults",
    "p_cap_fraction",
    "required_fraction",
    "select_c_class",
    "select_m_class",
    "select_p_class",
    "volume_option",
]

OFF = "off"
"""Pseudo-class of a switched-off light: requirement 0."""


# ------------------------------------------------------------------------------------------------
# 1. EN 13201-2:2015 performance tables
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LightingClass:
    """One EN 13201-2:2015 lighting class and its maintained requirements.

    Attributes
    ----------
    name
        ``"M1"`` .. ``"M6"``, ``"C0"`` .. ``"C5"``, ``"P1"`` .. ``"P6"``.
    series
        ``"M"`` (motorised traffic, road-surface luminance), ``"C"`` (conflict areas,
        horizontal illuminance) or ``"P"`` (pedestrians and low speed, horizontal illuminance).
    value
        Minimum maintained average: luminance in cd/m2 (M) or illuminance in lx (C, P).
    unit
        ``"cd/m2"`` or ``"lx"``.
    u0
        Minimum overall uniformity (M, C), NaN for P.
    ul
        Minimum longitudinal uniformity (M, dry road), NaN otherwise.
    fti_max_pct
        Maximum threshold increment fTI in % (M), NaN otherwise.
    rei_min
        Minimum edge illuminance ratio REI (M), NaN otherwise.
    e_min_lx
        Minimum maintained illuminance in lx (P), NaN otherwise.
    """

    name: str
    series: str
    value: float
    unit: str
    u0: float = float("nan")
    ul: float = float("nan")
    fti_max_pct: float = float("nan")
    rei_min: float = float("nan")
    e_min_lx: float = float("nan")

    @property
    def number(self) -> int:
        """Class number within its series (M3 -> 3, C0 -> 0)."""
        return int(self.name[1:])


_CLASSES: tuple[LightingClass, ...] = (
    # EN 13201-2:2015 Table 1, M classes (dry road surface): L, U0, Ul, fTI, REI
    LightingClass("M1", "M", 2.00, "cd/m2", 0.40, 0.70, 10.0, 0.35),
    LightingClass("M2", "M", 1.50, "cd/m2", 0.40, 0.70, 10.0, 0.35),
    LightingClass("M3", "M", 1.00, "cd/m2", 0.40, 0.60, 15.0, 0.30),
    LightingClass("M4", "M", 0.75, "cd/m2", 0.40, 0.60, 15.0, 0.30),
    LightingClass("M5", "M", 0.50, "cd/m2", 0.35, 0.40, 15.0, 0.30),
    LightingClass("M6", "M", 0.30, "cd/m2", 0.35, 0.40, 20.0, 0.30),
    # EN 13201-2:2015 Table 2, C classes: E, U0
    LightingClass("C0", "C", 50.0, "lx", 0.40),
    LightingClass("C1", "C", 30.0, "lx", 0.40),
    LightingClass("C2", "C", 20.0, "lx", 0.40),
    LightingClass("C3", "C", 15.0, "lx", 0.40),
    LightingClass("C4", "C", 10.0, "lx", 0.40),
    LightingClass("C5", "C", 7.50, "lx", 0.40),
    # EN 13201-2:2015 Table 3, P classes: E average, E minimum
    LightingClass("P1", "P", 15.0, "lx", e_min_lx=3.0),
    LightingClass("P2", "P", 10.0, "lx", e_min_lx=2.0),
    LightingClass("P3", "P", 7.50, "lx", e_min_lx=1.5),
    LightingClass("P4", "P", 5.00, "lx", e_min_lx=1.0),
    LightingClass("P5", "P", 3.00, "lx", e_min_lx=0.6),
    LightingClass("P6", "P", 2.00, "lx", e_min_lx=0.4),
    # EN 13201-2:2015 Table 3 ends with P7, "performance not determined": the bottom of the P
    # series, reached only by dimming (never a design class here). The twin keeps orientation
    # light there: the P6 minimum, 0.4 lx, as the average (our choice, stated in every plan).
    LightingClass("P7", "P", 0.40, "lx", e_min_lx=float("nan")),
)

LIGHTING_CLASSES: Mapping[str, LightingClass] = MappingProxyType({c.name: c for c in _CLASSES})
"""EN 13201-2:2015 classes by name (Tables 1-3, maintained values).

M: average road-surface luminance L (cd/m2), overall uniformity U0, longitudinal uniformity Ul,
threshold increment fTI (%) and edge illuminance ratio REI, dry conditions. C: average
horizontal illuminance (lx) and U0. P: average and minimum horizontal illuminance (lx); the
additional vertical/semi-cylindrical requirements for facial recognition are not tabulated here.
"""

_SERIES_RANGE: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"M": (1, 6), "C": (0, 5), "P": (1, 6)}
)
# how far adaptive dimming may go in each series: M6 and C5 are the bottom of theirs (EN 13201-2
# has no lower class: a light designed for them is not dimmed by class, only a commune's
# switch-off window turns it down); P goes on to P7
_DIMMED_RANGE: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"M": (1, 6), "C": (0, 5), "P": (1, 7)}
)

P_AVERAGE_CAP = 1.5
"""EN 13201-2:2015 Table 3, note: a P class's maintained average may not exceed 1.5 times its
value (to keep uniformity); :func:`p_cap_fraction` turns it into a largest output fraction."""

# lookup arrays for the vectorised paths: code 0 is "off", then the classes in table order
_CODES: tuple[str, ...] = (OFF, *LIGHTING_CLASSES)
_CODE_INDEX = pd.Index(_CODES)
_VALUE = np.array([0.0] + [c.value for c in _CLASSES])
_SERIES = np.array([""] + [c.series for c in _CLASSES])
_NUMBER = np.array([-1] + [c.number for c in _CLASSES])
_SERIES_ID = {"": 0, "M": 1, "C": 2, "P": 3}
_SERIES_CODE = np.array([_SERIES_ID[s] for s in _SERIES])
# unit id per series id: 0 none, 1 luminance, 2 illuminance
_UNIT_ID = np.array([0, 1, 2, 2])


def _valid_list() -> str:
    return ", ".join(_CODES)


def _char_keys(arr: np.ndarray) -> np.ndarray:
    """Integer key of each fixed-width str (first 3 code points; -1 if longer than 3)."""
    width = arr.dtype.itemsize // 4
    pts = np.ascontiguousarray(arr).view(np.uint32).reshape(*arr.shape, width).astype(np.int64)
    if width < 3:
        pad = np.zeros((*arr.shape, 3 - width), dtype=np.int64)
        pts = np.concatenate([pts, pad], axis=-1)
    key = (pts[..., 0] << 42) | (pts[..., 1] << 21) | pts[..., 2]
    if pts.shape[-1] > 3:
        key = np.where((pts[..., 3:] != 0).any(axis=-1), -1, key)
    return key


_KEYS = _char_keys(np.array(_CODES))
_KEY_ORDER = np.argsort(_KEYS)
_KEYS_SORTED = _KEYS[_KEY_ORDER]


def _codes(cls: Any, *, field: str) -> np.ndarray:
    """Map class names (scalar or array of str) to integer codes; clear error on unknown ones.

    Fixed-width numpy str arrays go through an integer-key lookup (no per-element Python);
    object arrays through a pandas hash index.
    """
    arr = np.asarray(cls)
    if arr.dtype.kind not in "UO":
        msg = f"{field}: expected lighting class names (str), got dtype {arr.dtype}"
        raise InputValidationError(msg)
    flat = arr.ravel()
    if flat.dtype.kind == "U" and flat.size:
        key = _char_keys(flat)
        pos = np.clip(np.searchsorted(_KEYS_SORTED, key), 0, _KEYS_SORTED.size - 1)
        codes = np.where(_KEYS_SORTED[pos] == key, _KEY_ORDER[pos], -1)
    else:
        codes = _CODE_INDEX.get_indexer(pd.Index(flat, copy=False))
    bad = codes < 0
    if bad.any():
        # tolerate case and blanks ("m3 ", "OFF") before giving up
        fixed = pd.Index([str(v).strip() for v in flat[bad]])
        fixed = fixed.str.upper().where(fixed.str.lower() != OFF, OFF)
        codes[bad] = _CODE_INDEX.get_indexer(fixed)
        if (codes < 0).any():
            unknown = sorted({str(v) for v in flat[codes < 0]})[:5]
            names = ", ".join(map(repr, unknown))
            msg = f"{field}: unknown lighting class {names}; valid: {_valid_list()}"
            raise InputValidationError(msg)
    return codes.reshape(arr.shape)


def class_value(cls: str) -> float:
    """Return the maintained average of an EN 13201-2 class (cd/m2 for M, lx for C and P).

    ``"off"`` is a pseudo-class with value 0.

    Examples
    --------
    >>> class_value("M1"), class_value("C5"), class_value("off")
    (2.0, 7.5, 0.0)
    >>> class_value("M7")
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: cls: unknown lighting class 'M7'; valid: off, M1, M2, M3, M4, M5, M6, C0, C1, C2, C3, C4, C5, P1, P2, P3, P4, P5, P6, P7
    """  # noqa: E501
    return float(_VALUE[_codes(cls, field="cls")])


def class_unit(cls: str) -> str:
    """Return the unit of a class value: ``"cd/m2"`` (M), ``"lx"`` (C, P), ``""`` for off.

    Examples
    --------
    >>> class_unit("M2"), class_unit("C1"), class_unit("off")
    ('cd/m2', 'lx', '')
    """
    return ("", "cd/m2", "lx")[int(_UNIT_ID[_SERIES_CODE[_codes(cls, field="cls")]])]


def class_series(cls: str) -> str:
    """Return ``"M"``, ``"C"`` or ``"P"`` (``""`` for off).

    >>> class_series("P3")
    'P'
    """
    return str(_SERIES[_codes(cls, field="cls")])


def class_number(cls: str) -> int:
    """Return the class number within its series (M3 -> 3, C0 -> 0); off is refused.

    >>> class_number("C0"), class_number("P6")
    (0, 6)
    """
    code = int(_codes(cls, field="cls"))
    if code == 0:
        msg = "cls: 'off' has no class number"
        raise InputValidationError(msg)
    return int(_NUMBER[code])


def class_table() -> pd.DataFrame:
    """Return the EN 13201-2 tables as one DataFrame indexed by class name.

    Examples
    --------
    >>> t = class_table()
    >>> t.loc["M4", ["value", "unit", "u0", "ul"]].astype(str).tolist()
    ['0.75', 'cd/m2', '0.4', '0.6']
    >>> t.loc["P5", "e_min_lx"]
    np.float64(0.6)
    """
    rows = [
        {
            "class": c.name,
            "series": c.series,
            "value": c.value,
            "unit": c.unit,
            "u0": c.u0,
            "ul": c.ul,
            "fti_max_pct": c.fti_max_pct,
            "rei_min": c.rei_min,
            "e_min_lx": c.e_min_lx,
        }
        for c in _CLASSES
    ]
    return pd.DataFrame(rows).set_index("class")


def _class_name(series: str, number: int) -> str:
    lo, hi = _SERIES_RANGE[series]
    return f"{series}{min(max(number, lo), hi)}"


# ------------------------------------------------------------------------------------------------
# 2. CEN/TR 13201-1:2014 selection of lighting classes
# ------------------------------------------------------------------------------------------------
def _frozen(d: dict[str, dict[str, int]]) -> Mapping[str, Mapping[str, int]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in d.items()})


M_PARAMETERS: Mapping[str, Mapping[str, int]] = _frozen(
    {
        # design speed or speed limit: very high v >= 100 km/h, high 70 < v < 100,
        # moderate 40 < v <= 70, low v <= 40
        "speed": {"very_high": 2, "high": 1, "moderate": -1, "low": -2},
        # traffic volume as a share of the road's capacity, see VOLUME_THRESHOLDS
        "traffic_volume": {"high": 1, "moderate": 0, "low": -1},
        "composition": {"mixed_high_nonmotorised": 2, "mixed": 1, "motorised": 0},
        "separation": {"no": 1, "yes": 0},
        # high: more than 3 intersections per km (interchanges closer than 3 km)
        "junction_density": {"high": 1, "moderate": 0},
        "parked_vehicles": {"present": 1, "not_present": 0},
        # high: shop windows, advertising, sports fields, stations; moderate: normal
        "ambient_luminosity": {"high": 1, "moderate": 0, "low": -1},
        "navigational_task": {"very_difficult": 2, "difficult": 1, "easy": 0},
    }
)
"""Weighting values for M classes, CEN/TR 13201-1:2014 Table 1; ``M = 6 - sum``, clamped to 1..6.

The TR states these values are an example that national practice may adapt.
"""

C_PARAMETERS: Mapping[str, Mapping[str, int]] = _frozen(
    {
        "speed": {"very_high": 3, "high": 2, "moderate": 0, "low": -1},
        "traffic_volume": {"high": 1, "moderate": 0, "low": -1},
        "composition": {"mixed_high_nonmotorised": 2, "mixed": 1, "motorised": 0},
        "separation": {"no": 1, "yes": 0},
        "parked_vehicles": {"present": 1, "not_present": 0},
        "ambient_luminosity": {"high": 1, "moderate": 0, "low": -1},
        "navigational_task": {"very_difficult": 2, "difficult": 1, "easy": 0},
    }
)
"""Weighting values for C classes (conflict areas), CEN/TR 13201-1:2014 Table 3;
``C = 6 - sum``, clamped to 0..5. Speed bands as for M."""

P_PARAMETERS: Mapping[str, Mapping[str, int]] = _frozen(
    {
        # low: v <= 40 km/h (we also use it above 40, where the TR points to M classes);
        # very low: walking speed (we take v <= 10 km/h)
        "speed": {"low": 1, "very_low": 0},
        # use intensity of all users, see P_USE_THRESHOLDS
        "use_intensity": {"busy": 1, "normal": 0, "quiet": -1},
        "composition": {
            "pedestrians_cyclists_motorised": 2,
            "pedestrians_motorised": 1,
            "pedestrians_cyclists": 1,
            "pedestrians": 0,
            "cyclists": 0,
        },
        "parked_vehicles": {"present": 1, "not_present": 0},
        "ambient_luminosity": {"high": 1, "moderate": 0, "low": -1},
    }
)
"""Weighting values for P classes, CEN/TR 13201-1:2014 Table 4; ``P = 6 - sum``, clamped to 1..6.

The TR's sixth parameter, facial recognition, adds no weight: where it is necessary, the
additional EN 13201-2 requirements (vertical and semi-cylindrical illuminance) apply.
"""

VOLUME_THRESHOLDS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {"multilane": (0.35, 0.65), "two_lane": (0.15, 0.45)}
)
"""Traffic volume bands of CEN/TR 13201-1:2014 (share of the road's maximum capacity).

Motorways and multilane routes: low < 35 %, moderate 35-65 %, high > 65 %. Two-lane routes:
low < 15 %, moderate 15-45 %, high > 45 %. Used for M and C classes.
"""

C_VOLUME_THRESHOLDS = VOLUME_THRESHOLDS
"""The C table uses the same traffic-volume bands as M."""

P_USE_THRESHOLDS: tuple[float, float] = (0.2, 0.6)
"""Use-intensity bands for P classes, as a share of the design (peak) flow of the way.

The TR names the options (busy, normal, quiet) without numbers; we call a slot quiet below
20 % of the design flow, busy above 60 %, normal in between. This is our choice, documented
here so that it can be replaced by a national or municipal rule.
"""

_VOLUME_WEIGHT = MappingProxyType(
    {"high": 1, "busy": 1, "moderate": 0, "normal": 0, "low": -1, "quiet": -1}
)


def _option(table: Mapping[str, Mapping[str, int]], param: str, value: Any) -> int:
    options = table[param]
    if isinstance(value, bool | np.bool_):
        key = {
            "separation": ("yes", "no"),
            "parked_vehicles": ("present", "not_present"),
        }.get(param)
        if key is None:
            msg = f"{param}: expected one of {', '.join(options)}, got {value!r}"
            raise InputValidationError(msg)
        value = key[0] if value else key[1]
    if not isinstance(value, str) or value not in options:
        msg = f"{param}: {value!r} is not an option; valid: {', '.join(options)}"
        raise InputValidationError(msg)
    return options[value]


def _check_speed(speed_kmh: float) -> float:
    try:
        v = float(speed_kmh)
    except (TypeError, ValueError):
        msg = f"speed_kmh: expected a number in km/h, got {speed_kmh!r}"
        raise InputValidationError(msg) from None
    if not (np.isfinite(v) and 0.0 <= v <= 200.0):
        msg = f"speed_kmh: {speed_kmh!r} is not a speed within 0..200 km/h"
        raise InputValidationError(msg)
    return v


def _speed_band_mc(v: np.ndarray) -> np.ndarray:
    """CEN/TR speed band index for M and C: 0 very high, 1 high, 2 moderate, 3 low."""
    return np.select([v >= 100.0, v > 70.0, v > 40.0], [0, 1, 2], default=3)


_SPEED_OPTIONS_MC = ("very_high", "high", "moderate", "low")


def volume_option(ratio: float, *, multilane: bool = False) -> str:
    """Return the CEN/TR traffic-volume option for a volume/capacity ratio.

    Parameters
    ----------
    ratio
        Traffic volume as a share of the road's maximum capacity (0..1, may exceed 1).
    multilane
        True for motorways and multilane routes, False for two-lane roads.

    Examples
    --------
    >>> volume_option(0.5), volume_option(0.5, multilane=True), volume_option(0.1)
    ('high', 'moderate', 'low')
    """
    r = _check_ratio(ratio, field="ratio")
    lo, hi = VOLUME_THRESHOLDS["multilane" if multilane else "two_lane"]
    return str(np.select([r > hi, r >= lo], ["high", "moderate"], default="low"))


def _check_ratio(ratio: Any, *, field: str) -> np.ndarray:
    r = np.asarray(ratio, dtype=float) if not isinstance(ratio, str) else None
    if r is None or not np.all(np.isfinite(r) & (r >= 0.0)):
        msg = f"{field}: ratios must be finite numbers >= 0, got {ratio!r}"
        raise InputValidationError(msg)
    return r


def select_m_class(
    *,
    speed_kmh: float,
    traffic_volume: str,
    composition: str = "mixed",
    separation: bool | str = False,
    junction_density: str = "moderate",
    parked_vehicles: bool | str = False,
    ambient_luminosity: str = "moderate",
    navigational_task: str = "easy",
) -> str:
    """Select an M class with the weighting method of CEN/TR 13201-1:2014 (Table 1).

    ``M = 6 - VWS`` where VWS is the sum of the weighting values of :data:`M_PARAMETERS`,
    clamped to M1..M6.

    Parameters
    ----------
    speed_kmh
        Design speed or speed limit (km/h): >= 100 very high (+2), 70-100 high (+1),
        40-70 moderate (-1), <= 40 low (-2).
    traffic_volume
        ``"high"`` (+1), ``"moderate"`` (0), ``"low"`` (-1); see :func:`volume_option`.
    composition
        ``"mixed_high_nonmotorised"`` (+2), ``"mixed"`` (+1), ``"motorised"`` (0).
    separation
        Separated carriageways: True/``"yes"`` (0) or False/``"no"`` (+1).
    junction_density
        ``"high"`` (+1) or ``"moderate"`` (0).
    parked_vehicles
        True/``"present"`` (+1) or False/``"not_present"`` (0).
    ambient_luminosity
        ``"high"`` (+1), ``"moderate"`` (0), ``"low"`` (-1).
    navigational_task
        ``"very_difficult"`` (+2), ``"difficult"`` (+1), ``"easy"`` (0).

    Examples
    --------
    Urban main road at 50 km/h, heavy mixed traffic, no median, many junctions:
    -1 + 1 + 1 + 1 + 1 + 0 + 0 + 0 = 3, so M3.

    >>> select_m_class(speed_kmh=50, traffic_volume="high", separation=False,
    ...                junction_density="high")
    'M3'
    """
    band = _SPEED_OPTIONS_MC[int(_speed_band_mc(np.array(_check_speed(speed_kmh))))]
    vws = (
        M_PARAMETERS["speed"][band]
        + _option(M_PARAMETERS, "traffic_volume", traffic_volume)
        + _option(M_PARAMETERS, "composition", composition)
        + _option(M_PARAMETERS, "separation", separation)
        + _option(M_PARAMETERS, "junction_density", junction_density)
        + _option(M_PARAMETERS, "parked_vehicles", parked_vehicles)
        + _option(M_PARAMETERS, "ambient_luminosity", ambient_luminosity)
        + _option(M_PARAMETERS, "navigational_task", navigational_task)
    )
    return _class_name("M", 6 - vws)


def select_c_class(
    *,
    speed_kmh: float,
    traffic_volume: str,
    composition: str = "mixed",
    separation: bool | str = False,
    parked_vehicles: bool | str = False,
    ambient_luminosity: str = "moderate",
    navigational_task: str = "difficult",
) -> str:
    """Select a C class (conflict area) with CEN/TR 13201-1:2014 (Table 3).

    ``C = 6 - VWS`` clamped to C0..C5. Speed weights: >= 100 km/h +3, 70-100 +2, 40-70 0,
    <= 40 -1; the other options and weights are those of :func:`select_m_class` (no junction
    density: the conflict area is the junction). The navigational task defaults to
    ``"difficult"``, the usual case in a conflict area.

    Examples
    --------
    Junction of an urban main road at 50 km/h: 0 + 1 + 1 + 1 + 0 + 0 + 1 = 4, so C2.

    >>> select_c_class(speed_kmh=50, traffic_volume="high")
    'C2'
    """
    band = _SPEED_OPTIONS_MC[int(_speed_band_mc(np.array(_check_speed(speed_kmh))))]
    vws = (
        C_PARAMETERS["speed"][band]
        + _option(C_PARAMETERS, "traffic_volume", traffic_volume)
        + _option(C_PARAMETERS, "composition", composition)
        + _option(C_PARAMETERS, "separation", separation)
        + _option(C_PARAMETERS, "parked_vehicles", parked_vehicles)
        + _option(C_PARAMETERS, "ambient_luminosity", ambient_luminosity)
        + _option(C_PARAMETERS, "navigational_task", navigational_task)
    )
    return _class_name("C", 6 - vws)


def select_p_class(
    *,
    speed_kmh: float,
    use_intensity: str,
    composition: str,
    parked_vehicles: bool | str = False,
    ambient_luminosity: str = "moderate",
    facial_recognition: bool = False,
) -> str:
    """Select a P class (pedestrian and low-speed areas) with CEN/TR 13201-1:2014 (Table 4).

    ``P = 6 - VWS`` clamped to P1..P6.

    Parameters
    ----------
    speed_kmh
        Travel speed: walking speed (<= 10 km/h) 0, otherwise low (+1). The TR's low band
        ends at 40 km/h; faster roads are meant for M classes, but we keep +1 above it.
    use_intensity
        ``"busy"`` (+1), ``"normal"`` (0), ``"quiet"`` (-1).
    composition
        ``"pedestrians_cyclists_motorised"`` (+2), ``"pedestrians_motorised"`` (+1),
        ``"pedestrians_cyclists"`` (+1), ``"pedestrians"`` (0), ``"cyclists"`` (0).
    parked_vehicles
        True/``"present"`` (+1) or False (0).
    ambient_luminosity
        ``"high"`` (+1), ``"moderate"`` (0), ``"low"`` (-1).
    facial_recognition
        Adds no weight (the TR asks for the additional EN 13201-2 vertical-illuminance
        requirements instead); accepted so that the full parameter set can be recorded.

    Examples
    --------
    The TR's own example (Annex A.2), a footpath for pedestrians and cyclists: low speed +1,
    normal use 0, pedestrians and cyclists +1, no parking 0, moderate ambient 0 -> 2 -> P4;
    at night (quiet -1, low ambient -1) -> 0 -> P6.

    >>> select_p_class(speed_kmh=20, use_intensity="normal", composition="pedestrians_cyclists")
    'P4'
    >>> select_p_class(speed_kmh=20, use_intensity="quiet", composition="pedestrians_cyclists",
    ...                ambient_luminosity="low")
    'P6'
    """
    v = _check_speed(speed_kmh)
    if not isinstance(facial_recognition, bool | np.bool_):
        msg = f"facial_recognition: expected True or False, got {facial_recognition!r}"
        raise InputValidationError(msg)
    vws = (
        P_PARAMETERS["speed"]["low" if v > _WALKING_KMH else "very_low"]
        + _option(P_PARAMETERS, "use_intensity", use_intensity)
        + _option(P_PARAMETERS, "composition", composition)
        + _option(P_PARAMETERS, "parked_vehicles", parked_vehicles)
        + _option(P_PARAMETERS, "ambient_luminosity", ambient_luminosity)
    )
    return _class_name("P", 6 - vws)


_WALKING_KMH = 10.0


def adaptive_class(
    design: str | np.ndarray,
    *,
    traffic_ratio: float | np.ndarray,
    pedestrian_ratio: float | np.ndarray | None = None,
    design_volume: str | np.ndarray | None = None,
    multilane: bool | np.ndarray = False,
    design_vws: int | np.ndarray | None = None,
) -> str | np.ndarray:
    """Re-evaluate the traffic-volume weighting of a design class for one time slot.

    CEN/TR 13201-1:2014 allows a lower class when traffic is low ("adaptive lighting"): the
    class is selected again with the slot's traffic volume, every other parameter kept as in
    the design case. Only the volume weight changes (from +1 down to -1), so a slot is at most
    two classes darker than the design, and never brighter: the design class is the peak case.

    Parameters
    ----------
    design
        Design class(es), e.g. ``"M3"`` or an array of names; ``"off"`` stays off.
    traffic_ratio
        M and C classes: the slot's motor-traffic volume as a share of the road's capacity,
        banded by :data:`VOLUME_THRESHOLDS`. P classes: when ``pedestrian_ratio`` is None,
        the slot's flow of all users as a share of the design (peak) flow, banded by
        :data:`P_USE_THRESHOLDS`.
    pedestrian_ratio
        P classes: pedestrian and cyclist flow as a share of its design (peak) flow. With
        both ratios, a P slot takes the busier of the two use intensities (motor traffic
        banded as for a two-lane road).
    design_volume
        Traffic-volume option of the design case (``"high"``/``"busy"``, ``"moderate"``/
        ``"normal"``, ``"low"``/``"quiet"``); None means the top option (+1), i.e. the
        design was made for peak traffic. :func:`design_table` gives it per segment.
    multilane
        Motorways and multilane routes (M and C thresholds).
    design_vws
        Sum of weighting values of the design case (``vws`` of :func:`design_table`). Needed
        only where the design class was clamped at the bright end of its series (e.g. a sum
        of 7 gives M1, and so does 6 after losing one volume step): with it the slot class is
        ``6 - (vws - volume step)`` exactly as the TR re-evaluation gives; without it the
        volume step is applied to the class itself.

    Returns
    -------
    str or numpy.ndarray
        The slot's class, same shape as the broadcast inputs.

    Examples
    --------
    An M3 urban main road designed for high traffic (+1); at 10 % of capacity the volume is
    low (-1): two steps darker.

    >>> adaptive_class("M3", traffic_ratio=0.10)
    'M5'
    >>> adaptive_class("M3", traffic_ratio=0.30)  # moderate: one step
    'M4'
    >>> adaptive_class("M3", traffic_ratio=0.95)  # at peak: the design class
    'M3'
    >>> adaptive_class("P2", traffic_ratio=0.05, design_volume="normal")  # normal -> quiet
    'P3'
    >>> adaptive_class("M1", traffic_ratio=0.1)  # two steps from the class
    'M3'
    >>> adaptive_class("M1", traffic_ratio=0.1, design_vws=6)  # sum 6 -> 4: one step (M2)
    'M2'
    >>> adaptive_class(np.array(["M3", "C2", "P4"]), traffic_ratio=np.array([0.1, 0.3, 0.1])).tolist()
    ['M5', 'C3', 'P6']
    """  # noqa: E501
    codes = _codes(design, field="design")
    tr = _check_ratio(traffic_ratio, field="traffic_ratio")
    pr = (
        None
        if pedestrian_ratio is None
        else _check_ratio(pedestrian_ratio, field="pedestrian_ratio")
    )
    ml = np.asarray(multilane, dtype=bool)
    if design_volume is None:
        dvw = np.array(1)
    else:
        dv = np.asarray(design_volume)
        lookup = pd.Index(list(_VOLUME_WEIGHT))
        idx = lookup.get_indexer(pd.Index(dv.ravel().astype(str), copy=False))
        if (idx < 0).any():
            msg = f"design_volume: valid options are {', '.join(_VOLUME_WEIGHT)}"
            raise InputValidationError(msg)
        dvw = np.array(list(_VOLUME_WEIGHT.values()))[idx].reshape(dv.shape)
    arrays = [codes, tr, ml, dvw] + ([] if pr is None else [pr])
    try:
        bc = np.broadcast_arrays(*arrays)
    except ValueError:
        msg = "traffic_ratio: shape does not broadcast with design (and the other arrays)"
        raise InputValidationError(msg) from None
    codes_b, tr_b, ml_b, dvw_b = bc[:4]
    series = _SERIES_CODE[codes_b]
    # M and C: CEN/TR bands on volume / capacity
    lo = np.where(ml_b, VOLUME_THRESHOLDS["multilane"][0], VOLUME_THRESHOLDS["two_lane"][0])
    hi = np.where(ml_b, VOLUME_THRESHOLDS["multilane"][1], VOLUME_THRESHOLDS["two_lane"][1])
    w_mc = np.select([tr_b > hi, tr_b >= lo], [1, 0], default=-1)
    # P: use intensity on flow / design flow
    plo, phi = P_USE_THRESHOLDS
    if pr is None:
        w_p = np.select([tr_b > phi, tr_b >= plo], [1, 0], default=-1)
    else:
        pr_b = bc[4]
        w_ped = np.select([pr_b > phi, pr_b >= plo], [1, 0], default=-1)
        w_veh = np.select(
            [tr_b > VOLUME_THRESHOLDS["two_lane"][1], tr_b >= VOLUME_THRESHOLDS["two_lane"][0]],
            [1, 0],
            default=-1,
        )
        w_p = np.maximum(w_ped, w_veh)
    w_slot = np.where(series == _SERIES_ID["P"], w_p, w_mc)
    shift = np.clip(dvw_b - w_slot, 0, 2)
    if design_vws is not None:
        vws = np.broadcast_to(np.asarray(design_vws), shift.shape)
        if vws.dtype.kind not in "iu":
            msg = "design_vws: expected integer sums of weighting values"
            raise InputValidationError(msg)
        lo = np.where(series == _SERIES_ID["C"], 0, 1)
        hi = lo + 5
        number = _NUMBER[codes_b]
        expected = np.clip(6 - vws, lo, hi)
        if np.any((codes_b != 0) & (expected != number)):
            msg = "design_vws: does not give the design class (6 - vws, clamped to the series)"
            raise InputValidationError(msg)
        slot = np.clip(6 - (vws - shift), lo, hi)
        shift = np.where(codes_b == 0, 0, np.maximum(slot, number) - number)
    out = _shift_codes(codes_b, shift)
    names = np.asarray(_CODES)
    if out.ndim == 0:
        return str(names[int(out)])
    result: np.ndarray = names[out]
    return result


def _shift_codes(codes: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Move class codes ``shift`` steps darker within their series (off stays off)."""
    series = _SERIES_CODE[codes]
    number = _NUMBER[codes] + shift
    out = np.zeros(codes.shape, dtype=int)
    for s, sid in (("M", 1), ("C", 2), ("P", 3)):
        lo, hi = _DIMMED_RANGE[s]
        first = _CODE_INDEX.get_loc(f"{s}{lo}")
        m = series == sid
        out[m] = first + np.clip(number[m], lo, hi) - lo
    return out


def darker(cls: str | np.ndarray, steps: int | np.ndarray = 1) -> str | np.ndarray:
    """Move classes ``steps`` steps darker within their series, clamped to the series' range.

    Used where another CEN/TR 13201-1 parameter changes in a slot, e.g. the ambient luminosity
    falling from moderate to low once shop windows and advertising are switched off.

    >>> darker("M5"), darker("P3", 2), darker("M6"), darker("off")
    ('M6', 'P5', 'M6', 'off')
    >>> darker(np.array(["C2", "P4"]), np.array([1, 0])).tolist()
    ['C3', 'P4']
    """
    codes = _codes(cls, field="cls")
    shift = np.broadcast_to(np.asarray(steps, dtype=int), codes.shape)
    out = np.where(codes == 0, 0, _shift_codes(codes, shift))
    names = np.asarray(_CODES)[out]
    return str(names) if np.ndim(names) == 0 else names


# ------------------------------------------------------------------------------------------------
# 3. Road classes: defaults and design classes
# ------------------------------------------------------------------------------------------------
# One row per OSM highway value, most important first (the builder ranks merged ways with this
# order). Columns:
#   series        M (motorised traffic), P (pedestrians/low speed); junction segments of roads
#                 open to motor traffic get C classes (design_classes)
#   lanes         default total lanes of the way when OSM has no lanes tag
#   speed_kph     default speed when OSM has no maxspeed (French rules: 130 motorway, 110
#                 expressway, 50 in built-up areas, 20 zone de rencontre)
#   lit_default   lit when OSM has no lit tag (urban main and residential roads; not motorways,
#                 rural tracks, or footways and cycleways, usually lit by the adjacent road)
#   spacing_m     typical light spacing: about 3.5-4 x mounting height (12 m -> 40-45 m on fast
#                 roads, 10 m -> 35 m on main urban roads, 6-8 m -> 25 m in residential streets)
#   hps_lamp_w    typical HPS lamp of the pre-LED stock (70-250 W, DESIGN section 4), the same
#                 values as twin.energy.HPS_LAMP_W
#   volume, composition, separation, junction_density, parked, ambient, navigation:
#                 CEN/TR 13201-1 options of the design (peak) case, in the M vocabulary for M
#                 roads and the P vocabulary (use intensity, P composition) for P ways
#   c_composition C-table composition of a junction on this road ("-" where no motor traffic)
_ROAD_TABLE = """
highway         series  lanes  speed_kph  lit_default  spacing_m  hps_lamp_w  volume    composition                     separation  junction_density  parked       ambient   navigation  c_composition
motorway        M       2      130        False        45         250         high      motorised                       yes         moderate          not_present  moderate  easy        motorised
trunk           M       2      110        False        45         250         high      motorised                       yes         moderate          not_present  moderate  easy        motorised
primary         M       2      50         True         35         250         high      mixed                           no          high              not_present  moderate  easy        mixed
secondary       M       2      50         True         33         150         moderate  mixed                           no          high              not_present  moderate  easy        mixed
tertiary        M       2      50         True         30         100         moderate  mixed                           no          moderate          not_present  moderate  easy        mixed
motorway_link   M       1      70         False        40         150         high      motorised                       yes         moderate          not_present  moderate  difficult   motorised
trunk_link      M       1      70         False        40         150         high      motorised                       yes         moderate          not_present  moderate  difficult   motorised
primary_link    M       1      50         True         35         150         high      mixed                           yes         high              not_present  moderate  difficult   mixed
secondary_link  M       1      50         True         33         100         moderate  mixed                           yes         high              not_present  moderate  difficult   mixed
tertiary_link   M       1      50         True         30         100         moderate  mixed                           yes         moderate          not_present  moderate  difficult   mixed
busway          M       1      50         True         33         150         moderate  motorised                       yes         moderate          not_present  moderate  easy        mixed
unclassified    M       2      50         False        30         100         low       mixed                           no          moderate          not_present  moderate  easy        mixed
road            M       2      50         False        30         100         low       mixed                           no          moderate          not_present  moderate  easy        mixed
residential     P       2      50         True         25         70          normal    pedestrians_cyclists_motorised  no          moderate          present      moderate  easy        mixed
living_street   P       1      20         True         20         70          normal    pedestrians_cyclists_motorised  no          moderate          not_present  moderate  easy        mixed_high_nonmotorised
service         P       1      20         False        25         70          quiet     pedestrians_motorised           no          moderate          present      moderate  easy        mixed
pedestrian      P       1      5          True         20         70          busy      pedestrians_cyclists            no          moderate          not_present  high      easy        -
track           P       1      30         False        40         70          quiet     pedestrians_cyclists_motorised  no          moderate          not_present  low       easy        mixed_high_nonmotorised
cycleway        P       1      20         False        25         70          normal    cyclists                        no          moderate          not_present  moderate  easy        -
footway         P       1      5          False        25         70          normal    pedestrians                     no          moderate          not_present  moderate  easy        -
bridleway       P       1      5          False        30         70          quiet     pedestrians_cyclists            no          moderate          not_present  low       easy        -
path            P       1      5          False        30         70          quiet     pedestrians_cyclists            no          moderate          not_present  moderate  easy        -
steps           P       1      5          False        15         70          normal    pedestrians                     no          moderate          not_present  moderate  easy        -
"""  # noqa: E501


def _road_classes() -> pd.DataFrame:
    df = pd.read_csv(io.StringIO(_ROAD_TABLE), sep=r"\s+", index_col="highway")
    df["lanes"] = df["lanes"].astype(int)
    df["speed_kph"] = df["speed_kph"].astype(float)
    df["spacing_m"] = df["spacing_m"].astype(float)
    df["hps_lamp_w"] = df["hps_lamp_w"].astype(float)
    df["lit_default"] = df["lit_default"].astype(bool)
    df["c_composition"] = df["c_composition"].replace("-", "")
    df.attrs["units"] = {"speed_kph": "km/h", "spacing_m": "m", "hps_lamp_w": "W"}
    df.attrs["source"] = (
        "engineering defaults (see twin.assets.lighting); CEN/TR 13201-1:2014 parameter options"
    )
    return df


ROAD_CLASSES: pd.DataFrame = _road_classes()
"""Defaults per OSM ``highway`` value (index), most important first.

Columns: ``series`` (M or P at design; junction segments of motor roads get C), ``lanes``,
``speed_kph``, ``lit_default``, ``spacing_m``, ``hps_lamp_w`` and the CEN/TR 13201-1 options
of the design (peak) case: ``volume``, ``composition``, ``separation``, ``junction_density``,
``parked``, ``ambient``, ``navigation``, ``c_composition``. Print it with
``print(ROAD_CLASSES.to_string())``; treat it as read-only (copy before changing).
"""

UNMATCHED_CLASS = "P4"
"""Design class of a light that matches no road segment (squares, parks, car parks): P4, 5 lx."""


def road_class_defaults(highway: str) -> dict[str, Any]:
    """Return the defaults of one OSM ``highway`` value as a plain dict.

    Examples
    --------
    >>> d = road_class_defaults("residential")
    >>> d["series"], d["speed_kph"], d["spacing_m"], d["hps_lamp_w"], d["lit_default"]
    ('P', 50.0, 25.0, 70.0, True)
    """
    if highway not in ROAD_CLASSES.index:
        msg = f"highway: unknown road class {highway!r}; known: {', '.join(ROAD_CLASSES.index)}"
        raise InputValidationError(msg)
    row = cast(dict[str, Any], ROAD_CLASSES.loc[highway].to_dict())  # keyed by column names
    return {"highway": highway, **row}


def _lookup(table: Mapping[str, Mapping[str, int]], param: str, col: str) -> np.ndarray:
    """Weight per ROAD_CLASSES row for one parameter (0 where the option is not in the table)."""
    opts = table[param]
    return np.array([opts.get(str(v), 0) for v in ROAD_CLASSES[col]], dtype=int)


_SEP_W = _lookup(M_PARAMETERS, "separation", "separation")
_JD_W = _lookup(M_PARAMETERS, "junction_density", "junction_density")
_PARK_W = _lookup(M_PARAMETERS, "parked_vehicles", "parked")
_AMB_W = _lookup(M_PARAMETERS, "ambient_luminosity", "ambient")
_NAV_W = _lookup(M_PARAMETERS, "navigational_task", "navigation")
_VOL_W = np.array([_VOLUME_WEIGHT[str(v)] for v in ROAD_CLASSES["volume"]], dtype=int)
_MCOMP_W = _lookup(M_PARAMETERS, "composition", "composition")
_PCOMP_W = _lookup(P_PARAMETERS, "composition", "composition")
_CCOMP_W = _lookup(C_PARAMETERS, "composition", "c_composition")
_IS_P = (ROAD_CLASSES["series"] == "P").to_numpy()
_HAS_MOTOR = (ROAD_CLASSES["c_composition"] != "").to_numpy()
_FAST_ROAD = ROAD_CLASSES.index.isin(
    ["motorway", "trunk", "motorway_link", "trunk_link"]
)  # separated roads with their own ambient/junction settings


def _as_float(x: Any, n: int, *, field: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        msg = f"{field}: expected numbers"
        raise InputValidationError(msg) from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        msg = f"{field}: expected {n} values (one per segment), got shape {arr.shape}"
        raise InputValidationError(msg)
    return arr


def design_table(
    highway: np.ndarray,
    *,
    speed_kmh: np.ndarray,
    lanes: np.ndarray,
    junction: np.ndarray | None = None,
) -> pd.DataFrame:
    """Run the CEN/TR 13201-1 weighting for every segment and return the details.

    Parameters as :func:`design_classes`.

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``lighting_class``, ``series``, ``vws`` (sum of weights),
        ``design_volume`` (volume option of the design case, for :func:`adaptive_class`),
        ``multilane``, ``speed_kph`` and ``lanes`` as used (defaults filled in).

    Examples
    --------
    >>> design_table(np.array(["secondary"]), speed_kmh=np.array([50.0]),
    ...              lanes=np.array([4.0])).iloc[0].to_dict()
    {'lighting_class': 'M3', 'series': 'M', 'vws': 3, 'design_volume': 'high', 'multilane': True, 'speed_kph': 50.0, 'lanes': 4.0}
    """  # noqa: E501
    hw = np.asarray(highway)
    if hw.ndim != 1 or hw.dtype.kind not in "UO":
        msg = "highway: expected a 1-d array of OSM highway values (str)"
        raise InputValidationError(msg)
    n = hw.size
    row = ROAD_CLASSES.index.get_indexer(pd.Index(hw.astype(str), copy=False))
    if (row < 0).any():
        unknown = sorted({str(v) for v in hw[row < 0]})[:8]
        msg = (
            f"highway: no road-class defaults for {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(ROAD_CLASSES.index)}"
        )
        raise InputValidationError(msg)
    v = _as_float(speed_kmh, n, field="speed_kmh")
    ln = _as_float(lanes, n, field="lanes")
    if np.any(np.isfinite(v) & ((v < 0) | (v > 200))):
        msg = "speed_kmh: speeds must be within 0..200 km/h (NaN takes the road-class default)"
        raise InputValidationError(msg)
    v = np.where(np.isfinite(v) & (v > 0), v, ROAD_CLASSES["speed_kph"].to_numpy(float)[row])
    ln = np.where(np.isfinite(ln) & (ln >= 1), ln, ROAD_CLASSES["lanes"].to_numpy(float)[row])
    if junction is None:
        jn = np.zeros(n, dtype=bool)
    else:
        jn = np.asarray(junction)
        if jn.shape != (n,) or jn.dtype.kind != "b":
            msg = f"junction: expected {n} booleans (one per segment)"
            raise InputValidationError(msg)

    is_p = _IS_P[row]
    sep_w = _SEP_W[row]
    # a multilane route: 4+ lanes, or 2+ lanes on one carriageway of a separated road
    multilane = (ln >= 4) | ((sep_w == 0) & (ln >= 2))
    vol_w = np.where(~is_p & multilane, 1, _VOL_W[row])  # a multilane road at peak is high
    # ordinary roads above 70 km/h run outside built-up areas: low ambient, few junctions
    rural = (v > 70.0) & ~_FAST_ROAD[row] & ~is_p
    amb_w = np.where(rural, M_PARAMETERS["ambient_luminosity"]["low"], _AMB_W[row])
    jd_w = np.where(rural, 0, _JD_W[row])
    band = _speed_band_mc(v)
    m_speed = np.array([M_PARAMETERS["speed"][o] for o in _SPEED_OPTIONS_MC])[band]
    c_speed = np.array([C_PARAMETERS["speed"][o] for o in _SPEED_OPTIONS_MC])[band]
    vws_m = m_speed + vol_w + _MCOMP_W[row] + sep_w + jd_w + _PARK_W[row] + amb_w + _NAV_W[row]
    vws_c = (
        c_speed
        + vol_w
        + _CCOMP_W[row]
        + sep_w
        + _PARK_W[row]
        + amb_w
        + np.maximum(_NAV_W[row], C_PARAMETERS["navigational_task"]["difficult"])
    )
    p_speed = np.where(v > _WALKING_KMH, 1, 0)
    vws_p = p_speed + vol_w + _PCOMP_W[row] + _PARK_W[row] + amb_w
    use_c = jn & _HAS_MOTOR[row]
    series = np.where(use_c, "C", np.where(is_p, "P", "M"))
    vws = np.where(use_c, vws_c, np.where(is_p, vws_p, vws_m))
    number = np.where(series == "C", np.clip(6 - vws, 0, 5), np.clip(6 - vws, 1, 6))
    first = np.where(series == "C", _CODES.index("C0"), np.where(is_p, _CODES.index("P1"), 1))
    cls = np.asarray(_CODES)[first + number - np.where(series == "C", 0, 1)]
    p_names = np.array(["quiet", "normal", "busy"])
    mc_names = np.array(["low", "moderate", "high"])
    vol_names = np.where(is_p & ~use_c, p_names[vol_w + 1], mc_names[vol_w + 1])
    return pd.DataFrame(
        {
            "lighting_class": cls.astype(str),
            "series": series.astype(str),
            "vws": vws.astype(int),
            "design_volume": vol_names.astype(str),
            "multilane": multilane,
            "speed_kph": v,
            "lanes": ln,
        }
    )


def design_classes(
    highway: np.ndarray,
    *,
    speed_kmh: np.ndarray,
    lanes: np.ndarray,
    junction: np.ndarray | None = None,
) -> np.ndarray:
    """Return the EN 13201 design (peak) class of every road segment, vectorised.

    Each segment is weighted with CEN/TR 13201-1:2014 using the options of its road class in
    :data:`ROAD_CLASSES`, refined by its own speed and lanes:

    - motor roads (motorway .. unclassified, links, busway) get M classes (Table 1);
    - residential, living streets, service roads, tracks, pedestrian streets, footways,
      cycleways, paths and steps get P classes (Table 4);
    - segments flagged ``junction`` (roundabouts, junction areas) on roads open to motor
      traffic are conflict areas and get C classes (Table 3, navigational task at least
      difficult); pedestrian and cycle ways keep their P class;
    - speed sets the speed weight; a road with 4+ lanes (or 2+ on a separated carriageway) is
      a multilane route whose peak volume is high; an ordinary road above 70 km/h is taken as
      running outside built-up areas (ambient luminosity low, junction density moderate).

    Parameters
    ----------
    highway
        OSM ``highway`` values (index of :data:`ROAD_CLASSES`); unknown values are an error.
    speed_kmh
        Speed limit (km/h) per segment; NaN or <= 0 takes the road-class default.
    lanes
        Total lanes per segment; NaN or < 1 takes the road-class default.
    junction
        Booleans, True for conflict-area segments.

    Returns
    -------
    numpy.ndarray
        Class names (str), e.g. ``"M3"``, ``"C2"``, ``"P4"``.

    Examples
    --------
    >>> hw = np.array(["motorway", "primary", "primary", "tertiary", "residential", "footway"])
    >>> design_classes(hw, speed_kmh=np.array([130, 50, 50, 50, 30, np.nan]),
    ...                lanes=np.array([2, 2, 2, 2, 1, 1]),
    ...                junction=np.array([False, False, True, False, False, False])).tolist()
    ['M3', 'M3', 'C2', 'M5', 'P2', 'P6']
    """
    table = design_table(highway, speed_kmh=speed_kmh, lanes=lanes, junction=junction)
    out: np.ndarray = table["lighting_class"].to_numpy(dtype=str)
    return out


# ------------------------------------------------------------------------------------------------
# 4. Output needed to meet a class
# ------------------------------------------------------------------------------------------------
MAINTENANCE_MARGIN: float = 0.10
"""Relative margin added to the output ratio L(K')/L(K) when dimming (10 %).

EN 13201-2 values are maintained minima: the installation is sized so that, at the end of the
maintenance cycle (dirt on the optics, LED lumen depreciation), full output still meets the
design class. Dimmed, the same installation meets a lower class at the output ratio of the two
class values. The margin covers what the ratio ignores: the design's reserve is unknown (we
assume the design exactly meets its class), LED drivers are not perfectly linear at low levels,
and dimming steps are quantised (DALI, 1-10 V). 10 % is a round figure of the same order as
those effects (a typical LED maintenance factor is 0.8-0.9), so a dimmed light stays on the
safe side. Set it to 0 to get the bare ratio.
"""


def required_fraction(
    design: str | np.ndarray,
    required: str | np.ndarray,
    *,
    maintenance_margin: float = MAINTENANCE_MARGIN,
) -> float | np.ndarray:
    """Return the output fraction at which a luminaire designed for ``design`` meets ``required``.

    ``min(1, L(required) / L(design) * (1 + maintenance_margin))``, and 0 where ``required``
    is ``"off"`` (DESIGN section 4: LED light output is close to linear in the dim level).
    Vectorised with table lookups; arrays broadcast (e.g. lights x 1 against lights x slots).

    Classes are compared within a series, and also between C and P, whose values are both
    average horizontal illuminances in lx. M (luminance) against C or P (illuminance) is
    refused: converting needs the road surface's Q0 (CEN/TR 13201-1 comparable classes),
    which the twin does not carry.

    Parameters
    ----------
    design
        Design class(es) of the luminaires (not ``"off"``).
    required
        Required class(es) in the slot, or ``"off"``.
    maintenance_margin
        Relative margin, see :data:`MAINTENANCE_MARGIN`; 0 .. 1.

    Returns
    -------
    float or numpy.ndarray
        Fractions in [0, 1]; a float for scalar inputs.

    Examples
    --------
    >>> round(float(required_fraction("M3", "M5")), 3)  # 0.5 / 1.0 * 1.1
    0.55
    >>> required_fraction(np.array([["M2"], ["P3"]]), np.array([["M3", "off"], ["P5", "P3"]]),
    ...                   maintenance_margin=0.0).round(3)
    array([[0.667, 0.   ],
           [0.4  , 1.   ]])
    >>> required_fraction("M3", "P4")
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: required: class series M (cd/m2) and P (lx) are not comparable: design M3 vs required P4
    """  # noqa: E501
    m = float(maintenance_margin)
    if not (np.isfinite(m) and 0.0 <= m <= 1.0):
        msg = f"maintenance_margin: {maintenance_margin!r} must be within 0..1"
        raise InputValidationError(msg)
    dc = _codes(design, field="design")
    rc = _codes(required, field="required")
    try:
        dc_b, rc_b = np.broadcast_arrays(dc, rc)
    except ValueError:
        msg = f"required: shape {rc.shape} does not broadcast with design shape {dc.shape}"
        raise InputValidationError(msg) from None
    if np.any(dc_b == 0):
        msg = "design: 'off' is not a design class"
        raise InputValidationError(msg)
    ud = _UNIT_ID[_SERIES_CODE[dc_b]]
    ur = _UNIT_ID[_SERIES_CODE[rc_b]]
    bad = (rc_b != 0) & (ud != ur)
    if bad.any():
        i = np.flatnonzero(bad.ravel())[0]
        d_name, r_name = _CODES[dc_b.ravel()[i]], _CODES[rc_b.ravel()[i]]
        sd, sr = _SERIES[dc_b.ravel()[i]], _SERIES[rc_b.ravel()[i]]
        msg = (
            f"required: class series {sd} ({class_unit(d_name)}) and {sr} ({class_unit(r_name)}) "
            f"are not comparable: design {d_name} vs required {r_name}"
        )
        raise InputValidationError(msg)
    frac: np.ndarray = np.minimum(1.0, _VALUE[rc_b] / _VALUE[dc_b] * (1.0 + m))
    if frac.ndim == 0:
        return float(frac)
    return frac


def p_cap_fraction(design: str | np.ndarray, required: str | np.ndarray) -> float | np.ndarray:
    """Return the largest output fraction a P-class slot allows (``inf`` for M, C and off).

    ``P_AVERAGE_CAP * L(required) / L(design)`` (EN 13201-2:2015 Table 3, note).

    Examples
    --------
    >>> round(float(p_cap_fraction("P4", "P6")), 3), p_cap_fraction("M3", "M5")
    (0.6, inf)
    """
    dc = _codes(design, field="design")
    rc = _codes(required, field="required")
    dc_b, rc_b = np.broadcast_arrays(dc, rc)
    is_p = (_SERIES_CODE[rc_b] == _SERIES_ID["P"]) & (_SERIES_CODE[dc_b] == _SERIES_ID["P"])
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = np.where(is_p, P_AVERAGE_CAP * _VALUE[rc_b] / _VALUE[dc_b], np.inf)
    return float(cap) if cap.ndim == 0 else cap


# ------------------------------------------------------------------------------------------------
# LED catalogue: a default luminaire per design class
# ------------------------------------------------------------------------------------------------

"""Default LED luminaire per design class: ``power_w`` (W), ``flux_lm`` (lm), ``min_level``.

Engineering defaults, used where an inventory gives no wattage: luminaire efficacy 130 lm/W,
powers sized for the :data:`ROAD_CLASSES` spacings and about half the HPS system power of the
same road (DESIGN section 4: LED draws ~40-60 % of HPS for the same class), drivers dimmable
down to 10 %.
"""
