"""Optimisation on the twin: dimming schedules against EN 13201 and the 65% energy budget.

Submodules: :mod:`optimize.dimming` (``plan``: the night's plan as an ``xr.Dataset``),
:mod:`optimize.dimming_lp` (the LP: ``build_model``, ``solve``, the exact fast path) and
:mod:`optimize.nightly` (the ``twin plan night`` main job).
"""

from __future__ import annotations

from optimize import dimming as dimming
from optimize import dimming_lp as dimming_lp
from optimize.dimming import plan

__all__ = ["dimming", "dimming_lp", "plan"]
