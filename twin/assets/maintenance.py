"""Maintenance factor, lumen depreciation and constant light output (CLO) of LED luminaires.

An installation is designed so that, at the end of its maintenance cycle, full output still
meets its EN 13201 class: the design multiplies the new luminaire's output by a maintenance
factor ``MF`` (typically 0.8-0.9 for LED; CIE 154:2003), so a new installation delivers about
``1 / MF`` of the maintained value (DESIGN section 4). LED lumen depreciation is rated as
``Lx`` at a number of hours (IEC 62717: the share ``x`` % of the initial flux kept after the
rated life, e.g. L80 at 100,000 h). Between, this module takes the exponential law that such
ratings extrapolate (IES TM-21): the lumen maintenance after ``h`` hours is
``LLMF(h) = (x / 100) ** (h / rated_hours)``.

A constant-light-output driver holds the delivered flux at the maintained value: it starts at
about ``MF x 100 %`` and rises as the lumens depreciate, reaching 100 % when ``LLMF = MF``. So
a light that must deliver the fraction ``r`` of its class's value (``r = 1`` at the design
class) needs the dim level ``r * MF / LLMF(age)`` (capped at 1 once the flux has fallen below
the maintained value), which :func:`output_factor` gives. Without CLO the plan assumes the
installation delivers exactly its class at 100 % (factor 1).

Here ``MF`` is taken as the lumen part of the maintenance factor only (the luminaire
maintenance factor for dirt, LMF, is 1): sealed IP66 LED luminaires lose little to dirt and no
measured dirt figure is in the inventories. This makes the CLO saving a lower bound.

Defaults (:data:`DEFAULT_MAINTENANCE`): MF 0.85 (the middle of CIE 154's 0.8-0.9 LED range),
L80 at 100,000 h (a common catalogue rating of LED road luminaires under IEC 62717), and the
install year of a light without one in the inventory taken as the first year of the city's
lighting contract (the LED renewal's start), stated in every report.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from twin._errors import InputValidationError

__all__ = ["DEFAULT_MAINTENANCE", "LumenMaintenance", "light_ages_h", "output_factor"]

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class LumenMaintenance:
    """A luminaire family's maintenance factor and lumen-depreciation curve.

    Attributes
    ----------
    maintenance_factor
        Design MF, in (0, 1].
    rated_hours
        Hours at which the rating applies (> 0), e.g. 100,000.
    lumen_share_at_rated
        Share of the initial flux kept at ``rated_hours`` (L80: 0.8), in (0, 1].
    curve
        Optional measured curve instead of the exponential law: ``((hours, share), ...)``
        with increasing hours and non-increasing shares in (0, 1] (a flux that rises with age
        is refused); interpolated linearly, the last share held.
    label
        Where the figures come from.

    Examples
    --------
    >>> m = LumenMaintenance(0.85, 100_000, 0.8)
    >>> round(float(m.lumen_share(50_000)), 4)  # 0.8 ** 0.5
    0.8944
    >>> LumenMaintenance(1.2, 100_000, 0.8)
    Traceback (most recent call last):
    ...
    twin._errors.InputValidationError: maintenance_factor: 1.2 is not in (0, 1]
    """

    maintenance_factor: float = 0.85
    rated_hours: float = 100_000.0
    lumen_share_at_rated: float = 0.8
    curve: tuple[tuple[float, float], ...] | None = None
    label: str = "MF 0.85 (CIE 154:2003, LED 0.8-0.9), L80 at 100,000 h (IEC 62717 rating)"

    def __post_init__(self) -> None:
        mf = float(self.maintenance_factor)
        if not (math.isfinite(mf) and 0.0 < mf <= 1.0):
            msg = f"maintenance_factor: {self.maintenance_factor!r} is not in (0, 1]"
            raise InputValidationError(msg)
        rh = float(self.rated_hours)
        if not (math.isfinite(rh) and rh > 0):
            msg = f"rated_hours: {self.rated_hours!r} must be finite and > 0 h"
            raise InputValidationError(msg)
        ls = float(self.lumen_share_at_rated)
        if not (math.isfinite(ls) and 0.0 < ls <= 1.0):
            msg = f"lumen_share_at_rated: {self.lumen_share_at_rated!r} is not in (0, 1]"
            raise InputValidationError(msg)
        object.__setattr__(self, "maintenance_factor", mf)
        object.__setattr__(self, "rated_hours", rh)
        object.__setattr__(self, "lumen_share_at_rated", ls)
        if self.curve is not None:
            object.__setattr__(self, "curve", _check_curve(self.curve))

    def lumen_share(self, hours: npt.ArrayLike) -> FloatArray:
        """Share of the initial flux kept after ``hours`` of operation (>= 0)."""
        h = np.asarray(hours, dtype=np.float64)
        if np.any(~np.isfinite(h) | (h < 0)):
            msg = "hours: operating hours must be finite and >= 0"
            raise InputValidationError(msg)
        if self.curve is not None:
            xs = np.array([c[0] for c in self.curve])
            ys = np.array([c[1] for c in self.curve])
            return np.asarray(np.interp(h, xs, ys), dtype=np.float64)
        return np.asarray(self.lumen_share_at_rated ** (h / self.rated_hours), dtype=np.float64)


def _check_curve(curve: Sequence[Sequence[float]]) -> tuple[tuple[float, float], ...]:
    try:
        arr = np.array(curve, dtype=np.float64)
    except (TypeError, ValueError):
        msg = "curve: expected ((hours, share), ...) pairs of numbers"
        raise InputValidationError(msg) from None
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < 2:
        msg = f"curve: expected at least two (hours, share) pairs, got shape {arr.shape}"
        raise InputValidationError(msg)
    hrs, share = arr[:, 0], arr[:, 1]
    if not (np.isfinite(arr).all() and hrs[0] >= 0 and (np.diff(hrs) > 0).all()):
        msg = "curve: hours must be finite, >= 0 and increasing"
        raise InputValidationError(msg)
    if not ((share > 0) & (share <= 1)).all():
        msg = "curve: lumen shares must be in (0, 1]"
        raise InputValidationError(msg)
    rise = np.flatnonzero(np.diff(share) > 0)
    if rise.size:
        i = int(rise[0])
        msg = (
            f"curve: the lumen share rises with age ({share[i]:g} at {hrs[i]:g} h, "
            f"{share[i + 1]:g} at {hrs[i + 1]:g} h); lumens only depreciate"
        )
        raise InputValidationError(msg)
    return tuple((float(a), float(b)) for a, b in arr)


DEFAULT_MAINTENANCE = LumenMaintenance()
"""MF 0.85, L80 at 100,000 h (see the module docstring for the sources)."""


def output_factor(
    maintenance_factor: npt.ArrayLike,
    lumen_share: npt.ArrayLike,
) -> FloatArray:
    """Return the CLO level factor ``MF / LLMF``, capped at 1, per light.

    A light that must deliver ``r`` times its class's maintained value runs at
    ``r * output_factor``.

    Examples
    --------
    >>> output_factor([0.85, 0.85, 0.85], [1.0, 0.9, 0.8]).round(4).tolist()
    [0.85, 0.9444, 1.0]
    """
    mf = np.asarray(maintenance_factor, dtype=np.float64)
    ls = np.asarray(lumen_share, dtype=np.float64)
    bad = np.flatnonzero(~((mf > 0) & (mf <= 1)))
    if bad.size:
        msg = f"maintenance_factor: light {int(bad[0])} has {mf.ravel()[bad[0]]!r}, not in (0, 1]"
        raise InputValidationError(msg)
    return np.asarray(np.minimum(1.0, mf / ls), dtype=np.float64)


def light_ages_h(
    install_year: npt.ArrayLike, year: int, *, burning_hours_per_year: float
) -> FloatArray:
    """Operating hours of each light at mid-``year`` from its install year.

    A light installed during ``install_year`` has run half a year by its end, so the age at
    mid-``year`` is ``(year - install_year) * burning_hours_per_year`` (>= 0). An install year
    after ``year`` is refused: the light does not exist yet.
    """
    iy = np.asarray(install_year, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(iy) | (iy > year))
    if bad.size:
        msg = (
            f"install_year: light {int(bad[0])} has {iy.ravel()[bad[0]]!r}, "
            f"after the year planned ({year}) or not a year"
        )
        raise InputValidationError(msg)
    return np.asarray((year - iy) * float(burning_hours_per_year), dtype=np.float64)
