"""The build cache: which files a city is built from, the cache key, and reading and writing.

A built twin is stored as one folder per entry, ``<cache>/twins/<city>-<key>/``::

    manifest.json               format, key, and the sha256 and size of every other file
    graph/nodes.parquet         the street graph: nodes, then edges, every attribute kept
    graph/edges.parquet
    registry/_tables/<kind>.parquet   one GeoParquet table per asset type
    meta.json                   the build's metadata (tagged JSON)
    counts_table.json|.parquet  the traffic counts of municipal cities (or null)

Nothing in an entry runs code when read (:mod:`twin._codec`: Parquet and JSON, never pickle), so
a cache folder can be shared. The key covers everything that made the entry: every file of the
``twin`` package (code, schemas, city definitions), the versions of the libraries the build
uses, the city definition, the seed and the sha256 of every input file. An entry is used only if
its manifest is intact (its own checksum), names this key and this format, lists exactly the
files present, and every file has the size and sha256 it lists, all checked before anything is
parsed; anything else is reported in one line and rebuilt. Writers hold a lock per entry, write
a folder private to their process and rename it into place (:mod:`twin._files`).

Kept apart from :mod:`twin.build` so that a warm :func:`twin.load` imports none of the build's
heavy dependencies (osmnx, scipy.cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import filelock
import networkx as nx
import pandas as pd

from . import _files
from ._codec import (
    frame_from_parquet,
    frame_to_parquet,
    from_json,
    graph_from_parquet,
    graph_to_parquet,
    safe_part_name,
    to_json,
)
from ._errors import CacheEntryError, InputValidationError, UnsupportedValueError
from ._files import sha256_file
from .cities import City, resolve_data_file
from .inventory_store import inventory_file
from .registry import Registry
from .settings import get_settings

__all__ = [
    "CODE_VERSION",
    "FORMAT",
    "KEEP_PER_CITY",
    "cache_key",
    "cache_path",
    "entry_lock",
    "input_files",
    "load_cache",
    "package_files",
    "prune",
    "save_cache",
    "sha256_file",
]

log = logging.getLogger("twin.cache")

#: Name and version of the entry format (part of the key: a new format never reads an old entry).
FORMAT = "metropolis-twin/cache/1"
#: Entries kept per city by :func:`prune`: the most recently used (a new build of the code, of
#: the data or of another seed makes a new entry; older ones would pile up).
KEEP_PER_CITY = 3
#: Libraries whose version changes what a build gives (or how an entry is encoded).
_LIBRARIES = (
    "networkx", "osmnx", "shapely", "geopandas", "pandas", "numpy", "pyproj", "pyarrow",
    "osmium", "scipy", "pyogrio",
)  # fmt: skip
#: Classes rebuilt from their ``__getstate__``; nothing else is ever constructed from an entry.
_STATEFUL: dict[str, type] = {"Registry": Registry}
_MANIFEST = "manifest.json"
_MAX_MANIFEST_BYTES = 4 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PACKAGE = Path(__file__).resolve().parent


def package_files(root: Path = _PACKAGE) -> list[Path]:
    """Every file of the ``twin`` package (modules and data), found by walking it, in a fixed order.

    Caches, hidden files and compiled bytecode are left out.

    >>> names = [p.relative_to(_PACKAGE).as_posix() for p in package_files()]
    >>> "build.py" in names and "cities/bondy.toml" in names and "assets/schemas/light.csv" in names
    True
    """
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        found += [
            Path(folder, n)
            for n in names
            if not n.startswith(".") and not n.endswith((".pyc", ".pyo"))
        ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _code_version(root: Path = _PACKAGE) -> str:
    """Hash of the whole package, the entry format and the build's libraries."""
    h = hashlib.sha256(FORMAT.encode())
    for p in package_files(root):
        data = p.read_bytes()
        h.update(f"{p.relative_to(root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    for lib in _LIBRARIES:
        try:
            version = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        h.update(f"{lib}={version}\0".encode())
    return h.hexdigest()[:16]


#: Version of the code that builds twins: any change to the package gives another cache key.
CODE_VERSION = _code_version()


def input_files(city: City) -> dict[str, Path]:
    """The files a city is built from, by role (raises, with how to get them, when missing)."""
    src = city.source
    files: dict[str, Path] = {}
    if src.get("kind") == "osm":
        for role in ("osm", "graph", "features"):
            if src.get(role):
                files[role] = resolve_data_file(city, src[role])
    elif src.get("kind") == "sumo":
        files["net"] = resolve_data_file(city, src["net"])
    elif src.get("kind") == "municipal":
        for role in ("roads", "lights", "signals", "counts"):
            if role in src:
                files[role] = resolve_data_file(city, src[role]["path"])
        if "roads" not in files:
            msg = f"{city.name}: a municipal source needs [source.roads]"
            raise InputValidationError(msg)
    else:
        kind = src.get("kind")
        msg = f"{city.name}: source.kind must be 'osm', 'municipal' or 'sumo', got {kind!r}"
        raise InputValidationError(msg)
    imported = inventory_file(files)  # keyed by the source's content, not its name
    if imported.is_file():
        files["inventory"] = imported
    return files


def _definition(city: City) -> str:
    """The city definition as canonical JSON (where it was read from is left out)."""
    fields = {f.name: getattr(city, f.name) for f in dataclasses.fields(city) if f.name != "path"}
    as_dicts = {
        k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v
        for k, v in fields.items()
    }
    return json.dumps(as_dicts, sort_keys=True, default=str)


def cache_key(city: City, files: dict[str, Path], seed: int) -> str:
    """Cache key: the code version, the seed, the city definition and the inputs' checksums."""
    h = hashlib.sha256(CODE_VERSION.encode())
    h.update(f"\0seed={seed}\0".encode())
    h.update(_definition(city).encode())
    for role, path in sorted(files.items()):
        h.update(f"\0{role}={sha256_file(path)}".encode())
    return h.hexdigest()[:24]


def cache_path(city: City, key: str) -> Path:
    """The folder of a cached twin."""
    return get_settings().cache / "twins" / f"{city.name}-{key}"


def entry_lock(path: Path) -> contextlib.AbstractContextManager[_files.Lock]:
    """The lock of an entry, held while it is read, built and written (see :func:`_files.locked`).

    Lock files live in ``<cache>/locks/``. The lock is true when the entry may be written; when
    the cache folder cannot be written it is false, and its ``cannot_write()`` says so once.
    """
    root = path.parent.parent
    return _files.locked(_lock_file(path), folder=root, what=f"cache entry {path.name}")


def _lock_file(path: Path) -> Path:
    return path.parent.parent / "locks" / f"{path.parent.name}-{path.name}.lock"


# ------------------------------------------------------------------------------------------------
# payload <-> parts


def _is_store(value: Any) -> bool:
    """Whether a value holds something stored in a file of its own (graph, table, registry)."""
    if isinstance(value, nx.Graph | pd.DataFrame) or type(value) in _STATEFUL.values():
        return True
    return type(value) is dict and any(_is_store(v) for v in value.values())


def _encode(value: Any, name: str, parts: dict[str, bytes]) -> dict[str, Any]:
    """Describe ``value`` and put its bytes in ``parts`` (file name -> bytes)."""
    if isinstance(value, nx.Graph):
        nodes, edges = graph_to_parquet(value, part=name)
        parts[f"{name}/nodes.parquet"] = nodes
        parts[f"{name}/edges.parquet"] = edges
        return {"graph": name}
    if isinstance(value, pd.DataFrame):
        parts[f"{name}.parquet"] = frame_to_parquet(value, part=name)
        return {"table": name}
    cls = type(value).__name__
    if _STATEFUL.get(cls) is type(value):
        return {"object": cls, "state": _encode(value.__getstate__(), name, parts)}
    if type(value) is dict and (not name or _is_store(value)):
        inner = []  # a list: the manifest's keys are sorted, the dict's order is kept
        for key, item in value.items():
            child = f"{name}/{key}" if name else str(key)
            if type(key) is not str or not safe_part_name(child):
                msg = f"{name or 'payload'}: key {key!r} cannot name a file of the entry"
                raise UnsupportedValueError(msg)
            inner.append([key, _encode(item, child, parts)])
        return {"dict": inner}
    doc = {"part": name, "value": to_json(value, name)}
    parts[f"{name}.json"] = json.dumps(doc, ensure_ascii=False, allow_nan=False).encode()
    return {"json": name}


def _take(parts: dict[str, bytes], used: set[str], name: str) -> bytes:
    if name not in parts:
        msg = f"part {name!r} is not in the manifest"
        raise CacheEntryError(msg)
    used.add(name)
    return parts[name]


def _decode(desc: Any, name: str, parts: dict[str, bytes], used: set[str]) -> Any:
    """Rebuild the value described by ``desc``, which must be the one stored under ``name``."""
    if not isinstance(desc, dict) or not desc:
        msg = f"malformed description of {name or 'the payload'}"
        raise CacheEntryError(msg)
    kind = next(iter(desc))
    if kind in ("graph", "table", "json") and desc[kind] != name:
        msg = f"the description of {name!r} names {desc[kind]!r}"
        raise CacheEntryError(msg)
    if kind == "graph":
        nodes = _take(parts, used, f"{name}/nodes.parquet")
        edges = _take(parts, used, f"{name}/edges.parquet")
        return graph_from_parquet(nodes, edges, part=name)
    if kind == "table":
        return frame_from_parquet(_take(parts, used, f"{name}.parquet"), part=name)
    if kind == "object":
        cls = _STATEFUL[desc["object"]]
        obj: Any = object.__new__(cls)
        obj.__setstate__(_decode(desc["state"], name, parts, used))
        return obj
    if kind == "dict":
        return {k: _decode(v, f"{name}/{k}" if name else k, parts, used) for k, v in desc["dict"]}
    if kind == "json":
        doc = json.loads(_take(parts, used, f"{name}.json"))
        if doc.get("part") != name:
            msg = f"{name}.json holds part {doc.get('part')!r}"
            raise CacheEntryError(msg)
        return from_json(doc["value"])
    msg = f"unknown description {kind!r} of {name!r}"
    raise CacheEntryError(msg)


def _checksum(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _files.sha256_bytes(text.encode())


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The one way a manifest is written: any other byte in it means it was altered."""
    return (json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=True) + "\n").encode()


# ------------------------------------------------------------------------------------------------
# reading and writing entries


def save_cache(path: Path, payload: dict[str, Any], *, key: str) -> bool:
    """Write a built twin as the entry ``path`` (call it holding :func:`entry_lock`).

    The entry is written into a folder private to this process, flushed, and renamed into place
    (replacing any previous one), so no reader ever sees half of it. Nothing is raised: a value
    the format cannot store, or a folder that cannot be written, is said in one line and the twin
    is kept in memory only.

    Returns
    -------
    bool
        Whether the entry was written.
    """
    parts: dict[str, bytes] = {}
    try:
        description = _encode(payload, "", parts)
    except UnsupportedValueError as exc:
        log.warning("twin: %s not cached: %s", path.name, exc)
        return False
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "key": key,
        "entry": path.name,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "payload": description,
        "parts": {
            name: {"sha256": _files.sha256_bytes(raw), "bytes": len(raw)}
            for name, raw in sorted(parts.items())
        },
    }
    manifest["checksum"] = _checksum(manifest)
    tmp = _files.private_temp(path)
    try:
        _files.remove_leftovers(path)
        for name, raw in [*parts.items(), (_MANIFEST, _manifest_bytes(manifest))]:
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(raw)
            _files.fsync_file(target)
        _files.publish_dir(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _files.warn_unwritable(path.parent.parent, exc)
        return False
    return True


def _check_manifest(raw: bytes, key: str) -> dict[str, Any]:
    manifest = json.loads(raw)
    if not isinstance(manifest, dict) or _manifest_bytes(manifest) != raw:
        msg = "the manifest is not as it was written"
        raise CacheEntryError(msg)
    if manifest.get("format") != FORMAT:
        msg = f"format {manifest.get('format')!r}, expected {FORMAT!r}"
        raise CacheEntryError(msg)
    if manifest.get("checksum") != _checksum(manifest):
        msg = "the manifest does not match its own checksum"
        raise CacheEntryError(msg)
    if manifest.get("key") != key:
        msg = f"written for key {manifest.get('key')!r}, not {key!r}"
        raise CacheEntryError(msg)
    parts = manifest.get("parts")
    if not isinstance(parts, dict):
        msg = "the manifest lists no parts"
        raise CacheEntryError(msg)
    for name, info in parts.items():
        ok = (
            safe_part_name(name)
            and name != _MANIFEST
            and isinstance(info, dict)
            and isinstance(info.get("sha256"), str)
            and _SHA256.fullmatch(info["sha256"]) is not None
            and type(info.get("bytes")) is int
            and info["bytes"] >= 0
        )
        if not ok:
            msg = f"the manifest's entry for part {name!r} is malformed"
            raise CacheEntryError(msg)
    return manifest


def _read_entry(path: Path, key: str) -> dict[str, Any]:
    """Check an entry completely, then decode it; raise CacheEntryError (or another) if unusable."""
    manifest_path = path / _MANIFEST
    if not path.is_dir():
        msg = "not a folder"
        raise CacheEntryError(msg)
    if not manifest_path.is_file():
        msg = "no manifest"
        raise CacheEntryError(msg)
    if manifest_path.stat().st_size > _MAX_MANIFEST_BYTES:
        msg = "the manifest is too large"
        raise CacheEntryError(msg)
    manifest = _check_manifest(manifest_path.read_bytes(), key)
    listed: dict[str, dict[str, Any]] = manifest["parts"]
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if not p.is_dir()} - {
        _MANIFEST
    }
    if present != set(listed):
        missing = sorted(set(listed) - present)
        extra = sorted(present - set(listed))
        msg = f"files missing {missing} or not in the manifest {extra}"
        raise CacheEntryError(msg)
    data: dict[str, bytes] = {}
    for name, info in listed.items():
        part = path / name
        if part.stat().st_size != info["bytes"]:
            msg = f"{name} has {part.stat().st_size} bytes, the manifest says {info['bytes']}"
            raise CacheEntryError(msg)
        raw = part.read_bytes()
        if _files.sha256_bytes(raw) != info["sha256"]:
            msg = f"{name} does not match its sha256"
            raise CacheEntryError(msg)
        data[name] = raw
    used: set[str] = set()
    payload = _decode(manifest["payload"], "", data, used)
    if used != set(data) or type(payload) is not dict:
        msg = f"parts {sorted(set(data) - used)} are not described by the manifest"
        raise CacheEntryError(msg)
    return payload


def load_cache(path: Path, *, key: str) -> dict[str, Any] | None:
    """Read a cached twin; None when there is none, or when it is unusable (said in one line).

    Every check (manifest checksum, format, key, list of files, sizes, sha256) is made before
    anything is parsed; an entry that fails any of them is never used, and the caller rebuilds.
    """
    if not path.exists():
        return None
    collecting = gc.isenabled()
    gc.disable()  # decoding makes ~10^5 small objects, none cyclic garbage: a third faster
    try:
        payload = _read_entry(path, key)
        with contextlib.suppress(OSError):  # a read-only folder: the entry is simply not marked
            os.utime(path)  # used now: pruning keeps the most recently used entries
        return payload
    except Exception as exc:  # noqa: BLE001 - any failure means the entry is not used
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        log.warning("twin: cache entry %s is unusable (%s); rebuilding", path, reason)
        return None
    finally:
        if collecting:
            gc.enable()


def prune(root: Path | None = None, *, keep: int = KEEP_PER_CITY) -> list[Path]:
    """Remove all but the ``keep`` most recently used entries of each city; the removed ones.

    An entry is used when it is written or read (its folder's modification time). An entry that
    another process holds (reading or writing it) is left alone; so is anything that cannot be
    removed. Nothing is raised.

    Parameters
    ----------
    root : Path, optional
        The cache folder (default: ``settings.cache``).
    keep : int
        Entries kept per city (by name; seeds, data and code versions are the entries).
    """
    twins = (get_settings().cache if root is None else root) / "twins"
    by_city: dict[str, list[Path]] = {}
    try:
        for entry in twins.iterdir():
            city, _, key = entry.name.rpartition("-")
            if entry.name.startswith(".") or not city or not entry.is_dir() or len(key) != 24:
                continue  # temporaries and anything that is not an entry
            by_city.setdefault(city, []).append(entry)
    except OSError:
        return []
    removed: list[Path] = []
    for entries in by_city.values():
        entries.sort(key=_used_at, reverse=True)
        for entry in entries[keep:]:
            lock = filelock.FileLock(_lock_file(entry), timeout=0)
            try:
                lock.acquire()
            except OSError:  # held by another process (filelock.Timeout), or not writable
                continue
            try:
                shutil.rmtree(entry, ignore_errors=True)
                if not entry.exists():
                    removed.append(entry)
            finally:
                lock.release()
    if removed:
        log.info("twin: %d old cache entries pruned", len(removed))
    return removed


def _used_at(entry: Path) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0
