"""Fetch a city's OpenStreetMap data from an Overpass endpoint, following a recipe.

``twin data fetch dijon`` runs :func:`fetch_city`. The recipe is data (for Dijon,
``data/dijon_osm/recipe.toml``); the city definition (``twin/cities/<city>.toml``) names it in
``[source] fetch`` and lists the communes by INSEE code in ``[boundary]``. The fetch uses the
public API of osmnx 2.x and writes, under a data root:

- ``<folder>/boundary.geojson``: the communes (or the bounding box) that make the fetch polygon;
- the road graph (GraphML, EPSG:4326, as ``osmnx.save_graphml`` writes it);
- the features (one GeoJSON, EPSG:4326): lights, signals, crossings, cameras, lighting cabinets,
  public buildings, shops, public-transport stops, bollards and the commune boundaries;
- ``<folder>/manifest.json``: every file with its size and sha256, the date, the endpoint, the
  osmnx version, the recipe checksum, the licence, counts and a coverage check.

Data © OpenStreetMap contributors, available under the Open Database Licence 1.0
(https://opendatacommons.org/licenses/odbl/1-0/).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import os
import socket
import tempfile
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import osmnx as ox
import pandas as pd
import requests
import shapely
from osmnx._errors import InsufficientResponseError, ResponseStatusCodeError

from ._errors import DataMissingError, InputValidationError, OverpassUnreachableError
from ._files import sha256_file
from .progress import progress_bar
from .settings import REPO_ROOT, get_settings

__all__ = [
    "Manifest",
    "ManifestFile",
    "OverpassUnreachableError",
    "fetch_city",
    "load_recipe",
    "manifest_for",
    "street_coverage",
]

_NETWORK_TYPES = {"all", "all_public", "bike", "drive", "drive_service", "walk"}
_KEEP_MARKER = "_twin_keep"
OFFLINE_HINT = (
    "Offline, use the real data shipped beside the project instead: "
    "`--city montpellier` with TWIN_DATA=../shared/data."
)


@dataclasses.dataclass(frozen=True)
class ManifestFile:
    """One file written by a fetch.

    Attributes
    ----------
    name : str
        Path relative to the data root, with ``/`` separators (e.g. ``dijon_osm/dijon.graphml``).
    bytes : int
        Size in bytes.
    sha256 : str
        Hex SHA-256 of the content.
    """

    name: str
    bytes: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a fetch wrote, from where, when, and how much (``manifest.json``).

    Attributes
    ----------
    city : str
        City name from the definition.
    path : Path
        The ``manifest.json`` file.
    files : tuple of ManifestFile
        Every data file written (the manifest itself excluded).
    fetched_at : datetime.datetime
        Start of the fetch, tz-aware UTC.
    overpass_url : str
        Endpoint queried.
    osmnx_version : str
        Version of osmnx used.
    recipe : str
        Recipe name; ``recipe_sha256`` is the checksum of its file (or of its canonical JSON
        when given as a mapping).
    recipe_sha256 : str
        See ``recipe``.
    licence : str
        SPDX identifier of the data licence (``ODbL-1.0``).
    attribution : str
        Attribution to show wherever the data is displayed.
    bbox : tuple of float
        Bounds of the fetch polygon ``(left, bottom, right, top)``, EPSG:4326.
    counts : dict
        ``nodes``, ``edges``, ``graph_traffic_signals``, ``features``, ``communes`` and
        ``features_by_tag`` (``"key=value"`` -> count; ``"key=*"`` for any value).
    communes : tuple of dict
        Communes found: ``insee``, ``name``, ``osm_id``, ``population`` (OSM tag or None).
    coverage : dict or None
        Share of the reference way ids present in the graph (see :func:`street_coverage`), or
        None when no reference was found.
    """

    city: str
    path: Path
    files: tuple[ManifestFile, ...]
    fetched_at: dt.datetime
    overpass_url: str
    osmnx_version: str
    recipe: str
    recipe_sha256: str
    licence: str
    attribution: str
    bbox: tuple[float, float, float, float]
    counts: dict[str, Any]
    communes: tuple[dict[str, Any], ...]
    coverage: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready content of ``manifest.json``."""
        return {
            "city": self.city,
            "fetched_at": self.fetched_at.isoformat(timespec="seconds"),
            "overpass_url": self.overpass_url,
            "osmnx_version": self.osmnx_version,
            "recipe": {"name": self.recipe, "sha256": self.recipe_sha256},
            "licence": self.licence,
            "attribution": self.attribution,
            "crs": "EPSG:4326",
            "bbox": list(self.bbox),
            "files": [dataclasses.asdict(f) for f in self.files],
            "counts": self.counts,
            "communes": list(self.communes),
            "coverage": self.coverage,
        }

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read a ``manifest.json`` written by :func:`fetch_city`."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            city=d["city"],
            path=Path(path),
            files=tuple(ManifestFile(**f) for f in d["files"]),
            fetched_at=dt.datetime.fromisoformat(d["fetched_at"]),
            overpass_url=d["overpass_url"],
            osmnx_version=d["osmnx_version"],
            recipe=d["recipe"]["name"],
            recipe_sha256=d["recipe"]["sha256"],
            licence=d["licence"],
            attribution=d["attribution"],
            bbox=(d["bbox"][0], d["bbox"][1], d["bbox"][2], d["bbox"][3]),
            counts=d["counts"],
            communes=tuple(d["communes"]),
            coverage=d["coverage"],
        )


def manifest_for(path: Path, *, name: str = "manifest.json") -> Manifest | None:
    """The fetch manifest that describes ``path``, or None.

    Looked for as ``name`` in the file's folder; it describes the file when it lists a file of
    that name with the same sha256 (an edited or re-fetched file no longer matches). Its
    ``fetched_at`` is the date of the data: Overpass answers from the live database.
    """
    path = Path(path)
    candidate = path.parent / name
    if not candidate.is_file():
        return None
    try:
        manifest = Manifest.read(candidate)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # not a manifest of ours: it says nothing about the file
    listed = [f for f in manifest.files if Path(f.name).name == path.name]
    if not listed or listed[0].sha256 != sha256_file(path):
        return None
    return manifest


# --- city definitions and recipes -----------------------------------------------------------
def _as_mapping(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    msg = f"city: expected a name, a mapping or a city definition object, got {type(obj).__name__}"
    raise InputValidationError(msg)


def _city_definition(city: str | Mapping[str, Any] | Any) -> Mapping[str, Any]:
    if isinstance(city, str):
        from .cities import get_city

        return _as_mapping(get_city(city))
    return _as_mapping(city)


def load_recipe(
    recipe: str | Path | Mapping[str, Any],
) -> tuple[dict[str, Any], str]:
    """Load and validate a fetch recipe.

    Parameters
    ----------
    recipe : str, Path or mapping
        A recipe name (``"dijon"`` -> ``<data root>/dijon_osm/recipe.toml``, looked for in the
        data roots), a path to a TOML file, or the parsed recipe itself.

    Returns
    -------
    recipe : dict
        The validated recipe.
    sha256 : str
        Checksum of the recipe file (of its canonical JSON for a mapping).

    Examples
    --------
    >>> r, digest = load_recipe("dijon")
    >>> r["boundary"]["kind"], r["boundary"]["admin_level"], len(digest)
    ('communes', 8, 64)
    """
    if isinstance(recipe, Mapping):
        data = json.loads(json.dumps(recipe))
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    else:
        path = Path(recipe)
        if path.suffix != ".toml":
            candidates = [root / f"{recipe}_osm" / "recipe.toml" for root in _data_roots()]
            found = [p for p in candidates if p.is_file()]
            if not found:
                where = ", ".join(str(p) for p in candidates)
                msg = f"source.fetch: no recipe {recipe!r} (looked for {where})"
                raise DataMissingError(msg)
            path = found[0]
        if not path.is_file():
            msg = f"source.fetch: recipe file {path} does not exist"
            raise DataMissingError(msg)
        raw = path.read_bytes()
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            msg = f"recipe {path}: not valid TOML ({e})"
            raise InputValidationError(msg) from e
        digest = hashlib.sha256(raw).hexdigest()
    _validate_recipe(data)
    return data, digest


def _check_bbox(value: Any, field: str) -> tuple[float, float, float, float]:
    ok = (
        isinstance(value, Sequence)
        and len(value) == 4
        and all(isinstance(v, int | float) for v in value)
    )
    if not ok:
        msg = f"{field}: expected [left, bottom, right, top] in degrees, got {value!r}"
        raise InputValidationError(msg)
    left, bottom, right, top = (float(v) for v in value)
    if not (-180 <= left < right <= 180 and -90 <= bottom < top <= 90):
        msg = f"{field}: {value!r} is not a (left, bottom, right, top) box in EPSG:4326 degrees"
        raise InputValidationError(msg)
    return left, bottom, right, top


def _validate_recipe(r: dict[str, Any]) -> None:
    for table in ("boundary", "graph", "features", "output"):
        if not isinstance(r.get(table), dict):
            msg = f"recipe.{table}: missing table"
            raise InputValidationError(msg)
    kind = r["boundary"].get("kind")
    if kind == "communes":
        _check_bbox(r["boundary"].get("search_bbox"), "recipe.boundary.search_bbox")
        level = r["boundary"].get("admin_level", 8)
        if not isinstance(level, int) or not 1 <= level <= 12:
            msg = f"recipe.boundary.admin_level: {level!r} is not an OSM admin level (1..12)"
            raise InputValidationError(msg)
    elif kind == "bbox":
        _check_bbox(r["boundary"].get("bbox"), "recipe.boundary.bbox")
    else:
        msg = f"recipe.boundary.kind: {kind!r} is not one of 'communes', 'bbox'"
        raise InputValidationError(msg)
    network_type = r["graph"].get("network_type", "all")
    if network_type not in _NETWORK_TYPES:
        msg = f"recipe.graph.network_type: {network_type!r} not in {sorted(_NETWORK_TYPES)}"
        raise InputValidationError(msg)
    tags = r["features"].get("tags")
    if not isinstance(tags, dict) or not tags:
        msg = "recipe.features.tags: expected a non-empty table of tag filters"
        raise InputValidationError(msg)
    for key, value in tags.items():
        ok = value is True or isinstance(value, str)
        ok = ok or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        if not ok:
            msg = f"recipe.features.tags.{key}: expected true, a string or a list of strings"
            raise InputValidationError(msg)
    for label in r["features"].get("only_if", {}):
        key, _, value = label.partition("=")
        if key not in tags or not value:
            msg = f"recipe.features.only_if: {label!r} is not a 'key=value' of features.tags"
            raise InputValidationError(msg)
    for name in ("folder", "graph", "features", "boundary", "manifest"):
        if not isinstance(r["output"].get(name), str) or not r["output"][name]:
            msg = f"recipe.output.{name}: expected a file or folder name"
            raise InputValidationError(msg)


def _data_roots() -> list[Path]:
    roots = get_settings().data_roots
    return [r if r.is_absolute() else (Path.cwd() / r) for r in roots]


def _writable_root(recipe: str | Path | Mapping[str, Any]) -> Path:
    # The data root holding a named recipe (normally the repo's data/), else the first
    # writable one.
    roots = _data_roots()
    if isinstance(recipe, str) and not recipe.endswith(".toml"):
        roots = [r for r in roots if (r / f"{recipe}_osm" / "recipe.toml").is_file()] + roots
    for root in roots:
        if root.is_dir() and os.access(root, os.W_OK):
            return root
    msg = f"dest: no writable data root (tried TWIN_DATA, then {REPO_ROOT / 'data'}); pass dest="
    raise InputValidationError(msg)


# --- osmnx settings -----------------------------------------------------------------------
@contextlib.contextmanager
def _osmnx_settings(**values: Any) -> Iterator[None]:
    """Set ``osmnx.settings`` for a block, then restore them (and osmnx's DNS pinning)."""
    saved = {k: getattr(ox.settings, k) for k in values}
    saved_getaddrinfo = socket.getaddrinfo
    try:
        for k, v in values.items():
            setattr(ox.settings, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(ox.settings, k, v)
        socket.getaddrinfo = saved_getaddrinfo


def _unreachable(url: str, step: str, reason: object) -> OverpassUnreachableError:
    msg = (
        f"{step}: could not reach the Overpass endpoint {url} ({reason}). Check the network, or "
        f"set TWIN_OVERPASS_URL to another Overpass instance. {OFFLINE_HINT}"
    )
    return OverpassUnreachableError(msg)


@contextlib.contextmanager
def _network_errors(url: str, step: str) -> Iterator[None]:
    try:
        yield
    except (requests.ConnectionError, requests.Timeout) as e:
        raise _unreachable(url, step, type(e).__name__) from e
    except ResponseStatusCodeError as e:
        raise _unreachable(url, step, f"the server answered with an error: {e}") from e


# --- steps ----------------------------------------------------------------------------------
def _wanted_communes(definition: Mapping[str, Any]) -> dict[str, str]:
    communes = definition.get("boundary", {}).get("communes")
    if not communes:
        msg = "boundary.communes: the city definition lists no commune (INSEE codes) to fetch"
        raise InputValidationError(msg)
    wanted: dict[str, str] = {}
    for i, c in enumerate(communes):
        insee = str(c.get("insee", "")) if isinstance(c, Mapping) else ""
        if not insee:
            msg = f"boundary.communes[{i}].insee: missing INSEE code"
            raise InputValidationError(msg)
        wanted[insee] = str(c.get("name", insee))
    return wanted


def _fetch_communes(
    recipe: dict[str, Any], definition: Mapping[str, Any], url: str
) -> gpd.GeoDataFrame:
    wanted = _wanted_communes(definition)
    level = str(recipe["boundary"].get("admin_level", 8))
    bbox = _check_bbox(recipe["boundary"]["search_bbox"], "recipe.boundary.search_bbox")
    try:
        with _network_errors(url, "boundaries"):
            found = ox.features_from_bbox(bbox, tags={"admin_level": level})
        found = found.reset_index()
    except InsufficientResponseError:
        found = gpd.GeoDataFrame({"element": [], "id": []}, geometry=[], crs="EPSG:4326")
    for col in ("boundary", "ref:INSEE", "name", "population"):
        if col not in found.columns:
            found[col] = None
    keep = (
        (found["element"] == "relation")
        & (found["boundary"] == "administrative")
        & found["ref:INSEE"].isin(list(wanted))
        & found.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
        & ~found.geometry.is_empty
    )
    found = found[keep].drop_duplicates(subset="ref:INSEE")
    missing = [
        f"{code} ({name})" for code, name in wanted.items() if code not in set(found["ref:INSEE"])
    ]
    if missing:
        msg = (
            f"boundary.communes: no admin_level={level} boundary with a complete geometry for "
            f"INSEE {', '.join(missing)} in the answer of {url} over "
            f"recipe.boundary.search_bbox={list(bbox)}; check the codes and that the box touches "
            "every commune"
        )
        raise DataMissingError(msg)

    def _population(v: Any) -> int | None:
        try:
            return int(str(v).replace(" ", ""))
        except ValueError:
            return None

    out = gpd.GeoDataFrame(
        {
            "insee": found["ref:INSEE"].astype(str).to_numpy(),
            "name": [wanted[c] for c in found["ref:INSEE"]],
            "osm_name": found["name"].astype(object).where(found["name"].notna(), None).to_numpy(),
            "osm_id": found["id"].astype("int64").to_numpy(),
            "population": pd.Series(
                [_population(v) if pd.notna(v) else None for v in found["population"]],
                dtype=object,
            ),
            "admin_level": int(level),
        },
        geometry=found.geometry.to_numpy(),
        crs="EPSG:4326",
    )
    order = {code: i for i, code in enumerate(wanted)}
    return out.iloc[sorted(range(len(out)), key=lambda i: order[out["insee"].iloc[i]])]


def _fetch_polygon(
    communes: gpd.GeoDataFrame,
) -> shapely.Polygon | shapely.MultiPolygon:
    union = shapely.make_valid(shapely.union_all(communes.geometry.to_numpy()))
    parts = [g for g in shapely.get_parts(union) if isinstance(g, shapely.Polygon)]
    polygon = shapely.union_all(parts)
    if not isinstance(polygon, shapely.Polygon | shapely.MultiPolygon) or polygon.is_empty:
        msg = "boundary: the communes do not form a polygon"
        raise DataMissingError(msg)
    return polygon


def _fetch_graph(
    polygon: shapely.Polygon | shapely.MultiPolygon, graph_recipe: dict[str, Any], url: str
) -> nx.MultiDiGraph:
    try:
        with _network_errors(url, "road graph"):
            G = ox.graph_from_polygon(
                polygon,
                network_type=graph_recipe.get("network_type", "all"),
                simplify=False,
                retain_all=bool(graph_recipe.get("retain_all", True)),
            )
    except InsufficientResponseError as e:
        msg = f"road graph: {url} returned no street inside the fetch polygon ({e})"
        raise DataMissingError(msg) from e
    if graph_recipe.get("simplify", True):
        keep = {k: set(v) for k, v in graph_recipe.get("keep_nodes", {}).items()}
        for _, data in G.nodes(data=True):
            if any(data.get(k) in values for k, values in keep.items()):
                data[_KEEP_MARKER] = True
        # never merge a lit way and an untagged one into one "lit" edge
        G = ox.simplify_graph(G, node_attrs_include=[_KEEP_MARKER], edge_attrs_differ=["lit"])
        for _, data in G.nodes(data=True):
            data.pop(_KEEP_MARKER, None)
    return G


def _label(key: str, value: Any) -> str:
    return f"{key}=*" if value is True else f"{key}={value}"


def _filters(tags: dict[str, Any]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for key, value in tags.items():
        if value is True:
            out.append((key, None))
        else:
            out.extend((key, v) for v in ([value] if isinstance(value, str) else value))
    return out


def _json_scalar(value: Any) -> str | None:
    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return None
    if isinstance(value, list | dict | tuple):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _fetch_features(
    polygon: shapely.Polygon | shapely.MultiPolygon,
    features_recipe: dict[str, Any],
    url: str,
) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    tags = features_recipe["tags"]
    try:
        with _network_errors(url, "features"):
            gdf = ox.features_from_polygon(polygon, tags=tags).reset_index()
    except InsufficientResponseError:
        gdf = gpd.GeoDataFrame({"element": [], "id": []}, geometry=[], crs="EPSG:4326")
    filters = _filters(tags)
    only_if = features_recipe.get("only_if", {})
    matched = pd.DataFrame(index=gdf.index)
    for key, value in filters:
        label = _label(key, True if value is None else value)
        column = gdf[key] if key in gdf.columns else pd.Series(None, index=gdf.index)
        hit = column.notna() if value is None else column == value
        for cond_key, allowed in only_if.get(label, {}).items():
            cond = gdf[cond_key] if cond_key in gdf.columns else pd.Series(None, index=gdf.index)
            hit &= cond.isin(list(allowed))
        matched[label] = hit.fillna(False).astype(bool)
    any_hit = matched.any(axis=1) if len(matched.columns) else pd.Series(False, index=gdf.index)
    gdf, matched = gdf[any_hit], matched[any_hit]
    feature = matched.idxmax(axis=1) if len(gdf) else pd.Series([], dtype=object)
    counts = {label: int(matched[label].sum()) for label in matched.columns}
    props: dict[str, Any] = {
        "element": gdf["element"].astype(str).to_numpy(),
        "osmid": gdf["id"].astype("int64").to_numpy(),
        "feature": feature.astype(str).to_numpy(),
    }
    for key in features_recipe.get("keep_tags", []):
        values = gdf[key] if key in gdf.columns else pd.Series(None, index=gdf.index)
        props[key] = [_json_scalar(v) for v in values]
    out = gpd.GeoDataFrame(props, geometry=gdf.geometry.to_numpy(), crs="EPSG:4326")
    return out, counts


def _boundary_features(communes: gpd.GeoDataFrame, keep_tags: list[str]) -> gpd.GeoDataFrame:
    props: dict[str, Any] = {
        "element": ["relation"] * len(communes),
        "osmid": communes["osm_id"].astype("int64").to_numpy(),
        "feature": ["boundary=administrative"] * len(communes),
    }
    tag_values = {
        "name": communes["osm_name"],
        "boundary": ["administrative"] * len(communes),
        "admin_level": communes["admin_level"],
        "ref:INSEE": communes["insee"],
        "population": communes["population"],
    }
    for key in keep_tags:
        values = tag_values.get(key, [None] * len(communes))
        props[key] = [_json_scalar(v) for v in values]
    return gpd.GeoDataFrame(props, geometry=communes.geometry.to_numpy(), crs="EPSG:4326")


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path, *, licence: str, attribution: str) -> None:
    collection = json.loads(gdf.to_json(na="null", drop_id=True))
    collection["licence"] = licence
    collection["attribution"] = attribution
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")


def _graph_way_ids(G: nx.MultiDiGraph) -> set[int]:
    ids: set[int] = set()
    for _, _, osmid in G.edges(data="osmid"):
        if isinstance(osmid, list | tuple | set):
            ids.update(int(i) for i in osmid)
        elif osmid is not None:
            ids.add(int(osmid))
    return ids


def street_coverage(way_ids: set[int], reference: Sequence[Path]) -> dict[str, Any]:
    r"""Share of the way ids of reference street lists that a fetched graph holds.

    Parameters
    ----------
    way_ids : set of int
        OSM way ids in the fetched graph (the edges' ``osmid``).
    reference : sequence of Path
        Street lists named ``INSEE_-_Name.streets.csv`` (``;``-separated, column ``ways``
        holding comma-separated OSM way ids), as in ``dijon-streets-2019/``.

    Returns
    -------
    dict
        ``files``, ``way_ids`` (reference ids), ``present`` (of them in the graph), ``share``
        (present / way_ids) and ``by_commune`` (INSEE -> share). Ways split, merged or deleted
        since the reference was drawn count as absent, so a share below 1 is expected.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d) / "21003_-_Ahuy.streets.csv"
    ...     _ = f.write_text("voie;name;name_norm;last_word_norm;ways\nRUE;R;R;R;1,2\n")
    ...     street_coverage({1, 5}, [f])["share"]
    0.5
    """
    total: set[int] = set()
    by_commune: dict[str, float] = {}
    for path in sorted(reference):
        ids: set[int] = set()
        with Path(path).open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.DictReader(f, delimiter=";")):
                if "ways" not in row:
                    msg = f"{path}: no 'ways' column (row {i + 2})"
                    raise InputValidationError(msg)
                ids.update(int(w) for w in (row["ways"] or "").split(",") if w.strip())
        code = Path(path).name.split("_-_")[0]
        by_commune[code] = round(len(ids & way_ids) / len(ids), 4) if ids else 0.0
        total |= ids
    present = len(total & way_ids)
    return {
        "files": len(reference),
        "way_ids": len(total),
        "present": present,
        "share": round(present / len(total), 4) if total else 0.0,
        "by_commune": by_commune,
    }


def _target(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        msg = f"output path {relative!r} leaves the data root {root}"
        raise InputValidationError(msg)
    return path


def fetch_city(
    city: str | Mapping[str, Any] | Any,
    *,
    dest: Path | None = None,
    overpass_url: str | None = None,
    recipe: str | Path | Mapping[str, Any] | None = None,
    progress: bool = True,
) -> Manifest:
    """Fetch a city's OpenStreetMap data with its recipe and write it under a data root.

    Parameters
    ----------
    city : str, mapping or city definition
        A city name (``"dijon"``) or its definition; ``[source] fetch`` names the recipe and
        ``[boundary] communes`` lists the communes (by INSEE code) when the recipe's boundary
        kind is ``"communes"``.
    dest : Path, optional
        Data root to write into (files go to ``dest/<recipe output folder>/``, or to the paths
        of the definition's ``[source] graph`` / ``features``, relative to ``dest``). Default:
        the data root that holds the named recipe (the repo's ``data/`` for Dijon), else the
        first writable data root (``TWIN_DATA``, then the repo's ``data/``).
    overpass_url : str, optional
        Overpass endpoint (base URL, without ``/interpreter``). Default: the setting
        ``overpass_url`` (env ``TWIN_OVERPASS_URL``).
    recipe : str, Path or mapping, optional
        Use this recipe instead of the one named by ``[source] fetch``.
    progress : bool
        Show a progress bar over the steps.

    Returns
    -------
    Manifest
        What was written; also saved as ``manifest.json``.

    Raises
    ------
    OverpassUnreachableError
        The endpoint could not be reached or answered with an error (the message names the
        endpoint and the offline alternative).
    DataMissingError
        A commune of the definition is not in the answer (named by INSEE code), or no street
        was found.
    InputValidationError
        The definition or the recipe is malformed (the message names the field).
    """
    definition = _city_definition(city)
    name = str(definition.get("name", "city"))
    source = definition.get("source", {})
    if recipe is None:
        recipe = source.get("fetch")
        if not recipe:
            msg = f"source.fetch: city {name!r} has no fetch recipe (its data is read from files)"
            raise InputValidationError(msg)
    rec, recipe_sha = load_recipe(recipe)
    url = (overpass_url or get_settings().overpass_url).rstrip("/")
    root = Path(dest) if dest is not None else _writable_root(recipe)
    out = rec["output"]
    folder = _target(root, out["folder"])
    paths = {
        "boundary": folder / out["boundary"],
        "graph": _target(root, source["graph"]) if source.get("graph") else folder / out["graph"],
        "features": (
            _target(root, source["features"])
            if source.get("features")
            else folder / out["features"]
        ),
    }
    manifest_path = folder / out["manifest"]
    licence = str(rec.get("licence", "ODbL-1.0"))
    attribution = str(rec.get("attribution", "© OpenStreetMap contributors"))
    fetched_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    timeout = float(rec.get("timeout_s", 180))
    graph_recipe = rec["graph"]
    tags_way = list(
        dict.fromkeys([*ox.settings.useful_tags_way, *graph_recipe.get("useful_tags_way", [])])
    )
    tags_node = list(
        dict.fromkeys([*ox.settings.useful_tags_node, *graph_recipe.get("useful_tags_node", [])])
    )

    bar = progress_bar(total=5, desc=f"fetch {name}", unit="step", disable=not progress)
    with (
        tempfile.TemporaryDirectory(prefix="twin-osmnx-") as cache,
        _osmnx_settings(
            overpass_url=url,
            overpass_rate_limit=False,
            doh_url_template=None,
            use_cache=False,
            cache_folder=cache,
            requests_timeout=timeout,
            useful_tags_way=tags_way,
            useful_tags_node=tags_node,
            log_console=False,
            log_file=False,
        ),
        bar,
    ):
        bar.set_postfix_str("boundaries")
        if rec["boundary"]["kind"] == "communes":
            communes = _fetch_communes(rec, definition, url)
            polygon = _fetch_polygon(communes)
        else:
            box = _check_bbox(rec["boundary"]["bbox"], "recipe.boundary.bbox")
            polygon = shapely.box(*box)
            communes = gpd.GeoDataFrame(
                {
                    "insee": [None],
                    "name": [name],
                    "osm_name": [None],
                    "osm_id": [-1],
                    "population": [None],
                    "admin_level": [None],
                },
                geometry=[polygon],
                crs="EPSG:4326",
            )
        # first write: from here on the old manifest no longer describes the files
        folder.mkdir(parents=True, exist_ok=True)
        manifest_path.unlink(missing_ok=True)
        _write_geojson(communes, paths["boundary"], licence=licence, attribution=attribution)
        bar.update()

        bar.set_postfix_str("road graph")
        G = _fetch_graph(polygon, graph_recipe, url)
        paths["graph"].parent.mkdir(parents=True, exist_ok=True)
        ox.save_graphml(G, filepath=paths["graph"])
        bar.update()

        bar.set_postfix_str("features")
        features, by_tag = _fetch_features(polygon, rec["features"], url)
        if rec["boundary"]["kind"] == "communes":
            keep_tags = list(rec["features"].get("keep_tags", []))
            features = pd.concat(
                [features, _boundary_features(communes, keep_tags)], ignore_index=True
            )
            by_tag["boundary=administrative"] = len(communes)
        _write_geojson(features, paths["features"], licence=licence, attribution=attribution)
        bar.update()

        bar.set_postfix_str("coverage")
        coverage = None
        pattern = rec.get("coverage", {}).get("reference")
        if pattern:
            for data_root in _data_roots():
                ref_files = sorted(data_root.glob(pattern))
                if ref_files:
                    way_ids = _graph_way_ids(G)
                    coverage = {"reference": pattern, **street_coverage(way_ids, ref_files)}
                    break
        bar.update()

        bar.set_postfix_str("manifest")
        written = [paths["boundary"], paths["graph"], paths["features"]]
        files = tuple(
            ManifestFile(
                name=p.relative_to(root.resolve()).as_posix(),
                bytes=p.stat().st_size,
                sha256=sha256_file(p),
            )
            for p in written
        )
        counts: dict[str, Any] = {
            "nodes": G.number_of_nodes(),
            "edges": G.number_of_edges(),
            "graph_traffic_signals": sum(
                1 for _, h in G.nodes(data="highway") if h == "traffic_signals"
            ),
            "features": len(features),
            "communes": len(communes) if rec["boundary"]["kind"] == "communes" else 0,
            "features_by_tag": by_tag,
        }
        communes_list = tuple(
            {"insee": r.insee, "name": r.name, "osm_id": int(r.osm_id), "population": r.population}
            for r in communes.itertuples()
            if rec["boundary"]["kind"] == "communes"
        )
        manifest = Manifest(
            city=name,
            path=manifest_path,
            files=files,
            fetched_at=fetched_at,
            overpass_url=url,
            osmnx_version=ox.__version__,
            recipe=str(rec.get("name", recipe)),
            recipe_sha256=recipe_sha,
            licence=licence,
            attribution=attribution,
            bbox=tuple(float(v) for v in polygon.bounds),  # type: ignore[arg-type]
            counts=counts,
            communes=communes_list,
            coverage=coverage,
        )
        manifest_path.write_text(
            json.dumps(manifest.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        bar.update()
    return manifest
