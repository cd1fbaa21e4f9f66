"""build_view: the release's scans and standardized subset, as of a revision, with a fixed membership."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select

from atlas_registry import db
from atlas_registry.errors import AtlasError
from atlas_registry.export import build_view
from atlas_registry.models import LesionMask, Revision, StoredObject, Timepoint


def view_of(ws, spec, **kw):
    with Session(db.engine(ws)) as s:
        return build_view(s, spec, **kw)


def test_scans_subset_and_exclusions(export_ws, export_spec):
    v = view_of(export_ws, export_spec)
    assert [s.code for s in v.scans] == sorted(s.code for s in v.scans)
    assert len(v.scans) == 6 and v.n_lesions == 10
    assert [s.code for s in v.standard_scans] == ["c0003s0001t01", "c0003s0002t01", "c0003s0002t02"]
    assert dict(v.exclusions) == {
        "c0001s0001t01": "low_resolution",
        "c0001s0002t01": "low_resolution",
        "c0003s0003t01": "registration_failed",
    }
    s = v.scan("c0003s0002t01")
    assert s.public_scan == f"sub-{s.public_label}_ses-1" and s.cohort == "c0003" and s.timepoint == 1
    assert [les.number for les in s.lesions] == [0, 1, 2]
    assert all(les.standard is not None and len(les.native) == 3 for les in s.lesions)
    assert s.scanner.field_strength_t == 3.0 and s.report.pvh == 3 and s.t1_standard.defaced
    # scans outside the subset carry no standard-space files
    assert v.scan("c0003s0003t01").t1_standard is None
    assert all(les.standard is None for les in v.scan("c0003s0003t01").lesions)
    assert v.releases[-1].name == "T1.0" and v.releases[-1].n_standard == 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.scans[0].code = "x"


def test_spec_rules_cohorts_and_voxel_size(export_ws, export_spec):
    only3 = dataclasses.replace(export_spec, cohorts=("c0003",))
    assert {s.cohort for s in view_of(export_ws, only3).scans} == {"c0003"}
    strict = dataclasses.replace(export_spec, standard=dataclasses.replace(export_spec.standard, max_voxel_mm=0.5))
    v = view_of(export_ws, strict)
    assert v.standard_scans == () and dict(v.exclusions)["c0003s0001t01"] == "voxel_size"


def test_membership_fixes_the_subset(export_ws, export_spec):
    members = {"c0003s0001t01": True, "c0003s0002t01": False, "c0001s0001t01": False}
    v = view_of(export_ws, export_spec, membership=members)
    assert [s.code for s in v.scans] == sorted(members)
    assert {s.code: s.in_standard for s in v.scans} == members
    assert dict(v.exclusions)["c0003s0002t01"] == "membership"
    with pytest.raises(AtlasError) as e:  # not possible: no standard-space files
        view_of(export_ws, export_spec, membership={"c0001s0001t01": True})
    assert e.value.code == "EXP004"
    with pytest.raises(AtlasError) as e:
        view_of(export_ws, export_spec, membership={"c0009s0001t01": False})
    assert e.value.code == "EXP005"


def replace_standard_mask(ws, scan: str, number: int) -> tuple[int, str]:
    """A revision that replaces the standard-space mask of one lesion (new bytes); (revision, new sha)."""
    import nibabel as nib
    import numpy as np

    from atlas_registry import niio
    from atlas_registry.models import Lesion
    from atlas_registry.store import ObjectStore

    store = ObjectStore(ws.objects_dir)
    with Session(db.engine(ws)) as s:
        tp = s.exec(select(Timepoint).where(Timepoint.code == scan)).one()
        lesion = s.exec(select(Lesion).where(Lesion.timepoint_id == tp.id, Lesion.number == number)).one()
        old = s.exec(
            select(LesionMask).where(
                LesionMask.lesion_id == lesion.id, LesionMask.space != "native", LesionMask.retired_rev_id.is_(None)
            )
        ).one()
        img = niio.decode(store.get(old.sha256), "old")
        data = np.asarray(img.dataobj).copy()
        data[0, 0, 0] = 1
        new = niio.encode_nifti(nib.Nifti1Image(data, img.affine, img.header))
        sha = store.put(new)
        s.add(
            StoredObject(
                sha256=sha, size_bytes=len(new), media_type="application/x-nifti-gz", created_at=datetime.now(UTC)
            )
        )
        rev = Revision(
            kind="replace_mask",
            timepoint_id=tp.id,
            author="test",
            reason=f"fix {scan} mask",
            created_at=datetime.now(UTC),
        )
        s.add(rev)
        s.flush()
        fields = {
            k: getattr(old, k)
            for k in LesionMask.model_fields
            if k not in ("id", "sha256", "created_rev_id", "retired_rev_id")
        }
        old.retired_rev_id = rev.id
        s.add(old)
        s.add(LesionMask(**fields, sha256=sha, created_rev_id=rev.id))
        s.commit()
        return rev.id, sha


def test_as_of_revision_sees_the_registry_as_it_stood(export_ws_fresh, export_spec):
    ws = export_ws_fresh
    before = view_of(ws, export_spec)
    rev, sha = replace_standard_mask(ws, "c0003s0002t01", 1)
    now = view_of(ws, export_spec)
    then = view_of(ws, export_spec, as_of_revision=before.revision)
    assert now.revision == rev and then.revision == before.revision
    assert now.scan("c0003s0002t01").lesions[1].standard.sha256 == sha
    assert then.scan("c0003s0002t01").lesions[1].standard == before.scan("c0003s0002t01").lesions[1].standard
    assert then.scans == before.scans
    assert [r.id for r in now.revisions][-1] == rev
    assert now.revisions[-1].scan == "c0003s0002t01"
    with pytest.raises(AtlasError):
        view_of(ws, export_spec, as_of_revision=rev + 1)


def test_empty_registry(registry, export_spec):
    v = view_of(registry, export_spec)
    assert v.scans == () and v.revision is None


def test_public_text_replaces_native_ids(export_ws, export_spec):
    v = view_of(export_ws, export_spec)
    s = v.scan("c0003s0001t01")
    assert v.public_text("see c0003s0001t01 and c0003s0001, c0099s0001t01") == (
        f"see {s.public_scan} and {s.bids_subject}, [withheld]"
    )


def test_exclusion_by_a_later_revision_is_not_seen_before_it(export_ws_fresh, export_spec):
    ws = export_ws_fresh
    before = view_of(ws, export_spec)
    with Session(db.engine(ws)) as s:
        tp = s.exec(select(Timepoint).where(Timepoint.code == "c0003s0001t01")).one()
        rev = Revision(
            kind="exclude_scan",
            timepoint_id=tp.id,
            author="test",
            reason="bad registration",
            created_at=datetime.now(UTC),
        )
        s.add(rev)
        tp.standard_status, tp.exclusion_reason, tp.exclusion_note = "excluded", "revision", "bad registration"
        s.add(tp)
        s.commit()
    now = view_of(ws, export_spec)
    assert not now.scan("c0003s0001t01").in_standard and dict(now.exclusions)["c0003s0001t01"] == "revision"
    assert view_of(ws, export_spec, as_of_revision=before.revision).scan("c0003s0001t01").in_standard


def test_status_before_a_toggle_is_what_the_toggle_found(export_ws_fresh, export_spec):
    """A scan excluded at ingest (registration failed, with a note), later re-included: the registry as
    of a revision before the re-inclusion has it excluded for that reason, with that note (what a
    release built then published), not a generic 'revision' exclusion."""
    import json

    ws = export_ws_fresh
    with Session(db.engine(ws)) as s:
        tp = s.exec(select(Timepoint).where(Timepoint.code == "c0003s0001t01")).one()
        tp.standard_status, tp.exclusion_reason, tp.exclusion_note = "excluded", "registration_failed", "no convergence"
        s.add(tp)
        s.commit()
    before = view_of(ws, export_spec)
    assert dict(before.exclusions)["c0003s0001t01"] == "registration_failed"
    with Session(db.engine(ws)) as s:  # what revise.include_scan records
        tp = s.exec(select(Timepoint).where(Timepoint.code == "c0003s0001t01")).one()
        s.add(
            Revision(
                kind="include_scan",
                timepoint_id=tp.id,
                author="test",
                reason="registration redone",
                created_at=datetime.now(UTC),
                details=json.dumps({"scan": tp.code, "before": ["excluded", "registration_failed", "no convergence"]}),
            )
        )
        tp.standard_status, tp.exclusion_reason, tp.exclusion_note = "included", None, None
        s.add(tp)
        s.commit()
    assert view_of(ws, export_spec).scan("c0003s0001t01").in_standard
    then = view_of(ws, export_spec, as_of_revision=before.revision).scan("c0003s0001t01")
    assert (then.in_standard, then.exclusion_reason, then.exclusion_note) == (
        False,
        "registration_failed",
        "no convergence",
    )
