"""Lossless encodings of a built twin that run no code when read: JSON, Parquet, graphs as tables.

The build cache (:mod:`twin.cache`) stores a twin with these, never with pickle: a cache folder can
be shared, and reading a pickle runs whatever it names. Every encoder is generic (it looks at the
values, not at a list of known columns), exact (a decoded value has the type, dtype, order and
bits of the encoded one) and refuses, with the path of the value, what it cannot store exactly.

Values (``meta``, graph attributes of mixed types, odd table cells) become *tagged JSON*: JSON's
own types stay as they are, and anything else becomes an object with the key ``"__twin__"`` naming
its type (tuple, set, numpy scalar or array, shapely geometry as WKB, date, path, bytes, a float
that JSON cannot hold, a dict whose keys are not strings).

>>> import numpy as np
>>> from_json(to_json({"n": 3, "pt": (1.5, float("nan")), "xy": np.arange(3.0)}))["pt"]
(1.5, nan)

Tables (pandas or geopandas) become Parquet files with one Arrow column per column: numeric and
boolean columns as themselves, strings as strings, geometries as WKB (with GeoParquet metadata, so
``geopandas.read_parquet`` opens a registry table as it is), and object columns of mixed types as
tagged JSON text. The dtypes, index, column labels and CRS are recorded in the file's metadata and
restored exactly.

Graphs (networkx) become two tables, nodes and edges, with one column per attribute (typed where
every value has one type, tagged JSON otherwise), the order of each node's attributes and the
order of each node's neighbours, so that the decoded graph iterates exactly as the built one.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path, PurePath
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj
import shapely

from ._errors import CacheEntryError, UnsupportedValueError

__all__ = [
    "TAG",
    "from_json",
    "frame_from_parquet",
    "frame_to_parquet",
    "graph_from_parquet",
    "graph_to_parquet",
    "to_json",
]

#: Key of a JSON object that stands for a value JSON has no type for.
TAG = "__twin__"
#: Schema-metadata key of our own description of a Parquet file.
_META_KEY = b"twin"
#: Geometry types whose WKB gives back the same shapely type (a LinearRing reads as a LineString).
_WKB_TYPES = (
    shapely.Point,
    shapely.LineString,
    shapely.Polygon,
    shapely.MultiPoint,
    shapely.MultiLineString,
    shapely.MultiPolygon,
    shapely.GeometryCollection,
)
_INT64 = (-(2**63), 2**63 - 1)
#: Coordinate dimensions written to WKB: x, y, z and m where shapely can write m (2.1 and later).
_WKB_DIMS = 4 if tuple(int(p) for p in shapely.__version__.split(".")[:2]) >= (2, 1) else 3
_COMPRESSION = "zstd"


# ------------------------------------------------------------------------------------------------
# tagged JSON


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        msg = f"expected base64 text, got {type(text).__name__}"
        raise CacheEntryError(msg)
    return base64.b64decode(text.encode("ascii"), validate=True)


def _plain_dtype(spec: Any) -> np.dtype[Any]:
    """A numpy dtype without Python objects in it, from its ``dtype.str``."""
    if not isinstance(spec, str):
        msg = f"expected a dtype string, got {type(spec).__name__}"
        raise CacheEntryError(msg)
    dtype = np.dtype(spec)
    if dtype.hasobject:
        msg = f"dtype {spec!r} holds Python objects"
        raise CacheEntryError(msg)
    return dtype


def to_json(value: Any, where: str = "value") -> Any:
    """Encode a value as tagged JSON (see the module docstring); exact and code-free.

    Parameters
    ----------
    value : Any
        None, bool, int, float, str, list, dict, tuple, set, numpy scalar or array, shapely
        geometry, date, datetime, path, bytes, or any nesting of them.
    where : str
        Name of the value, used in the error message.

    Raises
    ------
    UnsupportedValueError
        A value of another type; the message names where it is.

    >>> to_json({"a": [1, 2.5, None], "b": (1,)})
    {'a': [1, 2.5, None], 'b': {'__twin__': 'tuple', 'v': [1]}}
    """
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}
    if kind is list:
        return [to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind is dict:
        if TAG not in value and all(type(k) is str for k in value):
            return {k: to_json(v, f"{where}[{k!r}]") for k, v in value.items()}
        items = [
            [to_json(k, f"{where} key {k!r}"), to_json(v, f"{where}[{k!r}]")]
            for k, v in value.items()
        ]
        return {TAG: "dict", "items": items}
    if kind in (tuple, set, frozenset):
        elems = value if kind is tuple else sorted(value, key=repr)
        return {TAG: kind.__name__, "v": [to_json(v, f"{where}[{i}]") for i, v in enumerate(elems)]}
    if kind is np.ndarray:
        if value.dtype.hasobject:
            flat = [to_json(v, f"{where}[{i}]") for i, v in enumerate(value.ravel())]
            return {TAG: "ndarray", "dtype": "O", "shape": list(value.shape), "v": flat}
        raw = np.ascontiguousarray(value).tobytes()
        return {
            TAG: "ndarray",
            "dtype": value.dtype.str,
            "shape": list(value.shape),
            "b": _b64(raw),
        }
    if isinstance(value, np.generic) and not value.dtype.hasobject:
        return {TAG: "npscalar", "dtype": value.dtype.str, "b": _b64(value.tobytes())}
    if isinstance(value, shapely.Geometry):
        name = kind.__name__
        wkb = shapely.to_wkb(value, hex=True, output_dimension=_WKB_DIMS, include_srid=False)
        return {TAG: "geometry", "type": name, "wkb": wkb}
    if kind is dt.datetime:
        tz = value.tzinfo
        zone = getattr(tz, "key", None) if tz is not None else None
        return {TAG: "datetime", "v": value.isoformat(), "zone": zone}
    if kind is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if kind is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if kind is pd.Timestamp:
        zone = None if value.tz is None else str(value.tz)
        return {TAG: "timestamp", "v": value.isoformat(), "unit": value.unit, "zone": zone}
    if isinstance(value, PurePath):
        return {TAG: "path", "v": str(value)}
    if kind is bytes:
        return {TAG: "bytes", "b": _b64(value)}
    msg = f"{where}: a {kind.__module__}.{kind.__qualname__} cannot be stored exactly"
    raise UnsupportedValueError(msg)


def _list(obj: Any, what: str) -> list[Any]:
    if not isinstance(obj, list):
        msg = f"{what}: expected a list, got {type(obj).__name__}"
        raise CacheEntryError(msg)
    return obj


def _from_tagged(obj: dict[str, Any]) -> Any:
    tag = obj[TAG]
    if tag == "float":
        text = obj["v"]
        if text not in ("nan", "inf", "-inf"):
            msg = f"not a special float: {text!r}"
            raise CacheEntryError(msg)
        return float(text)
    if tag == "dict":
        return {from_json(k): from_json(v) for k, v in _list(obj["items"], "dict items")}
    if tag in ("tuple", "set", "frozenset"):
        elems = [from_json(v) for v in _list(obj["v"], tag)]
        return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](elems)
    if tag == "ndarray":
        shape = tuple(int(n) for n in _list(obj["shape"], "shape"))
        if obj["dtype"] == "O":
            arr = np.empty(len(obj["v"]), dtype=object)
            for i, v in enumerate(_list(obj["v"], "ndarray")):
                arr[i] = from_json(v)
            return arr.reshape(shape)
        dtype = _plain_dtype(obj["dtype"])
        return np.frombuffer(_unb64(obj["b"]), dtype=dtype).reshape(shape).copy()
    if tag == "npscalar":
        dtype = _plain_dtype(obj["dtype"])
        raw = _unb64(obj["b"])
        if len(raw) != dtype.itemsize:
            msg = f"numpy scalar of {dtype}: {len(raw)} bytes"
            raise CacheEntryError(msg)
        return np.frombuffer(raw, dtype=dtype)[0]
    if tag == "geometry":
        geom = shapely.from_wkb(obj["wkb"])
        if obj["type"] == "LinearRing":
            geom = shapely.LinearRing(geom.coords)
        if type(geom).__name__ != obj["type"]:
            msg = f"geometry: {type(geom).__name__} read where {obj['type']} was written"
            raise CacheEntryError(msg)
        return geom
    if tag == "datetime":
        value = dt.datetime.fromisoformat(obj["v"])
        if obj["zone"] is not None:
            from zoneinfo import ZoneInfo

            value = value.astimezone(ZoneInfo(obj["zone"]))
        return value
    if tag == "date":
        return dt.date.fromisoformat(obj["v"])
    if tag == "timedelta":
        days, seconds, micro = _list(obj["v"], "timedelta")
        return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    if tag == "timestamp":
        stamp = pd.Timestamp(obj["v"]).as_unit(obj["unit"])
        return stamp if obj["zone"] is None else stamp.tz_convert(obj["zone"])
    if tag == "path":
        return Path(obj["v"])
    if tag == "bytes":
        return _unb64(obj["b"])
    msg = f"unknown tag {tag!r}"
    raise CacheEntryError(msg)


def from_json(obj: Any) -> Any:
    """Decode tagged JSON written by :func:`to_json`.

    Raises
    ------
    CacheEntryError
        The JSON is not tagged JSON of this format (or KeyError/ValueError/TypeError from a
        malformed value; :mod:`twin.cache` treats every one of them as a corrupt entry).

    >>> from_json({"__twin__": "set", "v": [2, 1]})
    {1, 2}
    """
    if isinstance(obj, list):
        return [from_json(v) for v in obj]
    if isinstance(obj, dict):
        if TAG in obj:
            return _from_tagged(obj)
        return {k: from_json(v) for k, v in obj.items()}
    return obj


def dumps(value: Any, where: str = "value") -> str:
    """Tagged JSON text of a value (strict JSON: no NaN literals)."""
    return json.dumps(to_json(value, where), ensure_ascii=False, allow_nan=False)


def loads(text: str | bytes) -> Any:
    """Decode text written by :func:`dumps`."""
    return from_json(json.loads(text))


def _loads_many(texts: list[str | None]) -> list[Any]:
    """Decode a column of JSON texts (null cells as None) with one parse instead of one per cell."""
    if any(t is not None and not t.strip() for t in texts):
        msg = "an empty JSON cell"
        raise CacheEntryError(msg)
    values = json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]")
    if len(values) != len(texts):  # a cell held more than one value
        msg = "a JSON cell holds more than one value"
        raise CacheEntryError(msg)
    return [from_json(v) for v in values]


# ------------------------------------------------------------------------------------------------
# columns of values (graph attributes, node ids): typed when every value has one type


def _values_to_arrow(values: Sequence[Any], where: str) -> tuple[pa.Array, str]:
    """One Arrow column for a list of values; ``None`` is null. Returns the column and its codec."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values)), "null"
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is float:
            return pa.array(values, type=pa.float64()), "float"
        if kind is bool:
            return pa.array(values, type=pa.bool_()), "bool"
        if kind is str:
            return pa.array(values, type=pa.string()), "str"
        if kind is int and all(_INT64[0] <= v <= _INT64[1] for v in values if v is not None):
            return pa.array(values, type=pa.int64()), "int"
    if all(k in _WKB_TYPES for k in kinds):
        geoms = np.empty(len(values), dtype=object)
        geoms[:] = values
        return pa.array(shapely.to_wkb(geoms, output_dimension=_WKB_DIMS), type=pa.binary()), "wkb"
    text = [None if v is None else dumps(v, f"{where}[{i}]") for i, v in enumerate(values)]
    return pa.array(text, type=pa.string()), "json"


def _values_from_arrow(col: pa.ChunkedArray | pa.Array, codec: str) -> list[Any]:
    """The values of a column written by :func:`_values_to_arrow` (nulls as ``None``)."""
    if codec == "null":
        return [None] * len(col)
    if codec in ("float", "bool", "str", "int"):
        expected = {"float": pa.float64(), "bool": pa.bool_(), "str": pa.string()}
        if col.type != expected.get(codec, pa.int64()):
            msg = f"a {codec} column holds {col.type}"
            raise CacheEntryError(msg)
        values: list[Any] = col.to_pylist()
        return values
    raw = col.to_pylist()
    if codec == "wkb":
        geoms = shapely.from_wkb(np.array(raw, dtype=object))
        return list(geoms)
    if codec == "json":
        return _loads_many(raw)
    msg = f"unknown value codec {codec!r}"
    raise CacheEntryError(msg)


# ------------------------------------------------------------------------------------------------
# dtypes and table columns


def _dtype_to_json(dtype: Any, where: str) -> Any:
    if isinstance(dtype, np.dtype):
        return "O" if dtype.hasobject else dtype.str
    if isinstance(dtype, pd.StringDtype):
        na = "nan" if dtype.na_value is not pd.NA else "NA"
        return {"kind": "string", "storage": dtype.storage, "na": na}
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.name in _MASKED:
        return {"kind": "masked", "name": dtype.name}
    msg = f"{where}: dtype {dtype} cannot be stored exactly"
    raise UnsupportedValueError(msg)


def _dtype_from_json(spec: Any) -> Any:
    if spec == "O":
        return np.dtype(object)
    if isinstance(spec, str):
        return _plain_dtype(spec)
    if spec["kind"] == "string":
        na = np.nan if spec["na"] == "nan" else pd.NA
        return pd.StringDtype(storage=spec["storage"], na_value=na)
    if spec["kind"] == "masked" and spec["name"] in _MASKED:
        return pd.api.types.pandas_dtype(spec["name"])
    msg = f"unknown dtype {spec!r}"
    raise CacheEntryError(msg)


_MASKED = {
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
    "Float32", "Float64", "boolean",
}  # fmt: skip


def _column_to_arrow(values: pd.Series | pd.Index, where: str) -> tuple[pa.Array, dict[str, Any]]:
    """One Arrow column for a pandas column or index level, and how to read it back exactly."""
    dtype = values.dtype
    if isinstance(dtype, gpd.array.GeometryDtype):
        geoms = np.asarray(values.array, dtype=object)
        if not all(g is None or type(g) in _WKB_TYPES for g in geoms):
            msg = f"{where}: a geometry type that WKB does not give back"
            raise UnsupportedValueError(msg)
        crs = values.array.crs
        wkb = shapely.to_wkb(geoms, output_dimension=_WKB_DIMS)
        spec = {"codec": "wkb", "crs": None if crs is None else crs.srs}
        return pa.array(wkb, type=pa.binary()), spec
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        spec = {
            "codec": "categorical",
            "ordered": bool(dtype.ordered),
            "categories": to_json(list(cats), f"{where} categories"),
            "categories_dtype": _dtype_to_json(cats.dtype, f"{where} categories"),
        }
        codes = np.asarray(pd.Categorical(values).codes)
        return pa.array(codes), spec
    if isinstance(dtype, pd.DatetimeTZDtype):
        naive = pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None)
        spec = {"codec": "datetimetz", "unit": dtype.unit, "tz": str(dtype.tz)}
        return pa.array(naive.asi8), spec
    if isinstance(dtype, np.dtype):
        arr = np.asarray(values)
        if dtype.kind in "biuf":
            return pa.array(arr), {"codec": "numpy", "dtype": dtype.str}
        if dtype.kind in "mM":
            return pa.array(arr.view("i8")), {"codec": "numpy-i8", "dtype": dtype.str}
        if dtype.kind == "O":
            cells = list(arr)
            if all(v is None or type(v) is str for v in cells):
                return pa.array(cells, type=pa.string()), {"codec": "str-object"}
            text = [dumps(v, f"{where}[{i}]") for i, v in enumerate(cells)]
            return pa.array(text, type=pa.string()), {"codec": "json-object"}
    if isinstance(dtype, pd.StringDtype):
        cells = [None if pd.isna(v) else v for v in values]
        return pa.array(cells, type=pa.string()), {
            "codec": "string",
            "dtype": _dtype_to_json(dtype, where),
        }
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.name in _MASKED:
        cells = [None if v is pd.NA else v for v in values]
        return pa.array(cells), {"codec": "masked", "dtype": _dtype_to_json(dtype, where)}
    msg = f"{where}: dtype {dtype} cannot be stored exactly"
    raise UnsupportedValueError(msg)


def _column_from_arrow(col: pa.ChunkedArray, spec: dict[str, Any]) -> Any:
    """Array-like (numpy array or pandas extension array) of a column written above."""
    codec = spec["codec"]
    if codec == "numpy":
        dtype = _plain_dtype(spec["dtype"])
        if col.null_count:
            msg = "a numpy column holds nulls"
            raise CacheEntryError(msg)
        return np.asarray(col.to_numpy()).astype(dtype, copy=False)
    if codec == "numpy-i8":
        dtype = _plain_dtype(spec["dtype"])
        return np.asarray(col.to_numpy(), dtype="i8").view(dtype)
    if codec == "str-object":
        if col.type != pa.string():
            msg = f"a string column holds {col.type}"
            raise CacheEntryError(msg)
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=object)
    if codec == "json-object":
        out = np.empty(len(col), dtype=object)
        for i, value in enumerate(_loads_many(col.to_pylist())):
            out[i] = value
        return out
    if codec in ("string", "masked"):
        return pd.array(col.to_pylist(), dtype=_dtype_from_json(spec["dtype"]))
    if codec == "wkb":
        crs = None if spec["crs"] is None else pyproj.CRS.from_user_input(spec["crs"])
        geoms = shapely.from_wkb(np.array(col.to_pylist(), dtype=object))
        return gpd.array.from_shapely(geoms, crs=crs)
    if codec == "categorical":
        cats = pd.Index(
            from_json(spec["categories"]), dtype=_dtype_from_json(spec["categories_dtype"])
        )
        categorical = pd.CategoricalDtype(cats, ordered=bool(spec["ordered"]))
        codes = np.asarray(col.to_numpy(), dtype=np.int64)
        return pd.Categorical.from_codes(codes, dtype=categorical)
    if codec == "datetimetz":
        naive = np.asarray(col.to_numpy(), dtype="i8").view(f"M8[{spec['unit']}]")
        return pd.DatetimeIndex(naive).tz_localize("UTC").tz_convert(spec["tz"]).array
    msg = f"unknown column codec {codec!r}"
    raise CacheEntryError(msg)


# ------------------------------------------------------------------------------------------------
# tables


def _field_names(labels: Iterable[Hashable], reserved: set[str]) -> list[str]:
    """Arrow field names: the label itself where it is a fresh string, else a positional name."""
    names: list[str] = []
    taken = set(reserved)
    for i, label in enumerate(labels):
        name = label if isinstance(label, str) and not label.startswith("__") else ""
        if not name or name in taken:
            name = f"__column_{i}__"
        names.append(name)
        taken.add(name)
    return names


def _index_to_json(index: pd.Index, where: str) -> tuple[dict[str, Any], list[pa.Array]]:
    if type(index) is pd.RangeIndex:
        spec = {
            "kind": "range",
            "start": index.start,
            "stop": index.stop,
            "step": index.step,
            "name": to_json(index.name, f"{where} name"),
        }
        return spec, []
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    specs, arrays = [], []
    for i, level in enumerate(levels):
        arr, spec = _column_to_arrow(level, f"{where} level {i}")
        specs.append(spec)
        arrays.append(arr)
    kind = "multi" if isinstance(index, pd.MultiIndex) else "index"
    names = to_json(list(index.names), f"{where} names")
    return {"kind": kind, "levels": specs, "names": names}, arrays


def _index_from_json(spec: dict[str, Any], arrays: list[pa.ChunkedArray]) -> pd.Index:
    if spec["kind"] == "range":
        return pd.RangeIndex(
            spec["start"], spec["stop"], spec["step"], name=from_json(spec["name"])
        )
    names = from_json(spec["names"])
    levels = []
    for lev_spec, arr, name in zip(spec["levels"], arrays, names, strict=True):
        values = _column_from_arrow(arr, lev_spec)
        dtype = values.dtype if not isinstance(values, np.ndarray) else values.dtype
        levels.append(pd.Index(values, dtype=dtype, name=name, copy=False))
    if spec["kind"] == "multi":
        multi: pd.Index = pd.MultiIndex.from_arrays(levels, names=names)
        return multi
    if len(levels) != 1:
        msg = f"an index of {len(levels)} levels"
        raise CacheEntryError(msg)
    single: pd.Index = levels[0]
    return single


def _geo_metadata(frame: pd.DataFrame, fields: dict[str, str]) -> dict[str, Any] | None:
    """GeoParquet 1.0 metadata, so that geopandas (or QGIS) opens the file as it is."""
    primary = frame.active_geometry_name if isinstance(frame, gpd.GeoDataFrame) else None
    if primary is None or primary not in fields:
        return None
    columns: dict[str, Any] = {}
    for label, field in fields.items():
        if isinstance(frame[label].dtype, gpd.array.GeometryDtype):
            crs = frame[label].crs
            columns[field] = {
                "encoding": "WKB",
                "geometry_types": [],
                "crs": None if crs is None else crs.to_json_dict(),
            }
    return {"version": "1.0.0", "primary_column": fields[primary], "columns": columns}


def frame_to_parquet(frame: pd.DataFrame, *, part: str) -> bytes:
    """Encode a DataFrame or GeoDataFrame as Parquet bytes, exactly (see the module docstring).

    Parameters
    ----------
    frame : DataFrame or GeoDataFrame
        Any table; each column's dtype must be numeric, boolean, datetime, object (of any
        values :func:`to_json` stores), string, categorical, nullable, or geometry.
    part : str
        The name of the part it is written to, stored inside so that a swapped file is told.

    Raises
    ------
    UnsupportedValueError
        A dtype or a cell that cannot be stored exactly; the message names the column.
    """
    if frame.columns.has_duplicates:
        msg = f"{part}: duplicate column labels"
        raise UnsupportedValueError(msg)
    index_spec, index_arrays = _index_to_json(frame.index, f"{part} index")
    labels = list(frame.columns)
    index_fields = [f"__index_level_{i}__" for i in range(len(index_arrays))]
    fields = _field_names(labels, set(index_fields))
    arrays, specs = [], []
    for label, field in zip(labels, fields, strict=True):
        arr, spec = _column_to_arrow(frame[label], f"{part} column {label!r}")
        spec["field"] = field
        arrays.append(arr)
        specs.append(spec)
    cols = frame.columns
    description = {
        "part": part,
        "class": "GeoDataFrame" if isinstance(frame, gpd.GeoDataFrame) else "DataFrame",
        "geometry": frame.active_geometry_name if isinstance(frame, gpd.GeoDataFrame) else None,
        "labels": to_json(labels, f"{part} column labels"),
        "labels_dtype": _dtype_to_json(cols.dtype, f"{part} column labels"),
        "labels_name": to_json(cols.name, f"{part} column labels name"),
        "labels_range": isinstance(cols, pd.RangeIndex),
        "columns": specs,
        "index": index_spec,
        "attrs": to_json(frame.attrs, f"{part} attrs"),
    }
    metadata = {_META_KEY: json.dumps(description, allow_nan=False).encode()}
    geo = _geo_metadata(frame, dict(zip(labels, fields, strict=True)))
    if geo is not None:
        metadata[b"geo"] = json.dumps(geo).encode()
    table = pa.Table.from_arrays(
        [*index_arrays, *arrays], names=[*index_fields, *fields], metadata=metadata
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=_COMPRESSION)
    return bytes(sink.getvalue().to_pybytes())


def _read_table(data: bytes, part: str) -> tuple[pa.Table, dict[str, Any]]:
    # ParquetFile, not read_table: the datasets layer costs half a second on first use. Decoded
    # in this thread: Arrow's worker threads, torn down at interpreter exit while still alive,
    # sometimes abort the process ("terminate called without an active exception", seen in a
    # test of processes racing for one entry; apache/arrow#34314), and these parts are small.
    table = pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        msg = f"{part}: no description in the file"
        raise CacheEntryError(msg)
    description = json.loads(raw)
    if description.get("part") != part:
        msg = f"{part}: the file holds part {description.get('part')!r}"
        raise CacheEntryError(msg)
    return table, description


def frame_from_parquet(data: bytes, *, part: str) -> pd.DataFrame:
    """Decode a table written by :func:`frame_to_parquet` (raises on anything else)."""
    table, d = _read_table(data, part)
    index_arrays = [
        table.column(f"__index_level_{i}__") for i in range(len(d["index"].get("levels", [])))
    ]
    index = _index_from_json(d["index"], index_arrays)
    columns: dict[int, pd.Series] = {}
    for i, spec in enumerate(d["columns"]):
        values = _column_from_arrow(table.column(spec["field"]), spec)
        # the dtype given, or pandas would make strings of an object column of strings
        columns[i] = pd.Series(values, index=index, dtype=values.dtype, copy=False)
    frame = pd.DataFrame(columns, index=index, copy=False)
    labels = from_json(d["labels"])
    if d["labels_range"]:
        frame.columns = pd.RangeIndex(len(labels), name=from_json(d["labels_name"]))
    else:
        dtype = _dtype_from_json(d["labels_dtype"])
        frame.columns = pd.Index(labels, dtype=dtype, name=from_json(d["labels_name"]))
    frame.attrs = from_json(d["attrs"])
    if d["class"] == "GeoDataFrame":
        geo = (
            gpd.GeoDataFrame(frame, geometry=d["geometry"])
            if d["geometry"]
            else gpd.GeoDataFrame(frame)
        )
        geo.attrs = frame.attrs
        frame = geo
    return frame


# ------------------------------------------------------------------------------------------------
# graphs

_GRAPH_CLASSES: dict[str, type[nx.Graph]] = {
    "Graph": nx.Graph,
    "DiGraph": nx.DiGraph,
    "MultiGraph": nx.MultiGraph,
    "MultiDiGraph": nx.MultiDiGraph,
}


def _attr_columns(
    dicts: Sequence[dict[Any, Any]], where: str, reserved: set[str]
) -> tuple[list[pa.Array], list[str], list[dict[str, Any]], pa.Array, list[list[int]]]:
    """Attribute dicts as columns, with each dict's key order as an index into ``patterns``."""
    keys: dict[Any, int] = {}
    patterns: dict[tuple[int, ...], int] = {}
    row_pattern = np.empty(len(dicts), dtype=np.int32)
    for i, d in enumerate(dicts):
        order = tuple(keys.setdefault(k, len(keys)) for k in d)
        row_pattern[i] = patterns.setdefault(order, len(patterns))
    labels = list(keys)
    fields = _field_names(labels, reserved)
    arrays, specs = [], []
    for label, field in zip(labels, fields, strict=True):
        arr, codec = _values_to_arrow([d.get(label) for d in dicts], f"{where} {label!r}")
        arrays.append(arr)
        specs.append({"key": to_json(label, f"{where} key"), "field": field, "codec": codec})
    return arrays, fields, specs, pa.array(row_pattern), [list(p) for p in patterns]


def _attr_dicts(table: pa.Table, d: dict[str, Any]) -> list[dict[Any, Any]]:
    keys = [from_json(s["key"]) for s in d["attrs"]]
    cols = [_values_from_arrow(table.column(s["field"]), s["codec"]) for s in d["attrs"]]
    rows = table.column("__keys__").to_pylist()
    if len(d["patterns"]) == 1 and d["patterns"][0]:  # every dict has the same keys, in order
        order = d["patterns"][0]
        names = [keys[j] for j in order]
        columns = [cols[j] for j in order]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    patterns = [[(keys[j], cols[j]) for j in p] for p in d["patterns"]]
    return [{k: col[i] for k, col in patterns[p]} for i, p in enumerate(rows)]


def graph_to_parquet(graph: nx.Graph, *, part: str) -> tuple[bytes, bytes]:
    """Encode a networkx graph as two Parquet tables, nodes and edges, exactly.

    Node and edge attributes may be of any type :func:`to_json` stores; a column is typed
    (float, int, bool, str, WKB geometry) where all its values share one type. The order of the
    nodes, of the edges, of each dict's keys and of each node's neighbours (successors and
    predecessors) is kept.

    Returns
    -------
    (bytes, bytes)
        The nodes table (with the graph's own attributes) and the edges table.
    """
    cls = type(graph).__name__
    if type(graph) not in _GRAPH_CLASSES.values():
        msg = f"{part}: a {cls} cannot be stored (Graph, DiGraph, MultiGraph, MultiDiGraph)"
        raise UnsupportedValueError(msg)
    multi = graph.is_multigraph()
    nodes = list(graph.nodes(data=True))
    node_ids = [n for n, _ in nodes]
    node_arrow, node_codec = _values_to_arrow(node_ids, f"{part} node ids")
    arrays, fields, specs, pattern, patterns = _attr_columns(
        [d for _, d in nodes], f"{part} node attribute", {"__node__", "__keys__"}
    )
    description = {
        "part": f"{part}/nodes",
        "class": cls,
        "graph": to_json(graph.graph, f"{part} graph attributes"),
        "node_codec": node_codec,
        "attrs": specs,
        "patterns": patterns,
    }
    nodes_table = pa.Table.from_arrays(
        [node_arrow, pattern, *arrays],
        names=["__node__", "__keys__", *fields],
        metadata={_META_KEY: json.dumps(description, allow_nan=False).encode()},
    )

    edges = list(graph.edges(keys=True, data=True) if multi else graph.edges(data=True))
    succ = {u: {v: i for i, v in enumerate(nbrs)} for u, nbrs in graph.adj.items()}
    pred_view = graph.pred if isinstance(graph, nx.DiGraph) else graph.adj
    pred = {v: {u: i for i, u in enumerate(nbrs)} for v, nbrs in pred_view.items()}
    us = [e[0] for e in edges]
    vs = [e[1] for e in edges]
    u_arrow, u_codec = _values_to_arrow(us, f"{part} edge sources")
    v_arrow, v_codec = _values_to_arrow(vs, f"{part} edge targets")
    rank_u = pa.array([succ[u][v] for u, v in zip(us, vs, strict=True)], type=pa.int64())
    rank_v = pa.array([pred[v][u] for u, v in zip(us, vs, strict=True)], type=pa.int64())
    reserved = {"__u__", "__v__", "__key__", "__rank_u__", "__rank_v__", "__keys__"}
    arrays, fields, specs, pattern, patterns = _attr_columns(
        [e[-1] for e in edges], f"{part} edge attribute", reserved
    )
    columns = [u_arrow, v_arrow, rank_u, rank_v, pattern, *arrays]
    names = ["__u__", "__v__", "__rank_u__", "__rank_v__", "__keys__", *fields]
    key_codec = None
    if multi:
        key_arrow, key_codec = _values_to_arrow([e[2] for e in edges], f"{part} edge keys")
        columns.insert(2, key_arrow)
        names.insert(2, "__key__")
    description = {
        "part": f"{part}/edges",
        "codecs": {"u": u_codec, "v": v_codec, "key": key_codec},
        "attrs": specs,
        "patterns": patterns,
    }
    geo = None
    crs = graph.graph.get("crs")
    for spec in specs:
        if spec["field"] == "geometry" and spec["codec"] == "wkb" and isinstance(crs, str):
            col = {"encoding": "WKB", "geometry_types": [], "crs": _projjson(crs)}
            geo = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": col}}
    metadata = {_META_KEY: json.dumps(description, allow_nan=False).encode()}
    if geo is not None:
        metadata[b"geo"] = json.dumps(geo).encode()
    edges_table = pa.Table.from_arrays(columns, names=names, metadata=metadata)
    out = []
    for table in (nodes_table, edges_table):
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=_COMPRESSION)
        out.append(bytes(sink.getvalue().to_pybytes()))
    return out[0], out[1]


def _projjson(crs: str) -> Any:
    try:
        return pyproj.CRS.from_user_input(crs).to_json_dict()
    except pyproj.exceptions.CRSError:
        return None


def _assemble(
    graph: nx.Graph,
    nodes: dict[Any, dict[Any, Any]],
    edges: Iterable[tuple[Any, Any, Any, dict[Any, Any], int, int]],
) -> None:
    """Fill an empty graph's dicts with its nodes and edges, each neighbour dict in its order.

    This is the state ``add_nodes_from``/``add_edges_from`` would leave (networkx keeps nodes,
    neighbours and keys in dicts, in insertion order), made directly: several times faster, and
    the order of every neighbour dict (successors and predecessors) is the recorded one.
    ``edges`` gives (u, v, key, data, rank of v among u's neighbours, rank of u among v's
    predecessors, or neighbours in an undirected graph).
    """
    directed, multi = graph.is_directed(), graph.is_multigraph()
    shared: dict[tuple[Any, Any], Any] = {}  # (u, v) -> the key dict, or the data dict
    out_rank: dict[Any, dict[Any, int]] = {n: {} for n in nodes}
    in_rank: dict[Any, dict[Any, int]] = {n: {} for n in nodes} if directed else out_rank
    for u, v, key, data, rank_u, rank_v in edges:
        held = shared.get((u, v))
        if held is None:
            held = {} if multi else data
            shared[(u, v)] = held
            if not directed:
                shared[(v, u)] = held
        elif not multi:
            msg = f"edge {(u, v)!r} is listed twice"
            raise CacheEntryError(msg)
        if multi:
            held[key] = data
        out_rank[u][v] = rank_u
        in_rank[v][u] = rank_v

    def ordered(ranks: dict[Any, int]) -> list[Any]:
        return sorted(ranks, key=ranks.__getitem__)

    graph._node.update(nodes)
    graph._adj.update({n: {m: shared[(n, m)] for m in ordered(out_rank[n])} for n in nodes})
    if directed:
        graph._pred.update({n: {m: shared[(m, n)] for m in ordered(in_rank[n])} for n in nodes})


def graph_from_parquet(nodes: bytes, edges: bytes, *, part: str) -> nx.Graph:
    """Decode a graph written by :func:`graph_to_parquet` (raises on anything else)."""
    nt, nd = _read_table(nodes, f"{part}/nodes")
    et, ed = _read_table(edges, f"{part}/edges")
    graph = _GRAPH_CLASSES[nd["class"]]()
    graph.graph.update(from_json(nd["graph"]))
    node_ids = _values_from_arrow(nt.column("__node__"), nd["node_codec"])
    node_data = dict(zip(node_ids, _attr_dicts(nt, nd), strict=True))
    if len(node_data) != len(node_ids):
        msg = f"{part}: a node is listed twice"
        raise CacheEntryError(msg)
    codecs = ed["codecs"]
    us = _values_from_arrow(et.column("__u__"), codecs["u"])
    vs = _values_from_arrow(et.column("__v__"), codecs["v"])
    missing = (set(us) | set(vs)) - node_data.keys()
    if missing:
        msg = f"{part}: edges name {len(missing)} node(s) the graph does not hold"
        raise CacheEntryError(msg)
    if graph.is_multigraph():
        keys = _values_from_arrow(et.column("__key__"), codecs["key"])
    else:
        keys = [None] * len(us)
    rows = zip(
        us,
        vs,
        keys,
        _attr_dicts(et, ed),
        et.column("__rank_u__").to_pylist(),
        et.column("__rank_v__").to_pylist(),
        strict=True,
    )
    _assemble(graph, node_data, rows)
    return graph


def safe_part_name(name: str) -> bool:
    """Whether a part name is a plain relative path inside an entry (no ``..``, no absolute path).

    >>> safe_part_name("registry/light.parquet"), safe_part_name("../x"), safe_part_name("/etc")
    (True, False, False)
    """
    parts = name.split("/")
    return (
        all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*", p) for p in parts) and ".." not in parts
    )
