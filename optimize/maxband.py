"""MAXBAND: offsets of an arterial's signals for the widest two-way green band, as a MILP.

After Little, Kelson and Gartner (1981), *MAXBAND: a program for setting signals on arteries and
triangular networks*, TRR 795. Time is in cycles (``z = 1 / C``). Signal ``i`` (``i = 0..n-1``
along the outbound direction) has a red of ``r_i`` cycles for the arterial (both directions, one
stage); the outbound band of width ``b`` passes it ``w_i`` after the end of its red, the inbound
band of width ``bb`` ends ``ww_i`` before the start of its red. Constraints:

* fit in the green: ``w_i + b <= 1 - r_i``, ``ww_i + bb <= 1 - r_i`` (``1 / 2 - r_i`` at a
  double-cycled signal, whose red ``r_i`` recurs every half cycle);
* travel times ``t_i``, ``tt_i`` (cycles) between ``i`` and ``i+1`` at a speed in
  ``[v_min, v_max]``: ``d_i z / v_max <= t_i <= d_i z / v_min`` (``speed_range[i]``);
* speed change between links at most ``max_speed_change`` (``speed_change[i]``):
  ``|d_i / t_i - d_(i+1) / t_(i+1)|``, written linearly on ``1 / t`` through the bounds of
  MAXBAND's ``(d_i / d_(i+1)) t_(i+1) - t_i`` constraints;
* the loop integer constraint ``(w_i + ww_i) - (w_(i+1) + ww_(i+1)) + (t_i + tt_i)
  + (r_i - r_(i+1)) = p_(i+1) n_(i+1) - p_i n_i``, ``n_i`` integer and ``p_i`` signal ``i``'s
  own cycle (1, or 1/2 where it is double-cycled) (``loop[i]``); with every ``p_i = 1`` this is
  MAXBAND's ``= m_i``, ``m_i`` integer. Derivation:
  the outbound band leaves red ``i`` at ``c_i + r_i / 2 + w_i`` and reaches ``i+1``
  ``t_i`` later; the inbound band does the reverse; at each signal, the time between the
  two bands is fixed up to a multiple of its own cycle (a double-cycled signal's reds are
  half a cycle apart, and each band may pass either);
* optionally ``b, bb >= min_band`` (``min_band``) and ``bb = k b`` kept near a ratio.

Maximise ``b + k bb`` (``k`` the inbound/outbound flow ratio). Offsets follow: the red centre of
``i+1`` is ``c_(i+1) = c_i + r_i / 2 - r_(i+1) / 2 + w_i - w_(i+1) + t_i``.

An infeasible instance is reported with its *binding* constraint groups: a deletion filter
drops one group at a time and keeps it out if the rest stays infeasible, leaving an
irreducible infeasible set of groups (Chinneck and Dravnieks 1991).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pulp
import xarray as xr

from optimize._highs import solve_quietly
from optimize._pulp import add_variable, add_variable_dict
from twin._errors import InputValidationError

if TYPE_CHECKING:
    from twin.model import Twin

__all__ = [
    "Arterial",
    "MaxbandInfeasibleError",
    "arterial_stage",
    "corridors",
    "maxband",
    "time_space_diagram",
]


class MaxbandInfeasibleError(InputValidationError):
    """The MAXBAND instance has no solution; ``binding`` names the constraint groups."""

    def __init__(self, message: str, *, binding: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.binding = tuple(binding)


@dataclasses.dataclass(frozen=True)
class Arterial:
    """An arterial: its signals in the outbound direction.

    Parameters
    ----------
    name : str
    junctions : tuple of str
        Junction ids, outbound order.
    distances_m : tuple of float
        Distance from each signal to the next (``n - 1`` values, m).
    red_s : tuple of float
        Red of the arterial's stage at each signal (s): cycle minus its green.
    cycle_s : float
        The common cycle (s).
    green_start_s : tuple of float
        Start of the arterial's green within each signal's own plan cycle (s): to turn the band
        into plan offsets.
    speed_limit_kph : tuple of float
        Limit on each link (``n - 1`` values).
    period_s : tuple of float
        Each signal's own cycle: ``cycle_s``, or ``cycle_s / 2`` for a double-cycled signal,
        whose red ``red_s`` then recurs twice per common cycle (default: ``cycle_s`` for all).
    """

    name: str
    junctions: tuple[str, ...]
    distances_m: tuple[float, ...]
    red_s: tuple[float, ...]
    cycle_s: float
    green_start_s: tuple[float, ...] = ()
    speed_limit_kph: tuple[float, ...] = ()
    period_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.junctions)
        if n < 2:
            msg = f"Arterial({self.name}).junctions: at least two signals are needed"
            raise InputValidationError(msg)
        if len(self.distances_m) != n - 1 or any(not d > 0 for d in self.distances_m):
            msg = f"Arterial({self.name}).distances_m: {n - 1} positive distances are needed"
            raise InputValidationError(msg)
        if not self.period_s:
            object.__setattr__(self, "period_s", (float(self.cycle_s),) * n)
        if len(self.period_s) != n or any(
            not np.isclose(p, self.cycle_s) and not np.isclose(2 * p, self.cycle_s)
            for p in self.period_s
        ):
            msg = f"Arterial({self.name}).period_s: {n} periods, each the cycle or half of it"
            raise InputValidationError(msg)
        if len(self.red_s) != n or any(
            not 0 <= r < p for r, p in zip(self.red_s, self.period_s, strict=True)
        ):
            msg = f"Arterial({self.name}).red_s: {n} reds within the signals' periods are needed"
            raise InputValidationError(msg)
        if not self.speed_limit_kph:
            object.__setattr__(self, "speed_limit_kph", (50.0,) * (n - 1))
        if not self.green_start_s:
            object.__setattr__(self, "green_start_s", (0.0,) * n)


def maxband(
    art: Arterial,
    *,
    speed_range: tuple[float, float] = (0.85, 1.0),
    max_speed_change_kph: float | None = 10.0,
    ratio: float = 1.0,
    min_band_s: float = 0.0,
    time_limit_s: float = 30.0,
) -> xr.Dataset:
    """Solve MAXBAND for an arterial.

    Parameters
    ----------
    art : Arterial
    speed_range : (float, float)
        Progression speed on each link as a share of its limit, ``(low, high)``.
    max_speed_change_kph : float, optional
        Largest change of progression speed from one link to the next.
    ratio : float
        ``k``: weight of the inbound band (inbound/outbound flow ratio).
    min_band_s : float
        Least bandwidth asked in each direction (s).
    time_limit_s : float

    Returns
    -------
    xarray.Dataset
        Dims ``junction``: ``offset`` (s, start of the arterial green after the common origin),
        ``red`` (s), ``position`` (m), ``w``, ``ww`` (s); dims ``link``: ``speed_out``,
        ``speed_in`` (km/h); attrs ``band_out_s``, ``band_in_s``, ``cycle_s``, ``status``,
        ``solve_s``, ``build_s``, ``efficiency`` ((b + bb) / 2C), ``band_in_start_s`` (the
        inbound band's start at the last signal, s).

    Raises
    ------
    MaxbandInfeasibleError
        With the binding constraint groups (e.g. ``speed_range[2]``, ``speed_change[2]``).
    """
    lo, hi = speed_range
    if not 0 < lo <= hi:
        msg = f"speed_range: {speed_range!r} must satisfy 0 < low <= high"
        raise InputValidationError(msg)
    t0 = time.perf_counter()
    groups = _groups(art, speed_range, max_speed_change_kph, min_band_s)
    prob, v = _build(art, groups, ratio, set(groups))
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    status = pulp.LpStatus[solve_quietly(prob, time_limit=time_limit_s)]
    solve_s = time.perf_counter() - t1
    if status != "Optimal":
        binding = _deletion_filter(art, groups, ratio, time_limit_s)
        msg = f"MAXBAND for {art.name} is {status.lower()}: binding constraints " + ", ".join(
            binding
        )
        raise MaxbandInfeasibleError(msg, binding=binding)
    return _dataset(art, v, status, build_s, solve_s)


def _groups(
    art: Arterial,
    speed_range: tuple[float, float],
    max_change: float | None,
    min_band_s: float,
) -> dict[str, list[tuple[str, Any]]]:
    """Constraint groups by name, each a list of (kind, data) the builder turns into rows."""
    n = len(art.junctions)
    out: dict[str, list[tuple[str, Any]]] = {}
    for i in range(n - 1):
        v_lo = art.speed_limit_kph[i] * speed_range[0] / 3.6
        v_hi = art.speed_limit_kph[i] * speed_range[1] / 3.6
        out[f"speed_range[{i}]"] = [("speed", (i, v_lo, v_hi))]
    if max_change is not None:
        for i in range(n - 2):
            out[f"speed_change[{i}]"] = [("change", (i, max_change / 3.6))]
    for i in range(n):
        out[f"green_fit[{i}]"] = [("fit", i)]
    if min_band_s > 0:
        out["min_band"] = [("min_band", min_band_s / art.cycle_s)]
    return out


def _build(
    art: Arterial,
    groups: dict[str, list[tuple[str, Any]]],
    ratio: float,
    active: set[str],
) -> tuple[pulp.LpProblem, dict[str, Any]]:
    n = len(art.junctions)
    c = art.cycle_s
    r = [x / c for x in art.red_s]
    g = [p / c - x for p, x in zip(art.period_s, r, strict=True)]  # green, in cycles
    # each signal's own cycle, in cycles: 1, or 1/2 where it is double-cycled (its red recurs)
    per = [p / c for p in art.period_s]
    d = art.distances_m
    prob = pulp.LpProblem("maxband", pulp.LpMaximize)
    b = add_variable(prob, "b", low=0.0, up=1.0)
    bb = add_variable(prob, "bb", low=0.0, up=1.0)
    w = add_variable_dict(prob, "w", range(n), low=0.0, up=1.0)
    ww = add_variable_dict(prob, "ww", range(n), low=0.0, up=1.0)
    t = add_variable_dict(prob, "t", range(n - 1), low=0.0)
    tt = add_variable_dict(prob, "tt", range(n - 1), low=0.0)
    # the loop integers, one per signal in units of its own cycle (m_i = n_(i+1) - n_i where
    # every signal runs the common cycle, MAXBAND's form); n_0 = 0 (the common origin)
    m = add_variable_dict(prob, "m", range(n), low=-100, up=100, cat="Integer")
    prob += (m[0] == 0, "origin")
    prob += b + ratio * bb
    for i in range(n - 1):
        prob += (
            (w[i] + ww[i]) - (w[i + 1] + ww[i + 1]) + (t[i] + tt[i]) + (r[i] - r[i + 1])
            == per[i + 1] * m[i + 1] - per[i] * m[i],
            f"loop_{i}",
        )
    for name in sorted(active):
        for kind, data in groups[name]:
            tag = name.replace("[", "_").replace("]", "")
            if kind == "fit":
                i = data
                prob += (w[i] + b <= g[i], f"{tag}_out")
                prob += (ww[i] + bb <= g[i], f"{tag}_in")
            elif kind == "speed":
                i, v_lo, v_hi = data
                for var, sfx in ((t[i], "out"), (tt[i], "in")):
                    prob += (var >= d[i] / (v_hi * c), f"{tag}_{sfx}_lo")
                    prob += (var <= d[i] / (v_lo * c), f"{tag}_{sfx}_hi")
            elif kind == "change":
                # MAXBAND's form: (d_i / h) z <= (d_i / d_(i+1)) t_(i+1) - t_i <= (d_i / g) z,
                # with 1/h and 1/g the bounds of the change of 1/speed, linearised about the
                # links' limits: 1/v' - 1/v in [-dv / v^2, dv / v^2]
                i, dv = data
                v0 = art.speed_limit_kph[i] / 3.6
                band = dv / v0**2
                for a, aa, sfx in ((t, None, "out"), (tt, None, "in")):
                    expr = (d[i] / d[i + 1]) * a[i + 1] - a[i]
                    prob += (expr <= d[i] * band / c, f"{tag}_{sfx}_hi")
                    prob += (expr >= -d[i] * band / c, f"{tag}_{sfx}_lo")
                    del aa
            elif kind == "min_band":
                prob += (b >= data, "min_band_out")
                prob += (bb >= data, "min_band_in")
    return prob, {"b": b, "bb": bb, "w": w, "ww": ww, "t": t, "tt": tt, "m": m}


def _deletion_filter(
    art: Arterial, groups: dict[str, list[tuple[str, Any]]], ratio: float, limit: float
) -> list[str]:
    """An irreducible infeasible set of constraint groups (deletion filter)."""
    keep = set(groups)
    for name in sorted(groups):
        trial = keep - {name}
        prob, _ = _build(art, groups, ratio, trial)
        if pulp.LpStatus[solve_quietly(prob, time_limit=limit)] != "Optimal":
            keep = trial  # still infeasible without it: not needed
    return sorted(keep) or ["loop (the integer loop constraints alone)"]


def _dataset(
    art: Arterial, v: dict[str, Any], status: str, build_s: float, solve_s: float
) -> xr.Dataset:
    n = len(art.junctions)
    c = art.cycle_s
    r = [x / c for x in art.red_s]
    w = [float(v["w"][i].value()) for i in range(n)]
    ww = [float(v["ww"][i].value()) for i in range(n)]
    t = [float(v["t"][i].value()) for i in range(n - 1)]
    tt = [float(v["tt"][i].value()) for i in range(n - 1)]
    centre = [0.0]
    for i in range(n - 1):
        centre.append(centre[i] + r[i] / 2 - r[i + 1] / 2 + w[i] - w[i + 1] + t[i])
    # the arterial's green starts at the end of its red (red centre + r/2): the plan's offset
    # puts the plan's start so that its arterial green starts there
    offsets = [((centre[i] + r[i] / 2) * c - art.green_start_s[i]) % c for i in range(n)]
    pos = np.concatenate([[0.0], np.cumsum(art.distances_m)])
    b, bb = float(v["b"].value()), float(v["bb"].value())
    # the inbound band's start at the last signal: the centres follow the outbound band, and
    # where the last signal is double-cycled the inbound band may pass its other red
    last = n - 1
    n_last = round(float(v["m"][last].value()))
    in_start = (centre[last] - r[last] / 2 - ww[last] - bb) * c - n_last * art.period_s[last]
    ds = xr.Dataset(
        {
            "offset": ("junction", offsets, {"units": "s", "long_name": "plan offset"}),
            "red": ("junction", list(art.red_s), {"units": "s", "long_name": "arterial red"}),
            "period": (
                "junction",
                list(art.period_s),
                {"units": "s", "long_name": "signal's own cycle (half the cycle if double-cycled)"},
            ),
            "position": ("junction", pos, {"units": "m", "long_name": "distance along"}),
            "red_centre": ("junction", [x * c % c for x in centre], {"units": "s"}),
            "w": ("junction", [x * c for x in w], {"units": "s", "long_name": "outbound slack"}),
            "ww": ("junction", [x * c for x in ww], {"units": "s", "long_name": "inbound slack"}),
            "speed_out": (
                "link",
                [art.distances_m[i] / (t[i] * c) * 3.6 for i in range(n - 1)],
                {"units": "km/h"},
            ),
            "speed_in": (
                "link",
                [art.distances_m[i] / (tt[i] * c) * 3.6 for i in range(n - 1)],
                {"units": "km/h"},
            ),
        },
        coords={"junction": list(art.junctions), "link": np.arange(n - 1)},
        attrs={
            "arterial": art.name,
            "cycle_s": c,
            "band_out_s": b * c,
            "band_in_s": bb * c,
            "band_in_start_s": in_start % c,
            "efficiency": (b + bb) / 2,
            "status": status,
            "build_s": build_s,
            "solve_s": solve_s,
            "method": "MAXBAND (Little, Kelson and Gartner 1981), pulp + HiGHS",
        },
    )
    return ds


def time_space_diagram(
    ds: xr.Dataset, *, cycles: int = 3, ax: Any = None, title: str | None = None
) -> Any:
    """Time-space diagram: the arterial's reds at each signal and the two green bands."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    c = float(ds.attrs["cycle_s"])
    pos = ds["position"].values
    reds = ds["red"].values
    period = ds["period"].values if "period" in ds else np.full(len(pos), c)
    centre = ds["red_centre"].values
    for i, y in enumerate(pos):
        for k in range(-1, int(round(cycles * c / period[i])) + 1):
            s = centre[i] - reds[i] / 2 + k * period[i]
            ax.plot([s, s + reds[i]], [y, y], color="tab:red", lw=4, solid_capstyle="butt")
    # outbound band: leaves signal 0 at the end of its red plus w_0
    w, ww = ds["w"].values, ds["ww"].values
    b, bb = float(ds.attrs["band_out_s"]), float(ds.attrs["band_in_s"])
    v_out, v_in = ds["speed_out"].values / 3.6, ds["speed_in"].values / 3.6
    for k in range(cycles):
        t = centre[0] + reds[0] / 2 + w[0] + k * c
        xs, ys = [t], [pos[0]]
        for i in range(len(pos) - 1):
            t += (pos[i + 1] - pos[i]) / v_out[i]
            xs.append(t)
            ys.append(pos[i + 1])
        if b > 0:
            ax.fill_betweenx(ys, xs, [x + b for x in xs], color="tab:green", alpha=0.3)
        # inbound band ends ww before a red at the last signal
        n = len(pos) - 1
        start = ds.attrs.get("band_in_start_s", centre[n] - reds[n] / 2 - ww[n] - bb)
        t = start + k * c
        xs, ys = [t], [pos[n]]
        for i in range(n - 1, -1, -1):
            t += (pos[i + 1] - pos[i]) / v_in[i]
            xs.append(t)
            ys.append(pos[i])
        if bb > 0:
            ax.fill_betweenx(ys, xs, [x + bb for x in xs], color="tab:blue", alpha=0.3)
    ax.set_xlim(0, cycles * c)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("distance along the arterial (m)")
    ax.set_yticks(pos, list(ds["junction"].values), fontsize=7)
    ax.set_title(
        title or f"{ds.attrs['arterial']}: bands {b:.0f} s out, {bb:.0f} s in (cycle {c:.0f} s)"
    )
    return ax


def corridors(
    tw: Twin, plans: Any, *, min_signals: int = 5, max_gap_m: float = 800.0
) -> list[Arterial]:
    """Arterials of ``min_signals`` or more consecutive planned signals along one named street.

    A street's planned junctions (those with an approach named after it) are ordered along the
    street's main axis; runs whose consecutive signals are at most ``max_gap_m`` apart make a
    corridor. Every plan of a corridor is re-timed by Webster at the corridor's common cycle (its
    longest); the arterial's red is the cycle minus the green of the stage serving the street.
    A cluster run as sub-junctions (:attr:`twin.signals.junction.JunctionModel.parts`) is left
    out and keeps its own plan: MAXBAND gives each signal one red for the street, where such a
    cluster stops the street's traffic once in each of its parts, in different stages.

    Returns
    -------
    list of Arterial
        Named ``"<street> (<first>-<last>)"``, longest first. Their reds come from the plans
        scaled to the common cycle; :func:`optimize.coordination.coordinated_plans` re-times
        the plans at that cycle, solves MAXBAND on their exact reds and sets the offsets.
    """
    app = tw.registry["approach"]
    jx = tw.registry["junction"].geometry
    models = getattr(plans, "models", {})
    split = {j for j, m in models.items() if getattr(m, "parts", ())}
    by_name: dict[str, set[str]] = {}
    for r in app.itertuples(index=False):
        j = str(r.junction)
        if isinstance(r.name, str) and r.name and j in plans and j not in split:
            by_name.setdefault(r.name, set()).add(j)
    out = []
    for name, js in by_name.items():
        if len(js) < min_signals:
            continue
        ids = sorted(js)
        xy = np.array([(jx[j].x, jx[j].y) for j in ids])
        centred = xy - xy.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        order = np.argsort(centred @ axis)
        ids = [ids[i] for i in order]
        xy = xy[order]
        gaps = np.hypot(*np.diff(xy, axis=0).T)
        run = [0]
        runs = []
        for i, gap in enumerate(gaps, start=1):
            if gap <= max_gap_m and gap > 1.0:
                run.append(i)
            else:
                runs.append(run)
                run = [i]
        runs.append(run)
        for run in runs:
            if len(run) >= min_signals:
                js_run = [ids[i] for i in run]
                d = [float(gaps[i - 1]) for i in run[1:]]
                out.append((name, js_run, d))
    arts = []
    for name, js_run, d in sorted(out, key=lambda x: -len(x[1])):
        cycle = max(plans[j].cycle_s for j in js_run)
        reds, starts = [], []
        for j in js_run:
            plan = plans[j]
            k = arterial_stage(tw, plan, name)
            green = plan.phases[k].green_s * cycle / plan.cycle_s
            reds.append(cycle - green)
            starts.append(plan.phase_starts()[k] * cycle / plan.cycle_s)
        arts.append(
            Arterial(
                f"{name} ({js_run[0]}-{js_run[-1]})",
                tuple(js_run),
                tuple(d),
                tuple(reds),
                cycle,
                tuple(starts),
            )
        )
    return arts


def arterial_stage(tw: Twin, plan: Any, street: str) -> int:
    """The stage of a plan that serves most of the approaches named ``street``."""
    app = tw.registry["approach"]
    named = app[(app["junction"] == plan.junction) & (app["name"] == street)]
    keys = {(int(r.u), int(r.v), int(r.key)) for r in named.itertuples(index=False)}
    score = [
        sum((int(a[0]), int(a[1]), int(a[2])) in keys for a in p.approaches) for p in plan.phases
    ]
    return int(np.argmax(score))
