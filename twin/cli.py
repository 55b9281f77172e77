"""The ``twin`` command line: the composition root above ``twin``, ``optimize`` and ``live``.

Each command function imports what it needs, so ``twin info`` does not pay for the optimiser.
Errors the twin raises on purpose (:class:`twin.TwinError`) are printed as one clear line and
exit with status 2; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._errors import TwinError

__all__ = ["main"]


def _add_city(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--city", default="dijon", help="a shipped city (default: dijon)")
    g.add_argument("--osm", type=Path, help="any OSM extract: .osm, .osm.pbf or .graphml")
    p.add_argument("--seed", type=int, default=None, help="seed of the derived assets")
    p.add_argument("--rebuild", action="store_true", help="ignore the build cache")


def _load(args: argparse.Namespace) -> Any:
    from .model import load

    return load(args.city, osm=args.osm, seed=args.seed, rebuild=args.rebuild)


def cmd_info(args: argparse.Namespace) -> int:
    """Print counts per asset type, bbox, source, date and attribution."""
    tw = _load(args)
    info = tw.info()
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    print(f"{info['title']} ({info['city']})")
    basis = f" ({info['date_basis']})" if info.get("date_basis") else ""
    print(f"  source   : {info['source']['kind']}, data of {info['date']}{basis}")
    for role, f in info["source"]["files"].items():
        print(f"             {role}: {f['name']} (sha256 {f['sha256'][:12]}...)")
    left, bottom, right, top = info["bbox"]
    print(f"  bbox     : lon {left:.4f}..{right:.4f}, lat {bottom:.4f}..{top:.4f}")
    g = info["graph"]
    print(f"  graph    : {g['nodes']} nodes, {g['edges']} edges ({g['crs']})")
    print("  assets   :")
    for kind, n in info["counts"].items():
        exp = info["expected"].get(kind)
        extra = f"   (published figure: {exp:,})" if exp else ""
        print(f"    {kind:<10} {n:>8,}{extra}")
    lit, clip = info.get("lit") or {}, info.get("clipped") or {}
    if lit:
        print(
            f"  lit roads: {lit['tag_km']:,.1f} km by tag, {lit['assumed_km']:,.1f} km by "
            f"assumption (road class); unlit {lit['unlit_tag_km']:,.1f} km by tag, "
            f"{lit['unlit_untagged_km']:,.1f} km untagged"
        )
    if clip.get("ways") or clip.get("other_ways"):
        print(
            f"  clipped  : {clip['ways']:,} highway ways cut at the extract's edge "
            f"({clip['parts']:,} pieces kept, {clip['dropped']:,} dropped); "
            f"{clip['other_ways']:,} other ways cut"
        )
    src = ", ".join(f"{k} {v:,}" for k, v in info["lights_by_source"].items())
    print(f"  lights   : {src}; {info['lights_power_defaulted']:,} with a default wattage")
    print(f"  {info['attribution']}")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    """Draw the map of lit roads, light density, junctions and cameras."""
    from .plot import plot_junctions, plot_map

    tw = _load(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    (plot_junctions if args.junctions else plot_map)(tw, out=out)
    print(f"map written to {out}")
    return 0


def cmd_cities(args: argparse.Namespace) -> int:
    """List the shipped cities."""
    from .cities import available_cities, get_city

    for name in available_cities():
        c = get_city(name)
        print(f"{name:<24} {c.title}  [{c.source['kind']}]")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """Manage city data: ``twin data fetch NAME``."""
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    """Fetch a city's OSM data with its recipe (needs internet)."""
    from .fetch import fetch_city

    manifest = fetch_city(args.name, dest=args.dest, overpass_url=args.overpass_url)
    print(
        json.dumps(
            manifest.to_dict() if hasattr(manifest, "to_dict") else manifest, indent=2, default=str
        )
    )
    return 0


def cmd_import_inventory(args: argparse.Namespace) -> int:
    """Import a municipal light inventory, replacing the derived light points."""
    from .inventory import import_inventory, parse_field_mapping

    tw = _load(args)
    report = import_inventory(
        tw, args.file, fields=parse_field_mapping(args.field), crs=args.crs, save=True
    )
    print(report.summary())
    if args.rejects:
        report.write_rejects(Path(args.rejects))
        print(f"rejected rows written to {args.rejects}")
    return 0 if report.accepted else 2


def cmd_import(args: argparse.Namespace) -> int:
    """Make a city from a SUMO network (``twin import sumo NET.xml [--routes R.xml]``)."""
    from .model import load

    tw = load(args.net, rebuild=args.rebuild)
    info = tw.info()
    print(f"{args.net.name}: {info['graph']['nodes']:,} nodes, {info['graph']['edges']:,} edges")
    for kind, n in info["counts"].items():
        print(f"  {kind:<10} {n:>8,}")
    if args.routes is not None:
        from .sumo import read_sumo_routes

        trips = read_sumo_routes(args.routes, tw.graph)
        print(f"  {len(trips):,} trips in {args.routes.name}")
    print(f"load it with: twin info --osm {args.net}   or   twin.load({str(args.net)!r})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Export the registry as GeoJSON or NGSI-LD, or the network as SUMO files."""
    tw = _load(args)
    out = Path(args.out)
    n: int | dict[str, Any] | list[dict[str, Any]]
    if args.format == "geojson":
        from .export import to_geojson

        n = to_geojson(tw, out, kinds=args.kind)
    elif args.format == "ngsi-ld":
        from .export import to_ngsi_ld

        n = to_ngsi_ld(tw, out, kinds=args.kind)
    else:
        from .scenarios.network import export_twin

        n = export_twin(tw, out)
        print(f"SUMO network, {n} trips and the signal plans written to {out}")
        return 0
    print(f"{n} records written to {out}")
    return 0


def _switch_off(text: str | None) -> Any:
    if not text:
        return None
    from optimize.dimming import SwitchOff

    try:
        a, b = (sum(float(x) / 60**i for i, x in enumerate(t.split(":"))) for t in text.split("-"))
    except ValueError:
        msg = f"--switch-off: expected HH:MM-HH:MM, got {text!r}"
        from ._errors import InputValidationError

        raise InputValidationError(msg) from None
    return SwitchOff(start_hour=a, end_hour=b)


def cmd_plan_night(args: argparse.Namespace) -> int:
    """The main job: plan a night, write report.json, dimming.nc and plots."""
    from optimize.nightly import run_night, summary_table

    report = run_night(
        city=args.city,
        osm=args.osm,
        date=args.date,
        out=args.out,
        switch_off=_switch_off(args.switch_off),
        objective=args.objective,
    )
    rows = [{"policy": k, **v} for k, v in report["policies"].items()]
    print(
        f"{report['city']}, night of {report['date']}: {report['lights']:,} lights, "
        f"{report['slots']} slots of {report['slot_minutes']} min"
    )
    print(summary_table(rows))
    print(
        f"target: {report['target_pct']:.0f}% saving against the HPS baseline; "
        f"adaptive ({report['objective']}): {report['saving_pct']:.1f}%, "
        f"compliance {report['compliance_pct']:.1f}%"
    )
    if report["budget_relaxed"]:
        r = report["budget_relaxed"]
        print(
            f"note: the {r['budget_pct_asked']:.0f}% budget cannot be met this night without "
            f"lighting below EN 13201; best possible {r['best_saving_pct']:.1f}% "
            f"(budget raised by {r['budget_increase_kwh']:,.0f} kWh)"
        )
    t = report["trajectory"]
    print(
        f"12-year trajectory: {t['saving_pct_2030']:.1f}% saved in 2030 "
        f"(target first met: {t['year_of_target'] or 'not by 2030'})"
    )
    print(
        f"solver: {report['solver']['status']}, build {report['solver']['build_s']:.2f} s, "
        f"solve {report['solver']['solve_s']:.2f} s"
    )
    print(
        f"written to {args.out}: report.json, dimming.nc, night_profile.png, levels_0200.png, "
        "trajectory.png"
    )
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Plans: ``twin plan night`` (the main job)."""
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    """Draw the 12-year energy trajectory against the 65% target."""
    import pandas as pd

    from optimize.nightly import adaptive_plan, trajectory_for

    from . import energy

    tw = _load(args)
    args.out.mkdir(parents=True, exist_ok=True)
    date = args.date or f"{pd.Timestamp.now().year}-12-15"
    ds, _ = adaptive_plan(tw, date)
    traj, _, _ = trajectory_for(tw, ds)
    fig = energy.plot_trajectory(
        traj,
        title=f"{tw.city.title}: 2018-2030 against the 65% target",
        attribution=f"Data: {tw.city.attribution}",
    )
    fig.savefig(args.out / "trajectory.png")
    traj.to_dataframe().to_csv(args.out / "trajectory.csv")
    print(traj[["baseline_wh", "planned_wh", "saving_pct"]].to_dataframe().round(1).to_string())
    print(f"written to {args.out}: trajectory.png, trajectory.csv")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the demand model to the city's traffic counts and report GEH per site."""
    from .plot import plot_counts_fit
    from .scenarios import calibration

    tw = _load(args)
    args.out.mkdir(parents=True, exist_ok=True)
    res = calibration.calibrate(
        tw,
        rng=args.rng,
        starts=args.starts,
        holdout=args.holdout,
        matrix_estimation=args.matrix_estimation,
        me_weight=args.me_weight,
    )
    print(res.summary())
    tables = {"parameters": res.table}
    if res.table_me is not None:
        tables["matrix_estimation"] = res.table_me
    written = []
    for label, table in tables.items():
        csv = args.out / f"geh_{label}.csv"
        table.to_csv(csv, index=False)
        png = args.out / f"geh_{label}.png"
        what = "calibrated parameters" if label == "parameters" else "estimated OD matrix"
        plot_counts_fit(
            table,
            title=f"{tw.city.title}: counts against the model ({what})",
            attribution=f"Data: {tw.city.attribution}",
            out=png,
        )
        written += [csv.name, png.name]
    report = {
        "city": tw.city.name,
        "matched": res.matched,
        "unmatched": res.unmatched,
        "share_geh_below_5_before": res.share_geh_below_5_before,
        "share_geh_below_5": res.share_geh_below_5,
        "share_geh_below_5_holdout": res.share_geh_below_5_holdout,
        "dmrb_share": calibration.DMRB_SHARE,
        "params": res.params,
        "matrix_estimation": {k: float(v) for k, v in res.matrix_stats.items()},
    }
    (args.out / "calibration.json").write_text(json.dumps(report, indent=2))
    if res.od_factor is not None:
        import numpy as np

        np.save(args.out / "od_factor.npy", res.od_factor)
        written.append("od_factor.npy")
    print(f"written to {args.out}: calibration.json, " + ", ".join(written))
    return 0


def cmd_optimize_signals(args: argparse.Namespace) -> int:
    """Signal plans: validated LP splits, MAXBAND green waves; JSON, NetCDF, plots."""
    import xarray as xr

    from optimize.maxband import MaxbandInfeasibleError, corridors, maxband, time_space_diagram
    from optimize.signals import optimise_splits

    from .scenarios.network import signal_plans
    from .signals.junction import nearest_ids
    from .signals.safety import plan_document

    out = Path(args.out)
    tw = _load(args)
    plans = signal_plans(tw)
    arts = corridors(tw, plans)
    if args.corridor:
        names = {a.name: a for a in arts}
        hits = [a for n, a in names.items() if n == args.corridor or n.startswith(args.corridor)]
        if not hits:
            from ._errors import UnknownAssetError

            near = ", ".join(nearest_ids(args.corridor, names))
            msg = f"--corridor: no corridor {args.corridor!r} in {tw.city.name} (nearest: {near})"
            raise UnknownAssetError(msg)
        arts = hits[:1]
    out.mkdir(parents=True, exist_ok=True)
    docs, rows = [], []
    for jid, plan in plans.items():
        model = plans.models[jid]
        flows = {
            model.group_of_edge((r.u, r.v, r.key)): float(r.flow_pcu_h)  # type: ignore[arg-type]
            for r in plans.flows[plans.flows["junction"] == jid].itertuples()
        }
        lp_plan, sol = optimise_splits(model, flows, cycle_s=plan.cycle_s, objective="delay")
        docs.append(plan_document(lp_plan, model))
        rows.append((jid, plan.cycle_s, sol.attrs["reserve_capacity"]))
    (out / "plans.json").write_text(json.dumps(docs, indent=1))
    ds = xr.Dataset(
        {
            "cycle": ("junction", [r[1] for r in rows], {"units": "s", "long_name": "cycle"}),
            "reserve_capacity": ("junction", [r[2] for r in rows], {"units": "1"}),
        },
        coords={"junction": [r[0] for r in rows]},
        attrs={"city": tw.city.name},
    )
    ds.to_netcdf(out / "plans.nc")
    report: dict[str, Any] = {
        "city": tw.city.name,
        "plans": len(plans),
        "skipped": plans.skipped,
        "corridors": {},
    }
    for art in arts[: 1 if args.corridor else 3]:
        try:
            band = maxband(art)
        except MaxbandInfeasibleError as exc:
            report["corridors"][art.name] = {"status": "infeasible", "binding": list(exc.binding)}
            print(f"{art.name}: infeasible; binding constraints {', '.join(exc.binding)}")
            continue
        stem = f"corridor_{len(report['corridors'])}"
        band.to_netcdf(out / f"{stem}.nc")
        ax = time_space_diagram(band)
        ax.figure.savefig(out / f"{stem}_time_space.png")
        report["corridors"][art.name] = {
            "status": band.attrs["status"],
            "band_out_s": band.attrs["band_out_s"],
            "band_in_s": band.attrs["band_in_s"],
            "cycle_s": band.attrs["cycle_s"],
            "offsets_s": dict(
                zip(band["junction"].values.tolist(), band["offset"].values.tolist(), strict=True)
            ),
        }
        print(
            f"{art.name}: bands {band.attrs['band_out_s']:.0f} s out, "
            f"{band.attrs['band_in_s']:.0f} s in (cycle {band.attrs['cycle_s']:.0f} s)"
        )
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"{tw.city.name}: {plans.summary()}")
    print(f"written to {out}: plans.json, plans.nc, report.json, corridor_*.nc, time-space plots")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin", description="Digital twin of a metropolis's public space."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, Callable[[argparse.Namespace], int]] = {}

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], **kw: Any
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0], **kw)
        p.set_defaults(func=fn)
        commands[name] = fn
        return p

    p = add("info", cmd_info)
    _add_city(p)
    p.add_argument("--json", action="store_true", help="print JSON (DESIGN section 5)")

    p = add("map", cmd_map)
    _add_city(p)
    p.add_argument("--out", default="map.png", help="PNG file to write")
    p.add_argument(
        "--junctions",
        action="store_true",
        help="draw the traffic-signal points and the junctions they form instead",
    )

    add("cities", cmd_cities)

    p = add("data", cmd_data)
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    f = dsub.add_parser("fetch", help="fetch a city's OSM data with its recipe (needs internet)")
    f.add_argument("name", help="recipe / city name, e.g. dijon")
    f.add_argument("--dest", type=Path, default=None, help="data root to write into")
    f.add_argument("--overpass-url", default=None, help="Overpass API endpoint")
    f.set_defaults(func=cmd_data_fetch)

    p = add("import-inventory", cmd_import_inventory)
    _add_city(p)
    p.add_argument("file", type=Path, help="CSV, GeoJSON or shapefile (.shp/.zip) of light points")
    p.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="OURS=THEIRS",
        help="map a column, e.g. power_w=PUISSANCE (repeatable)",
    )
    p.add_argument(
        "--crs", default=None, help="CRS of the file when it does not say (e.g. EPSG:2154)"
    )
    p.add_argument("--rejects", default=None, help="write rejected rows with reasons to this CSV")

    p = add("import", cmd_import)
    p.add_argument("format", choices=["sumo"])
    p.add_argument("net", type=Path, help="SUMO network (.net.xml)")
    p.add_argument("--routes", type=Path, default=None, help="SUMO routes or trips (.rou.xml)")
    p.add_argument("--rebuild", action="store_true", help="ignore the build cache")

    p = add("export", cmd_export)
    p.add_argument("format", choices=["geojson", "ngsi-ld", "sumo"])
    _add_city(p)
    p.add_argument("--out", required=True, help="output file (geojson, ngsi-ld) or folder (sumo)")
    p.add_argument(
        "--kind",
        action="append",
        default=None,
        help="asset types to export (repeatable; default: all)",
    )

    def night_args(p: argparse.ArgumentParser) -> None:
        _add_city(p)
        p.add_argument(
            "--date", default=None, help="evening the night starts on, YYYY-MM-DD (default: today)"
        )
        p.add_argument(
            "--out", required=True, type=Path, help="folder for report.json, dimming.nc, plots"
        )
        p.add_argument(
            "--objective", default="service", help="service (default), cost or min_energy"
        )
        p.add_argument(
            "--switch-off",
            default=None,
            metavar="HH:MM-HH:MM",
            help="commune switch-off window on residential P-class streets, e.g. 01:00-05:00",
        )

    p = add("plan", cmd_plan)
    psub = p.add_subparsers(dest="plan_command", required=True, metavar="ACTION")
    n = psub.add_parser("night", help=(cmd_plan_night.__doc__ or "").strip().splitlines()[0])
    n.set_defaults(func=cmd_plan_night)
    night_args(n)

    p = sub.add_parser("demo", help="alias of `twin plan night`")
    p.set_defaults(func=cmd_plan_night)
    night_args(p)

    p = add("calibrate", cmd_calibrate)
    _add_city(p)
    p.add_argument("--out", required=True, type=Path, help="folder for the tables and plots")
    p.add_argument("--rng", type=int, default=0, help="seed of the hold-out split and starts")
    p.add_argument("--starts", type=int, default=2, help="Nelder-Mead starts (default 2)")
    p.add_argument(
        "--holdout", type=float, default=0.3, help="share of streets held out (default 0.3)"
    )
    p.add_argument(
        "--matrix-estimation",
        action="store_true",
        help="then adjust the OD cells to the fitted counts (reported with TAG M3.1 checks)",
    )
    p.add_argument(
        "--me-weight", type=float, default=1.0, help="pull of the estimation to the prior OD"
    )

    p = add("optimize", cmd_plan)
    osub = p.add_subparsers(dest="optimize_command", required=True, metavar="WHAT")
    o = osub.add_parser("signals", help="validated signal plans, LP splits, MAXBAND green waves")
    o.set_defaults(func=cmd_optimize_signals)
    _add_city(o)
    o.add_argument("--corridor", default=None, help="one corridor by name (default: the longest)")
    o.add_argument("--out", required=True, type=Path, help="folder for plans, report and plots")

    p = add("energy", cmd_energy)
    _add_city(p)
    p.add_argument("--out", required=True, type=Path, help="folder for trajectory.png and .csv")
    p.add_argument("--date", default=None, help="night whose adaptive plan sets the dimming factor")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``twin`` command line."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except TwinError as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("twin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
