"""Cabinet caps that bind: the minimum-energy plan of the cabinets whose floor breaks their cap.

With the EN 13201 requirement as a floor and no cap in the way, the minimum-energy plan is the
ramp-feasible lower envelope of each light (:func:`optimize.dimming_problem.envelope_levels`),
light by light. The envelope is the pointwise smallest feasible plan, so where it draws more
than a cabinet's contracted power no plan meets both: the cap is physical (the supply's breaker
trips above the subscribed kVA), the floor has to give. Those cabinets are solved as a linear
programme per night over every binding cabinet (block diagonal):

``x[g, t] + s[g, t] >= floor[g, t]``
    the shortfall ``s >= 0`` below the EN 13201 floor;
``sum_g P[g] * (f + (1 - f) * x[g, t]) <= cap[c, t]``
    the cap, with the driver floor ``f`` (lights switched off draw nothing);
``|x[g, t] - x[g, t-1]| <= ramp``
    the ramps, also against the unchanged slots just outside the window;
``z[c, t] >= s[g, t]``
    the largest shortfall of the cabinet in the slot.

minimising ``sum slot_h * P * (M * s + (1 - f) * x) + sum slot_h * P_c * z``: the lumen deficit
first (``M`` = :data:`SHORTFALL_WEIGHT` Wh per Wh), then its spread (the deficit is shared by the
cabinet's lights rather than put on a few), then the energy. Exact reductions keep it small:

1. *window*: only the slots of a cabinet from ``K = ceil(1 / ramp)`` slots before its first
   binding slot to ``K`` after its last enter the LP; the others keep the envelope. A light
   lowered in a slot constrains a neighbour ``k`` slots away only to ``x + k * ramp``, which is
   at least 1 once ``k >= K``, and the envelope is the cheapest plan without shortfall there;
2. *aggregation*: lights of a cabinet with the same floor, on/off pattern, driver minimum and
   boundary levels over the window have columns that differ only by their power, so one level
   per group is exact (every coupling row is a sum of power);
3. *blocks*: no row couples two cabinets, nor two windows of one cabinet more than ``2 K``
   slots apart, so each (cabinet, window) block is an LP of its own, solved by HiGHS' dual
   simplex in milliseconds (:func:`_solve_binding`);
4. *around the floor*: each level is written ``x = F + e - s``, so the floor rows go
   (:func:`_window_lp`).

That is the default path (``method="lp"``): exact, the optimum of the full model of the night
(checked against a straightforward pulp model in the tests, and against a full model of a
34,000-light night in ``benchmarks/dimming.py``). ``method="fill"`` is a quicker heuristic
kept for comparison: water-filling of each binding slot (ramp excess first, then the same
shortfall below the floor for every light of the cabinet), then the ramp-feasible upper
envelope (:func:`_fill`). It meets the caps and the ramps exactly, but its deficit is that of
the LP or a little more (within 5 % on the tests' instances; on the benchmark's sampled nights
1-3 % more deficit, an objective 1.1e-2 to 2.9e-2 above the optimum on the binding cabinets and
2e-3 to 4e-3 on the whole night). It takes half the time of the exact path over the benchmark's
year (20.9 s against 37.8 s for 365 nights of 34,000 lights, 11 cabinets binding every night).

Lights of non-binding cabinets keep their envelope, so the year of nights stays light by light
except where a cap binds: :attr:`CappedLevels.path` says which path ran.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from twin._errors import InputValidationError

from . import _highs
from .dimming_feasibility import InfeasibilityReport, InfeasiblePlanError
from .dimming_problem import envelope_levels

__all__ = ["SHORTFALL_WEIGHT", "CappedLevels", "capped_levels"]

FloatArray = npt.NDArray[np.float64]
#: Energy (Wh) one Wh-equivalent of light below the EN 13201 floor is worth: compliance first.
SHORTFALL_WEIGHT = 1000.0
_TOL = 1e-9


@dataclasses.dataclass(frozen=True)
class CappedLevels:
    """The minimum-energy levels under the caps, and what the caps cost.

    Attributes
    ----------
    level
        ``(n, T)`` dim levels (0 where off).
    envelope
        ``(n, T)`` the uncapped minimum-energy levels (the ramp-feasible lower envelope).
    shortfall
        ``(n, T)`` ``max(0, floor - level)`` on the lit slots: what the caps take below EN 13201.
    binding
        Positions of the cabinets whose cap binds (their envelope draws more than the cap).
    path
        ``"per-light"`` (no cap binds: the envelope),
        ``"per-light + joint LP on N cabinets"`` (exact) or
        ``"per-light + water-filling on N cabinets"`` (``method="fill"``).
    """

    level: FloatArray
    envelope: FloatArray
    shortfall: FloatArray
    binding: npt.NDArray[np.intp]
    path: str


def capped_levels(
    power_w: npt.ArrayLike,
    floor: npt.ArrayLike,
    on: npt.ArrayLike,
    *,
    ramp: float,
    cabinet_index: npt.ArrayLike,
    cap_w: npt.ArrayLike,
    slot_h: npt.ArrayLike,
    driver_floor: float,
    min_level: npt.ArrayLike,
    cabinet_ids: npt.ArrayLike | None = None,
    time: npt.ArrayLike | None = None,
    method: str = "lp",
    starts: dict[tuple[int, int], list[Any]] | None = None,
) -> CappedLevels:
    """The minimum-energy plan under EN 13201 floors, ramps and cabinet caps (module docstring).

    Parameters
    ----------
    power_w
        ``(n,)`` system power at full output, W.
    floor
        ``(n, T)`` the level each light needs per slot (requirement, driver minimum included).
    on
        ``(n, T)`` lit slots (False inside a switch-off window).
    ramp
        Largest level change per slot.
    cabinet_index
        ``(n,)`` position of each light's cabinet.
    cap_w
        ``(m,)`` or ``(m, T)`` real-power cap of each cabinet, W (``inf`` for none).
    slot_h
        ``(T,)`` slot durations, h.
    driver_floor
        Share of full power a lit driver draws at level 0.
    min_level
        ``(n,)`` lowest level of each driver.
    cabinet_ids, time
        Names of the cabinets and slots, for the error when a cap is below the smallest draw.
    method
        ``"lp"`` (default: the exact LP of each binding cabinet, module docstring) or
        ``"fill"`` (the water-filling heuristic, :func:`_fill`).
    starts
        A dict kept from one night to the next (``method="lp"``): the solver's final basis of
        each binding cabinet's window, the start of the same window's LP the next night when
        its shape is unchanged (three windows in four over a year). A start, not a result:
        the optimum is proved each night; it saves pivots.

    Returns
    -------
    CappedLevels

    Raises
    ------
    InfeasiblePlanError
        A cap is below what the cabinet draws with every light at its driver minimum.

    Examples
    --------
    Two 100 W lights needing full output on a 150 W cabinet share the cut:

    >>> c = capped_levels([100.0, 100.0], [[1.0], [1.0]], [[True], [True]], ramp=0.2,
    ...     cabinet_index=[0, 0], cap_w=[150.0], slot_h=[0.25], driver_floor=0.0,
    ...     min_level=[0.1, 0.1])
    >>> c.level.round(3).tolist(), c.path
    ([[0.75], [0.75]], 'per-light + joint LP on 1 cabinets')
    """
    if method not in ("lp", "fill"):
        msg = f"method: {method!r} is not 'lp' or 'fill'"
        raise InputValidationError(msg)
    p = np.asarray(power_w, dtype=np.float64)
    fl = np.asarray(floor, dtype=np.float64)
    n, t_n = fl.shape
    on_b = np.broadcast_to(np.asarray(on, dtype=bool), (n, t_n))
    cab = np.asarray(cabinet_index, dtype=np.intp)
    caps = np.asarray(cap_w, dtype=np.float64)
    m = int(caps.shape[0])
    caps = np.broadcast_to(caps[:, None] if caps.ndim == 1 else caps, (m, t_n))
    hours = np.asarray(slot_h, dtype=np.float64)
    lo = np.asarray(min_level, dtype=np.float64)
    if p.shape != (n,) or cab.shape != (n,) or lo.shape != (n,) or hours.shape != (t_n,):
        msg = f"capped_levels: power_w, cabinet_index, min_level must be ({n},), slot_h ({t_n},)"
        raise InputValidationError(msg)
    f = float(driver_floor)
    env = envelope_levels(fl, on_b, ramp)
    # cabinet sums as sparse products with the lights' power as weights (envelope is 0 when off)
    rows, lights = cab, np.arange(n)
    on_f = on_b.astype(np.float64)
    lit_w = np.asarray(sp.csr_matrix((p, (rows, lights)), shape=(m, n)) @ on_f, dtype=np.float64)
    env_w = sp.csr_matrix((p * (1.0 - f), (rows, lights)), shape=(m, n)) @ env
    draw = f * lit_w + np.asarray(env_w, dtype=np.float64)
    over = draw > caps * (1 + _TOL) + _TOL
    if not over.any():
        return CappedLevels(env, env, np.zeros_like(env), np.zeros(0, np.intp), "per-light")
    lo_w = sp.csr_matrix((p * (1.0 - f) * lo, (rows, lights)), shape=(m, n)) @ on_f
    least = f * lit_w + np.asarray(lo_w, dtype=np.float64)
    impossible = least > caps * (1 + _TOL) + _TOL
    if impossible.any():
        ci, ct = np.nonzero(impossible)
        names = np.arange(m).astype(str) if cabinet_ids is None else np.asarray(cabinet_ids)
        when = (
            np.arange(t_n).astype("datetime64[s]")
            if time is None
            else np.asarray(time, dtype="datetime64[ns]")
        )
        report = InfeasibilityReport(
            cap_cabinet=names[ci],
            cap_time=when[ct],
            cap_cabinet_pos=ci.astype(np.intp),
            cap_slot=ct.astype(np.intp),
            cap_min_power_w=least[ci, ct],
            cap_w=caps[ci, ct],
            cap_increase_w=least[ci, ct] - caps[ci, ct],
        )
        msg = f"cabinet_cap_w: below the draw of every light at its driver minimum: {report}"
        raise InfeasiblePlanError(msg, report)
    binding = np.flatnonzero(over.any(axis=1)).astype(np.intp)
    if method == "lp":
        level = env.copy()
        _solve_binding(
            level, env, fl, on_b, p, lo, cab, caps, over, binding, hours, ramp, f, starts
        )
        path = f"per-light + joint LP on {binding.size} cabinets"
    else:
        level = _fill(env, fl, on_b, p, lo, cab, caps, over, binding, ramp, f)
        path = f"per-light + water-filling on {binding.size} cabinets"
    # only the lights of binding cabinets can fall below their floor
    short = np.zeros_like(env)
    sub = np.flatnonzero(np.isin(cab, binding))
    gap = np.where(on_b[sub], np.maximum(fl[sub] - level[sub], 0.0), 0.0)
    gap[gap < 1e-7] = 0.0
    short[sub] = gap
    return CappedLevels(level, env, short, binding, path)


def _fill(
    env: FloatArray,
    fl: FloatArray,
    on: npt.NDArray[np.bool_],
    p: FloatArray,
    lo: FloatArray,
    cab: npt.NDArray[np.intp],
    caps: FloatArray,
    over: npt.NDArray[np.bool_],
    binding: npt.NDArray[np.intp],
    ramp: float,
    f: float,
) -> FloatArray:
    """Water-filling of each binding cabinet-slot, then the ramp-feasible upper envelope.

    In a slot where the cabinet's envelope breaks its cap, every light is lowered to
    ``max(min_level, min(envelope, floor - z))`` with the one ``z >= 0`` (found by bisection)
    that meets the cap: light the ramps held above the floor goes first (no deficit), then every
    light gives the same shortfall ``z`` below its floor, which is the smallest largest
    shortfall and the smallest total deficit of the slot. Lowering a slot may break a ramp with
    its neighbours: the pointwise largest ramp-feasible plan below the cut levels,
    ``min_s (x[s] + ramp * |t - s|)``, lowers them as little as that needs, and lowers power
    only, so the caps still hold. Only the lights of binding cabinets change.
    """
    level = env.copy()
    lights = np.flatnonzero(np.isin(cab, binding))
    pos = np.searchsorted(binding, cab[lights])
    sub_env, sub_fl, sub_on = env[lights], fl[lights], on[lights]
    sub_lo = lo[lights][:, None]
    sub_p = p[lights][:, None]
    # the cap room of each binding cabinet-slot for the part of power that varies with level
    room = (caps[binding] - f * _sum_rows(np.where(sub_on, sub_p, 0.0), pos, binding.size)) / (
        1.0 - f
    )
    cut = over[binding][pos]  # (k, T) lights in a binding cabinet-slot

    def levels(z: FloatArray) -> FloatArray:
        return np.maximum(sub_lo, np.minimum(sub_env, sub_fl - z[pos]))

    k = lights.size
    members = sp.csr_matrix((np.ones(k), (pos, np.arange(k))), shape=(binding.size, k))
    sub_pw = np.where(sub_on, sub_p, 0.0)

    def load(z: FloatArray) -> FloatArray:
        return np.asarray(members @ (sub_pw * levels(z)), dtype=np.float64)

    z_lo = np.zeros(room.shape)
    z_hi = np.ones(room.shape)
    for _ in range(40):  # bisection on every binding cabinet-slot at once (z to 1e-12)
        mid = 0.5 * (z_lo + z_hi)
        ok = load(mid) <= room
        z_hi = np.where(ok, mid, z_hi)
        z_lo = np.where(ok, z_lo, mid)
    x = np.where(cut & sub_on, levels(z_hi), sub_env)
    level[lights] = _upper_envelope(x, sub_on, ramp)
    return level


def _sum_rows(values: FloatArray, pos: npt.NDArray[np.intp], m: int) -> FloatArray:
    """Row sums by group (``pos``): a sparse product, far quicker than ``np.add.at``."""
    k = pos.size
    members = sp.csr_matrix((np.ones(k), (pos, np.arange(k))), shape=(m, k))
    return np.asarray(members @ values, dtype=np.float64)


def _upper_envelope(x: FloatArray, on: npt.NDArray[np.bool_], ramp: float) -> FloatArray:
    """``min_s (x[s] + ramp * |t - s|)`` over each on-stretch: the largest ramp-feasible plan."""
    if ramp >= 1.0 or x.shape[1] < 2:
        return x
    u = x.copy()
    link = on[:, 1:] & on[:, :-1]
    for t in range(1, u.shape[1]):
        u[:, t] = np.where(link[:, t - 1], np.minimum(u[:, t], u[:, t - 1] + ramp), u[:, t])
    for t in range(u.shape[1] - 2, -1, -1):
        u[:, t] = np.where(link[:, t], np.minimum(u[:, t], u[:, t + 1] + ramp), u[:, t])
    return np.where(on, u, 0.0)


def _cabinet_draw(
    p: FloatArray,
    level: FloatArray,
    on: npt.NDArray[np.bool_],
    cab: npt.NDArray[np.intp],
    m: int,
    f: float,
) -> FloatArray:
    draw = np.where(on, p[:, None] * (f + (1.0 - f) * level), 0.0)
    return _sum_rows(draw, cab, m)


def _windows(over_c: npt.NDArray[np.bool_], k: int, t_n: int) -> list[tuple[int, int]]:
    """The slot windows ``[t0, t1)`` of one cabinet: its binding slots, ``k`` slots either side.

    Runs of binding slots more than ``2 k`` slots apart get a window each: between them every
    light keeps its envelope (the exactness argument of reduction 1 in the module docstring).

    Examples
    --------
    >>> _windows(np.array([0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], dtype=bool), 2, 13)
    [(0, 5), (9, 13)]
    """
    slots = np.flatnonzero(over_c)
    gap = np.flatnonzero(np.diff(slots) > 2 * k)
    first = np.concatenate([slots[:1], slots[gap + 1]])
    last = np.concatenate([slots[gap], slots[-1:]])
    return [
        (max(0, int(a) - k), min(t_n, int(b) + k + 1)) for a, b in zip(first, last, strict=True)
    ]


@dataclasses.dataclass
class _WindowLp:
    """The LP of one cabinet over one window, as arrays (columns ``e``, ``s``, then ``z``)."""

    lights: npt.NDArray[np.intp]
    t0: int
    group: npt.NDArray[np.intp]
    lit: npt.NDArray[np.bool_]
    floor: FloatArray
    cost: FloatArray
    col_lo: FloatArray
    col_hi: FloatArray
    matrix: sp.csc_matrix
    row_lo: FloatArray
    row_hi: FloatArray


def _window_lp(  # noqa: PLR0913 - the arrays of one night
    lights: npt.NDArray[np.intp],
    t0: int,
    t1: int,
    env: FloatArray,
    fl: FloatArray,
    on: npt.NDArray[np.bool_],
    p: FloatArray,
    lo: FloatArray,
    cap: FloatArray,
    hours: FloatArray,
    ramp: float,
    f: float,
) -> _WindowLp:
    """Build the windowed, aggregated LP of one cabinet (module docstring), vectorised.

    Each level is written ``x = F + e - s`` around the floor ``F``: ``e >= 0`` the light above
    the floor (ramps), ``s >= 0`` the shortfall below it. The bounds of ``x`` become bounds of
    ``e`` (``[max(0, a - F), b - F]``) and of ``s`` (``[0, F - a]``); no optimum has both
    positive (a unit of both costs ``M`` and saves nothing), so this LP has the optimum of the
    one in ``x`` and ``s``, with no row ``x + s >= F``: a third fewer rows.
    """
    t_n = fl.shape[1]
    w = t1 - t0
    n_l = lights.size
    left = env[lights, t0 - 1] if t0 > 0 else np.zeros(n_l)
    right = env[lights, t1] if t1 < t_n else np.zeros(n_l)
    on_left = on[lights, t0 - 1] if t0 > 0 else np.zeros(n_l, dtype=bool)
    on_right = on[lights, t1] if t1 < t_n else np.zeros(n_l, dtype=bool)
    key = np.column_stack(
        [fl[lights, t0:t1], on[lights, t0:t1], lo[lights], left, right, on_left, on_right]
    )
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = inv.reshape(-1).astype(np.intp)
    pg = np.bincount(group, weights=p[lights])
    rep = lights[first]
    n_g = rep.size
    lit = on[rep, t0:t1]
    floor = fl[rep, t0:t1]
    h = hours[t0:t1]
    # bounds of x: the driver minimum and full output, and the ramps to the fixed slots outside
    a = np.repeat(lo[rep][:, None], w, axis=1)
    b = np.ones((n_g, w))
    if t0 > 0:
        m0 = on_left[first] & lit[:, 0]
        a[m0, 0] = np.maximum(a[m0, 0], left[first][m0] - ramp)
        b[m0, 0] = np.minimum(b[m0, 0], left[first][m0] + ramp)
    if t1 < t_n:
        m1 = on_right[first] & lit[:, -1]
        a[m1, -1] = np.maximum(a[m1, -1], right[first][m1] - ramp)
        b[m1, -1] = np.minimum(b[m1, -1], right[first][m1] + ramp)
    b = np.maximum(a, b)
    n_lit = int(lit.sum())
    e_id = np.full((n_g, w), -1, dtype=np.intp)
    e_id[lit] = np.arange(n_lit)
    s_id = np.where(lit, e_id + n_lit, -1)
    z_id = 2 * n_lit + np.arange(w)
    fl_lit, a_lit, b_lit = floor[lit], a[lit], b[lit]
    e_lo = np.maximum(0.0, a_lit - fl_lit)
    hp = (h[None, :] * pg[:, None])[lit]
    cost = np.concatenate([hp * (1.0 - f), hp * (SHORTFALL_WEIGHT - (1.0 - f)), h * pg.sum()])
    col_lo = np.concatenate([e_lo, np.zeros(n_lit), np.zeros(w)])
    col_hi = np.concatenate(
        [np.maximum(e_lo, b_lit - fl_lit), np.maximum(0.0, fl_lit - a_lit), np.ones(w)]
    )
    slot = np.broadcast_to(np.arange(w)[None, :], (n_g, w))
    # z[t] - s[g, t] >= 0: the largest shortfall of the cabinet in the slot
    r_link = np.arange(n_lit)
    rows = [r_link, r_link]
    cols = [z_id[slot[lit]], s_id[lit]]
    vals: list[npt.NDArray[np.floating[Any]]] = [np.ones(n_lit), -np.ones(n_lit)]
    # ramps: |x[g, t] - x[g, t-1]| <= ramp, written on e and s
    both = lit[:, 1:] & lit[:, :-1]
    n_b = int(both.sum())
    r_ramp = n_lit + np.arange(n_b)
    d_floor = (floor[:, 1:] - floor[:, :-1])[both]
    rows += [r_ramp] * 4
    cols += [e_id[:, 1:][both], e_id[:, :-1][both], s_id[:, 1:][both], s_id[:, :-1][both]]
    vals += [np.ones(n_b), -np.ones(n_b), -np.ones(n_b), np.ones(n_b)]
    # the cap of each slot with a light on
    slots_on = np.flatnonzero(lit.any(axis=0))
    cap_row = np.full(w, -1, dtype=np.intp)
    cap_row[slots_on] = n_lit + n_b + np.arange(slots_on.size)
    gi, tj = np.nonzero(lit)
    rows += [cap_row[tj], cap_row[tj]]
    cols += [e_id[gi, tj], s_id[gi, tj]]
    vals += [pg[gi] * (1.0 - f), -pg[gi] * (1.0 - f)]
    lit_p = np.where(lit, pg[:, None], 0.0)
    room = cap[t0:t1] - (lit_p * (f + (1.0 - f) * floor)).sum(axis=0)
    n_rows = n_lit + n_b + slots_on.size
    matrix = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, 2 * n_lit + w),
    )
    row_lo = np.concatenate([np.zeros(n_lit), -ramp - d_floor, np.full(slots_on.size, -np.inf)])
    row_hi = np.concatenate([np.full(n_lit, np.inf), ramp - d_floor, room[slots_on]])
    return _WindowLp(lights, t0, group, lit, floor, cost, col_lo, col_hi, matrix, row_lo, row_hi)


def _solve_window(lp: _WindowLp, h: Any, start: list[Any] | None = None) -> FloatArray:
    """Solve one window's LP with HiGHS ``h``; its levels, ``(lights, window)``.

    ``start``: ``[shape, basis]`` of an LP solved before (the same cabinet's window the night
    before), or ``[]``; its basis is the starting point when the shape is the same, and the
    new optimal basis is written back. HiGHS proves optimality from any start: it changes the
    number of pivots, not the optimum.
    """
    import highspy

    model = highspy.HighsLp()
    model.num_col_ = lp.cost.size
    model.num_row_ = lp.row_lo.size
    model.col_cost_ = lp.cost
    model.col_lower_ = lp.col_lo
    model.col_upper_ = lp.col_hi
    model.row_lower_ = lp.row_lo
    model.row_upper_ = lp.row_hi
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = lp.matrix.indptr.astype(np.int32)
    model.a_matrix_.index_ = lp.matrix.indices.astype(np.int32)
    model.a_matrix_.value_ = lp.matrix.data
    h.passModel(model)
    shape = (lp.cost.size, lp.row_lo.size, lp.matrix.nnz)
    if start and start[0] == shape:
        h.setBasis(start[1])
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        msg = f"cabinet caps: the LP of a binding cabinet ended {status}"
        raise RuntimeError(msg)
    if start is not None:
        got = h.getBasis()
        basis = highspy.HighsBasis()
        basis.col_status = list(got.col_status)
        basis.row_status = list(got.row_status)
        basis.valid = True
        start[:] = [shape, basis]
    col = np.asarray(h.getSolution().col_value, dtype=np.float64)
    n_lit = int(lp.lit.sum())
    x = np.zeros(lp.lit.shape)
    x[lp.lit] = lp.floor[lp.lit] + col[:n_lit] - col[n_lit : 2 * n_lit]
    return np.clip(x[lp.group], 0.0, 1.0)


def _solve_binding(  # noqa: PLR0913 - the arrays of one night
    level: FloatArray,
    env: FloatArray,
    fl: FloatArray,
    on: npt.NDArray[np.bool_],
    p: FloatArray,
    lo: FloatArray,
    cab: npt.NDArray[np.intp],
    caps: FloatArray,
    over: npt.NDArray[np.bool_],
    binding: npt.NDArray[np.intp],
    hours: FloatArray,
    ramp: float,
    f: float,
    starts: dict[tuple[int, int], list[Any]] | None = None,
) -> None:
    """Solve the LP of each binding cabinet and window; write their levels into ``level``.

    The night's LP is block diagonal (no row couples two cabinets, nor two windows of one
    cabinet), so each block is solved on its own: a few thousand columns each, which the dual
    simplex solves in milliseconds where the one joint LP took several times longer.
    """
    t_n = fl.shape[1]
    k = math.ceil(1.0 / ramp) if ramp > 0 else t_n
    order = np.argsort(cab, kind="stable")
    edge = np.searchsorted(cab[order], np.arange(caps.shape[0] + 1))
    h = _highs.new_highs()  # one instance for every block: each passModel replaces the last
    # a few thousand columns: presolve costs more than it saves here (measured)
    h.setOptionValue("presolve", "off")
    h.setOptionValue("simplex_strategy", 1)  # dual simplex
    for c in binding.tolist():
        lights = order[edge[c] : edge[c + 1]]
        for j, (t0, t1) in enumerate(_windows(over[c], k, t_n)):
            lp = _window_lp(lights, t0, t1, env, fl, on, p, lo, caps[c], hours, ramp, f)
            start = None if starts is None else starts.setdefault((c, j), [])
            x = _solve_window(lp, h, start)
            level[lights, t0:t1] = np.where(on[lights, t0:t1], x, 0.0)
