"""The last line every benchmark prints (DESIGN section 5), in one place.

``python benchmarks/NAME.py`` puts this folder on ``sys.path``, so each script imports it as
``from _report import emit, target``.
"""

from __future__ import annotations

import json
from typing import Any


def target(value: float | None, limit: float, op: str) -> dict[str, Any]:
    """A target entry; ``met`` is false when the value could not be measured (``None``)."""
    if op not in ("<=", ">="):
        msg = f"target: op must be '<=' or '>=', got {op!r}"
        raise ValueError(msg)
    met = value is not None and (value <= limit if op == "<=" else value >= limit)
    return {"value": value, "limit": limit, "op": op, "met": bool(met)}


def emit(
    name: str,
    figures: dict[str, Any],
    *,
    reference: dict[str, Any] | None = None,
    ratios: dict[str, Any] | None = None,
    targets: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Print the benchmark's JSON line: figures, reference, ratios (ours / reference), targets."""
    line = {
        "benchmark": name,
        "figures": figures,
        "reference": reference or {},
        "ratios": ratios or {},
        "targets": targets or {},
    }
    print(json.dumps(line))
