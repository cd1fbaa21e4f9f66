"""Ingest: complete on clean data, all-or-nothing on bad data, idempotent, safe under concurrency."""

from __future__ import annotations

import gzip
import multiprocessing as mp
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, text
from sqlmodel import Session, select

from atlas_registry import db
from atlas_registry.errors import AtlasError
from atlas_registry.ingest import IngestRefused, ingest_path
from atlas_registry.models import AuditEvent, Lesion, LesionMask, StoredObject, Timepoint
from atlas_registry.store import ObjectStore


def snapshot(ws) -> dict:
    """Row count of every table and the store's file list: what 'untouched' means."""
    eng = db.engine(ws)
    names = sorted(inspect(eng).get_table_names())
    with eng.connect() as c:
        counts = {t: c.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one() for t in names}
    return {"rows": counts, "objects": ObjectStore(ws.objects_dir).list()}


def count(ws, model) -> int:
    with Session(db.engine(ws)) as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_small_release_ingests_completely(ingested_small):
    ws = ingested_small
    with Session(db.engine(ws)) as s:
        assert s.exec(select(func.count()).select_from(Timepoint)).one() == 304
        assert s.exec(select(func.count()).select_from(Lesion).where(Lesion.retired_rev_id.is_(None))).one() == 521
        # three native files per lesion, one standard mask per lesion of a standardized scan
        native = s.exec(select(func.count()).select_from(LesionMask).where(LesionMask.space == "native")).one()
        assert native == 3 * 521
        included = s.exec(
            select(func.count()).select_from(Timepoint).where(Timepoint.standard_status == "included")
        ).one()
        assert included == 229
        reasons = dict(
            s.exec(
                select(Timepoint.exclusion_reason, func.count())
                .where(Timepoint.standard_status == "excluded")
                .group_by(Timepoint.exclusion_reason)
            ).all()
        )
        assert reasons == {"low_resolution": 31, "registration_failed": 44}
        # every object the registry points at is in the store, with the right bytes
        store = ObjectStore(ws.objects_dir)
        shas = s.exec(select(StoredObject.sha256)).all()
        assert set(shas) == set(store.list())


def test_reingest_is_noop(ingested_small, synth_small):
    before = snapshot(ingested_small)
    out = ingest_path(ingested_small, synth_small / "native" / "c0009")
    assert out.status == "noop"
    out = ingest_path(ingested_small, synth_small / "standard")
    assert out.status == "noop"
    assert snapshot(ingested_small) == before


@pytest.fixture
def one_cohort(synth_small, tmp_path) -> Path:
    """A private copy of cohort c0009 (native), safe to break."""
    dst = tmp_path / "native" / "c0009"
    shutil.copytree(synth_small / "native" / "c0009", dst)
    for f in (synth_small / "native").iterdir():
        if f.is_file():
            shutil.copy2(f, tmp_path / "native" / f.name)
    return dst


def _first(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[0]


def _truncate(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _phi_descrip(p: Path) -> None:
    import nibabel as nib

    img = nib.load(p)
    img.header["descrip"] = b"John Doe DOB 1950-02-03"
    nib.save(img, p)


def _drop_smooth(p: Path) -> None:
    for f in p.parent.glob("*_LesionSmooth.nii.gz"):
        f.unlink()


BREAKAGES = {
    "truncated-gzip": ("*_LesionSmooth.nii.gz", _truncate),
    "phi-in-header": ("c0009s*t01.nii.gz", _phi_descrip),
    "missing-smoothed-file": ("*_LesionRaw.voi", _drop_smooth),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_refused_ingest_leaves_registry_untouched(registry, synth_small, one_cohort, breakage):
    # a registry that already holds another cohort, so 'untouched' is not trivially 'empty'
    ingest_path(registry, synth_small / "native" / "c0001")
    before = snapshot(registry)
    pattern, breaker = BREAKAGES[breakage]
    breaker(_first(one_cohort, pattern))
    with pytest.raises(IngestRefused) as e:
        ingest_path(registry, one_cohort)
    assert e.value.report.errors
    assert snapshot(registry) == before


def test_refused_ingest_on_empty_registry_writes_nothing(registry, one_cohort):
    _truncate(_first(one_cohort, "*_LesionRaw.voi"))
    before = snapshot(registry)
    with pytest.raises(IngestRefused) as e:
        ingest_path(registry, one_cohort)
    assert "IMG001" in e.value.report.codes("error")
    assert snapshot(registry) == before
    assert ObjectStore(registry.objects_dir).list() == []


def test_cli_ingest_refusal_exit_code(registry, one_cohort, capsys):
    from atlas_registry.cli import main

    _truncate(_first(one_cohort, "*_LesionSmooth.voi"))
    args = ["--home", str(registry.home)] + (["--db", registry.db] if registry.db else [])
    assert main(args + ["ingest", str(one_cohort)]) == 1
    err = capsys.readouterr().err
    assert "IMG001" in err and "nothing was written" in err


def test_different_content_for_known_scan_points_to_revisions(registry, one_cohort):
    import nibabel as nib
    import numpy as np

    ingest_path(registry, one_cohort)
    before = snapshot(registry)
    t1 = _first(one_cohort, "c0009s*t01.nii.gz")
    img = nib.load(t1)
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] += 1
    nib.save(nib.Nifti1Image(data, img.affine, img.header), t1)
    with pytest.raises(AtlasError) as e:
        ingest_path(registry, one_cohort)
    assert e.value.code == "ING002" and "revise" in str(e.value)
    assert snapshot(registry) == before


def test_standard_before_native_is_refused(registry, synth_small):
    with pytest.raises(AtlasError) as e:
        ingest_path(registry, synth_small / "standard")
    assert e.value.code == "ING003"
    assert count(registry, Timepoint) == 0


def test_scrub_headers_blanks_text_and_audits(registry, one_cohort):
    import nibabel as nib

    t1 = _first(one_cohort, "c0009s*t01.nii.gz")
    _phi_descrip(t1)
    with pytest.raises(IngestRefused):
        ingest_path(registry, one_cohort)
    out = ingest_path(registry, one_cohort, scrub_headers=True)
    assert out.status == "committed" and out.scrubbed >= 1
    with Session(db.engine(registry)) as s:
        from atlas_registry.models import Image

        img = s.exec(select(Image).where(Image.source_name == t1.name)).one()
        scrubs = s.exec(select(AuditEvent).where(AuditEvent.kind == "scrub")).all()
    stored = ObjectStore(registry.objects_dir).path_of(img.sha256)
    hdr = nib.Nifti1Image.from_bytes(gzip.decompress(stored.read_bytes())).header
    assert bytes(hdr["descrip"]).strip(b"\0 ") == b""
    assert any(e.path and e.path.endswith(t1.name) for e in scrubs)
    from atlas_registry import verdicts
    from atlas_registry.validate import deid

    # what is stored is the canonical form: its header passes the header check, so its verdict holds
    raw = gzip.decompress(stored.read_bytes())
    assert deid.header_findings(raw[:348], [], 352, relpath="x", subject=None, mask=False, scrub=False) == []
    assert raw[348:352] == b"\0\0\0\0" and f"header {img.sha256}" in verdicts.load(registry.verdicts_dir)


def _ingest_worker(home: str, url: str | None, path: str, q) -> None:
    from atlas_registry.config import Workspace

    try:
        out = ingest_path(Workspace(Path(home), url), path, workers=1)
        q.put(out.status)
    except AtlasError as e:
        q.put(f"refused:{e.code}")
    except Exception as e:  # noqa: BLE001
        q.put(f"crash:{type(e).__name__}:{e}")


def test_two_concurrent_ingests_store_once(registry, one_cohort):
    """Two ingests of the same cohort started together: one stores it, the other finds nothing
    to do (or is refused); never a duplicate row or a lost file."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [
        ctx.Process(target=_ingest_worker, args=(str(registry.home), registry.db, str(one_cohort), q)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    results = sorted(q.get(timeout=5) for _ in procs)
    assert results.count("committed") == 1, results
    assert results[0] == "committed" and (results[1] == "noop" or results[1].startswith("refused:")), results
    n_scans = len([d for d in one_cohort.iterdir() if d.is_dir()])
    assert count(registry, Timepoint) == n_scans
    with Session(db.engine(registry)) as s:
        dup = s.exec(text("SELECT code, COUNT(*) FROM timepoint GROUP BY code HAVING COUNT(*) > 1")).all()
        assert dup == []
        shas = set(s.exec(select(StoredObject.sha256)).all())
    store = ObjectStore(registry.objects_dir)
    assert shas and all(store.has(sha) for sha in shas)


@pytest.mark.parametrize("delay", [0.5, 1.5, 3.0])
def test_kill_at_any_moment_leaves_no_half_scan(tmp_path, one_cohort, delay):
    """SIGKILL an ingest at different moments: afterwards the registry holds all of the cohort
    or none of it, and every object a row points at is in the store."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from atlas_registry.config import Workspace

    ws = Workspace(tmp_path / "ws")
    db.upgrade(ws)
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlas_registry", "--home", str(ws.home), "ingest", str(one_cohort), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_scans = len([d for d in one_cohort.iterdir() if d.is_dir()])
    with Session(db.engine(ws)) as s:
        tps = s.exec(select(func.count()).select_from(Timepoint)).one()
        shas = set(s.exec(select(StoredObject.sha256)).all())
        pointed = set(s.exec(select(LesionMask.sha256)).all())
    assert tps in (0, n_scans)
    store = ObjectStore(ws.objects_dir)
    assert all(store.has(sha) for sha in shas | pointed)
    # and a new ingest completes the job
    out = ingest_path(ws, one_cohort)
    assert out.status in ("committed", "noop")
    assert count(ws, Timepoint) == n_scans


def test_ingest_records_the_verdicts_of_its_validation(ingested_two):
    """Every stored image and mask passed the header check and every standardized T1 the face check:
    the verdicts are kept with the registry, so a release build does not inflate those T1s again."""
    from atlas_registry import verdicts
    from atlas_registry.models import Image, LesionMask

    with Session(db.engine(ingested_two)) as s:
        images = s.exec(select(Image)).all()
        masks = s.exec(select(LesionMask.sha256)).all()
    known = verdicts.load(ingested_two.verdicts_dir)
    std = {i.sha256 for i in images if i.space != "native"}
    assert std and {v.split()[1] for v in known if v.startswith("face ")} == std
    assert {v.split()[1] for v in known if v.startswith("header ")} == {i.sha256 for i in images} | set(masks)


def test_a_scan_already_registered_under_another_identifier_is_refused(ingested_two, synth_two_cohorts, tmp_path):
    """A later delivery holds a registered scan again under a new identifier (its files, its sheet rows,
    renamed): it passes validation on its own, and ingest refuses it (ING007) with nothing written."""
    from helpers import write_metadata_tables

    from atlas_registry import metadata as md
    from atlas_registry.validate.runner import validate_path

    ws = ingested_two
    old, new = "c0009s0004t01", "c0009s0099t01"
    root = tmp_path / "delivery"
    shutil.copytree(synth_two_cohorts / "native", root)
    for d in (root / "c0009").iterdir():
        if d.name != old:
            shutil.rmtree(d)
    folder = (root / "c0009" / old).rename(root / "c0009" / new)
    for f in folder.iterdir():
        f.rename(folder / f.name.replace(old, new))
    frames = md.read_metadata(root)
    for name in ("scans", "lesions"):
        df = frames[name]
        df = df[~df["Scan ID"].str.startswith("c0009") | (df["Scan ID"] == old)].copy()
        df.loc[df["Scan ID"] == old, "Scan ID"] = new
        frames[name] = df
    write_metadata_tables(root, frames)
    assert validate_path(root / "c0009", workers=1).report.ok  # nothing wrong with the delivery itself

    before = snapshot(ws)
    with pytest.raises(AtlasError) as e:
        ingest_path(ws, root / "c0009", workers=1)
    assert e.value.code == "ING007" and e.value.path == new and old in str(e.value)
    assert snapshot(ws) == before
