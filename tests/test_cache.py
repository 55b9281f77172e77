"""The build cache: exact round trips, checks before parsing, locks, read-only folders, PBF copies.

The round trip is checked on every shipped city that the shared data holds, built here (not read
from a cache): graph nodes, edges, attributes and their order; every registry table, dtypes, index,
column labels and CRS included; the metadata; the traffic counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import twin
from twin import _codec, _files, cache
from twin.build import build
from twin.cities import get_city
from twin.registry import Registry

REPO = Path(__file__).resolve().parents[1]
KEY = "0123456789abcdef01234567"
CITIES = ["bondy", "paris-trocadero", "saint-germain-en-laye", "montpellier"]


# ------------------------------------------------------------------------------------------------
# exact equality: types, order, bits


def assert_same(a: Any, b: Any, where: str = "payload") -> None:
    """Fail unless ``b`` is ``a`` rebuilt exactly (types, dtypes, order, NaNs, geometries)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, nx.Graph):
        _same_graph(a, b, where)
    elif isinstance(a, pd.DataFrame):
        _same_frame(a, b, where)
    elif isinstance(a, Registry):
        assert_same(a.__getstate__(), b.__getstate__(), f"{where}.state")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, set | frozenset):
        assert a == b, where
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        ), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape}"
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                assert_same(x, y, f"{where}.flat[{i}]")
        else:
            assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, shapely.Geometry):
        assert shapely.to_wkb(a, output_dimension=4) == shapely.to_wkb(b, output_dimension=4), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _same_graph(a: nx.Graph, b: nx.Graph, where: str) -> None:
    assert_same(a.graph, b.graph, f"{where}.graph")
    assert list(a.nodes) == list(b.nodes), f"{where}: node order"
    for n in a:
        assert_same(a.nodes[n], b.nodes[n], f"{where}.nodes[{n!r}]")
    ea = list(a.edges(keys=True) if a.is_multigraph() else a.edges())
    eb = list(b.edges(keys=True) if b.is_multigraph() else b.edges())
    assert ea == eb, f"{where}: edge order"
    for e in ea:
        assert_same(a.edges[e], b.edges[e], f"{where}.edges[{e!r}]")
    for n in a:
        assert list(a.adj[n]) == list(b.adj[n]), f"{where}: neighbours of {n!r}"
        if a.is_directed():
            assert list(a.pred[n]) == list(b.pred[n]), f"{where}: predecessors of {n!r}"


def _same_frame(a: pd.DataFrame, b: pd.DataFrame, where: str) -> None:
    pd.testing.assert_frame_equal(
        a, b, check_exact=True, check_index_type=True, check_column_type=True, obj=where
    )
    assert list(a.dtypes) == list(b.dtypes), where
    assert a.index.dtype == b.index.dtype and a.columns.dtype == b.columns.dtype, where
    assert_same(a.attrs, b.attrs, f"{where}.attrs")
    if isinstance(a, gpd.GeoDataFrame):
        assert a.active_geometry_name == b.active_geometry_name, where
    for i, dtype in enumerate(a.dtypes):
        col_a, col_b = a.iloc[:, i], b.iloc[:, i]
        # object columns: cell types too (None is not NaN, a list is not a tuple)
        if isinstance(dtype, np.dtype) and dtype.hasobject:
            for j, (x, y) in enumerate(zip(col_a, col_b, strict=True)):
                assert_same(x, y, f"{where}[{a.columns[i]!r}][{j}]")
        if isinstance(dtype, gpd.array.GeometryDtype):
            assert col_a.crs == col_b.crs, f"{where}[{a.columns[i]!r}].crs"
            assert_same(list(col_a), list(col_b), f"{where}[{a.columns[i]!r}]")


def _entry(root: Path, payload: dict[str, Any], key: str = KEY) -> Path:
    path = root / "twins" / f"test-{key}"
    assert cache.save_cache(path, payload, key=key)
    return path


# ------------------------------------------------------------------------------------------------
# round trips


@pytest.mark.parametrize("name", CITIES)
def test_round_trip_of_every_shipped_city_is_exact(data_root, tmp_path, name):
    payload = build(get_city(name), seed=2018, progress=False)
    path = _entry(tmp_path, payload)
    back = cache.load_cache(path, key=KEY)
    assert back is not None
    assert list(back) == list(payload)
    assert_same(payload, back)
    # a registry table opens as GeoParquet, as it is
    light = gpd.read_parquet(path / "registry" / "_tables" / "light.parquet")
    assert len(light) == len(payload["registry"]["light"]) and light.crs == "EPSG:2154"
    assert {p.suffix for p in path.rglob("*") if p.is_file()} <= {".json", ".parquet"}


def _odd_frame() -> pd.DataFrame:
    idx = pd.MultiIndex.from_tuples([("a", 1), ("b", 2), ("c", 3)], names=["k", None])
    frame = pd.DataFrame(
        {
            "f": [1.5, float("nan"), -0.0],
            "i": np.array([1, -2, 3], dtype="int32"),
            "u8": np.array([0, 255, 7], dtype="uint8"),
            "b": [True, False, True],
            "s": pd.array(["x", None, "z"], dtype="str"),
            "o": pd.Series(["x", None, float("nan")], dtype=object),
            "mixed": pd.Series([[1, "a"], (2.0,), {"n": None, 3: {4}}], dtype=object),
            "cat": pd.Categorical(["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "t": pd.to_datetime(["2026-01-01 00:00", None, "2026-03-27 02:30"]).tz_localize("UTC"),
            "naive": pd.to_datetime(["2026-01-01", None, "2026-03-27"]).as_unit("s"),
            ("tuple", "label"): [np.float32(1), np.int64(2), np.bool_(True)],
        },
        index=idx,
    )
    frame.attrs = {"units": {"f": "m"}, "when": dt.date(2026, 1, 1)}
    return frame


def test_generic_table_round_trip_keeps_every_dtype_and_cell(tmp_path):
    frame = _odd_frame()
    geo = gpd.GeoDataFrame(
        {"v": [1, 2], "other": gpd.GeoSeries([shapely.Point(0, 0, 5), None], crs="EPSG:4326")},
        geometry=gpd.GeoSeries(
            [shapely.LineString([(0, 0), (1, 1)]), shapely.Polygon([(0, 0), (1, 0), (0, 1)])],
            crs="EPSG:2154",
        ),
        index=pd.Index(["x:1", "x:2"], dtype=object, name="id"),
    )
    empty = pd.DataFrame({"a": pd.Series([], dtype=float)}, index=pd.RangeIndex(5, 5, name="r"))
    for part, table in {"odd": frame, "geo": geo, "empty": empty}.items():
        back = _codec.frame_from_parquet(_codec.frame_to_parquet(table, part=part), part=part)
        assert_same(table, back, part)


def test_generic_graph_round_trip_keeps_attributes_and_order():
    g = nx.MultiDiGraph(crs="EPSG:2154", made={"by": ("test", 1)})
    g.add_node("z", kind="end")
    g.add_node((1, 2), x=1.0, tags=["a", "b"])
    g.add_node(3, x=np.float64(2.5), big=2**70, none=None)
    g.add_edge(3, "z", key="k", geometry=shapely.LineString([(0, 0), (1, 1)]), w=1.0)
    g.add_edge((1, 2), "z", w=float("nan"), osmid=[1, 2])
    g.add_edge((1, 2), "z", w=2.0, osmid=7, ring=shapely.LinearRing([(0, 0), (1, 0), (0, 1)]))
    g.add_edge("z", 3)
    g.add_edge(3, 3, loop=True)
    # predecessor order differs from the order edges are listed in
    g.remove_edge(3, "z")
    g.add_edge(3, "z", key="k", w=3)
    for cls in (nx.MultiDiGraph, nx.DiGraph, nx.MultiGraph, nx.Graph):
        h = cls(g)
        back = _codec.graph_from_parquet(*_codec.graph_to_parquet(h, part="g"), part="g")
        assert_same(h, back, cls.__name__)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.dates()
    | st.datetimes(timezones=st.just(dt.UTC) | st.none())
    | st.builds(np.float32, st.floats(width=32))
    | st.builds(np.int16, st.integers(-(2**15), 2**15 - 1))
    | st.builds(shapely.Point, st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4) | st.integers(), inner, max_size=4)
        | st.builds(lambda xs: np.array(xs, dtype="float64"), st.lists(st.floats(), max_size=4))
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, database=None)
@given(value=_values)
def test_tagged_json_round_trip_is_exact(value):
    text = _codec.dumps(value)
    json.loads(text)  # strict JSON: no NaN literals
    assert_same(value, _codec.loads(text))


def test_a_value_the_format_cannot_hold_is_not_cached_and_said(tmp_path, caplog):
    payload = {"meta": {"files": {"osm": object()}}, "counts_table": None}
    with caplog.at_level(logging.WARNING, logger="twin.cache"):
        assert not cache.save_cache(tmp_path / "twins" / "x-k", payload, key="k")
    assert "meta['files']['osm']: a builtins.object cannot be stored exactly" in caplog.text
    assert not (tmp_path / "twins" / "x-k").exists()


# ------------------------------------------------------------------------------------------------
# corrupt entries: every alteration is refused before use, in one line, never raised


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, data_root):
    """A valid entry of Bondy, and the payload it was written from."""
    payload = build(get_city("bondy"), seed=2018, progress=False)
    root = tmp_path_factory.mktemp("pristine")
    return _entry(root, payload), payload


def _files_of(entry: Path) -> list[str]:
    return sorted(p.relative_to(entry).as_posix() for p in entry.rglob("*") if p.is_file())


def _lie(manifest: dict[str, Any], how: str, draw: Any) -> None:
    """Make the manifest say something false, keeping it valid JSON."""
    parts = manifest["parts"]
    names = sorted(parts)
    if how == "sha":
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        if a == b:
            parts[a]["sha256"] = "0" * 64
        else:
            parts[a]["sha256"] = parts[b]["sha256"]
    elif how == "bytes":
        name = draw(st.sampled_from(names))
        parts[name]["bytes"] += draw(st.sampled_from([-1, 1, 1000]))
    elif how == "key":
        manifest["key"] = manifest["key"][::-1]
    elif how == "format":
        manifest["format"] = "metropolis-twin/cache/0"
    elif how == "drop":
        del parts[draw(st.sampled_from(names))]
    elif how == "add":
        parts["registry/_tables/extra.parquet"] = {"sha256": "1" * 64, "bytes": 1}
    elif how == "payload":  # registry tables swapped in the description
        registry = dict(manifest["payload"]["dict"])["registry"]
        tables = dict(registry["state"]["dict"])["_tables"]["dict"]
        (i, light), (j, segment) = [
            (i, t) for i, t in enumerate(tables) if t[0] in ("light", "segment")
        ]
        tables[i], tables[j] = [light[0], segment[1]], [segment[0], light[1]]
    elif how == "path":
        name = draw(st.sampled_from(names))
        parts["../" + name] = parts.pop(name)


_CORRUPTIONS = ["flip", "truncate", "delete", "swap", "extra", "lie", "lie-resealed", "swap-sealed"]


@pytest.mark.slow
@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), how=st.sampled_from(_CORRUPTIONS))
def test_every_corrupt_entry_is_refused_in_one_line(pristine, tmp_path, caplog, data, how):
    source, _ = pristine
    entry = Path(tempfile.mkdtemp(dir=tmp_path)) / source.name
    shutil.copytree(source, entry)
    names = _files_of(entry)
    draw = data.draw
    target_name = draw(st.sampled_from(names))
    target = entry / target_name
    raw = target.read_bytes()
    if how == "flip":  # distinct places: two flips of one byte could cancel out
        b = bytearray(raw)
        for at in draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8, unique=True)):
            b[at] ^= draw(st.integers(1, 255))
        target.write_bytes(bytes(b))
    elif how == "truncate":
        target.write_bytes(raw[: draw(st.integers(0, len(raw) - 1))])
    elif how == "delete":
        target.unlink()
    elif how == "swap":
        other = entry / draw(st.sampled_from([n for n in names if n != target_name]))
        other_raw = other.read_bytes()
        if other_raw == raw:
            other_raw += b"\0"
        target.write_bytes(other_raw)
        other.write_bytes(raw)
    elif how == "extra":
        (
            entry / draw(st.sampled_from(["stray.parquet", "registry/x.json", "graph/.hidden"]))
        ).write_bytes(draw(st.binary(max_size=64)))
    else:  # the manifest lies; "resealed" recomputes its own checksum, as a careful forger would
        manifest_path = entry / "manifest.json"
        manifest = json.loads(manifest_path.read_bytes())
        if how == "swap-sealed":  # two parts swapped, and the manifest made to agree
            a, b = draw(
                st.sampled_from(
                    [
                        ("registry/_tables/light.parquet", "registry/_tables/segment.parquet"),
                        ("graph/nodes.parquet", "graph/edges.parquet"),
                        ("meta.json", "counts_table.json"),
                    ]
                )
            )
            ra, rb = (entry / a).read_bytes(), (entry / b).read_bytes()
            (entry / a).write_bytes(rb)
            (entry / b).write_bytes(ra)
            parts = manifest["parts"]
            parts[a], parts[b] = parts[b], parts[a]
        else:
            _lie(
                manifest,
                draw(
                    st.sampled_from(
                        ["sha", "bytes", "key", "format", "drop", "add", "payload", "path"]
                    )
                ),
                draw,
            )
        if how != "lie":
            manifest["checksum"] = cache._checksum(manifest)
        manifest_path.write_bytes(cache._manifest_bytes(manifest))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="twin.cache"):
        got = cache.load_cache(entry, key=source.name.split("-")[-1])
    assert got is None, f"{how}: a corrupt entry was loaded"
    warnings = [r for r in caplog.records if r.name == "twin.cache"]
    assert len(warnings) == 1 and "unusable" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()


def test_pristine_entry_loads(pristine):
    source, payload = pristine
    assert_same(payload, cache.load_cache(source, key=source.name.split("-")[-1]))


def test_a_corrupt_entry_is_rebuilt_by_load_and_rewritten(data_root, tmp_path, caplog):
    with twin.set_options(cache=tmp_path / "cache"):
        built = twin.load("bondy", progress=False)
        (entry,) = (tmp_path / "cache" / "twins").iterdir()
        part = entry / "registry" / "_tables" / "light.parquet"
        raw = bytearray(part.read_bytes())
        raw[len(raw) // 2] ^= 0x40
        part.write_bytes(bytes(raw))
        stale = entry.with_name(f".{entry.name}.99999.dead.tmp")  # a writer that crashed
        stale.mkdir()
        with caplog.at_level(logging.WARNING, logger="twin.cache"):
            again = twin.load("bondy", progress=False)
        assert "loaded_from_cache_s" not in again.meta
        said = [r.getMessage() for r in caplog.records if r.name == "twin.cache"]
        assert len(said) == 1
        assert "light.parquet does not match its sha256); rebuilding" in said[0]
        assert not stale.exists()
        warm = twin.load("bondy", progress=False)
        assert "loaded_from_cache_s" in warm.meta
    for kind in built.registry.kinds:
        assert_same(built.registry[kind], warm.registry[kind], kind)
    meta = {k: v for k, v in warm.meta.items() if k != "loaded_from_cache_s"}
    assert_same(again.meta, meta)


# ------------------------------------------------------------------------------------------------
# the key


def test_key_covers_every_file_of_the_package(tmp_path):
    pkg = tmp_path / "twin"
    shutil.copytree(REPO / "twin", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    base = cache._code_version(pkg)
    assert base == cache._code_version(pkg)
    # modules outside the old hand-kept list, data files, new files: each changes the key
    for change in [
        lambda: (pkg / "timeutil.py").write_text((pkg / "timeutil.py").read_text() + "\n# x\n"),
        lambda: (pkg / "scenarios" / "demand.py").write_bytes(
            (pkg / "scenarios" / "demand.py").read_bytes() + b" "
        ),
        lambda: (pkg / "assets" / "catalogues" / "new.csv").write_text("a,b\n"),
    ]:
        before = cache._code_version(pkg)
        change()
        assert cache._code_version(pkg) != before
    # compiled bytecode and hidden files are not code
    now = cache._code_version(pkg)
    (pkg / "__pycache__").mkdir(exist_ok=True)
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"x")
    (pkg / ".x.swp").write_bytes(b"x")
    assert cache._code_version(pkg) == now


def test_key_follows_seed_definition_and_inputs(data_root, tmp_path):
    city = get_city("bondy")
    files = cache.input_files(city)
    key = cache.cache_key(city, files, 1)
    assert key == cache.cache_key(city, files, 1)
    assert key != cache.cache_key(city, files, 2)
    other = dataclasses.replace(city, defaults={**city.defaults, "depots": 2})
    assert key != cache.cache_key(other, files, 1)
    copy = tmp_path / "bondy.osm"
    copy.write_bytes(files["osm"].read_bytes() + b"\n")
    assert key != cache.cache_key(city, {**files, "osm": copy}, 1)


# ------------------------------------------------------------------------------------------------
# processes, locks, folders that cannot be written

_LOAD_CHILD = """
import json, sys, time, pathlib
import twin
go = pathlib.Path(sys.argv[2])
pathlib.Path(sys.argv[3]).touch()
while not go.exists():
    time.sleep(0.01)
tw = twin.load(sys.argv[1], progress=False)
print(json.dumps({"cached": "loaded_from_cache_s" in tw.meta, "counts": tw.counts()}))
"""


def _env(cache_dir: Path) -> dict[str, str]:
    return {**os.environ, "TWIN_CACHE": str(cache_dir), "TWIN_PROGRESS": "0"}


def _race(code: str, args: list[str], env: dict[str, str], tmp: Path, n: int) -> list[str]:
    """Run ``n`` processes that wait for one signal, then all start at once; their stdouts."""
    go = tmp / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, *args, str(go), str(tmp / f"ready{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    deadline = time.monotonic() + 120
    while not all((tmp / f"ready{i}").exists() for i in range(n)) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        assert "Traceback" not in err, err
        outs.append(out.strip().splitlines()[-1])
    return outs


@pytest.mark.slow
def test_processes_loading_one_city_build_it_once(data_root, tmp_path):
    cache_dir = tmp_path / "cache"
    outs = [json.loads(o) for o in _race(_LOAD_CHILD, ["bondy"], _env(cache_dir), tmp_path, 3)]
    assert sorted(o["cached"] for o in outs) == [False, True, True]
    assert all(o["counts"] == outs[0]["counts"] for o in outs)
    assert [p.name for p in (cache_dir / "twins").iterdir() if p.name.startswith(".")] == []


@contextlib.contextmanager
def _read_only(root: Path) -> Iterator[None]:
    """Make a folder tree read-only for this process: file modes, or immutable when root."""
    as_root = os.geteuid() == 0  # root writes through file modes; not through the immutable flag
    if as_root:
        subprocess.run(["chattr", "-R", "+i", str(root)], capture_output=True, check=False)
    else:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        try:
            (root / "probe").mkdir()
        except OSError:
            pass
        else:
            pytest.skip("no way to make a read-only folder on this machine")
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-R", "-i", str(root)], check=False)
        else:
            for p in [root, *root.rglob("*")]:
                p.chmod(0o755)


def test_read_only_cache_folder_is_used_and_never_fatal(data_root, tmp_path, caplog):
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    with twin.set_options(cache=full):
        built = twin.load("bondy", progress=False)
    _files._warned.clear()
    with _read_only(empty), _read_only(full), caplog.at_level(logging.WARNING):
        # nothing cached: built each time, said once, nothing written
        with twin.set_options(cache=empty):
            a = twin.load("bondy", progress=False)
            b = twin.load("bondy", progress=False)
        assert "loaded_from_cache_s" not in a.meta and "loaded_from_cache_s" not in b.meta
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and "cannot be written" in said[0] and str(empty) in said[0]
        assert list(empty.iterdir()) == []
        # a shared read-only cache: read as it is, and nothing to say
        caplog.clear()
        with twin.set_options(cache=full):
            warm = twin.load("bondy", progress=False)
        assert "loaded_from_cache_s" in warm.meta
        assert caplog.records == []
    assert a.counts() == built.counts() == warm.counts()


def test_a_cache_folder_that_cannot_be_made_warns_once(data_root, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    _files._warned.clear()
    with twin.set_options(cache=blocker / "cache"), caplog.at_level(logging.WARNING):
        a = twin.load("bondy", progress=False)
        b = twin.load("bondy", progress=False)
    assert a.counts() == b.counts()
    said = [r.getMessage() for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(said) == 1 and str(blocker / "cache") in said[0]


# ------------------------------------------------------------------------------------------------
# the PBF's XML copy


@pytest.fixture(scope="module")
def pbf(tmp_path_factory, data_root):
    """A PBF made from the shipped Bondy extract with pyosmium (no PBF is in the shared data)."""
    import osmium

    path = tmp_path_factory.mktemp("pbf") / "bondy.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    for obj in osmium.FileProcessor(str(data_root / "osm" / "bondy.osm")):
        writer.add(obj)
    writer.close()
    return path


def test_a_corrupt_xml_copy_is_converted_again_not_blamed_on_the_input(pbf, tmp_path, caplog):
    from twin.osm import read_extract

    with twin.set_options(cache=tmp_path / "cache"):
        first = read_extract(pbf)
        (copy,) = (tmp_path / "cache" / "pbf").glob("*.osm")
        for damage in (
            lambda b: b[: len(b) // 2],
            lambda b: b.replace(b'lat="48.9', b'lat="47.9', 1),
        ):
            copy.write_bytes(damage(copy.read_bytes()))
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                again = read_extract(pbf)
            assert "does not match its checksum; converting again" in caplog.text
            assert again.graph.number_of_edges() == first.graph.number_of_edges()
            assert (
                _files.sha256_file(copy)
                == copy.with_name(copy.name + ".sha256").read_text().strip()
            )


_PBF_CHILD = """
import json, sys, time, pathlib
from twin.osm import read_extract
go = pathlib.Path(sys.argv[2])
pathlib.Path(sys.argv[3]).touch()
while not go.exists():
    time.sleep(0.01)
ext = read_extract(pathlib.Path(sys.argv[1]))
print(json.dumps([ext.graph.number_of_edges(), len(ext.features)]))
"""


@pytest.mark.slow
def test_processes_reading_one_pbf_do_not_race(pbf, tmp_path):
    cache_dir = tmp_path / "cache"
    outs = _race(_PBF_CHILD, [str(pbf)], _env(cache_dir), tmp_path, 4)
    assert len(set(outs)) == 1
    assert sorted(p.name for p in (cache_dir / "pbf").iterdir()) == [
        p.name for p in sorted((cache_dir / "pbf").glob("bondy-*"))
    ]
    assert len(list((cache_dir / "pbf").iterdir())) == 2  # the copy and its checksum


# ------------------------------------------------------------------------------------------------
# corrupt inputs: our errors, never a traceback


@pytest.fixture(scope="module")
def small_municipal(tmp_path_factory, data_root):
    """About 1 km² of Montpellier's municipal files, cut from the real ones (quick to build)."""
    import zipfile

    from twin.crs import to_lambert93

    folder = tmp_path_factory.mktemp("montpellier-small")
    city = get_city("montpellier")
    x, y = to_lambert93(*city.centre)
    box = shapely.box(float(x) - 500, float(y) - 500, float(x) + 500, float(y) + 500)
    source: dict[str, Any] = {"kind": "municipal"}
    for role, spec in city.source.items():
        if not isinstance(spec, dict):
            continue
        src = data_root / spec["path"]
        out = folder / src.name
        if src.suffix == ".zip":
            layer = gpd.read_file(f"zip://{src}")
            layer = layer[layer.intersects(box)]
            shp = folder / role / f"{src.stem}.shp"
            shp.parent.mkdir()
            with warnings.catch_warnings():  # dates are written as text in a shapefile: fine here
                warnings.simplefilter("ignore", RuntimeWarning)
                layer.to_file(shp)
            with zipfile.ZipFile(out, "w") as zf:
                for part in sorted(shp.parent.iterdir()):
                    zf.write(part, part.name)
        elif src.suffix == ".geojson":
            doc = json.loads(src.read_bytes())
            doc["features"] = [
                f for f in doc["features"] if box.contains(shapely.geometry.shape(f["geometry"]))
            ]
            out.write_text(json.dumps(doc), encoding="utf-8")
        else:
            out.write_bytes(src.read_bytes())
        source[role] = {**spec, "path": str(out)}
    return dataclasses.replace(city, name="montpellier-small", source=source)


_MUTATIONS = st.sampled_from(["flip", "truncate", "insert", "cut"])


def _load_corrupt_input(source: Any, kind: str, how: str, draw: Any, tmp: Path) -> None:
    """Corrupt one input file of ``source`` (a City, or the path of an extract) and load it."""
    src = source if isinstance(source, Path) else Path(source.source[kind]["path"])
    raw = bytearray(src.read_bytes())
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    elif how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "insert":
        at = draw(st.integers(0, len(raw)))
        raw[at:at] = draw(st.binary(min_size=1, max_size=32))
    else:
        at = draw(st.integers(0, len(raw) - 1))
        del raw[at : at + draw(st.integers(1, 4096))]
    bad = Path(tempfile.mkdtemp(dir=tmp)) / src.name
    bad.write_bytes(bytes(raw))
    with twin.set_options(use_cache=False):
        try:
            if isinstance(source, Path):
                twin.load(osm=bad, progress=False)
            else:
                spec = {**source.source[kind], "path": str(bad)}
                city = dataclasses.replace(source, source={**source.source, kind: spec})
                twin.load(city, progress=False)
        except twin.TwinError as exc:  # anything else fails the test with its traceback
            msg = str(exc)
            assert bad.name in msg, f"the message does not name the file: {msg}"


_FUZZ = settings(
    max_examples=int(os.environ.get("TWIN_FUZZ_EXAMPLES", "30")),
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found: no slow shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore::RuntimeWarning", "ignore::UserWarning"
)  # GDAL, osmnx: not tracebacks
@pytest.mark.parametrize(
    "kind",
    [
        "osm",
        "graphml",
        "roads",
        "lights",
        "signals",
        "counts",
    ],
)
@_FUZZ
@given(data=st.data(), how=_MUTATIONS)
def test_corrupt_inputs_raise_our_errors(data_root, small_municipal, tmp_path, kind, data, how):
    extracts = {"osm": "osm/bondy.osm", "graphml": "osm/paris-trocadero.graphml"}
    source = data_root / extracts[kind] if kind in extracts else small_municipal
    _load_corrupt_input(source, kind, how, data.draw, tmp_path)


# ------------------------------------------------------------------------------------------------
# pruning: every change of the code makes new entries; the old ones do not pile up


def _entries(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "twins").iterdir() if not p.name.startswith("."))


def test_old_entries_are_pruned_keeping_the_most_recently_used_per_city(tmp_path):
    payload = {"meta": {"a": 1}, "counts_table": None}
    names = [f"paris-trocadero-{i:024x}" for i in range(5)] + [f"bondy-{i:024x}" for i in range(2)]
    now = time.time()
    for age, name in enumerate(names):
        assert cache.save_cache(tmp_path / "twins" / name, payload, key=name[-24:])
        os.utime(tmp_path / "twins" / name, (now - 3600 * (age + 1),) * 2)
    # the oldest Trocadéro entry was just read: it counts as used now
    assert cache.load_cache(tmp_path / "twins" / names[4], key=names[4][-24:]) == payload
    # another process holds the lock of an entry that would go: it stays
    with cache.entry_lock(tmp_path / "twins" / names[3]) as held:
        assert held
        removed = cache.prune(tmp_path, keep=3)
    assert sorted(p.name for p in removed) == [names[2]]
    assert _entries(tmp_path) == sorted([names[0], names[1], names[3], names[4], *names[5:]])
    # once free, it goes too; the other city's two entries are within the limit
    assert [p.name for p in cache.prune(tmp_path, keep=3)] == [names[3]]
    assert cache.prune(tmp_path, keep=3) == []


def test_a_new_entry_prunes_its_city_and_a_missing_folder_is_nothing_to_prune(data_root, tmp_path):
    assert cache.prune(tmp_path / "nowhere", keep=1) == []
    payload = {"meta": {"a": 1}, "counts_table": None}
    old = [f"bondy-{i:024x}" for i in range(cache.KEEP_PER_CITY + 2)]
    for age, name in enumerate(old):
        cache.save_cache(tmp_path / "twins" / name, payload, key=name[-24:])
        os.utime(tmp_path / "twins" / name, (time.time() - 3600 * (age + 1),) * 2)
    with twin.set_options(cache=tmp_path):
        twin.load("bondy", progress=False)
    kept = _entries(tmp_path)
    assert len(kept) == cache.KEEP_PER_CITY
    assert set(kept) - set(old)  # the new one is among them, with the most recent old ones
    assert set(kept) & set(old) == set(old[: cache.KEEP_PER_CITY - 1])
