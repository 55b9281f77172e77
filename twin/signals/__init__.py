"""Signalised junctions as a controller sees them, and the safety check every plan must pass.

Submodules:

* :mod:`twin.signals.junction`: the junction model built from the data (signal groups,
  movements, pedestrian crossings, the conflict and intergreen matrices, stages);
* :mod:`twin.signals.buses`: bus routes (``route=bus`` relations of the extract, or a line
  list) and the signal groups buses arrive on, for bus priority;
* :mod:`twin.signals.safety`: signal-group programmes, the safety validator (in the spirit of a
  malfunction management unit) and the JSON form of a plan for the live layer.

They live in ``twin`` (not in ``twin.scenarios`` nor ``optimize``) because they guard what
reaches a street: the live layer's safety gate imports them without pulling in a simulation or
an optimiser, and every plan, whoever made it, goes through the same check.
"""

from __future__ import annotations

from twin.signals import buses as buses
from twin.signals import junction as junction
from twin.signals import safety as safety
from twin.signals.buses import BusRoute, bus_groups, bus_routes
from twin.signals.junction import JunctionModel, build_junction, junction_models
from twin.signals.safety import (
    RULES,
    SafetyRules,
    SignalProgram,
    Violation,
    check_plan,
    check_program,
    program_of,
    validate,
)

__all__ = [
    "RULES",
    "BusRoute",
    "JunctionModel",
    "SafetyRules",
    "SignalProgram",
    "Violation",
    "build_junction",
    "bus_groups",
    "bus_routes",
    "buses",
    "check_plan",
    "check_program",
    "junction",
    "junction_models",
    "program_of",
    "safety",
    "validate",
]
