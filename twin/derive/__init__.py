"""Derivation steps of the build: one module per asset type, each a pure function of its inputs.

:func:`twin.build.build` reads a city's data into a typed source (:mod:`twin.sources`), then
calls these steps in order. None of them reads a file, knows the data kind or imports the build,
so the inventory importer and tests can call them alone.

How each asset type is made
---------------------------
segments (:mod:`~twin.derive.segments`)
    One per undirected street edge of the simplified graph (the two directions of a two-way street
    share a segment); class, lanes, speed and ``lit`` from the tags (defaults per road class from
    :data:`twin.assets.lighting.ROAD_CLASSES` where a tag is missing); the EN 13201 design class
    from :func:`twin.assets.lighting.design_classes`. Each segment says whether it is lit by its
    tag (``lit``) or by assumption (``lit_assumed``: untagged, of a class lit by default).
lights (:mod:`~twin.derive.lights`)
    ``highway=street_lamp`` nodes where mapped (snapped to the nearest segment within
    :data:`~twin.derive._snap.SNAP_M`); a municipal inventory where the city has one; otherwise
    placed along lit segments without a mapped lamp, at the road class's spacing: a segment of
    length ``L`` and spacing ``s`` gets ``floor(L/s + u)`` evenly spaced lights, ``u`` uniform
    from the seeded generator (so the expected count is exactly ``L/s`` and short segments are
    not all dark or all lit). The same seed gives the same lights.
cabinets (:mod:`~twin.derive.cabinets`)
    Lights grouped into feeders by recursive median bisection of their positions (split along
    the wider axis until a group holds at most :data:`~twin.derive.cabinets.CABINET_MAX`
    lights): groups of 30-60 neighbouring lights. Mapped ``street_cabinet=lighting`` cabinets
    give the position of the group nearest to them.
junctions (:mod:`~twin.derive.junctions`)
    Traffic-signal points clustered with complete linkage (no two signals of one junction more
    than :data:`~twin.derive.junctions.JUNCTION_DIAMETER_M` apart); the junction's nodes are the
    drive-graph nodes within :data:`~twin.derive.junctions.JUNCTION_NODE_M` of its signals, its
    approaches the drive edges entering them.
turn pockets (:mod:`~twin.derive.pockets`)
    Per approach: left and right pockets (lanes, storage) from ``turn:lanes`` (``osm``), else
    inferred where the counted peak hour warrants one (HCM: a left-turn flow above 100 veh/h)
    and the edge has room (``inferred``); set on the approach's graph edge for the traffic DES.
sensors (:mod:`~twin.derive.sensors`)
    Derived, as no OSM tag maps them: a loop detector on each junction approach; footfall
    counters on the walkable segments with the most points of interest nearby; road-weather
    stations spread over the main roads (one per ~25 km², at least one).
depots, vehicles (:mod:`~twin.derive.fleet`)
    ``defaults.depots`` depots at drive-graph nodes found by seeded k-means over the network;
    the city's published fleet size (or ~0.8 vehicles per 1,000 inhabitants) split by type.
cameras, buildings, points of interest (:mod:`~twin.derive.features`)
    From OSM features (``man_made=surveillance``, public amenities, shops, bars, transit stops).
"""

from __future__ import annotations

from . import cabinets as cabinets
from . import features as features
from . import fleet as fleet
from . import junctions as junctions
from . import lights as lights
from . import pockets as pockets
from . import segments as segments
from . import sensors as sensors

__all__ = ["cabinets", "features", "fleet", "junctions", "lights", "pockets", "segments", "sensors"]
