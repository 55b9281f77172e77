"""Optimisation on the twin: dimming schedules against EN 13201, a year of nights, policies.

Submodules: :mod:`optimize.dimming` (``plan``: the night's plan as an ``xr.Dataset``),
:mod:`optimize.dimming_lp` (the LP: ``build_model``, ``solve``, the exact fast path),
:mod:`optimize.dimming_year` (``plan_year``: every night of a year, the annual levers),
:mod:`optimize.policies` (custom policies: data or a function over the night's dataset) and
:mod:`optimize.nightly` (the ``twin plan night`` main job).
"""

from __future__ import annotations

from optimize import dimming as dimming
from optimize import dimming_lp as dimming_lp
from optimize import dimming_year as dimming_year
from optimize import policies as policies
from optimize.dimming import plan
from optimize.dimming_year import plan_year

__all__ = ["dimming", "dimming_lp", "dimming_year", "plan", "plan_year", "policies"]
