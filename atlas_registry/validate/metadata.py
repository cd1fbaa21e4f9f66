"""Metadata rules: the scans, lesions and scanners tables (workbook or CSVs) against their JSON
Schemas, quirks accepted and normalized, identifiers kept out, and the tables against the files.

:func:`load` reads and checks the tables and turns the rows into :class:`MetadataRecords` (the
registry's vocabulary); :func:`cross_findings` compares them with what the scan folders hold.
A standardized root carries no tables, only ``registration_failures.csv``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import metadata as md
from .. import naming
from ..errors import AtlasError
from ..records import LesionMeta, MetadataRecords, RegistrationFailure, ScanMeta, ScannerMeta
from . import deid, formulas, rules

_LOST_ZEROS = re.compile(r"^c(\d{1,4})s(\d{1,4})t(\d{1,2})$")
_COHORT_LOST_ZEROS = re.compile(r"^c(\d{1,4})$")
_ENUM_VALIDATORS = {"enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
_ID_COLUMNS = {md.SCAN_ID: "scan", md.COHORT: "cohort"}


@dataclass
class Loaded:
    records: MetadataRecords | None = None
    findings: list = field(default_factory=list)
    files: int = 0  # metadata files read from outside the validated root
    registration_failures: list[RegistrationFailure] = field(default_factory=list)
    low_resolution: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)  # scan id -> relpath of the listing file
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # scan id -> count column -> value
    rows: dict[str, set] = field(default_factory=dict)  # table -> keys of every row, valid or not


@dataclass
class _Table:
    """One table in scope, cells as normalized strings, with its spreadsheet row numbers."""

    name: str
    relpath: str
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (spreadsheet row number, {column: text})


def load(inv, path: Path | None = None) -> Loaded:
    """Read and check the metadata of ``inv`` (or the tables at ``path``)."""
    out = Loaded()
    if inv.kind == "standard":
        _registration_failures(inv, out)
        return out
    source = Path(path) if path is not None else inv.root
    try:
        frames = md.read_metadata(source)
    except AtlasError as e:
        rel = _relpath(inv, Path(e.path) if e.path else source)
        out.findings.append(rules.make(e.code if e.code in rules.RULES else "META002", e.args[0], path=rel))
        return out
    if path is not None:
        out.files += 1 if source.is_file() else len(frames)
    workbook = source if source.is_file() else source / naming.METADATA_WORKBOOK
    tables = {}
    for name in md.TABLES:
        rel = _relpath(inv, workbook if workbook.is_file() else source / naming.METADATA_CSV[name])
        if name not in frames:
            out.findings.append(
                rules.make("META003", f"no {name} table (sheet or {naming.METADATA_CSV[name]})", path=rel)
            )
            continue
        tables[name] = _check_table(name, frames[name], rel, inv.cohort, out.findings)
    if not source.is_file():
        out.findings.extend(_csv_agreement(source, frames, inv))
    out.records = _records(tables)
    out.counts = _counts(tables.get("scans"))
    out.rows = {name: {_key(name, cells) for _, cells in t.rows} for name, t in tables.items()}
    out.findings.extend(_duplicates(tables))
    return out


def _relpath(inv, p: Path) -> str:
    try:
        return Path(p).absolute().relative_to(inv.root).as_posix()
    except ValueError:
        return str(p)


def _in_scope(row: dict[str, str], cohort: str | None) -> bool:
    if cohort is None:
        return True
    key = row.get(md.SCAN_ID) or row.get(md.COHORT) or ""
    return key[:5] == cohort


def _normalize(col: str, text: str) -> tuple[str, str | None]:
    """A cell with the known quirks undone, and what was undone (``None`` when nothing)."""
    what = []
    stripped = text.strip()
    if stripped != text:
        what.append("surrounding spaces removed")
    if col in _ID_COLUMNS:
        rx = _LOST_ZEROS if col == md.SCAN_ID else _COHORT_LOST_ZEROS
        m = rx.match(stripped)
        if m and not (naming.SCAN_RE.match(stripped) or naming.COHORT_RE.match(stripped)):
            widths = (4, 4, 2)
            stripped = "".join(f"{p}{int(g):0{w}d}" for p, g, w in zip("cst", m.groups(), widths, strict=False))
            what.append("leading zeros restored")
    return stripped, ", ".join(what) or None


def _check_table(name: str, df, relpath: str, cohort: str | None, findings: list) -> _Table:
    """Columns (declared, present, not identifying), quirks, schema and identifiers in cells."""
    schema = md.load_schema(name)
    props = schema["properties"]
    columns = [str(c) for c in df.columns]
    findings.extend(deid.column_findings(columns, sheet=name, relpath=relpath))
    for c in columns:
        if c not in props:
            findings.append(
                rules.make(
                    "META004",
                    f"sheet {name!r}: column {c!r} is not declared in the schema metadata-{name}.schema.json",
                    path=relpath,
                )
            )
    missing = [c for c in schema.get("required", []) if c not in columns]
    for c in missing:
        findings.append(rules.make("META003", f"sheet {name!r}: required column {c!r} is missing", path=relpath))
    findings.extend(formulas.column_findings(columns, sheet=name, relpath=relpath))
    numeric = _numeric_columns(props)
    rows = []
    for i, rec in enumerate(df.to_dict(orient="records")):
        cells: dict[str, str] = {}
        for col, text in rec.items():
            text = "" if text is None else str(text)
            value, quirk = _normalize(str(col), text)
            if quirk:
                findings.append(
                    rules.make(
                        "META006",
                        f"sheet {name!r} row {i + 2} column {col!r}: {quirk} ({text!r} read as {value!r})",
                        subject=_subject(cells, rec),
                        path=relpath,
                    )
                )
            cells[str(col)] = value
        if _in_scope(cells, cohort):
            rows.append((i + 2, cells))
            raw = {str(c): "" if t is None else str(t) for c, t in rec.items()}  # as found, before normalizing
            findings.extend(
                formulas.findings([(i + 2, _subject(cells), raw)], sheet=name, relpath=relpath, numeric=numeric)
            )
    table = _Table(name, relpath, columns, rows)
    findings.extend(deid.cell_findings(((n, _subject(c), c) for n, c in rows), sheet=name, relpath=relpath))
    findings.extend(_schema_findings(table, props, set(missing)))
    return table


def _numeric_columns(props: dict) -> frozenset[str]:
    """The columns whose schema type is a number (where ``-3`` is a number, not a formula)."""

    def numeric(kind) -> bool:
        kinds = kind if isinstance(kind, list) else [kind]
        return "string" not in kinds and any(k in ("integer", "number") for k in kinds)

    return frozenset(c for c, p in props.items() if numeric(p.get("type", "string")))


def _subject(cells: dict, raw: dict | None = None) -> str | None:
    sid = cells.get(md.SCAN_ID) or (raw or {}).get(md.SCAN_ID)
    return sid.strip() if sid else None


def _schema_findings(table: _Table, props: dict, missing_columns: set[str]) -> list:
    """Each row against the JSON Schema (undeclared and absent columns are reported once above)."""
    import jsonschema
    import pandas as pd

    validator = jsonschema.Draft202012Validator(md.load_schema(table.name))
    declared = [c for c in table.columns if c in props]
    frame = pd.DataFrame(
        [{c: cells.get(c, "") for c in declared} for _, cells in table.rows], columns=declared, dtype=str
    )
    out = []
    for (rownum, cells), row in zip(table.rows, md.typed_records(table.name, frame), strict=False):
        for err in sorted(validator.iter_errors(row), key=lambda e: (list(e.path), e.message)):
            col = err.path[0] if err.path else None
            if err.validator == "required":
                col = next((c for c in schema_required(table.name) if c not in row), None)
                if col in missing_columns:
                    continue
                message = "empty or missing value"
            else:
                message = err.message
            code = "META005" if err.validator in _ENUM_VALIDATORS else "META003"
            out.append(
                rules.make(
                    code,
                    f"sheet {table.name!r} row {rownum} column {col!r}: {message}",
                    subject=_subject(cells),
                    path=table.relpath,
                )
            )
        out.extend(_row_rules(table, rownum, cells))
    return out


def schema_required(name: str) -> list[str]:
    return list(md.load_schema(name).get("required", []))


def _row_rules(table: _Table, rownum: int, cells: dict[str, str]) -> list:
    """What the schema cannot say about one row."""
    out = []
    sid, cohort = cells.get(md.SCAN_ID, ""), cells.get(md.COHORT, "")
    where = f"sheet {table.name!r} row {rownum}"
    if table.name == "scans" and naming.SCAN_RE.match(sid) and cohort and cohort != sid[:5]:
        out.append(
            rules.make(
                "META003", f"{where}: Cohort {cohort!r} is not the cohort of {sid}", subject=sid, path=table.relpath
            )
        )
    if table.name == "lesions" and cells.get("Tracer") and cells.get("Tracer") == cells.get("Reviewer"):
        out.append(
            rules.make("META003", f"{where}: Reviewer must differ from Tracer", subject=sid or None, path=table.relpath)
        )
    return out


def _key(name: str, cells: dict[str, str]) -> tuple:
    return tuple(cells.get(k, "") for k in md.KEYS[name])


def _duplicates(tables: dict[str, _Table]) -> list:
    """META011: one row per scan, per lesion, per cohort."""
    out = []
    for name, t in sorted(tables.items()):
        seen: dict[tuple, int] = {}
        for rownum, cells in t.rows:
            key = _key(name, cells)
            if key in seen:
                out.append(
                    rules.make(
                        "META011",
                        f"sheet {name!r} rows {seen[key]} and {rownum} are both {' / '.join(key)}",
                        subject=_subject(cells),
                        path=t.relpath,
                    )
                )
            seen.setdefault(key, rownum)
    return out


def _csv_agreement(root: Path, frames: dict, inv) -> list:
    """META014: when both the workbook and the CSVs are there, they must hold the same tables."""
    if not (root / naming.METADATA_WORKBOOK).is_file():
        return []
    try:
        csvs = md.read_metadata(root, source="csv")
    except AtlasError as e:  # the CSVs are deposited too: one that cannot be read (or is too large) is refused
        if e.code == "META001":  # no CSVs: the workbook alone is fine
            return []
        rel = _relpath(inv, Path(e.path) if e.path else root)
        return [rules.make(e.code if e.code in rules.RULES else "META002", e.args[0], path=rel)]
    out = []
    for name, df in sorted(csvs.items()):
        rel = _relpath(inv, root / naming.METADATA_CSV[name])
        # the CSVs are deposited too: identifiers in them count even when they agree with nothing
        out.extend(deid.column_findings([str(c) for c in df.columns], sheet=name, relpath=rel))
        if name not in frames:
            continue
        if not _same_table(frames[name], df):
            out.append(
                rules.make(
                    "META014",
                    f"{naming.METADATA_CSV[name]} differs from sheet {name!r} of {naming.METADATA_WORKBOOK}",
                    path=rel,
                )
            )
        else:
            continue
        rows = [(i + 2, _subject(r), r) for i, r in enumerate(df.to_dict(orient="records"))]
        out.extend(deid.cell_findings(rows, sheet=name, relpath=rel))
        out.extend(formulas.column_findings([str(c) for c in df.columns], sheet=name, relpath=rel))
        out.extend(
            formulas.findings(
                rows, sheet=name, relpath=rel, numeric=_numeric_columns(md.load_schema(name)["properties"])
            )
        )
    return out


def _same_table(a, b) -> bool:
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return False
    return all(
        _num_eq(x, y)
        for ra, rb in zip(a.itertuples(index=False), b.itertuples(index=False), strict=False)
        for x, y in zip(ra, rb, strict=False)
    )


def _num_eq(x: str, y: str) -> bool:
    if x == y:
        return True
    try:
        return float(x) == float(y)
    except ValueError:
        return False


# -- records --------------------------------------------------------------------------------------


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _records(tables: dict[str, _Table]) -> MetadataRecords:
    """The rows in the registry's vocabulary (rows too broken to convert are left out; they are
    errors already)."""
    rec = MetadataRecords()
    for _, c in tables["scanners"].rows if "scanners" in tables else []:
        vx, vy, vz = (_float(c.get(f"Voxel Size {a} (mm)")) for a in "XYZ")
        fs = _float(c.get("Field Strength (T)"))
        voxel_sizes = (vx, vy, vz) if vx is not None and vy is not None and vz is not None else None
        if naming.COHORT_RE.match(c.get(md.COHORT, "")) and fs is not None and voxel_sizes is not None:
            rec.scanners.setdefault(
                c[md.COHORT],
                ScannerMeta(c[md.COHORT], fs, c.get("Manufacturer", ""), c.get("Model", ""), voxel_sizes),
            )
    for _, c in tables["scans"].rows if "scans" in tables else []:
        sid = c.get(md.SCAN_ID, "")
        if not naming.SCAN_RE.match(sid):
            continue
        hemi = c.get("Primary Stroke Location Hemisphere", "").lower() or None
        rec.scans.setdefault(
            sid,
            ScanMeta(
                scan_id=sid,
                stroke_type=c.get("Stroke type") or None,
                primary_location=c.get("Primary Stroke Location") or None,
                primary_hemisphere=hemi if hemi in ("left", "right", "brainstem", "bilateral") else None,
                vascular_territory=c.get("Vascular territory") or None,
                pvh=_grade(c.get("PVH")),
                dwmh=_grade(c.get("DWMH")),
                notes=c.get("Notes") or None,
                primary_chosen_by_neuroradiologist=c.get(md.PRIMARY_NOT_LARGEST) == "Yes",
            ),
        )
    for _, c in tables["lesions"].rows if "lesions" in tables else []:
        sid, number = c.get(md.SCAN_ID, ""), _int(c.get("Lesion"))
        hemi, loc = c.get("Hemisphere", ""), c.get("Location", "")
        if (
            naming.SCAN_RE.match(sid)
            and number is not None
            and number >= 0
            and hemi in ("left", "right", "other")
            and loc in ("cortical", "subcortical", "other")
        ):
            rec.lesions.setdefault(
                (sid, number), LesionMeta(sid, number, hemi, loc, c.get("Tracer") or None, c.get("Reviewer") or None)
            )
    return rec


def _counts(table: _Table | None) -> dict[str, dict[str, int]]:
    """The lesion count columns of every scans row whose counts are all integers."""
    out: dict[str, dict[str, int]] = {}
    for _, c in table.rows if table else []:
        values = {col: _int(c.get(col)) for col in md.COUNT_COLUMNS}
        counts = {col: v for col, v in values.items() if v is not None}
        if naming.SCAN_RE.match(c.get(md.SCAN_ID, "")) and len(counts) == len(values):
            out.setdefault(c[md.SCAN_ID], counts)
    return out


def _grade(text) -> int | None:
    g = _int(text)
    return g if g is not None and 0 <= g <= 3 else None


# -- the tables against the files ---------------------------------------------------------------------


def cross_findings(inv, meta: Loaded, scans: dict) -> list:
    """META007/008/009/010/012 (native) and META013 (standard) between metadata and files."""
    if inv.kind == "standard":
        return _standard_cross(meta, scans)
    rec = meta.records
    if rec is None:
        return []
    out = []
    folders = {f.scan_id: f.relpath for f in inv.scans}
    label = _sheet_path(inv)
    out.extend(_completeness(inv, meta, set(folders), label))
    lesion_rows: dict[str, dict[int, LesionMeta]] = {}
    for (sid, n), lm in rec.lesions.items():
        lesion_rows.setdefault(sid, {})[n] = lm
    scan_rows, lesion_keys = meta.rows.get("scans", set()), meta.rows.get("lesions", set())
    for sid in sorted(folders):
        if (sid,) not in scan_rows:
            out.append(
                rules.make("META008", "scan folder has no row in the scans sheet", subject=sid, path=folders[sid])
            )
        scan = scans.get(sid)
        if scan is None:
            continue
        present = sorted(scan.lesions)
        rows = lesion_rows.get(sid, {})
        for n in present:
            if (sid, str(n)) not in lesion_keys:
                out.append(
                    rules.make(
                        "META008",
                        f"lesion {n} has files but no row in the lesions sheet",
                        subject=sid,
                        path=folders[sid],
                    )
                )
        for n in sorted(set(rows) - set(present)):
            out.append(
                rules.make(
                    "META009",
                    f"the lesions sheet has lesion {n}, the folder has no mask for it",
                    subject=sid,
                    path=folders[sid],
                )
            )
        if sid in rec.scans:
            out.extend(_count_findings(sid, scan, rows, meta, label))
        out.extend(_location_findings(sid, scan, rows, rec.scans.get(sid)))
    cohorts = sorted({sid[:5] for sid in folders})
    for c in cohorts:
        if c not in rec.scanners:
            out.append(rules.make("META012", f"cohort {c} has scans but no row in the scanners sheet", path=label))
    return out


def _sheet_path(inv, table: str = "scans") -> str:
    return naming.METADATA_WORKBOOK if (inv.root / naming.METADATA_WORKBOOK).is_file() else naming.METADATA_CSV[table]


def _completeness(inv, meta: Loaded, folders: set[str], label: str) -> list:
    """META007 for rows of the scans or lesions sheet whose scan has no folder, META017 for lesion rows
    whose scan has no scans row: every row in scope (the whole root, or the rows of the validated
    cohort), valid or not, must belong to a scan that is there in both tables and on disk."""
    scan_rows = {k[0] for k in meta.rows.get("scans", set()) if naming.SCAN_RE.match(k[0])}
    lesion_rows = {k[0] for k in meta.rows.get("lesions", set()) if naming.SCAN_RE.match(k[0])}
    lesion_label = _sheet_path(inv, "lesions") if label != naming.METADATA_WORKBOOK else label
    out = []
    for sheet, sids, where in (("scans", scan_rows, label), ("lesions", lesion_rows, lesion_label)):
        for sid in sorted(sids - folders):
            out.append(
                rules.make(
                    "META007",
                    f"scan {sid} is in the {sheet} sheet but has no folder "
                    f"{naming.parse_scan_id(sid).cohort_code}/{sid}/",
                    subject=sid,
                    path=where,
                )
            )
    for sid in sorted(lesion_rows - scan_rows):
        out.append(
            rules.make(
                "META017",
                f"the lesions sheet has rows for scan {sid}, which has no row in the scans sheet",
                subject=sid,
                path=lesion_label,
            )
        )
    return out


def _count_findings(sid: str, scan, rows: dict[int, LesionMeta], meta: Loaded, label: str) -> list:
    """META009: the count columns of the scans row against the masks present and the lesion rows."""
    counts = meta.counts.get(sid)
    if not counts:
        return []
    out = []
    total = sum(counts.values())
    if total != len(scan.lesions):
        out.append(
            rules.make(
                "META009",
                f"the scans sheet counts {total} lesion(s), the folder has {len(scan.lesions)} lesion mask(s)",
                subject=sid,
                path=label,
            )
        )
    by_rows = {c: 0 for c in md.COUNT_COLUMNS}
    for lm in rows.values():
        by_rows[md.count_column(lm.hemisphere, lm.location)] += 1
    if rows and len(rows) == len(scan.lesions):
        for col in md.COUNT_COLUMNS:
            if counts.get(col) != by_rows[col]:
                out.append(
                    rules.make(
                        "META009",
                        f"{col!r} is {counts.get(col)} but the lesions sheet has {by_rows[col]} such lesion(s)",
                        subject=sid,
                        path=label,
                    )
                )
    return out


def _location_findings(sid: str, scan, rows: dict[int, LesionMeta], scan_meta: ScanMeta | None) -> list:
    """META010 (warning): recorded hemisphere/location against where the mask lies."""
    out = []
    for n, variants in sorted(scan.lesions.items()):
        m = variants.get("smooth_nii") or next(iter(variants.values()))
        lm = rows.get(n)
        if lm is not None and (lm.hemisphere, lm.location) != (m.hemisphere, m.location):
            out.append(
                rules.make(
                    "META010",
                    f"lesion {n} is recorded {lm.hemisphere}/{lm.location} but its mask lies "
                    f"{m.hemisphere}/{m.location}",
                    subject=sid,
                    path=m.relpath,
                )
            )
        if (
            n == 0
            and scan_meta
            and scan_meta.primary_hemisphere in ("left", "right")
            and m.hemisphere != scan_meta.primary_hemisphere
        ):
            out.append(
                rules.make(
                    "META010",
                    f"primary stroke hemisphere is recorded {scan_meta.primary_hemisphere} "
                    f"but the primary mask lies {m.hemisphere}",
                    subject=sid,
                    path=m.relpath,
                )
            )
    return out


# -- standardized root ------------------------------------------------------------------------------


def _registration_failures(inv, out: Loaded) -> None:
    """``registration_failures.csv``: the scans left out of the standardized subset and why."""
    rel = naming.REGISTRATION_FAILURES
    try:
        df = md.read_registration_failures(inv.root)
    except AtlasError as e:
        out.findings.append(rules.make("META016" if e.code == "META016" else "META013", e.args[0], path=rel))
        return
    if df is None:
        out.findings.append(
            rules.make("META013", f"a standardized root must list its excluded scans in {rel}", path=rel)
        )
        return
    cols = [str(c) for c in df.columns]
    out.findings.extend(deid.column_findings(cols, sheet=rel, relpath=rel))
    if cols != list(md.REGISTRATION_FAILURES_COLUMNS):
        out.findings.append(
            rules.make("META013", f"columns {cols} are not {list(md.REGISTRATION_FAILURES_COLUMNS)}", path=rel)
        )
        return
    out.findings.extend(formulas.column_findings(cols, sheet=rel, relpath=rel))
    rows = []
    for i, r in enumerate(df.to_dict(orient="records")):
        cells = {k: str(v) for k, v in r.items()}
        out.findings.extend(formulas.findings([(i + 2, None, cells)], sheet=rel, relpath=rel))
        for col in cols:
            value, quirk = _normalize(col, cells[col])
            if quirk:
                out.findings.append(
                    rules.make(
                        "META006",
                        f"row {i + 2} column {col!r}: {quirk} ({cells[col]!r} read as {value!r})",
                        subject=value if col == md.SCAN_ID else None,
                        path=rel,
                    )
                )
            cells[col] = value
        rows.append((i + 2, cells))
    rows = [(n, c) for n, c in rows if _in_scope(c, inv.cohort)]
    out.findings.extend(deid.cell_findings(((n, c[md.SCAN_ID] or None, c) for n, c in rows), sheet=rel, relpath=rel))
    seen: dict[str, int] = {}
    for n, c in rows:
        sid, excl, reason = c[md.SCAN_ID], c["Exclusion"], c["Reason"]
        if not naming.SCAN_RE.match(sid):
            out.findings.append(rules.make("META013", f"row {n}: {sid!r} is not a scan identifier", path=rel))
            continue
        if excl not in md.EXCLUSIONS:
            out.findings.append(
                rules.make(
                    "META013", f"row {n}: Exclusion {excl!r} is not one of {list(md.EXCLUSIONS)}", subject=sid, path=rel
                )
            )
            continue
        if sid in seen:
            out.findings.append(
                rules.make("META013", f"rows {seen[sid]} and {n} both list {sid}", subject=sid, path=rel)
            )
            continue
        seen[sid] = n
        out.excluded[sid] = rel
        if excl == "low resolution":
            out.low_resolution.append(sid)
        else:
            out.registration_failures.append(RegistrationFailure(sid, reason or "registration failure"))


def _standard_cross(meta: Loaded, scans: dict) -> list:
    return [
        rules.make("META013", f"{sid} is listed as excluded but has standardized files", subject=sid, path=rel)
        for sid, rel in sorted(meta.excluded.items())
        if sid in scans
    ]
