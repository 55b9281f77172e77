"""The one place that knows how pulp's API differs between versions.

pulp 3.3 (what pip installs on Python 3.11) deprecates ``LpVariable(...)``, ``LpVariable.dicts``
and ``LpVariable.matrix`` in favour of the pulp 4 methods ``LpProblem.add_variable``,
``add_variable_dicts`` and ``add_variable_matrix``, which attach the variables to the model.
Older 3.x releases have only the former; pulp 4 has only the latter. Every model in
``optimize`` creates its variables through the helpers below, so no other module depends on
the installed version. The solver is always HiGHS through ``highspy`` (pulp 4 ships no CBC),
given by :mod:`optimize._highs`.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import pulp

__all__ = [
    "PULP_MAJOR",
    "add_variable",
    "add_variable_dict",
    "constraint_by_name",
]

PULP_MAJOR: int = int(str(pulp.__version__).split(".")[0])
"""Major version of the installed pulp."""

_HAS_MODEL_VARIABLES = hasattr(pulp.LpProblem, "add_variable")


def add_variable(
    model: pulp.LpProblem,
    name: str,
    *,
    low: float | None = None,
    up: float | None = None,
    cat: str = "Continuous",
) -> pulp.LpVariable:
    """Create one variable attached to ``model``.

    Parameters
    ----------
    model
        The problem the variable belongs to.
    name
        Variable name (pulp replaces characters that LP files do not allow).
    low, up
        Bounds; ``None`` means unbounded on that side.
    cat
        ``"Continuous"``, ``"Integer"`` or ``"Binary"``.

    Returns
    -------
    pulp.LpVariable

    Examples
    --------
    >>> m = pulp.LpProblem("demo", pulp.LpMinimize)
    >>> add_variable(m, "x", low=0.0, up=1.0).name
    'x'
    """
    if _HAS_MODEL_VARIABLES:
        return model.add_variable(name, lowBound=low, upBound=up, cat=cat)
    return pulp.LpVariable(name, lowBound=low, upBound=up, cat=cat)  # pragma: no cover


def add_variable_dict(
    model: pulp.LpProblem,
    name: str,
    keys: Iterable[Hashable],
    *,
    low: float | dict[Any, float] | None = None,
    up: float | dict[Any, float] | None = None,
    cat: str = "Continuous",
) -> dict[Any, pulp.LpVariable]:
    """Create a dict of variables, one per key, named ``f"{name}_{key}"``.

    Unlike ``LpVariable.dicts``, bounds may be given per key as dicts (a missing key means
    unbounded), so that each variable gets its own bounds without a second pass.

    Parameters
    ----------
    model
        The problem the variables belong to.
    name
        Common prefix of the variable names.
    keys
        One variable per key; a tuple key is joined with ``_`` in the name.
    low, up
        Scalar bounds for all variables, or a dict of bounds per key.
    cat
        Variable category.

    Returns
    -------
    dict
        key -> variable.

    Examples
    --------
    >>> m = pulp.LpProblem("demo", pulp.LpMaximize)
    >>> v = add_variable_dict(m, "x", [(0, 1), (0, 2)], low=0.0, up={(0, 1): 0.5})
    >>> v[0, 1].name, v[0, 1].upBound, v[0, 2].upBound
    ('x_0_1', 0.5, None)
    """
    out: dict[Any, pulp.LpVariable] = {}
    for key in keys:
        parts = key if isinstance(key, tuple) else (key,)
        label = "_".join([name, *(str(p) for p in parts)])
        lo = low.get(key) if isinstance(low, dict) else low
        hi = up.get(key) if isinstance(up, dict) else up
        out[key] = add_variable(model, label, low=lo, up=hi, cat=cat)
    return out


def constraint_by_name(model: pulp.LpProblem, name: str) -> pulp.LpConstraint | None:
    """Return the constraint called ``name`` in ``model``, or ``None``.

    pulp 4 returns constraints as a list; pulp 3 as a dict (deprecated as a mapping in 3.3).

    Examples
    --------
    >>> m = pulp.LpProblem("demo", pulp.LpMinimize)
    >>> x = add_variable(m, "x", low=0.0)
    >>> m += (x >= 1, "floor")
    >>> constraint_by_name(m, "floor") is not None, constraint_by_name(m, "nope")
    (True, None)
    """
    getter = getattr(model, "get_constraint_by_name", None)
    if getter is not None:
        found: pulp.LpConstraint | None = getter(name)
        return found
    return model.constraints.get(name)  # pragma: no cover - pulp < 3.3
