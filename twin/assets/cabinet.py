"""A lighting cabinet (feeder) with its contracted power, and the rule that sizes its cap.

The registry's ``contracted_power_w`` is the build's generous sizing (installed + 10 %, in 3 kVA
steps): no plan reaches it. The plans cap each cabinet with :func:`contracted_caps` instead: the
contracted kVA and power factor of an inventory where given, otherwise the kVA a retrofit
subscription would take (a documented rule), times the power factor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import numpy.typing as npt
from shapely.geometry.base import BaseGeometry

from twin._errors import InputValidationError

from ._schema import load_schema

__all__ = [
    "CAP_SIZING",
    "DEFAULT_POWER_FACTOR",
    "SCHEMA",
    "TARIFF_STEPS_KVA",
    "Cabinet",
    "contracted_caps",
    "subscribed_kva",
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
    """the build's sizing: installed + 10%, rounded up to 3 kVA (cos phi ~ 1) [W]; the plans cap
    each cabinet with :func:`contracted_caps` (kVA x power factor) instead."""
    geometry: BaseGeometry
    """position, in the twin's CRS."""


#: Subscribed-power steps (kVA) of the French regulated tariff up to 36 kVA (tarif bleu, C5
#: segment; CRE deliberation on the TRVE). Above 36 kVA (C4) power is subscribed in whole kVA.
TARIFF_STEPS_KVA: tuple[float, ...] = (3.0, 6.0, 9.0, 12.0, 15.0, 18.0, 24.0, 30.0, 36.0)
#: Power factor of a cabinet of LED drivers: Commission Regulation (EU) 2019/2020 (ecodesign of
#: light sources and separate control gears), Annex II, asks a displacement factor of at least
#: 0.9 above 25 W. A cap of ``S`` kVA lets through ``S * PF`` kW of real power.
DEFAULT_POWER_FACTOR = 0.9
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
