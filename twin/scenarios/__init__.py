"""Simulations on the twin, each returning an ``xr.Dataset``.

Submodules: :mod:`~twin.scenarios.demand` (trip generation, gravity OD, day profiles, events),
:mod:`~twin.scenarios.calibration` (against traffic counts, GEH),
:mod:`~twin.scenarios.footfall` (pedestrian DES), :mod:`~twin.scenarios.traffic` (mesoscopic
traffic DES), :mod:`~twin.scenarios.signals` (fixed-time plans, Webster) and
:mod:`~twin.scenarios.network` (scenarios built from a twin). They are imported on demand, so
that loading a twin stays light.
"""

from __future__ import annotations

__all__ = ["calibration", "demand", "footfall", "network", "signals", "traffic"]
