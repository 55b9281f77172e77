"""A stock of another city's size, resampled from a twin's real lights (e.g. Dijon-sized).

No extract of Dijon Métropole can be had offline, so its 34,000-light annual table is computed on
a stock built from a real one, exactly as follows (:func:`resized_twin`):

1. **Lights.** Every light of the source twin is kept once (its street, design class, luminaire
   and wattage), and the missing ``n_lights - n`` are drawn uniformly with replacement from
   them (seeded) and placed on the same street, offset by 2-5 m in a random direction: a denser
   stock of the same mix of road classes, EN 13201 classes and wattages. A larger source than
   ``n_lights`` is subsampled without replacement.
2. **Technology.** ``round((1 - led_share) * n_lights)`` lights, drawn uniformly (seeded), keep
   the baseline's high-pressure sodium: their power is their HPS system power and they are not
   dimmed; the others are LED.
3. **Cabinets.** Re-derived from the new positions by the build's rule
   (:func:`twin.derive.cabinets.cabinets`: groups of 30-60 neighbouring lights).
4. **City.** The source city's streets, demand and calendar, with the sun (centre), time zone
   and contract of ``city`` (Dijon's: 65 % over 2018-2030, 93 % LED at the end).

Everything else (segments, crossings, sensors) is the source twin's.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from twin._errors import InputValidationError
from twin.registry import make_ids

if TYPE_CHECKING:
    from twin.cities import City
    from twin.model import Twin

__all__ = ["resized_twin"]


def resized_twin(
    tw: Twin,
    *,
    n_lights: int,
    led_share: float,
    city: City | None = None,
    rng: np.random.Generator | int | None = 2026,
) -> Twin:
    """A twin of ``n_lights`` lights resampled from ``tw``'s real ones (module docstring).

    Parameters
    ----------
    tw
        The source twin (real light points, streets and demand).
    n_lights
        Size of the stock (Dijon: 34,000).
    led_share
        Share of the lights on LED (Dijon at the end of the contract: 0.93); the rest HPS.
    city
        The city whose sun, time zone and contract the stock takes (default: ``tw``'s).
    rng
        Seed or generator; the same seed gives the same stock.

    Returns
    -------
    Twin
        A new twin named ``<source>-as-<city>-<n_lights>``; ``meta["resized"]`` says how it was
        built.
    """
    from twin.derive.cabinets import cabinets
    from twin.model import Twin

    if isinstance(n_lights, bool) or not isinstance(n_lights, int) or n_lights < 1:
        msg = f"n_lights: {n_lights!r} is not a number of lights >= 1"
        raise InputValidationError(msg)
    if not 0.0 <= float(led_share) <= 1.0:
        msg = f"led_share: {led_share!r} is not a share in [0, 1]"
        raise InputValidationError(msg)
    gen = np.random.default_rng(rng)
    src = tw.registry["light"]
    n0 = len(src)
    if n0 == 0:
        msg = f"{tw.name}: the twin has no light points to resample"
        raise InputValidationError(msg)
    if n_lights >= n0:
        extra = gen.integers(0, n0, size=n_lights - n0)
        pick = np.concatenate([np.arange(n0), extra])
    else:
        extra = np.zeros(0, dtype=np.int64)
        pick = np.sort(gen.choice(n0, size=n_lights, replace=False))
    lights = pd.DataFrame(src.iloc[pick].reset_index(drop=True))
    xy = shapely.get_coordinates(np.asarray(lights.geometry.values))
    copies = np.arange(n_lights) >= (n0 if n_lights >= n0 else n_lights)
    angle = gen.uniform(0.0, 2.0 * np.pi, size=n_lights)
    dist = np.where(copies, gen.uniform(2.0, 5.0, size=n_lights), 0.0)
    xy = xy + np.column_stack([np.cos(angle), np.sin(angle)]) * dist[:, None]
    lights["geometry"] = shapely.points(xy)
    lights["id"] = make_ids("light", n_lights)
    lights["ref"] = src.index.to_numpy()[pick].astype(str)
    n_hps = round((1.0 - float(led_share)) * n_lights)
    hps = np.zeros(n_lights, dtype=bool)
    hps[gen.choice(n_lights, size=n_hps, replace=False)] = True
    lights["technology"] = np.where(hps, "HPS", "LED")
    lights["power_w"] = np.where(
        hps, lights["baseline_power_w"].to_numpy(float), lights["power_w"].to_numpy(float)
    )
    lights["min_level"] = np.where(hps, 1.0, lights["min_level"].to_numpy(float))
    cab = cabinets(lights, None)
    registry = copy.deepcopy(tw.registry)
    registry.replace("light", lights)
    registry.replace("cabinet", cab)
    target = tw.city if city is None else city
    new_city = dataclasses.replace(
        tw.city,
        name=f"{tw.city.name}-as-{target.name}-{n_lights}",
        title=f"{target.title}-sized stock ({n_lights:,} lights) from {tw.city.title}",
        centre=target.centre,
        timezone=target.timezone,
        contract=target.contract,
    )
    meta = dict(tw.meta)
    meta["resized"] = {
        "source": tw.name,
        "source_lights": n0,
        "n_lights": n_lights,
        "resampled": int(extra.size),
        "hps": int(n_hps),
        "led_share": float(led_share),
        "cabinets": len(cab),
        "city": target.name,
        "how": "twin.energy.stock.resized_twin",
    }
    return Twin(new_city, tw.graph, registry, meta, tw.counts_table)
