"""A lighting cabinet (feeder) with its contracted power, and the rule that sizes its cap.

Each cabinet of the registry carries its ``contracted_kva``, ``power_factor`` and
``contract_source``: ``"inventory"`` where a source gave the kVA, otherwise ``"rule"``, the kVA a
retrofit subscription would take (:func:`contracted_caps`). Its ``contracted_power_w`` is the
real power that lets through, ``contracted_kva x 1000 x power_factor`` (:func:`with_contracts`),
the cap the plans hold each cabinet to.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from shapely.geometry.base import BaseGeometry

from twin._errors import InputValidationError

from ._schema import load_schema

__all__ = [
    "CAP_SIZING",
    "DEFAULT_POWER_FACTOR",
    "SCHEMA",
    "TARIFF_STEPS_KVA",
    "Cabinet",
    "clo_start_power_w",
    "contracted_caps",
    "subscribed_kva",
    "with_contracts",
]

SCHEMA = load_schema("cabinet")


@dataclasses.dataclass(frozen=True)
class Cabinet:
    """A lighting cabinet (feeder) with its contracted power.

    Fields follow ``schemas/cabinet.csv``.
    """

    id: str
    """stable id, cabinet:N."""
    source: str | None
    """osm (man_made=street_cabinet + street_cabinet=lighting) or derived (by proximity)."""
    n_lights: int
    """number of lights on the feeder."""
    installed_power_w: float
    """sum of the feeder's lights at full output [W]."""
    contracted_power_w: float
    """real power the contract lets through: contracted_kva x 1000 x power_factor [W]."""
    contracted_kva: float
    """subscribed apparent power [kVA]: the inventory's, or the tariff step of the rule."""
    power_factor: float
    """power factor of the feeder's load [1]: the inventory's, or 0.9."""
    contract_source: str
    """inventory (kVA given by a source) or rule (:func:`contracted_caps`)."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""


#: Subscribed-power steps (kVA) of the French regulated tariff up to 36 kVA (tarif bleu, C5
#: segment; CRE deliberation on the TRVE). Above 36 kVA (C4) power is subscribed in whole kVA.
TARIFF_STEPS_KVA: tuple[float, ...] = (3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 24.0, 30.0, 36.0)
DEFAULT_POWER_FACTOR = 0.9
"""Power factor of a cabinet of LED drivers, at the high output where a cap binds.

Commission Regulation (EU) 2019/2020 (ecodesign of light sources and separate control gears),
Annex II, asks a displacement factor of at least 0.9 above 25 W. A cap of ``S`` kVA lets
through ``S * PF`` kW of real power.

One constant is enough, although drivers' PF falls at low load: the kVA cap binds at high
output (dusk, every light at its design class and CLO level), not when the lights are dimmed.
Measured on the year stock of ``benchmarks/dimming.py`` (34,000 lights, 846 cabinets with kVA by
:func:`contracted_caps`' rule, every third night of 2026, minimum-energy levels), the PF below
which a slot's apparent power would exceed its cabinet's contract is, by the power-weighted
mean level of the cabinet's lit lights in the slot:

======================  ===================  ===========================
mean level              cabinet-slots        highest break-even PF
======================  ===================  ===========================
0.3-0.5                 2,061,994            0.569
0.5-0.7                 443,743              0.746
0.7-0.85                751,076              0.895
0.85-1                  1,269,063            0.931 (binds at PF 0.9)
======================  ===================  ===========================

So the fall at low levels does not matter: a dimmed slot (below 0.5) reaches the contract only
if its PF is under 0.57, a driver at 50-70 % only under 0.75. What does matter is the PF near
full output: at 0.9 throughout, 11 cabinets bind; were it 0.85 at 70-85 % output (and 0.9
above), 11 more would bind in those slots; at 0.80, 47 more; at 0.75, 105 more. An inventory's
measured ``power_factor`` of each cabinet at high output settles it.
"""
#: How a cabinet's contracted kVA is sized where the inventory does not give it.
CAP_SIZING: tuple[str, ...] = ("clo_start", "full_output")


def subscribed_kva(load_kva: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The smallest tariff step covering each apparent load (kVA).

    Examples
    --------
    >>> subscribed_kva([0.4, 3.0, 3.1, 19.0, 36.5]).tolist()
    [3.0, 3.0, 6.0, 24.0, 37.0]
    """
    s = np.asarray(load_kva, dtype=np.float64)
    if not np.isfinite(s).all() or (s < 0).any():
        msg = "load_kva: expected finite loads >= 0 kVA"
        raise InputValidationError(msg)
    steps = np.asarray(TARIFF_STEPS_KVA)
    pos = np.searchsorted(steps, s - 1e-9)
    small = steps[np.minimum(pos, steps.size - 1)]
    return np.where(s <= steps[-1], small, np.ceil(s - 1e-9))


def contracted_caps(
    full_w: npt.ArrayLike,
    clo_start_w: npt.ArrayLike,
    *,
    contracted_kva: npt.ArrayLike | None = None,
    power_factor: npt.ArrayLike | None = None,
    sizing: str = "clo_start",
) -> dict[str, npt.NDArray[Any]]:
    """Each cabinet's contracted kVA, power factor and real-power cap (W), and where they come from.

    The inventory's ``contracted_kva`` and ``power_factor`` are used where given (finite);
    otherwise the power factor is :data:`DEFAULT_POWER_FACTOR` and the kVA follow ``sizing``:

    ``"clo_start"`` (default)
        the tariff step covering what the cabinet draws when its LED lights are new and at
        their constant-light-output start level (``MF x 100 %``, plus the driver floor; lights
        that are not dimmed at full power), divided by the power factor. This is how the
        subscription is re-set at an LED retrofit to cut the fixed charge, and why caps bind:
        as the lumens depreciate the CLO drivers rise towards 100 %, and a cabinet whose load
        sat just under a step outgrows it at dusk, when every light is at its design class.
    ``"full_output"``
        the tariff step covering the LED lights at full output: a cap no plan can break.

    Parameters
    ----------
    full_w
        ``(m,)`` each cabinet's lights at full output, W.
    clo_start_w
        ``(m,)`` the same at the CLO start level, W.
    contracted_kva, power_factor
        ``(m,)`` from the inventory (NaN where not given), or ``None``.
    sizing
        One of :data:`CAP_SIZING`.

    Returns
    -------
    dict
        ``cap_w``, ``contracted_kva``, ``power_factor`` (floats) and ``cap_source``
        (``"inventory"`` or ``"rule"``), each ``(m,)``.

    Examples
    --------
    >>> c = contracted_caps([3000.0, 2000.0], [2450.0, 1650.0], contracted_kva=[np.nan, 9.0])
    >>> c["contracted_kva"].tolist(), c["cap_w"].round(1).tolist(), c["cap_source"].tolist()
    ([3.0, 9.0], [2700.0, 8100.0], ['rule', 'inventory'])
    """
    if sizing not in CAP_SIZING:
        msg = f"sizing: {sizing!r} is not one of {', '.join(CAP_SIZING)}"
        raise InputValidationError(msg)
    full = np.asarray(full_w, dtype=np.float64)
    start = np.asarray(clo_start_w, dtype=np.float64)
    m = full.size

    def given(name: str, value: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
        if value is None:
            return np.full(m, np.nan)
        v = np.asarray(value, dtype=np.float64)
        if v.shape != (m,):
            msg = f"{name}: expected {m} values (one per cabinet), got shape {v.shape}"
            raise InputValidationError(msg)
        return v

    kva_in = given("contracted_kva", contracted_kva)
    pf_in = given("power_factor", power_factor)
    bad_pf = np.isfinite(pf_in) & ((pf_in <= 0) | (pf_in > 1))
    if bad_pf.any():
        i = int(np.flatnonzero(bad_pf)[0])
        msg = f"power_factor: cabinet {i} has {pf_in[i]!r}, not in (0, 1]"
        raise InputValidationError(msg)
    bad_kva = np.isfinite(kva_in) & (kva_in <= 0)
    if bad_kva.any():
        i = int(np.flatnonzero(bad_kva)[0])
        msg = f"contracted_kva: cabinet {i} has {kva_in[i]!r}, not > 0 kVA"
        raise InputValidationError(msg)
    pf = np.where(np.isfinite(pf_in), pf_in, DEFAULT_POWER_FACTOR)
    load_w = start if sizing == "clo_start" else full
    rule = subscribed_kva(load_w / pf / 1000.0)
    kva = np.where(np.isfinite(kva_in), kva_in, rule)
    return {
        "cap_w": kva * 1000.0 * pf,
        "contracted_kva": kva,
        "power_factor": pf,
        "cap_source": np.where(np.isfinite(kva_in), "inventory", "rule"),
    }


def clo_start_power_w(
    power_w: npt.ArrayLike,
    *,
    led: npt.ArrayLike,
    maintenance_factor: npt.ArrayLike,
    driver_floor: float,
) -> npt.NDArray[np.float64]:
    """Each light's draw when new, at its constant-light-output start level, W.

    An LED light runs at ``MF x 100 %`` (plus the driver floor); other lights are not dimmed.

    Examples
    --------
    >>> clo_start_power_w([100.0, 100.0], led=[True, False], maintenance_factor=[0.8, 0.8],
    ...     driver_floor=0.1).tolist()
    [82.0, 100.0]
    """
    p = np.asarray(power_w, dtype=np.float64)
    mf = np.asarray(maintenance_factor, dtype=np.float64)
    lit = driver_floor + (1.0 - driver_floor) * mf
    return np.asarray(np.where(np.asarray(led, dtype=bool), lit, 1.0) * p, dtype=np.float64)


def with_contracts(
    cabinets: pd.DataFrame,
    lights: pd.DataFrame,
    *,
    maintenance_factor: float,
    driver_floor: float,
) -> pd.DataFrame:
    """The cabinets with ``contracted_kva``, ``power_factor``, ``contract_source`` and the cap.

    ``cabinets`` has an ``id`` column and, optionally, an inventory's ``contracted_kva`` and
    ``power_factor`` (NaN where not given); ``lights`` has ``cabinet``, ``power_w`` and
    optionally ``technology`` (LED when absent) and ``maintenance_factor`` (``maintenance_factor``
    where NaN). The kVA not given follow :func:`contracted_caps`' ``"clo_start"`` rule, and
    ``contracted_power_w`` is ``contracted_kva x 1000 x power_factor``.

    Examples
    --------
    >>> cabs = pd.DataFrame({"id": ["cabinet:0", "cabinet:1"], "contracted_kva": [np.nan, 9.0]})
    >>> lights = pd.DataFrame({"cabinet": ["cabinet:0", "cabinet:1"], "power_w": [2500.0, 10.0]})
    >>> out = with_contracts(cabs, lights, maintenance_factor=0.85, driver_floor=0.1)
    >>> out[["contracted_kva", "contracted_power_w", "contract_source"]].values.tolist()
    [[3.0, 2700.0, 'rule'], [9.0, 8100.0, 'inventory']]
    """
    out = cabinets.copy()
    ids = out["id"].to_numpy(dtype=object)
    pos = pd.Index(ids).get_indexer(lights["cabinet"].to_numpy(dtype=object))
    if (pos < 0).any():
        bad = lights["cabinet"].to_numpy(dtype=object)[pos < 0][0]
        msg = f"cabinet: light of unknown cabinet {bad!r}"
        raise InputValidationError(msg)
    power = lights["power_w"].to_numpy(dtype=float)
    led = (
        lights["technology"].fillna("LED").astype(str).str.upper().to_numpy() == "LED"
        if "technology" in lights.columns
        else np.ones(len(lights), dtype=bool)
    )
    mf = (
        lights["maintenance_factor"].to_numpy(dtype=float)
        if "maintenance_factor" in lights.columns
        else np.full(len(lights), np.nan)
    )
    mf = np.where(np.isfinite(mf), mf, maintenance_factor)
    start = clo_start_power_w(power, led=led, maintenance_factor=mf, driver_floor=driver_floor)
    m = len(ids)

    def column(name: str) -> npt.NDArray[np.float64] | None:
        if name not in out.columns:
            return None
        return np.asarray(pd.to_numeric(out[name], errors="raise"), dtype=np.float64)

    caps = contracted_caps(
        np.bincount(pos, weights=power, minlength=m),
        np.bincount(pos, weights=start, minlength=m),
        contracted_kva=column("contracted_kva"),
        power_factor=column("power_factor"),
    )
    out["contracted_kva"] = caps["contracted_kva"]
    out["power_factor"] = caps["power_factor"]
    out["contract_source"] = caps["cap_source"]
    out["contracted_power_w"] = caps["cap_w"]
    return out
