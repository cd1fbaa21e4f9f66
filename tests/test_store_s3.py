"""The object store on S3 (issue #21), against a real S3-compatible server on loopback (SeaweedFS, else
moto's server: tests/s3server.py): ingest, `store verify`, a release build with the bytes of a
folder-store build, mask export and revise reading from S3, the endpoint lost mid-ingest, `store gc`,
and credentials never shown or stored."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_valid
from s3server import ACCESS_KEY, SECRET_KEY, S3Server
from sqlalchemy import text
from test_revise import TWO_LESIONS, masks_of

from atlas_registry import db, niio, release
from atlas_registry.cli import main
from atlas_registry.config import Workspace
from atlas_registry.errors import AtlasError
from atlas_registry.ingest import ingest_path
from atlas_registry.objstore import open_store
from atlas_registry.objstore.s3 import S3Store
from atlas_registry.store import ObjectStore, sha256_bytes, sha256_file

TABLES = ("stored_object", "image", "lesion_mask", "lesion", "timepoint", "subject", "ingest_run", "revision")


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def counts(ws: Workspace) -> dict[str, int]:
    with db.engine(ws).connect() as c:
        return {t: c.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}


def recorded(ws: Workspace) -> dict[str, int]:
    with db.engine(ws).connect() as c:
        return {sha: int(n) for sha, n in c.execute(text("SELECT sha256, size_bytes FROM stored_object"))}


def key(prefix: str, sha: str) -> str:
    return f"{prefix}/{sha[:2]}/{sha[2:]}"


class Shown:
    """Everything the CLI printed in this module (checked for credentials at the end)."""

    def __init__(self):
        self.text: list[str] = []

    def run(self, capsys, args: list[str]) -> tuple[int, str, str]:
        code = main(args)
        got = capsys.readouterr()
        self.text += [got.out, got.err]
        return code, got.out, got.err


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """One server for the module, the client environment set for its tests (restored afterwards)."""
    server = S3Server(tmp_path_factory.mktemp("s3server")).start()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def ingest_into_s3(s3: S3Server, data: Path, home: Path) -> Workspace:
    """The 2-cohort dataset ingested (native, then standard) into an S3 store through the CLI."""
    url = f"s3://{s3.bucket}/run-{uuid.uuid4().hex[:8]}"
    for part in ("native", "standard"):
        assert main(["ingest", str(data / part), "--home", str(home), "--store", url, "--workers", "2"]) == 0
    return Workspace(home, store=url)


def cli(ws: Workspace) -> list[str]:
    return ["--home", str(ws.home), "--store", ws.store_url]


def test_every_command_on_an_s3_store(s3, synth_two_cohorts, _ingested_two_sqlite, tmp_path, capsys):
    """One ingest into S3, then every command on it in turn (one test, so one ingest wherever xdist
    sends it)."""
    shown = Shown()
    ws = ingest_into_s3(s3, synth_two_cohorts, tmp_path / "ws")
    shown.text.append(capsys.readouterr().out)
    parts = [tmp_path / p for p in ("release", "revise", "damage", "credentials")]
    for p in parts:
        p.mkdir()
    ingest_verify_and_release_give_the_folder_store_bytes(ws, s3, _ingested_two_sqlite, parts[0], capsys, shown)
    mask_export_and_revise_read_and_write_s3(ws, _ingested_two_sqlite, parts[1], capsys, shown)
    verify_reads_objects_back_and_gc_removes_orphans(ws, s3, parts[2], capsys, shown)
    credentials_are_never_shown_nor_stored(ws, s3, capsys, shown)


def ingest_verify_and_release_give_the_folder_store_bytes(ws, s3, _ingested_two_sqlite, tmp_path, capsys, shown):
    prefix = ws.store_url.split("/", 3)[3]
    sizes = recorded(ws)
    # every recorded object is in the bucket, nothing else is, and nothing went to a local folder
    assert s3.keys(prefix) == {key(prefix, sha): n for sha, n in sizes.items()}
    assert not (ws.home / "objects").exists()
    assert sizes == recorded(_ingested_two_sqlite)  # the same objects as the folder-store ingest
    code, out, _ = shown.run(capsys, ["store", "verify", "--format", "json", *cli(ws)])
    doc = json.loads(out)
    assert code == 0 and doc["findings"] == [] and doc["summary"]["files"] == len(sizes)
    assert doc["summary"]["root"] == ws.store_url and doc["summary"]["bytes"] == sum(sizes.values())

    # the same registry built from S3 and from a folder holding the same objects: the same bytes
    # (two registries differ in their pseudonymous labels, so one registry, two stores)
    code, out, err = shown.run(capsys, ["release", "build", "R1.1", "--out", str(tmp_path / "from-s3"), *cli(ws)])
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["from-s3"]  # the fetched objects are gone
    mirror, s3_store = ObjectStore(tmp_path / "mirror"), open_store(ws)
    for sha in sizes:
        mirror.put(s3_store.get(sha))
    a = release.build(Workspace(ws.home, store=str(mirror.root)), "R1.1", tmp_path / "from-folder")
    assert tree(tmp_path / "from-s3") == tree(tmp_path / "from-folder")
    assert a.manifest_sha256 in out
    linked = (tmp_path / "from-folder" / "icpsr").rglob("*.nii.gz")  # a folder store's objects are hard-linked
    assert any(p.stat().st_nlink > 1 for p in linked)
    # the report's scan thumbnails and the overlap map read the objects from S3 as from the folder
    for name, where in (("s3", cli(ws)), ("folder", ["--home", str(ws.home), "--store", str(mirror.root)])):
        code, _, err = shown.run(capsys, ["report", "--out", str(tmp_path / f"report-{name}"), *where])
        assert code == 0, err
        overlap = ["stats", "overlap", "--out", str(tmp_path / f"overlap-{name}.nii.gz"), *where]
        assert shown.run(capsys, overlap)[0] == 0
    thumbs = tree(tmp_path / "report-s3" / "img" / "scans")
    assert len(thumbs) == 18 and thumbs == tree(tmp_path / "report-folder" / "img" / "scans")
    maps = [niio.decode((tmp_path / f"overlap-{n}.nii.gz").read_bytes(), n) for n in ("s3", "folder")]
    assert np.array_equal(np.asanyarray(maps[0].dataobj), np.asanyarray(maps[1].dataobj))

    folder = Workspace(tmp_path / "folder-ws")
    shutil.copytree(_ingested_two_sqlite.home, folder.home)
    release.build(folder, "R1.1", tmp_path / "folder-release")

    # `store gc` never removes an object a release refers to, even one no image or mask row uses:
    # the bytes of a release's Parquet file put in the store stay; a stray object goes
    parquet = next(p for p in sorted((tmp_path / "folder-release" / "parquet").rglob("*.parquet")))
    store = ObjectStore(folder.objects_dir)
    kept, stray = store.put(parquet.read_bytes()), store.put(b"left by an interrupted ingest")
    code, out, _ = shown.run(capsys, ["store", "gc", "--format", "json", "--home", str(folder.home)])
    doc = json.loads(out)
    assert code == 0 and doc["dry_run"] and [o["sha256"] for o in doc["orphans"]] == [stray]
    assert store.has(stray)
    assert main(["store", "gc", "--yes", "--home", str(folder.home)]) == 0
    assert "1 orphaned object(s)" in capsys.readouterr().out
    assert not store.has(stray) and store.has(kept) and all(store.has(sha) for sha in sizes)


def mask_export_and_revise_read_and_write_s3(ws, _ingested_two_sqlite, tmp_path, capsys, shown):
    raw = masks_of(ws, TWO_LESIONS)[(1, "raw_voi", "native")].sha256
    out = tmp_path / "raw.voi"
    code, _, err = shown.run(capsys, ["mask", "export", TWO_LESIONS, "--lesion", "1", "--out", str(out), *cli(ws)])
    assert code == 0, err
    assert sha256_file(out) == raw
    thinner = tmp_path / "thinner_LesionRaw_1.voi"
    args = ["mask", "export", TWO_LESIONS, "--lesion", "1", "--erode", "1", "--out", str(thinner), *cli(ws)]
    assert shown.run(capsys, args)[0] == 0
    ref = tmp_path / "ref.voi"  # the same erosion from the folder-store registry: the same bytes
    home = ["--home", str(_ingested_two_sqlite.home)]
    assert main(["mask", "export", TWO_LESIONS, "--lesion", "1", "--erode", "1", "--out", str(ref), *home]) == 0
    assert thinner.read_bytes() == ref.read_bytes()
    args = ["revise", "mask", TWO_LESIONS, "--lesion", "1", "--raw", str(thinner), "--reason", "over-traced", *cli(ws)]
    code, _, err = shown.run(capsys, args)
    assert code == 0, err
    now = masks_of(ws, TWO_LESIONS)
    assert now[(1, "raw_voi", "native")].sha256 == sha256_file(thinner)
    store = open_store(ws)
    assert all(store.has(m.sha256) for m in now.values())  # the derived masks were uploaded
    assert store.has(raw)  # the retired one stays: history
    code, out, _ = shown.run(capsys, ["store", "verify", "--format", "json", *cli(ws)])
    assert code == 0 and json.loads(out)["findings"] == []


def verify_reads_objects_back_and_gc_removes_orphans(ws, s3, tmp_path, capsys, shown):
    prefix = ws.store_url.split("/", 3)[3]
    c = s3.client()
    sizes = recorded(ws)
    with db.engine(ws).connect() as con:  # two native T1s: every release holds them
        gone, flipped = (
            con.execute(text("SELECT sha256 FROM image WHERE space = 'native' ORDER BY sha256")).scalars().all()[:2]
        )
    stray = S3Store(s3.bucket, prefix).put(b"left by an endpoint that went away")
    c.delete_object(Bucket=s3.bucket, Key=key(prefix, gone))
    body = bytearray(c.get_object(Bucket=s3.bucket, Key=key(prefix, flipped))["Body"].read())
    body[-10] ^= 0xFF  # same size: only reading it back finds it
    c.put_object(Bucket=s3.bucket, Key=key(prefix, flipped), Body=bytes(body))
    code, out, _ = shown.run(capsys, ["store", "verify", "--format", "json", *cli(ws)])
    assert code == 1
    found = sorted((f["code"], f["path"]) for f in json.loads(out)["findings"])
    assert found == sorted(
        [
            ("STO001", f"{gone[:2]}/{gone[2:]}"),
            ("STO002", f"{flipped[:2]}/{flipped[2:]}"),
            ("STO004", f"{stray[:2]}/{stray[2:]}"),
        ]
    )
    # a build fetches what it needs: a missing or damaged object stops it, one line, nothing left behind
    code, _, err = shown.run(capsys, ["release", "build", "R1.1", "--out", str(tmp_path / "r"), *cli(ws)])
    assert code == 1 and err.startswith(("error [STO001] ", "error [STO002] ")) and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
    # gc: a dry run lists the stray only; --yes removes it and nothing the registry records
    code, out, _ = shown.run(capsys, ["store", "gc", "--format", "json", *cli(ws)])
    doc = json.loads(out)
    assert_valid(doc, "output/store-gc.schema.json")
    assert code == 0 and doc["dry_run"] and [o["sha256"] for o in doc["orphans"]] == [stray]
    assert key(prefix, stray) in s3.keys(prefix)
    code, out, _ = shown.run(capsys, ["store", "gc", "--yes", *cli(ws)])
    assert code == 0 and "1 removed" in out
    left = s3.keys(prefix)
    assert key(prefix, stray) not in left and set(left) == {key(prefix, s) for s in sizes if s != gone}


def credentials_are_never_shown_nor_stored(ws, s3, capsys, shown):
    for args in (["status", "--format", "json"], ["store", "gc"], ["--debug", "store", "verify"]):
        shown.run(capsys, [*args, *cli(ws)])
    # an endpoint that refuses connections: one line, STO005, even with --debug's traceback
    os.environ["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    try:
        code, _, err = shown.run(capsys, ["--debug", "store", "verify", *cli(ws)])
    finally:
        os.environ["AWS_ENDPOINT_URL"] = s3.endpoint
    assert code == 1 and f"error [STO005] object store {ws.store_url}: LIST failed" in err
    code, _, err = shown.run(capsys, ["store", "verify", "--home", str(ws.home), "--store", f"s3://{ACCESS_KEY}:x@b/p"])
    assert code == 2 and "error [STO006]" in err
    printed = "\n".join(shown.text)
    assert len(shown.text) > 25 and "s3://" in printed
    assert SECRET_KEY not in printed and ACCESS_KEY not in printed
    with sqlite3.connect(ws.home / "registry.sqlite") as con:  # every row of every table
        dump = "\n".join(con.iterdump())
    assert "INSERT INTO" in dump and SECRET_KEY not in dump and ACCESS_KEY not in dump
    for p in ws.home.rglob("*"):  # nor any file of the workspace
        if p.is_file():
            data = p.read_bytes()
            assert SECRET_KEY.encode() not in data and ACCESS_KEY.encode() not in data, p


def test_the_endpoint_lost_mid_ingest_leaves_the_registry_unchanged(synth_two_cohorts, tmp_path, monkeypatch):
    server = S3Server(tmp_path / "server").start()
    try:
        for k, v in server.env.items():
            monkeypatch.setenv(k, v)
        ws = Workspace(tmp_path / "ws", store=f"s3://{server.bucket}/lost")
        assert main(["init", "--home", str(ws.home)]) == 0
        before = counts(ws)
        real_create, done = S3Store.create, []

        def create_then_crash(self, data, sha):
            wrote = real_create(self, data, sha)
            done.append(sha)
            if len(done) == 5:
                server.stop()  # the server goes away while the other uploads run
            return wrote

        monkeypatch.setattr(S3Store, "create", create_then_crash)
        with pytest.raises(AtlasError) as e:
            ingest_path(ws, synth_two_cohorts / "native", workers=2)
        assert e.value.code == "STO005" and SECRET_KEY not in str(e.value)
        assert len(done) >= 5 and counts(ws) == before  # no row, no run, no revision
        monkeypatch.setattr(S3Store, "create", real_create)
        server.start()  # back: the objects uploaded before the loss are orphans until the re-run
        assert server.keys("lost") or server.kind == "moto"  # moto keeps its objects in memory only
        out = ingest_path(ws, synth_two_cohorts / "native", workers=2)
        assert out.status == "committed" and out.scans_added == 18
        assert set(server.keys("lost")) == {key("lost", sha) for sha in recorded(ws)}
        result = main(["store", "verify", "--home", str(ws.home), "--store", ws.store_url])
        assert result == 0
    finally:
        server.stop()


@pytest.mark.parametrize(
    "url",
    ["gs://bucket/x", "s3://", "s3://key:secret@bucket/x", "s3://bucket/x?endpoint=http://h", "file://host/x"],
)
def test_a_store_url_that_is_not_understood_is_a_usage_error(url, tmp_path, capsys):
    assert main(["store", "verify", "--home", str(tmp_path), "--store", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [STO006] ") and "secret" not in err[0]


def test_a_folder_store_elsewhere_and_by_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ATLAS_REGISTRY_STORE", str(tmp_path / "elsewhere"))
    ws = Workspace.resolve(tmp_path / "ws")
    assert ws.objects_dir == tmp_path / "elsewhere" and open_store(ws).url == str(tmp_path / "elsewhere")
    sha = open_store(ws).put(b"x")
    assert (tmp_path / "elsewhere" / sha[:2] / sha[2:]).read_bytes() == b"x" and sha == sha256_bytes(b"x")
    assert Workspace.resolve(tmp_path / "ws", store="file:///srv/objects").objects_dir == Path("/srv/objects")
    assert Workspace.resolve(tmp_path / "ws", store="s3://b/p").store_url == "s3://b/p"


def test_gc_keeps_what_a_row_records_on_either_database(registry, capsys):
    """`store gc` under the write lock of SQLite and of PostgreSQL (CI): a recorded object stays."""
    from sqlmodel import Session

    from atlas_registry.clock import now
    from atlas_registry.models import StoredObject

    store = ObjectStore(registry.objects_dir)
    kept, stray = store.put(b"recorded by a row"), store.put(b"recorded by none")
    with Session(db.engine(registry)) as s:
        s.add(StoredObject(sha256=kept, size_bytes=17, media_type="application/octet-stream", created_at=now()))
        s.commit()
    home = ["--home", str(registry.home)] + (["--db", registry.db] if registry.db else [])
    assert main(["store", "gc", "--format", "json", *home]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [o["sha256"] for o in doc["orphans"]] == [stray] and doc["objects_referenced"] == 1
    assert store.has(stray)
    assert main(["store", "gc", "--yes", *home]) == 0
    assert store.list() == [kept]
