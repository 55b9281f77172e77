"""Luminaire catalogues: the LED luminaire fitted for each EN 13201 design class.

A catalogue is a CSV in ``catalogues/`` (``lighting_class, power_w, flux_lm, min_level,
description``); a city definition names its catalogue in ``defaults.catalogue``. Wattages are
typical of LED road and urban luminaires of 2018 at ~130 lm/W, sized for a class on a typical
street geometry; ``min_level`` is the lowest output a DALI/1-10 V driver holds stably (10%).
A municipal inventory that gives wattages overrides these per light.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

from twin._errors import InputValidationError

__all__ = ["available_catalogues", "load_catalogue"]

_DIR = Path(__file__).resolve().parent / "catalogues"


def available_catalogues() -> list[str]:
    """Names of the shipped catalogues.

    >>> "led-2018" in available_catalogues()
    True
    """
    return sorted(p.stem for p in _DIR.glob("*.csv"))


@cache
def load_catalogue(name: str = "led-2018") -> pd.DataFrame:
    """Load a catalogue, indexed by lighting class.

    >>> float(load_catalogue().at["M3", "power_w"])
    90.0
    """
    path = _DIR / f"{name}.csv"
    if not path.is_file():
        msg = f"defaults.catalogue: unknown catalogue {name!r}; available: {available_catalogues()}"
        raise InputValidationError(msg)
    return pd.read_csv(path).set_index("lighting_class")
