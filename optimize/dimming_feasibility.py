"""Feasibility of a dimming problem without solving it, and constraint violations of a plan.

The exact *ramp-feasible lower envelope* (:func:`optimize.dimming_problem.ramp_envelope`) is the
pointwise smallest level profile that meets the requirements and the ramps, so the smallest power
of each cabinet in each slot and the smallest energy of the night follow exactly. If any of them
exceeds its cap or the budget, :class:`InfeasiblePlanError` names the cabinets, slots and the
smallest relaxation that fixes each.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from optimize.dimming_problem import (
    DimmingProblem,
    FloatArray,
    IntArray,
    _caps,
    cabinet_power_w,
    energy_wh,
    lower_bound_levels,
    ramp_envelope,
)
from twin._errors import InputValidationError, TwinError

__all__ = [
    "InfeasibilityReport",
    "InfeasiblePlanError",
    "check_feasibility",
    "constraint_violations",
]

_FEAS_RTOL = 1e-9  # relative slack allowed in the envelope feasibility checks


# --------------------------------------------------------------------------------------------
# infeasibility


@dataclass(frozen=True)
class InfeasibilityReport:
    """What makes a dimming problem infeasible, and the smallest relaxation that fixes it.

    Attributes
    ----------
    cap_cabinet, cap_time
        Cabinet id and slot time of each cabinet/slot whose smallest feasible power exceeds its
        cap; ``cap_cabinet_pos`` and ``cap_slot`` are their positions in the problem arrays.
    cap_min_power_w, cap_w
        That smallest power and the cap, W.
    cap_increase_w
        The smallest cap increase that fixes each, W (``cap_min_power_w - cap_w``).
    min_energy_wh, budget_wh
        The smallest feasible energy of the night and the budget, Wh.
    budget_increase_wh
        The smallest budget increase that fixes it (0 when the budget is not in conflict), Wh.
    unreachable_light, unreachable_time
        Lights and slots where the envelope exceeds full output (no ramp reaches the level).
    """

    cap_cabinet: npt.NDArray[Any] = field(default_factory=lambda: np.array([], dtype=object))
    cap_time: npt.NDArray[np.datetime64] = field(
        default_factory=lambda: np.array([], dtype="datetime64[ns]")
    )
    cap_cabinet_pos: IntArray = field(default_factory=lambda: np.array([], dtype=np.intp))
    cap_slot: IntArray = field(default_factory=lambda: np.array([], dtype=np.intp))
    cap_min_power_w: FloatArray = field(default_factory=lambda: np.array([]))
    cap_w: FloatArray = field(default_factory=lambda: np.array([]))
    cap_increase_w: FloatArray = field(default_factory=lambda: np.array([]))
    min_energy_wh: float = 0.0
    budget_wh: float | None = None
    budget_increase_wh: float = 0.0
    unreachable_light: npt.NDArray[Any] = field(default_factory=lambda: np.array([], dtype=object))
    unreachable_time: npt.NDArray[np.datetime64] = field(
        default_factory=lambda: np.array([], dtype="datetime64[ns]")
    )

    @property
    def feasible(self) -> bool:
        """True when nothing conflicts."""
        return (
            self.cap_increase_w.size == 0
            and self.budget_increase_wh <= 0
            and self.unreachable_light.size == 0
        )

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain Python (JSON-serialisable) values."""
        return {
            "cabinet_cap": [
                {
                    "cabinet": str(c),
                    "time": str(t),
                    "min_power_w": float(p),
                    "cap_w": float(k),
                    "increase_w": float(d),
                }
                for c, t, p, k, d in zip(
                    self.cap_cabinet,
                    self.cap_time,
                    self.cap_min_power_w,
                    self.cap_w,
                    self.cap_increase_w,
                    strict=True,
                )
            ],
            "energy_budget": {
                "min_energy_wh": self.min_energy_wh,
                "budget_wh": self.budget_wh,
                "increase_wh": self.budget_increase_wh,
            },
            "unreachable": [
                {"light": str(a), "time": str(t)}
                for a, t in zip(self.unreachable_light, self.unreachable_time, strict=True)
            ],
        }

    def relaxed(self, problem: DimmingProblem, *, fraction: float = 1.0) -> DimmingProblem:
        """Return ``problem`` with ``fraction`` of each cap and budget relaxation applied.

        ``fraction=1`` gives the smallest feasible relaxation (when nothing is unreachable).
        """
        caps = np.array(problem.cabinet_cap_w)
        caps[self.cap_cabinet_pos, self.cap_slot] += fraction * self.cap_increase_w
        budget = problem.energy_budget_wh
        if budget is not None and self.budget_increase_wh > 0:
            budget = budget + fraction * self.budget_increase_wh
        return _replace(problem, cabinet_cap_w=caps, energy_budget_wh=budget)

    def __str__(self) -> str:
        lines = []
        if self.unreachable_light.size:
            pairs = ", ".join(
                f"{a}@{t}"
                for a, t in zip(self.unreachable_light[:5], self.unreachable_time[:5], strict=True)
            )
            lines.append(
                f"{self.unreachable_light.size} light-slot(s) need more than full output to "
                f"meet the ramp limit: {pairs}"
            )
        if self.cap_increase_w.size:
            order = np.argsort(-self.cap_increase_w)[:5]
            worst = ", ".join(
                f"{self.cap_cabinet[k]}@{self.cap_time[k]} +{self.cap_increase_w[k]:.1f} W"
                for k in order
            )
            n_cab = np.unique(self.cap_cabinet_pos).size
            lines.append(
                f"cabinet_cap: {self.cap_increase_w.size} cabinet-slot(s) in {n_cab} cabinet(s) "
                f"need more than their cap even at the lowest feasible levels; smallest increases "
                f"(largest first): {worst}"
            )
        if self.budget_increase_wh > 0:
            lines.append(
                f"energy_budget: the lowest feasible energy is {self.min_energy_wh:.1f} Wh, over "
                f"the budget of {self.budget_wh:.1f} Wh; raise it by "
                f"{self.budget_increase_wh:.1f} Wh"
            )
        return "; ".join(lines) if lines else "feasible"


class InfeasiblePlanError(TwinError, ValueError):
    """No dimming plan meets the constraints; ``.report`` says which and how to relax them."""

    def __init__(self, msg: str, report: InfeasibilityReport) -> None:
        super().__init__(msg)
        self.report = report


def _replace(problem: DimmingProblem, **changes: Any) -> DimmingProblem:
    return replace(problem, **changes)


def check_feasibility(problem: DimmingProblem, *, ramps: bool = True) -> InfeasibilityReport:
    """Check caps and budget against the lowest feasible plan, without solving.

    Parameters
    ----------
    problem
        The problem.
    ramps
        Use the ramp envelope (True) or the slot-wise floor ``max(required, min_level)``
        (False, for the ``min_energy`` plan that ignores ramps).

    Returns
    -------
    InfeasibilityReport
        ``report.feasible`` is True when the problem has a plan.
    """
    env = ramp_envelope(problem) if ramps else lower_bound_levels(problem)
    on = problem.on
    bad = on & (env > 1.0 + 1e-12)
    ui, ut = np.nonzero(bad)
    min_cab = cabinet_power_w(problem, np.minimum(env, 1.0))
    caps = _caps(problem)
    over = min_cab > caps + _FEAS_RTOL * np.maximum(np.abs(caps), 1.0)
    ci, ct = np.nonzero(over)
    e_min = float(energy_wh(problem, np.minimum(env, 1.0)).sum())
    budget = problem.energy_budget_wh
    b_inc = 0.0
    if budget is not None and e_min > budget + _FEAS_RTOL * max(abs(budget), 1.0):
        b_inc = e_min - budget
    return InfeasibilityReport(
        cap_cabinet=problem.cabinet[ci],
        cap_time=problem.time[ct],
        cap_cabinet_pos=ci.astype(np.intp),
        cap_slot=ct.astype(np.intp),
        cap_min_power_w=min_cab[ci, ct],
        cap_w=caps[ci, ct],
        cap_increase_w=min_cab[ci, ct] - caps[ci, ct],
        min_energy_wh=e_min,
        budget_wh=budget,
        budget_increase_wh=b_inc,
        unreachable_light=problem.light[ui],
        unreachable_time=problem.time[ut],
    )


def _raise_if_infeasible(problem: DimmingProblem, *, ramps: bool = True) -> None:
    report = check_feasibility(problem, ramps=ramps)
    if not report.feasible:
        msg = f"no dimming plan meets the constraints: {report}"
        raise InfeasiblePlanError(msg, report)


def constraint_violations(problem: DimmingProblem, level: npt.ArrayLike) -> dict[str, float]:
    """Return the largest violation of each named constraint by a level plan (0 when met).

    Keys: ``bounds`` (level outside ``[min_level, 1]`` while on), ``forced_off`` (level not 0
    in a switch-off window), ``requirement``, ``ramp_up``, ``ramp_down`` (level units),
    ``cabinet_cap`` (W) and ``energy_budget`` (Wh).
    """
    x = np.asarray(level, dtype=np.float64)
    if x.shape != (problem.n, problem.n_slots):
        msg = f"level: shape {x.shape}, expected {(problem.n, problem.n_slots)}"
        raise InputValidationError(msg)
    on = problem.on
    ml = np.asarray(problem.min_level)[:, None]
    out = {
        "bounds": float(np.where(on, np.maximum(ml - x, x - 1.0), 0.0).max(initial=0.0)),
        "forced_off": float(np.where(on, 0.0, np.abs(x)).max(initial=0.0)),
        "requirement": float(np.where(on, problem.required - x, 0.0).max(initial=0.0)),
    }
    link = on[:, 1:] & on[:, :-1]
    step = np.diff(x, axis=1)
    out["ramp_up"] = float(np.where(link, step - problem.ramp, 0.0).max(initial=0.0))
    out["ramp_down"] = float(np.where(link, -step - problem.ramp, 0.0).max(initial=0.0))
    cab = cabinet_power_w(problem, x) - _caps(problem)
    out["cabinet_cap"] = float(np.where(np.isfinite(cab), cab, 0.0).max(initial=0.0))
    budget = problem.energy_budget_wh
    e = float(energy_wh(problem, x).sum())
    out["energy_budget"] = 0.0 if budget is None else max(0.0, e - budget)
    return {k: max(v, 0.0) for k, v in out.items()}
