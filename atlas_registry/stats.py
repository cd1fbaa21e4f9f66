"""Statistics of the registry as the data descriptor reports them: Tables 1 and 2, lesion volumes
and the probabilistic overlap map of the primary lesions.

Tables and volumes are SQL over the ``scans`` and ``lesions`` views (:mod:`atlas_registry.views`).
The same SQL runs on the registry (read-only connection) or, with DuckDB, on a release's Parquet
files ``<release dir>/parquet/scans.parquet`` and ``lesions.parquet``, which carry the view
columns and hold exactly the release's scans.

Definitions (the paper's, made exact):

* Table 1, per cohort: ``scans``; scans with exactly one lesion by that lesion's annotated
  hemisphere (``single_left``, ``single_right``, ``single_other`` = anything but left/right);
  ``multiple`` = scans with two lesions or more. A scan without lesions counts only in ``scans``.
* Table 2, per cohort: every lesion by annotated location x hemisphere (cortical/subcortical x
  left/right); any other combination (location ``other``, hemisphere ``other``) is ``other``.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import query
from .config import Workspace
from .errors import AtlasError

TABLE1_COLUMNS = ("cohort", "scans", "single_left", "single_right", "single_other", "multiple")
TABLE2_COLUMNS = ("cohort", "cortical_left", "cortical_right", "subcortical_left", "subcortical_right", "other")

TABLE1_SQL = """
WITH per_scan AS (
  SELECT scan, COUNT(*) AS n, MAX(hemisphere) AS hemisphere FROM lesions GROUP BY scan
)
SELECT s.cohort,
  COUNT(*) AS scans,
  SUM(CASE WHEN p.n = 1 AND p.hemisphere = 'left' THEN 1 ELSE 0 END) AS single_left,
  SUM(CASE WHEN p.n = 1 AND p.hemisphere = 'right' THEN 1 ELSE 0 END) AS single_right,
  SUM(CASE WHEN p.n = 1 AND COALESCE(p.hemisphere, '') NOT IN ('left', 'right') THEN 1 ELSE 0 END) AS single_other,
  SUM(CASE WHEN p.n >= 2 THEN 1 ELSE 0 END) AS multiple
FROM scans s LEFT JOIN per_scan p ON p.scan = s.scan
GROUP BY s.cohort
"""

TABLE2_SQL = """
SELECT cohort,
  SUM(CASE WHEN location = 'cortical' AND hemisphere = 'left' THEN 1 ELSE 0 END) AS cortical_left,
  SUM(CASE WHEN location = 'cortical' AND hemisphere = 'right' THEN 1 ELSE 0 END) AS cortical_right,
  SUM(CASE WHEN location = 'subcortical' AND hemisphere = 'left' THEN 1 ELSE 0 END) AS subcortical_left,
  SUM(CASE WHEN location = 'subcortical' AND hemisphere = 'right' THEN 1 ELSE 0 END) AS subcortical_right,
  SUM(CASE WHEN location IN ('cortical', 'subcortical') AND hemisphere IN ('left', 'right')
           THEN 0 ELSE 1 END) AS other
FROM lesions
GROUP BY cohort
"""

VOLUMES_SQL = "SELECT cohort, lesion, volume_mm3 FROM lesions WHERE volume_mm3 IS NOT NULL"

# The paper's figures (Liew et al. 2018), printed beside ours.
PAPER_VOLUME = {"mean": 2.128e4, "sd": 3.898e4, "min": 10.0, "max": 2.838e5}
STANDARD_SPACE = "MNI152NLin2009aSym"


def fetch(ws: Workspace, sql: str, release: str | Path | None = None) -> list[tuple]:
    """Rows of ``sql`` (written on the views) from the registry's SQL snapshot, or from the Parquet
    files of a release the registry knows (or of a release folder given as a path)
    (:func:`atlas_registry.query.fetch`: the same DuckDB)."""
    try:
        return query.fetch(ws, sql, release, required=("scans", "lesions"))
    except AtlasError as e:
        if release is None or e.code != "SQL009":
            raise
        raise AtlasError("STAT001", f"release {release!r}: {e}") from None


def paper_tables(ws: Workspace, release: str | Path | None = None) -> dict:
    """Tables 1 and 2 of the data descriptor: one row per cohort (no totals)."""
    t1 = {r[0]: [int(v or 0) for v in r[1:]] for r in fetch(ws, TABLE1_SQL, release)}
    t2 = {r[0]: [int(v or 0) for v in r[1:]] for r in fetch(ws, TABLE2_SQL, release)}
    cohorts = sorted(set(t1) | set(t2))
    zero1, zero2 = [0] * (len(TABLE1_COLUMNS) - 1), [0] * (len(TABLE2_COLUMNS) - 1)
    return {
        "table1": [dict(zip(TABLE1_COLUMNS, [c, *t1.get(c, zero1)], strict=False)) for c in cohorts],
        "table2": [dict(zip(TABLE2_COLUMNS, [c, *t2.get(c, zero2)], strict=False)) for c in cohorts],
    }


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    return [fmt(header), fmt(["-" * w for w in widths]), *[fmt(r) for r in rows]]


def format_tables(tables: dict) -> str:
    """Tables 1 and 2 laid out as the paper does: per cohort, then Total and % rows."""
    t1, t2 = tables["table1"], tables["table2"]
    tot1 = [sum(r[k] for r in t1) for k in TABLE1_COLUMNS[1:]]
    rows1 = [[r["cohort"], *(str(r[k]) for k in TABLE1_COLUMNS[1:])] for r in t1]
    rows1 += [["Total", *map(str, tot1)], ["% Total Subjects", "", *(_pct(v, tot1[0]) for v in tot1[1:])]]
    tot2 = [sum(r[k] for r in t2) for k in TABLE2_COLUMNS[1:]]
    n_les = sum(tot2)
    rows2 = [[r["cohort"], *(str(r[k]) for k in TABLE2_COLUMNS[1:])] for r in t2]
    rows2 += [["Total", *map(str, tot2)], ["% Total Lesions", *(_pct(v, n_les) for v in tot2)]]
    out = [f"Table 1. Scans with one lesion (left/right/other) and with multiple lesions (n={tot1[0]})", ""]
    out += _grid(["Cohort", "Scans", "One: Left", "One: Right", "One: Other", "Multiple"], rows1)
    out += ["", f"Table 2. Lesions by location and hemisphere, primary and secondary (n={n_les})", ""]
    out += _grid(["Cohort", "Cortical L", "Cortical R", "Subcortical L", "Subcortical R", "Other"], rows2)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Volumes


def _summary(values) -> dict:
    import numpy as np

    v = np.asarray(values, dtype=float)
    if not len(v):
        return {"n": 0, "mean": None, "sd": None, "min": None, "max": None}
    return {
        "n": int(len(v)),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
        "min": float(v.min()),
        "max": float(v.max()),
    }


def volume_stats(ws: Workspace, release: str | Path | None = None) -> dict:
    """Lesion volume (native smoothed NIfTI mask, mm3): mean, sample SD, min, max; overall and per
    cohort; for primary lesions and for all lesions."""
    from collections import defaultdict

    rows = fetch(ws, VOLUMES_SQL, release)
    groups: dict[str, dict[str, list[float]]] = {"primary": defaultdict(list), "all": defaultdict(list)}
    for cohort, number, vol in rows:
        groups["all"][cohort].append(vol)
        if number == 0:
            groups["primary"][cohort].append(vol)
    out: dict[str, dict] = {}
    for kind, by in groups.items():
        out[kind] = {
            "overall": _summary([v for vs in by.values() for v in vs]),
            "cohorts": [{"cohort": c, **_summary(by[c])} for c in sorted(by)],
        }
    out["paper_all_lesions"] = PAPER_VOLUME
    return out


def _num(v) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def format_volumes(stats: dict) -> str:
    out = ["Lesion volume, mm3 (native smoothed NIfTI masks): mean ± SD, min, max", ""]
    for kind, title in (("primary", "Primary lesions"), ("all", "All lesions (primary + secondary)")):
        s = stats[kind]
        rows = [
            [c["cohort"], str(c["n"]), f"{_num(c['mean'])} ± {_num(c['sd'])}", _num(c["min"]), _num(c["max"])]
            for c in s["cohorts"]
        ]
        o = s["overall"]
        rows.append(["All", str(o["n"]), f"{_num(o['mean'])} ± {_num(o['sd'])}", _num(o["min"]), _num(o["max"])])
        out += [title, *_grid(["Cohort", "n", "mean ± SD", "min", "max"], rows), ""]
    p = stats["paper_all_lesions"]
    out.append(
        f"Paper (ATLAS R1.1, all lesions): {_num(p['mean'])} ± {_num(p['sd'])}, min {_num(p['min'])}, "
        f"max {_num(p['max'])}"
    )
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Probabilistic overlap map


def _overlap_sources(ws: Workspace, release: str | None) -> list[tuple[str, str]]:
    """(scan, sha256) of the standard-space smoothed primary masks to average: the current ones of the
    standardized subset, or those of a release's standardized subset as the release holds them (the
    masks current at its last revision: a later correction does not change a published release)."""
    from sqlalchemy import text

    from . import db

    alive = "{t}.retired_rev_id IS NULL"
    params: dict = {"space": STANDARD_SPACE}
    with db.engine(ws).connect() as conn:
        if release is not None:
            row = conn.execute(text("SELECT id, last_revision_id FROM release WHERE name = :n"), {"n": release}).first()
            if row is None:
                raise AtlasError("STAT002", f"no release named {release!r}")
            if row[1] is not None:
                alive = "{t}.created_rev_id <= :rev AND ({t}.retired_rev_id IS NULL OR {t}.retired_rev_id > :rev)"
                params["rev"] = row[1]
        sql = (
            "SELECT t.code, m.sha256 FROM lesion_mask m"
            f" JOIN lesion l ON l.id = m.lesion_id AND l.number = 0 AND {alive.format(t='l')}"
            " JOIN timepoint t ON t.id = l.timepoint_id"
            f" WHERE {alive.format(t='m')} AND m.space = :space AND m.variant = 'smooth_nii'"
        )
        if release is None:  # the current standardized subset: withdrawn scans are in no current view
            sql += " AND t.standard_status = 'included' AND NOT t.withdrawn"
        else:
            sql += (
                " AND t.id IN (SELECT rs.timepoint_id FROM release_scan rs JOIN release r ON r.id = rs.release_id"
                " WHERE r.name = :rel AND rs.in_standard = :yes"
                " AND (rs.split IS NULL OR rs.split = 'training'))"  # never a withheld (test, hidden) mask
            )
            params.update(rel=release, yes=True)
        return [tuple(r) for r in conn.execute(text(sql + " ORDER BY t.code"), params)]


def _template_images(ws: Workspace, scans: list[str]) -> list[str]:
    """SHA-256 of the current standard-space T1s of ``scans`` (fallback underlay)."""
    from sqlalchemy import bindparam, text

    from . import db

    if not scans:
        return []
    sql = text(
        "SELECT i.sha256 FROM image i JOIN timepoint t ON t.id = i.timepoint_id"
        " WHERE i.retired_rev_id IS NULL AND i.space = :space AND t.code IN :scans ORDER BY t.code"
    ).bindparams(bindparam("scans", expanding=True))
    with db.engine(ws).connect() as conn:
        return [r[0] for r in conn.execute(sql, {"space": STANDARD_SPACE, "scans": scans})]


def _anatomy_template(shape, affine):
    """The MNI152 2009 template T1 (:mod:`atlas_registry.anatomy`) when the map is on its grid."""
    import numpy as np

    from . import anatomy

    if tuple(shape) != anatomy.TEMPLATE_SHAPE or not np.allclose(affine, anatomy.TEMPLATE_AFFINE, atol=1e-3):
        return None
    try:
        return anatomy.template("t1")
    except AtlasError:  # nilearn's template files not available
        return None


def png_path(out: Path) -> Path:
    """``FILE.nii.gz`` -> ``FILE.png``."""
    base = out.name[: -len(".nii.gz")] if out.name.endswith(".nii.gz") else out.name[: -len(".nii")]
    return out.with_name(base + ".png")


def overlap_map(ws: Workspace, out: str | Path, release: str | None = None) -> dict:
    """Write the probabilistic overlap map of the primary lesions in MNI space (voxel value =
    fraction of scans whose primary lesion covers the voxel) to ``out`` (NIfTI) and a PNG of
    axial, coronal and sagittal slices over the template beside it. Masks are streamed."""
    import nibabel as nib
    import numpy as np

    from . import niio
    from .objstore import open_store

    out = Path(out)
    if not (out.name.endswith(".nii.gz") or out.name.endswith(".nii")):
        raise AtlasError("STAT003", f"{out}: the overlap map is written as NIfTI (.nii.gz or .nii)")
    sources = _overlap_sources(ws, release)
    if not sources:
        raise AtlasError(
            "STAT004",
            "no standard-space primary lesion masks to average" + (f" in release {release!r}" if release else ""),
        )
    store = open_store(ws)
    counts: np.ndarray | None = None
    affine = None
    for scan, sha in sources:
        try:
            data = store.read(sha)
        except (FileNotFoundError, IsADirectoryError):
            raise AtlasError("STAT005", f"{scan}: mask object {sha[:12]}… is missing from the store") from None
        img = niio.decode(data, f"{scan} (object {sha[:12]})")
        mask = np.asanyarray(img.dataobj) > 0
        if counts is None or affine is None:
            counts, affine = np.zeros(mask.shape, np.uint32), img.affine
        elif mask.shape != counts.shape or not np.allclose(img.affine, affine, atol=1e-3):
            raise AtlasError(
                "STAT006", f"{scan}: primary mask is not on the grid of the others ({mask.shape} vs {counts.shape})"
            )
        counts += mask
    assert counts is not None  # sources is not empty (STAT004)
    prob = (counts / len(sources)).astype(np.float32)
    hdr = nib.Nifti1Header()
    hdr["descrip"] = f"ATLAS primary lesion overlap n={len(sources)}".encode()[:79]
    img = nib.Nifti1Image(prob, affine, hdr)
    img.set_qform(affine, code=MNI_XFORM_CODE)  # the grid is the template's: MNI152 (NIfTI code 4)
    img.set_sform(affine, code=MNI_XFORM_CODE)
    img.header.set_xyzt_units("mm")
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    png = png_path(out)
    underlay, underlay_source = _anatomy_template(prob.shape, affine), "anatomy"
    if underlay is None:
        underlay, underlay_source = _mean_t1(ws, store, [s for s, _ in sources], prob.shape), "mean standard T1"
    slices = _overlap_png(prob, underlay, png, len(sources), release, affine)
    return {
        "out": str(out),
        "png": str(png),
        "n_scans": len(sources),
        "release": release,
        "slices": slices,
        "max": float(prob.max()),
        "voxels_covered": int((counts > 0).sum()),
        "underlay": underlay_source if underlay is not None else None,
    }


def _mean_t1(ws: Workspace, store, scans: list[str], shape):
    import numpy as np

    from . import niio

    total, n = None, 0
    for sha in _template_images(ws, scans):
        try:
            data = store.read(sha)
        except (FileNotFoundError, IsADirectoryError):
            continue
        arr = np.asarray(niio.decode(data, sha).get_fdata(dtype=np.float32))
        if arr.shape != tuple(shape):
            continue
        total = arr if total is None else total + arr
        n += 1
    return None if total is None else total / n


MNI_XFORM_CODE = 4  # NIfTI-1 qform/sform code: "MNI152" (template) coordinates


def _overlay_cmap():
    """``hot`` whose opacity rises from 0 (no scan) to full at a quarter of the maximum: low values
    fade into the template instead of hiding it."""
    import matplotlib
    import numpy as np
    from matplotlib.colors import ListedColormap

    colours = matplotlib.colormaps["hot"](np.linspace(0, 1, 256))
    colours[:, 3] = np.clip(np.linspace(0, 4, 256), 0, 1)
    return ListedColormap(colours)


def slice_labels(affine, peak) -> dict[str, str]:
    """The MNI coordinate of each view's slice through voxel ``peak`` (mm, RAS)."""
    import numpy as np

    x, y, z = (np.asarray(affine) @ np.array([*peak, 1.0]))[:3]
    return {"axial": f"z = {z:+.0f} mm", "coronal": f"y = {y:+.0f} mm", "sagittal": f"x = {x:+.0f} mm"}


def _overlap_png(prob, underlay, png: Path, n: int, release: str | None, affine) -> dict[str, str]:
    """Axial, coronal and sagittal slices through the peak, each titled with its MNI coordinate, L/R
    (A/P on the sagittal view) on the image sides; returns the slice labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    peak = np.unravel_index(int(np.argmax(prob)), prob.shape)
    labels = slice_labels(affine, peak)
    aff = np.asarray(affine)
    # which world direction the displayed horizontal axis (voxel i, or j on the sagittal view) runs
    right_first = aff[0, 0] < 0  # i increasing goes to the left: R is on the left of the picture
    ant_first = aff[1, 1] < 0
    views = (
        ("axial", lambda a: a[:, :, peak[2]], ("R", "L") if right_first else ("L", "R")),
        ("coronal", lambda a: a[:, peak[1], :], ("R", "L") if right_first else ("L", "R")),
        ("sagittal", lambda a: a[peak[0], :, :], ("A", "P") if ant_first else ("P", "A")),
    )
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), facecolor="black")
    vmax = max(float(prob.max()), 1e-6)
    cmap = _overlay_cmap()
    for ax, (name, cut, (left, right)) in zip(axes, views, strict=False):
        if underlay is not None:
            ax.imshow(cut(underlay).T, origin="lower", cmap="gray", interpolation="nearest")
        layer = np.ma.masked_where(cut(prob) <= 0, cut(prob))
        im = ax.imshow(layer.T, origin="lower", cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}, {labels[name]} (MNI)", color="white")
        for xpos, text, ha in ((0.02, left, "left"), (0.98, right, "right")):
            ax.text(
                xpos,
                0.5,
                text,
                transform=ax.transAxes,
                color="white",
                fontsize=14,
                fontweight="bold",
                ha=ha,
                va="center",
            )
        ax.axis("off")
    cb = fig.colorbar(im, ax=axes, fraction=0.02, pad=0.02)
    cb.set_label("fraction of scans", color="white")
    cb.ax.yaxis.set_tick_params(color="white", labelcolor="white")
    fig.suptitle(f"Primary lesion overlap, n={n}" + (f" ({release})" if release else ""), color="white")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100, facecolor="black")
    plt.close(fig)
    return labels


def format_json(obj) -> str:
    import json

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(obj), indent=2)
