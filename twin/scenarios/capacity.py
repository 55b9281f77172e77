"""Link capacity and volume-delay parameters per road class.

Shared by the demand's gateways and the equilibrium assignment
(:mod:`twin.scenarios.assignment` documents where they come from).

>>> BPR["primary"]
(1.0, 4.0, 900.0)
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["BPR"]

_MOTOR = {"motorway", "motorway_link", "trunk", "trunk_link"}
_MAIN = {"primary", "primary_link", "secondary", "secondary_link", "tertiary", "tertiary_link"}

#: BPR ``(alpha, beta, capacity per lane in veh/h)`` per road class; classes not listed use
#: ``BPR["other"]``.
BPR: Mapping[str, tuple[float, float, float]] = {
    **{c: (0.15, 4.0, 1800.0) for c in _MOTOR},
    **{c: (1.0, 4.0, 900.0) for c in _MAIN},
    "other": (1.0, 4.0, 600.0),
}
