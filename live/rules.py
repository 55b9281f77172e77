"""Declarative when-then rules in TOML over the live state, as control rooms did with Node-RED.

A rules file holds ``[[rule]]`` tables::

    [[rule]]
    name = "snow plan"
    when.all = [
      { type = "sensor", field = "road_temp_c", op = "<", value = 1.0 },
      { type = "sensor", field = "precip_mm_h", op = ">", value = 0.0 },
    ]
    then = { propose = "snow" }

``when.all`` (every condition) or ``when.any`` (at least one) holds conditions on ONE asset
type; a rule fires for each asset of that type where they hold, once when they start to hold
(edge-triggered), and fires again only after they stopped holding. ``op`` is one of ``<``,
``<=``, ``>``, ``>=``, ``==``, ``!=``. ``then`` is the data the event carries: the rules engine
decides *when*; :class:`live.actions.Actions` decides *how* for the keys that act (``propose``
a plan, raise an ``alarm``, a ``vms`` message, a ``lighting`` override; checked on loading by
:func:`live.actions.check_actions`), and anything subscribed to ``twin/<city>/event/#`` (the
control room, a Node-RED flow) may act on the rest. After :meth:`Rules.evaluate`,
:attr:`Rules.ended` lists the ``(rule, asset)`` where a rule stopped holding (an alarm it raised
clears). ``live/rules/example.toml`` has the three examples of the issue.
"""

from __future__ import annotations

import dataclasses
import operator
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from live.ingest import STATE_FIELDS, STATE_TEXT, State
from twin._errors import InputValidationError

__all__ = ["Condition", "Rule", "Rules", "load_rules"]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclasses.dataclass(frozen=True)
class Condition:
    """``field op value`` on the state of one asset type."""

    type: str
    field: str
    op: str
    value: float | str

    def holds(self, state: State) -> np.ndarray:
        """Per asset of the type, whether the condition holds (never on an unknown value)."""
        if self.field in STATE_FIELDS.get(self.type, ()):
            x = state.values[self.type][self.field]
            with np.errstate(invalid="ignore"):
                out = np.asarray(_OPS[self.op](x, float(self.value)), dtype=bool)
            held: np.ndarray = out & ~np.isnan(x)
            return held
        x = state.text[self.type][self.field]
        return np.array([v is not None and bool(_OPS[self.op](v, self.value)) for v in x], bool)


@dataclasses.dataclass(frozen=True)
class Rule:
    """A named rule: conditions (all or any) and the event data it fires with."""

    name: str
    conditions: tuple[Condition, ...]
    mode: str  # "all" or "any"
    then: Mapping[str, Any]

    @property
    def type(self) -> str:
        """The asset type the conditions are on."""
        return self.conditions[0].type


def _rule(i: int, raw: Any) -> Rule:
    where = f"rule[{i}]"
    if not isinstance(raw, dict):
        msg = f"{where}: expected a table"
        raise InputValidationError(msg)
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        msg = f"{where}.name: missing or not a string"
        raise InputValidationError(msg)
    where = f"rule {name!r}"
    when = raw.get("when")
    if not isinstance(when, dict) or len(when) != 1 or next(iter(when)) not in ("all", "any"):
        msg = f"{where}.when: expected exactly one of when.all or when.any"
        raise InputValidationError(msg)
    mode, items = next(iter(when.items()))
    if not isinstance(items, list) or not items:
        msg = f"{where}.when.{mode}: expected a non-empty list of conditions"
        raise InputValidationError(msg)
    conds = []
    for k, c in enumerate(items):
        at = f"{where}.when.{mode}[{k}]"
        if not isinstance(c, dict) or set(c) != {"type", "field", "op", "value"}:
            msg = f"{at}: expected {{type, field, op, value}}"
            raise InputValidationError(msg)
        fields = STATE_FIELDS.get(c["type"], ()) + STATE_TEXT.get(c["type"], ())
        if c["type"] not in STATE_FIELDS:
            msg = f"{at}.type: {c['type']!r} is not one of {', '.join(STATE_FIELDS)}"
            raise InputValidationError(msg)
        if c["field"] not in fields:
            msg = f"{at}.field: {c['field']!r} is not a field of {c['type']} ({', '.join(fields)})"
            raise InputValidationError(msg)
        if c["op"] not in _OPS:
            msg = f"{at}.op: {c['op']!r} is not one of {' '.join(_OPS)}"
            raise InputValidationError(msg)
        numeric = c["field"] in STATE_FIELDS[c["type"]]
        ok = isinstance(c["value"], int | float) and not isinstance(c["value"], bool)
        if numeric and not ok:
            msg = f"{at}.value: {c['value']!r} is not a number"
            raise InputValidationError(msg)
        conds.append(Condition(c["type"], c["field"], c["op"], c["value"]))
    if len({c.type for c in conds}) != 1:
        msg = f"{where}.when: every condition must be on the same asset type"
        raise InputValidationError(msg)
    then = raw.get("then")
    if not isinstance(then, dict) or not then:
        msg = f"{where}.then: expected a table (what the event carries)"
        raise InputValidationError(msg)
    return Rule(name, tuple(conds), mode, then)


def load_rules(source: str | Path) -> Rules:
    """Rules from a TOML file (a path) or TOML text."""
    path = Path(source) if not isinstance(source, str) or "\n" not in source else None
    try:
        data = tomllib.loads(path.read_text() if path is not None else str(source))
    except tomllib.TOMLDecodeError as exc:
        msg = f"rules: not TOML ({exc})"
        raise InputValidationError(msg) from None
    raw = data.get("rule")
    if not isinstance(raw, list):
        msg = "rule: expected [[rule]] tables"
        raise InputValidationError(msg)
    rules = [_rule(i, r) for i, r in enumerate(raw)]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        msg = "rule.name: two rules share a name"
        raise InputValidationError(msg)
    return Rules(rules)


class Rules:
    """A set of rules and which of them currently hold, per asset."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = list(rules)
        self._holding: dict[str, set[str]] = {r.name: set() for r in self.rules}
        self.ended: list[tuple[Rule, str]] = []

    def evaluate(self, state: State) -> list[dict[str, Any]]:
        """Events of the rules that started to hold: ``{rule, asset, then}``."""
        events = []
        self.ended = []
        for r in self.rules:
            if r.type not in state.ids:
                continue
            masks = [c.holds(state) for c in r.conditions]
            hold = np.logical_and.reduce(masks) if r.mode == "all" else np.logical_or.reduce(masks)
            now = {str(a) for a in state.ids[r.type][hold]}
            for asset in sorted(now - self._holding[r.name]):
                events.append({"rule": r.name, "asset": asset, "then": dict(r.then)})
            self.ended.extend((r, a) for a in sorted(self._holding[r.name] - now))
            self._holding[r.name] = now
        return events
