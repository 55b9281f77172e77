"""Travel demand: zones, trip generation, gravity distribution, time profiles and events.

This module turns a :class:`~twin.model.Twin` into demand for the simulations. It gathers the
public names of the modules that do the work, one per concern:

* :mod:`twin.scenarios.zones`: grid cells over the street network and *gateways* where main
  roads leave it, with each zone's population and activity (:func:`build_demand`);
* :mod:`twin.scenarios.gravity`: trip generation and the doubly constrained gravity model
  balanced by Furness (:class:`DemandModel`, :class:`DemandParams`, :func:`furness`);
* :mod:`twin.scenarios.profiles`: hourly fractions of the daily total per day type and mode
  (:data:`HOURLY_PROFILES`) on the city's local clock (:func:`local_slots`);
* :mod:`twin.scenarios.events`: a concert or a market (:class:`Event`) adds car trips to and
  from its place and pedestrians on the streets around it, before, during and after it;
* :mod:`twin.scenarios.providers`: footfall and traffic per segment and time as the dimming
  optimiser reads them (:class:`Demand`, :class:`ProfileDemand`, :class:`SimulatedDemand`).

Figures and their sources are given in each module.
"""

from __future__ import annotations

from twin.scenarios.events import EVENT_KINDS, Event
from twin.scenarios.gravity import ConvergenceError, DemandModel, DemandParams, furness
from twin.scenarios.profiles import (
    DAY_FACTOR,
    DAY_TYPES,
    HOURLY_PROFILES,
    MODES,
    DayType,
    day_type_of,
    local_slots,
    profile,
)
from twin.scenarios.providers import (
    CLASS_AADT,
    CLASS_FOOTFALL,
    POI_FOOTFALL,
    Demand,
    ProfileDemand,
    SimulatedDemand,
)
from twin.scenarios.zones import (
    CELL_M,
    MAIN_ROAD_WEIGHT,
    PEDESTRIAN_WEIGHT,
    PERSONS_PER_WEIGHTED_M,
    POI_WEIGHT,
    RESIDENTIAL_WEIGHT,
    build_demand,
)

__all__ = [
    "CELL_M",
    "CLASS_AADT",
    "CLASS_FOOTFALL",
    "DAY_FACTOR",
    "DAY_TYPES",
    "EVENT_KINDS",
    "HOURLY_PROFILES",
    "MAIN_ROAD_WEIGHT",
    "MODES",
    "PEDESTRIAN_WEIGHT",
    "PERSONS_PER_WEIGHTED_M",
    "POI_FOOTFALL",
    "POI_WEIGHT",
    "RESIDENTIAL_WEIGHT",
    "ConvergenceError",
    "DayType",
    "Demand",
    "DemandModel",
    "DemandParams",
    "Event",
    "ProfileDemand",
    "SimulatedDemand",
    "build_demand",
    "day_type_of",
    "furness",
    "local_slots",
    "profile",
]
