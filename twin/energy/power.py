"""The power curve of a dimmed LED light, defined once for the optimiser, the reports and plots.

LED light output is close to linear in the dim level, and the power drawn is linear with a small
driver floor (DESIGN section 4): a light on at level ``x`` in ``[0, 1]`` draws
``power_w * (f + (1 - f) x)``, ``f`` the driver floor; a light off draws nothing. Driver
datasheets give 8-12 % of full power at the lowest dim level (standby and conversion losses), so
the default floor is :data:`DRIVER_FLOOR`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["DRIVER_FLOOR", "drawn_fraction", "drawn_power_w"]

DRIVER_FLOOR: float = 0.1
"""Share of full power an LED driver draws at level 0 while on (typical 8-12 %)."""


def drawn_fraction(
    level: npt.ArrayLike, *, driver_floor: float = DRIVER_FLOOR, on: npt.ArrayLike | None = None
) -> npt.NDArray[np.float64]:
    """Return the share of full power drawn at a dim level (0 where ``on`` is False).

    Parameters
    ----------
    level
        Dim levels in ``[0, 1]``.
    driver_floor
        Share of full power drawn at level 0 while on.
    on
        Where the light is on (broadcast against ``level``); default: everywhere.

    Examples
    --------
    >>> drawn_fraction([0.0, 0.5, 1.0]).tolist()
    [0.1, 0.55, 1.0]
    >>> drawn_fraction([0.5, 0.5], on=[True, False]).tolist()
    [0.55, 0.0]
    """
    x = np.asarray(level, dtype=np.float64)
    frac = driver_floor + (1.0 - driver_floor) * x
    if on is None:
        return np.asarray(frac, dtype=np.float64)
    return np.asarray(np.where(np.asarray(on, dtype=bool), frac, 0.0), dtype=np.float64)


def drawn_power_w(
    power_w: npt.ArrayLike,
    level: npt.ArrayLike,
    *,
    driver_floor: float = DRIVER_FLOOR,
    on: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """Return the power drawn, W: ``power_w[:, None]`` (per light) times :func:`drawn_fraction`.

    ``power_w`` is per light (``(n,)``) and ``level`` per light and slot (``(n, T)``), or both
    of the same shape.

    Examples
    --------
    >>> drawn_power_w([100.0], [[1.0, 0.5, 0.0]], on=[[True, True, False]]).tolist()
    [[100.0, 55.00000000000001, 0.0]]
    """
    p = np.asarray(power_w, dtype=np.float64)
    frac = drawn_fraction(level, driver_floor=driver_floor, on=on)
    if p.ndim == 1 and frac.ndim == 2:
        p = p[:, None]
    return np.asarray(p * frac, dtype=np.float64)
