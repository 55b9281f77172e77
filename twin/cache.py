"""The build cache: which files a city is built from, the cache key, and reading and writing.

Kept apart from :mod:`twin.build` so that a warm :func:`twin.load` imports none of the build's
heavy dependencies (osmnx, scipy.cluster): only what unpickling the twin needs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

from ._errors import InputValidationError
from ._version import __version__
from .cities import City, resolve_data_file
from .inventory_store import inventory_file
from .settings import get_settings

__all__ = ["CODE_VERSION", "cache_key", "cache_path", "input_files", "load_cache", "save_cache"]

log = logging.getLogger(__name__)


def _inventory_path(city: str) -> Path:
    # twin.inventory.inventory_path, without importing geopandas here
    return get_settings().cache / "inventories" / f"{city}.geojson"


#: Code whose changes alter a built twin (anything else may change without a rebuild).
_BUILD_CODE = (
    "build.py", "sources.py", "derive/*.py", "osm.py", "municipal.py", "registry.py",
    "inventory.py", "cities.py", "crs.py", "energy.py", "assets/*.py", "assets/*/*.csv",
    "cities/*.toml",
)  # fmt: skip


def _code_version() -> str:
    """Hash of the code and data files the build depends on: a change rebuilds cached twins."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256(__version__.encode())
    for pattern in _BUILD_CODE:
        for p in sorted(root.glob(pattern)):
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


CODE_VERSION = _code_version()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


def cache_key(city: City, files: dict[str, Path], seed: int) -> str:
    """Cache key: checksums of the inputs, the code version, the seed and the city definition."""
    h = hashlib.sha256(CODE_VERSION.encode())
    h.update(str(seed).encode())
    h.update(repr(sorted((k, str(v)) for k, v in city.source.items())).encode())
    for role, path in sorted(files.items()):
        h.update(role.encode())
        h.update(sha256_file(path).encode())
    return h.hexdigest()[:24]


def cache_path(city: City, key: str) -> Path:
    """Where a built twin is cached."""
    return get_settings().cache / "twins" / f"{city.name}-{key}.pickle"


def save_cache(path: Path, payload: dict[str, Any]) -> None:
    """Write a built twin atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # unique per writer: parallel processes may build the same twin at once; the last rename wins
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)


def load_cache(path: Path) -> dict[str, Any] | None:
    """Read a cached twin, or None when absent or unreadable (it is then rebuilt)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            payload: dict[str, Any] = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        log.warning("ignoring unreadable cache %s: %s", path, exc)
        return None
    return payload
