"""Asset schemas as data: one CSV per asset type in ``schemas/``.

Each row declares an attribute with its dtype, unit, default and description, as PyPSA's
``component_attrs`` and pandapower's network schema do. The registry's tables have exactly these
columns, and each asset module's frozen dataclass has exactly these fields (a test checks it).
"""

from __future__ import annotations

import csv
import dataclasses
from functools import cache
from pathlib import Path

import pandas as pd

__all__ = ["Attribute", "Schema", "load_schema", "KINDS"]

_DIR = Path(__file__).resolve().parent / "schemas"

#: Asset types of the registry, in display order.
KINDS = (
    "segment",
    "light",
    "cabinet",
    "junction",
    "approach",
    "camera",
    "sensor",
    "depot",
    "vehicle",
    "building",
    "poi",
    "crossing",
)


@dataclasses.dataclass(frozen=True)
class Attribute:
    """One attribute of an asset type."""

    name: str
    dtype: str
    unit: str
    default: str
    description: str


@dataclasses.dataclass(frozen=True)
class Schema:
    """The attributes of one asset type."""

    kind: str
    attributes: tuple[Attribute, ...]

    @property
    def names(self) -> list[str]:
        """Attribute names, in order."""
        return [a.name for a in self.attributes]

    def __getitem__(self, name: str) -> Attribute:
        for a in self.attributes:
            if a.name == name:
                return a
        msg = f"{self.kind} has no attribute {name!r}; attributes: {', '.join(self.names)}"
        raise KeyError(msg)

    def to_frame(self) -> pd.DataFrame:
        """The schema as a table (attribute, dtype, unit, default, description)."""
        return pd.DataFrame([dataclasses.asdict(a) for a in self.attributes]).set_index("name")

    def units(self) -> dict[str, str]:
        """Attribute -> unit, for attributes that have one."""
        return {a.name: a.unit for a in self.attributes if a.unit}


@cache
def load_schema(kind: str) -> Schema:
    """Load an asset type's schema.

    >>> load_schema("light")["power_w"].unit
    'W'
    """
    path = _DIR / f"{kind}.csv"
    if not path.is_file():
        msg = f"unknown asset type {kind!r}; known: {', '.join(KINDS)}"
        raise KeyError(msg)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    attrs = tuple(
        Attribute(r["attribute"], r["dtype"], r["unit"], r["default"], r["description"])
        for r in rows
    )
    return Schema(kind, attrs)
