"""De-identification rules on their own: free-text detectors, header fields, extensions, the
header scrubber and sidecars."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from atlas_registry import canonical, niio
from atlas_registry.validate import deid

PHI = [
    ("Dr. Smith", "person name"),
    ("seen by John Doe", "person name"),
    ("name: Alice", "person name"),
    ("jdoe@example.org", "email address"),
    ("see https://example.org/x", "URL"),
    ("www.example.com", "URL"),
    ("10.0.0.12", "IP address"),
    ("2015-03-12", "date"),
    ("03/12/2015", "date"),
    ("20150312", "date"),
    ("March 12, 2015", "date"),
    ("12 Mar 2015", "date"),
    ("Mar 2015", "date"),
    ("TE=2.9;Time=101500.000", "time of day"),
    ("scanned at 10:15", "time of day"),
    ("92-year-old", "age over 89"),
    ("age 95", "age over 89"),
    ("(555) 123-4567", "phone or fax number"),
    ("fax: 5551234567", "phone or fax number"),
    ("123-45-6789", "social security number"),
    ("MRN 1234567", "record or serial number"),
    ("serial no. 45X9", "record or serial number"),
    ("ZIP 90210", "ZIP code"),
    ("Los Angeles, CA 90033", "ZIP code"),
]
CLEAN = [
    "c0001s0004t01",
    "c0001s0004t01_LesionSmooth_1.nii.gz",
    "Left MCA territory",
    "embolic",
    "0.9x0.9x3.0",
    "Subcortical lacune, periventricular white matter",
    "Siemens Magnetom TrioTim",
    "2016",
    "t01",
    "1.5",
    "Brainstem",
    "PCA/MCA watershed",
    "lesion 2 of 3",
    "hemorrhagic",
    "GE Signa HDxt",
    "age 64",
]


@pytest.mark.parametrize("text,kind", PHI)
def test_phi_detected(text, kind):
    assert kind in deid.phi_kinds(text)


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_passes(text):
    assert deid.phi_kinds(text) == []


def _nifti(tmp_path, name="c0001s0001t01.nii.gz", **fields) -> bytes:
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4))
    for k, v in fields.items():
        img.header[k] = v
    p = tmp_path / name
    niio.save_nifti(img, p)
    return p.read_bytes()


def _findings(data: bytes, name: str, mask=False, scrub=False):
    img = niio.decode(data, name)
    codes = [int(e.get_code()) for e in img.header.extensions]
    return deid.header_findings(img.header.binaryblock, codes, relpath=name, subject=None, mask=mask, scrub=scrub)


@pytest.mark.parametrize("field", sorted(deid.HEADER_TEXT_FIELDS))
def test_any_header_text_is_an_error(tmp_path, field):
    data = _nifti(tmp_path, **{field: b"x1"})
    found = _findings(data, "c0001s0001t01.nii.gz")
    assert [(f.code, f.severity) for f in found] == [("DEID001", "error")]
    assert field in found[0].message and "x1" not in found[0].message  # never echoes the text


def test_mricron_intent_allowed_on_masks_only(tmp_path):
    data = _nifti(tmp_path, intent_name=b"BINARY")
    assert _findings(data, "c0001s0001t01_LesionRaw.voi", mask=True) == []
    assert [f.code for f in _findings(data, "c0001s0001t01.nii.gz")] == ["DEID001"]


def _with_extension(tmp_path) -> bytes:
    img = nib.Nifti1Image(np.arange(64, dtype=np.int16).reshape(4, 4, 4), np.eye(4))
    img.header["descrip"] = b"TE=2.9;Time=101500.000"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(2, b"(0010,0010) PN Doe^John" + b"\0" * 9))
    p = tmp_path / "c0001s0001t01.nii.gz"
    nib.save(img, p)
    return p.read_bytes()


def test_extension_reported_with_its_code_and_scrubbed(tmp_path):
    data = _with_extension(tmp_path)
    found = _findings(data, "c0001s0001t01.nii.gz")
    assert sorted(f.code for f in found) == ["DEID001", "DEID002"]
    assert "code 2 (DICOM header)" in [f for f in found if f.code == "DEID002"][0].message
    info = _findings(data, "c0001s0001t01.nii.gz", scrub=True)
    assert {(f.code, f.severity) for f in info} == {("DEID001", "info"), ("DEID002", "info")}
    assert all(f.message.startswith("scrubbed:") for f in info)

    clean = canonical.encode_file(data, "c0001s0001t01.nii.gz")
    assert _findings(clean, "c0001s0001t01.nii.gz") == []
    before, after = niio.decode(data, "a.nii.gz"), niio.decode(clean, "b.nii.gz")
    assert np.array_equal(np.asarray(before.dataobj), np.asarray(after.dataobj))
    assert np.allclose(before.affine, after.affine)
    # the voxel bytes are the file's; the header is the tool's own
    raw_before, raw_after = gzip.decompress(data), gzip.decompress(clean)
    assert raw_after[352:] == raw_before[int(before.dataobj.offset) :]
    assert canonical.encode_file(clean, "c0001s0001t01.nii.gz") == clean  # a fixed point


def test_scrub_keeps_mricron_intent_and_clean_files_identical(tmp_path):
    data = _nifti(tmp_path, "c0001s0001t01_LesionRaw.voi", intent_name=b"BINARY", descrip=b"John Doe")
    clean = canonical.encode_file(data, "c0001s0001t01_LesionRaw.voi")
    hdr = niio.decode(clean, "x.voi").header
    assert hdr["intent_name"].item() == b"BINARY" and hdr["descrip"].item() == b""
    ok = canonical.encode_file(_nifti(tmp_path), "c0001s0001t01.nii.gz")
    assert canonical.encode_file(ok, "c0001s0001t01.nii.gz") == ok


def test_sidecar_keys_and_values():
    found = deid.sidecar_findings(
        {
            "MagneticFieldStrength": 3,
            "PatientName": "x",
            "Nested": {"AcquisitionDateTime": "y"},
            "ImageComments": "call 555-123-4567",
            "ConversionSoftwareVersion": "v1.0.20190902",
        },
        relpath="c0001/c0001s0001t01/c0001s0001t01.json",
        subject="c0001s0001t01",
    )
    got = sorted((f.code, f.message.split()[2]) for f in found)
    assert got == [("DEID003", "Nested.AcquisitionDateTime"), ("DEID003", "PatientName"), ("DEID004", "ImageComments")]


def test_columns_and_cells():
    cols = deid.column_findings(
        ["Subject", "DOB", "Date of birth", "Patient Name", "Notes", "PVH"], sheet="scans", relpath="ATLAS_scans.csv"
    )
    assert sorted(f.message.split("'")[3] for f in cols) == ["DOB", "Date of birth", "Patient Name"]
    cells = deid.cell_findings(
        [
            (2, "c0001s0001t01", {"Notes": "ask jdoe@example.org", "Age": "93"}),
            (3, "c0001s0002t01", {"Notes": "left MCA", "Age": "64"}),
        ],
        sheet="scans",
        relpath="ATLAS_scans.csv",
    )
    assert [(f.subject, f.code) for f in cells] == [("c0001s0001t01", "DEID007"), ("c0001s0001t01", "DEID007")]


def test_bytes_between_header_and_data_count_as_an_extension(tmp_path):
    import struct

    raw = bytearray(gzip.decompress(_nifti(tmp_path)))
    padded = raw[:108] + struct.pack("<f", 368.0) + raw[112:352] + b"Doe^John\0\0\0\0\0\0\0\0" + raw[352:]
    data = gzip.compress(bytes(padded))
    img = niio.decode(data, "c0001s0001t01.nii.gz")
    found = deid.header_findings(
        img.header.binaryblock, [], int(img.dataobj.offset), relpath="x", subject=None, mask=False, scrub=False
    )
    assert [f.code for f in found] == ["DEID002"] and "16 byte(s)" in found[0].message
    clean = gzip.decompress(canonical.encode_file(data, "c0001s0001t01.nii.gz"))
    assert clean[348:] == bytes(raw[348:]) and b"Doe" not in clean
