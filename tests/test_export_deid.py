"""The fail-closed de-identification gate: identifying content aborts a build, naming file and rule."""

from __future__ import annotations

from datetime import UTC, datetime

import nibabel as nib
import numpy as np
import pytest
from sqlmodel import Session, select

from atlas_registry import db, niio
from atlas_registry.errors import AtlasError
from atlas_registry.export import build_view, write_archives
from atlas_registry.export.deid_gate import Gate, nifti_head
from atlas_registry.models import Image, LesionMask, ScanReport, StoredObject, Timepoint
from atlas_registry.store import ObjectStore


def build(ws, spec, out):
    with Session(db.engine(ws)) as s:
        view = build_view(s, spec)
    return write_archives(ws, view, out, changes="1.0.0 2020-03-04\n  - Initial release.\n")


def swap_object(ws, row_query, make_bytes):
    """Point the registry row found by ``row_query`` at new bytes made from its current ones."""
    store = ObjectStore(ws.objects_dir)
    with Session(db.engine(ws)) as s:
        row = s.exec(row_query).first()
        data = make_bytes(store.get(row.sha256))
        sha = store.put(data)
        s.add(
            StoredObject(
                sha256=sha, size_bytes=len(data), media_type="application/x-nifti-gz", created_at=datetime.now(UTC)
            )
        )
        s.flush()
        row.sha256 = sha
        s.add(row)
        s.commit()


def _tp(code):
    return select(Timepoint.id).where(Timepoint.code == code).scalar_subquery()


def test_header_text_aborts_the_build(export_ws_fresh, export_spec, tmp_path):
    def with_time(data):
        img = niio.decode(data, "t1")
        img.header["descrip"] = b"TE=2.9;Time=101500.000"
        return niio.encode_nifti(img)

    swap_object(
        export_ws_fresh,
        select(Image).where(Image.timepoint_id == _tp("c0001s0001t01"), Image.space == "native"),
        with_time,
    )
    with pytest.raises(AtlasError) as e:
        build(export_ws_fresh, export_spec, tmp_path / "out")
    assert e.value.code == "DEID001"
    assert e.value.path == "icpsr/native/c0001/c0001s0001t01/c0001s0001t01.nii.gz"
    assert not list((tmp_path / "out").rglob("*_T1w.nii.gz"))  # stopped before copying any image


def test_header_extension_aborts_the_build(export_ws_fresh, export_spec, tmp_path):
    def with_extension(data):
        img = niio.decode(data, "mask")
        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"scanned on 2019-03-04 for John Smith"))
        return niio.encode_nifti(img)

    from atlas_registry.models import Lesion

    swap_object(
        export_ws_fresh,
        select(LesionMask)
        .join(Lesion, Lesion.id == LesionMask.lesion_id)
        .where(Lesion.timepoint_id == _tp("c0003s0002t01"), LesionMask.space != "native"),
        with_extension,
    )
    with pytest.raises(AtlasError) as e:
        build(export_ws_fresh, export_spec, tmp_path / "out")
    assert e.value.code == "DEID002" and e.value.path.startswith("bids/sub-")
    assert e.value.path.endswith("_label-L_desc-primary_mask.nii.gz")


def test_a_face_aborts_the_build(export_ws_fresh, export_spec, tmp_path):
    def with_face(_data):
        aff = np.diag([4.0, 4.0, 4.0, 1.0])
        aff[:3, 3] = (-98.0, -134.0, -72.0)
        img = nib.Nifti1Image(np.full((50, 59, 48), 100, np.int16), aff)  # the whole head box lit: a face
        img.header.set_xyzt_units("mm")
        return niio.encode_nifti(img)

    swap_object(
        export_ws_fresh,
        select(Image).where(Image.timepoint_id == _tp("c0003s0001t01"), Image.space != "native"),
        with_face,
    )
    with pytest.raises(AtlasError) as e:
        build(export_ws_fresh, export_spec, tmp_path / "out")
    assert e.value.code == "DEID008" and e.value.path.endswith("_space-MNI152NLin2009aSym_T1w.nii.gz")


@pytest.mark.parametrize(
    "scan, field, text, rule, path",
    [
        ("c0001s0002t01", "notes", "call jdoe@example.org", "DEID007", "icpsr/native/ATLAS_scans.csv"),
        ("c0003s0001t01", "primary_location", "as in c0003s0001", "EXP010", "bids/participants.tsv"),
    ],
)
def test_identifying_report_text_aborts_the_build(
    export_ws_fresh, export_spec, tmp_path, scan, field, text, rule, path
):
    with Session(db.engine(export_ws_fresh)) as s:
        r = s.exec(select(ScanReport).where(ScanReport.timepoint_id == _tp(scan))).one()
        setattr(r, field, text)
        s.add(r)
        s.commit()
    with pytest.raises(AtlasError) as e:
        build(export_ws_fresh, export_spec, tmp_path / "out")
    assert (e.value.code, e.value.path) == (rule, path)


def test_gate_remembers_passing_verdicts(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    data = niio.encode_nifti(img)
    block, codes = nifti_head(data)
    assert len(block) == 348 and codes == []
    gate = Gate(tmp_path)
    gate.nifti("a.nii.gz", data, "sha-a", mask=True)
    gate.nifti("a.nii.gz", data, "sha-a", mask=True)
    assert (gate.checked, gate.cached) == (1, 1)
    gate.save()
    again = Gate(tmp_path)
    again.nifti("a.nii.gz", data, "sha-a", mask=True)
    assert (again.checked, again.cached) == (0, 1)
    Gate(None).nifti("a.nii.gz", data, "sha-a", mask=True)  # works without a cache too


def test_extension_codes_are_read(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(2, b"DICM" + b"x" * 60))
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"comment"))
    assert nifti_head(niio.encode_nifti(img))[1] == [2, 6]
