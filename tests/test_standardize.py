"""`atlas-registry standardize` on a few scans of the small synthetic world (issue #17): the output is a
standardized root that validate and ingest take unchanged, the same bytes on every run (inline, a
local pool, a Dask cluster on loopback), unregistrable images reported not crashed, and an
interrupted run leaves no partial scan."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_valid

from atlas_registry import anatomy, niio
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.standardize import pipeline, runner

# three 3 T scans (one with several lesions) and one of the low-resolution 1.5 T cohort
SCANS = ("c0009s0001t01", "c0009s0002t01", "c0009s0003t01", "c0001s0001t01")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(synth_two_cohorts):
    """The small synthetic c0001 + c0009 (shared with the intake and ingest tests)."""
    return synth_two_cohorts


@pytest.fixture(scope="module")
def scans(world):
    """The SCANS that exist (the generator's subject numbers are not contiguous): 3 of c0009, 1 of c0001."""
    native = world / "native"
    got = []
    for cohort, n in (("c0009", 3), ("c0001", 1)):
        got += sorted(p.name for p in (native / cohort).iterdir() if p.is_dir())[:n]
    return got


@pytest.fixture(scope="module")
def run_a(world, scans, tmp_path_factory):
    out = tmp_path_factory.mktemp("std") / "a"
    summary = runner.standardize(world / "native", out, workers=1, scans=scans)
    return out, summary


def test_outputs_validate_and_ingest_as_standard(world, scans, run_a, tmp_path):
    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path
    from atlas_registry.validate.runner import validate_path

    out, summary = run_a
    assert (summary.scans, summary.standardized, summary.low_resolution, summary.registration_failures) == (4, 3, 1, 0)
    assert summary.voxel_mm == 3.0
    with open(out / "registration_failures.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    low = [s for s in scans if s.startswith("c0001")]
    assert rows == [{"Scan ID": low[0], "Exclusion": "low resolution", "Reason": "low resolution"}]
    report = validate_path(out, workers=1).report
    assert report.ok and not report.findings, report.to_text()
    for sid in scans:
        if sid in low:
            assert not (out / sid[:5] / sid).exists()
            continue
        folder = out / sid[:5] / sid
        t1 = niio.load(folder / f"{sid}_t1w_deface_stx.nii.gz")
        assert anatomy.face_signal(t1) <= anatomy.FACE_SIGNAL_DEFACED_MAX  # defaced
        native_masks = sorted((world / "native" / sid[:5] / sid).glob("*_LesionSmooth*.nii.gz"))
        assert len(list(folder.glob("*_LesionSmooth*_stx.nii.gz"))) == len(native_masks)
        side = json.loads((folder / f"{sid}_t1w_deface_stx.json").read_text())
        gen = side["GeneratedBy"][0]
        assert gen["Software"] == "antspyx" and gen["SoftwareVersion"] == pipeline.antspyx_version()
        assert gen["Parameters"]["random_seed"] == pipeline.Params().random_seed
        m = np.asarray(side["Transform"]["Matrix"])
        # the synthetic world's native headers are in MNI mm: the affine found is close to identity
        assert np.allclose(m[:3, :3], np.eye(3), atol=0.05) and np.abs(m[:3, 3]).max() < 3.0
        qc = side["QC"]
        assert qc["similarity"] > 0.88 and 0.9 < qc["lesion_volume_ratio"] < 1.1
        # white matter at 1000
        data = np.asarray(t1.dataobj, dtype=np.float32)
        from atlas_registry.standardize import template

        assert abs(np.median(data[template.white(3.0)]) - 1000) < 30
    ws = Workspace(tmp_path / "ws")
    ingest_path(ws, world / "native", workers=1)
    outcome = ingest_path(ws, out, workers=1)
    assert outcome is not None


def test_same_bytes_with_a_process_pool(world, scans, run_a, tmp_path):
    out, _ = run_a
    b = tmp_path / "b"
    summary = runner.standardize(world / "native", b, workers=2, scans=scans)
    assert summary.standardized == 3
    assert _files(b) == _files(out)


def test_same_bytes_on_a_dask_cluster(world, scans, run_a, tmp_path):
    """Two scans, one per worker of a Dask cluster on loopback: the bytes of the local run."""
    from distributed import LocalCluster

    out, _ = run_a
    two = [s for s in scans if not s.startswith("c0001")][:2]
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        c = tmp_path / "c"
        summary = runner.standardize(world / "native", c, dask_scheduler=cluster.scheduler_address, scans=two)
    assert summary.standardized == 2 and summary.dask_scheduler
    mine = _files(c)
    assert mine.pop("registration_failures.csv") == b"Scan ID,Exclusion,Reason\n"
    assert mine == {k: v for k, v in _files(out).items() if k.count("/") == 2 and k.split("/")[1] in two}


def test_unregistrable_images_are_reported_not_crashed(world, scans, tmp_path, capsys):
    """A T1 of pure noise (registration runs, QC refuses it) and a constant T1 (cannot be registered
    at all) go to registration_failures.csv with their reasons; the good scan is written."""
    native = tmp_path / "native"
    good = scans[0]
    src = world / "native" / good[:5] / good
    shutil.copytree(src, native / good[:5] / good)
    rng = np.random.default_rng(0)
    for sid, fill in (("c0009s0098t01", "noise"), ("c0009s0099t01", "constant")):
        d = native / sid[:5] / sid
        d.mkdir(parents=True)
        for f in src.iterdir():
            if f.name.endswith(".nii.gz"):
                shutil.copy(f, d / f.name.replace(good, sid))
        img = niio.load(d / f"{sid}.nii.gz")
        data = rng.uniform(0, 1000, img.shape) if fill == "noise" else np.full(img.shape, 7.0)
        niio.save_nifti(type(img)(data.astype(np.int16), img.affine, img.header), d / f"{sid}.nii.gz")
    out = tmp_path / "std"
    capsys.readouterr()
    code = main(["standardize", str(native), "--out", str(out), "--workers", "1", "--format", "json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert_valid(doc, "output/standardize.schema.json")
    by_scan = {o["scan_id"]: o for o in doc["outcomes"]}
    assert (doc["standardized"], doc["registration_failures"]) == (1, 2)
    assert by_scan["c0009s0098t01"]["status"] == "failed" and by_scan[good]["status"] == "ok"
    with open(out / "registration_failures.csv", newline="") as f:
        rows = {r["Scan ID"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"c0009s0098t01", "c0009s0099t01"}
    assert all(r["Exclusion"] == "registration failure" for r in rows.values())
    assert "similarity" in rows["c0009s0098t01"]["Reason"]  # the QC figures are given
    assert "cannot register" in rows["c0009s0099t01"]["Reason"]
    assert (out / good[:5] / good / f"{good}_t1w_deface_stx.nii.gz").is_file()
    assert not (out / "c0009" / "c0009s0098t01").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interruption_leaves_no_partial_scan(world, scans, run_a, tmp_path, sig):
    """Ctrl-C (SIGINT) or a crash (SIGKILL) once the first scan is written: every scan folder in the
    output is complete and byte-identical to the full run's."""
    full, _ = run_a
    out = tmp_path / "std"
    todo = [s for s in scans if not s.startswith("c0001")]
    cmd = [sys.executable, "-m", "atlas_registry", "standardize", str(world / "native"), "--out", str(out)]
    cmd += ["--workers", "1", "--no-progress", "--scans", ",".join(todo)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and any(out.glob("c0009/*")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be interrupted"
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    assert not (out / "registration_failures.csv").exists()  # unfinished, and visibly so
    written = sorted(p for p in out.glob("c*/*") if p.is_dir())
    assert 1 <= len(written) < len(todo)
    for folder in written:
        rel = folder.relative_to(out).as_posix()
        mine = {p.name: p.read_bytes() for p in folder.iterdir()}
        theirs = {p.name: p.read_bytes() for p in (full / rel).iterdir()}
        assert mine == theirs, rel
    assert list(out.iterdir()) == [out / "c0009"]  # nothing else inside the root
    if sig == signal.SIGINT:
        assert not (tmp_path / ".std.partial").exists()


def test_refusals(world, run_a, tmp_path):
    out, _ = run_a
    with pytest.raises(AtlasError) as e:
        runner.standardize(out, tmp_path / "x")  # a standardized root
    assert e.value.code == "STD001"
    with pytest.raises(AtlasError) as e:
        runner.standardize(world / "native", out)  # output exists
    assert e.value.code == "STD002"
    with pytest.raises(AtlasError) as e:
        runner.standardize(world / "native", tmp_path / "y", scans=["c0099s0001t01"])
    assert e.value.code == "STD003"
    assert main(["standardize", str(world / "native" / "c0009"), "--out", str(tmp_path / "z")]) == 1


def test_scanner_world_pose_is_rigid_plus_scaling():
    """`synth --world scanner`: the header transform is rigid (an oblique rotation and a move to the
    isocentre), the head scaling per axis within its range; the same key gives the same pose."""
    from atlas_registry.synth import scanners

    z, r = scanners.scanner_world(0, (9, 4, 1))
    rot = r[:3, :3]
    assert np.allclose(rot @ rot.T, np.eye(3)) and np.linalg.det(rot) > 0
    assert not np.allclose(rot, np.eye(3), atol=1e-3)  # oblique
    scale = np.diag(z[:3, :3])
    assert np.all((scale >= scanners.SCALE_RANGE[0]) & (scale <= scanners.SCALE_RANGE[1]))
    assert np.allclose(z @ np.r_[scanners.FOV_CENTRE_MM, 1.0], np.r_[scanners.FOV_CENTRE_MM, 1.0])
    z2, r2 = scanners.scanner_world(0, (9, 4, 1))
    assert np.array_equal(z, z2) and np.array_equal(r, r2)


def test_oblique_scanner_header_is_registered_to_its_truth(world, scans, tmp_path):
    """A scan whose header is in scanner mm, as `synth --world scanner` writes it (an oblique rotation,
    the head moved to the isocentre, another head size per axis): the affine standardize finds maps
    brain points within 1.5 mm of where the true affine puts them; the header alone misses by cm."""
    from atlas_registry.synth import scanners

    sid = scans[0]
    src = world / "native" / sid[:5] / sid
    native = tmp_path / "native"
    (native / sid[:5] / sid).mkdir(parents=True)
    z, r = scanners.scanner_world(0, (9, 4, 1))
    truth = z @ np.linalg.inv(r)  # native (scanner mm) -> MNI
    for f in src.glob("*.nii.gz"):
        img = niio.load(f)
        moved = type(img)(np.asarray(img.dataobj), np.linalg.inv(truth) @ img.affine, img.header)
        niio.save_nifti(moved, native / sid[:5] / sid / f.name)
    std = tmp_path / "std"
    summary = runner.standardize(native, std, workers=1, voxel_mm=3.0)
    assert summary.standardized == 1
    side = json.loads((std / sid[:5] / sid / f"{sid}_t1w_deface_stx.json").read_text())
    found = np.asarray(side["Transform"]["Matrix"])
    pts = np.array([[x, y, z, 1.0] for x in (-60, 0, 60) for y in (-90, -20, 50) for z in (-30, 20, 60)]).T
    at = np.linalg.inv(truth) @ pts  # brain points of MNI, where they lie in the scanner-mm header
    assert np.linalg.norm((found @ at - pts)[:3], axis=0).max() < 1.5
    assert np.linalg.norm((at - pts)[:3], axis=0).max() > 10.0
