"""Export the asset registry as GeoJSON and as NGSI-LD entities (FIWARE Smart Data Models).

Two formats for integrators (DESIGN section 1):

- :func:`to_geojson` writes one RFC 7946 FeatureCollection in EPSG:4326 (lon, lat), one Feature
  per asset with the schema's attributes as properties, for GIS tools and web maps;
- :func:`to_ngsi_ld` writes NGSI-LD entities in normalized form, ready for a batch create on a
  FIWARE context broker, following the Smart Data Models ``Streetlight``, ``StreetlightModel``,
  ``StreetlightGroup``, ``StreetlightControlCabinet`` (dataModel.Streetlighting) and
  ``RoadSegment``, ``Road`` (dataModel.Transportation).

Both carry the data's attribution: ODbL (OpenStreetMap) and Licence Ouverte (Etalab) require it
wherever derived data is shown or exported. The GeoJSON has top-level ``attribution`` and
``licence`` members; every NGSI-LD entity has it in ``dataProvider``.

Mapping to the Smart Data Models (units as the models state them):

==========================  ================================================================
entity                      from the registry
==========================  ================================================================
Streetlight                 one per light: ``location``, ``status`` (``ok``: the registry holds
                            no faults), ``refStreetlightModel``, ``refStreetlightGroup``,
                            ``refStreetlightControlCabinet``, ``circuit`` (the cabinet id),
                            ``locationCategory`` (``pedestrianPath`` on footways, ``road`` on
                            roads), and, when ``levels`` are given, ``illuminanceLevel`` and
                            ``powerState``
StreetlightModel            one per distinct (technology, luminaire, power, flux):
                            ``powerConsumption`` (W), ``luminousFlux`` (lm), ``lampTechnology``
                            (the model's enum is LED, LPS, HPS: metal halide is named in
                            ``description`` instead), ``category`` (bollard, lamppost)
StreetlightGroup            one per cabinet, the lights of its feeder: ``refStreetlight``,
                            ``refStreetlightControlCabinet``, ``location`` (MultiPoint of lights)
StreetlightControlCabinet   one per cabinet: ``maximumPowerAvailable`` (kW, the contracted
                            power), ``workingMode`` ``automatic``, ``refStreetlightGroup``
RoadSegment                 one per segment: ``name``, ``refRoad``, ``location`` (LineString),
                            ``startPoint``, ``endPoint``, ``length`` (km), ``totalLaneNumber``,
                            ``maximumAllowedSpeed`` (km/h; the free-flow speed: maxspeed or the
                            class default), ``allowedVehicleType``, ``category`` (oneway,
                            link), ``roadClass`` (the 0.4 enum: NATIONAL_HIGHWAY,
                            MAJOR_CITY_ROAD, MINOR_CITY_ROAD, SERVICE_ROAD, OTHER_PUBLIC_ROAD)
Road                        one per street name (unnamed segments: one per OSM way):
                            ``roadClass`` (OSM highway value within the model's enum),
                            ``refRoadSegment``, ``length`` (km), ``location``
                            (MultiLineString)
==========================  ================================================================

Entity ids are URNs ``urn:ngsi-ld:<Type>:<city>:<local id>``, where the local id is the asset id
(``light:000123``), and they are the same for the same twin. Relationships point to ids of the
same export; exporting a subset of kinds keeps the references to the kinds left out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import InputValidationError
from .assets._schema import KINDS
from .crs import WGS84

if TYPE_CHECKING:
    from .model import Twin

__all__ = [
    "CONTEXTS",
    "CORE_CONTEXT",
    "NGSI_LD_KINDS",
    "entity_urn",
    "ngsi_ld_to_keyvalues",
    "to_geojson",
    "to_ngsi_ld",
]

#: The NGSI-LD core context (appended last to every entity's ``@context``).
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"

_STREETLIGHTING = "https://raw.githubusercontent.com/smart-data-models/dataModel.Streetlighting/master/context.jsonld"
_TRANSPORTATION = "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld"

#: Entity type -> the Smart Data Models context that defines its attributes.
CONTEXTS: dict[str, str] = {
    "Streetlight": _STREETLIGHTING,
    "StreetlightModel": _STREETLIGHTING,
    "StreetlightGroup": _STREETLIGHTING,
    "StreetlightControlCabinet": _STREETLIGHTING,
    "RoadSegment": _TRANSPORTATION,
    "Road": _TRANSPORTATION,
}

#: Registry kinds with an NGSI-LD mapping, and the entity types each gives.
NGSI_LD_KINDS: dict[str, tuple[str, ...]] = {
    "light": ("StreetlightModel", "Streetlight"),
    "cabinet": ("StreetlightControlCabinet", "StreetlightGroup"),
    "segment": ("Road", "RoadSegment"),
}

# UN/CEFACT common codes, as NGSI-LD's unitCode expects.
_W, _KW, _LM, _KM, _KMH = "WTT", "KWT", "LUM", "KMT", "KMH"

# Rounding of exported coordinates: 1e-7 degree is about 1 cm.
_DECIMALS = 7

_PEDESTRIAN = {"footway", "path", "pedestrian", "steps", "corridor", "living_street"}
_BICYCLE = {"cycleway", "path", "track", "bridleway"}

# OSM highway -> RoadSegment.roadClass (Smart Data Models 0.4 enum).
_SEGMENT_CLASS = {
    "motorway": "NATIONAL_HIGHWAY",
    "trunk": "NATIONAL_HIGHWAY",
    "primary": "MAJOR_CITY_ROAD",
    "secondary": "MAJOR_CITY_ROAD",
    "tertiary": "MINOR_CITY_ROAD",
    "unclassified": "MINOR_CITY_ROAD",
    "residential": "MINOR_CITY_ROAD",
    "living_street": "MINOR_CITY_ROAD",
    "road": "MINOR_CITY_ROAD",
    "service": "SERVICE_ROAD",
}

# Road.roadClass enum, most important first; OSM values map onto it (links to their road).
_ROAD_CLASSES = (
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "unclassified",
    "residential",
    "service",
)
_ROAD_CLASS_ALIAS = {"living_street": "residential", "road": "unclassified", "busway": "service"}


# -- common helpers ----------------------------------------------------------------------------
def _select_kinds(
    tw: Twin, kinds: str | Iterable[str] | None, supported: Sequence[str]
) -> list[str]:
    """Validate ``kinds`` (None: every supported kind that holds assets)."""
    if kinds is None:
        return [k for k in supported if len(tw.registry[k])]
    asked = [kinds] if isinstance(kinds, str) else list(kinds)
    for k in asked:
        if k not in KINDS:
            msg = f"kinds: unknown asset type {k!r}; known: {', '.join(KINDS)}"
            raise InputValidationError(msg)
        if k not in supported:
            msg = f"kinds: {k!r} has no mapping in this format; supported: {', '.join(supported)}"
            raise InputValidationError(msg)
    return [k for k in supported if k in asked]


def _check_out(out: str | Path) -> Path:
    path = Path(out)
    if not path.parent.is_dir():
        msg = f"out: folder {str(path.parent)!r} does not exist"
        raise InputValidationError(msg)
    if path.is_dir():
        msg = f"out: {str(path)!r} is a folder; give a file name"
        raise InputValidationError(msg)
    return path


def _wgs84(geoms: gpd.GeoSeries) -> np.ndarray:
    """Geometries in EPSG:4326, coordinates rounded to ~1 cm (vectorised)."""
    values = geoms.to_crs(WGS84).values
    return np.asarray(shapely.transform(np.asarray(values), lambda c: np.round(c, _DECIMALS)))


def _geojson_strings(geoms: np.ndarray) -> np.ndarray:
    """GeoJSON geometry objects as JSON text (vectorised in GEOS)."""
    return np.asarray(shapely.to_geojson(geoms))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _column_values(series: pd.Series) -> list[Any]:
    """Return a column as JSON-safe Python values: NaN/None -> None, numpy scalars -> Python."""
    values: list[Any] = list(series.tolist())
    missing = series.isna().to_numpy()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing, strict=True)]
    return values


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    names = list(frame.columns)
    columns = [_column_values(frame[c]) for c in names]
    for row in zip(*columns, strict=True):
        yield dict(zip(names, row, strict=True))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_json_default)


# -- GeoJSON -----------------------------------------------------------------------------------
def to_geojson(
    tw: Twin, out: str | Path | None = None, *, kinds: str | Iterable[str] | None = None
) -> int | dict[str, Any]:
    """Export the registry as a GeoJSON FeatureCollection in EPSG:4326 (lon, lat).

    Each asset is a Feature whose ``id`` is the asset id and whose ``properties`` are its schema
    attributes (``twin/assets/schemas/<kind>.csv``) plus ``kind``; missing values are ``null``.
    The collection has top-level ``name`` (the city), ``attribution`` and ``licence`` members,
    which the data's licence (ODbL for OpenStreetMap) requires with any derived data, and
    ``working_crs``: the twin's CRS, in which its lengths and areas were computed.
    Coordinates are rounded to 1e-7 degree (about 1 cm).

    Parameters
    ----------
    tw : Twin
        The twin to export.
    out : str or Path, optional
        File to write. Without it the FeatureCollection is returned as a dict.
    kinds : str or list of str, optional
        Asset types to export (default: every type that holds assets).

    Returns
    -------
    int or dict
        The number of features written, or the FeatureCollection when ``out`` is None.

    Raises
    ------
    InputValidationError
        An unknown asset type in ``kinds``, or an ``out`` whose folder does not exist.
    """
    selected = _select_kinds(tw, kinds, KINDS)
    path = None if out is None else _check_out(out)
    header = {
        "type": "FeatureCollection",
        "name": tw.city.name,
        "attribution": tw.city.attribution,
        "licence": tw.city.licence,
        "working_crs": tw.crs,
    }
    features: list[str] = []
    for kind in selected:
        table = tw.registry[kind]
        if len(table) == 0:
            continue
        geoms = _geojson_strings(_wgs84(table.geometry))
        props = table.drop(columns=table.geometry.name)
        ids = table.index.tolist()
        for fid, geom, rec in zip(ids, geoms, _records(props), strict=True):
            rec["kind"] = kind
            features.append(
                f'{{"type":"Feature","id":{_dumps(fid)},"geometry":{geom},'
                f'"properties":{_dumps(rec)}}}'
            )
    head = _dumps(header)[:-1]
    text = head + ',"features":[\n' + ",\n".join(features) + "\n]}\n"
    if path is None:
        result: dict[str, Any] = json.loads(text)
        return result
    path.write_text(text, encoding="utf-8")
    return len(features)


# -- NGSI-LD -----------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str) -> str:
    """ASCII letters, digits, ``.``, ``_`` and ``-`` only (URN-safe)."""
    if text and _UNSAFE.search(text) is None and text[0] != "-" and text[-1] != "-":
        return text
    return _UNSAFE.sub("-", text).strip("-") or "x"


def entity_urn(entity_type: str, city: str, local_id: str) -> str:
    """Return the NGSI-LD id of an entity: ``urn:ngsi-ld:<Type>:<city>:<local id>``.

    >>> entity_urn("Streetlight", "bondy", "light:000123")
    'urn:ngsi-ld:Streetlight:bondy:light:000123'
    """
    local = ":".join(_slug(part) for part in str(local_id).split(":"))
    return f"urn:ngsi-ld:{entity_type}:{_slug(city)}:{local}"


def _prop(value: Any, unit: str | None = None) -> dict[str, Any]:
    attr: dict[str, Any] = {"type": "Property", "value": value}
    if unit is not None:
        attr["unitCode"] = unit
    return attr


def _rel(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _geo(geometry: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": geometry}


class _Builder:
    """Shared state of one NGSI-LD export: city, common attributes, id maps."""

    def __init__(self, tw: Twin) -> None:
        self.tw = tw
        self.city = tw.city.name
        self.common = {
            "areaServed": _prop(tw.city.title),
            "dataProvider": _prop(tw.city.attribution),
        }
        self._urns: dict[tuple[str, str], str] = {}

    def urn(self, entity_type: str, local_id: str) -> str:
        key = (entity_type, local_id)
        urn = self._urns.get(key)
        if urn is None:
            urn = self._urns[key] = entity_urn(entity_type, self.city, local_id)
        return urn

    def entity(self, entity_type: str, local_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        ent: dict[str, Any] = {"id": self.urn(entity_type, local_id), "type": entity_type}
        ent.update({k: v for k, v in attrs.items() if v is not None})
        ent.update({k: dict(v) for k, v in self.common.items()})
        ent["@context"] = [CONTEXTS[entity_type], CORE_CONTEXT]
        return ent


def _model_keys(lights: pd.DataFrame) -> pd.DataFrame:
    """Return the model columns of each light, with missing names filled."""
    cols = ["technology", "luminaire", "power_w", "flux_lm"]
    models = lights[cols].copy()
    models["technology"] = models["technology"].fillna("unknown")
    models["luminaire"] = models["luminaire"].fillna("luminaire")
    return models


def _model_id(tech: str, lum: str, power: float, flux: float) -> str:
    p = "na" if power != power else f"{power:g}W"
    f = "na" if flux != flux else f"{flux:g}lm"
    return _slug(f"{tech}-{lum}-{p}-{f}")


def _model_category(luminaire: str) -> list[str] | None:
    lum = luminaire.lower()
    if "bollard" in lum or "borne" in lum:
        return ["bollard"]
    if lum in ("street light", "street lamp", "streetlight", "lampadaire", "lamppost"):
        return ["lamppost"]
    return None


_TECH_NAMES = {
    "LED": "light-emitting diode",
    "HPS": "high-pressure sodium",
    "LPS": "low-pressure sodium",
    "MH": "metal halide",
}


def _streetlight_models(
    b: _Builder, lights: pd.DataFrame
) -> tuple[list[dict[str, Any]], list[str]]:
    """StreetlightModel entities, and each light's model URN."""
    models = _model_keys(lights)
    local = [
        _model_id(t, lum, p, f)
        for t, lum, p, f in zip(
            models["technology"],
            models["luminaire"],
            models["power_w"],
            models["flux_lm"],
            strict=True,
        )
    ]
    light_model = [b.urn("StreetlightModel", m) for m in local]
    models["local"] = local
    entities = []
    for row in models.drop_duplicates("local").sort_values("local").itertuples(index=False):
        # names filled by _model_keys, numbers float (NaN when unknown); pandas-stubs type a
        # row's cells as any scalar
        tech, lum, power, flux, local_id = cast(
            tuple[str, str, float, float, str],
            (row.technology, row.luminaire, row.power_w, row.flux_lm, row.local),
        )
        parts = [tech, lum]
        if power == power:
            parts.append(f"{power:g} W")
        if flux == flux:
            parts.append(f"{flux:g} lm")
        attrs: dict[str, Any] = {
            "name": _prop(" ".join(parts)),
            "lampTechnology": _prop(tech) if tech in ("LED", "LPS", "HPS") else None,
            "powerConsumption": _prop(float(power), _W) if power == power else None,
            "luminousFlux": _prop(float(flux), _LM) if flux == flux else None,
            "category": _prop(cat) if (cat := _model_category(lum)) else None,
            "description": _prop(
                f"{_TECH_NAMES.get(tech, tech)} {lum}; powerConsumption is the system power "
                "at full output (lamp and driver or ballast)"
            ),
        }
        entities.append(b.entity("StreetlightModel", local_id, attrs))
    return entities, light_model


def _check_levels(levels: Any, lights: pd.DataFrame) -> pd.Series | None:
    if levels is None:
        return None
    series = pd.Series(dict(levels)) if isinstance(levels, Mapping) else pd.Series(levels)
    try:
        series = series.astype("float64")
    except (TypeError, ValueError) as exc:
        msg = f"levels: dim levels must be numbers in [0, 1] ({exc})"
        raise InputValidationError(msg) from exc
    unknown = series.index.difference(lights.index)
    if len(unknown):
        msg = f"levels: {len(unknown)} id(s) are not lights of the registry, e.g. {unknown[0]!r}"
        raise InputValidationError(msg)
    bad = series[~series.between(0.0, 1.0)]
    if len(bad):
        msg = f"levels: {bad.index[0]!r} has level {bad.iloc[0]}; levels must be in [0, 1]"
        raise InputValidationError(msg)
    return series


def _streetlights(
    b: _Builder, lights: gpd.GeoDataFrame, model_urns: list[str], levels: pd.Series | None
) -> list[dict[str, Any]]:
    geoms = _wgs84(lights.geometry)
    lon, lat = shapely.get_x(geoms), shapely.get_y(geoms)
    seg = b.tw.registry["segment"]["highway"]
    highway = lights["segment"].map(seg).tolist()
    level = [None] * len(lights) if levels is None else levels.reindex(lights.index).tolist()
    entities = []
    for i, rec in enumerate(_records(lights[["id", "cabinet", "source", "ref"]])):
        hw = highway[i]
        if isinstance(hw, str) and hw in _PEDESTRIAN:
            category: str | None = "pedestrianPath"
        elif isinstance(hw, str) and hw not in _BICYCLE:
            category = "road"
        else:
            category = None
        cab = rec["cabinet"]
        lvl = level[i]
        has_level = lvl is not None and lvl == lvl
        state = None
        if has_level:
            state = "off" if lvl == 0 else ("on" if lvl == 1 else "low")
        source = None
        if rec["source"] == "osm" and rec["ref"]:
            source = f"https://www.openstreetmap.org/node/{rec['ref']}"
        attrs = {
            "name": _prop(rec["id"]),
            "location": _geo({"type": "Point", "coordinates": [float(lon[i]), float(lat[i])]}),
            "status": _prop("ok"),
            "refStreetlightModel": _rel(model_urns[i]),
            "refStreetlightGroup": _rel(b.urn("StreetlightGroup", cab)) if cab else None,
            "refStreetlightControlCabinet": (
                _rel(b.urn("StreetlightControlCabinet", cab)) if cab else None
            ),
            "circuit": _prop(cab) if cab else None,
            "locationCategory": _prop(category) if category else None,
            "illuminanceLevel": _prop(float(lvl)) if lvl is not None and has_level else None,
            "powerState": _prop(state) if state else None,
            "source": _prop(source) if source else None,
        }
        entities.append(b.entity("Streetlight", rec["id"], attrs))
    return entities


def _cabinets(b: _Builder, cabinets: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """StreetlightControlCabinet and StreetlightGroup entities (one group per cabinet)."""
    lights = b.tw.registry["light"]
    cab_geo = [json.loads(g) for g in _geojson_strings(_wgs84(cabinets.geometry))]
    # lights of each cabinet, as a MultiPoint per cabinet (vectorised)
    member = lights[lights["cabinet"].isin(cabinets.index)]
    order = np.argsort(member["cabinet"].to_numpy(dtype=str), kind="stable")
    member = member.iloc[order]
    groups: dict[str, list[str]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    if len(member):
        codes, uniques = pd.factorize(member["cabinet"], sort=True)
        multi = shapely.multipoints(_wgs84(member.geometry), indices=codes)
        for cab, geom in zip(uniques, _geojson_strings(np.asarray(multi)), strict=True):
            shapes[str(cab)] = json.loads(geom)
        for cab, ids in member.groupby("cabinet", sort=True).groups.items():
            groups[str(cab)] = [b.urn("Streetlight", i) for i in ids]
    entities = []
    for i, rec in enumerate(_records(cabinets.drop(columns=cabinets.geometry.name))):
        cab = rec["id"]
        group_urn = b.urn("StreetlightGroup", cab)
        contracted = rec["contracted_power_w"]
        installed = rec["installed_power_w"]
        desc = f"feeder of {rec['n_lights']} lights"
        if installed is not None:
            desc += f", installed power {installed:.0f} W at full output"
        cabinet_attrs = {
            "name": _prop(cab),
            "location": _geo(cab_geo[i]),
            "workingMode": _prop("automatic"),
            "refStreetlightGroup": _rel([group_urn]),
            "maximumPowerAvailable": (
                _prop(round(contracted / 1000.0, 6), _KW) if contracted is not None else None
            ),
            "description": _prop(desc),
        }
        entities.append(b.entity("StreetlightControlCabinet", cab, cabinet_attrs))
        members = groups.get(cab)
        group_attrs = {
            "name": _prop(f"lights of {cab}"),
            "location": _geo(shapes.get(cab, cab_geo[i])),
            "refStreetlight": _rel(members) if members else None,
            "refStreetlightControlCabinet": _rel(b.urn("StreetlightControlCabinet", cab)),
        }
        entities.append(b.entity("StreetlightGroup", cab, group_attrs))
    return entities


def _road_class(highway: str | None) -> tuple[int, str]:
    """(rank, Road.roadClass) of an OSM highway value; non-motor ways rank last."""
    hw = (highway or "").removesuffix("_link")
    hw = _ROAD_CLASS_ALIAS.get(hw, hw)
    if hw in _ROAD_CLASSES:
        return _ROAD_CLASSES.index(hw), hw
    return len(_ROAD_CLASSES), "unclassified"


def _road_keys(segments: pd.DataFrame) -> list[str]:
    """Group segments into roads: by street name, else by OSM way (else the segment)."""
    keys = []
    for name, osmid, sid in zip(segments["name"], segments["osmid"], segments["id"], strict=True):
        if isinstance(name, str) and name.strip():
            keys.append("name:" + name.strip())
        elif isinstance(osmid, str) and osmid:
            keys.append("way:" + osmid)
        else:
            keys.append("segment:" + str(sid))
    return keys


def _road_local_id(key: str) -> str:
    return "road:" + hashlib.blake2b(key.encode("utf-8"), digest_size=6).hexdigest()


def _segments(b: _Builder, segments: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """RoadSegment and Road entities."""
    geoms = _wgs84(segments.geometry)
    lines = [json.loads(g) for g in _geojson_strings(geoms)]
    starts = shapely.get_point(geoms, 0)
    ends = shapely.get_point(geoms, -1)
    start_xy = np.column_stack([shapely.get_x(starts), shapely.get_y(starts)]).tolist()
    end_xy = np.column_stack([shapely.get_x(ends), shapely.get_y(ends)]).tolist()
    keys = _road_keys(segments)
    road_ids = {k: _road_local_id(k) for k in set(keys)}
    if len(set(road_ids.values())) != len(road_ids):  # pragma: no cover - 48-bit hash
        msg = "road ids collide; report this city"
        raise InputValidationError(msg)
    osm_source = b.tw.city.source.get("kind") == "osm"
    cols = [
        "id",
        "name",
        "osmid",
        "highway",
        "lanes",
        "speed_kph",
        "oneway",
        "length_m",
        "drive",
        "lighting_class",
    ]
    entities = []
    for i, rec in enumerate(_records(segments[cols])):
        hw = rec["highway"] or ""
        road_urn = b.urn("Road", road_ids[keys[i]])
        if rec["drive"]:
            allowed = ["anyVehicle"]
        elif hw in _BICYCLE:
            allowed = ["bicycle"]
        else:
            allowed = []
        category = (["oneway"] if rec["oneway"] and rec["drive"] else []) + (
            ["link"] if hw.endswith("_link") else []
        )
        lanes = rec["lanes"]
        osmid = rec["osmid"]
        source = None
        if osm_source and isinstance(osmid, str) and osmid.isdigit():
            source = f"https://www.openstreetmap.org/way/{osmid}"
        desc = f"highway={hw}" if hw else None
        if rec["lighting_class"]:
            desc = (desc + ", " if desc else "") + f"EN 13201 class {rec['lighting_class']}"
        attrs = {
            "name": _prop(rec["name"] or rec["id"]),
            "refRoad": _rel(road_urn),
            "location": _geo(lines[i]),
            "startPoint": _geo({"type": "Point", "coordinates": start_xy[i]}),
            "endPoint": _geo({"type": "Point", "coordinates": end_xy[i]}),
            "allowedVehicleType": _prop(allowed),
            "roadClass": _prop(_SEGMENT_CLASS.get(hw.removesuffix("_link"), "OTHER_PUBLIC_ROAD")),
            "length": (
                _prop(round(rec["length_m"] / 1000.0, 6), _KM)
                if rec["length_m"] is not None
                else None
            ),
            "totalLaneNumber": _prop(int(lanes)) if lanes is not None and lanes >= 1 else None,
            "maximumAllowedSpeed": (
                _prop(float(rec["speed_kph"]), _KMH) if rec["speed_kph"] is not None else None
            ),
            "category": _prop(category) if category else None,
            "description": _prop(desc) if desc else None,
            "source": _prop(source) if source else None,
        }
        entities.append(b.entity("RoadSegment", rec["id"], attrs))

    # Roads: one per key, segments in id order, MultiLineString built in GEOS
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object), sort=True)
    order = np.argsort(codes, kind="stable")
    multi = _geojson_strings(
        np.asarray(shapely.multilinestrings(geoms[order], indices=codes[order]))
    )
    members: list[list[int]] = [[] for _ in range(len(uniques))]
    for pos in order.tolist():
        members[codes[pos]].append(pos)
    seg_ids = segments["id"].tolist()
    highways = _column_values(segments["highway"])
    lengths = segments["length_m"].to_numpy(dtype=float)
    for code, key in enumerate(uniques.tolist()):
        rows = members[code]
        road_class = min(_road_class(highways[r]) for r in rows)[1]
        if key.startswith("name:"):
            name = key.removeprefix("name:")
        else:
            name = f"unnamed {highways[rows[0]] or 'way'} ({key.replace(':', ' ')})"
        attrs = {
            "name": _prop(name),
            "roadClass": _prop(road_class),
            "refRoadSegment": _rel([b.urn("RoadSegment", seg_ids[r]) for r in rows]),
            "length": _prop(round(float(np.nansum(lengths[rows])) / 1000.0, 6), _KM),
            "location": _geo(json.loads(multi[code])),
        }
        entities.append(b.entity("Road", road_ids[key], attrs))
    return entities


def to_ngsi_ld(
    tw: Twin,
    out: str | Path | None = None,
    *,
    kinds: str | Iterable[str] | None = None,
    levels: Mapping[str, float] | pd.Series | None = None,
) -> int | list[dict[str, Any]]:
    """Export the registry as NGSI-LD entities (normalized form) of FIWARE Smart Data Models.

    See the module docstring for the mapping. Every entity has ``id`` (a URN, see
    :func:`entity_urn`), ``type``, Properties ``{"type": "Property", "value": v}`` (with
    ``unitCode`` in UN/CEFACT codes where the model gives a unit), Relationships
    ``{"type": "Relationship", "object": urn}`` (a list of URNs for the to-many ones),
    GeoProperties in EPSG:4326, ``dataProvider`` (the data's attribution) and an ``@context``
    of the Smart Data Models context and the NGSI-LD core context. The file is a JSON array,
    the body of a broker's batch create (``POST /ngsi-ld/v1/entityOperations/create``).

    Parameters
    ----------
    tw : Twin
        The twin to export.
    out : str or Path, optional
        File to write. Without it the entities are returned as a list.
    kinds : str or list of str, optional
        Asset types to export among ``light``, ``cabinet`` and ``segment`` (default: those
        that hold assets).
    levels : Mapping or Series, optional
        Dim level per light id (0..1), e.g. one time step of a plan: gives each Streetlight its
        ``illuminanceLevel`` and ``powerState`` (``off`` at 0, ``low`` below 1, ``on`` at 1).

    Returns
    -------
    int or list of dict
        The number of entities written, or the entities when ``out`` is None.

    Raises
    ------
    InputValidationError
        An unknown or unsupported type in ``kinds``, a bad ``levels`` entry, or an ``out``
        whose folder does not exist.
    """
    selected = _select_kinds(tw, kinds, tuple(NGSI_LD_KINDS))
    path = None if out is None else _check_out(out)
    b = _Builder(tw)
    entities: list[dict[str, Any]] = []
    if "light" in selected:
        lights = tw.registry["light"]
        lv = _check_levels(levels, lights)
        models, model_urns = _streetlight_models(b, lights)
        entities.extend(models)
        entities.extend(_streetlights(b, lights, model_urns, lv))
    elif levels is not None:
        msg = "levels: given, but 'light' is not among the exported kinds"
        raise InputValidationError(msg)
    if "cabinet" in selected:
        entities.extend(_cabinets(b, tw.registry["cabinet"]))
    if "segment" in selected:
        entities.extend(_segments(b, tw.registry["segment"]))
    if path is None:
        return entities
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for i, ent in enumerate(entities):
            if i:
                fh.write(",\n")
            fh.write(_dumps(ent))
        fh.write("\n]\n")
    return len(entities)


def ngsi_ld_to_keyvalues(entity: Mapping[str, Any]) -> dict[str, Any]:
    """Project a normalized NGSI-LD entity to key-values (the form the schemas describe).

    Properties and GeoProperties become their ``value``, Relationships their ``object``;
    ``@context`` and sub-attributes such as ``unitCode`` are dropped.

    >>> ngsi_ld_to_keyvalues({
    ...     "id": "urn:ngsi-ld:Streetlight:x:light:1", "type": "Streetlight",
    ...     "status": {"type": "Property", "value": "ok"},
    ...     "refStreetlightModel": {"type": "Relationship", "object": "urn:ngsi-ld:M:x:m"},
    ...     "@context": [CORE_CONTEXT]})
    {'id': 'urn:ngsi-ld:Streetlight:x:light:1', 'type': 'Streetlight', 'status': 'ok', \
'refStreetlightModel': 'urn:ngsi-ld:M:x:m'}
    """
    kv: dict[str, Any] = {}
    for name, attr in entity.items():
        if name == "@context":
            continue
        if name in ("id", "type"):
            kv[name] = attr
            continue
        if not isinstance(attr, Mapping) or "type" not in attr:
            msg = f"{name}: not a normalized NGSI-LD attribute (no 'type' member)"
            raise InputValidationError(msg)
        kind = attr["type"]
        if kind in ("Property", "GeoProperty"):
            kv[name] = attr["value"]
        elif kind == "Relationship":
            kv[name] = attr["object"]
        else:
            msg = f"{name}: unknown NGSI-LD attribute type {kind!r}"
            raise InputValidationError(msg)
    return kv
