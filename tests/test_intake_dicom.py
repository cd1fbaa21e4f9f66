"""intake of DICOM deliveries: synthetic series with identifying headers end to end (intake →
validate → ingest → release build) with every identifying value looked for in every output byte;
real DICOM files nobody here wrote (pydicom's test files); series selection and refusals."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from atlas_registry import gz, naming, niio
from atlas_registry.errors import AtlasError
from atlas_registry.intake import plan, run
from atlas_registry.synth.delivery import write_delivery
from atlas_registry.validate.runner import validate_path

pydicom = pytest.importorskip("pydicom")

COHORT = "c0001"
# PS3.15 Annex E basic profile attributes (those a scanner writes into MR images; the values of every
# one present in a delivery are looked for in the outputs)
ANNEX_E = (
    "AccessionNumber",
    "AcquisitionDate",
    "AcquisitionDateTime",
    "AcquisitionTime",
    "AdmittingDiagnosesDescription",
    "ContentDate",
    "ContentTime",
    "DeviceSerialNumber",
    "FrameOfReferenceUID",
    "InstitutionAddress",
    "InstitutionName",
    "InstitutionalDepartmentName",
    "OperatorsName",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientAddress",
    "PatientAge",
    "PatientBirthDate",
    "PatientBirthName",
    "PatientComments",
    "PatientID",
    "PatientMotherBirthName",
    "PatientName",
    "PatientTelephoneNumbers",
    "PatientWeight",
    "PerformingPhysicianName",
    "PhysiciansOfRecord",
    "ReferringPhysicianName",
    "RequestingPhysician",
    "SeriesDate",
    "SeriesInstanceUID",
    "SeriesTime",
    "SOPInstanceUID",
    "StationName",
    "StudyDate",
    "StudyDescription",
    "StudyID",
    "StudyInstanceUID",
    "StudyTime",
    "RequestAttributesSequence",
    "ProtocolName",
    "SeriesDescription",
    "ImageComments",
    "PerformedProcedureStepID",
    "PerformedProcedureStepStartDate",
    "ScheduledProcedureStepID",
    "MediaStorageSOPInstanceUID",
)
MIN_LEN = 4  # shorter values ("M", "1") occur in any binary file by chance


def identifying_values(root: Path) -> set[str]:
    """Every Annex E value (and its date/name spellings) in every DICOM file under ``root``."""
    out = set()
    for p in root.rglob("*"):
        if not p.is_file() or p.suffix in (".csv", ".gz", ".json"):
            continue
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - not DICOM
            continue
        items = list(ds.iterall()) + list(ds.file_meta.iterall())
        for elem in items:
            if elem.keyword in ANNEX_E and elem.VR != "SQ" and elem.value not in (None, ""):
                vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
                for v in vals:
                    t = str(v).strip()
                    out.add(t)
                    if elem.VR == "DA" and len(t) == 8:
                        out.add(f"{t[:4]}-{t[4:6]}-{t[6:]}")
                    if elem.VR == "PN":
                        out.add(t.replace("^", " "))
                        out |= {part for part in t.replace("^", " ").split() if len(part) >= MIN_LEN}
    return {v for v in out if len(v) >= MIN_LEN}


def all_bytes(root: Path):
    """(path, bytes) of every file under ``root``, gzip members inflated and zip entries opened."""
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        yield p, data
        if data[:2] == b"\x1f\x8b":
            yield p, gz.decompress(data)
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for n in z.namelist():
                    inner = z.read(n)
                    yield Path(f"{p}!{n}"), inner
                    if inner[:2] == b"\x1f\x8b":
                        yield Path(f"{p}!{n}"), gz.decompress(inner)


def leaks(roots, values) -> list:
    found = []
    for root in roots:
        for p, data in all_bytes(root):
            for v in values:
                if v.encode() in data or v.encode("utf-16-le") in data:
                    found.append((str(p), v))
    return found


@pytest.fixture
def dicom_delivery(synth_two_cohorts, tmp_path):
    info = write_delivery(synth_two_cohorts / "native", COHORT, tmp_path / "delivery", kind="dicom")
    return tmp_path / "delivery", info


def test_dicom_delivery_to_release_leaves_every_identifier_behind(
    registry, dicom_delivery, synth_two_cohorts, tmp_path
):
    from atlas_registry import release
    from atlas_registry.ingest import ingest_path

    root, info = dicom_delivery
    values = identifying_values(root)
    assert {"PatientName", "StudyDate"} and len(values) > 100
    assert set(info["identifiers"]) <= values | {v for v in info["identifiers"] if len(v) < MIN_LEN}
    res = run(root, "c0012", tmp_path / "native", registry, workers=1)
    assert res.kind == "dicom" and len(res.scans) == 6
    # each session: the localizer and the 2-D FLAIR skipped, with their reasons
    reasons = sorted({s["reason"].split(" (")[0] for s in res.skipped})
    assert reasons == ["2-D acquisition", "localizer"] and len(res.skipped) == 12
    report = validate_path(tmp_path / "native", workers=1).report
    assert [f for f in report.findings if f.severity == "error"] == []
    # the voxels are the synthetic T1's (in dcm2niix's axis order) and the masks follow them
    from nibabel import orientations as ornt

    for orig, key in info["scans"].items():
        new = res.ids[key]
        a = niio.load(synth_two_cohorts / "native" / naming.native_relpath(orig, "t1"))
        b = niio.load(tmp_path / "native" / naming.native_relpath(new, "t1"))
        tf = ornt.ornt_transform(ornt.io_orientation(a.affine), ornt.io_orientation(b.affine))
        assert np.array_equal(ornt.apply_orientation(np.asanyarray(a.dataobj), tf), np.asanyarray(b.dataobj))
        ra = niio.load(synth_two_cohorts / "native" / naming.native_relpath(orig, "lesion", "raw_voi", 0))
        rb = niio.load(tmp_path / "native" / naming.native_relpath(new, "lesion", "raw_voi", 0))
        assert np.array_equal(ornt.apply_orientation(np.asanyarray(ra.dataobj), tf), np.asanyarray(rb.dataobj))
        side = (tmp_path / "native" / naming.native_relpath(new, "sidecar")).read_text()
        assert '"MagneticFieldStrength": 1.5' in side and "Institution" not in side
    ingest_path(registry, tmp_path / "native", workers=1)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "D1.0.toml").write_text(
        'name = "D1.0"\nversion = "1.0.0"\ndate = "2020-03-04"\ntitle = "Intake test"\ndescription = "d"\n'
        'authors = ["Ada Lovelace"]\nlicense = "CC0"\ndata_use = "Use under the agreement."\n'
        'how_to_cite = "Lovelace A. doi:10.0000/test"\nreferences = ["https://doi.org/10.0000/test"]\n'
        'cohorts = "all"\narchives = ["icpsr", "bids", "parquet"]\n',
        encoding="utf-8",
    )
    release.build(registry, "D1.0", tmp_path / "release", specs=specs)
    assert leaks([tmp_path / "native", tmp_path / "release"], values) == []
    if registry.is_sqlite:  # the registry itself holds digests, not the site's identifiers
        db_bytes = (registry.home / "registry.sqlite").read_bytes()
        assert [v for v in values if v.encode() in db_bytes] == []


def test_enhanced_multiframe_series(registry, synth_two_cohorts, tmp_path):
    native = synth_two_cohorts / "native"
    scans = sorted(p.name for p in (native / COHORT).iterdir())[:2]
    write_delivery(native, COHORT, tmp_path / "d", kind="dicom", scans=scans, enhanced=True)
    files = [p for p in (tmp_path / "d").rglob("s003_mprage/*.dcm")]
    assert len(files) == 2 and int(pydicom.dcmread(files[0]).NumberOfFrames) > 1
    res = run(tmp_path / "d", "c0012", tmp_path / "native", registry, workers=1)
    assert len(res.scans) == 2
    assert leaks([tmp_path / "native"], identifying_values(tmp_path / "d")) == []


def _map(root):
    with open(root / "MAP.csv", newline="") as f:
        return list(csv.DictReader(f))


def _write_map(root, rows):
    with open(root / "MAP.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _refused(code, registry, root, tmp_path, out="native"):
    with pytest.raises(AtlasError) as e:
        run(root, "c0012", tmp_path / out, registry, workers=1)
    assert e.value.code == code, str(e.value)
    assert not (tmp_path / out).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out}.intake")]
    return e.value


@pytest.fixture
def small_dicom(synth_two_cohorts, tmp_path):
    native = synth_two_cohorts / "native"
    scans = sorted(p.name for p in (native / COHORT).iterdir())[:2]
    info = write_delivery(native, COHORT, tmp_path / "d", kind="dicom", scans=scans)
    return tmp_path / "d", info


def test_two_t1_candidates_need_a_rule(registry, small_dicom, tmp_path):
    root, info = small_dicom
    subject, session = next(iter(info["scans"].values()))
    series = root / subject / session / "s003_mprage"
    shutil.copytree(series, root / subject / session / "s004_mprage_repeat")
    for p in (root / subject / session / "s004_mprage_repeat").iterdir():
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID, ds.SeriesNumber = "1.2.3.4.5.6.7.8.9", 4
        ds.save_as(p)
    e = _refused("INTK006", registry, root, tmp_path)
    assert e.path == f"{subject}/{session}" and "2 T1 candidates" in str(e)
    rows = _map(root)
    for r in rows:
        if (r["subject"], r["session"], r["role"]) == (subject, session, "t1"):
            r["series"] = "4"
    _write_map(root, rows)
    kind, scans, skipped = plan(root)
    chosen = [s for s in scans if (s.subject, s.session) == (subject, session)][0]
    assert chosen.source.endswith("series 4")
    assert any(s["series"] == "3" and "not chosen" in s["reason"] for s in skipped)


def test_corrupt_series_is_refused(registry, small_dicom, tmp_path):
    root, info = small_dicom
    subject, session = next(iter(info["scans"].values()))
    f = sorted((root / subject / session / "s003_mprage").iterdir())[3]
    f.write_bytes(f.read_bytes()[:-500])
    e = _refused("INTK008", registry, root, tmp_path)
    assert e.path == f.relative_to(root).as_posix()


def test_mixed_patients_in_one_folder_are_refused(registry, small_dicom, tmp_path):
    root, info = small_dicom
    (a, sa), (b, sb) = list(info["scans"].values())[:2]
    if a == b:
        pytest.skip("the first two scans are one subject")
    shutil.copytree(root / b / sb / "s001_localizer", root / a / sa / "s009_other")
    e = _refused("INTK009", registry, root, tmp_path)
    assert e.path.startswith(f"{a}/{sa}/s009_other/")


def test_session_without_row_and_row_without_files(registry, small_dicom, tmp_path):
    root, info = small_dicom
    rows = _map(root)
    subject, session = next(iter(info["scans"].values()))
    _write_map(root, [r for r in rows if r["subject"] != subject])
    e = _refused("INTK005", registry, root, tmp_path)
    assert e.path.startswith(f"{subject}/{session}/")
    _write_map(root, rows + [{**rows[0], "subject": "MRN0000001"}])
    _refused("INTK004", registry, root, tmp_path)


def test_real_dicom_from_pydicom_is_classified_and_left_behind(registry, tmp_path):
    """pydicom's own test files (real headers with names and dates, written by others): a derived
    single slice, a series of 2-D MR images and a truncated file."""
    from pydicom.data import get_testdata_file

    mr_small = get_testdata_file("MR_small.dcm")
    truncated = get_testdata_file("MR_truncated.dcm")
    assert mr_small and truncated
    base = Path(mr_small).parent
    series = sorted(
        p for p in base.rglob("*") if p.is_file() and p.parent.name.startswith("MR") and "dicomdirtests" in str(p)
    )
    root = tmp_path / "d"
    (root / "P1" / "v1").mkdir(parents=True)
    shutil.copy(mr_small, root / "P1" / "v1" / "mr_small.dcm")
    for p in series:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except Exception:  # noqa: BLE001
            continue
        if ds.get("PatientID") == pydicom.dcmread(mr_small, stop_before_pixels=True).PatientID:
            shutil.copy(p, root / "P1" / "v1" / p.name)
    (root / "MAP.csv").write_text(
        "subject,session,role,stroke_type,vascular_territory,pvh,dwmh,tracer,reviewer\n"
        "P1,v1,t1,Ischemic,MCA,1,1,T01,T02\n"
    )
    e = _refused("INTK007", registry, root, tmp_path)
    assert "derived" in str(e)
    # a real file cut short
    shutil.copy(truncated, root / "P1" / "v1" / "truncated.dcm")
    e = _refused("INTK008", registry, root, tmp_path)
    assert e.path == "P1/v1/truncated.dcm"
    # the DICOMDIR test tree's MR images of one patient (Doe^Peter): 2-D series and derived projections,
    # one folder per series as a site would send them
    root2 = tmp_path / "d2"
    by_series = {}
    for p in sorted(base.rglob("*")):
        if p.is_file() and "dicomdirtests" in str(p) and p.name != "DICOMDIR":
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
            except Exception:  # noqa: BLE001 - the tree holds other files too
                continue
            if ds.get("Modality") == "MR" and ds.get("PatientID") == "98890234":
                by_series.setdefault(ds.SeriesInstanceUID, []).append(p)
    assert len(by_series) >= 3
    for n, (_uid, files) in enumerate(sorted(by_series.items())):
        for p in files:
            (root2 / "P2" / "v1" / f"series{n}").mkdir(parents=True, exist_ok=True)
            shutil.copy(p, root2 / "P2" / "v1" / f"series{n}" / p.name)
    head = "subject,session,role,series,path,stroke_type,vascular_territory,pvh,dwmh,tracer,reviewer\n"
    (root2 / "MAP.csv").write_text(head + "P2,v1,t1,,,Ischemic,MCA,1,1,T01,T02\n")
    e = _refused("INTK007", registry, root2, tmp_path, out="native2")
    assert "derived" in str(e) and "localizer" in str(
        e
    )  # T_S_C_RF_FAST_PILOT: a 3-plane localizer (slices in 3 orientations)
    # the curator takes one anyway (MAP.csv `path`): dcm2niix cannot stack it into one image
    n3 = next(n for n, (uid, files) in enumerate(sorted(by_series.items())) if len(files) == 3)
    (root2 / "MAP.csv").write_text(head + f"P2,v1,t1,,P2/v1/series{n3},Ischemic,MCA,1,1,T01,T02\n")
    kind, scans, skipped = plan(root2)
    assert len(skipped) == len(by_series) - 1
    with pytest.raises(AtlasError) as e:
        scans[0].load()
    assert e.value.code == "INTK008" and e.value.path == "P2/v1"


def test_real_dicom_converted_and_reencoded_holds_none_of_its_header(tmp_path):
    """pydicom's MR_small (real header: name, ID, dates, UIDs) through intake's conversion: the
    tool's encoding of the voxels and the allow-listed sidecar carry none of its values."""
    from pydicom.data import get_testdata_file

    from atlas_registry.intake import build, dicom

    src = Path(get_testdata_file("MR_small.dcm"))
    root = tmp_path / "d"
    (root / "P1" / "v1").mkdir(parents=True)
    shutil.copy(src, root / "P1" / "v1" / "IM1.dcm")
    series = dicom._series_of(dicom.read_headers(root, ["P1/v1/IM1.dcm"]), ["P1/v1/IM1.dcm"], "P1")
    assert [s.reason for s in series] == [None] and dicom.classify(series[0], 1).startswith("derived")
    img, side = dicom.convert(root, dicom.dcm2niix_path(), series[0], "P1/v1")
    raw = pydicom.dcmread(src).pixel_array
    assert sorted(np.asanyarray(img.dataobj).ravel().tolist()) == sorted(raw.ravel().tolist())
    out = niio.encode_nifti(build.clean_t1(img, "P1/v1"))
    values = identifying_values(root)
    assert {"CompressedSamples^MR1", "20040826", "4MR1"} <= values
    blob = gz.decompress(out) + out + json.dumps(side).encode()
    assert [v for v in values if v.encode() in blob] == []
    assert set(side) <= set(build.SIDECAR_ALLOW) and "EchoTime" in side
