"""The LED renewal programme: the share of the stock on LED in each year."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from twin._errors import InputValidationError
from twin.energy.hps import CONTRACT_END, CONTRACT_START, LED_TARGET_SHARE


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
