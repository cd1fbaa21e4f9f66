"""The documented SQL views of the registry: ``scans``, ``lesions`` and ``release_scans``.

This module is the single source of truth for the view columns and for the SQL that computes them:
``docs/sql.md`` documents :data:`COLUMNS`, and the release exporter writes
``parquet/scans.parquet`` and ``parquet/lesions.parquet`` with exactly :data:`SCAN_COLUMNS` and
:data:`LESION_COLUMNS` (so the same queries run on the registry and, with DuckDB, on a release).

Only current rows are shown (``retired_rev_id IS NULL``). The views mean the same on SQLite and
PostgreSQL; the only dialect difference is how the ``releases`` list is aggregated (both sort the
names byte-wise and join them with ``,``). Booleans (``is_primary``, ``in_standard``) are SQL
booleans on PostgreSQL and 0/1 on SQLite: ``WHERE is_primary`` and ``WHERE is_primary = TRUE``
work on both.

Two definitions (layers) of the views exist, one per schema revision:

* :data:`JOINS` (revision ``0002_views``): joins over the normalized, versioned tables. The same
  SELECTs (:func:`source_sql`) compute the rows of the current-state tables.
* :data:`CURRENT` (revision ``0003_current_state`` on): ``scans`` and ``lesions`` read the
  current-state tables ``scan_current`` and ``lesion_current`` (:data:`TABLES`), which
  :func:`atlas_registry.facts.refresh` keeps equal to the joins (a lesion's ``releases`` is its
  scan's, read from ``scan_current`` only by queries that ask for it); ``release_scans`` joins
  ``release_scan`` and ``release`` to ``scan_current``.
"""

from __future__ import annotations

SCANS, LESIONS, RELEASE_SCANS = "scans", "lesions", "release_scans"
VIEWS = (SCANS, LESIONS, RELEASE_SCANS)

# Published release names a scan belongs to, comma separated, sorted byte-wise (NULL: none), for
# the timepoint id {tp}.
_RELEASES = {
    "sqlite": (
        "(SELECT group_concat(x.name, ',') FROM (SELECT rl.name AS name FROM release_scan rs"
        " JOIN release rl ON rl.id = rs.release_id"
        " WHERE rs.timepoint_id = {tp} AND rl.status = 'published' ORDER BY rl.name) x)"
    ),
    "postgresql": (
        "(SELECT string_agg(rl.name, ',' ORDER BY rl.name COLLATE \"C\") FROM release_scan rs"
        " JOIN release rl ON rl.id = rs.release_id"
        " WHERE rs.timepoint_id = {tp} AND rl.status = 'published')"
    ),
}

# (column, SQL expression, description). {releases} is filled in per dialect.
_SCAN_KEY = (
    ("scan", "t.code", "scan identifier cXXXXsXXXXtXX"),
    ("cohort", "c.code", "cohort cXXXX"),
    ("subject", "s.code", "subject cXXXXsXXXX"),
    ("timepoint", "t.number", "timepoint number (1 for t01)"),
)
_SCAN_FACTS = (
    ("stroke_type", "r.stroke_type", "stroke type (neuroradiologist's report)"),
    ("primary_location", "r.primary_location", "primary stroke location (report)"),
    ("primary_hemisphere", "r.primary_hemisphere", "primary stroke hemisphere: left|right|brainstem|bilateral"),
    ("vascular_territory", "r.vascular_territory", "vascular territory (report)"),
    ("pvh", "r.pvh", "periventricular hyperintensities, Fazekas 0-3"),
    ("dwmh", "r.dwmh", "deep white matter hyperintensities, Fazekas 0-3"),
    ("field_strength_t", "sc.field_strength_t", "scanner field strength in tesla"),
    ("scanner_manufacturer", "sc.manufacturer", "scanner manufacturer"),
    ("scanner_model", "sc.model", "scanner model"),
    ("voxel_x_mm", "sc.voxel_x_mm", "acquisition voxel size x (mm)"),
    ("voxel_y_mm", "sc.voxel_y_mm", "acquisition voxel size y (mm)"),
    ("voxel_z_mm", "sc.voxel_z_mm", "acquisition voxel size z (mm)"),
    ("standard_status", "t.standard_status", "standardized subset: pending|included|excluded"),
    ("exclusion_reason", "t.exclusion_reason", "why excluded: low_resolution|registration_failed|revision"),
    ("releases", "{releases}", "published releases holding the scan, comma separated, sorted (NULL: none)"),
)
_CURRENT_NATIVE_MASK = (
    "m.lesion_id = {l}.id AND m.variant = 'smooth_nii' AND m.space = 'native' AND m.retired_rev_id IS NULL"
)
_SCAN_COUNTS = (
    (
        "n_lesions",
        "(SELECT COUNT(*) FROM lesion l WHERE l.timepoint_id = t.id AND l.retired_rev_id IS NULL)",
        "number of current lesions (primary + secondary)",
    ),
    (
        "primary_volume_mm3",
        "(SELECT m.volume_mm3 FROM lesion l JOIN lesion_mask m ON "
        + _CURRENT_NATIVE_MASK.format(l="l")
        + " WHERE l.timepoint_id = t.id AND l.number = 0 AND l.retired_rev_id IS NULL)",
        "volume of the primary lesion (native smoothed NIfTI mask), mm3",
    ),
    (
        "total_volume_mm3",
        "(SELECT SUM(m.volume_mm3) FROM lesion l JOIN lesion_mask m ON "
        + _CURRENT_NATIVE_MASK.format(l="l")
        + " WHERE l.timepoint_id = t.id AND l.retired_rev_id IS NULL)",
        "sum of the lesion volumes (native smoothed NIfTI masks), mm3",
    ),
)
_LESION_OWN = (
    ("lesion", "l.number", "lesion number: 0 primary, 1.. secondary (largest first)"),
    ("is_primary", "(l.number = 0)", "true for the primary lesion"),
    ("hemisphere", "a.hemisphere", "hemisphere as annotated: left|right|other"),
    ("location", "a.location", "location as annotated: cortical|subcortical|other"),
    ("mask_hemisphere", "m.hemisphere", "hemisphere computed from the native smoothed NIfTI mask"),
    ("mask_location", "m.location", "location computed from the native smoothed NIfTI mask"),
    ("volume_mm3", "m.volume_mm3", "lesion volume of the native smoothed NIfTI mask, mm3"),
    ("voxel_count", "m.voxel_count", "voxels in the native smoothed NIfTI mask"),
)
_RELEASE_SCAN = (
    ("release", "rl.name", "release name"),
    ("version", "rl.version", "release version"),
    ("status", "rl.status", "release status: draft|built|published"),
    ("scan", "t.code", "scan identifier"),
    ("cohort", "c.code", "cohort"),
    ("in_standard", "rs.in_standard", "true if the scan is in the release's standardized subset"),
)

_SCAN_FROM = (
    "FROM timepoint t\n"
    "JOIN subject s ON s.id = t.subject_id\n"
    "JOIN cohort c ON c.id = s.cohort_id\n"
    "LEFT JOIN scanner sc ON sc.id = t.scanner_id\n"
    "LEFT JOIN scan_report r ON r.timepoint_id = t.id AND r.retired_rev_id IS NULL"
)
# FROM and WHERE of each view over the normalized tables (the JOINS layer); the timepoint is ``t``.
_FROM = {
    SCANS: _SCAN_FROM,
    LESIONS: (
        "FROM lesion l\n"
        "JOIN timepoint t ON t.id = l.timepoint_id\n"
        "JOIN subject s ON s.id = t.subject_id\n"
        "JOIN cohort c ON c.id = s.cohort_id\n"
        "LEFT JOIN scanner sc ON sc.id = t.scanner_id\n"
        "LEFT JOIN scan_report r ON r.timepoint_id = t.id AND r.retired_rev_id IS NULL\n"
        "LEFT JOIN lesion_annotation a ON a.lesion_id = l.id AND a.retired_rev_id IS NULL\n"
        "LEFT JOIN lesion_mask m ON " + _CURRENT_NATIVE_MASK.format(l="l")
    ),
    RELEASE_SCANS: (
        "FROM release_scan rs\n"
        "JOIN release rl ON rl.id = rs.release_id\n"
        "JOIN timepoint t ON t.id = rs.timepoint_id\n"
        "JOIN subject s ON s.id = t.subject_id\n"
        "JOIN cohort c ON c.id = s.cohort_id"
    ),
}
_WHERE = {LESIONS: "l.retired_rev_id IS NULL"}
# Since 0005 a withdrawn scan (``timepoint.withdrawn``) is in no view but ``release_scans`` of the
# releases that published it. The migrations before 0005 pass ``withdrawal=False`` (no such column).
_NOT_WITHDRAWN = "NOT t.withdrawn"
_SPEC = {
    SCANS: _SCAN_KEY + _SCAN_COUNTS + _SCAN_FACTS,
    LESIONS: _SCAN_KEY + _LESION_OWN + _SCAN_FACTS,
    RELEASE_SCANS: _RELEASE_SCAN,
}

#: The column names of each view, in order (the Parquet exporter's contract).
COLUMNS: dict[str, tuple[str, ...]] = {view: tuple(c for c, _, _ in spec) for view, spec in _SPEC.items()}
SCAN_COLUMNS = COLUMNS[SCANS]
LESION_COLUMNS = COLUMNS[LESIONS]
RELEASE_SCAN_COLUMNS = COLUMNS[RELEASE_SCANS]
#: One line of documentation per column of each view.
DESCRIPTIONS: dict[str, dict[str, str]] = {view: {c: d for c, _, d in spec} for view, spec in _SPEC.items()}

#: The SQL type of each view column in DuckDB (the SQL snapshot, :mod:`atlas_registry.snapshot`),
#: as the release's Parquet files type them (:mod:`atlas_registry.export.parquet`); others VARCHAR.
DUCKDB_TYPES: dict[str, str] = {
    "timepoint": "INTEGER",
    "n_lesions": "INTEGER",
    "pvh": "INTEGER",
    "dwmh": "INTEGER",
    "lesion": "INTEGER",
    "voxel_count": "BIGINT",
    "primary_volume_mm3": "DOUBLE",
    "total_volume_mm3": "DOUBLE",
    "volume_mm3": "DOUBLE",
    "field_strength_t": "DOUBLE",
    "voxel_x_mm": "DOUBLE",
    "voxel_y_mm": "DOUBLE",
    "voxel_z_mm": "DOUBLE",
    "is_primary": "BOOLEAN",
    "in_standard": "BOOLEAN",
}

#: The layers (see the module documentation).
JOINS, CURRENT = "joins", "current"
#: The current-state table behind a view, its key columns and the view columns it stores: all but
#: a lesion's ``releases``, which ``lesions`` reads from its scan's row in ``scan_current``.
TABLES = {SCANS: "scan_current", LESIONS: "lesion_current"}
KEYS: dict[str, tuple[str, ...]] = {SCANS: ("timepoint_id",), LESIONS: ("lesion_id", "timepoint_id")}
STORED: dict[str, tuple[str, ...]] = {SCANS: SCAN_COLUMNS, LESIONS: tuple(c for c in LESION_COLUMNS if c != "releases")}
_KEY_EXPR = {"timepoint_id": "t.id", "lesion_id": "l.id"}
# A column of the view on the CURRENT layer that its table does not store: the scan's. A scalar
# subquery, not a join: a query that does not ask for the column does not read timepoint_id, and
# covering indexes still answer it alone.
_FROM_SCAN = "(SELECT sc.{col} FROM scan_current sc WHERE sc.timepoint_id = o.timepoint_id)"
_RELEASE_SCAN_CURRENT = (  # membership as stored with the release (scan code and cohort since 0005)
    "SELECT rl.name AS release, rl.version AS version, rl.status AS status, rs.scan AS scan, rs.cohort AS cohort,"
    " rs.in_standard AS in_standard\n"
    "FROM release_scan rs\n"
    "JOIN release rl ON rl.id = rs.release_id"
)
_RELEASE_SCAN_CURRENT_0003 = (  # 0003-0004: membership joined to scan_current (scan code and cohort)
    "SELECT rl.name AS release, rl.version AS version, rl.status AS status, sc.scan AS scan, sc.cohort AS cohort,"
    " rs.in_standard AS in_standard\n"
    "FROM release_scan rs\n"
    "JOIN release rl ON rl.id = rs.release_id\n"
    "JOIN scan_current sc ON sc.timepoint_id = rs.timepoint_id"
)


def _dialect(name: str) -> str:
    if name not in _RELEASES:
        raise ValueError(f"no view definitions for dialect {name!r}")
    return name


def releases_sql(dialect: str, timepoint_id: str) -> str:
    """The ``releases`` column of the timepoint whose id is the SQL expression ``timepoint_id``."""
    return _RELEASES[_dialect(dialect)].format(tp=timepoint_id)


def source_sql(
    view: str, dialect: str, *, stored: bool = False, where: str | None = None, withdrawal: bool = True
) -> str:
    """The SELECT that computes ``view`` from the normalized tables on ``dialect`` (``sqlite`` |
    ``postgresql``): the view itself on the JOINS layer, or (``stored``) the rows of its
    current-state table: the key columns :data:`KEYS`, then the columns :data:`STORED`. ``where``:
    an extra condition, on the timepoint as ``t``; ``withdrawal``: leave withdrawn scans out (the
    schema since 0005)."""
    rel = releases_sql(dialect, "t.id")
    exprs = [f"{_KEY_EXPR[k]} AS {k}" for k in KEYS[view]] if stored else []
    exprs += [
        f"{expr.format(releases=rel)} AS {col}" for col, expr, _ in _SPEC[view] if not stored or col in STORED[view]
    ]
    conds = [
        c for c in (_WHERE.get(view), _NOT_WITHDRAWN if withdrawal and view != RELEASE_SCANS else None, where) if c
    ]
    cols = ",\n".join(f"  {e}" for e in exprs)
    return f"SELECT\n{cols}\n{_FROM[view]}" + (f"\nWHERE {' AND '.join(conds)}" if conds else "")


def select_sql(view: str, dialect: str, layer: str = CURRENT, *, withdrawal: bool = True) -> str:
    """The SELECT that defines ``view`` on ``dialect`` in ``layer`` (``withdrawal``: as since 0005)."""
    if layer == JOINS:
        return source_sql(view, dialect, withdrawal=withdrawal)
    if layer != CURRENT:
        raise ValueError(f"no view layer {layer!r}")
    _dialect(dialect)
    if view == RELEASE_SCANS:
        return _RELEASE_SCAN_CURRENT if withdrawal else _RELEASE_SCAN_CURRENT_0003
    cols = ",\n".join(f"  {'o.' + c if c in STORED[view] else _FROM_SCAN.format(col=c)} AS {c}" for c in COLUMNS[view])
    return f"SELECT\n{cols}\nFROM {TABLES[view]} o"


def create_statements(dialect: str, layer: str = CURRENT, *, withdrawal: bool = True) -> list[str]:
    """``CREATE VIEW`` statements for every view (drop them first with :func:`drop_statements`)."""
    return [f"CREATE VIEW {view} AS\n{select_sql(view, dialect, layer, withdrawal=withdrawal)}" for view in VIEWS]


def drop_statements(dialect: str) -> list[str]:
    _dialect(dialect)
    return [f"DROP VIEW IF EXISTS {view}" for view in reversed(VIEWS)]


def install(conn, layer: str = JOINS, *, withdrawal: bool = True) -> None:
    """(Re)create every view of ``layer`` on a SQLAlchemy connection (used by the migrations:
    ``0002_views`` installs the JOINS layer, ``0003_current_state`` the CURRENT one)."""
    name = conn.dialect.name
    for stmt in drop_statements(name) + create_statements(name, layer, withdrawal=withdrawal):
        conn.exec_driver_sql(stmt)
