"""Time-of-use electricity tariffs for the ``cost`` objective, checked for gaps and overlaps.

A tariff is a set of periods on the local clock, each with a price in EUR/kWh, that together
cover the 24 hours exactly once. The default is the French regulated "heures pleines / heures
creuses" option (CRE deliberation on the TRVE of 1 February 2025: 0.2516 EUR/kWh full hours,
0.1828 EUR/kWh off-peak, off-peak hours 22:00-06:00 as most distribution areas set them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from twin._errors import InputValidationError

__all__ = ["DEFAULT_TARIFF", "Tariff", "TariffPeriod"]


@dataclasses.dataclass(frozen=True)
class TariffPeriod:
    """One period of a tariff: ``[start_hour, end_hour)`` local, possibly across midnight."""

    start_hour: float
    end_hour: float
    eur_per_kwh: float
    name: str = ""


@dataclasses.dataclass(frozen=True)
class Tariff:
    """A time-of-use tariff: periods covering the 24 local hours exactly once.

    Examples
    --------
    >>> t = Tariff((TariffPeriod(22, 6, 0.18, "off-peak"), TariffPeriod(6, 22, 0.25, "peak")))
    >>> t.price(np.array([21.75, 22.0, 5.75, 6.0])).tolist()
    [0.25, 0.18, 0.18, 0.25]
    >>> Tariff((TariffPeriod(22, 6, 0.18), TariffPeriod(7, 22, 0.25)))
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: tariff.periods: 06:00-07:00 is not covered by any period
    """

    periods: tuple[TariffPeriod, ...]
    label: str = ""

    def __post_init__(self) -> None:
        periods = tuple(self.periods)
        if not periods:
            msg = "tariff.periods: no period given"
            raise InputValidationError(msg)
        minutes = np.zeros(24 * 60, dtype=int)
        for i, p in enumerate(periods):
            if not isinstance(p, TariffPeriod):
                msg = f"tariff.periods[{i}]: expected a TariffPeriod, got {type(p).__name__}"
                raise InputValidationError(msg)
            for name in ("start_hour", "end_hour"):
                v = float(getattr(p, name))
                if not (0.0 <= v < 24.0) or abs(v * 60 - round(v * 60)) > 1e-9:
                    msg = f"tariff.periods[{i}].{name}: {v!r} is not a whole minute in [0, 24)"
                    raise InputValidationError(msg)
            price = float(p.eur_per_kwh)
            if not math.isfinite(price):
                msg = f"tariff.periods[{i}].eur_per_kwh: {p.eur_per_kwh!r} is not a finite price"
                raise InputValidationError(msg)
            if p.start_hour == p.end_hour:
                msg = f"tariff.periods[{i}]: empty period (start_hour == end_hour)"
                raise InputValidationError(msg)
            minutes[_mask(p.start_hour, p.end_hour)] += 1
        for count, what in ((0, "is not covered by any period"), (2, "is covered twice")):
            hit = np.flatnonzero(minutes == count) if count == 0 else np.flatnonzero(minutes >= 2)
            if hit.size:
                a = int(hit[0])
                b = a
                while b + 1 < minutes.size and (minutes[b + 1] == minutes[a]):
                    b += 1
                msg = f"tariff.periods: {_hm(a)}-{_hm(b + 1)} {what}"
                raise InputValidationError(msg)
        object.__setattr__(self, "periods", periods)

    def price(self, hour_local: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Price in EUR/kWh at each local clock hour (17.25 is 17:15)."""
        h = np.asarray(hour_local, dtype=np.float64) % 24.0
        out = np.full(h.shape, np.nan)
        for p in self.periods:
            if p.start_hour < p.end_hour:
                m = (h >= p.start_hour) & (h < p.end_hour)
            else:
                m = (h >= p.start_hour) | (h < p.end_hour)
            out[m] = p.eur_per_kwh
        return out

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[float, float, float]], label: str = "") -> Tariff:
        """Build from ``(start_hour, end_hour, eur_per_kwh)`` triples."""
        return cls(tuple(TariffPeriod(float(a), float(b), float(c)) for a, b, c in pairs), label)


def _mask(start: float, end: float) -> npt.NDArray[np.bool_]:
    m = np.arange(24 * 60)
    a, b = round(start * 60), round(end * 60)
    return (m >= a) & (m < b) if a < b else (m >= a) | (m < b)


def _hm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


DEFAULT_TARIFF = Tariff(
    (
        TariffPeriod(22.0, 6.0, 0.1828, "heures creuses"),
        TariffPeriod(6.0, 22.0, 0.2516, "heures pleines"),
    ),
    label="French regulated HP/HC option (CRE, TRVE 1 February 2025), off-peak 22:00-06:00",
)
"""The default tariff of the ``cost`` objective."""
