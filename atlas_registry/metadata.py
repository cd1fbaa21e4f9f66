"""The metadata tables of a native ATLAS root: scans, lesions and scanners.

* ``scans``: one row per scan (the R1.1 neuroradiology sheet: lesion counts per hemisphere and
  location, stroke type, primary stroke location, its hemisphere and vascular territory, Fazekas
  PVH/DWMH grades, notes) plus whether the neuroradiologist chose a primary lesion that is not the
  largest;
* ``lesions``: one row per lesion mask (scan, lesion number with 0 = primary, hemisphere,
  location, tracer, reviewer);
* ``scanners``: one row per cohort (field strength, manufacturer, model, voxel size).

They are written as one workbook (:data:`naming.METADATA_WORKBOOK`, one sheet per table) and as CSVs
(:data:`naming.METADATA_CSV`), and described by the JSON Schemas ``schemas/metadata-<table>.schema.json``
(one object per row).  :func:`read_metadata` reads either form as strings, exactly as stored;
:func:`typed_records` converts a table's cells to the schema's types for validation.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import zipfile
from functools import cache
from pathlib import Path

import pandas as pd

from . import naming, niio
from .errors import AtlasError

TABLES = ("scans", "lesions", "scanners")

SCAN_ID = "Scan ID"
COHORT = "Cohort"
PRIMARY_NOT_LARGEST = "Primary Not Largest"
COUNT_COLUMNS = (
    "# Strokes LH Cortical",
    "# Strokes LH subcortical",
    "# Strokes RH Cortical",
    "# Strokes RH subcortical",
    "Other Location",
)
SCANS_COLUMNS = (
    SCAN_ID,
    COHORT,
    *COUNT_COLUMNS,
    "Stroke type",
    "Primary Stroke Location",
    "Primary Stroke Location Hemisphere",
    "Vascular territory",
    "PVH",
    "DWMH",
    "Notes",
    PRIMARY_NOT_LARGEST,
)
LESIONS_COLUMNS = (SCAN_ID, "Lesion", "Hemisphere", "Location", "Tracer", "Reviewer")
SCANNERS_COLUMNS = (
    COHORT,
    "Field Strength (T)",
    "Manufacturer",
    "Model",
    "Voxel Size X (mm)",
    "Voxel Size Y (mm)",
    "Voxel Size Z (mm)",
)
COLUMNS = {"scans": SCANS_COLUMNS, "lesions": LESIONS_COLUMNS, "scanners": SCANNERS_COLUMNS}
KEYS = {"scans": (SCAN_ID,), "lesions": (SCAN_ID, "Lesion"), "scanners": (COHORT,)}

PRIMARY_HEMISPHERES = ("Left", "Right", "Brainstem", "Bilateral")
YES_NO = ("Yes", "No")

# The standard root's list of scans left out of the standardized subset (naming.REGISTRATION_FAILURES).
REGISTRATION_FAILURES_COLUMNS = (SCAN_ID, "Exclusion", "Reason")
EXCLUSIONS = ("registration failure", "low resolution")

# Limits of a metadata file (META016), checked before or while reading, never after: ATLAS R1.1 has
# 304 scans and 521 lesions in a 60 kB workbook, ATLAS 2.0 1,271 scans.
MAX_FILE_BYTES = 64 * 1024 * 1024  # a workbook or CSV on disk
MAX_WORKBOOK_BYTES = 256 * 1024 * 1024  # the parts of a workbook, uncompressed (as its zip directory declares)
MAX_WORKBOOK_PARTS = 1000
MAX_ROWS = 100_000  # rows of one table (sheet or CSV), the column names and empty rows included
MAX_COLUMNS = 256
MAX_CELL_CHARS = 32_767  # the most a spreadsheet cell holds (Excel)

# Workbook files carry no time of writing: the same tables give the same bytes.
WORKBOOK_TIMESTAMP = "2018-02-20T00:00:00Z"
_ZIP_DATE = (2018, 2, 20, 0, 0, 0)


def count_column(hemisphere: str | None, location: str | None) -> str:
    """The scans-table count column of a lesion classified (hemisphere, location)."""
    if location == "other" or hemisphere == "other":
        return "Other Location"
    side = {"left": "LH", "right": "RH"}[hemisphere or ""]  # unclassified: KeyError
    return f"# Strokes {side} {'Cortical' if location == 'cortical' else 'subcortical'}"


# -- schemas ------------------------------------------------------------------------------------


def schema_dir() -> Path:
    """The repository's ``schemas/`` folder, or the copy packaged as ``atlas_registry/_schemas``."""
    here = Path(__file__).resolve().parent
    for d in (here.parent / "schemas", here / "_schemas"):
        if d.is_dir():
            return d
    raise AtlasError("SCHEMA001", "the JSON Schema folder was not found (schemas/ or atlas_registry/_schemas/)")


@cache
def load_schema(name: str) -> dict:
    """A JSON Schema by name: ``"scans"`` → ``metadata-scans.schema.json``; a full file name works too."""
    fname = name if name.endswith(".json") else f"metadata-{name}.schema.json"
    path = schema_dir() / fname
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AtlasError("SCHEMA001", f"no JSON Schema {fname}", path=str(path)) from None


def schema_problem(doc, name: str, sep: str = "/") -> tuple[str, str] | None:
    """The first place (in document order) where ``doc`` breaks the JSON Schema ``name``, as
    (location joined by ``sep``, or ``""`` at the top; message), or None when it is valid."""
    import jsonschema

    errors = jsonschema.Draft202012Validator(load_schema(name)).iter_errors(doc)
    first = min(errors, key=lambda e: [str(p) for p in e.absolute_path], default=None)
    return None if first is None else (sep.join(str(p) for p in first.absolute_path), first.message)


_INT_RE = re.compile(r"^[+-]?\d+$")


def _convert(text: str, kind):
    kinds = kind if isinstance(kind, list) else [kind]
    if "integer" in kinds and _INT_RE.match(text):
        return int(text)
    if "number" in kinds:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def typed_records(table: str, df: pd.DataFrame) -> list[dict]:
    """Rows of a table read as strings, with cells of integer/number columns converted to numbers
    when they are written as such; empty cells of non-string columns are left out (so the schema
    reports them as missing) and anything unparsable stays a string (the schema reports its type)."""
    props = load_schema(table)["properties"]
    out = []
    for rec in df.to_dict(orient="records"):
        row = {}
        for col, val in rec.items():
            text = "" if val is None else str(val)
            kind = props.get(col, {}).get("type", "string")
            if kind == "string" or (isinstance(kind, list) and "string" in kind):
                row[col] = text
            elif text.strip() != "":
                row[col] = _convert(text, kind)
        out.append(row)
    return out


# -- writing -----------------------------------------------------------------------------------


def _frame(table: str, rows) -> pd.DataFrame:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(COLUMNS[table]))
    missing = [c for c in COLUMNS[table] if c not in df.columns]
    if missing:
        raise AtlasError("META003", f"table {table} lacks columns {missing}")
    return df.loc[:, list(COLUMNS[table])]


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV with ``\\n`` line ends (no index)."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def _cell(v):
    if v is None or (isinstance(v, float) and v != v):
        return None
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v


def _text_cells(ws, values: list, rownum: int, columns: list) -> list:
    """Cells of one row: every string an inline string (``t="inlineStr"``), never a formula or an
    error value: openpyxl would otherwise make ``=…`` a live formula (``<f>``) and ``#N/A`` an error.
    A control character no workbook can hold is refused (META018) rather than crashing openpyxl."""
    from openpyxl.cell.cell import Cell

    from .validate.formulas import control

    out = []
    for col, v in zip(columns, values, strict=False):
        if isinstance(v, str) and (ch := control(v)):
            raise AtlasError(
                "META018",
                f"sheet {ws.title!r} row {rownum} column {col!r}: the cell holds the control "
                f"character {ch}, which a workbook cannot hold",
            )
        c = Cell(ws, value=v)
        if isinstance(v, str):
            c.data_type = "s"
        out.append(c)
    return out


def workbook_bytes(frames: dict[str, pd.DataFrame]) -> bytes:
    """One sheet per table, text as text (never a formula) and numbers as numbers; deterministic bytes."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for name, df in frames.items():
        ws = wb.create_sheet(name)
        names = [str(c) for c in df.columns]
        ws.append(_text_cells(ws, names, 1, list(range(1, len(names) + 1))))
        for i, row in enumerate(df.itertuples(index=False), start=2):
            ws.append(_text_cells(ws, [_cell(v) for v in row], i, names))
    buf = io.BytesIO()
    wb.save(buf)
    return _deterministic_zip(buf.getvalue())


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite an xlsx with fixed entry dates and fixed document timestamps."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = body.decode("utf-8")
                for tag in ("created", "modified"):
                    text = re.sub(
                        rf"(<dcterms:{tag}[^>]*>)[^<]*(</dcterms:{tag}>)", rf"\g<1>{WORKBOOK_TIMESTAMP}\g<2>", text
                    )
                body = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, body, compresslevel=6)
    return out.getvalue()


def write_metadata(native_root: str | os.PathLike, tables: dict) -> None:
    """Write the workbook and the CSVs of ``tables`` ({"scans": rows, "lesions": rows, "scanners":
    rows}, rows as DataFrames or lists of dicts keyed by column name) into ``native_root``."""
    root = Path(native_root)
    frames = {t: _frame(t, tables[t]) for t in TABLES}
    niio.write_atomic(root / naming.METADATA_WORKBOOK, workbook_bytes(frames))
    for t, df in frames.items():
        niio.write_atomic(root / naming.METADATA_CSV[t], csv_bytes(df))


def write_registration_failures(standard_root: str | os.PathLike, rows) -> None:
    """Write ``registration_failures.csv`` (columns :data:`REGISTRATION_FAILURES_COLUMNS`)."""
    df = pd.DataFrame(list(rows), columns=list(REGISTRATION_FAILURES_COLUMNS))
    niio.write_atomic(Path(standard_root) / naming.REGISTRATION_FAILURES, csv_bytes(df))


# -- reading -----------------------------------------------------------------------------------


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, (str, int)):
        return str(v)
    # an array or data-table formula (openpyxl objects): its text, or at least a formula marker, so that
    # the formula rule (META015) refuses it rather than the cell reading as something harmless
    text = str(getattr(v, "text", "") or "")
    return text if text.startswith("=") else f"={type(v).__name__}"


def _limit(message: str, path: Path) -> AtlasError:
    return AtlasError("META016", f"{message}; not read", path=str(path))


def _check_size(path: Path) -> None:
    """META016 for a file larger than :data:`MAX_FILE_BYTES`, before a byte of it is read."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise AtlasError("META002", f"cannot read the file ({e.strerror or e})", path=str(path)) from None
    if size > MAX_FILE_BYTES:
        raise _limit(f"file of {size:,} bytes is larger than the limit of {MAX_FILE_BYTES:,} bytes", path)


def _check_workbook_parts(path: Path) -> None:
    """META016 for a workbook whose zip directory declares more parts, or more bytes uncompressed,
    than the limits (a zip bomb). Reading a part never yields more than its declared size: Python's
    zipfile stops there and checks the CRC."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        raise AtlasError("META002", f"cannot read the workbook ({type(e).__name__}: {e})", path=str(path)) from None
    if len(infos) > MAX_WORKBOOK_PARTS:
        raise _limit(f"workbook of {len(infos):,} parts (at most {MAX_WORKBOOK_PARTS:,})", path)
    total = sum(i.file_size for i in infos)
    if total > MAX_WORKBOOK_BYTES:
        raise _limit(f"workbook inflates to {total:,} bytes (at most {MAX_WORKBOOK_BYTES:,})", path)


def _check_row(row: list[str], n: int, path: Path, where: str) -> None:
    if n > MAX_ROWS:
        raise _limit(f"{where}has more than {MAX_ROWS:,} rows", path)
    if len(row) > MAX_COLUMNS and any(c != "" for c in row[MAX_COLUMNS:]):
        raise _limit(f"{where}row {n} has more than {MAX_COLUMNS} columns", path)
    if any(len(c) > MAX_CELL_CHARS for c in row):
        raise _limit(f"{where}row {n} has a cell longer than {MAX_CELL_CHARS:,} characters", path)


_NONES = (None,) * (MAX_COLUMNS + 1)


def _used(values: tuple) -> int:
    """How many leading cells of a row read with ``max_col`` (padded with None) are worth reading:
    up to the last one holding a value (one C-level comparison for the usual narrow row)."""
    n = len(values)
    for width in (16, 32, 64):
        if width < n and values[width:] == _NONES[: n - width]:
            n = width
            break
    while n and values[n - 1] is None:
        n -= 1
    return n


def _read_workbook(path: Path) -> dict[str, pd.DataFrame]:
    from openpyxl import load_workbook

    _check_size(path)
    _check_workbook_parts(path)
    try:
        # data_only=False: a formula cell reads as its formula ("=..."), never as the value a spreadsheet
        # program cached for it (or as an empty cell when none was cached), so META015 sees every formula
        wb = load_workbook(path, read_only=True, data_only=False)
    except Exception as e:  # noqa: BLE001 - zip, XML and openpyxl errors are one problem for people
        raise AtlasError("META002", f"cannot read the workbook ({type(e).__name__}: {e})", path=str(path)) from None
    out = {}
    try:
        for ws in wb.worksheets:
            rows = []
            for n, r in enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS + 1), start=1):
                row = [_text(v) for v in r[: _used(r)]]
                _check_row(row, n, path, f"sheet {ws.title!r} ")
                if any(c != "" for c in row):
                    rows.append(row[:MAX_COLUMNS])
            if not rows:
                out[ws.title] = pd.DataFrame(dtype=str)
                continue
            header, body = rows[0], rows[1:]
            while header and header[-1] == "" and all(len(r) < len(header) or r[len(header) - 1] == "" for r in body):
                header = header[:-1]
            width = len(header)
            body = [(r + [""] * width)[:width] for r in body]
            out[ws.title] = pd.DataFrame(body, columns=header, dtype=str)
    except AtlasError:
        raise
    except Exception as e:  # noqa: BLE001 - a part that lies about its size or CRC fails only while read
        raise AtlasError("META002", f"cannot read the workbook ({type(e).__name__}: {e})", path=str(path)) from None
    finally:
        wb.close()
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    _check_size(path)
    rows = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for n, r in enumerate(csv.reader(f), start=1):
                _check_row(r, n, path, "")
                if any(c != "" for c in r):
                    rows.append(r)
    except csv.Error as e:
        if "field limit" in str(e):  # the csv module's own bound (131,072 characters) on one cell
            raise _limit(f"a cell is longer than {MAX_CELL_CHARS:,} characters ({e})", path) from None
        raise AtlasError("META002", f"cannot read the CSV ({e})", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise AtlasError("META002", f"cannot read the CSV ({e})", path=str(path)) from None
    if not rows:
        return pd.DataFrame(dtype=str)
    header, body = rows[0], rows[1:]
    width = len(header)
    return pd.DataFrame([(r + [""] * width)[:width] for r in body], columns=header, dtype=str)


def read_metadata(path_or_root: str | os.PathLike, source: str = "auto") -> dict[str, pd.DataFrame]:
    """The metadata tables as DataFrames of strings (cells exactly as stored, empty cells "").

    ``path_or_root`` is the workbook itself, or a native root holding the workbook and/or the CSVs.
    ``source``: "auto" (the workbook when present, else the CSVs), "xlsx" or "csv".  Keys are the
    sheet names of the workbook (normally :data:`TABLES`) or the tables whose CSV exists.
    Raises AtlasError META001 when there is no metadata, META002 when a file cannot be read.
    """
    p = Path(path_or_root)
    if p.is_file():
        if p.suffix.lower() == ".xlsx":
            return _read_workbook(p)
        raise AtlasError("META002", "not a metadata workbook (.xlsx) or native root", path=str(p))
    book = p / naming.METADATA_WORKBOOK
    csvs = {t: p / naming.METADATA_CSV[t] for t in TABLES}
    if source in ("auto", "xlsx") and book.is_file():
        return _read_workbook(book)
    if source in ("auto", "csv") and any(f.is_file() for f in csvs.values()):
        return {t: _read_csv(f) for t, f in csvs.items() if f.is_file()}
    raise AtlasError("META001", f"no metadata ({naming.METADATA_WORKBOOK} or the CSV tables)", path=str(p))


def read_registration_failures(standard_root: str | os.PathLike) -> pd.DataFrame | None:
    """``registration_failures.csv`` of a standard root as strings, or ``None`` when absent."""
    f = Path(standard_root) / naming.REGISTRATION_FAILURES
    return _read_csv(f) if f.is_file() else None
