"""Maps of a twin: lit roads, light density, junctions and cameras.

matplotlib's object API: no pyplot state, no display needed.

Every map carries the data's attribution, as the ODbL and the Licence Ouverte require.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import numpy as np
import shapely
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from .model import Twin

__all__ = ["plot_map", "plot_junctions", "line_collection"]


def line_collection(geoms: Any, **kw: Any) -> LineCollection:
    """A LineCollection of shapely lines (fast: one draw call for thousands of segments)."""
    return LineCollection([np.asarray(g.coords)[:, :2] for g in geoms if g is not None], **kw)


def _attribution(fig: Figure, text: str) -> None:
    fig.text(0.99, 0.01, text, ha="right", va="bottom", fontsize=7, color="0.3")


def plot_map(tw: Twin, *, out: str | Path | None = None, title: str | None = None) -> Figure:
    """Map of roads lit by tag, lit by assumption and unlit, light density, junctions, cameras.

    A road is lit *by tag* where OSM says ``lit=yes``, lit *by assumption* where it has no tag
    and its road class is lit by default (see :mod:`twin.derive.segments`); the legend gives the
    length of each. Coordinates are metres in the twin's working CRS (:attr:`Twin.crs`).
    Returns the figure; writes a PNG if ``out``.
    """
    reg = tw.registry
    seg = reg["segment"]
    by_tag = (seg["lit"] == "yes").to_numpy(bool)
    assumed = seg["lit_assumed"].to_numpy(bool) & ~by_tag
    unlit = ~(by_tag | assumed)
    length_km = seg["length_m"].to_numpy(float) / 1000.0
    lights = reg["light"]
    fig = Figure(figsize=(10, 10), dpi=120)
    ax = fig.subplots()
    for mask, colour, width, label in (
        (unlit, "0.8", 0.4, "unlit road"),
        (assumed, "tab:blue", 0.7, "lit by assumption (road class)"),
        (by_tag, "0.15", 0.9, "lit by tag (lit=yes)"),
    ):
        ax.add_collection(
            line_collection(
                seg.geometry[mask],
                colors=colour,
                linewidths=width,
                label=f"{label}: {length_km[mask].sum():,.1f} km",
            )
        )
    if len(lights):
        xy = shapely.get_coordinates(lights.geometry.values)
        hb = ax.hexbin(
            xy[:, 0], xy[:, 1], gridsize=60, mincnt=1, cmap="YlOrBr", alpha=0.65, linewidths=0
        )
        cb = fig.colorbar(hb, ax=ax, shrink=0.6, pad=0.01)
        cb.set_label("light points per cell")
    # Any values: matplotlib's stubs type each scatter keyword, a mixed dict is only `object`
    styles: tuple[tuple[str, dict[str, Any]], ...] = (
        (
            "junction",
            {
                "marker": "o",
                "s": 28,
                "facecolors": "none",
                "edgecolors": "tab:red",
                "linewidths": 1.2,
            },
        ),
        ("camera", {"marker": "^", "s": 22, "c": "tab:blue"}),
    )
    for kind, style in styles:
        t = reg[kind]
        if len(t):
            xy = shapely.get_coordinates(t.geometry.values)
            ax.scatter(xy[:, 0], xy[:, 1], label=f"{kind} ({len(t)})", zorder=3, **style)
    ax.autoscale()
    ax.set_aspect("equal")
    ax.set_xlabel(f"x (m, {tw.crs})")
    ax.set_ylabel(f"y (m, {tw.crs})")
    c = reg.counts()
    ax.set_title(
        title or f"{tw.city.title}: {c['light']:,} light points, {c['segment']:,} road segments"
    )
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    _attribution(fig, f"Data: {tw.city.attribution}")
    fig.tight_layout()
    if out is not None:
        fig.savefig(out)
    return fig


def plot_junctions(tw: Twin, *, out: str | Path | None = None) -> Figure:
    """Map of the traffic-signal points and the junctions they were clustered into."""
    reg = tw.registry
    seg = reg["segment"]
    fig = Figure(figsize=(10, 10), dpi=120)
    ax = fig.subplots()
    ax.add_collection(line_collection(seg.geometry[seg["drive"]], colors="0.6", linewidths=0.6))
    junctions = reg["junction"]
    cmap = mpl.colormaps["tab20"]
    for i, (jid, row) in enumerate(junctions.iterrows()):
        x, y = row.geometry.x, row.geometry.y
        ax.scatter([x], [y], s=260, facecolors="none", edgecolors=cmap(i % 20), linewidths=1.5)
        ax.annotate(jid.split(":")[1], (x, y), fontsize=6, ha="center", va="center")
    sig = tw.meta.get("signal_points")
    if sig is not None and len(sig):
        ax.scatter(
            sig[:, 0], sig[:, 1], s=8, c="k", marker="x", label=f"signal points ({len(sig)})"
        )
    ax.scatter(
        [],
        [],
        s=120,
        facecolors="none",
        edgecolors="tab:blue",
        label=f"junctions ({len(junctions)})",
    )
    ax.autoscale()
    ax.set_aspect("equal")
    ax.legend(loc="upper left")
    ax.set_title(f"{tw.city.title}: signalised junctions")
    _attribution(fig, f"Data: {tw.city.attribution}")
    fig.tight_layout()
    if out is not None:
        fig.savefig(out)
    return fig


def plot_counts_fit(
    table: Any,
    *,
    title: str,
    attribution: str,
    out: str | Path | None = None,
    points: str = "site-peaks",
    flow: str = "flow, peak hour (veh/h)",
    band: str = "grey band: GEH < 5 (DMRB: 85% of sites)",
) -> Figure:
    """Modelled against counted peak-hour flows, one point per site and peak, with GEH = 5.

    ``table`` is a calibration table (:class:`twin.scenarios.calibration.CalibrationResult`):
    columns ``observed``, ``modelled`` (veh/h), ``geh`` and ``holdout``. Log axes; the shaded
    band is where GEH < 5, the DMRB target being 85% of the points inside it. ``points``,
    ``flow`` and ``band`` name the points, the axes' quantity and the band (the footfall
    calibration plots counter-hours of persons).
    """
    fig = Figure(figsize=(7.5, 7), dpi=120)
    ax = fig.subplots()
    obs = np.asarray(table["observed"], dtype=float)
    mod = np.asarray(table["modelled"], dtype=float)
    held = np.asarray(table["holdout"], dtype=bool)
    ok = np.asarray(table["geh"], dtype=float) < 5
    top = float(max(obs.max(initial=1.0), mod.max(initial=1.0))) * 1.5
    c = np.geomspace(1.0, top, 200)
    # the two flows M with GEH(M, C) = 5: M = C + g^2/4 +- g sqrt(C/2 + g^2/16), g = 5
    g = 5.0
    root = g * np.sqrt(c / 2 + g**2 / 16)
    ax.fill_between(c, np.maximum(c + g**2 / 4 - root, 0.5), c + g**2 / 4 + root, color="0.9")
    ax.plot(c, c, color="0.4", linewidth=0.8)
    for sel, label, marker in ((~held, "fitted", "o"), (held, "held out", "^")):
        n = int(sel.sum())
        if not n:
            continue
        share = 100 * float(ok[sel].mean())
        ax.scatter(
            np.maximum(obs[sel], 0.5),
            np.maximum(mod[sel], 0.5),
            s=6,
            marker=marker,
            alpha=0.5,
            label=f"{label}: {n} {points}, {share:.1f}% with GEH < 5",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1.0, top)
    ax.set_ylim(0.5, top)
    ax.set_xlabel(f"counted {flow}")
    ax.set_ylabel(f"modelled {flow}")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, title=band)
    _attribution(fig, attribution)
    fig.tight_layout()
    if out is not None:
        fig.savefig(out)
    return fig
