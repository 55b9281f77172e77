"""Variable-message signs (VMS): where the twin's data places them.

The asset registry has no VMS type yet (DESIGN section 3 plans "panels on main entry roads",
not built). OpenStreetMap maps a real sign as a node tagged ``traffic_sign=variable_message``
(wiki: Key:traffic_sign); :func:`variable_message_signs` reads those nodes from a city's OSM
XML extract. Bondy's extract holds one, the DIRIF panel ``E60.075T``. A city built from
municipal files (Montpellier publishes no sign inventory) or from a GraphML graph (nodes of
the road graph only) has none: the frame is empty and its ``attrs["note"]`` says why, so that
what acts on a junction fault can say plainly that no sign can be reached.

Ids are ``vms:<OSM node id>``; commands go to ``twin/<city>/cmd/vms/<id>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import geopandas as gpd
from shapely.geometry import Point

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = ["variable_message_signs"]

_COLUMNS = ["id", "ref", "operator", "description"]


def variable_message_signs(tw: Twin) -> gpd.GeoDataFrame:
    """The city's variable-message signs, in the twin's CRS (``id, ref, operator, description``).

    Empty, with ``attrs["note"]`` saying why, where the city's data cannot hold any.
    """
    from twin.cities import resolve_data_file

    source = tw.city.source
    rel = source.get("osm") if source.get("kind") == "osm" else None
    note = ""
    rows: list[dict[str, object]] = []
    if rel is None or not str(rel).endswith(".osm"):
        note = (
            f"{tw.name}: the twin's source ({source.get('kind')}, {rel or 'no OSM file'}) holds "
            "no variable-message signs; only an OSM XML extract maps them "
            "(traffic_sign=variable_message)"
        )
    else:
        path = resolve_data_file(tw.city, str(rel))
        for _, el in ET.iterparse(path, events=("end",)):
            if el.tag != "node":
                if el.tag in ("way", "relation"):
                    el.clear()
                continue
            tags = {t.get("k"): t.get("v") for t in el.iter("tag")}
            if "variable_message" in str(tags.get("traffic_sign", "")).split(";"):
                rows.append(
                    {
                        "id": f"vms:{el.get('id')}",
                        "ref": tags.get("ref", ""),
                        "operator": tags.get("operator", ""),
                        "description": tags.get("description", ""),
                        "geometry": Point(float(el.get("lon", "nan")), float(el.get("lat", "nan"))),
                    }
                )
            el.clear()
        if not rows:
            note = f"{tw.name}: no traffic_sign=variable_message node in {rel}"
    frame = gpd.GeoDataFrame(rows, columns=[*_COLUMNS, "geometry"], geometry="geometry")
    frame = frame.set_crs("EPSG:4326").to_crs(tw.crs)
    frame.attrs["note"] = note
    return frame
