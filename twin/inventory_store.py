"""Where imported light inventories are kept: one per source, keyed by the source's content.

An inventory imported with ``twin inventory import`` belongs to the data it was imported
against, not to a name: it is stored under the checksums (sha256) of the city's input files, so
that another extract that happens to have the same file name (or city name) never picks it up,
and the same data loaded under another name does. Each stored inventory is a GeoJSON file of the
accepted rows (EPSG:4326) beside a small JSON record of where it came from; ``twin inventory
list`` shows them and ``twin inventory remove`` forgets one.

This module imports nothing heavy (no geopandas), so that the build cache can ask which stored
inventory belongs to a city (:func:`inventory_file`) on every load.

>>> import tempfile
>>> from twin.settings import set_options
>>> with tempfile.TemporaryDirectory() as d, set_options(cache=Path(d)):
...     src = Path(d) / "town.osm"
...     _ = src.write_text("<osm/>")
...     inventory_file({"osm": src}).name == f"{source_key({'osm': src})}.geojson"
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import InputValidationError
from ._files import sha256_file
from .settings import get_settings

__all__ = [
    "StoredInventory",
    "find_inventories",
    "inventory_file",
    "list_inventories",
    "remove_stored",
    "source_key",
    "store_folder",
    "write_record",
]

#: Roles that are not part of the source an inventory belongs to (the inventory itself).
_NOT_SOURCE = frozenset({"inventory"})
_KEY_CHARS = 16


def store_folder() -> Path:
    """The folder of stored inventories (``inventories/`` in the cache folder)."""
    return get_settings().cache / "inventories"


def source_key(files: Mapping[str, Path]) -> str:
    """The key of a source: a hash of its input files' roles and contents (never their names).

    Parameters
    ----------
    files : mapping of str to Path
        A city's input files by role (``osm``, ``graph``, ``roads``, ``lights``, ...), as
        :func:`twin.cache.input_files` gives them; an ``inventory`` entry is left out.

    Returns
    -------
    str
        16 hexadecimal characters.
    """
    roles = sorted(r for r in files if r not in _NOT_SOURCE)
    if not roles:
        msg = "inventory: a source needs at least one input file to be keyed by"
        raise InputValidationError(msg)
    h = hashlib.sha256()
    for role in roles:
        h.update(f"{role}={sha256_file(files[role])}\n".encode())
    return h.hexdigest()[:_KEY_CHARS]


def inventory_file(files: Mapping[str, Path]) -> Path:
    """Where the inventory imported for the source made of ``files`` is (or would be) kept.

    The build cache calls it with a city's input files; the file exists only when an inventory
    was imported for exactly that data.
    """
    return store_folder() / f"{source_key(files)}.geojson"


@dataclasses.dataclass(frozen=True)
class StoredInventory:
    """One stored inventory, as ``twin inventory list`` shows it.

    Attributes
    ----------
    id : str
        Its key (the source's), or the file stem of an inventory stored by an older version
        under a bare city name (``keyed`` is then False and no source uses it any more).
    path : Path
        The GeoJSON file of accepted rows.
    record : Mapping[str, Any]
        What the import recorded: ``city``, ``file``, ``encoding``, ``rows``, ``accepted``,
        ``rejected``, ``imported_at`` (UTC), and ``source`` (role -> name and sha256).
    """

    id: str
    path: Path
    record: Mapping[str, Any]

    @property
    def keyed(self) -> bool:
        """Whether it is keyed by a source (False: stored by name by an older version)."""
        return bool(self.record.get("source"))

    @property
    def city(self) -> str:
        """The city it was imported for."""
        return str(self.record.get("city") or self.id)

    def describe(self) -> str:
        """One line for ``twin inventory list``."""
        if not self.keyed:
            return (
                f"{self.id:<18}{self.city:<24}stored by city name by an older version; no source "
                "uses it: remove it and import the file again"
            )
        src = ", ".join(f"{r} {v['name']}" for r, v in sorted(self.record["source"].items()))
        when = str(self.record.get("imported_at", ""))[:10]
        return (
            f"{self.id:<18}{self.city:<24}{self.record.get('accepted', '?'):>7} lights  "
            f"from {self.record.get('file', '?')} ({self.record.get('encoding', '?')}), "
            f"imported {when}; source: {src}"
        )


def _record_path(path: Path) -> Path:
    return path.with_suffix(".json")


def list_inventories() -> list[StoredInventory]:
    """Every stored inventory, by city then id."""
    folder = store_folder()
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.geojson")):
        rec_path = _record_path(path)
        record: dict[str, Any] = {}
        if rec_path.is_file():
            try:
                record = json.loads(rec_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                record = {}
        if not record.get("source"):
            record = {"city": path.stem}
        out.append(StoredInventory(path.stem, path, record))
    return sorted(out, key=lambda s: (s.city, s.id))


def find_inventories(ids: list[str]) -> list[StoredInventory]:
    """The stored inventories with these ids (or unique prefixes of at least 4 characters).

    Raises
    ------
    InputValidationError
        When an id matches none, or a prefix matches several.
    """
    stored = list_inventories()
    found: list[StoredInventory] = []
    for wanted in ids:
        exact = [s for s in stored if s.id == wanted]
        match = exact or (
            [s for s in stored if s.id.startswith(wanted)] if len(wanted) >= 4 else []
        )
        if not match:
            known = ", ".join(s.id for s in stored) or "none stored"
            msg = f"inventory id: no stored inventory {wanted!r} (stored: {known})"
            raise InputValidationError(msg)
        if len(match) > 1:
            msg = f"inventory id: {wanted!r} matches {len(match)} inventories; give more of it"
            raise InputValidationError(msg)
        found.append(match[0])
    return found


def remove_stored(inventory: StoredInventory) -> None:
    """Delete a stored inventory and its record."""
    inventory.path.unlink(missing_ok=True)
    _record_path(inventory.path).unlink(missing_ok=True)


def write_record(
    path: Path, *, city: str, files: Mapping[str, Path], **fields: Any
) -> dict[str, Any]:
    """Write the JSON record beside a stored inventory (atomically) and return it."""
    record = {
        "id": path.stem,
        "city": city,
        "source": {
            role: {"name": Path(p).name, "sha256": sha256_file(p)}
            for role, p in sorted(files.items())
            if role not in _NOT_SOURCE
        },
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **fields,
    }
    rec_path = _record_path(path)
    tmp = rec_path.with_name(f".{rec_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(rec_path)
    return record
