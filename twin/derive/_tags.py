"""Parsers of OSM tag values on graph edges (lists where simplification merged ways)."""

from __future__ import annotations

import math
import re
from typing import Any

from twin.assets import lighting

__all__ = ["first", "lit_value", "main_class", "to_number"]

_RANK = {c: i for i, c in enumerate(reversed(list(lighting.ROAD_CLASSES.index)))}
_LIT_YES = {"yes", "24/7", "automatic", "limited", "interval", "sunset-sunrise", "dusk-dawn"}
_LIT_NO = {"no", "disused"}


def first(value: Any) -> Any:
    """First value of a tag that simplification may have turned into a list.

    >>> first(["Rue A", "Rue B"]), first("Rue C"), first([])
    ('Rue A', 'Rue C', None)
    """
    if isinstance(value, list):
        return value[0] if value else None
    return value


def main_class(value: Any) -> str:
    """The most important road class among the values of a ``highway`` tag.

    >>> main_class(["residential", "secondary"]), main_class(None)
    ('secondary', 'unclassified')
    """
    values = value if isinstance(value, list) else [value]
    names = [str(v) for v in values if v is not None]
    if not names:
        return "unclassified"
    return max(names, key=lambda v: _RANK.get(v, -1))


def to_number(value: Any) -> float:
    """First number in a tag value ('50', 'FR:urban', ['30', '50'], '2;3'); NaN if none.

    >>> to_number("FR:urban"), to_number(["30", "50"]), to_number("20 mph")
    (50.0, 50.0, 32.18)
    """
    if isinstance(value, list):
        nums = [to_number(v) for v in value]
        nums = [n for n in nums if not math.isnan(n)]
        return max(nums) if nums else math.nan
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if value.lower() in {"fr:urban", "fr:zone30"}:
            return 50.0 if value.lower() == "fr:urban" else 30.0
        m = re.search(r"\d+(\.\d+)?", value)
        if m:
            num = float(m.group())
            return num * 1.609 if "mph" in value else num
    return math.nan


def _lit_one(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    text = str(value).strip().lower()
    if text in _LIT_YES:
        return "yes"
    if text in _LIT_NO:
        return "no"
    return "unknown"


def lit_value(value: Any) -> str:
    """``yes``, ``no`` or ``unknown`` from an OSM ``lit`` tag; ``mixed`` for a merged edge.

    A list holds the values of several ways that an earlier simplification merged into one
    edge (a GraphML written without ``edge_attrs_differ=["lit"]``): when they disagree, the
    edge is ``mixed`` and the build treats it as untagged rather than lit end to end.

    >>> lit_value("yes"), lit_value("24/7"), lit_value(None), lit_value("no")
    ('yes', 'yes', 'unknown', 'no')
    >>> lit_value(["yes", "no"]), lit_value(["yes", "limited"])
    ('mixed', 'yes')
    """
    values = value if isinstance(value, list) else [value]
    kinds = {_lit_one(v) for v in values}
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed" if kinds else "unknown"
