"""Plots of the energy trajectory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from twin._errors import InputValidationError
from twin.energy.hps import TARGET_PCT

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# --------------------------------------------------------------------------------------------
# plot
# --------------------------------------------------------------------------------------------
def plot_trajectory(
    ds: xr.Dataset,
    *,
    ax: Axes | None = None,
    title: str | None = None,
    attribution: str | None = None,
) -> Figure:
    """Plot a :func:`trajectory`: yearly energy, the saving split and the saving % vs target.

    Each year's bar is the baseline, stacked as planned energy + dimming + switch-off + LED
    savings; lines give the LED-only energy and the metered energy (if any); on a second axis
    the planned (and metered) saving in % against the target line.

    Parameters
    ----------
    ds
        A :func:`trajectory` result.
    ax
        Axes to draw on; default a new figure (not registered with pyplot).
    title
        Title; default ``"Public-lighting energy vs the 65% target"``.
    attribution
        Text written at the bottom right (e.g. data credits such as
        ``"© OpenStreetMap contributors, ODbL 1.0"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    need = ("baseline_wh", "led_only_wh", "planned_wh", "saving_pct")
    missing = [v for v in need if v not in ds.data_vars]
    if missing:
        msg = f"ds: missing variable(s) {missing}; pass a trajectory() result"
        raise InputValidationError(msg)
    if ax is None:
        fig = Figure(figsize=(9.0, 6.0), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.get_figure()  # type: ignore[assignment]
    years = np.asarray(ds["year"].values, dtype=int)
    top_wh = float(np.nanmax(ds["baseline_wh"].values))
    mwh, unit = (1e-9, "GWh") if top_wh >= 1e10 else (1e-6, "MWh")

    bottom = np.asarray(ds["planned_wh"].values, dtype=float) * mwh
    ax.bar(years, bottom, color="#4c72b0", label="planned energy")
    parts = (
        ("saving_dimming_wh", "#8fbc8f", "saving: dimming"),
        ("saving_switch_off_wh", "#c6d96b", "saving: switch-off"),
        ("saving_led_wh", "#f2c45a", "saving: LED renewal"),
    )
    for name, color, label in parts:
        if name in ds.data_vars:
            h = np.asarray(ds[name].values, dtype=float) * mwh
            ax.bar(years, h, bottom=bottom, color=color, label=label)
            bottom = bottom + h
    ax.plot(years, ds["baseline_wh"].values * mwh, "k_", ms=18, mew=2, label="baseline (all HPS)")
    ax.plot(years, ds["led_only_wh"].values * mwh, "o--", color="#dd8452", label="LED only")
    metered = ds["metered_wh"].values if "metered_wh" in ds.data_vars else None
    has_metered = metered is not None and bool(np.any(~np.isnan(metered)))
    if has_metered:
        ax.plot(years, np.asarray(metered) * mwh, "s", color="#c44e52", ms=8, label="metered")
    ax.set_xlabel("year")
    ax.set_ylabel(f"energy ({unit}/year)")
    ax.set_xticks(years)
    ax.tick_params(axis="x", labelrotation=45)

    tgt = float(ds["target_pct"]) if "target_pct" in ds.data_vars else TARGET_PCT
    ax2 = ax.twinx()
    ax2.plot(years, ds["saving_pct"].values, "-", color="#55a868", lw=2.5, label="saving %")
    if has_metered and "saving_pct_metered" in ds.data_vars:
        ax2.plot(
            years,
            ds["saving_pct_metered"].values,
            "D",
            color="#8c1b1e",
            label="metered saving %",
        )
    ax2.axhline(tgt, color="#c44e52", ls=":", lw=2, label=f"target {tgt:g}%")
    ax2.set_ylim(0, 100)
    ax2.set_ylabel("saving against baseline (%)")

    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(
        h1 + h2,
        l1 + l2,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        fontsize="small",
        ncol=4,
        frameon=False,
    )
    ax.set_ylim(0, top_wh * mwh * 1.05)
    ax.set_title(title if title is not None else f"Public-lighting energy vs the {tgt:g}% target")
    if attribution:
        fig.text(0.995, 0.005, attribution, ha="right", va="bottom", fontsize=7, color="0.4")
    return fig
