"""Light points: mapped lamps, a municipal inventory, or lights placed along lit roads.

``highway=street_lamp`` nodes where mapped (snapped to the nearest segment within
:data:`~twin.derive._snap.SNAP_M`); a municipal inventory where the city has one; otherwise
placed along lit segments without a mapped lamp, at the road class's spacing: a segment of length
``L`` and spacing ``s`` gets ``floor(L/s + u)`` evenly spaced lights, ``u`` uniform from the
seeded generator (so the expected count is exactly ``L/s`` and short segments are not all dark or
all lit). The same seed gives the same lights. Each light takes the LED luminaire of its design
class from the city's catalogue where the source gives no wattage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from twin._errors import InputValidationError
from twin.assets import lighting
from twin.assets.luminaire import load_catalogue
from twin.energy import baseline_power_w
from twin.registry import make_ids

from ._snap import snap
from .cabinets import cabinets
from .segments import is_lit

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "derive_lights",
    "finish_lights",
    "inventory_lights",
    "lights_from_inventory",
    "osm_lamps",
]

_COLUMNS = ["segment", "source", "ref", "luminaire", "geometry"]


def _catalogue(design_class: np.ndarray, name: str) -> pd.DataFrame:
    """LED luminaire (power, flux, min level) for each design class, from the city's catalogue."""
    cat = load_catalogue(name)
    missing = sorted(set(design_class) - set(cat.index))
    if missing:
        msg = f"catalogue {name!r} has no luminaire for class(es) {missing}"
        raise InputValidationError(msg)
    return cat.reindex(design_class).reset_index(drop=True)


def derive_lights(
    seg: gpd.GeoDataFrame, *, skip: set[str], rng: np.random.Generator
) -> pd.DataFrame:
    """Lights placed along the lit segments not in ``skip`` (those with a mapped lamp)."""
    spacing = lighting.ROAD_CLASSES["spacing_m"].reindex(seg["highway"]).to_numpy(float)
    lit = is_lit(seg) & ~seg["id"].isin(skip).to_numpy() & np.isfinite(spacing) & (spacing > 0)
    idx = np.flatnonzero(lit)
    lengths = seg["length_m"].to_numpy(float)[idx]
    u = rng.random(len(idx))
    n = np.floor(lengths / spacing[idx] + u).astype(int)
    rep = np.repeat(np.arange(len(idx)), n)
    # position of each light: (j + 1/2) L / n for j = 0..n-1
    start = np.repeat(np.cumsum(n) - n, n)
    j = np.arange(rep.size) - start
    frac = (j + 0.5) / np.repeat(n, n)
    geoms = seg.geometry.values[idx][rep]
    pts = shapely.line_interpolate_point(geoms, frac, normalized=True)
    sid = seg["id"].to_numpy()[idx][rep]
    return pd.DataFrame(
        {
            "segment": sid,
            "source": "derived",
            "ref": None,
            "luminaire": "street light",
            "geometry": pts,
        }
    )


def osm_lamps(feats: gpd.GeoDataFrame, seg: gpd.GeoDataFrame) -> pd.DataFrame:
    """Mapped ``highway=street_lamp`` points, snapped to their segment."""
    lamps = feats[(feats["highway"] == "street_lamp") & (feats.geometry.geom_type == "Point")]
    if lamps.empty:
        return pd.DataFrame(columns=_COLUMNS)
    pts = lamps.geometry.values
    return pd.DataFrame(
        {
            "segment": snap(np.asarray(pts), seg),
            "source": "osm",
            "ref": lamps["osmid"].astype(str).to_numpy(),
            "luminaire": "street lamp",
            "geometry": pts,
        }
    )


def inventory_lights(inv: gpd.GeoDataFrame, seg: gpd.GeoDataFrame) -> pd.DataFrame:
    """Light rows from validated inventory rows (see :func:`twin.inventory.read_inventory`)."""
    pts = np.asarray(inv.geometry.values)
    return pd.DataFrame(
        {
            "segment": snap(pts, seg),
            "source": "inventory",
            "ref": inv["ref"].astype(str).to_numpy(),
            "luminaire": inv["luminaire"].to_numpy(),
            "power_w": inv["power_w"].to_numpy(float),
            "technology": inv["technology"].to_numpy(),
            "flux_lm": inv["flux_lm"].to_numpy(float),
            # read by the importer where the file has them (NaN: the documented defaults)
            **{
                k: (inv[k] if k in inv.columns else pd.Series(np.nan, index=inv.index)).to_numpy(
                    float
                )
                for k in ("maintenance_factor", "install_year")
            },
            "geometry": pts,
        }
    )


def finish_lights(raw: pd.DataFrame, seg: gpd.GeoDataFrame, *, catalogue: str) -> pd.DataFrame:
    """Sort lights stably (by segment then position), number them and fill the luminaire."""
    df = raw.reset_index(drop=True)
    xy = shapely.get_coordinates(np.asarray(df["geometry"].values))
    df = df.assign(_x=xy[:, 0], _y=xy[:, 1], _s=df["segment"].fillna("~"))
    df = df.sort_values(["_s", "_x", "_y"], kind="stable").drop(columns=["_x", "_y", "_s"])
    df = df.reset_index(drop=True)
    df["id"] = make_ids("light", len(df))
    seg_cls = seg.set_index("id")["lighting_class"]
    seg_hw = seg.set_index("id")["highway"]
    design = seg_cls.reindex(df["segment"]).to_numpy(dtype=object)
    design = np.where(pd.isna(design), lighting.UNMATCHED_CLASS, design).astype(str)
    road_class = seg_hw.reindex(df["segment"]).fillna("residential").to_numpy(dtype=str)
    df["design_class"] = design
    cat = _catalogue(design, catalogue)
    if "power_w" not in df.columns:
        df["power_w"] = np.nan
    given = pd.to_numeric(df["power_w"], errors="coerce").to_numpy(float)
    df["power_defaulted"] = ~np.isfinite(given)
    df["power_w"] = np.where(np.isfinite(given), given, cat["power_w"].to_numpy(float))
    if "flux_lm" not in df.columns:
        df["flux_lm"] = np.nan
    flux = pd.to_numeric(df["flux_lm"], errors="coerce").to_numpy(float)
    efficacy = (cat["flux_lm"] / cat["power_w"]).to_numpy(float)
    df["flux_lm"] = np.where(np.isfinite(flux), flux, df["power_w"].to_numpy(float) * efficacy)
    df["min_level"] = cat["min_level"].to_numpy(float)
    if "technology" not in df.columns:
        df["technology"] = "LED"
    df["technology"] = df["technology"].fillna("LED")
    df["baseline_power_w"] = baseline_power_w(road_class)
    df["cabinet"] = None
    return df


def lights_from_inventory(tw: Twin, inv: gpd.GeoDataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lights and cabinets of a twin rebuilt from validated inventory rows.

    ``inv`` is in EPSG:2154 or any CRS it declares; it is brought to the twin's CRS.
    """
    seg = tw.registry["segment"]
    if inv.crs is not None and seg.crs is not None and inv.crs != seg.crs:
        inv = inv.to_crs(seg.crs)
    catalogue = tw.city.defaults.get("catalogue", "led-2018")
    lights = finish_lights(inventory_lights(inv, seg), seg, catalogue=catalogue)
    return lights, cabinets(lights, None)
