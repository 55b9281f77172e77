"""The asset registry: one typed table per asset type, stable ids, spatial queries, relations.

Each asset type (``light``, ``segment``, ``cabinet``, ``junction``, ``approach``, ``camera``,
``sensor``, ``depot``, ``vehicle``, ``building``, ``poi``) is a GeoDataFrame in the twin's working
CRS (:attr:`Registry.crs`: EPSG:2154 for the French cities, a UTM zone elsewhere) indexed by id,
with exactly the columns its schema declares (``twin/assets/schemas/<kind>.csv``). An id is
``<kind>:<number>`` and stays the same for the same inputs.

Relations are columns that hold another asset's id: light -> segment, light -> cabinet,
approach -> junction, approach -> segment, sensor -> approach (loop detectors), vehicle -> depot.
:meth:`Registry.related` follows them either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import assets as _assets
from ._errors import InputValidationError, UnknownAssetError
from .assets._schema import KINDS, load_schema
from .crs import WGS84, _transformer, geo_crs

__all__ = ["Registry", "RELATIONS", "make_ids"]

#: (kind, column) -> kind it points to.
RELATIONS: dict[tuple[str, str], str] = {
    ("light", "segment"): "segment",
    ("light", "cabinet"): "cabinet",
    ("approach", "junction"): "junction",
    ("approach", "segment"): "segment",
    ("sensor", "segment"): "segment",
    ("sensor", "approach"): "approach",
    ("vehicle", "depot"): "depot",
    ("poi", "segment"): "segment",
    ("crossing", "segment"): "segment",
}

_ID_WIDTH = {"light": 6, "segment": 6, "poi": 5}


def make_ids(kind: str, n: int) -> np.ndarray:
    """Stable ids ``kind:NNNNNN`` for ``n`` assets.

    >>> make_ids("light", 2).tolist()
    ['light:000000', 'light:000001']
    >>> make_ids("junction", 1).tolist()
    ['junction:0']
    """
    width = _ID_WIDTH.get(kind, 0)
    return np.array([f"{kind}:{i:0{width}d}" for i in range(n)], dtype=object)


def _record_type(kind: str) -> type:
    module = getattr(_assets, kind)
    for obj in vars(module).values():
        if dataclasses.is_dataclass(obj) and isinstance(obj, type):
            return obj
    msg = f"asset module {kind!r} defines no record type"
    raise TypeError(msg)


def _empty(kind: str, crs: str | None) -> gpd.GeoDataFrame:
    schema = load_schema(kind)
    cols = {a.name: pd.Series(dtype=object) for a in schema.attributes if a.dtype != "geometry"}
    frame = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=geo_crs(crs)))
    return frame.set_index("id", drop=False)


def _crs_of(frame: pd.DataFrame) -> str | None:
    crs = getattr(frame, "crs", None) if isinstance(frame, gpd.GeoDataFrame) else None
    return None if crs is None else str(crs.to_string())


def _conform(kind: str, frame: pd.DataFrame, crs: str | None) -> gpd.GeoDataFrame:
    """Check a table against its schema: every column present, in order, with defaults filled.

    A GeoDataFrame in another CRS is projected to the registry's ``crs``; a plain DataFrame's
    geometries are taken to be in it already.
    """
    schema = load_schema(kind)
    if len(frame) == 0:
        return _empty(kind, crs)
    own = _crs_of(frame)
    if isinstance(frame, gpd.GeoDataFrame) and own is not None and geo_crs(crs) and own != crs:
        frame = frame.to_crs(crs)
    df = frame.copy()
    for attr in schema.attributes:
        if attr.name not in df.columns:
            if attr.default == "":
                msg = f"{kind}: column {attr.name!r} is required by the schema"
                raise InputValidationError(msg)
            # a float default may be "nan" (not given), which pandas does not parse as text
            df[attr.name] = float(attr.default) if attr.dtype == "float64" else attr.default
    df = df[schema.names]
    for attr in schema.attributes:
        col = df[attr.name]
        if attr.dtype == "float64":
            df[attr.name] = pd.to_numeric(col, errors="raise").astype("float64")
        elif attr.dtype == "int64":
            df[attr.name] = pd.to_numeric(col, errors="raise").astype("int64")
        elif attr.dtype == "bool":
            df[attr.name] = col.map(lambda v: str(v).lower() in ("true", "1", "yes")).astype(bool)
        elif attr.dtype == "str":
            df[attr.name] = col.astype(object).where(col.notna(), None)
    out = gpd.GeoDataFrame(df, geometry="geometry", crs=geo_crs(crs))
    out.index = pd.Index(out["id"].to_numpy(), name="id")
    if out.index.has_duplicates:
        dup = out.index[out.index.duplicated()][0]
        msg = f"{kind}: duplicate id {dup!r}"
        raise InputValidationError(msg)
    return out


class Registry:
    """Typed tables of every asset, with spatial queries and relations.

    Parameters
    ----------
    tables : Mapping[str, DataFrame]
        Asset type -> table with the schema's columns. Missing types are empty.
    crs : str, optional
        The working CRS of every geometry (the twin's). Default: the CRS of the first
        GeoDataFrame among ``tables`` that has one; tables in another CRS are projected to it.
        None (no table gives one): coordinates without a position on Earth (a SUMO network
        without a projection), where lon/lat queries are refused.
    """

    def __init__(
        self, tables: Mapping[str, pd.DataFrame] | None = None, *, crs: str | None = None
    ) -> None:
        tables = dict(tables or {})
        unknown = set(tables) - set(KINDS)
        if unknown:
            msg = f"unknown asset type(s) {sorted(unknown)}; known: {', '.join(KINDS)}"
            raise InputValidationError(msg)
        if crs is None:
            crs = next((c for t in tables.values() if (c := _crs_of(t)) is not None), None)
        self._crs = crs
        self._tables: dict[str, gpd.GeoDataFrame] = {
            kind: _conform(kind, tables[kind], crs) if kind in tables else _empty(kind, crs)
            for kind in KINDS
        }
        self._trees: dict[str, shapely.STRtree] = {}

    @property
    def crs(self) -> str | None:
        """The CRS of every geometry (the twin's working CRS); None without a position."""
        return self._crs

    # -- pickling: STRtrees are rebuilt on demand ---------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"_tables": self._tables, "_crs": self._crs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._tables = state["_tables"]
        crs = state.get("_crs")
        if crs is None:  # pickled before the registry recorded its CRS
            crs = next((c for t in self._tables.values() if (c := _crs_of(t)) is not None), None)
        self._crs = crs
        self._trees = {}

    # -- tables ---------------------------------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        """Asset types held (every known type, possibly empty)."""
        return KINDS

    def __getitem__(self, kind: str) -> gpd.GeoDataFrame:
        """The table of one asset type (a GeoDataFrame indexed by id, in :attr:`crs`)."""
        if kind not in self._tables:
            msg = f"unknown asset type {kind!r}; known: {', '.join(KINDS)}"
            raise UnknownAssetError(msg)
        return self._tables[kind]

    def replace(self, kind: str, table: pd.DataFrame) -> None:
        """Replace one asset type's table (validated against its schema)."""
        self._tables[kind] = _conform(kind, table, self._crs)
        self._trees.pop(kind, None)

    def counts(self) -> dict[str, int]:
        """Number of assets per type."""
        return {kind: len(t) for kind, t in self._tables.items()}

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def __iter__(self) -> Iterator[str]:
        for t in self._tables.values():
            yield from t.index

    def __contains__(self, asset_id: object) -> bool:
        if not isinstance(asset_id, str) or ":" not in asset_id:
            return False
        kind = asset_id.split(":", 1)[0]
        return kind in self._tables and asset_id in self._tables[kind].index

    @staticmethod
    def kind_of(asset_id: str) -> str:
        """The asset type of an id (``light:000001`` -> ``light``)."""
        kind = asset_id.split(":", 1)[0]
        if kind not in KINDS:
            msg = f"{asset_id!r} is not an asset id (expected <type>:<n>, type in {KINDS})"
            raise UnknownAssetError(msg)
        return kind

    def get(self, asset_id: str) -> Any:
        """One asset as its frozen record (e.g. a :class:`twin.assets.light.Light`)."""
        kind = self.kind_of(asset_id)
        table = self._tables[kind]
        if asset_id not in table.index:
            msg = f"no asset {asset_id!r} in the registry ({len(table)} {kind} assets)"
            raise UnknownAssetError(msg)
        row = table.loc[asset_id]
        values = {k: (None if _isna(v) else v) for k, v in row.items()}
        return _record_type(kind)(**values)

    # -- spatial queries --------------------------------------------------------------------------
    def _tree(self, kind: str) -> shapely.STRtree:
        if kind not in self._trees:
            self._trees[kind] = shapely.STRtree(self[kind].geometry.values)
        return self._trees[kind]

    def _kinds(self, kind: str | Iterable[str] | None) -> list[str]:
        if kind is None:
            return [k for k in KINDS if len(self._tables[k])]
        kinds = [kind] if isinstance(kind, str) else list(kind)
        for k in kinds:
            self[k]  # validates
        return kinds

    def _to_own(self, x: np.ndarray, y: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates given in ``crs`` (EPSG:4326 lon/lat, or any CRS) in the registry's CRS."""
        if crs == self._crs:
            return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        own = geo_crs(self._crs)
        if own is None:
            msg = (
                f"crs: this registry's coordinates ({self._crs or 'local'}) have no position on "
                f"Earth; give points in its own coordinates (crs={self._crs!r})"
            )
            raise InputValidationError(msg)
        if geo_crs(crs) is None:
            msg = f"crs: {crs!r} is not a CRS pyproj knows; use {WGS84} or {own}"
            raise InputValidationError(msg)
        tx, ty = _transformer(crs, own).transform(np.asarray(x), np.asarray(y))
        return np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)

    def _point(self, xy: tuple[float, float], crs: str) -> shapely.Point:
        x, y = self._to_own(np.array([xy[0]]), np.array([xy[1]]), crs)
        return shapely.Point(float(x[0]), float(y[0]))

    def within_bbox(
        self,
        bbox: tuple[float, float, float, float],
        *,
        kind: str | Iterable[str] | None = None,
        crs: str = WGS84,
    ) -> gpd.GeoDataFrame:
        """Assets whose geometry intersects a bbox ``(left, bottom, right, top)``.

        The bbox is in ``crs`` (EPSG:4326 lon/lat by default). Returns one GeoDataFrame with a
        ``kind`` column, rows of every requested type.
        """
        left, bottom, right, top = bbox
        if left > right or bottom > top:
            msg = f"bbox: expected (left, bottom, right, top), got {bbox}"
            raise InputValidationError(msg)
        xs, ys = self._to_own(
            np.array([left, right, left, right]), np.array([bottom, bottom, top, top]), crs
        )
        box = shapely.box(xs.min(), ys.min(), xs.max(), ys.max())
        return self._select(kind, lambda k: self._tree(k).query(box, predicate="intersects"))

    def within_radius(
        self,
        xy: tuple[float, float],
        radius_m: float,
        *,
        kind: str | Iterable[str] | None = None,
        crs: str = WGS84,
    ) -> gpd.GeoDataFrame:
        """Assets within ``radius_m`` metres of a point (lon, lat by default), nearest first."""
        if radius_m < 0:
            msg = f"radius_m: must be >= 0, got {radius_m}"
            raise InputValidationError(msg)
        pt = self._point(xy, crs)
        out = self._select(
            kind, lambda k: self._tree(k).query(pt, predicate="dwithin", distance=radius_m)
        )
        out["distance_m"] = out.geometry.distance(pt)
        return out.sort_values("distance_m")

    def nearest(
        self, xy: tuple[float, float], *, kind: str, k: int = 1, crs: str = WGS84
    ) -> gpd.GeoDataFrame:
        """The ``k`` assets of one type nearest to a point, nearest first, with ``distance_m``."""
        table = self[kind]
        if len(table) == 0:
            return table.assign(distance_m=pd.Series(dtype=float))
        pt = self._point(xy, crs)
        if k == 1:
            idx = self._tree(kind).nearest(pt)
            out = table.iloc[[int(idx)]].copy()
        else:
            dist = table.geometry.distance(pt).to_numpy()
            order = np.argsort(dist, kind="stable")[:k]
            out = table.iloc[order].copy()
        out["distance_m"] = out.geometry.distance(pt)
        return out

    def _select(self, kind: str | Iterable[str] | None, query: Any) -> gpd.GeoDataFrame:
        parts = []
        for k in self._kinds(kind):
            if len(self._tables[k]) == 0:
                continue
            idx = np.sort(np.asarray(query(k)).ravel())
            sel = self._tables[k].iloc[idx][["geometry"]].copy()
            sel.insert(0, "kind", k)
            parts.append(sel)
        if not parts:
            crs = geo_crs(self._crs)
            return gpd.GeoDataFrame({"kind": []}, geometry=gpd.GeoSeries([], crs=crs))
        return gpd.GeoDataFrame(pd.concat(parts), geometry="geometry", crs=geo_crs(self._crs))

    # -- relations --------------------------------------------------------------------------------
    def related(self, asset_id: str, kind: str) -> list[str]:
        """Ids of assets of type ``kind`` related to ``asset_id``, following relations either way.

        ``related("light:000001", "cabinet")`` gives the light's cabinet;
        ``related("cabinet:3", "light")`` gives the cabinet's lights;
        ``related("junction:4", "sensor")`` goes through the junction's approaches.
        """
        src = self.kind_of(asset_id)
        self.get(asset_id)  # raises on unknown ids
        self[kind]
        forward = [c for (k, c), tgt in RELATIONS.items() if k == src and tgt == kind]
        if forward:
            row = self._tables[src].loc[asset_id]
            return [str(row[c]) for c in forward if not _isna(row[c])]
        backward = [c for (k, c), tgt in RELATIONS.items() if k == kind and tgt == src]
        if backward:
            table = self._tables[kind]
            mask = np.zeros(len(table), dtype=bool)
            for c in backward:
                mask |= (table[c] == asset_id).to_numpy()
            ids: list[str] = table.index[mask].tolist()
            return ids
        # one hop through an intermediate type (junction -> approach -> sensor, ...)
        mids = [k for (k, _), tgt in RELATIONS.items() if tgt == src]
        for mid in mids:
            if any(k == kind and tgt == mid for (k, _), tgt in RELATIONS.items()):
                out: list[str] = []
                for m in self.related(asset_id, mid):
                    out.extend(self.related(m, kind))
                return out
        msg = f"no relation between {src} and {kind}"
        raise InputValidationError(msg)


def _isna(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return bool(np.isnan(value))
    return False
