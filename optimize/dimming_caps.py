"""Cabinet caps that bind: the minimum-energy plan of the cabinets whose floor breaks their cap.

With the EN 13201 requirement as a floor and no cap in the way, the minimum-energy plan is the
ramp-feasible lower envelope of each light (:func:`optimize.dimming_problem.envelope_levels`),
light by light. The envelope is the pointwise smallest feasible plan, so where it draws more
than a cabinet's contracted power no plan meets both: the cap is physical (the supply's breaker
trips above the subscribed kVA), the floor has to give. Those cabinets are solved jointly; as a
linear programme per night over every binding cabinet (block diagonal):

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
cabinet's lights rather than put on a few), then the energy. Two exact reductions keep it small:

1. *window*: only the slots of a cabinet from ``K = ceil(1 / ramp)`` slots before its first
   binding slot to ``K`` after its last enter the LP; the others keep the envelope. A light
   lowered in a slot constrains a neighbour ``k`` slots away only to ``x + k * ramp``, which is
   at least 1 once ``k >= K``, and the envelope is the cheapest plan without shortfall there;
2. *aggregation*: lights of a cabinet with the same floor, on/off pattern, driver minimum and
   boundary levels over the window have columns that differ only by their power, so one level
   per group is exact (every coupling row is a sum of power).

That LP is the reference (``method="lp"``). The default path (``method="fill"``) is vectorised
over every binding cabinet and slot of the night at once and costs a few tenths of a second on
Montpellier where the LP costs seconds: water-filling of each binding slot (ramp excess first,
then the same shortfall below the floor for every light of the cabinet), then the ramp-feasible
upper envelope (:func:`_fill`). It meets the caps and the ramps exactly; its deficit is that of
the LP or a little more (within 5 % on the tests' instances, checked against the LP).

Lights of non-binding cabinets keep their envelope, so the year of nights stays light by light
except where a cap binds: :attr:`CappedLevels.path` says which path ran.
"""

from __future__ import annotations

import dataclasses
import math

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
        ``"per-light"`` (no cap binds: the envelope) or
        ``"per-light + joint LP on N cabinets"``.
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
    method: str = "fill",
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
        ``"fill"`` (default, vectorised: :func:`_fill`) or ``"lp"`` (the joint LP above, the
        reference it is checked against).

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
    ([[0.75], [0.75]], 'per-light + water-filling on 1 cabinets')
    """
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
    draw = _cabinet_draw(p, env, on_b, cab, m, f)
    over = draw > caps * (1 + _TOL) + _TOL
    if not over.any():
        return CappedLevels(env, env, np.zeros_like(env), np.zeros(0, np.intp), "per-light")
    least = _cabinet_draw(p, np.where(on_b, lo[:, None], 0.0), on_b, cab, m, f)
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
        _solve_binding(level, env, fl, on_b, p, lo, cab, caps, over, binding, hours, ramp, f)
        path = f"per-light + joint LP on {binding.size} cabinets"
    elif method == "fill":
        level = _fill(env, fl, on_b, p, lo, cab, caps, over, binding, ramp, f)
        path = f"per-light + water-filling on {binding.size} cabinets"
    else:
        msg = f"method: {method!r} is not 'fill' or 'lp'"
        raise InputValidationError(msg)
    short = np.where(on_b, np.maximum(fl - level, 0.0), 0.0)
    short[short < 1e-7] = 0.0
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
) -> None:
    """Build and solve the joint LP of the binding cabinets; write their levels into ``level``."""
    import highspy

    t_n = fl.shape[1]
    k = math.ceil(1.0 / ramp) if ramp > 0 else t_n
    cost: list[float] = []
    col_lo: list[float] = []
    col_hi: list[float] = []
    rows: list[tuple[list[int], list[float], float, float]] = []
    # per cabinet: its lights, first slot, first x column, window width, group of each light
    assign: list[tuple[npt.NDArray[np.intp], int, int, int, npt.NDArray[np.intp]]] = []

    def col(c: float, a: float, b: float) -> int:
        cost.append(c)
        col_lo.append(a)
        col_hi.append(b)
        return len(cost) - 1

    for c in binding.tolist():
        slots = np.flatnonzero(over[c])
        t0, t1 = max(0, int(slots[0]) - k), min(t_n, int(slots[-1]) + k + 1)
        lights = np.flatnonzero(cab == c)
        w = t1 - t0
        left = env[lights, t0 - 1] if t0 > 0 else np.zeros(lights.size)
        right = env[lights, t1] if t1 < t_n else np.zeros(lights.size)
        key = np.column_stack(
            [fl[lights, t0:t1], on[lights, t0:t1], lo[lights], left, right]
            + ([on[lights, t0 - 1]] if t0 > 0 else [])
            + ([on[lights, t1]] if t1 < t_n else [])
        )
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        inv = inv.reshape(-1)
        pg = np.bincount(inv, weights=p[lights])
        g_lights = lights[first]
        z_cols = [col(float(hours[t0 + j] * pg.sum()), 0.0, 1.0) for j in range(w)]
        base = len(cost)
        for gi, i in enumerate(g_lights.tolist()):
            for j in range(w):
                t = t0 + j
                lit = bool(on[i, t])
                a, b = (float(lo[i]), 1.0) if lit else (0.0, 0.0)
                if lit and j == 0 and t0 > 0 and on[i, t0 - 1]:
                    a, b = (
                        max(a, float(env[i, t0 - 1]) - ramp),
                        min(b, float(env[i, t0 - 1]) + ramp),
                    )
                if lit and j == w - 1 and t1 < t_n and on[i, t1]:
                    a, b = max(a, float(env[i, t1]) - ramp), min(b, float(env[i, t1]) + ramp)
                col(float(hours[t] * pg[gi] * (1.0 - f)), a, max(a, b))
            for j in range(w):
                t = t0 + j
                s = col(float(hours[t] * pg[gi] * SHORTFALL_WEIGHT), 0.0, 1.0)
                x = base + gi * 2 * w + j
                if on[i, t]:
                    rows.append(([x, s], [1.0, 1.0], float(fl[i, t]), math.inf))
                    rows.append(([z_cols[j], s], [1.0, -1.0], 0.0, math.inf))
                if j > 0 and on[i, t] and on[i, t - 1]:
                    rows.append(([x, x - 1], [1.0, -1.0], -ramp, ramp))
        for j in range(w):
            t = t0 + j
            lit = on[g_lights, t]
            idx = [base + gi * 2 * w + j for gi in range(g_lights.size) if lit[gi]]
            coef = [float(pg[gi] * (1.0 - f)) for gi in range(g_lights.size) if lit[gi]]
            room = float(caps[c, t]) - f * float(pg[lit].sum())
            if idx:
                rows.append((idx, coef, -math.inf, room))
        assign.append((lights, t0, base, w, inv))
    n_col = len(cost)
    a_rows = [r[0] for r in rows]
    a_vals = [r[1] for r in rows]
    indptr = np.cumsum([0] + [len(r) for r in a_rows])
    mat = sp.csr_matrix(
        (np.concatenate(a_vals), np.concatenate(a_rows), indptr), shape=(len(rows), n_col)
    ).tocsc()
    model = highspy.HighsLp()
    model.num_col_ = n_col
    model.num_row_ = len(rows)
    model.col_cost_ = np.asarray(cost)
    model.col_lower_ = np.asarray(col_lo)
    model.col_upper_ = np.asarray(col_hi)
    model.row_lower_ = np.array([r[2] for r in rows])
    model.row_upper_ = np.array([r[3] for r in rows])
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = mat.indptr.astype(np.int32)
    model.a_matrix_.index_ = mat.indices.astype(np.int32)
    model.a_matrix_.value_ = mat.data
    h = _highs.new_highs()
    h.passModel(model)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        msg = f"cabinet caps: the joint LP of {binding.size} cabinets ended {status}"
        raise RuntimeError(msg)
    x = np.asarray(h.getSolution().col_value)
    for lights, t0, base, w, inv in assign:
        n_g = int(inv.max()) + 1
        xs = np.stack([x[base + g * 2 * w : base + g * 2 * w + w] for g in range(n_g)])
        vals = np.clip(xs[inv], 0.0, 1.0)
        level[lights, t0 : t0 + w] = np.where(on[lights, t0 : t0 + w], vals, 0.0)
