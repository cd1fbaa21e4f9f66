"""A metadata-only bulk loader: fills a registry with N synthetic scans, fast (for benchmarks and tests).

No images are written: ``stored_object`` rows carry made-up hashes and every lesion has one native
smoothed NIfTI mask row (volume, computed hemisphere and location) but no file. Distributions
follow the ATLAS R1.1 data descriptor: cohort sizes and single/multiple lesion rates (Table 1),
lesion location x hemisphere per cohort (Table 2), log-normal volumes with the paper's mean and SD
(clipped to 10 mm3 .. 2.838e5 mm3), Fazekas PVH/DWMH, stroke types, vascular territories, 1.5 T
cohorts excluded from the standardized subset and ~16 % registration failures elsewhere, and three
releases (``R1.0`` and ``R1.1`` published, ``R2.0`` draft).

Rows go in with ``executemany`` (SQLite) or ``COPY ... FROM STDIN`` (PostgreSQL) in one
transaction, with explicit ids. Large N spreads scans over several copies of the 11 cohort
profiles so that subject numbers stay within ``sXXXX``.

The loader returns a :class:`BulkPlan`: the generated values as arrays, so that tests can compute
expected answers without reading them back through the code they test.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from .config import Workspace
from .errors import AtlasError

# Table 1: scans, single left/right/other, multiple, per cohort c0001..c0011.
TABLE1 = np.array(
    [
        [6, 3, 2, 0, 1],
        [25, 6, 12, 1, 6],
        [55, 14, 19, 0, 22],
        [34, 7, 3, 1, 23],
        [30, 9, 3, 6, 12],
        [12, 4, 1, 2, 5],
        [36, 9, 9, 0, 18],
        [32, 8, 11, 0, 13],
        [12, 8, 0, 0, 4],
        [47, 9, 10, 7, 21],
        [15, 1, 11, 0, 3],
    ],
    dtype=float,
)
# Table 2: cortical L/R, subcortical L/R, other, per cohort.
TABLE2 = np.array(
    [
        [2, 2, 2, 1, 0],
        [1, 7, 14, 11, 4],
        [3, 0, 38, 44, 0],
        [7, 6, 31, 32, 7],
        [9, 1, 20, 14, 7],
        [3, 2, 8, 3, 3],
        [8, 10, 28, 18, 4],
        [6, 13, 20, 13, 1],
        [5, 3, 12, 2, 0],
        [11, 8, 21, 24, 13],
        [0, 5, 3, 10, 1],
    ],
    dtype=float,
)
# Lesion categories (location, hemisphere) in Table 2's column order.
CATEGORIES = (
    ("cortical", "left"),
    ("cortical", "right"),
    ("subcortical", "left"),
    ("subcortical", "right"),
    ("other", "other"),
)
VOLUME_MEAN, VOLUME_SD, VOLUME_MIN, VOLUME_MAX = 2.128e4, 3.898e4, 10.0, 2.838e5
STROKE_TYPES = ("ischemic", "hemorrhagic", "embolic", "lacunar", "unknown")
STROKE_P = (0.55, 0.12, 0.18, 0.10, 0.05)
TERRITORIES = {
    "cortical": ("MCA", "ACA", "PCA", "watershed"),
    "subcortical": ("MCA", "lenticulostriate", "anterior choroidal", "PCA"),
    "other": ("basilar", "vertebral", "PCA"),
}
PLACES = {
    "cortical": ("frontal", "parietal", "temporal", "occipital", "insula"),
    "subcortical": ("basal ganglia", "thalamus", "internal capsule", "corona radiata"),
    "other": ("brainstem", "cerebellum"),
}
FAZEKAS_P = (0.25, 0.35, 0.25, 0.15)
MANUFACTURERS = (("Siemens", "Trio"), ("GE", "Signa HDxt"), ("Philips", "Achieva"), ("Siemens", "Prisma"))
RELEASES = (("R1.0", "1.0.0", "published", 0.75), ("R1.1", "1.1.0", "published", 1.0), ("R2.0", "2.0.0", "draft", 1.0))
MAX_SUBJECTS_PER_COHORT = 9000
SECOND_TIMEPOINT = 0.04
REGISTRATION_FAILURE = 0.16
SWAPPED_PRIMARY = 0.04
MASK_DISAGREES = 0.03
_NOW = datetime(2026, 1, 15, tzinfo=UTC)


@dataclass
class BulkPlan:
    """What was loaded, scan by scan and lesion by lesion (arrays of equal length per level)."""

    seed: int
    cohort_codes: list[str]
    scan_codes: list[str]
    scan_cohort: np.ndarray  # index into cohort_codes
    scan_standard: np.ndarray  # 'included' | 'excluded'
    lesion_scan: np.ndarray  # index into scan_codes
    lesion_number: np.ndarray
    lesion_hemisphere: np.ndarray
    lesion_location: np.ndarray
    lesion_volume: np.ndarray
    release_scans: dict[str, np.ndarray] = field(default_factory=dict)  # release -> scan indices

    @property
    def n_scans(self) -> int:
        return len(self.scan_codes)

    @property
    def n_lesions(self) -> int:
        return len(self.lesion_scan)


def _round_alloc(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` in proportion to ``weights`` (largest remainder, deterministic)."""
    raw = total * weights / weights.sum()
    out = np.floor(raw).astype(int)
    out[np.argsort(-(raw - out), kind="stable")[: total - out.sum()]] += 1
    return out


def _lognormal(rng: np.random.Generator, n: int) -> np.ndarray:
    sigma2 = math.log(1 + (VOLUME_SD / VOLUME_MEAN) ** 2)
    mu = math.log(VOLUME_MEAN) - sigma2 / 2
    return np.clip(rng.lognormal(mu, math.sqrt(sigma2), n), VOLUME_MIN, VOLUME_MAX)


def plan(n_scans: int, n_lesions: int | None = None, seed: int = 0) -> tuple[BulkPlan, dict]:
    """Generate the synthetic content: the :class:`BulkPlan` and the facts :func:`_rows` needs."""
    if n_scans < 1:
        raise AtlasError("BULK001", "n_scans must be at least 1")
    rng = np.random.default_rng(seed)
    n_groups = max(1, math.ceil(n_scans * TABLE1[:, 0].max() / TABLE1[:, 0].sum() / MAX_SUBJECTS_PER_COHORT))
    profiles = np.tile(np.arange(11), n_groups)
    cohort_codes = [f"c{i + 1:04d}" for i in range(len(profiles))]
    per_cohort = _round_alloc(n_scans, TABLE1[profiles, 0])
    scan_cohort = np.repeat(np.arange(len(profiles)), per_cohort)
    prof = profiles[scan_cohort]

    # Subjects and timepoints: a few subjects come back for a second scan.
    scan_subject, scan_tp = np.empty(n_scans, int), np.empty(n_scans, int)
    subject_codes: list[str] = []
    subject_cohort: list[int] = []
    subject_number: list[int] = []
    i = 0
    for ci, n in enumerate(per_cohort):
        n_second = int(round(n * SECOND_TIMEPOINT)) if n > 1 else 0
        n_subj = n - n_second
        firsts = len(subject_codes)
        for k in range(n_subj):
            subject_codes.append(f"{cohort_codes[ci]}s{k + 1:04d}")
            subject_cohort.append(ci)
            subject_number.append(k + 1)
        back = rng.choice(n_subj, n_second, replace=False) if n_second else np.empty(0, int)
        for k in range(n_subj):
            scan_subject[i], scan_tp[i] = firsts + k, 1
            i += 1
        for k in sorted(back):
            scan_subject[i], scan_tp[i] = firsts + k, 2
            i += 1
    scan_codes = [f"{subject_codes[s]}t{t:02d}" for s, t in zip(scan_subject, scan_tp, strict=False)]

    # Lesion counts: single or multiple per Table 1; the total matches n_lesions when given.
    p_multi = TABLE1[prof, 4] / TABLE1[prof, 0]
    multi = rng.random(n_scans) < p_multi
    counts = np.where(multi, 2, 1)
    if n_lesions is None:
        extra = rng.poisson(0.7, n_scans) * multi  # R1.1: 521 lesions over 304 scans
    else:
        if n_lesions < n_scans:
            raise AtlasError("BULK001", "n_lesions must be at least n_scans (every scan has a lesion)")
        budget = n_lesions - n_scans
        idx = np.flatnonzero(multi)
        if budget < len(idx):  # not enough lesions for that many multiple-lesion scans
            multi[idx[budget:]] = False
            counts = np.where(multi, 2, 1)
            idx = idx[:budget]
        extra = np.zeros(n_scans, int)
        if len(idx):
            extra[idx] = rng.multinomial(budget - len(idx), np.full(len(idx), 1 / len(idx)))
    counts = counts + extra
    n_les = int(counts.sum())
    lesion_scan = np.repeat(np.arange(n_scans), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lesion_rank = np.arange(n_les) - first[lesion_scan]

    # Categories: single lesions by Table 1's hemisphere then Table 2's location; others by Table 2.
    cat = np.empty(n_les, int)
    t2 = TABLE2 + 0.5  # every category possible in every cohort
    for p in range(11):
        sel = prof[lesion_scan] == p
        probs = t2[p] / t2[p].sum()
        cat[sel] = rng.choice(5, sel.sum(), p=probs)
        single = sel & (counts[lesion_scan] == 1)
        hemi_p = (TABLE1[p, 1:4] + 0.2) / (TABLE1[p, 1:4] + 0.2).sum()
        hemi = rng.choice(3, single.sum(), p=hemi_p)  # 0 left, 1 right, 2 other
        cort = rng.random(single.sum()) < np.where(
            hemi == 0, t2[p, 0] / (t2[p, 0] + t2[p, 2]), t2[p, 1] / (t2[p, 1] + t2[p, 3])
        )
        cat[single] = np.where(hemi == 2, 4, np.where(cort, hemi, hemi + 2))
    location = np.array([CATEGORIES[c][0] for c in range(5)])[cat]
    hemisphere = np.array([CATEGORIES[c][1] for c in range(5)])[cat]

    # Volumes: largest first; in a few multi-lesion scans the neuroradiologist chose lesion 1.
    vol = _lognormal(rng, n_les)
    order = np.lexsort((-vol, lesion_scan))
    vol = vol[order]
    number = lesion_rank.copy()
    swapped = multi & (rng.random(n_scans) < SWAPPED_PRIMARY)
    sw = swapped[lesion_scan] & (lesion_rank < 2)
    number[sw] = 1 - lesion_rank[sw]
    fine = np.isin(prof, (0, 1))
    vox_vol = np.where(fine, 0.9 * 0.9 * 3.0, 1.0)[lesion_scan]
    voxels = np.maximum(1, np.round(vol / vox_vol)).astype(int)
    vol = voxels * vox_vol
    disagree = rng.random(n_les) < MASK_DISAGREES
    mcat = np.where(disagree, rng.integers(0, 5, n_les), cat)

    # Scan-level facts (from the primary lesion).
    prim = np.flatnonzero(number == 0)
    prim_cat = np.empty(n_scans, int)
    prim_cat[lesion_scan[prim]] = cat[prim]
    standard = np.where(fine, "excluded", np.where(rng.random(n_scans) < REGISTRATION_FAILURE, "excluded", "included"))
    reason = np.where(fine, "low_resolution", np.where(standard == "excluded", "registration_failed", None))  # type: ignore[call-overload]  # None: an object scalar

    bp = BulkPlan(
        seed=seed,
        cohort_codes=cohort_codes,
        scan_codes=scan_codes,
        scan_cohort=scan_cohort,
        scan_standard=standard,
        lesion_scan=lesion_scan,
        lesion_number=number,
        lesion_hemisphere=hemisphere,
        lesion_location=location,
        lesion_volume=vol,
    )
    for name, _v, _s, frac in RELEASES:
        keep = (scan_tp == 1) & (rng.random(n_scans) < frac) if frac < 1 else np.ones(n_scans, bool)
        bp.release_scans[name] = np.flatnonzero(keep)

    facts = dict(
        profiles=profiles,
        scan_subject=scan_subject,
        scan_tp=scan_tp,
        subject_codes=subject_codes,
        subject_cohort=subject_cohort,
        subject_number=subject_number,
        prim_cat=prim_cat,
        reason=reason,
        swapped=swapped,
        voxels=voxels,
        mcat=mcat,
        rng=rng,
    )
    return bp, facts


def _rows(bp: BulkPlan, f: dict, ids: dict[str, int], dialect: str) -> list[tuple[str, tuple[str, ...], list]]:
    """The rows of every table, in insertion order (foreign keys point backwards)."""
    rng: np.random.Generator = f["rng"]
    boolean = (lambda b: "t" if b else "f") if dialect == "postgresql" else int
    stamp = "2026-01-15 00:00:00+00" if dialect == "postgresql" else "2026-01-15 00:00:00.000000"
    rev = ids["revision"]
    cohort_id = {i: ids["cohort"] + i for i in range(len(bp.cohort_codes))}
    tables: list[tuple[str, tuple[str, ...], list]] = []
    tables.append(
        (
            "revision",
            ("id", "kind", "author", "reason", "created_at"),
            [(rev, "ingest", "bulkload", f"synthetic metadata-only bulk load (seed {bp.seed})", stamp)],
        )
    )
    tables.append(
        (
            "cohort",
            ("id", "code", "site"),
            [(cohort_id[i], c, f"synthetic site {i + 1}") for i, c in enumerate(bp.cohort_codes)],
        )
    )
    scanner_rows = []
    for i, p in enumerate(f["profiles"]):
        man, model = MANUFACTURERS[i % len(MANUFACTURERS)]
        fine = p in (0, 1)
        scanner_rows.append(
            (
                ids["scanner"] + i,
                cohort_id[i],
                man,
                model,
                1.5 if fine else 3.0,
                0.9 if fine else 1.0,
                0.9 if fine else 1.0,
                3.0 if fine else 1.0,
            )
        )
    tables.append(
        (
            "scanner",
            ("id", "cohort_id", "manufacturer", "model", "field_strength_t", "voxel_x_mm", "voxel_y_mm", "voxel_z_mm"),
            scanner_rows,
        )
    )
    tables.append(
        (
            "subject",
            ("id", "cohort_id", "code", "number"),
            [
                (ids["subject"] + k, cohort_id[c], code, n)
                for k, (code, c, n) in enumerate(
                    zip(f["subject_codes"], f["subject_cohort"], f["subject_number"], strict=False)
                )
            ],
        )
    )
    tp_id = ids["timepoint"] + np.arange(bp.n_scans)
    tables.append(
        (
            "timepoint",
            (
                "id",
                "subject_id",
                "scanner_id",
                "code",
                "number",
                "standard_status",
                "exclusion_reason",
                "primary_chosen_by_neuroradiologist",
            ),
            [
                (
                    int(tp_id[i]),
                    ids["subject"] + int(f["scan_subject"][i]),
                    ids["scanner"] + int(bp.scan_cohort[i]),
                    bp.scan_codes[i],
                    int(f["scan_tp"][i]),
                    str(bp.scan_standard[i]),
                    f["reason"][i],
                    boolean(bool(f["swapped"][i])),
                )
                for i in range(bp.n_scans)
            ],
        )
    )

    # Neuroradiologist's report.
    prim_cat = f["prim_cat"]
    pvh = rng.choice(4, bp.n_scans, p=FAZEKAS_P)
    dwmh = np.clip(pvh + rng.integers(-1, 2, bp.n_scans), 0, 3)
    stroke = rng.choice(len(STROKE_TYPES), bp.n_scans, p=STROKE_P)
    pick = rng.random((bp.n_scans, 3))
    report_rows = []
    for i in range(bp.n_scans):
        loc, hemi = CATEGORIES[prim_cat[i]]
        terr, places = TERRITORIES[loc], PLACES[loc]
        ph = "brainstem" if hemi == "other" else ("bilateral" if pick[i, 2] < 0.03 else hemi)
        report_rows.append(
            (
                ids["scan_report"] + i,
                int(tp_id[i]),
                STROKE_TYPES[stroke[i]],
                places[int(pick[i, 0] * len(places))],
                ph,
                terr[int(pick[i, 1] * len(terr))],
                int(pvh[i]),
                int(dwmh[i]),
                rev,
            )
        )
    tables.append(
        (
            "scan_report",
            (
                "id",
                "timepoint_id",
                "stroke_type",
                "primary_location",
                "primary_hemisphere",
                "vascular_territory",
                "pvh",
                "dwmh",
                "created_rev_id",
            ),
            report_rows,
        )
    )

    n = bp.n_lesions
    les_id = ids["lesion"] + np.arange(n)
    sha = rng.integers(0, 2**63 - 1, size=(n, 4), dtype=np.int64)
    shas = sorted("{:016x}{:016x}{:016x}{:016x}".format(*tuple(r)) for r in sha.tolist())  # sorted: index appends
    tables.append(
        (
            "stored_object",
            ("sha256", "size_bytes", "media_type", "created_at"),
            [(s, 0, "application/gzip", stamp) for s in shas],
        )
    )
    les_tp = tp_id[bp.lesion_scan]
    tables.append(
        (
            "lesion",
            ("id", "timepoint_id", "number", "created_rev_id"),
            list(zip(les_id.tolist(), les_tp.tolist(), bp.lesion_number.tolist(), [rev] * n, strict=False)),
        )
    )
    tables.append(
        (
            "lesion_annotation",
            ("id", "lesion_id", "hemisphere", "location", "tracer", "created_rev_id"),
            list(
                zip(
                    (ids["lesion_annotation"] + np.arange(n)).tolist(),
                    les_id.tolist(),
                    bp.lesion_hemisphere.tolist(),
                    bp.lesion_location.tolist(),
                    [f"rater-{k:02d}" for k in rng.integers(1, 12, n)],
                    [rev] * n,
                    strict=False,
                )
            ),
        )
    )
    mloc = np.array([c[0] for c in CATEGORIES])[f["mcat"]].tolist()
    mhemi = np.array([c[1] for c in CATEGORIES])[f["mcat"]].tolist()
    sign = np.where(np.array(mhemi) == "left", -1.0, np.where(np.array(mhemi) == "right", 1.0, 0.0))
    cx = (sign * rng.uniform(10, 60, n)).round(2).tolist()
    cy = rng.uniform(-90, 60, n).round(2).tolist()
    cz = rng.uniform(-40, 60, n).round(2).tolist()
    names = [
        f"{bp.scan_codes[s]}_LesionSmooth{'' if k == 0 else f'_{k}'}.nii.gz"
        for s, k in zip(bp.lesion_scan.tolist(), bp.lesion_number.tolist(), strict=False)
    ]
    tables.append(
        (
            "lesion_mask",
            (
                "id",
                "lesion_id",
                "variant",
                "space",
                "sha256",
                "source_name",
                "voxel_count",
                "volume_mm3",
                "centroid_x_mm",
                "centroid_y_mm",
                "centroid_z_mm",
                "n_components",
                "hemisphere",
                "location",
                "created_rev_id",
            ),
            list(
                zip(
                    (ids["lesion_mask"] + np.arange(n)).tolist(),
                    les_id.tolist(),
                    ["smooth_nii"] * n,
                    ["native"] * n,
                    shas,
                    names,
                    f["voxels"].tolist(),
                    bp.lesion_volume.round(4).tolist(),
                    cx,
                    cy,
                    cz,
                    [1] * n,
                    mhemi,
                    mloc,
                    [rev] * n,
                    strict=False,
                )
            ),
        )
    )

    rel_rows, rs_rows = [], []
    in_std = bp.scan_standard == "included"
    k = ids["release_scan"]
    for j, (name, version, status, _frac) in enumerate(RELEASES):
        rid = ids["release"] + j
        rel_rows.append(
            (
                rid,
                name,
                version,
                status,
                json.dumps({"name": name, "synthetic": True}),
                stamp if status == "published" else None,
            )
        )
        for s in bp.release_scans[name].tolist():
            rs_rows.append(
                (
                    k,
                    rid,
                    int(tp_id[s]),
                    boolean(bool(in_std[s])),
                    bp.scan_codes[s],
                    bp.cohort_codes[int(bp.scan_cohort[s])],
                )
            )
            k += 1
    tables.append(("release", ("id", "name", "version", "status", "spec", "published_at"), rel_rows))
    tables.append(("release_scan", ("id", "release_id", "timepoint_id", "in_standard", "scan", "cohort"), rs_rows))
    return tables


_ID_TABLES = (
    "revision",
    "cohort",
    "scanner",
    "subject",
    "timepoint",
    "scan_report",
    "lesion",
    "lesion_annotation",
    "lesion_mask",
    "release",
    "release_scan",
)


def _pg_text(v) -> str:
    if v is None:
        return "\\N"
    return str(v)


def _copy_pg(cur, table: str, cols: tuple[str, ...], rows: list) -> None:
    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for start in range(0, len(rows), 50_000):
            chunk = rows[start : start + 50_000]
            cp.write("".join("\t".join(map(_pg_text, r)) + "\n" for r in chunk))


def _skip_fk_triggers(raw) -> None:
    """PostgreSQL: skip the per-row foreign-key triggers for this transaction when the role may
    (superuser); the rows reference each other by construction. Otherwise load with the checks."""
    cur = raw.cursor()
    cur.execute("SAVEPOINT bulk_fk")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
    except Exception:  # noqa: BLE001 - insufficient privilege: keep the checks
        cur.execute("ROLLBACK TO SAVEPOINT bulk_fk")
    cur.execute("RELEASE SAVEPOINT bulk_fk")


def _write(raw, bp: BulkPlan, gen: dict, dialect: str) -> list[str]:
    """Insert every row through a cursor of the DBAPI connection ``raw`` (in its transaction), then
    planner statistics of those tables (the refresh that follows joins them). The tables loaded."""
    cur = raw.cursor()
    cur.execute("SELECT COUNT(*) FROM timepoint")
    if cur.fetchone()[0]:
        raise AtlasError("BULK002", "the registry already holds scans; bulk load needs an empty registry")
    cur.execute("SELECT code FROM cohort")
    if cur.fetchall():
        raise AtlasError("BULK002", "the registry already holds cohorts; bulk load needs an empty registry")
    ids = {}
    for t in _ID_TABLES:
        cur.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {t}")
        ids[t] = int(cur.fetchone()[0])
    tables = _rows(bp, gen, ids, dialect)
    if dialect == "sqlite":  # a large page cache while loading: index inserts stay in memory
        cur.execute("PRAGMA cache_size=-262144")
    else:
        _skip_fk_triggers(raw)
    for table, cols, rows in tables:
        if dialect == "postgresql":
            _copy_pg(cur, table, cols, rows)
        else:
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows)
    if dialect == "postgresql":
        for t in _ID_TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT MAX(id) FROM {t}))")
    for table, _, _ in tables:
        cur.execute(f"ANALYZE {table}")
    cur.close()
    return [t for t, _, _ in tables]


def _analyze(eng, tables) -> None:
    """Planner statistics, so that the first queries get good plans. PostgreSQL: ``VACUUM
    (ANALYZE)``, whose visibility map lets covering indexes answer alone (index-only scans)."""
    if eng.dialect.name == "postgresql":
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for t in tables:
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {t}")
    else:
        with eng.begin() as conn:
            for t in tables:
                conn.exec_driver_sql(f"ANALYZE {t}")


def load(ws: Workspace, n_scans: int, n_lesions: int | None = None, seed: int = 0, *, analyze: bool = True) -> BulkPlan:
    """Fill the registry of ``ws`` (already at the newest schema, holding no scans) with synthetic
    metadata, current-state tables included (:func:`atlas_registry.facts.refresh`). Returns what
    was loaded. All rows are written in one transaction. ``analyze``: planner statistics afterwards
    (:func:`_analyze`)."""
    from . import db, facts, views

    bp, gen = plan(n_scans, n_lesions, seed)
    eng = db.engine(ws)
    dialect = eng.dialect.name
    with eng.connect() as conn:
        raw = conn.connection  # the DBAPI connection under ``conn``: one transaction for both
        try:
            with conn.begin():
                loaded = _write(raw, bp, gen, dialect)
                facts.refresh(conn)
                conn.exec_driver_sql(db.BUMP_COUNTER)
        finally:
            if dialect == "sqlite":
                raw.cursor().execute("PRAGMA cache_size=-2000")
    if analyze:
        _analyze(eng, loaded + list(views.TABLES.values()))
    from . import snapshot

    snapshot.after_commit(ws)
    return bp
