"""The array path of the dimming LP: reduced and aggregated (``fast``) or full (``highs``).

The matrix is built with numpy/scipy and handed to ``highspy`` after the exact reductions
described in :mod:`optimize.dimming_lp` (envelope bounds, aggregation of identical columns, lazy
ramp rows, the budget split per cabinet, a greedy optimal start).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from optimize import _highs
from optimize.dimming_problem import (
    DimmingProblem,
    DimmingSolution,
    FloatArray,
    IntArray,
    Objective,
    _caps,
    _linear_objective,
    _nan_level,
    _status_of,
    _sum_by_cabinet,
    lower_bound_levels,
    objective_value,
    ramp_envelope,
)
from twin.energy.power import drawn_power_w

__all__ = ["solve_arrays"]


# --------------------------------------------------------------------------------------------
# the array path (fast: reduced and aggregated; highs: full)


@dataclass
class _ArrayLp:
    """A minimisation LP in column-wise form, plus how to map its columns back to lights.

    ``matrix`` holds the cap, energy and budget rows; ramp rows are the pairs
    ``-ramp <= x[ramp_hi] - x[ramp_lo] <= ramp``, kept apart so that the fast path can add
    only those a solution violates.
    """

    cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    matrix: sp.csc_matrix
    row_lower: FloatArray
    row_upper: FloatArray
    ramp: float
    ramp_hi: npt.NDArray[np.int64]
    ramp_lo: npt.NDArray[np.int64]
    col_group: IntArray  # group of each level column
    col_slot: IntArray  # slot of each level column
    group_level: FloatArray  # (G, T) level of group slots that have no column
    light_group: IntArray  # group of each light, -1 for lights fixed at the envelope
    base_level: FloatArray  # (n, T) levels of the fixed lights
    cap_row: IntArray  # (m, T) row of each cap, -1 if none
    budget_row: int  # -1 if none
    col_power: FloatArray = field(default_factory=lambda: np.array([]))  # W per unit level
    col_cap_row: IntArray = field(default_factory=lambda: np.array([], dtype=np.intp))
    col_energy: FloatArray = field(default_factory=lambda: np.array([]))  # kWh per unit level

    @property
    def n_level_cols(self) -> int:
        return int(self.col_group.size)


def _group_rows(key: FloatArray) -> tuple[IntArray, IntArray]:
    """Return ``(first, inverse)``: one representative row per distinct row of ``key``."""
    if key.shape[0] == 0:
        return np.array([], dtype=np.intp), np.array([], dtype=np.intp)
    key = np.ascontiguousarray(key)
    rows = key.view(np.dtype((np.void, key.dtype.itemsize * key.shape[1]))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    return first.astype(np.intp), inverse.reshape(-1).astype(np.intp)


def _build_array_lp(problem: DimmingProblem, objective: str, reduce: bool) -> _ArrayLp:
    """Assemble the LP with numpy/scipy; ``reduce`` applies the exact reductions."""
    n, t_n, m = problem.n, problem.n_slots, problem.cabinet.size
    on = problem.on
    f = problem.driver_floor
    pw = problem.power_w
    h = problem.slot_h
    r = problem.ramp
    cab = problem.cabinet_index
    c_light, _, sense = _linear_objective(problem, objective)
    gain = sense * c_light  # the LP maximises gain . x

    upper = np.asarray(problem.max_level, dtype=np.float64)
    if reduce:
        lower = ramp_envelope(problem)
        # lights that gain nothing from light above the envelope stay on it
        fixed = np.asarray(~(np.where(on, gain, -1.0) > 0).any(axis=1), dtype=bool)
        lp_lights = np.flatnonzero(~fixed)
        # columns identical up to the factor power_w: same cabinet, on pattern, bounds, gain/W
        key = np.concatenate(
            [
                cab[lp_lights, None].astype(np.float64),
                on[lp_lights].astype(np.float64),
                lower[lp_lights],
                # the bound enters the key only where it is not the default 1
                upper[lp_lights] if (upper < 1.0).any() else np.empty((lp_lights.size, 0)),
                gain[lp_lights] / pw[lp_lights, None],
            ],
            axis=1,
        )
        first, inverse = _group_rows(key)
        rep = lp_lights[first]
    else:
        lower = lower_bound_levels(problem)
        fixed = np.zeros(n, dtype=bool)
        lp_lights = np.arange(n)
        rep = lp_lights
        inverse = np.arange(n, dtype=np.intp)
    n_g = rep.size
    light_group = np.full(n, -1, dtype=np.intp)
    light_group[lp_lights] = inverse
    g_power = np.bincount(inverse, weights=pw[lp_lights], minlength=n_g)
    g_gain = np.zeros((n_g, t_n))
    np.add.at(g_gain, inverse, gain[lp_lights])
    g_on = on[rep]
    g_lower = lower[rep]
    g_upper = np.maximum(upper[rep], g_lower)
    g_cab = cab[rep]
    base_level = np.where(fixed[:, None], lower, 0.0)

    # one column per group and slot where it is on, unless the envelope pins it at its maximum
    col_mask = g_on & (g_lower < g_upper) if reduce else g_on
    group_level = np.where(g_on & ~col_mask, g_lower, 0.0)
    col_g, col_t = np.nonzero(col_mask)
    n_col = col_g.size
    col_of = np.full((n_g, t_n), -1, dtype=np.int64)
    col_of[col_g, col_t] = np.arange(n_col)
    a_g = g_power * (1.0 - f)  # W per unit level of each group
    a_col = np.asarray(a_g[col_g], dtype=np.float64)

    # ramp pairs: -r <= x[t] - x[t-1] <= r
    ramp_hi = np.array([], dtype=np.int64)
    ramp_lo = np.array([], dtype=np.int64)
    if r < 1.0 and t_n > 1:
        link = col_mask[:, 1:] & col_mask[:, :-1]
        if reduce:  # the bounds [envelope, max_level] already keep this step within the ramp
            link &= ((g_upper[:, 1:] - g_lower[:, :-1]) > r) | (
                (g_upper[:, :-1] - g_lower[:, 1:]) > r
            )
        rg, rt = np.nonzero(link)
        ramp_hi, ramp_lo = col_of[rg, rt + 1], col_of[rg, rt]

    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[FloatArray] = []
    row_lo: list[FloatArray] = []
    row_hi: list[FloatArray] = []
    n_row = 0

    # cabinet caps: sum of a_g x over the cabinet's columns <= cap - constant power
    const_light = drawn_power_w(pw, base_level, driver_floor=f, on=on)
    const_light[~fixed] = np.where(on[~fixed], pw[~fixed, None] * f, 0.0)
    const_group = a_g[:, None] * group_level
    p_const = _sum_by_cabinet(problem, const_light)
    np.add.at(p_const, g_cab, const_group)
    caps = _caps(problem)
    rhs = caps - p_const
    p_var = np.zeros((m, t_n))
    np.add.at(p_var, (g_cab[col_g], col_t), a_col)
    need = np.isfinite(caps) & (p_var > 0)
    if reduce:  # drop caps that full output cannot reach
        need &= p_var > rhs
    cap_row = np.full((m, t_n), -1, dtype=np.intp)
    ci, ct = np.nonzero(need)
    cap_row[ci, ct] = np.arange(ci.size)
    sel = cap_row[g_cab[col_g], col_t]
    use = sel >= 0
    rows.append(sel[use].astype(np.int64))
    cols.append(np.flatnonzero(use).astype(np.int64))
    vals.append(a_col[use])
    row_lo.append(np.full(ci.size, -np.inf))
    row_hi.append(rhs[ci, ct])
    n_row += ci.size

    # energy budget (kWh keeps the row well scaled): one energy column per cabinet,
    # e_c = its columns' energy, and sum(e_c) <= budget; a dense row slows HiGHS badly
    budget_row = -1
    n_extra = 0
    budget = problem.energy_budget_wh
    if budget is not None and n_col:
        e_const = float((const_light * h[None, :]).sum() + (const_group * h[None, :]).sum())
        b_rhs = (budget - e_const) / 1000.0
        b_coef = a_col * h[col_t] / 1000.0
        if not reduce or b_coef.sum() > b_rhs:
            cabs, e_of = np.unique(g_cab[col_g], return_inverse=True)
            n_extra = cabs.size
            e_cols = n_col + np.arange(n_extra, dtype=np.int64)
            e_rows = n_row + np.arange(n_extra, dtype=np.int64)
            rows += [e_rows[e_of.reshape(-1)], e_rows]
            cols += [np.arange(n_col, dtype=np.int64), e_cols]
            vals += [b_coef, -np.ones(n_extra)]
            row_lo.append(np.zeros(n_extra))
            row_hi.append(np.zeros(n_extra))
            n_row += n_extra
            budget_row = n_row
            rows.append(np.full(n_extra, n_row, dtype=np.int64))
            cols.append(e_cols)
            vals.append(np.ones(n_extra))
            row_lo.append(np.array([-np.inf]))
            row_hi.append(np.array([b_rhs]))
            n_row += 1

    matrix = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_row, n_col + n_extra),
    )
    return _ArrayLp(
        cost=np.concatenate([-g_gain[col_g, col_t], np.zeros(n_extra)]),
        col_lower=np.concatenate([g_lower[col_g, col_t], np.zeros(n_extra)]),
        col_upper=np.concatenate([g_upper[col_g, col_t], np.full(n_extra, np.inf)]),
        matrix=matrix,
        row_lower=np.concatenate(row_lo),
        row_upper=np.concatenate(row_hi),
        ramp=r,
        ramp_hi=ramp_hi.astype(np.int64),
        ramp_lo=ramp_lo.astype(np.int64),
        col_group=col_g.astype(np.intp),
        col_slot=col_t.astype(np.intp),
        group_level=group_level,
        light_group=light_group,
        base_level=base_level,
        cap_row=cap_row,
        budget_row=budget_row,
        col_power=a_col,
        col_cap_row=sel.astype(np.intp),
        col_energy=a_col * h[col_t] / 1000.0,
    )


def _ramp_block(lp: _ArrayLp, pairs: npt.NDArray[np.int64]) -> sp.csr_matrix:
    k = pairs.size
    n_cols = lp.cost.size
    data = np.tile([1.0, -1.0], k)
    idx = np.column_stack([lp.ramp_hi[pairs], lp.ramp_lo[pairs]]).ravel()
    return sp.csr_matrix((data, idx, np.arange(0, 2 * k + 1, 2)), shape=(k, n_cols))


def _greedy_basis(lp: _ArrayLp) -> tuple[IntArray, IntArray] | None:
    """Return an optimal basis ``(col_status, row_status)`` of ``lp`` without ramp rows.

    Without ramps the LP is a fractional knapsack with nested (laminar) capacities: each
    level column uses ``col_power`` W of its cap row and ``col_energy`` kWh of the budget per
    unit of level. Its feasible set, in the budget each column spends above its lower bound, is
    a polymatroid, so filling columns by decreasing gain per kWh, each as far as its cap row and
    the budget let it, is optimal. The column that stops at its cap row is basic with the row at
    its upper bound, the one that exhausts the budget is basic with the budget row at its upper
    bound; the reduced costs then have the optimal signs (gain per kWh above the budget's
    multiplier at upper, below at lower, rescaled by each binding row's multiplier). HiGHS
    re-solves from it in a handful of pivots (none in exact arithmetic) instead of thousands,
    which keeps the result exactly the LP optimum. Statuses are 0 lower, 1 basic, 2 upper;
    ``None`` when the count of basic variables does not match (never expected).
    """
    k = lp.n_level_cols
    n_rows = lp.row_lower.size
    n_cap = int((lp.cap_row >= 0).sum())
    gain = -lp.cost[:k]
    lo, up = lp.col_lower[:k], lp.col_upper[:k]
    a, row = lp.col_power, lp.col_cap_row
    room = a * (up - lo)  # W each column can add above its lower bound
    cand = np.flatnonzero((gain > 0) & (room > 0))
    per_w = lp.col_energy / a  # kWh per W of each column (one value per slot)
    order = cand[np.argsort(-(gain[cand] / (a[cand] * per_w[cand])), kind="stable")]

    # fill as far as the cap rows allow, each row in the global order
    cap_left = lp.row_upper[:n_cap].copy()
    has_row = row >= 0
    np.subtract.at(cap_left, row[has_row], (a * lo)[has_row])
    fill = room[order]
    r_o = row[order]
    in_row = np.flatnonzero(r_o >= 0)
    srt = in_row[np.argsort(r_o[in_row], kind="stable")]
    r_s = r_o[srt]
    cum = np.cumsum(fill[srt])
    first = np.r_[True, r_s[1:] != r_s[:-1]] if srt.size else np.array([], dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(srt.size), 0))
    cum_row = cum - (cum[start] - fill[srt][start])  # cumulative fill within the row
    fill_s = np.clip(cap_left[r_s] - (cum_row - fill[srt]), 0.0, fill[srt])
    full = cum_row >= cap_left[r_s]
    crossing = full & (first | ~np.r_[False, full[:-1]])
    fill[srt] = fill_s

    # then stop where the budget runs out
    cut = order.size
    if lp.budget_row >= 0:
        left = lp.row_upper[lp.budget_row] - float((lp.col_energy * lo).sum())
        cum_e = np.cumsum(fill * per_w[order])
        cut = int(np.searchsorted(cum_e, left, side="right"))

    col = np.zeros(lp.cost.size, dtype=np.intp)
    col[k:] = 1  # energy columns
    pos = np.arange(order.size)
    col[order[(pos < cut) & (fill >= room[order])]] = 2
    cross_pos = srt[crossing]
    cross_pos = cross_pos[cross_pos < cut]
    col[order[cross_pos]] = 1
    rows = np.ones(n_rows, dtype=np.intp)
    rows[r_o[cross_pos]] = 2
    rows[n_cap:] = 0  # energy rows (equalities) and the budget row
    if lp.budget_row >= 0:
        if cut < order.size:
            col[order[cut]] = 1
            rows[lp.budget_row] = 2
        else:
            rows[lp.budget_row] = 1
    if int((col == 1).sum() + (rows == 1).sum()) != n_rows:
        return None
    return col, rows


_LAZY_WINDOW = 1  # with each violated ramp pair, add the pairs this many slots either side
_RAMP_TOL = 1e-9


def _run_highs(
    lp: _ArrayLp, *, lazy: bool, time_limit: float | None, msg: bool
) -> tuple[str, FloatArray, FloatArray, int]:
    """Solve with highspy; return (condition, column values, row duals, ramp rows used).

    With ``lazy``, ramp rows start out of the model and the first LP starts from the optimal
    basis of :func:`_greedy_basis`; the ramp rows the current solution violates (with their
    neighbours) are added before re-solving from the current basis, until none is violated.
    The last LP is a relaxation of the full one whose optimum meets every ramp, so it is an
    optimum of the full LP, and its duals (0 for the rows left out) are valid duals.
    """
    import highspy

    t_start = time.perf_counter()
    h = _highs.new_highs(msg=msg)
    h.setOptionValue("output_flag", bool(msg))
    h.setOptionValue("solver", "simplex")
    h.setOptionValue("presolve", "off")  # the reductions above are what presolve would find
    # Devex is cheap with many columns from a cold start; from the greedy basis (``lazy``) the
    # few thousand pivots of the ramp rows go faster with dual steepest edge
    h.setOptionValue("simplex_dual_edge_weight_strategy", 2 if lazy else 1)
    n_pairs = lp.ramp_hi.size
    added = np.zeros(n_pairs, dtype=bool)
    matrix = lp.matrix
    row_lower, row_upper = lp.row_lower, lp.row_upper
    if not lazy and n_pairs:
        added[:] = True
        matrix = sp.vstack([matrix, _ramp_block(lp, np.arange(n_pairs)).tocsc()]).tocsc()
        row_lower = np.concatenate([row_lower, np.full(n_pairs, -lp.ramp)])
        row_upper = np.concatenate([row_upper, np.full(n_pairs, lp.ramp)])
    model = highspy.HighsLp()
    model.num_col_ = int(lp.cost.size)
    model.num_row_ = int(row_lower.size)
    model.col_cost_ = lp.cost
    model.col_lower_ = lp.col_lower
    model.col_upper_ = lp.col_upper
    model.row_lower_ = row_lower
    model.row_upper_ = row_upper
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    model.a_matrix_.index_ = matrix.indices.astype(np.int32)
    model.a_matrix_.value_ = matrix.data
    h.passModel(model)
    if lazy:
        start = _greedy_basis(lp)
        if start is not None:
            bs = highspy.HighsBasisStatus
            by_code = [bs.kLower, bs.kBasic, bs.kUpper]
            basis = highspy.HighsBasis()
            basis.col_status = [by_code[v] for v in start[0].tolist()]
            basis.row_status = [by_code[v] for v in start[1].tolist()]
            h.setBasis(basis)
    group = lp.col_group
    while True:
        if time_limit is not None:
            left = time_limit - (time.perf_counter() - t_start)
            h.setOptionValue("time_limit", max(left, 1e-3))
        h.run()
        condition = h.modelStatusToString(h.getModelStatus())
        if condition != "Optimal" or not n_pairs:
            break
        x = np.asarray(h.getSolution().col_value)
        step = np.abs(x[lp.ramp_hi] - x[lp.ramp_lo])
        bad = np.flatnonzero((step > lp.ramp + _RAMP_TOL) & ~added)
        if bad.size == 0:
            break
        pick = np.zeros(n_pairs, dtype=bool)
        g_hi = group[lp.ramp_hi]
        for d in range(-_LAZY_WINDOW, _LAZY_WINDOW + 1):
            j = np.clip(bad + d, 0, n_pairs - 1)
            pick[j[g_hi[j] == g_hi[bad]]] = True
        new = np.flatnonzero(pick & ~added)
        added[new] = True
        block = _ramp_block(lp, new)
        h.addRows(
            int(new.size),
            np.full(new.size, -lp.ramp),
            np.full(new.size, lp.ramp),
            int(block.nnz),
            block.indptr[:-1].astype(np.int32),
            block.indices.astype(np.int32),
            block.data,
        )
    sol = h.getSolution()
    dual = np.asarray(sol.row_dual)[: lp.row_lower.size]
    return condition, np.asarray(sol.col_value), dual, int(added.sum())


def solve_arrays(
    problem: DimmingProblem,
    objective: Objective,
    reduce: bool,
    time_limit: float | None,
    msg: bool,
    t0: float,
) -> DimmingSolution:
    """Solve ``problem`` on the array path (``reduce``: fast, else the full LP); ``t0``: start."""
    lp = _build_array_lp(problem, objective, reduce)
    t1 = time.perf_counter()
    n_col = lp.cost.size
    if n_col == 0:
        condition, x, dual, n_ramp = "closed form", np.array([]), np.zeros(lp.row_lower.size), 0
    else:
        condition, x, dual, n_ramp = _run_highs(lp, lazy=reduce, time_limit=time_limit, msg=msg)
    t2 = time.perf_counter()
    status = "ok" if condition == "closed form" else _status_of(condition)
    method = "fast" if reduce else "highs"
    n_row = lp.row_lower.size + n_ramp
    if status != "ok":
        return DimmingSolution(
            status=status,
            condition=condition,
            level=_nan_level(problem),
            objective=math.nan,
            build_s=t1 - t0,
            solve_s=t2 - t1,
            method=method,
            objective_name=objective,
            n_columns=n_col,
            n_rows=n_row,
        )
    k = lp.n_level_cols
    g_level = lp.group_level.copy()
    g_level[lp.col_group, lp.col_slot] = np.clip(x[:k], lp.col_lower[:k], lp.col_upper[:k])
    level = lp.base_level.copy()
    in_lp = lp.light_group >= 0
    level[in_lp] = g_level[lp.light_group[in_lp]]
    level = np.where(problem.on, level, 0.0)
    cap_dual = np.zeros_like(problem.cabinet_cap_w)
    has = lp.cap_row >= 0
    cap_dual[has] = -dual[lp.cap_row[has]]
    budget_dual: float | None = None
    if problem.energy_budget_wh is not None:
        budget_dual = -float(dual[lp.budget_row]) / 1000.0 if lp.budget_row >= 0 else 0.0
    return DimmingSolution(
        status="ok",
        condition=condition,
        level=level,
        objective=objective_value(problem, level, objective),
        build_s=t1 - t0,
        solve_s=t2 - t1,
        method=method,
        objective_name=objective,
        budget_dual=budget_dual,
        cap_dual=cap_dual,
        n_columns=n_col,
        n_rows=n_row,
    )
