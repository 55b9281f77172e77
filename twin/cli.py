"""The ``twin`` command line: the composition root above ``twin``, ``optimize`` and ``live``.

Each command is a function registered with :func:`command` under its name (``"plan night"``
makes the ``plan`` group on first use), with a function that declares its arguments and,
optionally, one that checks them. Adding a command is one decorated function; nothing else
changes. Each command function imports what it needs, so ``twin info`` does not pay for the
optimiser.

What happens, in order:

1. argparse reads the arguments; the types below check each one on its own (dates, seeds,
   switch-off windows, output paths that can be written, files that exist);
2. the ``TWIN_*`` settings and the command's ``check`` run (objectives come from ``optimize``,
   so their check imports it), still before any twin is loaded;
3. the command runs. Outputs are written into a staging folder beside their destination and
   moved into place when the command succeeds, so that a failure never leaves an empty or a
   half-written output folder behind.

Any bad input is reported as one line on stderr, naming the argument or field and the reason,
with exit status 2; progress bars are closed and erased first. A fault of the machine rather
than of the input (a full disk) is one line too, with status 1. Anything else is a bug and shows
its traceback.

A new command, for example::

    def _push_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("plan_id", help="id of the plan to send")
        p.add_argument("--broker", type=_url, required=True, help="MQTT broker URL")

    @command("plan push", arguments=_push_args)
    def cmd_plan_push(args: Args) -> int:
        '''Send an approved plan to the devices and wait for their acknowledgements.'''
        from live.control import push  # imported inside: twin never imports live at the top
        ...
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from ._errors import InputValidationError, TwinError

if TYPE_CHECKING:
    from .model import Twin
    from .scenarios.gravity import DemandModel

__all__ = ["command", "main"]

Args = argparse.Namespace


@dataclasses.dataclass(frozen=True)
class Command:
    """A registered command: its words, what it runs, its arguments and their check."""

    name: str
    run: Callable[[Args], int]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    check: Callable[[Args], None] | None = None
    aliases: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        """First line of the command function's docstring (its ``--help`` line)."""
        return (self.run.__doc__ or "").strip().splitlines()[0]


_COMMANDS: list[Command] = []
#: One-line help of the command groups (a group without an entry gets a generic one).
_GROUPS = {
    "data": "city data: fetch a city's extract with its recipe",
    "plan": "plans: `twin plan night` is the main job",
    "inventory": "municipal light inventories: import, list, remove",
    "optimize": "optimisers: `twin optimize signals` (signal plans and green waves)",
    "footfall": "footfall: `twin footfall calibrate` (the walk demand against counters)",
}


def command(
    name: str,
    *,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    check: Callable[[Args], None] | None = None,
    aliases: Sequence[str] = (),
) -> Callable[[Callable[[Args], int]], Callable[[Args], int]]:
    """Register a command function under ``name`` (words separated by spaces).

    Parameters
    ----------
    name : str
        ``"info"``, or ``"plan night"`` for a command of the ``plan`` group.
    arguments : callable, optional
        Adds the command's arguments to its parser.
    check : callable, optional
        Checks the parsed arguments together (raising :class:`twin.InputValidationError`),
        before any work; may import ``optimize`` or ``live`` for what they define.
    aliases : sequence of str
        Other full names of the same command (``"demo"`` for ``"plan night"``).
    """

    def register(fn: Callable[[Args], int]) -> Callable[[Args], int]:
        _COMMANDS.append(Command(name, fn, arguments, check, tuple(aliases)))
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# Argument types: each checks one value before any work and says what is wrong with it.


def _fail_arg(msg: str) -> NoReturn:
    raise argparse.ArgumentTypeError(msg)


def _date(text: str) -> str:
    from .timeutil import validate_date

    try:
        return validate_date(text, field="date").isoformat()
    except InputValidationError as exc:
        _fail_arg(str(exc).removeprefix("date: "))


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        _fail_arg(f"{text!r} is not a whole number")
    if value < 0:
        _fail_arg(f"{value} is negative; a seed is a whole number >= 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        _fail_arg(f"{text!r} is not a whole number")
    if value < 1:
        _fail_arg(f"{value} must be at least 1")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        _fail_arg(f"{text!r} is not a number")
    if not math.isfinite(value):
        _fail_arg(f"{text!r} is not a finite number")
    return value


def _share(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value < 1.0:
        _fail_arg(f"{value:g} is not a share in [0, 1)")
    return value


def _positive(text: str) -> float:
    value = _number(text)
    if value <= 0:
        _fail_arg(f"{value:g} must be > 0")
    return value


_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def _window(text: str) -> tuple[float, float]:
    """``HH:MM-HH:MM`` (local clock, may cross midnight) -> (start, end) in hours."""
    parts = text.split("-")
    if len(parts) != 2:
        _fail_arg(f"expected HH:MM-HH:MM (e.g. 01:00-05:00), got {text!r}")
    hours = []
    for part in parts:
        m = _CLOCK.match(part.strip())
        if not m:
            _fail_arg(f"expected HH:MM-HH:MM (e.g. 01:00-05:00), got {text!r}")
        h, mi = int(m.group(1)), int(m.group(2))
        if h > 23 or mi > 59:
            _fail_arg(f"{part.strip()!r} is not a clock time (00:00 to 23:59)")
        hours.append(h + mi / 60.0)
    if hours[0] == hours[1]:
        _fail_arg(f"{text!r} starts and ends at the same time")
    return hours[0], hours[1]


def _city(text: str) -> str:
    from .cities import available_cities

    if text not in available_cities():
        known = ", ".join(available_cities())
        _fail_arg(f"unknown city {text!r}; available: {known} (or pass --osm FILE)")
    return text


def _existing(*suffixes: str, what: str) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        if suffixes and not path.name.lower().endswith(suffixes):
            _fail_arg(f"{path.name!r} is not {what} (expected {', '.join(suffixes)})")
        if path.is_dir():
            _fail_arg(f"{path} is a folder; {what} is expected")
        if not path.is_file():
            _fail_arg(f"no such file: {path}")
        if not os.access(path, os.R_OK):
            _fail_arg(f"cannot read {path} (permission denied)")
        return path

    parse.__name__ = what  # argparse names the type in its own messages
    return parse


def _osm_file(text: str) -> Path:
    from .cities import OSM_SUFFIXES

    return _existing(*OSM_SUFFIXES, what="an OSM extract")(text)


def _writable_anchor(path: Path, target: Path) -> Path:
    """The nearest folder that exists at or above ``path``, checked to be one we can write in."""
    anchor = path
    while not anchor.exists():
        if anchor.parent == anchor:
            break
        anchor = anchor.parent
    if not anchor.is_dir():
        _fail_arg(f"{target}: {anchor} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".twin-probe-", dir=anchor)
    except OSError as exc:
        _fail_arg(f"{target}: cannot write in {anchor} ({exc.strerror or exc})")
    os.close(fd)
    Path(probe).unlink()
    return anchor


def check_out_dir(path: str | Path) -> Path:
    """An output folder: not a file, and made (or filled) by us without trouble.

    Raises :class:`argparse.ArgumentTypeError` (the reason only; argparse names the option).
    """
    out = Path(path).expanduser()
    if str(path).strip() == "":
        _fail_arg("empty path")
    if out.exists() and not out.is_dir():
        _fail_arg(f"{out} is a file; a folder is expected")
    _writable_anchor(out if out.is_dir() else out.parent, out)
    return out


def check_out_file(path: str | Path, suffixes: Sequence[str] = ()) -> Path:
    """An output file: not a folder, of a known kind, in a folder we can make and write in."""
    text = str(path)
    out = Path(path).expanduser()
    if text.strip() == "":
        _fail_arg("empty path")
    if out.is_dir() or text.endswith(("/", os.sep)):
        _fail_arg(f"{out} is a folder; a file is expected")
    if suffixes and out.suffix.lower() not in suffixes:
        _fail_arg(f"{out.name!r}: expected a {' or '.join(suffixes)} file")
    _writable_anchor(out.parent, out)
    return out


def _out_dir(text: str) -> Path:
    return check_out_dir(text)


def _out_file(*suffixes: str) -> Callable[[str], Path]:
    def parse(text: str) -> Path:
        return check_out_file(text, suffixes)

    parse.__name__ = "output file"
    return parse


#: Formats matplotlib writes, by suffix (``twin map --out``).
_IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".eps")


def _arg_error(option: str, exc: argparse.ArgumentTypeError | TwinError) -> NoReturn:
    """An argument found wrong in a ``check``: one line naming the option."""
    msg = f"{option}: {exc}"
    raise InputValidationError(msg)


# ---------------------------------------------------------------------------------------------
# Outputs: staged beside their destination, moved into place on success.


@contextlib.contextmanager
def staged(final: Path, *, folder: bool) -> Iterator[Path]:
    """Yield a path to write ``final`` into; move it into place only if the block succeeds.

    A folder is made only if something was written into it; on failure (or Ctrl-C) everything
    written is removed, and nothing at ``final`` has changed. The staging folder sits beside
    ``final`` (inside it, for a folder that exists), so the last move is a rename.
    """
    final = Path(final)
    anchor = final if folder and final.is_dir() else final.parent
    while not anchor.exists():
        anchor = anchor.parent
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=anchor))
    work = stage / final.name
    if folder:
        work.mkdir()
    try:
        yield work
        if folder and any(work.iterdir()):
            if not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                work.replace(final)
            else:
                for item in sorted(work.iterdir()):
                    dest = final / item.name
                    if dest.is_dir() and not dest.is_symlink():
                        shutil.rmtree(dest)
                    item.replace(dest)
        elif not folder and work.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            work.replace(final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Shared arguments.


def _city_args(p: argparse.ArgumentParser, *, default: str | None = "dijon") -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--city",
        type=_city,
        default=default,
        help="a shipped city" + (f" (default: {default})" if default else ""),
    )
    g.add_argument(
        "--osm", type=_osm_file, help="any OSM extract: .osm, .osm.pbf, .graphml (or .net.xml)"
    )
    p.add_argument("--seed", type=_seed, default=None, help="seed of the derived assets (>= 0)")
    p.add_argument("--rebuild", action="store_true", help="ignore the build cache")


def _load(args: Args) -> Any:
    from .model import load

    return load(args.city, osm=args.osm, seed=args.seed, rebuild=args.rebuild)


# ---------------------------------------------------------------------------------------------
# Commands.


def _info_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument("--json", action="store_true", help="print JSON (DESIGN section 5)")


@command("info", arguments=_info_args)
def cmd_info(args: Args) -> int:
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


def _map_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument(
        "--out",
        type=_out_file(*_IMAGE_SUFFIXES),
        default=Path("map.png"),
        help="image file to write (.png, .svg, .pdf, ...; default map.png)",
    )
    p.add_argument(
        "--junctions",
        action="store_true",
        help="draw the traffic-signal points and the junctions they form instead",
    )


@command("map", arguments=_map_args)
def cmd_map(args: Args) -> int:
    """Draw the map of lit roads, light density, junctions and cameras."""
    from .plot import plot_junctions, plot_map

    tw = _load(args)
    with staged(args.out, folder=False) as out:
        (plot_junctions if args.junctions else plot_map)(tw, out=out)
    print(f"map written to {args.out}")
    return 0


@command("cities")
def cmd_cities(args: Args) -> int:
    """List the shipped cities."""
    from .cities import available_cities, get_city

    for name in available_cities():
        c = get_city(name)
        print(f"{name:<24} {c.title}  [{c.source['kind']}]")
    return 0


def _url(text: str) -> str:
    if not re.match(r"^https?://[^\s/]+", text):
        _fail_arg(f"{text!r} is not an http(s) URL")
    return text


def _fetch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="recipe / city name, e.g. dijon")
    p.add_argument("--dest", type=_out_dir, default=None, help="data root to write into")
    p.add_argument("--overpass-url", type=_url, default=None, help="Overpass API endpoint")


@command("data fetch", arguments=_fetch_args)
def cmd_data_fetch(args: Args) -> int:
    """Fetch a city's OSM data with its recipe (needs internet)."""
    from .fetch import fetch_city

    manifest = fetch_city(args.name, dest=args.dest, overpass_url=args.overpass_url)
    print(
        json.dumps(
            manifest.to_dict() if hasattr(manifest, "to_dict") else manifest, indent=2, default=str
        )
    )
    return 0


def _inventory_import_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument(
        "file",
        type=_existing(what="an inventory file"),
        help="CSV, GeoJSON or shapefile (.shp/.zip) of light points",
    )
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
    p.add_argument(
        "--encoding",
        default=None,
        help="text encoding of a CSV or GeoJSON (default: UTF-8 if valid, else Windows-1252)",
    )
    p.add_argument(
        "--rejects",
        type=_out_file(".csv"),
        default=None,
        help="write rejected rows (row, field, reason, original values) to this CSV",
    )


def _inventory_import_check(args: Args) -> None:
    from .inventory import parse_field_mapping, parse_inventory

    args.fields = parse_field_mapping(args.field)
    if args.rejects is not None and args.rejects.resolve() == args.file.resolve():
        msg = f"--rejects: {args.rejects} is the inventory itself"
        raise InputValidationError(msg)
    # the file on its own (encoding, columns, CRS), before the twin is loaded
    parse_inventory(args.file, fields=args.fields, crs=args.crs, encoding=args.encoding)


@command(
    "inventory import",
    arguments=_inventory_import_args,
    check=_inventory_import_check,
    aliases=("import-inventory",),
)
def cmd_inventory_import(args: Args) -> int:
    """Import a municipal light inventory, replacing the derived light points."""
    from .inventory import import_inventory

    tw = _load(args)
    with contextlib.ExitStack() as stack:
        rejects = (
            None
            if args.rejects is None
            else stack.enter_context(staged(args.rejects, folder=False))
        )
        report = import_inventory(
            tw, args.file, fields=args.fields, crs=args.crs, encoding=args.encoding, save=True
        )
        print(report.summary())
        if rejects is not None:
            report.write_rejects(rejects)
    if args.rejects is not None:
        print(f"rejected rows written to {args.rejects}")
    if not report.accepted:
        msg = f"{args.file.name}: no row accepted ({len(report.rejected)} rejected); nothing stored"
        raise InputValidationError(msg)
    return 0


def _inventory_list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


@command("inventory list", arguments=_inventory_list_args)
def cmd_inventory_list(args: Args) -> int:
    """List the stored inventories: id, city, lights, file and the source each belongs to."""
    from .inventory_store import list_inventories, store_folder

    stored = list_inventories()
    if args.json:
        print(json.dumps([{"id": s.id, **s.record} for s in stored], indent=2, ensure_ascii=False))
        return 0
    if not stored:
        print(f"no stored inventory (in {store_folder()})")
        return 0
    for s in stored:
        print(s.describe())
    return 0


def _inventory_remove_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="*", metavar="ID", help="ids from `twin inventory list`")
    _city_args(p, default=None)


def _inventory_remove_check(args: Args) -> None:
    if not args.ids and args.city is None and args.osm is None:
        msg = "inventory remove: give the ids to remove, or --city C, or --osm FILE"
        raise InputValidationError(msg)
    if args.ids and (args.city is not None or args.osm is not None):
        msg = "inventory remove: give ids, or --city/--osm, not both"
        raise InputValidationError(msg)


@command("inventory remove", arguments=_inventory_remove_args, check=_inventory_remove_check)
def cmd_inventory_remove(args: Args) -> int:
    """Remove stored inventories, by id or for a city's data; the derived lights come back."""
    from .inventory import stored_inventory
    from .inventory_store import find_inventories, remove_stored

    if args.ids:
        found = find_inventories(args.ids)
    else:
        source = args.osm if args.osm is not None else args.city
        one = stored_inventory(source)
        if one is None:
            msg = f"inventory remove: no inventory stored for the data of {source}"
            raise InputValidationError(msg)
        found = [one]
    for s in found:
        remove_stored(s)
        print(f"removed inventory {s.id} ({s.city})")
    return 0


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=["sumo"])
    p.add_argument("net", type=_existing(".net.xml", what="a SUMO network"), help=".net.xml")
    p.add_argument(
        "--routes",
        type=_existing(".xml", what="a SUMO routes file"),
        default=None,
        help="SUMO routes or trips (.rou.xml)",
    )
    p.add_argument("--rebuild", action="store_true", help="ignore the build cache")


@command("import", arguments=_import_args)
def cmd_import(args: Args) -> int:
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


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=["geojson", "ngsi-ld", "sumo"])
    _city_args(p)
    p.add_argument(
        "--out",
        required=True,
        help="output file (geojson: .geojson/.json; ngsi-ld: .json/.jsonld) or folder (sumo)",
    )
    p.add_argument(
        "--kind",
        action="append",
        default=None,
        help="asset types to export (repeatable; default: all)",
    )


def _export_check(args: Args) -> None:
    try:
        if args.format == "sumo":
            args.out = check_out_dir(args.out)
        else:
            suffixes = (".geojson", ".json") if args.format == "geojson" else (".json", ".jsonld")
            args.out = check_out_file(args.out, suffixes)
    except argparse.ArgumentTypeError as exc:
        _arg_error("--out", exc)
    if args.kind:
        from .assets import KINDS
        from .export import NGSI_LD_KINDS

        if args.format == "sumo":
            msg = "--kind: a SUMO export holds the network, trips and signal plans, not kinds"
            raise InputValidationError(msg)
        for k in args.kind:
            if k not in KINDS:
                msg = f"--kind: {k!r} is not an asset type; kinds: {', '.join(KINDS)}"
                raise InputValidationError(msg)
            if args.format == "ngsi-ld" and k not in NGSI_LD_KINDS:
                supported = ", ".join(NGSI_LD_KINDS)
                msg = f"--kind: {k!r} has no NGSI-LD mapping; supported kinds: {supported}"
                raise InputValidationError(msg)


@command("export", arguments=_export_args, check=_export_check)
def cmd_export(args: Args) -> int:
    """Export the registry as GeoJSON or NGSI-LD, or the network as SUMO files."""
    tw = _load(args)
    n: int | dict[str, Any] | list[dict[str, Any]]
    if args.format == "sumo":
        from .scenarios.network import export_twin

        with staged(args.out, folder=True) as out:
            n = export_twin(tw, out)
        print(f"SUMO network, {n} trips and the signal plans written to {args.out}")
        return 0
    with staged(args.out, folder=False) as out:
        if args.format == "geojson":
            from .export import to_geojson

            n = to_geojson(tw, out, kinds=args.kind)
        else:
            from .export import to_ngsi_ld

            n = to_ngsi_ld(tw, out, kinds=args.kind)
    print(f"{n} records written to {args.out}")
    return 0


def _switch_off_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--switch-off",
        type=_window,
        default=None,
        metavar="HH:MM-HH:MM",
        help="commune switch-off window on residential P-class streets, e.g. 01:00-05:00",
    )


def _switch_off_check(args: Args) -> None:
    """Turn ``--switch-off`` into a checked window (before any twin is loaded)."""
    from optimize.dimming import SwitchOff

    if args.switch_off is not None:
        start, end = args.switch_off
        try:
            args.switch_off = SwitchOff(start_hour=start, end_hour=end)
        except TwinError as exc:
            _arg_error("--switch-off", exc)


def _night_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument(
        "--date",
        type=_date,
        default=None,
        help="evening the night starts on, YYYY-MM-DD (default: today)",
    )
    p.add_argument(
        "--out", required=True, type=_out_dir, help="folder for report.json, dimming.nc, plots"
    )
    p.add_argument(
        "--objective",
        default="min_energy",
        help="min_energy (default: EN 13201 as the floor, nothing above it) or cost (HP/HC tariff)",
    )
    p.add_argument(
        "--footfall-calibration",
        type=Path,
        default=None,
        metavar="DIR",
        help="footfall calibrated by a `twin footfall calibrate --out DIR` run (its scale and "
        "evening/night share) instead of the default profiles",
    )
    _switch_off_args(p)


def _night_check(args: Args) -> None:
    from optimize.dimming import OBJECTIVES

    valid = [o for o in OBJECTIVES if o != "service"]  # service needs a weight: the Python API
    if args.objective not in valid:
        msg = f"--objective: {args.objective!r} is not one of {', '.join(valid)}"
        raise InputValidationError(msg)
    _switch_off_check(args)


@command("plan night", arguments=_night_args, check=_night_check, aliases=("demo",))
def cmd_plan_night(args: Args) -> int:
    """The main job: plan a night, write report.json, dimming.nc and plots."""
    from optimize.nightly import run_night, summary_table

    footfall = None
    if args.footfall_calibration is not None:
        from .scenarios.footfall_calibration import load_footfall_calibration

        footfall = load_footfall_calibration(args.footfall_calibration, city=args.city)
        print(
            f"footfall calibrated by {args.footfall_calibration}: scale {footfall.scale:.3f}, "
            f"evening/night share {100 * float(footfall.night_share or 0):.1f}% "
            f"(default {100 * footfall.prior_night_share:.1f}%)"
        )
    with staged(args.out, folder=True) as out:
        report = run_night(
            city=args.city,
            osm=args.osm,
            date=args.date,
            out=out,
            switch_off=args.switch_off,
            objective=args.objective,
            footfall_calibration=footfall,
        )
    rows = [{"policy": k, **v} for k, v in report["policies"].items()]
    print(
        f"{report['city']}, night of {report['date']}: {report['lights']:,} lights, "
        f"{report['slots']} slots of {report['slot_minutes']} min"
    )
    print(summary_table(rows))
    y = report["annual"]
    print(
        f"this night, adaptive ({report['objective']}): {report['saving_pct']:.1f}% saved against "
        f"its HPS baseline, compliance {report['compliance_pct']:.1f}%; one night is a sample, "
        f"the {report['target_pct']:.0f}% target counts a year"
    )
    if report["cap_binding_cabinets"]:
        print(
            f"cabinet caps: the contracted kVA of {report['cap_binding_cabinets']:,} cabinets "
            "binds tonight; their lights may fall below EN 13201 ('compliant' per light and slot "
            "in dimming.nc)"
        )
    print(
        f"year {y['year']} for this stock (estimated from {y['nights_sampled']} nights): "
        f"{y['saving_pct']:.1f}% "
        f"(LED {y['saving_led_pct']:.1f}, dimming {y['saving_dimming_pct']:.1f}, "
        f"CLO {y['saving_clo_pct']:.1f}, switch-off {y['saving_switch_off_pct']:.1f}, "
        f"caps {y['saving_caps_pct']:.1f}) "
        f"-> {'at or above' if y['on_track'] else 'short of'} the target; "
        "twin energy --year plans every night"
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
        f"trajectory with the contract's LED renewal: {t['saving_pct_2030']:.1f}% saved in 2030 "
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


def _min_coupling(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        msg = f"{text!r} is not a number at least 0"
        raise argparse.ArgumentTypeError(msg)
    return value


def _calibration_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--calibration",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"{what} a `twin calibrate --out DIR` run calibrated (its parameters, "
        "OD factors and gateway ends) instead of the default one",
    )


def _calibrated_model(tw: Twin, args: Args) -> DemandModel | None:
    """The demand model of ``--calibration DIR`` (None without it); a bad folder is refused."""
    if args.calibration is None:
        return None
    from .scenarios.calibration import load_calibrated_model

    model = load_calibrated_model(tw, args.calibration)
    print(f"demand calibrated by {args.calibration}: {model.params}")
    return model


def _signals_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument(
        "--corridor", default=None, help="coordinate one corridor by name (default: all)"
    )
    p.add_argument("--out", required=True, type=_out_dir, help="folder for plans, report and plots")
    p.add_argument(
        "--min-coupling",
        type=_min_coupling,
        default=0.5,
        help="coupling index (veh/h per foot of link) below which a corridor link is not "
        "coordinated; 0 coordinates whole corridors (default 0.5)",
    )
    p.add_argument(
        "--sumo",
        action="store_true",
        help="also write the plans, with their offsets, as SUMO files in OUT/sumo (network, "
        "morning trips, programmes)",
    )
    p.add_argument(
        "--bus-lines",
        type=_existing(".csv", ".txt", what="a bus line list"),
        default=None,
        help="CSV of bus lines (columns line and way, or line and street) for bus priority; "
        "default: the route=bus relations of the OSM extract",
    )
    _calibration_arg(p, "size the plans on the flows of the demand (busiest hour, equilibrium)")


def _delay_plot(tw: Twin, webster: Any, plans: Any, path: Path) -> None:
    """Per junction, the uniform delay of our plan against the fixed-time Webster plan's."""
    import matplotlib.pyplot as plt

    from optimize.coordination import junction_flows
    from optimize.evaluation import uniform_delay

    base, ours = [], []
    for jid, plan in plans.items():
        flows, lanes = junction_flows(webster, jid)
        model = webster.models[jid]
        base.append(uniform_delay(webster[jid], model, flows, lanes))
        ours.append(uniform_delay(plan, model, flows, lanes))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(base, ours, s=10, alpha=0.7)
    top = max([*base, *ours, 1.0])
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    ax.set_xlabel("fixed-time Webster plan: uniform delay (s/veh)")
    ax.set_ylabel("our plan: uniform delay (s/veh)")
    ax.set_title(f"{tw.city.name}: delay per junction (Webster 1958)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _signals_check(args: Args) -> None:
    if args.bus_lines is not None:  # a bad line list is refused before the twin is loaded
        from .signals.buses import read_line_list

        read_line_list(args.bus_lines)


@command("optimize signals", arguments=_signals_args, check=_signals_check)
def cmd_optimize_signals(args: Args) -> int:
    """Signal plans: validated LP splits, MAXBAND green waves; JSON, NetCDF, plots."""
    import matplotlib.pyplot as plt
    import xarray as xr

    from optimize.coordination import coordinated_plans
    from optimize.maxband import time_space_diagram
    from optimize.signals import bus_priorities

    from ._errors import DataMissingError
    from .scenarios.network import export_twin, signal_plans
    from .signals.buses import bus_groups, bus_routes
    from .signals.safety import plan_document

    tw = _load(args)
    model = _calibrated_model(tw, args)
    webster = signal_plans(tw, model=model)
    co = coordinated_plans(tw, webster, corridor=args.corridor, min_coupling=args.min_coupling)
    try:
        routes = bus_routes(tw, line_list=args.bus_lines)
        buses = bus_groups(routes, webster.models)
        prio = bus_priorities(co.plans, webster.models, buses)
        given = sum(any(p.extend_s > 0 or p.early_s > 0 for p in ps) for ps in prio.values())
        bus_note = f"{len(routes)} bus routes, priority at {given} junctions"
        if len(prio) > given:  # their other stages already at their minimum greens
            bus_note += f" ({len(prio) - given} more with no spare green)"
    except DataMissingError as exc:  # no relations and no line list: plans without priority
        routes, buses, prio, bus_note = [], {}, {}, f"no bus priority ({exc})"
    with staged(args.out, folder=True) as out:
        docs, rows = [], []
        for jid, plan in co.plans.items():
            docs.append(plan_document(plan, webster.models[jid]))
            sol = co.solutions.get(jid)  # none where the Webster plan is kept
            reserve = float("nan") if sol is None else float(sol.attrs["reserve_capacity"])
            rows.append((jid, plan.cycle_s, plan.offset_s, reserve))
        (out / "plans.json").write_text(json.dumps(docs, indent=1))
        ds = xr.Dataset(
            {
                "cycle": ("junction", [r[1] for r in rows], {"units": "s", "long_name": "cycle"}),
                "offset": (
                    "junction",
                    [r[2] for r in rows],
                    {"units": "s", "long_name": "start of the first stage's green"},
                ),
                "reserve_capacity": (
                    "junction",
                    [r[3] for r in rows],
                    {
                        "units": "1",
                        "long_name": "reserve capacity multiplier (NaN: Webster plan kept)",
                    },
                ),
            },
            coords={"junction": [r[0] for r in rows]},
            attrs={"city": tw.city.name},
        )
        ds.to_netcdf(out / "plans.nc")
        report: dict[str, Any] = {
            "city": tw.city.name,
            "plans": len(co.plans),
            "local_hour": webster.local_hour,
            "demand": (
                "traffic profiles by road class and counts"
                if model is None
                else f"calibrated by {args.calibration}: equilibrium flows"
            ),
            "skipped": webster.skipped,
            "corridors": {},
        }
        for name, binding in co.infeasible.items():
            report["corridors"][name] = {"status": "infeasible", "binding": list(binding)}
            print(f"{name}: infeasible; binding constraints {', '.join(binding)}")
        for name, why in co.left_out.items():
            report["corridors"][name] = {"status": "left out", "reason": why}
        report["coupling_index"] = {k: list(v) for k, v in co.coupling.items()}
        report["isolated"] = sorted(co.isolated)
        report["declined"] = sorted(co.declined)  # coordination would cost them more delay
        for i, (name, band) in enumerate(co.bands.items()):
            stem = f"corridor_{i}"
            band.to_netcdf(out / f"{stem}.nc")
            ax = time_space_diagram(band)
            ax.figure.savefig(out / f"{stem}_time_space.png")
            plt.close(ax.figure)  # a city has more corridors than pyplot keeps open quietly
            report["corridors"][name] = {
                "status": band.attrs["status"],
                "file": f"{stem}.nc",
                "band_out_s": band.attrs["band_out_s"],
                "band_in_s": band.attrs["band_in_s"],
                "cycle_s": band.attrs["cycle_s"],
                "double_cycled": sorted(
                    str(j) for j in band["junction"].values if str(j) in co.double_cycled
                ),
                "offsets_s": dict(
                    zip(
                        band["junction"].values.tolist(),
                        band["offset"].values.tolist(),
                        strict=True,
                    )
                ),
            }
            print(
                f"{name}: bands {band.attrs['band_out_s']:.0f} s out, "
                f"{band.attrs['band_in_s']:.0f} s in (cycle {band.attrs['cycle_s']:.0f} s)"
            )
        report["bus_priority"] = bus_note
        bus_docs = [
            {
                "junction": jid,
                "plan": co.plans[jid].plan_id,
                "group": bp.group,
                "lines": buses[jid][bp.group],
                "stage": bp.stage,
                "extend_s": bp.extend_s,
                "early_s": bp.early_s,
                "extended": bp.extended.to_dict(),
                "early": bp.early.to_dict(),
            }
            for jid, items in prio.items()
            for bp in items
        ]
        (out / "bus_priority.json").write_text(json.dumps(bus_docs, indent=1, ensure_ascii=False))
        _delay_plot(tw, webster, co.plans, out / "delay.png")
        (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
        if args.sumo:  # SUMO itself is not run here: `sumo -c OUT/sumo/twin.sumocfg` does
            export_twin(tw, out / "sumo", plans=co.plans, check=False)
    print(f"{tw.city.name}: {webster.summary()}")
    print(f"{tw.city.name}: {bus_note}")
    print(
        f"written to {args.out}: plans.json, plans.nc, bus_priority.json, report.json, "
        "corridor_*.nc, time-space plots, delay.png" + (", sumo/" if args.sumo else "")
    )
    return 0


def _year(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        _fail_arg(f"{text!r} is not a calendar year")
    if not 1900 <= value <= 2100:
        _fail_arg(f"{value} is not a calendar year in 1900-2100")
    return value


def _energy_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument(
        "--out",
        required=True,
        type=_out_dir,
        help="folder for annual.json, year.nc, year_levers.png, trajectory.png and .csv",
    )
    p.add_argument(
        "--year",
        type=_year,
        default=None,
        help="calendar year to plan night by night (default: this year)",
    )
    _switch_off_args(p)
    p.add_argument(
        "--resize",
        type=_positive_int,
        default=None,
        metavar="N",
        help=(
            "plan a stock of N lights resampled from the city's real ones (e.g. 34000 for a "
            "Dijon-sized stock; twin.energy.stock says how it is built)"
        ),
    )
    p.add_argument(
        "--as-city",
        default=None,
        metavar="C",
        help="with --resize: the city whose sun and contract the stock takes (e.g. dijon)",
    )
    p.add_argument(
        "--led-share",
        type=float,
        default=None,
        help="with --resize: share of LED lights, the rest HPS (default: the contract's end)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"--resize: {text!r} is not a number of lights >= 1"
        raise argparse.ArgumentTypeError(msg)
    return value


@command("energy", arguments=_energy_args, check=_switch_off_check)
def cmd_energy(args: Args) -> int:
    """Plan every night of a year; annual kWh against the HPS baseline by lever; trajectory."""
    import datetime as dt

    from optimize.dimming_year import LEVERS, plan_year, plot_year, write_year
    from optimize.nightly import ageing_factors, trajectory_for

    from . import energy
    from .progress import progress_bar

    tw = _load(args)
    if args.resize is not None:
        from .cities import get_city
        from .energy.stock import resized_twin

        target = get_city(args.as_city) if args.as_city else tw.city
        share = target.contract.led_share_end if args.led_share is None else args.led_share
        tw = resized_twin(tw, n_lights=args.resize, led_share=share, city=target)
        r = tw.meta["resized"]
        print(
            f"stock: {r['n_lights']:,} lights resampled from {r['source']}'s "
            f"{r['source_lights']:,} ({r['resampled']:,} drawn again), {r['hps']:,} kept HPS "
            f"(LED share {r['led_share']:.0%}), {r['cabinets']} cabinets; sun and contract "
            f"of {r['city']}"
        )
    elif args.as_city is not None or args.led_share is not None:
        msg = "--as-city and --led-share need --resize"
        raise InputValidationError(msg)
    year = args.year or dt.datetime.now(dt.UTC).year
    days = (dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days
    bar = progress_bar(total=days, desc=f"{tw.name} {year}", unit="night")

    def tick(done: int, total: int) -> None:
        bar.update(1)

    ds = plan_year(tw, year, switch_off=args.switch_off, progress=tick)
    bar.close()
    c = tw.city.contract
    n_ages = c.end.year - c.start.year + 1
    bar = progress_bar(total=n_ages, desc=f"{tw.name} CLO ageing", unit="age")
    by_age = ageing_factors(
        tw, reference_year=year, switch_off=args.switch_off, progress=lambda d, t: bar.update(1)
    )
    bar.close()
    traj, dimf, offf = trajectory_for(tw, ds, by_age=by_age)
    a = ds.attrs
    annual = {
        "city": tw.name,
        "year": year,
        "nights": int(a["nights"]),
        "lights": int(ds.sizes["light"]),
        "baseline_kwh": round(float(a["baseline_kwh"]), 1),
        "led_full_kwh": round(float(a["led_full_kwh"]), 1),
        "planned_kwh": round(float(a["planned_kwh"]), 1),
        "saving_pct": round(float(a["saving_pct"]), 3),
        "saving_without_clo_pct": round(float(a["saving_without_clo_pct"]), 3),
        "levers_pct": {k: round(float(a[f"saving_{k}_pct"]), 3) for k in LEVERS},
        "caps": {
            "sizing": a["cap_sizing"],
            "cabinets": int(a["cabinets"]),
            "from_inventory": int(a["cap_source_inventory"]),
            "binding_cabinets": int(a["cap_binding_cabinets"]),
            "binding_nights": int(a["cap_binding_nights"]),
            "path": a["cap_path"],
            "light_hours_below_en13201_pct": round(float(a.get("below_floor_pct", 0.0)), 3),
            "light_deficit_pct": round(float(a.get("deficit_pct", 0.0)), 4),
        },
        "target_pct": float(c.target_pct),
        "contract": c.label,
        "wattage": {k: int(a[f"wattage_{k}"]) for k in ("real", "inferred", "default")},
        "maintenance": a["maintenance"],
        "maintenance_defaulted": int(a["maintenance_defaulted"]),
        "install_year_default": int(a["install_year_default"]),
        "maintenance_factor_from": {
            "real": int(a["maintenance_real"]),
            "inferred": 0,
            "default": int(a["maintenance_defaulted"]),
        },
        "install_year_from": {
            "real": int(a["install_year_real"]),
            "inferred": 0,
            "default": int(a["install_year_defaulted"]),
        },
        "switch_off": a["switch_off"] or None,
        "trajectory": {
            "dimming_factor": dimf,
            "switch_off_factor": offf,
            "saving_pct_end": round(float(traj["saving_pct"].values[-1]), 2),
            "end_year": int(traj["year"].values[-1]),
            "year_of_target": energy.year_of_target(traj),
            "dimming_factor_by_year": {
                int(y): round(float(v), 5)
                for y, v in zip(traj["year"].values, traj["dimming_factor"].values, strict=True)
            },
            "dimming_factor_by_age": {int(k): round(float(v), 5) for k, v in by_age.items()},
            "from": (
                f"switch-off of {year} (every night of the year); dimming per year from the CLO "
                "ageing of each LED cohort (12 nights per age, cohorts from the renewal shares)"
            ),
        },
        "compute_s": float(a["compute_s"]),
        "resized": tw.meta.get("resized"),
        "attribution": tw.city.attribution,
    }
    fig = energy.plot_trajectory(
        traj,
        title=f"{tw.city.title}: {c.start.year}-{c.end.year} against the {c.target_pct:g}% target "
        f"(annual factors of {year})",
        attribution=f"Data: {tw.city.attribution}",
    )
    with staged(args.out, folder=True) as out:
        (out / "annual.json").write_text(json.dumps(annual, indent=2, ensure_ascii=False) + "\n")
        write_year(ds, out / "year.nc")
        plot_year(ds, title=f"{tw.city.title}: {year}, night by night").savefig(
            out / "year_levers.png"
        )
        fig.savefig(out / "trajectory.png")
        traj.to_dataframe().to_csv(out / "trajectory.csv")
    lv = annual["levers_pct"]
    print(
        f"{tw.city.title} {year}: {annual['nights']} nights, {annual['lights']:,} lights "
        f"(wattage real {annual['wattage']['real']:,}, inferred {annual['wattage']['inferred']:,}, "
        f"default {annual['wattage']['default']:,})"
    )
    mfs, iys = annual["maintenance_factor_from"], annual["install_year_from"]
    print(
        f"maintenance factor: {mfs['real']:,} from the inventory, {mfs['default']:,} the "
        f"catalogue default ({annual['maintenance']}); install year: {iys['real']:,} from the "
        f"inventory, {iys['default']:,} the contract's first year "
        f"({annual['install_year_default']})"
    )
    print(f"{'baseline (HPS)':<26}{annual['baseline_kwh']:>14,.0f} kWh")
    print(f"{'planned':<26}{annual['planned_kwh']:>14,.0f} kWh")
    for k in LEVERS:
        print(f"{'saving: ' + k:<26}{lv[k]:>13.2f} %")
    cp = annual["caps"]
    print(
        f"cabinet caps ({cp['sizing']}): {cp['binding_cabinets']} of {cp['cabinets']} cabinets "
        f"bind on {cp['binding_nights']} nights; {cp['light_hours_below_en13201_pct']:.2f} % of "
        f"lit light-hours below EN 13201 (deficit {cp['light_deficit_pct']:.3f} % of full "
        f"output); path: {cp['path']}"
    )
    print(
        f"{'saving: total':<26}{annual['saving_pct']:>13.2f} %  "
        f"(without CLO {annual['saving_without_clo_pct']:.2f} %; target {c.target_pct:g} % a year)"
    )
    t = annual["trajectory"]
    print(
        f"trajectory: {t['saving_pct_end']:.1f}% in {t['end_year']} "
        f"(target first met: {t['year_of_target'] or 'not by ' + str(t['end_year'])})"
    )
    print(
        f"written to {args.out}: annual.json, year.nc, year_levers.png, trajectory.png, "
        "trajectory.csv"
    )
    return 0


def _calibrate_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument("--out", required=True, type=_out_dir, help="folder for the tables and plots")
    p.add_argument("--rng", type=_seed, default=0, help="seed of the Nelder-Mead starts")
    p.add_argument("--starts", type=_count, default=2, help="Nelder-Mead starts (default 2)")
    p.add_argument(
        "--holdout",
        type=_share,
        default=0.3,
        help="share of streets held out, in tenths, by a fixed rule on their names (default 0.3)",
    )
    p.add_argument(
        "--matrix-estimation",
        action="store_true",
        help="then adjust the OD cells to the fitted counts (reported with TAG M3.1 checks)",
    )
    p.add_argument(
        "--me-weight",
        type=_positive,
        default=1024.0,
        help="first pull of the estimation to the prior OD; it grows until TAG M3.1's limits "
        "hold (default 1024: weaker pulls break them on Montpellier and take long to solve)",
    )
    p.add_argument(
        "--cell-m",
        type=_positive,
        default=500.0,
        help="side of the demand model's zone cells in metres (default 500; 250 fits better)",
    )
    p.add_argument(
        "--gateways-from-counts",
        action="store_true",
        help="size each gateway's external traffic from its entry road's counts (daily, PHJM, "
        "PHJS; held-out streets not used) instead of a fitted share spread by capacity",
    )
    p.add_argument(
        "--period",
        type=_count_period,
        default=None,
        help="use only the counts made within FIRST:LAST (ISO dates, e.g. 2008-01-01:2013-12-31)",
    )
    p.add_argument(
        "--observed",
        choices=("mean", "recent", "count"),
        default="mean",
        help="observed flow of a site: the mean of its counts (default, as TAG M3.1 compares "
        "a model of the average weekday), of its recent ones, or each count on its own",
    )
    p.add_argument(
        "--recent-years",
        type=_count,
        default=5,
        help="with --observed recent: years back from a site's latest count (default 5)",
    )
    p.add_argument(
        "--paths",
        choices=("free", "equilibrium"),
        default="equilibrium",
        help="assign on the peak hours' equilibrium paths, refitted until stable (default), "
        "or on free-flow shortest paths (faster)",
    )


def _count_period(text: str) -> tuple[Any, Any]:
    """``FIRST:LAST`` as two ``datetime.date``."""
    import datetime

    first, sep, last = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return datetime.date.fromisoformat(first), datetime.date.fromisoformat(last)
    except ValueError:
        msg = f"--period: {text!r} is not FIRST:LAST in ISO dates (2008-01-01:2013-12-31)"
        raise argparse.ArgumentTypeError(msg) from None


@command("calibrate", arguments=_calibrate_args)
def cmd_calibrate(args: Args) -> int:
    """Fit the demand model to the city's traffic counts and report GEH per site."""
    from .plot import plot_counts_fit
    from .scenarios import calibration
    from .scenarios.zones import build_demand

    tw = _load(args)
    res = calibration.calibrate(
        tw,
        model=build_demand(tw, cell_m=args.cell_m),
        rng=args.rng,
        starts=args.starts,
        holdout=args.holdout,
        matrix_estimation=args.matrix_estimation,
        me_weight=args.me_weight,
        period=args.period,
        gateways_from_counts=args.gateways_from_counts,
        observed=args.observed,
        recent_years=args.recent_years,
        paths=args.paths,
    )
    print(res.summary())
    tables = {"parameters": res.table}
    if res.table_me is not None:
        tables["matrix_estimation"] = res.table_me
    # each count against its site's modelled flow: the per-count figure, as a table only
    count_tables = {"parameters": res.table_counts}
    if res.table_me_counts is not None:
        count_tables["matrix_estimation"] = res.table_me_counts
    written = []
    with staged(args.out, folder=True) as out:
        for label, table in tables.items():
            csv = out / f"geh_{label}.csv"
            table.to_csv(csv, index=False)
            png = out / f"geh_{label}.png"
            what = "calibrated parameters" if label == "parameters" else "estimated OD matrix"
            plot_counts_fit(
                table,
                title=f"{tw.city.title}: counts against the model ({what})",
                attribution=f"Data: {tw.city.attribution}",
                out=png,
            )
            written += [csv.name, png.name]
        for label, table in count_tables.items():
            csv = out / f"geh_counts_{label}.csv"
            table.to_csv(csv, index=False)
            written.append(csv.name)
        if len(res.equilibrium_rounds):
            res.equilibrium_rounds.to_csv(out / "equilibrium_rounds.csv", index=False)
            written.append("equilibrium_rounds.csv")
        report = {
            "city": tw.city.name,
            "cell_m": args.cell_m,  # the zones the OD factors are for (load_calibrated_model)
            "matched": res.matched,
            "unmatched": res.unmatched,
            "share_geh_below_5_before": res.share_geh_below_5_before,
            "share_geh_below_5": res.share_geh_below_5,
            "share_geh_below_5_fitted": res.share_geh_below_5_fitted,
            "share_geh_below_5_holdout": res.share_geh_below_5_holdout,
            "observed": res.observed,
            "paths": res.paths,
            "per_count": calibration.geh_shares(res.table_counts),
            "site_spread": res.site_spread,
            "dmrb_share": calibration.DMRB_SHARE,
            "params": res.params,
            "matrix_estimation": {k: float(v) for k, v in res.matrix_stats.items()},
        }
        if len(res.gateways) and "source" in res.gateways:
            by_source = res.gateways.groupby("source")["zone"].apply(list)
            report["gateways"] = {str(k): [str(z) for z in v] for k, v in by_source.items()}
        report["count_agreement"] = res.count_agreement
        report["provenance"] = res.provenance
        report["counts_left_out"] = {
            str(k): int(v) for k, v in res.issues.groupby("reason")["count"].nunique().items()
        }
        (out / "calibration.json").write_text(json.dumps(report, indent=2))
        res.issues.to_csv(out / "counts_left_out.csv", index=False)
        written.append("counts_left_out.csv")
        if len(res.gateways):
            res.gateways.to_csv(out / "gateways.csv", index=False)
            written.append("gateways.csv")
        if res.external_ends is not None:
            import numpy as np

            # the gateways' trip ends the counts sized: with od_factor.npy, the demand estimated
            np.save(out / "external_ends.npy", res.external_ends)
            written.append("external_ends.npy")
        if res.od_factor is not None:
            import numpy as np

            np.save(out / "od_factor.npy", res.od_factor)
            written.append("od_factor.npy")
    print(f"written to {args.out}: calibration.json, " + ", ".join(written))
    return 0


def _footfall_calibrate_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--counts",
        type=_existing(".csv", what="counter observations"),
        help="CSV of counts: counter, [segment], start, end or minutes, count (';' or ',', "
        "UTF-8 or Latin-1; twin.scenarios.footfall_calibration documents the columns)",
    )
    src.add_argument(
        "--db",
        type=_db_url,
        help="the live history store: the footfall counters' telemetry (sqlite:///PATH or "
        "postgresql://...)",
    )
    src.add_argument(
        "--proxy",
        action="store_true",
        help="no counters (Montpellier): set the city's own pedestrian-street marking against "
        "the model's footfall; calibrates nothing (twin.scenarios.footfall_calibration says why)",
    )
    p.add_argument("--out", required=True, type=_out_dir, help="folder for the tables and plots")
    p.add_argument(
        "--period",
        type=_count_period,
        default=None,
        help="use only the counts of the local days FIRST:LAST (ISO dates); the others are "
        "reported as outside the range",
    )
    p.add_argument(
        "--period-minutes",
        type=_positive,
        default=None,
        help="length of every counting period when the CSV has no end or minutes column",
    )
    p.add_argument(
        "--holdout",
        type=_share,
        default=0.3,
        help="share of counters held out, in tenths, by a fixed rule on their ids (default 0.3)",
    )


@command("footfall calibrate", arguments=_footfall_calibrate_args)
def cmd_footfall_calibrate(args: Args) -> int:
    """Fit the walk demand to footfall counters and report GEH per counter-hour."""
    import numpy as np

    from .plot import plot_counts_fit
    from .scenarios import footfall_calibration as fc

    tw = _load(args)
    if args.proxy:
        figures, table = fc.proxy_report(tw)
        print(
            f"{tw.city.title}: no footfall counts; proxy: {figures['marked_segments']:.0f} "
            f"segments ({figures['marked_km']:.1f} km) the city marks as pedestrian streets; "
            f"{figures['marked_as_residential']:.0f} of them modelled as residential; weekday "
            f"footfall {figures['mean_footfall_marked']:,.0f} on average against "
            f"{figures['mean_footfall_other']:,.0f} on the other walkable segments; "
            f"{100 * figures['share_marked_in_top_quarter']:.1f}% of them in the busiest quarter\n"
            "the proxy calibrates neither the level nor the evening/night share: the plan keeps "
            "the default footfall"
        )
        with staged(args.out, folder=True) as out:
            (out / "footfall_proxy.json").write_text(
                json.dumps({"city": tw.city.name, **figures}, indent=2) + "\n"
            )
            table.to_csv(out / "footfall_proxy.csv")
        print(f"written to {args.out}: footfall_proxy.json, footfall_proxy.csv")
        return 0
    if args.counts is not None:
        obs = fc.read_counts(args.counts)
        source = str(args.counts)
    else:
        import datetime

        from live.counts import footfall_observations
        from live.store import open_store

        bounds: list[datetime.datetime | None] = [None, None]
        if args.period is not None:  # a day's margin: check_counts refuses what lies outside
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(tw.city.timezone)
            first, last = args.period
            bounds = [
                datetime.datetime.combine(first, datetime.time(), zone),
                datetime.datetime.combine(last, datetime.time(), zone) + datetime.timedelta(2),
            ]
        with open_store(args.db) as store:
            obs = footfall_observations(store, tw, start=bounds[0], end=bounds[1])
        source = "the history store's footfall counters"
    fit = fc.calibrate_footfall(
        tw, obs, period=args.period, period_minutes=args.period_minutes, holdout=args.holdout
    )
    print(fit.summary())
    shares = fit.shares()
    report = {
        "city": tw.city.name,
        "source": source,
        "prior": "calendar forecast (road-class footfall, hourly walk profiles)",
        "params": fit.calibration.to_dict(),
        "identified": fit.identified,
        "observations": {
            "read": fit.rows,
            "accepted": fit.accepted,
            "rejected": {
                str(k): int(v) for k, v in fit.rejected.groupby("reason")["source"].count().items()
            },
        },
        "geh": {k: (None if not np.isfinite(v) else v) for k, v in shares.items()},
    }
    with staged(args.out, folder=True) as out:
        (out / fc.FILE).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        fit.table.to_csv(out / "geh_footfall_hours.csv", index=False)
        fit.counters.to_csv(out / "geh_footfall_counters.csv", index=False)
        fit.rejected.to_csv(out / "counts_rejected.csv", index=False)
        before = fit.table.assign(modelled=fit.table["prior"], geh=fit.table["geh_prior"])
        for name, table, what in (
            ("geh_footfall.png", fit.table, "calibrated"),
            ("geh_footfall_default.png", before, "default"),
        ):
            plot_counts_fit(
                table,
                title=f"{tw.city.title}: footfall counters against the {what} walk demand",
                attribution=f"Data: {tw.city.attribution}",
                out=out / name,
                points="counter-hours",
                flow="pedestrians in the hour",
                band="grey band: GEH < 5",
            )
    print(
        f"written to {args.out}: {fc.FILE}, geh_footfall_hours.csv, geh_footfall_counters.csv, "
        "counts_rejected.csv, geh_footfall.png, geh_footfall_default.png "
        "(read by `twin plan night --footfall-calibration DIR`)"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# Live operation: serve, devices, plan push|status|rollback (the `live` package).


def _broker_url(text: str) -> str:
    """``mqtt://HOST[:PORT]``, with ``?protocol=5|3.1.1`` as `twin serve` prints its own."""
    m = re.match(r"^(mqtt|tcp)://[^\s/:?]+(?::(\d{1,5}))?/?(?:\?protocol=([^\s&]*))?$", text)
    if not m:
        _fail_arg(f"{text!r} is not mqtt://HOST[:PORT][?protocol=5|3.1.1]")
    if m[2] is not None and not 1 <= int(m[2]) <= 65535:
        _fail_arg(f"{text!r}: {int(m[2])} is not a TCP port (1-65535)")
    if m[3] is not None and m[3] not in ("5", "3.1.1"):
        _fail_arg(f"{text!r}: protocol={m[3]} is neither 5 nor 3.1.1")
    return text


def _db_url(text: str) -> str:
    if not re.match(r"^(sqlite:///.+|postgres(ql)?://\S+)$", text):
        _fail_arg(f"{text!r} is neither sqlite:///PATH nor postgresql://USER@HOST:PORT/DB")
    return text


def _port(text: str) -> int:
    value = _count(text)
    if value > 65535:
        _fail_arg(f"{value} is not a TCP port (1-65535)")
    return value


def _plan_path(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        _fail_arg(f"{text}: no such file or folder (a folder written by `twin plan night`)")
    return path


_FAULTS = ("lamp_failure", "power_anomaly", "offline", "flashing_amber", "slow")


def _fault(text: str) -> tuple[str, str]:
    kind, _, asset = text.partition("=")
    if kind not in _FAULTS or not asset:
        _fail_arg(f"{text!r}: expected KIND=ASSET with KIND one of {', '.join(_FAULTS)}")
    return kind, asset


def _offset_c(text: str) -> float:
    value = _number(text)
    if not -40.0 <= value <= 40.0:
        _fail_arg(f"{value:g} is not a temperature offset in [-40, 40] degC")
    return value


def _precip(text: str) -> float:
    value = _number(text)
    if not 0.0 <= value <= 200.0:
        _fail_arg(f"{value:g} is not a precipitation rate in [0, 200] mm/h")
    return value


#: ``--cold-night``: a winter night's road below 0 degC, with snow (the example snow rule)
_COLD_NIGHT = (-8.0, 1.0)


def _simulator_args(p: argparse.ArgumentParser) -> None:
    """Faults and weather injected into the equipment simulator (`devices`, `serve --devices`)."""
    p.add_argument(
        "--fault", type=_fault, action="append", default=[], help="inject KIND=ASSET (repeatable)"
    )
    p.add_argument(
        "--cold-night",
        action="store_true",
        help="road-weather stations 8 degC colder, with 1 mm/h of precipitation (snow rule)",
    )
    p.add_argument(
        "--weather-offset",
        type=_offset_c,
        metavar="DEGC",
        help="shift every road-weather station by this many degC (overrides --cold-night's -8)",
    )
    p.add_argument(
        "--precip",
        type=_precip,
        metavar="MM_H",
        help="precipitation the stations report, mm/h (overrides --cold-night's 1)",
    )


def _weather(args: Args) -> tuple[float, float] | None:
    """``(offset_c, precip_mm_h)`` asked of the simulator, or ``None`` for its own weather."""
    if not args.cold_night and args.weather_offset is None and args.precip is None:
        return None
    offset, precip = _COLD_NIGHT if args.cold_night else (0.0, 0.0)
    return (
        offset if args.weather_offset is None else args.weather_offset,
        precip if args.precip is None else args.precip,
    )


def _check_faults(tw: Twin, args: Args) -> None:
    from live.serve import check_faults

    try:
        check_faults(tw, args.fault)
    except InputValidationError as exc:
        _arg_error("--fault", InputValidationError(str(exc).removeprefix("fault: ")))


def _serve_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address of the HTTP endpoint and broker")
    p.add_argument("--port", type=_port, default=8080, help="HTTP port (GET /health)")
    p.add_argument("--broker", type=_broker_url, help="MQTT broker (default: an embedded one)")
    p.add_argument("--db", type=_db_url, help="history store (default sqlite:///twin-live-C.db)")
    p.add_argument("--devices", action="store_true", help="run the equipment simulator too")
    p.add_argument("--period", type=_positive, default=10.0, help="simulator report period, s")
    p.add_argument("--for", dest="duration", type=_positive, help="stop after this many seconds")
    p.add_argument("--rules", type=_existing(".toml", what="rules"), help="when-then rules (TOML)")
    _simulator_args(p)


def _serve_check(args: Args) -> None:
    if not args.devices:
        asked = [
            o
            for o, v in (
                ("--fault", args.fault),
                ("--cold-night", args.cold_night),
                ("--weather-offset", args.weather_offset is not None),
                ("--precip", args.precip is not None),
            )
            if v
        ]
        if asked:
            msg = "needs --devices: it is injected into the equipment simulator"
            _arg_error(asked[0], InputValidationError(msg))
    if args.rules is not None:
        from live.actions import check_actions
        from live.rules import load_rules

        try:
            check_actions(load_rules(args.rules).rules)
        except InputValidationError as exc:
            _arg_error("--rules", exc)


@command("serve", arguments=_serve_args, check=_serve_check)
def cmd_serve(args: Args) -> int:
    """Run the live loop: broker (embedded unless given), ingestion, store, /health."""
    from live.serve import serve

    tw = _load(args)
    _check_faults(tw, args)
    counters = serve(
        tw,
        host=args.host,
        port=args.port,
        broker=args.broker,
        db=args.db,
        devices=args.devices,
        period_s=args.period,
        duration_s=args.duration,
        rules=None if args.rules is None else str(args.rules),
        faults=args.fault,
        weather=_weather(args),
    )
    print(json.dumps(counters))
    return 0


def _devices_args(p: argparse.ArgumentParser) -> None:
    _city_args(p)
    p.add_argument("--broker", type=_broker_url, required=True, help="MQTT broker URL")
    p.add_argument("--period", type=_positive, default=10.0, help="report period, s")
    p.add_argument("--for", dest="duration", type=_positive, help="stop after this many seconds")
    _simulator_args(p)


def _reach_broker(url: str) -> None:
    """Whether anything listens at the broker's address: a typo is said before any work."""
    import socket

    from live.mqtt import broker_address

    host, port = broker_address(url)
    try:
        socket.create_connection((host, port), timeout=5.0).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        msg = f"--broker: no MQTT broker answered at mqtt://{host}:{port} ({reason})"
        raise ConnectionError(msg) from None


@command("devices", arguments=_devices_args)
def cmd_devices(args: Args) -> int:
    """Simulate the city's equipment on a broker: telemetry out, commands obeyed."""
    import time

    from live.devices import Devices

    tw = _load(args)
    _check_faults(tw, args)
    sim = Devices(tw, args.broker)
    # as `twin serve --devices`: in place before the simulator connects, since commands the
    # broker queued for it arrive with the connection
    weather = _weather(args)
    if weather is not None:
        sim.weather(offset_c=weather[0], precip_mm_h=weather[1])
        print(f"simulated weather: {weather[0]:+g} degC, {weather[1]:g} mm/h", flush=True)
    for kind, asset in args.fault:
        sim.fault(kind, asset)
        print(f"simulated fault: {kind} on {asset}", flush=True)
    _reach_broker(args.broker)  # before the half minute of preparing Montpellier's hour
    t = time.perf_counter()
    sim.prepare()  # the hour's traffic DES and the day's footfall, before the clock runs
    note = f" ({sim.detector_note})" if sim.detector_note else ""
    print(f"simulated devices ready in {time.perf_counter() - t:.1f} s{note}", flush=True)
    with sim:
        end = None if args.duration is None else time.monotonic() + args.duration
        while end is None or time.monotonic() < end:
            n = sim.publish_telemetry()
            print(f"published {n} messages; commands heard {sim.commands_seen}", flush=True)
            left = args.period if end is None else min(args.period, end - time.monotonic())
            time.sleep(max(left, 0.0))
    return 0


def _push_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("plan", type=_plan_path, help="a plan: a `twin plan night` folder, or a file")
    p.add_argument("--city", type=_city, help="city of a signal plans.json (default: its report)")
    p.add_argument("--broker", type=_broker_url, default="mqtt://127.0.0.1:1883")
    p.add_argument("--db", type=_db_url, help="history store (default sqlite:///twin-live-C.db)")
    p.add_argument("--dry-run", action="store_true", help="check and cost the plan, send nothing")
    p.add_argument("--timeout", type=_positive, default=2.0, help="first wait for acks, s")
    p.add_argument("--attempts", type=_count, default=3, help="rounds before a command fails")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _store_for(args: Args, city: str) -> Any:
    from live.store import open_store

    return open_store(args.db or f"sqlite:///twin-live-{city}.db")


@command("plan push", arguments=_push_args)
def cmd_plan_push(args: Args) -> int:
    """Send a plan through the safety gate to the devices; wait for their acknowledgements."""
    from live.control import Controller, dry_run, gate
    from optimize.plans import read

    from .model import load
    from .progress import progress_bar

    plan = read(args.plan, city=args.city)
    tw = load(plan.city)
    models = None
    if plan.kind == "signals":
        from .signals.junction import junction_models

        models = junction_models(tw, junctions=[s.junction for s in plan.signals])
    if args.dry_run:
        notes = gate(plan, models=models, twin=tw)
        print(json.dumps({**dry_run(plan, tw), "gate": "passed", "gate_notes": notes}))
        return 0
    with _store_for(args, plan.city) as store:
        ctl = Controller(
            store, args.broker, city=plan.city, timeout_s=args.timeout, attempts=args.attempts
        )
        bar = progress_bar(total=len(plan.groups()), desc="acknowledgements", unit="cmd")

        def progress(k: int, n: int) -> None:
            bar.update(k - bar.n)

        result = ctl.push(plan, models=models, twin=tw, progress=progress)
        bar.close()
    if args.json:
        print(json.dumps(dataclasses.asdict(result)))
    else:
        print(result.summary())
    return 0 if result.status == "applied" else 3


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", help="plan id (as `twin plan push` printed it)")
    p.add_argument("--city", type=_city, help="city (names the default store; default: the id's)")
    p.add_argument("--db", type=_db_url, help="history store (default sqlite:///twin-live-C.db)")


def _plan_city(args: Args) -> str:
    """``--city``, else the city a plan id names (``lighting-bondy-2024-01-15-...``)."""
    if args.city is not None:
        return str(args.city)
    from typing import get_args

    from optimize.plans import PlanKind

    from .cities import available_cities

    for city in sorted(available_cities(), key=len, reverse=True):
        if any(args.id.startswith(f"{kind}-{city}-") for kind in get_args(PlanKind)):
            return city
    msg = f"not given, and the plan id {args.id!r} names no city; pass --city C"
    _arg_error("--city", InputValidationError(msg))


@command("plan status", arguments=_status_args)
def cmd_plan_status(args: Args) -> int:
    """A pushed plan's status, commands and audit trail."""
    from live.control import Controller

    city = _plan_city(args)
    with _store_for(args, city) as store:
        print(json.dumps(Controller(store, "mqtt://unused", city=city).status(args.id)))
    return 0


def _rollback_args(p: argparse.ArgumentParser) -> None:
    _status_args(p)
    p.add_argument("--broker", type=_broker_url, default="mqtt://127.0.0.1:1883")
    p.add_argument("--timeout", type=_positive, default=2.0, help="first wait for acks, s")


@command("plan rollback", arguments=_rollback_args)
def cmd_plan_rollback(args: Args) -> int:
    """Put back the plan that was in force before this one (audited)."""
    from live.control import Controller

    city = _plan_city(args)
    with _store_for(args, city) as store:
        ctl = Controller(store, args.broker, city=city, timeout_s=args.timeout)
        prev = ctl.previous(args.id)
        from .model import load

        tw = load(prev.city)  # the gate checks the plan against the twin, never against itself
        models = None
        if prev.kind == "signals":
            from .signals.junction import junction_models

            models = junction_models(tw, junctions=[s.junction for s in prev.signals])
        result = ctl.rollback(args.id, models=models, twin=tw)
    print(result.summary())
    return 0 if result.status == "applied" else 3


def _proposals_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", type=_city, default="dijon", help="city (names the default store)")
    p.add_argument("--db", type=_db_url, help="history store (default sqlite:///twin-live-C.db)")
    p.add_argument("--all", action="store_true", help="reviewed ones too")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--accept", type=_count, metavar="N", help="accept proposal N")
    group.add_argument("--dismiss", type=_count, metavar="N", help="dismiss proposal N")


@command("plan proposals", arguments=_proposals_args)
def cmd_plan_proposals(args: Args) -> int:
    """Plans proposed by the rules (e.g. snow), with their readings; accept or dismiss one."""
    import getpass

    from live.actions import proposals, review

    with _store_for(args, args.city) as store:
        n = args.accept or args.dismiss
        if n is not None:
            decision = "accepted" if args.accept else "dismissed"
            try:
                review(store, n, decision, who=getpass.getuser())
            except InputValidationError as exc:
                _arg_error("--accept" if args.accept else "--dismiss", exc)
        print(json.dumps(proposals(store, args.city, status=None if args.all else "proposed")))
    return 0


# ---------------------------------------------------------------------------------------------
# Traffic: a whole weekday in the DES.


def _sample_share(text: str) -> float:
    value = _number(text)
    if not 0.0 < value <= 1.0:
        _fail_arg(f"{value:g} is not a share in (0, 1]")
    return value


def _weekday_args(p: argparse.ArgumentParser) -> None:
    _city_args(p, default="montpellier")
    p.add_argument("--out", required=True, type=_out_dir, help="folder for the tables and plots")
    p.add_argument("--date", type=_date, default=None, help="a weekday (default 2024-06-04)")
    p.add_argument(
        "--share", type=_sample_share, default=1.0, help="share of the trips simulated (0, 1]"
    )
    p.add_argument(
        "--routing",
        choices=("dynamic", "equilibrium"),
        default="dynamic",
        help="trips route on the DES's current link times (default) or on the equilibrium "
        "assignment's times of their departure period",
    )
    p.add_argument("--rng", type=_seed, default=20240604, help="seed of the trips (>= 0)")
    _calibration_arg(p, "run the demand")
    p.add_argument(
        "--hours",
        type=_number,
        nargs=2,
        default=(0.0, 24.0),
        metavar=("START", "END"),
        help="simulate only the trips departing in this local-clock window (e.g. 5 10 for "
        "the morning peak); default the whole day",
    )
    p.add_argument(
        "--no-pockets",
        dest="pockets",
        action="store_false",
        help="run the signalised approaches without their turn pockets (the same trips and "
        "plans), to measure what the pockets change",
    )


@command("traffic weekday", arguments=_weekday_args)
def cmd_traffic_weekday(args: Args) -> int:
    """Simulate a whole weekday of car traffic and write its report (trips, v/c maps)."""
    from .scenarios.network import REFERENCE_WEEKDAY
    from .scenarios.weekday import simulate_weekday, write_weekday_report

    tw = _load(args)
    model = _calibrated_model(tw, args)
    res = simulate_weekday(
        tw,
        day=args.date if args.date is not None else REFERENCE_WEEKDAY,
        share=args.share,
        routing=args.routing,
        hours=(args.hours[0], args.hours[1]),
        model=model,
        pockets=args.pockets,
        rng=args.rng,
    )
    print(res.summary())
    with staged(args.out, folder=True) as out:
        written = write_weekday_report(res, tw, out)
    print(f"written to {args.out}: " + ", ".join(written))
    return 0


# ---------------------------------------------------------------------------------------------
# The parser and the entry point.


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (its usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        _close_bars()
        message = " ".join(message.removeprefix("argument ").split())
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help strings with %


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="twin", description="Digital twin of a metropolis's public space.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for spec in _COMMANDS:
        for name in (spec.name, *spec.aliases):
            *path, last = name.split()
            parent = sub
            for depth, word in enumerate(path):
                key = " ".join(path[: depth + 1])
                if key not in groups:
                    about = _GROUPS.get(key, f"{key} commands")
                    gp = parent.add_parser(word, help=_help(about), description=_help(about))
                    groups[key] = gp.add_subparsers(
                        dest=f"{key.replace(' ', '_')}_command", required=True, metavar="ACTION"
                    )
                parent = groups[key]
            about = spec.summary if name == spec.name else f"alias of `twin {spec.name}`"
            p = parent.add_parser(last, help=_help(about), description=_help(spec.summary))
            if spec.arguments is not None:
                spec.arguments(p)
            p.set_defaults(_command=spec, _prog=p.prog)
    return parser


def _close_bars() -> None:
    progress = sys.modules.get("twin.progress")
    if progress is not None:
        progress.close_bars()


def _say_error(message: str, prog: str = "twin") -> None:
    """Close the progress bars, then print one line on stderr."""
    _close_bars()
    sys.stdout.flush()
    line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"{prog}: error: {line}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``twin`` command line; returns the exit status (2 for bad input)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or an argument error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    spec: Command = args._command
    try:
        from .settings import get_settings

        get_settings()  # TWIN_* variables are checked before any work
        if spec.check is not None:
            spec.check(args)
        return int(spec.run(args))
    except TwinError as exc:
        _say_error(str(exc), args._prog)
        return 2
    except KeyboardInterrupt:
        _say_error("interrupted", args._prog)
        return 130
    except BrokenPipeError:  # the reader left (`twin inventory list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # the machine, not the input: a full disk, a folder made read-only
        _say_error(str(exc), args._prog)
        return 1
    except BaseException:
        _close_bars()
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
