"""Builders shared by the tests: plain functions and constants, imported as ``from helpers import …``.

Fixtures live in ``conftest.py`` and call these; tests import these directly (never from conftest).
"""

from __future__ import annotations

from datetime import UTC

# --- export registry ---
# A tiny registry built directly with the ORM (real small NIfTI files in the store), for the
# release exporters: cohort c0001 (1.5 T, 0.9 x 0.9 x 3 mm: native only), cohort c0003 (3 T, 1 mm):
# six scans, one with three lesions, one subject with two timepoints, one registration failure.

EXPORT_SPEC = """
name = "T1.0"
version = "1.0.0"
date = "2020-03-04"
title = "Test release of the exporters"
description = "A tiny registry for the exporter tests."
authors = ["Ada Lovelace", "Alan Turing"]
license = "CC0"
data_use = "Use under the data use agreement; make no attempt to identify anyone."
how_to_cite = "Lovelace A, Turing A. A test dataset. doi:10.0000/test"
references = ["https://doi.org/10.0000/test", "https://example.org/atlas"]
cohorts = "all"
archives = ["icpsr", "bids", "parquet"]

[standard]
pipeline = [
  {name = "N4", version = "2.5.0", description = "intensity non-uniformity correction"},
  {name = "affine registration", version = "0.6.3", description = "linear registration to MNI152NLin2009aSym"},
  {name = "mri_deface", version = "1.22", description = "defacing"},
]
source_datasets = [{doi = "doi:10.0000/native", version = "1.0.0"}]

[study]
universe = "Adults after stroke in the test cohorts"
unit_of_analysis = "scan and lesion"
time_period = "2019"
geography = ["Nowhere"]
kind_of_data = "T1-weighted MRI and lesion masks"
method = "Synthetic test data"
keywords = ["stroke", "test"]

[deposit]
source_organization = "Test Laboratory"
contact_name = "Ada Lovelace"
contact_email = "ada@example.org"
"""


def build_export_registry(home):
    """A Workspace at ``home`` holding the tiny registry described above."""
    from datetime import datetime

    import nibabel as nib
    import numpy as np
    from sqlmodel import Session

    from atlas_registry import db, niio
    from atlas_registry.config import Workspace
    from atlas_registry.models import (
        Cohort,
        Image,
        Lesion,
        LesionAnnotation,
        LesionMask,
        PublicId,
        Revision,
        Scanner,
        ScanReport,
        StoredObject,
        Subject,
        Timepoint,
    )
    from atlas_registry.store import ObjectStore

    ws = Workspace(home)
    db.upgrade(ws)
    store = ObjectStore(ws.objects_dir)
    when = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    rng = np.random.default_rng(7)

    def put(data: bytes, media="application/x-nifti-gz") -> str:
        sha = store.put(data)
        if s.get(StoredObject, sha) is None:
            s.add(StoredObject(sha256=sha, size_bytes=len(data), media_type=media, created_at=when))
            s.flush()
        return sha

    def image(shape, zooms, origin):
        aff = np.diag([*zooms, 1.0])
        aff[:3, 3] = origin
        img = nib.Nifti1Image((rng.random(shape) * 100).astype(np.int16), aff)
        img.header.set_xyzt_units("mm")
        img.header.set_sform(aff, 2)
        img.header.set_qform(aff, 1)
        return img

    def mask_img(ref, box):
        m = np.zeros(ref.shape, np.uint8)
        m[box] = 1
        return m

    with Session(db.engine(ws)) as s:
        rev = Revision(kind="ingest", author="curator", reason="ingest of the test data", created_at=when)
        rev2 = Revision(kind="attach_standard", author="curator", reason="standardized files", created_at=when)
        s.add(rev)
        s.flush()
        s.add(rev2)
        s.flush()
        cohorts = {}
        for code, site, field, vox in (
            ("c0001", "Site one", 1.5, (0.9, 0.9, 3.0)),
            ("c0003", "Site three", 3.0, (1.0, 1.0, 1.0)),
        ):
            c = Cohort(code=code, site=site)
            s.add(c)
            s.flush()
            sc = Scanner(
                cohort_id=c.id,
                manufacturer="Siemens" if field == 3.0 else "GE",
                model="Trio" if field == 3.0 else "Signa",
                field_strength_t=field,
                voxel_x_mm=vox[0],
                voxel_y_mm=vox[1],
                voxel_z_mm=vox[2],
            )
            s.add(sc)
            s.flush()
            cohorts[code] = (c, sc, vox)
        # (scan, n lesions, standardized?)
        plan = [
            ("c0001s0001t01", 1, False),
            ("c0001s0002t01", 2, False),
            ("c0003s0001t01", 1, True),
            ("c0003s0002t01", 3, True),
            ("c0003s0002t02", 1, True),
            ("c0003s0003t01", 2, "failed"),
        ]
        subjects = {}
        hemis = ["left", "right", "other"]
        locs = ["cortical", "subcortical", "other"]
        for k, (code, nles, std) in enumerate(plan):
            c, sc, vox = cohorts[code[:5]]
            subj_code = code[:10]
            if subj_code not in subjects:
                sub = Subject(cohort_id=c.id, code=subj_code, number=int(code[6:10]))
                s.add(sub)
                s.flush()
                s.add(PublicId(subject_id=sub.id, label=f"a{k + 2}x{k + 3}pq{k + 4}m", created_at=when))
                subjects[subj_code] = sub
            tp = Timepoint(
                subject_id=subjects[subj_code].id,
                scanner_id=sc.id,
                code=code,
                number=int(code[-2:]),
                standard_status="included" if std is True else ("excluded" if std else "pending"),
                exclusion_reason="registration_failed"
                if std == "failed"
                else ("low_resolution" if code.startswith("c0001") else None),
            )
            if code.startswith("c0001"):
                tp.standard_status = "excluded"
            s.add(tp)
            s.flush()
            t1 = image((12, 14, 10), vox, (-6.0, -7.0, -5.0))
            if k == 0:
                t1.header["descrip"] = b""
            sha = put(niio.encode_nifti(t1))
            s.add(
                Image(
                    timepoint_id=tp.id,
                    space="native",
                    sha256=sha,
                    source_name=f"{code}.nii.gz",
                    shape_x=12,
                    shape_y=14,
                    shape_z=10,
                    voxel_x_mm=vox[0],
                    voxel_y_mm=vox[1],
                    voxel_z_mm=vox[2],
                    dtype="int16",
                    affine="[]",
                    created_rev_id=rev.id,
                )
            )
            s.add(
                ScanReport(
                    timepoint_id=tp.id,
                    stroke_type=["Ischemic", "Embolic"][k % 2],
                    primary_location="MCA cortex",
                    primary_hemisphere=["left", "right"][k % 2],
                    vascular_territory="MCA",
                    pvh=k % 4,
                    dwmh=(k + 1) % 4,
                    notes=None if k % 2 else "small",
                    created_rev_id=rev.id,
                )
            )
            if std is True:
                st1 = image((16, 18, 14), (1.0, 1.0, 1.0), (-8.0, -9.0, -7.0))
                ssha = put(niio.encode_nifti(st1))
                s.add(
                    Image(
                        timepoint_id=tp.id,
                        space="MNI152NLin2009aSym",
                        sha256=ssha,
                        source_name=f"{code}_t1w_deface_stx.nii.gz",
                        shape_x=16,
                        shape_y=18,
                        shape_z=14,
                        voxel_x_mm=1.0,
                        voxel_y_mm=1.0,
                        voxel_z_mm=1.0,
                        dtype="int16",
                        affine="[]",
                        defaced=True,
                        created_rev_id=rev2.id,
                    )
                )
            for n in range(nles):
                les = Lesion(timepoint_id=tp.id, number=n, created_rev_id=rev.id)
                s.add(les)
                s.flush()
                box = (slice(1 + 3 * n, 3 + 3 * n), slice(2, 5), slice(2, 4))
                m = mask_img(t1, box)
                vol = float(m.sum() * np.prod(vox))
                for variant in ("raw_voi", "smooth_voi", "smooth_nii"):
                    data = (
                        niio.encode_voi(m, t1)
                        if variant.endswith("voi")
                        else niio.encode_nifti(nib.Nifti1Image(m, t1.affine, t1.header))
                    )
                    msha = put(data)
                    s.add(
                        LesionMask(
                            lesion_id=les.id,
                            variant=variant,
                            space="native",
                            sha256=msha,
                            source_name="x",
                            voxel_count=int(m.sum()),
                            volume_mm3=vol,
                            centroid_x_mm=0,
                            centroid_y_mm=0,
                            centroid_z_mm=0,
                            n_components=1,
                            hemisphere=hemis[n % 3],
                            location=locs[n % 3],
                            created_rev_id=rev.id,
                        )
                    )
                s.add(
                    LesionAnnotation(
                        lesion_id=les.id,
                        hemisphere=hemis[n % 3],
                        location=locs[n % 3],
                        tracer="T01",
                        reviewer="T02",
                        created_rev_id=rev.id,
                    )
                )
                if std is True:
                    sm = mask_img(st1, (slice(2 + 4 * n, 5 + 4 * n), slice(3, 6), slice(3, 5)))
                    msha = put(niio.encode_nifti(nib.Nifti1Image(sm, st1.affine, st1.header)))
                    s.add(
                        LesionMask(
                            lesion_id=les.id,
                            variant="smooth_nii",
                            space="MNI152NLin2009aSym",
                            sha256=msha,
                            source_name="y",
                            voxel_count=int(sm.sum()),
                            volume_mm3=float(sm.sum()),
                            centroid_x_mm=0,
                            centroid_y_mm=0,
                            centroid_z_mm=0,
                            n_components=1,
                            hemisphere=hemis[n % 3],
                            location=locs[n % 3],
                            created_rev_id=rev2.id,
                        )
                    )
        s.commit()
    return ws


def write_metadata_tables(root, frames) -> None:
    """Write tables (DataFrames of strings, any columns) as the workbook and the CSVs of ``root``."""
    from atlas_registry import metadata as md
    from atlas_registry import naming, niio

    niio.write_atomic(root / naming.METADATA_WORKBOOK, md.workbook_bytes(frames))
    for name, df in frames.items():
        niio.write_atomic(root / naming.METADATA_CSV[name], md.csv_bytes(df))


# --- report fixtures ---
# A scan-report correction written with the ORM, citing a new issue, for registries whose scans the
# revise module cannot re-validate (the hand-made export registry): used by test_report.py (and
# meant for test_release.py's revise_report, which does the same).

REPORT_COLUMNS = ("stroke_type", "primary_location", "primary_hemisphere", "vascular_territory", "pvh", "dwmh", "notes")


def revise_report_orm(
    ws,
    code: str,
    *,
    issue_title: str | None = None,
    issue_url: str | None = None,
    reason: str = "report corrected",
    **fields,
) -> int:
    """Retire the current scan report of ``code`` and add one with ``fields`` changed, as a
    ``correct_metadata`` revision that cites a new (closed) issue titled ``issue_title``, if given.
    Returns the revision id."""
    from datetime import datetime

    from sqlmodel import Session, select

    from atlas_registry import db, facts
    from atlas_registry.models import Issue, Revision, ScanReport, Timepoint

    when = datetime.now(UTC)
    with Session(db.engine(ws)) as s:
        tp = s.exec(select(Timepoint).where(Timepoint.code == code)).one()
        issue = None
        if issue_title:
            issue = Issue(
                timepoint_id=tp.id,
                title=issue_title,
                status="closed",
                opened_by="u",
                opened_at=when,
                closed_at=when,
                close_reason="resolved",
                url=issue_url,
            )
            s.add(issue)
            s.flush()
        rev = Revision(
            kind="correct_metadata",
            issue_id=issue.id if issue else None,
            timepoint_id=tp.id,
            author="curator",
            reason=reason,
            created_at=when,
            details="{}",
        )
        s.add(rev)
        s.flush()
        old = s.exec(
            select(ScanReport).where(ScanReport.timepoint_id == tp.id, ScanReport.retired_rev_id.is_(None))
        ).one()
        old.retired_rev_id = rev.id
        s.add(old)
        s.add(
            ScanReport(
                timepoint_id=tp.id, created_rev_id=rev.id, **{k: fields.get(k, getattr(old, k)) for k in REPORT_COLUMNS}
            )
        )
        facts.refresh(s, [tp.id])  # keep the scans/lesions views current, as revise does
        s.connection().exec_driver_sql(db.BUMP_COUNTER)  # a committed write, as db.session counts it
        s.commit()
        return rev.id


# --- schema helpers ---
# The JSON Schemas of schemas/ checked against what the commands really print or write.


def assert_valid(doc, schema: str) -> None:
    """``doc`` is valid against ``schemas/<schema>`` (every error listed on failure)."""
    import json

    import jsonschema

    from atlas_registry.metadata import schema_dir

    validator = jsonschema.Draft202012Validator(json.loads((schema_dir() / schema).read_text(encoding="utf-8")))
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, f"not valid against {schema}: {errors[:5]}"
