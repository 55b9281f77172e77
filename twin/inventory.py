"""Import a municipal light inventory (CSV, GeoJSON or shapefile) in place of derived lights.

Every row is accounted for: a row is either accepted or rejected with its row number, the field
at fault, the reason and its original values; the good rows are kept whatever the bad ones hold.
Row numbers are file lines for CSV (the header is line 1) and 1-based feature numbers for
GeoJSON and shapefiles.

Columns we read (map others with ``fields={"power_w": "PUISSANCE"}`` or ``--field``; columns
named like ours, in French or English, with or without accents and case, are found unmapped):

==============  =====================================================================
``ref``         the inventory's own id (optional; must be unique when given)
``lon/lat``     position in EPSG:4326, or ``x/y`` with ``crs`` (CSV); else the file's geometry
``power_w``     system power at full output, W, in (0, 2000]; empty -> road-class default
``technology``  LED, HPS, MH, LPS, FLUO, MERCURY, by code or by name in French or English, with
                or without accents (``SHP``, ``Sodium haute pression``, ``iodures-metalliques``);
                empty -> LED
``luminaire``   luminaire type (free text)
``flux_lm``     luminous flux, lm (optional, > 0)
``maintenance_factor``
                design maintenance factor (CIE 154:2003), in (0, 1] (``0,85`` or ``0.85``);
                empty -> the catalogue default (:data:`twin.assets.maintenance.DEFAULT_MAINTENANCE`)
``install_year``
                year the luminaire was installed: a year (``2019``) or a date (``2019-05-03``,
                ``03/05/2019``), not in the future and not before 1900; empty -> the first year
                of the city's contract
==============  =====================================================================

Text files (CSV, GeoJSON) are read as UTF-8 when they are valid UTF-8 (a byte-order mark is
honoured), else as Windows-1252, the encoding of French spreadsheets saved as CSV, which holds
every printable Latin-1 character; the report names the encoding used, and ``encoding=`` forces
another. Why not a statistical detector: on a cp1252 inventory whose only accents are "é",
charset-normalizer 3.5 answers cp1250 (Czech), which decodes "è", "à" and "ê" as "č", "ŕ" and
"ę"; valid UTF-8 is checked exactly, and cp1252 is what a French municipal file is otherwise.

A position outside the city (or outside the range of longitudes and latitudes) whose two
coordinates, swapped, fall inside it is rejected as "longitude and latitude look swapped".

An imported inventory is kept (see :mod:`twin.inventory_store`) under the checksums of the
input files it was imported against, and used by every later :func:`twin.load` of that same
data until removed with :func:`remove_inventory` or ``twin inventory remove``.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from ._errors import CorruptInputError, InputValidationError
from .crs import LAMBERT93, WGS84
from .inventory_store import (
    StoredInventory,
    find_inventories,
    list_inventories,
    remove_stored,
    source_key,
    store_folder,
    write_record,
)

if TYPE_CHECKING:
    from .cities import City
    from .model import Twin

__all__ = [
    "ImportReport",
    "ParsedInventory",
    "Rejection",
    "StoredInventory",
    "decode_text",
    "find_inventories",
    "import_inventory",
    "inventory_path",
    "list_inventories",
    "normalise_name",
    "parse_field_mapping",
    "parse_inventory",
    "read_inventory",
    "remove_inventory",
    "stored_inventory",
    "technology_code",
]

MAX_POWER_W = 2000.0
AREA_MARGIN_M = 2000.0
#: Technology names and codes (normalised by :func:`normalise_name`) -> our code.
TECHNOLOGY_ALIASES = {
    "LED": "LED", "LEDS": "LED", "DEL": "LED", "DIODE ELECTROLUMINESCENTE": "LED",
    "DIODES ELECTROLUMINESCENTES": "LED", "LIGHT EMITTING DIODE": "LED",
    "HPS": "HPS", "SHP": "HPS", "SON": "HPS", "SODIUM HAUTE PRESSION": "HPS",
    "SODIUM HP": "HPS", "HIGH PRESSURE SODIUM": "HPS",
    "MH": "MH", "IM": "MH", "CMH": "MH", "IODURES METALLIQUES": "MH",
    "IODURE METALLIQUE": "MH", "HALOGENURES METALLIQUES": "MH", "HALOGENURE METALLIQUE": "MH",
    "METAL HALIDE": "MH", "CERAMIQUE": "MH", "BRULEUR CERAMIQUE": "MH",
    "LPS": "LPS", "SBP": "LPS", "SOX": "LPS", "SODIUM BASSE PRESSION": "LPS",
    "LOW PRESSURE SODIUM": "LPS",
    "FLUO": "FLUO", "FL": "FLUO", "FLUOCOMPACTE": "FLUO", "FLUO COMPACTE": "FLUO",
    "FLUORESCENTE": "FLUO", "FLUORESCENT": "FLUO", "TUBE FLUORESCENT": "FLUO",
    "COMPACT FLUORESCENT": "FLUO",
    "MERCURY": "MERCURY", "BF": "MERCURY", "HG": "MERCURY", "BALLON FLUO": "MERCURY",
    "BALLON FLUORESCENT": "MERCURY", "VAPEUR DE MERCURE": "MERCURY", "MERCURE": "MERCURY",
    "MERCURY VAPOUR": "MERCURY", "MERCURY VAPOR": "MERCURY",
}  # fmt: skip
OUR_FIELDS = (
    "ref",
    "lon",
    "lat",
    "x",
    "y",
    "power_w",
    "technology",
    "luminaire",
    "flux_lm",
    "maintenance_factor",
    "install_year",
)
#: Fields an inventory may give per light (NaN where it does not).
OPTIONAL_FIELDS = ("maintenance_factor", "install_year")
#: Column names found without a mapping (normalised: lower case, no accents, ``_`` between words).
COLUMN_ALIASES = {
    "ref": ("ref", "id", "identifiant", "numero", "num", "no", "n"),
    "lon": ("lon", "lng", "long", "longitude"),
    "lat": ("lat", "latitude"),
    "x": ("x",),
    "y": ("y",),
    "power_w": ("power_w", "power", "puissance", "puissance_w", "wattage", "watts"),
    "technology": ("technology", "technologie", "techno", "type_de_lampe", "type_lampe"),
    "luminaire": (
        "luminaire",
        "type_de_luminaire",
        "type_luminaire",
        "lanterne",
        "type_de_lanterne",
        "type_lanterne",
    ),
    "flux_lm": ("flux_lm", "flux", "flux_lumineux", "flux_lumineux_lm"),
    "maintenance_factor": (
        "maintenance_factor",
        "mf",
        "fm",
        "facteur_maintenance",
        "facteur_de_maintenance",
        "coefficient_de_maintenance",
        "coef_maintenance",
    ),
    "install_year": (
        "install_year",
        "installation_year",
        "year_installed",
        "annee_pose",
        "annee_de_pose",
        "annee_installation",
        "annee_d_installation",
        "date_pose",
        "date_de_pose",
        "date_installation",
        "date_d_installation",
        "mise_en_service",
        "date_mise_en_service",
        "date_de_mise_en_service",
        "annee_mise_en_service",
    ),
}
#: Suffixes read as tables of text, and as geodata.
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
GEO_SUFFIXES = (".geojson", ".json", ".shp", ".zip", ".gpkg")


@dataclasses.dataclass(frozen=True)
class Rejection:
    """One rejected inventory row: where, which field, why, and the row as the file gave it."""

    row: int
    field: str
    reason: str
    values: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


@dataclasses.dataclass
class ParsedInventory:
    """An inventory read and checked, before it meets a twin.

    Attributes
    ----------
    lights : geopandas.GeoDataFrame
        The accepted rows: ``row, ref, power_w, technology, luminaire, flux_lm``, geometry in
        the CRS asked for.
    rejected : list of Rejection
        One per rejected row, with its original values.
    rows : int
        Rows read (blank CSV lines are not rows).
    encoding : str
        The text encoding used (or the one a shapefile declares).
    columns : dict
        Our field -> the file's column, mapped or found.
    notes : list of str
        Remarks on the whole file (e.g. columns that look swapped).
    source_columns : list of str
        The file's columns, in order (the rejects file repeats them).
    """

    lights: gpd.GeoDataFrame
    rejected: list[Rejection]
    rows: int
    encoding: str
    columns: dict[str, str]
    notes: list[str]
    source_columns: list[str]


@dataclasses.dataclass
class ImportReport:
    """What an import accepted and rejected, row by row."""

    file: str
    rows: int
    accepted: int
    rejected: list[Rejection]
    power_defaulted: int = 0
    maintenance_given: int = 0
    install_year_given: int = 0
    unmatched: int = 0
    replaced: int = 0
    encoding: str = ""
    columns: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    source_columns: list[str] = dataclasses.field(default_factory=list)
    stored: str | None = None

    def summary(self) -> str:
        """A readable summary, with up to 20 rejections listed."""
        cols = ", ".join(f"{ours} <- {theirs!r}" for ours, theirs in self.columns.items())
        lines = [
            f"{self.file}: {self.rows} rows, {self.accepted} accepted, "
            f"{len(self.rejected)} rejected",
            f"  encoding {self.encoding}; columns: {cols or 'none of ours'}",
            f"  {self.power_defaulted} without wattage (road-class default used), "
            f"{self.unmatched} further than 60 m from any road segment",
            f"  maintenance factor given for {self.maintenance_given} "
            f"(others: the catalogue default), install year for {self.install_year_given} "
            "(others: the contract's first year)",
        ]
        if self.replaced:
            lines.append(f"  replaced {self.replaced} light points")
        if self.stored:
            lines.append(f"  stored as inventory {self.stored} (`twin inventory list`)")
        lines += [f"  note: {n}" for n in self.notes]
        lines += [f"  {r}" for r in self.rejected[:20]]
        if len(self.rejected) > 20:
            lines.append(f"  ... and {len(self.rejected) - 20} more (use --rejects FILE)")
        return "\n".join(lines)

    def write_rejects(self, path: str | Path) -> None:
        """Write every rejection to a UTF-8 CSV: row, field, reason, then the row as given."""
        columns = list(self.source_columns)
        for r in self.rejected:
            columns += [c for c in r.values if c not in columns]
        with Path(path).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "field", "reason", *columns])
            for r in self.rejected:
                w.writerow([r.row, r.field, r.reason, *(r.values.get(c, "") for c in columns)])


def normalise_name(text: str) -> str:
    """Upper case, accents dropped, any run of other characters made one space.

    >>> normalise_name("Iodures métalliques"), normalise_name("sodium-haute-pression")
    ('IODURES METALLIQUES', 'SODIUM HAUTE PRESSION')
    """
    bare = unicodedata.normalize("NFKD", str(text))
    bare = "".join(c for c in bare if not unicodedata.combining(c))
    return re.sub(r"[^0-9A-Z]+", " ", bare.upper()).strip()


def technology_code(raw: str) -> str | None:
    """Our technology code for a code or name from an inventory, or None when unknown.

    >>> [technology_code(t) for t in ("Sodium haute pression", "SHP", "Iodures métalliques")]
    ['HPS', 'HPS', 'MH']
    >>> technology_code("plasma") is None
    True
    """
    return TECHNOLOGY_ALIASES.get(normalise_name(raw))


def _column_key(name: str) -> str:
    return normalise_name(name).lower().replace(" ", "_")


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
        if ours in out:
            msg = f"--field: {ours!r} is mapped twice ({out[ours]!r} and {theirs!r})"
            raise InputValidationError(msg)
        out[ours] = theirs
    return out


def _encoding(name: str) -> str:
    """Python's name for an encoding, or a clear error."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        msg = f"encoding: {name!r} is not an encoding Python knows (e.g. utf-8, cp1252)"
        raise InputValidationError(msg) from None


def decode_text(data: bytes, *, encoding: str | None = None, name: str = "file") -> tuple[str, str]:
    """Decode a text file: the encoding given, else UTF-8 when valid, else Windows-1252.

    Returns the text and the encoding used.

    >>> decode_text("Iodures métalliques".encode("cp1252"))
    ('Iodures métalliques', 'cp1252')
    >>> decode_text("Iodures métalliques".encode("utf-8"))
    ('Iodures métalliques', 'utf-8')
    """
    if encoding is not None:
        label = _encoding(encoding)
        try:
            return data.decode(label), label
        except UnicodeDecodeError as exc:
            msg = f"{name}: not {label} text at byte {exc.start} ({data[exc.start]:#04x})"
            raise CorruptInputError(msg) from None
    for bom, label in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            try:
                return data.decode(label), label
            except UnicodeDecodeError as exc:
                msg = f"{name}: starts as {label} but byte {exc.start} is not; pass --encoding"
                raise CorruptInputError(msg) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        msg = (
            f"{name}: neither UTF-8 nor Windows-1252/Latin-1 text (byte {data[exc.start]:#04x} "
            f"at {exc.start}); pass its encoding with --encoding"
        )
        raise CorruptInputError(msg) from None


def _delimiter(text: str, name: str) -> str:
    """The delimiter that splits the header and the first lines into the most, equal fields."""
    sample = [ln for ln in text.splitlines()[:50] if ln.strip()]
    best: tuple[int, str] | None = None
    for delim in (";", ",", "\t", "|"):
        rows = list(csv.reader(sample, delimiter=delim))
        if not rows or len(rows[0]) < 2:
            continue
        same = sum(len(r) == len(rows[0]) for r in rows) / len(rows)
        if same >= 0.8 and (best is None or len(rows[0]) > best[0]):
            best = (len(rows[0]), delim)
    if best is None:
        msg = f"{name}: cannot tell the delimiter (tried ; , tab |): is it a CSV table?"
        raise CorruptInputError(msg)
    return best[1]


@dataclasses.dataclass
class _Raw:
    """The rows as the file gives them."""

    records: list[dict[str, Any]]
    rownum: list[int]
    columns: list[str]
    encoding: str
    rejected: list[Rejection]
    geometry: gpd.GeoSeries | None = None


def _read_csv(path: Path, encoding: str | None) -> _Raw:
    text, used = decode_text(path.read_bytes(), encoding=encoding, name=path.name)
    delim = _delimiter(text, path.name)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    header: list[str] | None = None
    records: list[dict[str, Any]] = []
    rownum: list[int] = []
    rejected: list[Rejection] = []
    last = 0
    try:
        for fields in reader:
            start, last = last + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue  # a blank line holds no light
            if header is None:
                header = [f.strip() for f in fields]
                dup = sorted({c for c in header if header.count(c) > 1})
                if dup:
                    msg = f"{path.name}: column {dup[0]!r} appears twice in the header"
                    raise CorruptInputError(msg)
                continue
            if len(fields) != len(header):
                values = dict(zip(header, fields, strict=False))
                if len(fields) > len(header):
                    values["(extra fields)"] = delim.join(fields[len(header) :])
                rejected.append(
                    Rejection(
                        start,
                        "row",
                        f"has {len(fields)} fields, the header has {len(header)}",
                        values,
                    )
                )
                continue
            records.append(dict(zip(header, fields, strict=True)))
            rownum.append(start)
    except csv.Error as exc:
        msg = f"{path.name}: cannot parse line {reader.line_num}: {exc}"
        raise CorruptInputError(msg) from None
    if header is None:
        msg = f"{path.name}: no header and no rows"
        raise CorruptInputError(msg)
    return _Raw(records, rownum, header, used, rejected)


def _read_geo(path: Path, crs: str | None, encoding: str | None) -> _Raw:
    name = path.name.lower()
    try:
        if name.endswith((".geojson", ".json")):
            text, used = decode_text(path.read_bytes(), encoding=encoding, name=path.name)
            gdf = gpd.read_file(io.BytesIO(text.encode("utf-8")))
        else:
            import pyogrio

            target = f"zip://{path}" if name.endswith(".zip") else str(path)
            kw = {"encoding": encoding} if encoding else {}
            used = encoding or str(pyogrio.read_info(target, **kw).get("encoding") or "unknown")
            gdf = gpd.read_file(target, **kw)
    except (InputValidationError, CorruptInputError):
        raise
    except Exception as exc:  # pyogrio raises its own types for broken files
        msg = f"{path.name}: cannot read: {exc}".splitlines()[0]
        raise CorruptInputError(msg) from exc
    if crs is not None:
        gdf = gdf.set_crs(crs, allow_override=True)
    elif gdf.crs is None and len(gdf):
        msg = f"inventory: {path.name} gives no CRS; pass it with --crs (e.g. EPSG:2154)"
        raise InputValidationError(msg)
    gdf.columns = [c if c == gdf.geometry.name else str(c) for c in gdf.columns]
    columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    records: list[dict[str, Any]] = pd.DataFrame(gdf[columns]).to_dict("records")  # type: ignore[assignment]
    return _Raw(records, list(range(1, len(gdf) + 1)), columns, used, [], gdf.geometry)


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def _number(raw: Any) -> float | None:
    text = _text(raw).strip().replace(",", ".")
    if text == "":
        return None
    value = float(text)  # raises ValueError for text
    if not np.isfinite(value):
        raise ValueError(text)
    return value


def _columns(raw: _Raw, fields: Mapping[str, str], name: str) -> dict[str, str]:
    """Our field -> the file's column: the mapping given, then columns named like ours."""
    for ours, theirs in fields.items():
        if ours not in OUR_FIELDS:
            msg = f"--field: unknown field {ours!r}; ours are {', '.join(OUR_FIELDS)}"
            raise InputValidationError(msg)
        if theirs not in raw.columns:
            msg = f"inventory: {name} has no column {theirs!r} (columns: {raw.columns})"
            raise InputValidationError(msg)
    out = dict(fields)
    taken = set(out.values())
    keys = {c: _column_key(c) for c in raw.columns}
    for ours, names in COLUMN_ALIASES.items():
        if ours in out:
            continue
        found = [c for c in raw.columns if keys[c] in names and c not in taken]
        if len(found) == 1:
            out[ours] = found[0]
            taken.add(found[0])
    return {k: out[k] for k in OUR_FIELDS if k in out}


class _Bad(Exception):
    def __init__(self, *, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _crs(value: str, what: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except CRSError:
        msg = f"{what}: {value!r} is not a CRS (e.g. EPSG:2154)"
        raise InputValidationError(msg) from None


def parse_inventory(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    crs: str | None = None,
    area: shapely.Geometry | None = None,
    encoding: str | None = None,
    to_crs: str = LAMBERT93,
) -> ParsedInventory:
    """Read and check an inventory, row by row.

    Parameters
    ----------
    path : str or Path
        CSV (any of ``; , tab |``), GeoJSON, or shapefile (``.shp`` or zipped).
    fields : mapping, optional
        Our field -> the file's column (columns named like ours are found without it).
    crs : str, optional
        CRS of the file when it does not declare one, and of CSV ``x/y`` columns.
    area : shapely geometry, optional
        The city, in ``to_crs``: points further than 2 km from it are rejected.
    encoding : str, optional
        Text encoding of a CSV or GeoJSON (default: UTF-8 when valid, else Windows-1252).
    to_crs : str
        CRS of the accepted points (the twin's working CRS).

    Returns
    -------
    ParsedInventory
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        msg = f"inventory: no such file {path}"
        raise InputValidationError(msg)
    if crs is not None:
        _crs(crs, "--crs")
    if encoding is not None:
        encoding = _encoding(encoding)
    if name.endswith(CSV_SUFFIXES):
        raw = _read_csv(path, encoding)
    elif name.endswith(GEO_SUFFIXES):
        raw = _read_geo(path, crs, encoding)
    else:
        msg = f"inventory: {path.name}: expected one of {', '.join(CSV_SUFFIXES + GEO_SUFFIXES)}"
        raise InputValidationError(msg)
    columns = _columns(raw, dict(fields or {}), path.name)

    # where each row is, in the file's CRS: (a, b) = (lon, lat) or (x, y)
    n = len(raw.records)
    a = np.full(n, np.nan)
    b = np.full(n, np.nan)
    early: dict[int, _Bad] = {}
    if raw.geometry is not None:
        src = raw.geometry.crs if raw.geometry.crs is not None else WGS84
        where = "geometry"
        geoms = np.asarray(raw.geometry.values)
        is_point = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
        if is_point.any():
            xy = shapely.get_coordinates(geoms[is_point])
            a[is_point], b[is_point] = xy[:, 0], xy[:, 1]
        for j in np.flatnonzero(~is_point):
            early[int(j)] = _Bad(field="geometry", reason="empty or not a point")
    else:
        if {"lon", "lat"} <= set(columns):
            ca, cb, src, where = columns["lon"], columns["lat"], WGS84, "lon/lat"
        elif {"x", "y"} <= set(columns):
            if crs is None:
                msg = "inventory: x/y columns need --crs (e.g. EPSG:2154)"
                raise InputValidationError(msg)
            ca, cb, src, where = columns["x"], columns["y"], crs, "x/y"
        else:
            msg = (
                f"inventory: {path.name} has no lon/lat or x/y columns (columns: {raw.columns}); "
                "map them with --field lon=COLUMN --field lat=COLUMN"
            )
            raise InputValidationError(msg)
        names = where.split("/")
        for i, rec in enumerate(raw.records):
            try:
                va = _number(rec[ca])
            except ValueError:
                early[i] = _Bad(field=names[0], reason=f"not a number: {rec[ca]!r}")
                continue
            try:
                vb = _number(rec[cb])
            except ValueError:
                early[i] = _Bad(field=names[1], reason=f"not a number: {rec[cb]!r}")
                continue
            if va is None or vb is None:
                early[i] = _Bad(field=names[0] if va is None else names[1], reason="empty")
                continue
            a[i], b[i] = va, vb

    src_crs = _crs(str(src) if not isinstance(src, str) else src, "crs")
    geographic = src_crs.is_geographic
    pair = "longitude and latitude" if geographic else "x and y"

    def in_range(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        if not geographic:
            return np.asarray(np.isfinite(u) & np.isfinite(v), dtype=bool)
        return np.asarray((np.abs(u) <= 180) & (np.abs(v) <= 90), dtype=bool)

    to = Transformer.from_crs(src_crs, _crs(to_crs, "to_crs"), always_xy=True)

    def project(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = in_range(u, v)
        x = np.full(len(u), np.nan)
        y = np.full(len(u), np.nan)
        if ok.any():
            px, py = to.transform(u[ok], v[ok], errcheck=False)
            x[ok], y[ok] = px, py
        return x, y

    x, y = project(a, b)
    sx, sy = project(b, a)
    placed = np.isfinite(x) & np.isfinite(y)
    placed_swapped = np.isfinite(sx) & np.isfinite(sy)
    if area is not None:
        zone = shapely.buffer(area, AREA_MARGIN_M)
        inside = placed & shapely.contains_xy(zone, np.nan_to_num(x), np.nan_to_num(y))
        inside_swapped = placed_swapped & shapely.contains_xy(
            zone, np.nan_to_num(sx), np.nan_to_num(sy)
        )
    else:
        inside, inside_swapped = placed, placed_swapped & ~in_range(a, b)

    rejected: list[Rejection] = list(raw.rejected)
    this_year = dt.datetime.now(dt.UTC).year
    keep: list[dict[str, Any]] = []
    seen: set[str] = set()
    swapped = 0
    get = {ours: theirs for ours, theirs in columns.items()}
    for i, (row_no, rec) in enumerate(zip(raw.rownum, raw.records, strict=True)):
        try:
            if i in early:
                raise early[i]
            if not inside[i]:
                if inside_swapped[i]:
                    swapped += 1
                    raise _Bad(
                        field=where,
                        reason=(
                            f"{pair} look swapped: ({a[i]:g}, {b[i]:g}) is "
                            + ("outside the city" if area is not None else "out of range")
                            + f", ({b[i]:g}, {a[i]:g}) is "
                            + ("inside" if area is not None else "not")
                        ),
                    )
                if not placed[i]:
                    reason = f"out of range: ({a[i]:g}, {b[i]:g})"
                    raise _Bad(field=where, reason=reason)
                raise _Bad(
                    field=where,
                    reason=f"outside the city's area ({x[i]:.0f}, {y[i]:.0f} in {to_crs})",
                )
            power = _checked_number(rec, get, "power_w", "W")
            if power is not None and not (0 < power <= MAX_POWER_W):
                raise _Bad(
                    field="power_w", reason=f"{power:g} W is out of range (0, {MAX_POWER_W:.0f}]"
                )
            flux = _checked_number(rec, get, "flux_lm", "lm")
            if flux is not None and flux <= 0:
                raise _Bad(field="flux_lm", reason=f"{flux:g} lm must be > 0")
            mf = _checked_number(rec, get, "maintenance_factor", "1")
            if mf is not None and not (0 < mf <= 1):
                raise _Bad(field="maintenance_factor", reason=f"{mf:g} is not in (0, 1]")
            year = _install_year(rec, get, this_year)
            tech_raw = _text(rec.get(get.get("technology", ""), "")).strip()
            tech = technology_code(tech_raw) if tech_raw else "LED"
            if tech is None:
                known = sorted(set(TECHNOLOGY_ALIASES.values()))
                raise _Bad(
                    field="technology", reason=f"unknown technology {tech_raw!r}; known: {known}"
                )
            ref = _text(rec.get(get.get("ref", ""), "")).strip() or f"row{row_no}"
            if ref in seen:
                raise _Bad(field="ref", reason=f"duplicate id {ref!r}")
            seen.add(ref)
        except _Bad as bad:
            rejected.append(Rejection(int(row_no), bad.field, bad.reason, _values(raw, i)))
            continue
        lum = _text(rec.get(get.get("luminaire", ""), "")).strip()
        keep.append(
            {
                "row": int(row_no),
                "ref": ref,
                "power_w": np.nan if power is None else power,
                "technology": tech,
                "luminaire": lum.lower() or None,
                "flux_lm": np.nan if flux is None else flux,
                "maintenance_factor": np.nan if mf is None else mf,
                "install_year": np.nan if year is None else float(year),
                "x": x[i],
                "y": y[i],
            }
        )
    rejected.sort(key=lambda r: r.row)
    notes = []
    if swapped and swapped >= 0.5 * max(1, n):
        notes.append(
            f"{swapped} of {n} rows look swapped: are the {pair} columns the other way round? "
            + (
                f"(map them with --field lon={columns.get('lat')} --field lat={columns.get('lon')})"
                if raw.geometry is None and geographic
                else "(check the file's coordinate order)"
            )
        )
    cols = ["row", "ref", "power_w", "technology", "luminaire", "flux_lm", *OPTIONAL_FIELDS]
    table = pd.DataFrame(keep, columns=[*cols, "x", "y"])
    points = shapely.points(table["x"].to_numpy(float), table["y"].to_numpy(float))
    out = gpd.GeoDataFrame(table[cols], geometry=points, crs=to_crs)
    return ParsedInventory(
        lights=out,
        rejected=rejected,
        rows=n + len(raw.rejected),
        encoding=raw.encoding,
        columns=columns,
        notes=notes,
        source_columns=list(raw.columns) + (["geometry"] if raw.geometry is not None else []),
    )


def _checked_number(
    rec: Mapping[str, Any], columns: Mapping[str, str], field: str, unit: str
) -> float | None:
    if field not in columns:
        return None
    value = rec.get(columns[field])
    try:
        return _number(value)
    except ValueError:
        raise _Bad(field=field, reason=f"not a number of {unit}: {value!r}") from None


_DATE = re.compile(r"^(\d{4})-\d{1,2}(-\d{1,2})?([ T].*)?$|^\d{1,2}[/.-]\d{1,2}[/.-](\d{4})$")


def _install_year(rec: Mapping[str, Any], columns: Mapping[str, str], this_year: int) -> int | None:
    """The install year of a row: a year, or the year of an ISO or French (d/m/Y) date."""
    if "install_year" not in columns:
        return None
    raw = rec.get(columns["install_year"])
    text = _text(raw).strip()
    if text == "":
        return None
    found = _DATE.match(text)
    try:
        year = int(found.group(1) or found.group(4)) if found else int(float(text))
    except ValueError:
        raise _Bad(field="install_year", reason=f"not a year or a date: {raw!r}") from None
    if found is None and float(text) != int(float(text)):
        raise _Bad(field="install_year", reason=f"not a year or a date: {raw!r}")
    if year > this_year:
        raise _Bad(field="install_year", reason=f"{year} is in the future")
    if year < 1900:
        raise _Bad(field="install_year", reason=f"{year} is before 1900")
    return year


def _values(raw: _Raw, i: int) -> dict[str, str]:
    """The row as the file gave it (geometry as WKT in the file's CRS)."""
    out = {c: _text(raw.records[i].get(c)) for c in raw.columns}
    if raw.geometry is not None:
        g = raw.geometry.iloc[i]
        out["geometry"] = "" if g is None else shapely.to_wkt(g, rounding_precision=-1)
    return out


def read_inventory(
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    crs: str | None = None,
    area: shapely.Geometry | None = None,
    encoding: str | None = None,
    to_crs: str = LAMBERT93,
) -> tuple[gpd.GeoDataFrame, list[Rejection], int]:
    """Read and validate an inventory: :func:`parse_inventory`, as a tuple.

    Returns the accepted rows (columns ``row, ref, power_w, technology, luminaire, flux_lm``,
    geometry in ``to_crs``), the rejections, and the number of rows read. ``area`` (in
    ``to_crs``) rejects points outside it (grown by 2 km).
    """
    p = parse_inventory(path, fields=fields, crs=crs, area=area, encoding=encoding, to_crs=to_crs)
    return p.lights, p.rejected, p.rows


def _source_files(source: str | Path | City | Twin) -> tuple[str, dict[str, Path]]:
    """A city's name and its input files (without any imported inventory)."""
    from .cache import input_files
    from .cities import City, from_file, get_city

    twin_city = getattr(source, "city", None)  # a Twin (not imported: the build imports us)
    if isinstance(twin_city, City):
        city = twin_city
    elif isinstance(source, City):
        city = source
    elif isinstance(source, Path) or str(source).endswith((".osm", ".pbf", ".graphml", ".xml")):
        city = from_file(source if isinstance(source, Path) else str(source))
    else:
        city = get_city(str(source))
    files = {r: p for r, p in input_files(city).items() if r != "inventory"}
    return city.name, files


def inventory_path(source: str | Path | City | Twin) -> Path:
    """Where the inventory imported for a city's data is (or would be) kept.

    ``source`` is a shipped city's name, an extract's path, a city definition or a twin; the
    file is keyed by the checksums of the source's input files.
    """
    _, files = _source_files(source)
    return store_folder() / f"{source_key(files)}.geojson"


def stored_inventory(source: str | Path | City | Twin) -> StoredInventory | None:
    """The stored inventory of a city's data, if one was imported."""
    path = inventory_path(source)
    return next((s for s in list_inventories() if s.path == path), None)


def remove_inventory(source: str | Path | City | Twin) -> bool:
    """Forget the inventory imported for a city's data; it goes back to its own light source.

    Returns whether there was one.
    """
    found = stored_inventory(source)
    if found is not None:
        remove_stored(found)
    return found is not None


def import_inventory(
    tw: Twin,
    path: str | Path,
    *,
    fields: Mapping[str, str] | None = None,
    crs: str | None = None,
    encoding: str | None = None,
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
    encoding : str, optional
        Text encoding of a CSV or GeoJSON (default: UTF-8 when valid, else Windows-1252).
    save : bool
        Keep the accepted rows, keyed by the twin's input files, so that later loads of the
        same data use them (replacing any inventory imported for it before).
    """
    from .derive.lights import lights_from_inventory

    seg = tw.registry["segment"]
    area = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(seg.geometry.values)))
    parsed = parse_inventory(
        path, fields=fields, crs=crs, area=area, encoding=encoding, to_crs=tw.crs
    )
    accepted = parsed.lights
    report = ImportReport(
        str(Path(path).name),
        parsed.rows,
        len(accepted),
        parsed.rejected,
        encoding=parsed.encoding,
        columns=parsed.columns,
        notes=parsed.notes,
        source_columns=parsed.source_columns,
    )
    if accepted.empty:
        return report
    replaced = len(tw.registry["light"])
    lights, cabinets = lights_from_inventory(tw, accepted)
    tw.registry.replace("light", lights)
    tw.registry.replace("cabinet", cabinets)
    report.replaced = replaced
    report.power_defaulted = int(lights["power_defaulted"].sum())
    report.unmatched = int(lights["segment"].isna().sum())
    report.maintenance_given = int(lights["maintenance_factor"].notna().sum())
    report.install_year_given = int(lights["install_year"].notna().sum())
    tw.meta["lights_by_source"] = lights["source"].value_counts().to_dict()
    tw.meta["lights_power_defaulted"] = report.power_defaulted
    if save:
        city, files = _source_files(tw)
        out = store_folder() / f"{source_key(files)}.geojson"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp.geojson")
        try:
            accepted.drop(columns="row").to_crs(WGS84).to_file(tmp, driver="GeoJSON")
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        write_record(
            out,
            city=city,
            files=files,
            file=report.file,
            encoding=report.encoding,
            rows=report.rows,
            accepted=report.accepted,
            rejected=len(report.rejected),
        )
        report.stored = out.stem
    return report
