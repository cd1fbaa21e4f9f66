"""intake of a NIfTI delivery under the site's own names, mapped by MAP.csv; the crosswalk."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from atlas_registry import gz, naming, niio
from atlas_registry import metadata as md
from atlas_registry.errors import AtlasError
from atlas_registry.intake import run
from atlas_registry.synth.delivery import write_delivery
from atlas_registry.validate.runner import validate_path

COHORT = "c0001"


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_map(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def delivery(synth_two_cohorts, tmp_path):
    info = write_delivery(synth_two_cohorts / "native", COHORT, tmp_path / "delivery", kind="nifti")
    return tmp_path / "delivery", info


def test_nifti_delivery_becomes_the_same_cohort(registry, delivery, synth_two_cohorts, tmp_path):
    root, info = delivery
    res = run(root, "c0012", tmp_path / "native", registry, workers=1)
    assert res.kind == "nifti" and len(res.scans) == len(info["scans"]) == 6
    assert res.new_subjects == len({s for s, _ in info["scans"].values()})
    out = tmp_path / "native"
    report = validate_path(out, workers=1).report
    assert [f for f in report.findings if f.severity == "error"] == []
    src = md.read_metadata(synth_two_cohorts / "native")
    got = md.read_metadata(out)
    # the site's subjects in the order of their numbers: sXXXX follows the first delivery's order
    by_site = {}
    for orig, (subject, _session) in sorted(info["scans"].items()):
        by_site.setdefault(subject, []).append(orig)
    for new in res.scans:
        sid = naming.parse_scan_id(new)
        # find the original scan with the same T1 voxels
        t1 = niio.load(out / naming.native_relpath(sid, "t1"))
        match = [
            o
            for o in info["scans"]
            if np.array_equal(
                np.asanyarray(niio.load(synth_two_cohorts / "native" / naming.native_relpath(o, "t1")).dataobj),
                np.asanyarray(t1.dataobj),
            )
        ]
        assert len(match) == 1
        orig = match[0]
        assert np.allclose(
            t1.affine, niio.load(synth_two_cohorts / "native" / naming.native_relpath(orig, "t1")).affine
        )
        a = src["lesions"][src["lesions"]["Scan ID"] == orig].drop(columns="Scan ID").reset_index(drop=True)
        b = got["lesions"][got["lesions"]["Scan ID"] == new].drop(columns="Scan ID").reset_index(drop=True)
        assert a.equals(b)
        sa = src["scans"][src["scans"]["Scan ID"] == orig].drop(columns=["Scan ID", "Cohort"]).reset_index(drop=True)
        sb = got["scans"][got["scans"]["Scan ID"] == new].drop(columns=["Scan ID", "Cohort"]).reset_index(drop=True)
        assert sa.equals(sb)
    # nothing of the site's identifiers or names in any output byte (gzip members inflated)
    for p in out.rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data += gz.decompress(data)
            for ident in info["identifiers"] + ["baseline", "anat", "lesion1"]:
                assert ident.encode() not in data, (p, ident)
    # the registry keeps digests only
    from sqlalchemy import text

    from atlas_registry import db

    with db.engine(registry).connect() as c:
        keys = [r[0] for r in c.execute(text("SELECT site_key FROM intake_subject"))]
    assert len(keys) == res.new_subjects and all(k not in info["identifiers"] for k in keys)


def test_same_subject_same_number_new_session_next_timepoint(registry, synth_two_cohorts, tmp_path):
    native = synth_two_cohorts / "native"
    scans = sorted(p.name for p in (native / COHORT).iterdir())
    first = write_delivery(native, COHORT, tmp_path / "d1", kind="nifti", scans=scans[:3])
    r1 = run(tmp_path / "d1", "c0012", tmp_path / "n1", registry, workers=1)
    # a later delivery: one subject seen before comes back for a new session, one new subject
    ((subject, _),) = [first["scans"][scans[0]]]
    d2 = write_delivery(native, COHORT, tmp_path / "d2", kind="nifti", scans=scans[3:5])
    rows = _rows(tmp_path / "d2" / "MAP.csv")
    old_subject = d2["scans"][scans[3]][0]
    for r in rows:
        if r["subject"] == old_subject:
            r["subject"], r["session"] = subject, "month3"
    os.rename(tmp_path / "d2" / old_subject, tmp_path / "d2" / subject)
    for r in rows:
        r["path"] = r["path"].replace(old_subject + "/", subject + "/")
    _write_map(tmp_path / "d2" / "MAP.csv", rows)
    r2 = run(tmp_path / "d2", "c0012", tmp_path / "n2", registry, workers=1)
    number = r1.ids[first["scans"][scans[0]]][:10]
    assert r2.new_subjects == 1 and r2.new_sessions == 2
    assert r2.ids[(subject, "month3")] == number + "t02"
    new = [s for s in r2.scans if not s.startswith(number)]
    assert new == [f"c0012s{r1.new_subjects + 1:04d}t01"]
    # the same delivery again: nothing new in the crosswalk, the same identifiers
    r3 = run(tmp_path / "d2", "c0012", tmp_path / "n3", registry, workers=1)
    assert (r3.scans, r3.new_subjects, r3.new_sessions) == (r2.scans, 0, 0)


def _refused(code, registry, root, tmp_path, out="native"):
    with pytest.raises(AtlasError) as e:
        run(root, "c0012", tmp_path / out, registry, workers=1)
    assert e.value.code == code, str(e.value)
    assert not (tmp_path / out).exists() or not any((tmp_path / out).iterdir())
    assert not any(p.name.startswith(f".{out}.intake") for p in tmp_path.iterdir())
    return e.value


def test_map_row_without_files_is_refused(registry, delivery, tmp_path):
    root, info = delivery
    rows = _rows(root / "MAP.csv")
    rows.append({**rows[0], "subject": "MRN0000001", "path": "MRN0000001/baseline/anat.nii.gz"})
    _write_map(root / "MAP.csv", rows)
    e = _refused("INTK004", registry, root, tmp_path)
    assert e.path == "MRN0000001/baseline/anat.nii.gz"


def test_files_without_a_row_are_refused(registry, delivery, tmp_path):
    root, info = delivery
    rows = _rows(root / "MAP.csv")
    subject = rows[0]["subject"]
    _write_map(root / "MAP.csv", [r for r in rows if r["subject"] != subject])
    e = _refused("INTK005", registry, root, tmp_path)
    assert e.path.startswith(subject + "/")


def test_climbing_paths_and_special_files_are_refused(registry, delivery, tmp_path):
    root, info = delivery
    rows = _rows(root / "MAP.csv")
    good = list(rows)
    rows[1] = {**rows[1], "path": "../outside.nii.gz"}
    _write_map(root / "MAP.csv", rows)
    _refused("INTK002", registry, root, tmp_path)
    _write_map(root / "MAP.csv", good)
    os.mkfifo(root / "pipe.nii.gz")
    e = _refused("INTK002", registry, root, tmp_path)
    assert e.path == "pipe.nii.gz"
    os.unlink(root / "pipe.nii.gz")
    os.symlink("/etc/passwd", root / "link.nii.gz")
    e = _refused("INTK002", registry, root, tmp_path)
    assert e.path == "link.nii.gz"


def test_bad_map_and_bad_masks_are_refused(registry, delivery, tmp_path):
    root, info = delivery
    rows = _rows(root / "MAP.csv")
    _write_map(root / "MAP.csv", [{**r, "role": "flair" if i == 0 else r["role"]} for i, r in enumerate(rows)])
    _refused("INTK003", registry, root, tmp_path)
    _write_map(root / "MAP.csv", rows)
    lesion = next(r["path"] for r in rows if r["role"] == "lesion")
    img = niio.load(root / lesion)
    niio.save_nifti(img.slicer[:-2], root / lesion)  # a mask on another grid
    e = _refused("INTK010", registry, root, tmp_path)
    assert e.path == lesion
    (root / lesion).write_bytes(b"\x1f\x8b not really")
    e = _refused("INTK008", registry, root, tmp_path)
    assert e.path == lesion


def test_output_must_be_new_and_registry_present(workspace, registry, delivery, tmp_path):
    root, info = delivery
    (tmp_path / "native" / "c0099").mkdir(parents=True)
    with pytest.raises(AtlasError) as e:
        run(root, "c0012", tmp_path / "native", registry, workers=1)
    assert e.value.code == "INTK011"
    assert [p.name for p in (tmp_path / "native").iterdir()] == ["c0099"]


def test_intake_requires_the_registry(tmp_path, delivery):
    from atlas_registry.config import Workspace

    root, info = delivery
    with pytest.raises(AtlasError) as e:
        run(root, "c0012", tmp_path / "native", Workspace(tmp_path / "nows"))
    assert e.value.code == "INTK012"
    assert not (tmp_path / "native").exists()


def test_cli_intake_json_and_one_line_refusals(registry, delivery, tmp_path, capsys, monkeypatch):
    import json

    from atlas_registry.cli import main
    from atlas_registry.metadata import schema_problem

    root, info = delivery
    args = ["--home", str(registry.home)] + (["--db", registry.db] if registry.db else [])
    assert main(args + ["intake", str(root), "--cohort", "c0012", "--out", str(tmp_path / "n"), "--plan"]) == 0
    assert not (tmp_path / "n").exists()
    capsys.readouterr()
    assert (
        main(
            args
            + [
                "intake",
                str(root),
                "--cohort",
                "c0012",
                "--out",
                str(tmp_path / "n"),
                "--workers",
                "1",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert schema_problem(doc, "intake-result.schema.json") is None
    assert len(doc["scans"]) == 6 and doc["kind"] == "nifti"
    assert not any(i in json.dumps(doc) for i in info["identifiers"])
    assert main(args + ["intake", str(root), "--cohort", "c0012", "--out", str(tmp_path / "n")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [INTK011]")
    assert main(args + ["intake", str(root), "--cohort", "12", "--out", str(tmp_path / "m")]) == 2
