"""The Parquet metadata archive (``out/parquet/``): one file per entity, explicit Arrow schemas.

Tables: ``scans``, ``lesions`` (the columns of the registry views :data:`views.SCAN_COLUMNS` and
:data:`views.LESION_COLUMNS`, so ``stats tables --release`` and ``sql --release`` run the registry's
queries on a release with DuckDB), ``images``, ``masks`` (one row per mask file of the BIDS archive:
path, size, SHA-256), ``scanners``, ``issues``, ``revisions``, ``releases``.

Types say what a value is: lists are Arrow lists (``releases`` of a scan, ``resolved_by`` of an
issue), dates are dates, times UTC timestamps; key columns (the public scan and subject, lesion number,
issue and revision numbers, release name) are non-nullable.

The archive is public, like the BIDS archive: scans and subjects are named by their public IDs
(``scan`` = ``sub-<label>_ses-<n>``, ``subject`` = ``sub-<label>``), never by native identifiers, and
native identifiers in issue and revision text are replaced by the public ones. Native-space files are
described (shape, voxel size) but not named or hashed, since their ICPSR paths and SHA-256 would be a
crosswalk. Every field carries a description (and a unit where it has one) in the field metadata;
``schemas/parquet.schema.json`` documents the same (:func:`json_schema` writes it, a test keeps them in
step).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from .. import views
from .view import ReleaseView, ScanView

COMPRESSION = "zstd"
SCHEMA_VERSION = "1"

_STR, _I32, _I64, _F64, _BOOL = pa.string(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()
_TS = pa.timestamp("us", tz="UTC")
_DATE = pa.date32()
# Key columns of each table: never null (the Arrow field is non-nullable).
KEYS = {
    "scans": ("scan", "cohort", "subject", "timepoint"),
    "lesions": ("scan", "cohort", "subject", "timepoint", "lesion", "is_primary"),
    "images": ("scan", "space", "archive"),
    "masks": ("scan", "lesion_desc", "path", "size_bytes", "sha256"),
    "scanners": ("cohort",),
    "issues": ("number", "status"),
    "revisions": ("id", "kind"),
    "releases": ("name", "version", "date"),
}
_LIST_COLUMNS = {"releases": pa.list_(_STR)}  # view columns written as lists (comma-separated in the registry)

# Types and units of the view columns (descriptions come from views.DESCRIPTIONS).
_VIEW_TYPES = {
    "timepoint": _I32,
    "n_lesions": _I32,
    "pvh": _I32,
    "dwmh": _I32,
    "lesion": _I32,
    "voxel_count": _I64,
    "primary_volume_mm3": _F64,
    "total_volume_mm3": _F64,
    "volume_mm3": _F64,
    "field_strength_t": _F64,
    "voxel_x_mm": _F64,
    "voxel_y_mm": _F64,
    "voxel_z_mm": _F64,
    "is_primary": _BOOL,
}
_UNITS = {
    "primary_volume_mm3": "mm3",
    "total_volume_mm3": "mm3",
    "volume_mm3": "mm3",
    "field_strength_t": "T",
    "voxel_x_mm": "mm",
    "voxel_y_mm": "mm",
    "voxel_z_mm": "mm",
    "size_bytes": "bytes",
}
_PUBLIC_KEYS = {
    "scan": "public scan identifier sub-<label>_ses-<n> (the BIDS file prefix; native identifiers never leave "
    "the registry)",
    "subject": "public subject identifier sub-<label> (pseudonymous, stable across releases)",
    "releases": "published releases holding the scan, sorted (this release included)",
    "standard_status": "standardized subset of this release: included|excluded|pending",
    "exclusion_reason": "why not in the standardized subset: low_resolution|registration_failed|revision|"
    "voxel_size|missing_standard_files|membership (NULL when included)",
}

# Non-view tables: (column, type, description[, unit]).
_OTHER: dict[str, tuple[str, list[tuple]]] = {
    "images": (
        "T1-weighted images of the release, native and standard space",
        [
            ("scan", _STR, _PUBLIC_KEYS["scan"]),
            ("space", _STR, "native | MNI152NLin2009aSym"),
            ("archive", _STR, "icpsr (native space, under the data use agreement) | bids (standardized subset)"),
            (
                "path",
                _STR,
                "path in the BIDS archive (NULL for native-space images, which only the ICPSR archive names)",
            ),
            ("sha256", _STR, "SHA-256 of the BIDS file (NULL for native-space images)"),
            ("size_bytes", _I64, "file size (compressed)", "bytes"),
            ("shape_x", _I32, "voxels along x"),
            ("shape_y", _I32, "voxels along y"),
            ("shape_z", _I32, "voxels along z"),
            ("voxel_x_mm", _F64, "voxel size x", "mm"),
            ("voxel_y_mm", _F64, "voxel size y", "mm"),
            ("voxel_z_mm", _F64, "voxel size z", "mm"),
            ("dtype", _STR, "voxel data type"),
            ("defaced", _BOOL, "true when the face was removed (standardized images)"),
            ("created_rev_id", _I32, "registry revision that recorded the image"),
        ],
    ),
    "masks": (
        "Lesion mask files of the BIDS archive, one row per file",
        [
            ("scan", _STR, _PUBLIC_KEYS["scan"]),
            (
                "lesion",
                _I32,
                "lesion number: 0 primary, 1.. secondary (largest first); NULL for the union of every lesion",
            ),
            ("lesion_desc", _STR, "the file's desc- entity: primary | secondary<n> | T1lesion (union of every lesion)"),
            ("space", _STR, "template space of the mask"),
            ("path", _STR, "path in the release (bids/...)"),
            ("size_bytes", _I64, "file size (compressed)", "bytes"),
            ("sha256", _STR, "SHA-256 of the file"),
        ],
    ),
    "scanners": (
        "MRI scanners, one per cohort",
        [
            ("cohort", _STR, "cohort cXXXX"),
            ("site", _STR, "site or study name (NULL when not recorded)"),
            ("manufacturer", _STR, "scanner manufacturer"),
            ("model", _STR, "scanner model"),
            ("field_strength_t", _F64, "field strength", "T"),
            ("voxel_x_mm", _F64, "acquisition voxel size x", "mm"),
            ("voxel_y_mm", _F64, "acquisition voxel size y", "mm"),
            ("voxel_z_mm", _F64, "acquisition voxel size z", "mm"),
            ("n_scans", _I32, "scans of the release from this cohort"),
        ],
    ),
    "issues": (
        "Reported problems with the release's scans, as they stood at the release's revision",
        [
            ("number", _I32, "issue number in the registry's tracker"),
            ("scan", _STR, _PUBLIC_KEYS["scan"]),
            ("file_kind", _STR, "which file the issue concerns (NULL: the scan as a whole)"),
            ("title", _STR, "title (native identifiers replaced by public ones)"),
            ("body", _STR, "description (native identifiers replaced by public ones)"),
            ("url", _STR, "the same issue on the public tracker"),
            ("status", _STR, "open | closed, at the release's revision"),
            ("opened_at", _TS, "when the issue was opened (UTC)"),
            ("closed_at", _TS, "when it was closed (UTC; NULL while open)"),
            ("resolved_by", pa.list_(_I32), "revisions that resolved it"),
        ],
    ),
    "revisions": (
        "Changes to the registry up to the release's revision",
        [
            ("id", _I32, "revision number"),
            (
                "kind",
                _STR,
                "ingest | attach_standard | replace_mask | add_lesion | remove_lesion | correct_metadata | "
                "exclude_scan | include_scan",
            ),
            ("issue", _I32, "issue the revision resolved (NULL: none)"),
            ("scan", _STR, "public scan identifier of a correction (NULL: ingest or a scan outside the release)"),
            ("author", _STR, "curator who made the change"),
            ("reason", _STR, "why (native identifiers replaced by public ones)"),
            ("created_at", _TS, "when (UTC)"),
        ],
    ),
    "releases": (
        "Published releases up to this one, and this release",
        [
            ("name", _STR, "release name"),
            ("version", _STR, "semantic version"),
            ("date", _DATE, "release date"),
            ("title", _STR, "title"),
            ("n_scans", _I32, "scans in the release (ICPSR archive)"),
            ("n_standard", _I32, "scans in the standardized subset (BIDS archive)"),
            ("last_revision_id", _I32, "newest registry revision the release contains"),
            ("previous", _STR, "the release before it (NULL: first)"),
        ],
    ),
}
TABLE_DESCRIPTIONS = {
    "scans": "One row per scan (subject-timepoint) of the release; the columns of the registry view `scans`",
    "lesions": "One row per lesion (primary and secondary) of the release; the columns of the registry view `lesions`",
    **{k: v[0] for k, v in _OTHER.items()},
}
TABLES = ("scans", "lesions", "images", "masks", "scanners", "issues", "revisions", "releases")
SPLIT = "split"
SPLIT_FIELD = (
    SPLIT,
    _STR,
    "benchmark split: training (masks released) | test (masks withheld: lesion columns NULL, no lesion or mask "
    "rows); only in releases with splits",
)


def _field(name: str, typ, desc: str, unit: str | None = None, *, key: bool = False) -> pa.Field:
    meta = {"description": desc}
    if unit:
        meta["unit"] = unit
    return pa.field(name, typ, nullable=not key, metadata=meta)


def _view_schema(view: str, table: str) -> pa.Schema:
    cols = views.COLUMNS[view]
    desc = views.DESCRIPTIONS[view]
    return pa.schema(
        [
            _field(
                c,
                _LIST_COLUMNS.get(c, _VIEW_TYPES.get(c, _STR)),
                _PUBLIC_KEYS.get(c, desc[c]),
                _UNITS.get(c),
                key=c in KEYS[table],
            )
            for c in cols
        ]
    )


def schema(table: str, *, splits: bool = False) -> pa.Schema:
    """The Arrow schema of ``table`` (with field descriptions and units); ``splits``: the release has
    benchmark splits (the scans table ends with their ``split`` column)."""
    if table == "scans":
        sch = _view_schema(views.SCANS, table)
        return sch.append(_field(*SPLIT_FIELD, key=True)) if splits else sch
    if table == "lesions":
        return _view_schema(views.LESIONS, table)
    return pa.schema([_field(*c, key=c[0] in KEYS[table]) for c in _OTHER[table][1]])


# -- rows ---------------------------------------------------------------------------------------


def _scan_facts(s: ScanView, release: str) -> dict:
    r, sc = s.report, s.scanner
    status = "included" if s.in_standard else ("pending" if s.exclusion_reason == "pending" else "excluded")
    return {
        "scan": s.public_scan,
        "cohort": s.cohort,
        "subject": s.bids_subject,
        "timepoint": s.timepoint,
        "stroke_type": r and r.stroke_type,
        "primary_location": r and r.primary_location,
        "primary_hemisphere": r and r.primary_hemisphere,
        "vascular_territory": r and r.vascular_territory,
        "pvh": r and r.pvh,
        "dwmh": r and r.dwmh,
        "field_strength_t": sc and sc.field_strength_t,
        "scanner_manufacturer": sc and sc.manufacturer,
        "scanner_model": sc and sc.model,
        "voxel_x_mm": sc and sc.voxel_mm[0],
        "voxel_y_mm": sc and sc.voxel_mm[1],
        "voxel_z_mm": sc and sc.voxel_mm[2],
        "standard_status": status,
        "exclusion_reason": None if s.in_standard or status == "pending" else s.exclusion_reason,
        "releases": sorted({*s.releases, release}, key=lambda n: n.encode()),
    }


def scan_rows(view: ReleaseView) -> list[dict]:
    rows = []
    for s in view.scans:
        vols = [les.metrics.volume_mm3 for les in s.lesions if les.metrics]
        prim = next((les.metrics.volume_mm3 for les in s.lesions if les.is_primary and les.metrics), None)
        rows.append(
            {
                **_scan_facts(s, view.name),
                "n_lesions": None if s.withheld else len(s.lesions),  # a test scan: its masks are withheld
                "primary_volume_mm3": prim,
                "total_volume_mm3": sum(vols) if vols else None,
                SPLIT: s.split,
            }
        )
    return rows


def lesion_rows(view: ReleaseView) -> list[dict]:
    rows = []
    for s in view.scans:
        facts = _scan_facts(s, view.name)
        for les in s.lesions:
            m = les.metrics
            rows.append(
                {
                    **facts,
                    "lesion": les.number,
                    "is_primary": les.is_primary,
                    "hemisphere": les.hemisphere,
                    "location": les.location,
                    "mask_hemisphere": m and m.hemisphere,
                    "mask_location": m and m.location,
                    "volume_mm3": m and m.volume_mm3,
                    "voxel_count": m and m.voxel_count,
                }
            )
    return rows


def image_rows(view: ReleaseView, bids_paths: dict[str, str]) -> list[dict]:
    """``bids_paths``: scan code -> path of its standardized T1 in the BIDS archive."""
    rows = []
    for s in view.scans:
        for img in (s.t1_native, s.t1_standard):
            if img is None:
                continue
            public = img.space != "native" and s.code in bids_paths
            rows.append(
                {
                    "scan": s.public_scan,
                    "space": img.space,
                    "archive": "bids" if img.space != "native" else "icpsr",
                    "path": bids_paths[s.code] if public else None,
                    "sha256": img.sha256 if public else None,
                    "size_bytes": img.size,
                    "shape_x": img.shape[0],
                    "shape_y": img.shape[1],
                    "shape_z": img.shape[2],
                    "voxel_x_mm": img.voxel_mm[0],
                    "voxel_y_mm": img.voxel_mm[1],
                    "voxel_z_mm": img.voxel_mm[2],
                    "dtype": img.dtype,
                    "defaced": img.defaced,
                    "created_rev_id": img.created_rev_id,
                }
            )
    return rows


def mask_rows(view: ReleaseView, masks) -> list[dict]:
    """``masks``: :class:`~.bids.MaskFile` of every mask file the BIDS archive holds."""
    pub = {s.code: s.public_scan for s in view.scans}
    rows = []
    for m in sorted(masks, key=lambda m: m.path):
        size, sha = m.resolved()
        rows.append(
            {
                "scan": pub[m.scan],
                "lesion": m.lesion,
                "lesion_desc": m.desc,
                "space": view.spec.standard.space,
                "path": m.path,
                "size_bytes": size,
                "sha256": sha,
            }
        )
    return rows


def scanner_rows(view: ReleaseView) -> list[dict]:
    sites = {c.code: c.site for c in view.cohorts}
    seen: dict[tuple, dict] = {}
    for s in view.scans:
        if s.scanner is None:
            continue
        sc = s.scanner
        key = (s.cohort, sc.manufacturer, sc.model, sc.field_strength_t)
        row = seen.setdefault(
            key,
            {
                "cohort": s.cohort,
                "site": sites.get(s.cohort),
                "manufacturer": sc.manufacturer,
                "model": sc.model,
                "field_strength_t": sc.field_strength_t,
                "voxel_x_mm": sc.voxel_mm[0],
                "voxel_y_mm": sc.voxel_mm[1],
                "voxel_z_mm": sc.voxel_mm[2],
                "n_scans": 0,
            },
        )
        row["n_scans"] += 1
    return [seen[k] for k in sorted(seen)]


def issue_rows(view: ReleaseView) -> list[dict]:
    pub = {s.code: s.public_scan for s in view.scans}
    return [
        {
            "number": i.number,
            "scan": pub.get(i.scan),
            "file_kind": i.file_kind,
            "title": view.public_text(i.title),
            "body": view.public_text(i.body),
            "url": view.public_text(i.url),
            "status": i.status,
            "opened_at": i.opened_at,
            "closed_at": i.closed_at,
            "resolved_by": list(i.resolved_by),
        }
        for i in view.issues
    ]


def revision_rows(view: ReleaseView) -> list[dict]:
    pub = {s.code: s.public_scan for s in view.scans}
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "issue": r.issue,
            "scan": pub.get(r.scan) if r.scan else None,
            "author": r.author,
            "reason": view.public_text(r.reason),
            "created_at": r.created_at,
        }
        for r in view.revisions
    ]


def release_rows(view: ReleaseView) -> list[dict]:
    from datetime import date

    out = []
    for r in view.releases:
        row = dict(r.__dict__)
        try:
            row["date"] = date.fromisoformat(row["date"])
        except (TypeError, ValueError):
            row["date"] = date(1970, 1, 1)  # a stored specification without a usable date (cannot happen: REL004)
        out.append(row)
    return out


def table(view: ReleaseView, name: str, bids_paths: dict[str, str] | None = None, masks=()) -> pa.Table:
    rows = {
        "scans": scan_rows,
        "lesions": lesion_rows,
        "scanners": scanner_rows,
        "issues": issue_rows,
        "revisions": revision_rows,
        "releases": release_rows,
    }
    if name == "images":
        data = image_rows(view, bids_paths or {})
    elif name == "masks":
        data = mask_rows(view, masks)
    else:
        data = rows[name](view)
    sch = schema(name, splits=view.spec.splits is not None)
    meta = {
        "atlas.table": name,
        "atlas.description": TABLE_DESCRIPTIONS[name],
        "atlas.release": view.name,
        "atlas.version": view.version,
        "atlas.schema_version": SCHEMA_VERSION,
    }
    cols = {f.name: [row.get(f.name) for row in data] for f in sch}
    return pa.table(cols, schema=sch).replace_schema_metadata(meta)


def to_bytes(t: pa.Table) -> bytes:
    """Deterministic Parquet bytes (no timestamps; ``created_by`` is the constant library version)."""
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink, compression=COMPRESSION, write_statistics=True, store_schema=True)
    return sink.getvalue().to_pybytes()


# Tables of participant data: the de-identification gate reads their column names (DEID006) and
# their free-text columns (DEID007). issues/revisions/releases are the curators' records (public
# tracker text, dates of changes), checked for native identifiers only.
PARTICIPANT_TABLES = ("scans", "lesions", "images", "masks", "scanners")
PARTICIPANT_TEXT = {
    "scans": ("stroke_type", "primary_location", "vascular_territory"),
    "lesions": ("stroke_type", "primary_location", "vascular_territory"),
}


def write_parquet(output, view: ReleaseView, gate, *, bids_paths: dict[str, str], masks=()) -> None:
    for name in TABLES:
        t = table(view, name, bids_paths, masks)
        rel = f"parquet/{name}.parquet"
        if name in PARTICIPANT_TABLES:
            text = PARTICIPANT_TEXT.get(name, ())
            gate.table(rel, name, t.column_names, t.select(list(text)).to_pylist(), text_columns=text)
        data = to_bytes(t)
        for col in t.columns:
            if pa.types.is_string(col.type):
                gate.no_native_ids(rel, "\n".join(v for v in col.to_pylist() if v))
            elif pa.types.is_list(col.type) and pa.types.is_string(col.type.value_type):
                gate.no_native_ids(rel, "\n".join(v for vs in col.to_pylist() if vs for v in vs if v))
        output.write(rel, data, archive="parquet", rev=view.revision)
    output.write_json("parquet/schema.json", json_schema(splits=view.spec.splits is not None), archive="parquet")


# -- documentation -------------------------------------------------------------------------------


def _json_type(t: pa.DataType) -> dict:
    if pa.types.is_boolean(t):
        return {"type": ["boolean", "null"]}
    if pa.types.is_integer(t):
        return {"type": ["integer", "null"]}
    if pa.types.is_floating(t):
        return {"type": ["number", "null"]}
    if pa.types.is_timestamp(t):
        return {"type": ["string", "null"], "format": "date-time"}
    if pa.types.is_date(t):
        return {"type": ["string", "null"], "format": "date"}
    if pa.types.is_list(t):
        return {"type": ["array", "null"], "items": _json_type(t.value_type)}
    return {"type": ["string", "null"]}


def json_schema(*, splits: bool = False) -> dict:
    """A JSON Schema (draft 2020-12) of every table's rows, with Arrow types, descriptions and units
    (``splits``: as a release with benchmark splits writes them)."""
    defs = {}
    for name in TABLES:
        props = {}
        for f in schema(name, splits=splits):
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            typ = _json_type(f.type)
            if not f.nullable:  # a key: never null
                typ["type"] = [t for t in typ["type"] if t != "null"]
            props[f.name] = {**typ, "description": meta["description"], "x-arrow-type": str(f.type)}
            if "unit" in meta:
                props[f.name]["x-unit"] = meta["unit"]
        defs[name] = {
            "title": f"{name}.parquet",
            "description": TABLE_DESCRIPTIONS[name],
            "type": "object",
            "properties": props,
            "required": list(props),
            "additionalProperties": False,
            "x-column-order": list(props),
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://atlas-registry/schemas/parquet.schema.json",
        "title": "atlas-registry release Parquet tables",
        "description": "One row of each table of out/parquet/<table>.parquet. Public identifiers only "
        "(sub-<label>, sub-<label>_ses-<n>). Written by atlas_registry.export.parquet.json_schema().",
        "x-schema-version": SCHEMA_VERSION,
        "$defs": defs,
    }
