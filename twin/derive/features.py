"""Cameras, public buildings and points of interest, from OSM features.

Cameras are ``man_made=surveillance``; buildings the public amenities of
:data:`PUBLIC_AMENITIES` (town halls, schools, hospitals, ...); points of interest the shops,
bars and restaurants, schools, transit stops and other amenities, each snapped to the nearest
walkable segment within 150 m.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from twin.registry import make_ids

from ._snap import snap

__all__ = ["EDUCATION", "FOOD_DRINK", "PUBLIC_AMENITIES", "features"]

PUBLIC_AMENITIES = {
    "townhall", "school", "library", "hospital", "clinic", "police", "fire_station",
    "community_centre", "kindergarten", "college", "university", "theatre", "arts_centre",
    "social_facility", "courthouse", "post_office", "marketplace", "sports_centre", "prison",
}  # fmt: skip
FOOD_DRINK = {
    "bar",
    "pub",
    "restaurant",
    "cafe",
    "fast_food",
    "nightclub",
    "biergarten",
    "ice_cream",
}
EDUCATION = {"school", "kindergarten", "college", "university"}


def _points(frame: gpd.GeoDataFrame) -> np.ndarray:
    return np.asarray(frame.geometry.representative_point().values)


def features(feats: gpd.GeoDataFrame, seg: gpd.GeoDataFrame) -> dict[str, pd.DataFrame]:
    """Tables ``camera``, ``building`` and ``poi`` from the feature table."""
    out: dict[str, pd.DataFrame] = {}
    cams = feats[feats["man_made"] == "surveillance"]
    out["camera"] = pd.DataFrame(
        {
            "id": make_ids("camera", len(cams)),
            "source": "osm",
            "ref": cams["osmid"].astype(str).to_numpy(),
            "surveillance": cams["surveillance"].to_numpy(),
            "camera_type": cams["surveillance:type"].to_numpy(),
            "geometry": _points(cams),
        }
    )
    pub = feats[feats["amenity"].isin(PUBLIC_AMENITIES)]
    out["building"] = pd.DataFrame(
        {
            "id": make_ids("building", len(pub)),
            "source": "osm",
            "ref": pub["osmid"].astype(str).to_numpy(),
            "amenity": pub["amenity"].to_numpy(),
            "name": pub["name"].to_numpy(),
            "geometry": _points(pub),
        }
    )
    category = np.full(len(feats), None, dtype=object)
    tag = np.full(len(feats), None, dtype=object)
    shop = feats["shop"].notna().to_numpy()
    category[shop], tag[shop] = "shop", feats["shop"].to_numpy()[shop]
    amen = feats["amenity"].to_numpy(dtype=object)
    for cat, values in (("food_drink", FOOD_DRINK), ("school", EDUCATION)):
        m = np.isin(amen, list(values))
        category[m], tag[m] = cat, amen[m]
    transit = (
        feats["public_transport"].isin(["platform", "stop_position", "station"])
        | (feats["highway"] == "bus_stop")
    ).to_numpy()
    category[transit & (category == None)] = "transit"  # noqa: E711
    tag[transit & (tag == None)] = "stop"  # noqa: E711
    other = (
        pd.isna(category)
        & feats["amenity"].notna().to_numpy()
        & (feats["boundary"].isna().to_numpy())
    )
    category[other], tag[other] = "amenity", amen[other]
    keep = category != None  # noqa: E711
    poi = feats[keep]
    pts = _points(poi)
    walk = seg[seg["walk"]]
    out["poi"] = pd.DataFrame(
        {
            "id": make_ids("poi", len(poi)),
            "category": category[keep],
            "tag": tag[keep],
            "ref": poi["osmid"].astype(str).to_numpy(),
            "segment": snap(pts, walk, max_m=150.0),
            "geometry": pts,
        }
    )
    return out
