"""Import a municipal light inventory (CSV, GeoJSON or shapefile) in place of derived lights.

Every row is accounted for: a row is either accepted or rejected with its row number, the field
at fault and the reason; the good rows are kept whatever the bad ones hold. Row numbers are file
lines for CSV (the header is line 1) and 1-based feature numbers for GeoJSON and shapefiles.

Columns we read (map others with ``fields={"power_w": "PUISSANCE"}`` or ``--field``):

============  =====================================================================
``ref``       the inventory's own id (optional; must be unique when given)
``lon/lat``   position in EPSG:4326, or ``x/y`` with ``crs`` (CSV); else the file's geometry
``power_w``   system power at full output, W, in (0, 2000]; empty -> road-class default
``technology`` LED, HPS (SHP), MH (IM, iodures), LPS (SBP), FLUO, MERCURY (BF); empty -> LED
``luminaire`` luminaire type (free text)
``flux_lm``   luminous flux, lm (optional, > 0)
============  =====================================================================

An imported inventory is saved in the cache folder and used by every later :func:`twin.load` of
that city (it enters the cache key), until removed with :func:`remove_inventory`.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ._errors import CorruptInputError, InputValidationError
from .cache import _inventory_path
from .crs import LAMBERT93, WGS84

__all__ = [
    "ImportReport",
    "Rejection",
    "import_inventory",
    "inventory_path",
    "parse_field_mapping",
    "read_inventory",
    "remove_inventory",
]

MAX_POWER_W = 2000.0
AREA_MARGIN_M = 2000.0
TECHNOLOGY_ALIASES = {
    "LED": "LED",
    "HPS": "HPS", "SHP": "HPS", "SODIUM HAUTE PRESSION": "HPS", "SON": "HPS",
    "MH": "MH", "IM": "MH", "IODURES METALLIQUES": "MH", "CMH": "MH",
    "LPS": "LPS", "SBP": "LPS", "SOX": "LPS",
    "FLUO": "FLUO", "FLUOCOMPACTE": "FLUO", "FL": "FLUO",
    "MERCURY": "MERCURY", "BF": "MERCURY", "BALLON FLUO": "MERCURY",
}  # fmt: skip
OUR_FIELDS = ("ref", "lon", "lat", "x", "y", "power_w", "technology", "luminaire", "flux_lm")


@dataclasses.dataclass(frozen=True)
class Rejection:
    """One rejected inventory row."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


@dataclasses.dataclass
class ImportReport:
    """What an import accepted and rejected, row by row."""

    file: str
    rows: int
    accepted: int
    rejected: list[Rejection]
    power_defaulted: int = 0
    unmatched: int = 0
    replaced: int = 0

    def summary(self) -> str:
        """A readable summary, with up to 20 rejections listed."""
        lines = [
            f"{self.file}: {self.rows} rows, {self.accepted} accepted, "
            f"{len(self.rejected)} rejected",
            f"  {self.power_defaulted} without wattage (road-class default used), "
            f"{self.unmatched} further than 60 m from any road segment",
        ]
        if self.replaced:
            lines.append(f"  replaced {self.replaced} light points")
        lines += [f"  {r}" for r in self.rejected[:20]]
        if len(self.rejected) > 20:
            lines.append(f"  ... and {len(self.rejected) - 20} more (use --rejects FILE)")
        return "\n".join(lines)

    def write_rejects(self, path: Path) -> None:
        """Write every rejection (row, field, reason) to a CSV file."""
        with Path(path).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "field", "reason"])
            for r in self.rejected:
                w.writerow([r.row, r.field, r.reason])


def parse_field_mapping(items: Iterable[str]) -> dict[str, str]:
    """Parse ``OURS=THEIRS`` items from the command line.

    >>> parse_field_mapping(["power_w=PUISSANCE"])
    {'power_w': 'PUISSANCE'}
    """
    out: dict[str, str] = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or not ours or not theirs:
            msg = f"--field: expected OURS=THEIRS, got {item!r}"
            raise InputValidationError(msg)
        if ours not in OUR_FIELDS:
            msg = f"--field: unknown field {ours!r}; ours are {', '.join(OUR_FIELDS)}"
            raise InputValidationError(msg)
        out[ours] = theirs
    return out


def _read_table(path: Path, crs: str | None) -> tuple[pd.DataFrame, np.ndarray, int]:
    """Read the raw rows; returns the frame, row numbers and the number of rows."""
    name = path.name.lower()
    if not path.is_file():
        msg = f"inventory: no such file {path}"
        raise InputValidationError(msg)
    try:
        if name.endswith(".csv"):
            with path.open(encoding="utf-8-sig", errors="strict") as fh:
                sample = fh.read(4096)
            delim = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
            df = pd.read_csv(
                path, sep=delim, dtype=str, keep_default_na=False, encoding="utf-8-sig"
            )
            return df, np.arange(len(df)) + 2, len(df)
        target = f"zip://{path}" if name.endswith(".zip") else str(path)
        gdf = gpd.read_file(target)
    except UnicodeDecodeError as exc:
        msg = f"{path}: not UTF-8 text at byte {exc.start}; re-save it as UTF-8"
        raise CorruptInputError(msg) from exc
    except (pd.errors.ParserError, csv.Error) as exc:
        msg = f"{path}: cannot parse: {exc}"
        raise CorruptInputError(msg) from exc
    except Exception as exc:  # pyogrio raises its own types for broken files
        if isinstance(exc, InputValidationError):
            raise
        msg = f"{path}: cannot read: {exc}"
        raise CorruptInputError(msg) from exc
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
    return gdf, np.arange(len(gdf)) + 1, len(gdf)


def _number(raw: Any) -> float | None:
    if raw is None or (isinstance(raw, float) and np.isnan(raw)):
        return None
    text = str(raw).strip().replace(",", ".")
    if text == "":
        return None
    return float(text)  # raises ValueError for text


def read_inventory(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    crs: str | None = None,
    area: shapely.Geometry | None = None,
) -> tuple[gpd.GeoDataFrame, list[Rejection], int]:
    """Read and validate an inventory.

    Returns the accepted rows (columns ``row, ref, power_w, technology, luminaire, flux_lm``,
    geometry in EPSG:2154), the rejections, and the number of rows read. ``area`` (EPSG:2154)
    rejects points outside it (grown by 2 km).
    """
    path = Path(path)
    df, rownum, n_rows = _read_table(path, crs)
    mapping = dict(fields or {})
    missing = [theirs for theirs in mapping.values() if theirs not in df.columns]
    if missing:
        msg = f"inventory: {path.name} has no column {missing[0]!r} (columns: {list(df.columns)})"
        raise InputValidationError(msg)
    df = df.rename(columns={v: k for k, v in mapping.items()})
    has_geom = isinstance(df, gpd.GeoDataFrame) and df.geometry.notna().any()
    if not has_geom and not ({"lon", "lat"} <= set(df.columns) or {"x", "y"} <= set(df.columns)):
        msg = f"inventory: {path.name} has no geometry and no lon/lat or x/y columns"
        raise InputValidationError(msg)
    if not has_geom and {"x", "y"} <= set(df.columns) and crs is None:
        msg = "inventory: x/y columns need --crs (e.g. EPSG:2154)"
        raise InputValidationError(msg)
    zone = None if area is None else shapely.buffer(area, AREA_MARGIN_M)

    rejected: list[Rejection] = []
    keep: list[dict[str, Any]] = []
    seen: set[str] = set()
    geoms = df.geometry.to_crs(LAMBERT93).values if has_geom and df.crs is not None else None
    for i, (row_no, rec) in enumerate(zip(rownum, df.to_dict("records"), strict=True)):
        row_no = int(row_no)
        try:
            if has_geom:
                if geoms is None:  # the file gives no CRS
                    raise _Bad(field="geometry", reason="the file gives no CRS; pass --crs")
                g = geoms[i]
                if g is None or g.is_empty or g.geom_type != "Point":
                    raise _Bad(field="geometry", reason="empty or not a point")
                pt = g
            else:
                a, b, src = ("lon", "lat", WGS84) if "lon" in df.columns else ("x", "y", crs)
                va, vb = rec.get(a), rec.get(b)
                try:
                    xa, xb = _number(va), _number(vb)
                except ValueError:
                    bad = a if not _is_num(va) else b
                    raise _Bad(field=bad, reason=f"not a number: {rec.get(bad)!r}") from None
                if xa is None or xb is None:
                    raise _Bad(field=a if xa is None else b, reason="empty")
                if src == WGS84 and not (-180 <= xa <= 180 and -90 <= xb <= 90):
                    raise _Bad(field="lon/lat", reason=f"out of range: ({xa}, {xb})")
                pt = gpd.GeoSeries([shapely.Point(xa, xb)], crs=src).to_crs(LAMBERT93).iloc[0]
            if zone is not None and not zone.contains(pt):
                raise _Bad(
                    field="geometry",
                    reason=f"outside the city's area ({pt.x:.0f}, {pt.y:.0f} in EPSG:2154)",
                )
            try:
                power = _number(rec.get("power_w"))
            except ValueError:
                raise _Bad(
                    field="power_w", reason=f"not a number: {rec.get('power_w')!r}"
                ) from None
            if power is not None and not (0 < power <= MAX_POWER_W):
                raise _Bad(
                    field="power_w", reason=f"{power} W is out of range (0, {MAX_POWER_W:.0f}]"
                )
            try:
                flux = _number(rec.get("flux_lm"))
            except ValueError:
                raise _Bad(
                    field="flux_lm", reason=f"not a number: {rec.get('flux_lm')!r}"
                ) from None
            if flux is not None and flux <= 0:
                raise _Bad(field="flux_lm", reason=f"{flux} lm must be > 0")
            tech_raw = str(rec.get("technology") or "").strip().upper()
            tech = TECHNOLOGY_ALIASES.get(tech_raw) if tech_raw else "LED"
            if tech is None:
                raise _Bad(
                    field="technology",
                    reason=(
                        f"unknown technology {tech_raw!r}; "
                        f"known: {sorted(set(TECHNOLOGY_ALIASES.values()))}"
                    ),
                )
            ref = str(rec.get("ref") or "").strip() or f"row{row_no}"
            if ref in seen:
                raise _Bad(field="ref", reason=f"duplicate id {ref!r}")
            seen.add(ref)
        except _Bad as bad:
            rejected.append(Rejection(row_no, bad.field, bad.reason))
            continue
        lum = rec.get("luminaire")
        keep.append(
            {
                "row": row_no,
                "ref": ref,
                "power_w": np.nan if power is None else power,
                "technology": tech,
                "luminaire": None if _blank(lum) else str(lum).strip().lower(),
                "flux_lm": np.nan if flux is None else flux,
                "geometry": pt,
            }
        )
    cols = ["row", "ref", "power_w", "technology", "luminaire", "flux_lm", "geometry"]
    out = gpd.GeoDataFrame(pd.DataFrame(keep, columns=cols), geometry="geometry", crs=LAMBERT93)
    return out, rejected, n_rows


class _Bad(Exception):
    def __init__(self, *, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def _is_num(v: Any) -> bool:
    try:
        _number(v)
    except ValueError:
        return False
    return True


def inventory_path(city: str) -> Path:
    """Where an imported inventory of ``city`` is kept."""
    return _inventory_path(city)


def remove_inventory(city: str) -> bool:
    """Forget an imported inventory; the city goes back to its own light source."""
    p = inventory_path(city)
    existed = p.is_file()
    p.unlink(missing_ok=True)
    return existed


def import_inventory(
    tw: Any,
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    crs: str | None = None,
    save: bool = False,
) -> ImportReport:
    """Replace a twin's light points (and so its cabinets) with a municipal inventory.

    Parameters
    ----------
    tw : Twin
        The twin to update, in place.
    path : str or Path
        CSV, GeoJSON, or shapefile (``.shp`` or zipped).
    fields : mapping, optional
        Our field -> the file's column.
    crs : str, optional
        CRS of the file when it does not declare one (or of CSV x/y columns).
    save : bool
        Keep the accepted rows so later loads of this city use them.
    """
    from .derive.lights import lights_from_inventory

    seg = tw.registry["segment"]
    area = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(seg.geometry.values)))
    accepted, rejected, n_rows = read_inventory(path, fields=fields, crs=crs, area=area)
    report = ImportReport(str(Path(path).name), n_rows, len(accepted), rejected)
    if accepted.empty:
        return report
    replaced = len(tw.registry["light"])
    lights, cabinets = lights_from_inventory(tw, accepted)
    tw.registry.replace("light", lights)
    tw.registry.replace("cabinet", cabinets)
    report.replaced = replaced
    report.power_defaulted = int(lights["power_defaulted"].sum())
    report.unmatched = int(lights["segment"].isna().sum())
    tw.meta["lights_by_source"] = lights["source"].value_counts().to_dict()
    tw.meta["lights_power_defaulted"] = report.power_defaulted
    if save:
        out = inventory_path(tw.city.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        accepted.drop(columns="row").to_file(out, driver="GeoJSON")
    return report
