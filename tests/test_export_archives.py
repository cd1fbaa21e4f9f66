"""write_archives on the tiny export registry: layouts, byte-identical copies, manifest, determinism,
BIDS (pybids; the official validator runs once, on the small dataset: test_export_small), BagIt,
SPSS/Stata, Parquet, DDI, incremental cache."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC
from pathlib import Path

import pytest
from sqlmodel import Session

from atlas_registry import db, views
from atlas_registry.export import build_view, write_archives
from atlas_registry.store import ObjectStore, sha256_file

CHANGES = "1.0.0 2020-03-04\n  - Initial release.\n"
NATIVE_ID = re.compile(r"c\d{4}s\d{4}")


def view_of(ws, spec, **kw):
    with Session(db.engine(ws)) as s:
        return build_view(s, spec, **kw)


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(export_ws, export_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "out"
    view = view_of(export_ws, export_spec)
    entries = write_archives(
        export_ws, view, out, changes=CHANGES, release_notes="Notes.", cache_dir=out.parent / "cache"
    )
    return view, out, entries


def test_layout_and_counts(built):
    view, out, _ = built
    icpsr_t1 = list((out / "icpsr/native").glob("c????/c????s????t??/c????s????t??.nii.gz"))
    assert len(icpsr_t1) == len(view.scans) == 6
    assert len(list((out / "icpsr/native").rglob("*_Lesion*"))) == 3 * view.n_lesions
    assert len(list((out / "bids").rglob("*_T1w.nii.gz"))) == 3
    for name in (
        "README.md",
        "CHANGES",
        "codebook.xml",
        "codebook.md",
        "native/ATLAS_metadata.xlsx",
        "native/ATLAS_scans.csv",
        "tables/ATLAS_scans.sav",
        "tables/ATLAS_lesions.dta",
    ):
        assert (out / "icpsr" / name).is_file(), name
    for name in (
        "dataset_description.json",
        "README",
        "CHANGES",
        "participants.tsv",
        "participants.json",
        "sessions.json",
    ):
        assert (out / "bids" / name).is_file(), name
    assert (out / "bids/CHANGES").read_text() == CHANGES == (out / "icpsr/CHANGES").read_text()
    assert sorted(p.name for p in (out / "packages").iterdir()) == [  # one bag per archive; the zip: at publication
        "atlas-T1.0-bids",
        "atlas-T1.0-icpsr",
        "atlas-T1.0-parquet",
    ]
    assert {p.name for p in (out / "parquet").iterdir()} == {
        f"{t}.parquet" for t in ("scans", "lesions", "images", "masks", "scanners", "issues", "revisions", "releases")
    } | {"schema.json"}


def test_manifest_matches_the_files(built, export_ws):
    view, out, entries = built
    assert [e.path for e in entries] == sorted(e.path for e in entries)
    on_disk = files_under(out)
    assert set(on_disk) == {e.path for e in entries}
    store = ObjectStore(export_ws.objects_dir)
    for e in entries:
        p = on_disk[e.path]
        assert p.stat().st_size == e.size and sha256_file(p) == e.sha256, e.path
        assert (p.stat().st_mode & 0o777) == 0o444  # a build is read-only
        assert e.archive == e.path.split("/")[0]
        if e.path.endswith((".nii.gz", ".voi")) and "desc-T1lesion" not in e.path:
            assert p.read_bytes() == store.get(e.sha256)  # byte-identical to the registry's object
    per_scan = [e for e in entries if e.path.startswith("icpsr/native/c")]
    assert all(e.scan and e.scan in e.path and e.source_revision_id for e in per_scan)
    bids_scans = {e.scan for e in entries if e.archive == "bids" and e.scan}
    assert bids_scans == {s.code for s in view.standard_scans}


def test_same_view_same_bytes(built, export_ws, export_spec, tmp_path):
    view, out, entries = built
    again = write_archives(
        export_ws, view_of(export_ws, export_spec), tmp_path / "again", changes=CHANGES, release_notes="Notes."
    )  # no cache, another folder, another time
    assert [(e.path, e.size, e.sha256) for e in again] == [(e.path, e.size, e.sha256) for e in entries]


def test_pybids_indexes_every_image_and_mask(built):
    from bids import BIDSLayout

    view, out, _ = built
    layout = BIDSLayout(out / "bids", validate=False, is_derivative=True)
    space = "MNI152NLin2009aSym"
    t1 = layout.get(suffix="T1w", space=space, extension=".nii.gz")
    assert len(t1) == len(view.standard_scans)
    unions = layout.get(suffix="mask", label="L", desc="T1lesion", space=space, extension=".nii.gz")
    assert len(unions) == len(view.standard_scans)
    per_lesion = layout.get(
        suffix="mask",
        label="L",
        desc=re.compile(r"primary|secondary\d+").pattern,
        regex_search=True,
        extension=".nii.gz",
    )
    assert len(per_lesion) == sum(len(s.lesions) for s in view.standard_scans)
    assert len(layout.get(suffix="mask", desc="primary", extension=".nii.gz")) == len(view.standard_scans)
    assert sorted(layout.get_subjects()) == sorted({s.public_label for s in view.standard_scans})
    assert layout.get_sessions() == ["1", "2"]


def test_no_native_identifier_leaves_in_public_archives(built):
    import pyarrow.parquet as pq

    _, out, _ = built
    for rel, p in files_under(out).items():
        if not rel.startswith(("bids/", "parquet/")):
            continue
        assert not NATIVE_ID.search(rel), rel
        if p.suffix in (".json", ".tsv") or p.name in ("README", "CHANGES"):
            assert not NATIVE_ID.search(p.read_text()), rel
        if p.suffix == ".parquet":
            t = pq.read_table(p)
            assert not NATIVE_ID.search(json.dumps(t.to_pylist(), default=str)), rel
            assert not NATIVE_ID.search(str(t.schema.metadata)), rel


def test_participants_tsv(built):
    view, out, _ = built
    lines = (out / "bids/participants.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    assert header[0] == "participant_id" and len(lines) == 1 + len({s.public_label for s in view.standard_scans})
    meta = json.loads((out / "bids/participants.json").read_text())
    assert set(header) <= set(meta)
    assert meta["pvh"]["Levels"]["0"] and meta["cohort"]["Levels"] == {"c0003": "Site three"}
    assert all(len(row.split("\t")) == len(header) for row in lines)
    sessions = list((out / "bids").glob("sub-*/sub-*_sessions.tsv"))
    assert len(sessions) == 1 and sessions[0].read_text().splitlines()[1].startswith("ses-1\t")


def test_bagit_bag_and_deterministic_zip(built, tmp_path):
    import bagit

    from atlas_registry.export.bag import write_deposit_zip

    view, out, entries = built
    bag = bagit.Bag(str(out / "packages/atlas-T1.0-icpsr"))
    bag.validate()
    assert bag.info["Bagging-Date"] == "2020-03-04"
    assert len(bag.payload_entries()) == sum(1 for e in entries if e.archive == "icpsr")
    members = [
        e.path[len("packages/atlas-T1.0-icpsr/") :] for e in entries if e.path.startswith("packages/atlas-T1.0-icpsr/")
    ]
    size, sha = write_deposit_zip(out, "T1.0", "2020-03-04", members, tmp_path / "deposit.zip")
    assert (size, sha) == ((tmp_path / "deposit.zip").stat().st_size, sha256_file(tmp_path / "deposit.zip"))
    assert write_deposit_zip(out, "T1.0", "2020-03-04", members[::-1], tmp_path / "again.zip") == (size, sha)
    with zipfile.ZipFile(tmp_path / "deposit.zip") as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names) and names[0] == "atlas-T1.0-icpsr/"
        assert {i.date_time for i in infos} == {(2020, 3, 4, 0, 0, 0)}
        assert {i.external_attr >> 16 & 0o777 for i in infos if not i.is_dir()} == {0o644}
        assert z.testzip() is None
        assert z.read("atlas-T1.0-icpsr/bag-info.txt") == (out / "packages/atlas-T1.0-icpsr/bag-info.txt").read_bytes()
        nii = [i for i in infos if i.filename.endswith(".nii.gz")]
        assert nii and all(i.compress_type == zipfile.ZIP_STORED for i in nii)


def test_spss_and_stata_read_back_with_labels(built):
    import pyreadstat

    view, out, _ = built
    for ext, read in ((".sav", pyreadstat.read_sav), (".dta", pyreadstat.read_dta)):
        df, meta = read(str(out / f"icpsr/tables/ATLAS_scans{ext}"))
        assert len(df) == len(view.scans)
        assert meta.creation_time.isoformat() == "2020-03-04T00:00:00"  # the release date, not the build time
        assert meta.column_names_to_labels["pvh"].startswith("PVH")
        assert meta.variable_value_labels["pvh"][0] == "absence"
        df, meta = read(str(out / f"icpsr/tables/ATLAS_lesions{ext}"))
        assert len(df) == view.n_lesions
        labels = meta.variable_value_labels["hemisphere"]
        assert {labels[v] for v in df["hemisphere"].dropna()} <= set(labels.values())
        assert "left hemisphere" in labels.values()


def test_workbook_and_csv(built):
    import csv

    from openpyxl import load_workbook

    view, out, _ = built
    wb = load_workbook(out / "icpsr/native/ATLAS_metadata.xlsx", read_only=True)
    assert wb.sheetnames == ["scans", "lesions", "scanners"]
    assert wb.properties.created.date().isoformat() == "2020-03-04"
    rows = list(csv.DictReader((out / "icpsr/native/ATLAS_scans.csv").open()))
    assert len(rows) == len(view.scans) and rows[0]["Scan ID"] == view.scans[0].code
    xl = list(wb["scans"].iter_rows(values_only=True))
    assert [c for c in xl[0]] == list(rows[0]) and len(xl) == len(rows) + 1


def test_parquet_tables(built, export_ws):
    import duckdb
    import pandas as pd
    import pyarrow.parquet as pq

    from atlas_registry.export import parquet

    view, out, _ = built
    pdir = out / "parquet"
    scans = pq.read_table(pdir / "scans.parquet")
    assert tuple(scans.column_names) == views.SCAN_COLUMNS
    assert tuple(pq.read_table(pdir / "lesions.parquet").column_names) == views.LESION_COLUMNS
    assert scans.schema.field("total_volume_mm3").metadata[b"unit"] == b"mm3"
    assert scans.schema.metadata[b"atlas.table"] == b"scans"
    con = duckdb.connect()
    n = {
        t: con.execute(f"SELECT COUNT(*) FROM read_parquet('{pdir / t}.parquet')").fetchone()[0]
        for t in ("scans", "lesions", "images", "scanners", "revisions", "releases")
    }
    assert n == {"scans": 6, "lesions": 10, "images": 9, "scanners": 2, "revisions": 2, "releases": 1}
    by = dict(con.execute(f"SELECT cohort, COUNT(*) FROM read_parquet('{pdir}/lesions.parquet') GROUP BY 1").fetchall())
    assert by == {"c0001": 3, "c0003": 7}
    df = pd.read_parquet(pdir / "lesions.parquet")
    assert set(df["hemisphere"]) == {"left", "right", "other"} and df["is_primary"].sum() == 6
    assert set(pd.read_parquet(pdir / "scans.parquet")["standard_status"]) == {"included", "excluded"}
    # the documented schema is the one written
    documented = json.loads((Path(__file__).parent.parent / "schemas/parquet.schema.json").read_text())
    assert documented == parquet.json_schema() == json.loads((pdir / "schema.json").read_text())


def test_ddi_codebook(built):
    view, out, _ = built
    ns = {"d": "ddi:codebook:2_5"}
    root = ET.parse(out / "icpsr/codebook.xml").getroot()
    assert root.tag == "{ddi:codebook:2_5}codeBook" and root.get("version") == "2.5"
    assert root.findtext("d:stdyDscr/d:citation/d:titlStmt/d:titl", namespaces=ns) == view.spec.title
    assert root.find("d:stdyDscr/d:citation/d:titlStmt/d:IDNo", ns).text == "T1.0"
    assert len(root.findall("d:fileDscr", ns)) == 11  # 3 tables x (csv, sav, dta), the workbook, the crosswalk
    pvh = next(v for v in root.findall("d:dataDscr/d:var", ns) if v.get("name") == "pvh")
    assert pvh.findtext("d:labl", namespaces=ns).startswith("periventricular")
    assert [c.findtext("d:catValu", namespaces=ns) for c in pvh.findall("d:catgry", ns)] == ["0", "1", "2", "3"]
    stats = {s.get("type"): s.text for s in pvh.findall("d:sumStat", ns)}
    assert stats["vald"] == "6" and stats["min"] == "0" and stats["max"] == "3"
    md = (out / "icpsr/codebook.md").read_text()
    assert "| PVH | pvh |" in md and view.spec.how_to_cite in md
    readme = (out / "icpsr/README.md").read_text()
    assert view.spec.data_use in readme and view.spec.how_to_cite in readme


def test_incremental_build_recomputes_only_the_changed_scan(export_ws_fresh, export_spec, tmp_path, monkeypatch):
    from test_export_view import replace_standard_mask

    from atlas_registry.export import bids

    calls = []
    real = bids.union_mask_bytes
    monkeypatch.setattr(bids, "union_mask_bytes", lambda store, lesions: calls.append(lesions) or real(store, lesions))
    cache = tmp_path / "cache"
    first = write_archives(
        export_ws_fresh, view_of(export_ws_fresh, export_spec), tmp_path / "a", changes=CHANGES, cache_dir=cache
    )
    assert len(calls) == 1  # one scan of the subset has several lesions
    write_archives(
        export_ws_fresh, view_of(export_ws_fresh, export_spec), tmp_path / "b", changes=CHANGES, cache_dir=cache
    )
    assert len(calls) == 1  # nothing changed: everything from the cache
    replace_standard_mask(export_ws_fresh, "c0003s0002t01", 2)
    second = write_archives(
        export_ws_fresh, view_of(export_ws_fresh, export_spec), tmp_path / "c", changes=CHANGES, cache_dir=cache
    )
    assert len(calls) == 2
    changed = {e.path for e in second} ^ {e.path for e in first} | {
        a.path for a, b in zip(first, second, strict=False) if (a.path, a.sha256) != (b.path, b.sha256)
    }
    bids_changed = {p for p in changed if p.startswith("bids/sub-")}
    label = view_of(export_ws_fresh, export_spec).scan("c0003s0002t01").public_label
    assert bids_changed and all(f"sub-{label}/ses-1/" in p for p in bids_changed)


def test_cache_recomputes_a_damaged_entry(tmp_path):
    from atlas_registry.export.output import Cache

    cache = Cache(tmp_path)
    key = cache.key("recipe", "input")
    assert cache.get_or_make(key, lambda: b"derived") == b"derived"
    assert cache.get(key) == b"derived"
    path = tmp_path / key[:2] / key[2:]
    path.write_bytes(path.read_bytes()[:-1])  # damaged on disk
    assert cache.get(key) is None
    assert cache.get_or_make(key, lambda: b"derived") == b"derived" and cache.get(key) == b"derived"
    assert Cache(None).get_or_make(key, lambda: b"x") == b"x"


def test_issues_and_revisions_tables_name_public_scans(export_ws_fresh, export_spec, tmp_path):
    from datetime import datetime

    import pyarrow.parquet as pq
    from sqlmodel import select

    from atlas_registry.models import Issue, Revision, Timepoint

    when = datetime(2020, 2, 1, tzinfo=UTC)
    with Session(db.engine(export_ws_fresh)) as s:
        tp = s.exec(select(Timepoint).where(Timepoint.code == "c0003s0002t01")).one()
        for title in ("mask of c0003s0002t01 too big", "c0003s0002t01 has a microbleed"):
            s.add(
                Issue(
                    timepoint_id=tp.id,
                    title=title,
                    body="see c0003s0002",
                    url="https://github.com/npnl/ATLAS/issues/1",
                    opened_by="user",
                    opened_at=when,
                )
            )
        s.flush()
        first = s.exec(select(Issue).order_by(Issue.id)).first()
        s.add(
            Revision(
                kind="correct_metadata",
                issue_id=first.id,
                timepoint_id=tp.id,
                author="curator",
                reason="fixed c0003s0002t01",
                created_at=when,
            )
        )
        first.status, first.closed_at = "closed", when
        s.add(first)
        s.commit()
    view = view_of(export_ws_fresh, export_spec)
    write_archives(export_ws_fresh, view, tmp_path / "out", changes=CHANGES)
    public = view.scan("c0003s0002t01").public_scan
    issues = pq.read_table(tmp_path / "out/parquet/issues.parquet").to_pylist()
    assert [(i["scan"], i["status"], i["resolved_by"]) for i in issues] == [
        (public, "closed", [3]),
        (public, "open", []),
    ]
    assert issues[0]["title"] == f"mask of {public} too big" and "c0003" not in issues[0]["body"]
    revisions = pq.read_table(tmp_path / "out/parquet/revisions.parquet").to_pylist()
    assert revisions[-1]["scan"] == public and revisions[-1]["reason"] == f"fixed {public}"


def test_participants_rows_follow_the_documented_schema(built):
    import jsonschema

    from atlas_registry.export import bids

    _, out, _ = built
    documented = json.loads((Path(__file__).parent.parent / "schemas/bids-participants.schema.json").read_text())
    assert documented == bids.tsv_json_schema(
        bids.PARTICIPANT_COLUMNS, documented["title"], "https://atlas-registry/schemas/bids-participants.schema.json"
    )
    lines = [row.split("\t") for row in (out / "bids/participants.tsv").read_text().splitlines()]
    assert lines[0] == documented["x-column-order"]
    for row in lines[1:]:
        jsonschema.validate(dict(zip(lines[0], row, strict=False)), documented)


def _zipfile_reference(dest: Path, root: Path, rels: list[str], day: str, prefix: str) -> None:
    """What zipfile writes on its own (ZipFile.open(info, "w") per entry) for write_zip's entries."""
    import shutil

    from atlas_registry.export.determinism import _STORED_SUFFIXES, _zinfo, entry_names, zip_date_time

    dt = zip_date_time(day)
    names = entry_names(rels, prefix)
    with zipfile.ZipFile(dest, "w", allowZip64=True) as zf:
        for name in sorted(names):
            if names[name] is None:
                zf.writestr(_zinfo(name, dt, is_dir=True), b"")
                continue
            zi = _zinfo(name, dt, compress=not name.endswith(_STORED_SUFFIXES))
            zi.file_size = (root / names[name]).stat().st_size
            with open(root / names[name], "rb") as src, zf.open(zi, "w") as out:
                shutil.copyfileobj(src, out, 1 << 16)


def test_write_zip_writes_what_zipfile_writes_and_hashes_it(tmp_path, monkeypatch):
    import hashlib
    import os

    from atlas_registry.export import determinism
    from atlas_registry.export.determinism import write_zip

    root = tmp_path / "tree"
    (root / "a/b").mkdir(parents=True)
    files = {
        "a/b/x.nii.gz": os.urandom(3_000_001),
        "a/t.txt": b"line of text\n" * 200_000,
        "z.json": b'{"a": 1}\n',
        "a/empty.tsv": b"",
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    rels = sorted(files)
    _zipfile_reference(tmp_path / "ref.zip", root, rels, "2018-02-20", "bag/")
    ref = (tmp_path / "ref.zip").read_bytes()
    size, sha = write_zip(tmp_path / "first.zip", root, rels, "2018-02-20", prefix="bag/")
    assert (tmp_path / "first.zip").read_bytes() == ref
    assert (size, sha) == (len(ref), hashlib.sha256(ref).hexdigest())
    monkeypatch.setattr(determinism, "_WHOLE_FILE_MAX", 1000)  # large files: CRC-32 first, then streamed
    write_zip(tmp_path / "second.zip", root, rels, "2018-02-20", prefix="bag/")
    assert (tmp_path / "second.zip").read_bytes() == ref
    with zipfile.ZipFile(tmp_path / "first.zip") as z:
        assert z.testzip() is None and z.read("bag/a/b/x.nii.gz") == files["a/b/x.nii.gz"]


def test_store_objects_are_hard_linked_read_only(built, export_ws):
    _, out, entries = built
    store = ObjectStore(export_ws.objects_dir)
    linked = [e for e in entries if e.path.startswith("icpsr/native/c") and store.has(e.sha256)]
    assert linked
    for e in linked:
        obj, f = store.path_of(e.sha256).stat(), (out / e.path).stat()
        assert (obj.st_ino, obj.st_dev) == (f.st_ino, f.st_dev), e.path  # one inode, no second copy
        assert f.st_mode & 0o777 == 0o444


def test_objects_are_copied_where_links_fail(export_ws, export_spec, tmp_path, monkeypatch):
    import errno
    import os

    from atlas_registry.export import output

    def no_links(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(output.os, "link", no_links)
    out = tmp_path / "out"
    entries = write_archives(
        export_ws,
        view_of(export_ws, export_spec),
        out,
        changes=CHANGES,
        release_notes="Notes.",
        cache_dir=tmp_path / "cache",
    )
    store = ObjectStore(export_ws.objects_dir)
    e = next(e for e in entries if e.path.startswith("icpsr/native/c") and store.has(e.sha256))
    assert os.stat(out / e.path).st_nlink == 1 and sha256_file(out / e.path) == e.sha256
    assert (out / e.path).stat().st_mode & 0o777 == 0o444


def test_a_build_does_not_recheck_what_ingest_verified(ingested_two, tmp_path, capsys):
    from atlas_registry import release, verdicts

    def checked() -> int:
        line = next(row for row in capsys.readouterr().err.splitlines() if "de-identification:" in row)
        return int(re.search(r"de-identification: (\d+) checked", line).group(1))

    before = verdicts.load(ingested_two.verdicts_dir)
    out = release.build(ingested_two, "R1.1", tmp_path / "out", progress=True)
    store = ObjectStore(ingested_two.objects_dir)
    manifest = json.loads((Path(out.out) / "MANIFEST.json").read_text())["files"]
    derived = [
        f
        for f in manifest
        if f["path"].endswith(".nii.gz") and not store.has(f["sha256"]) and not f["path"].startswith("packages/")
    ]  # (the BIDS bag links the same files)
    assert derived and all("desc-T1lesion" in f["path"] for f in derived)  # union masks: made by the build
    assert any(v.startswith("face ") for v in before)
    assert checked() == len(derived)  # everything ingest verified is known: no T1 inflated again
    # without the registry's verdicts, the gate checks every image again (and remembers them)
    for f in ingested_two.verdicts_dir.iterdir():
        f.unlink()
    release.build(ingested_two, "R1.1", tmp_path / "again", progress=True, force=True)
    assert checked() > len(derived) + sum(1 for v in before if v.startswith("face "))
    assert {v for v in verdicts.load(ingested_two.verdicts_dir) if v.startswith("face ")} == {
        v for v in before if v.startswith("face ")
    }


def test_the_restricted_archive_links_to_the_public_ones_and_they_cannot_link_back(built):
    """#18.1: icpsr/crosswalk.csv pairs native identifiers with public labels; DuckDB joins it to the
    Parquet scans and pandas to BIDS participants.tsv; no public file names it or a native identifier."""
    import duckdb
    import pandas as pd

    view, out, _ = built
    cw = pd.read_csv(out / "icpsr/crosswalk.csv", dtype=str)
    assert list(cw.columns) == [
        "scan_id",
        "subject_id",
        "cohort",
        "participant_id",
        "session_id",
        "public_scan",
        "in_bids",
    ]
    assert sorted(cw.scan_id) == sorted(s.code for s in view.scans)
    con = duckdb.connect()
    joined = con.execute(
        f"SELECT c.scan_id, p.scan FROM read_csv('{out}/icpsr/crosswalk.csv', all_varchar=true) c "
        f"JOIN read_parquet('{out}/parquet/scans.parquet') p ON p.scan = c.public_scan"
    ).fetchall()
    assert len(joined) == len(view.scans)
    parts = pd.read_csv(out / "bids/participants.tsv", sep="\t", dtype=str)
    linked = cw[cw.in_bids == "yes"].merge(parts, on="participant_id")
    assert set(linked.participant_id) == set(parts.participant_id)
    for s in view.standard_scans:  # the BIDS file of each native scan, found through the crosswalk
        row = cw[cw.scan_id == s.code].iloc[0]
        assert (out / "bids" / row.participant_id / row.session_id / "anat").is_dir()
    icpsr_readme, bids_readme = (out / "icpsr/README.md").read_text(), (out / "bids/README").read_text()
    assert "crosswalk.csv" in icpsr_readme and "re-identify" in icpsr_readme
    assert "Linking to the restricted (ICPSR) archive" in bids_readme and "re-identify" in bids_readme
    assert not any(p.name == "crosswalk.csv" for p in (out / "bids").rglob("*"))
    assert not any(p.name == "crosswalk.csv" for p in (out / "parquet").rglob("*"))


def test_the_bids_readme_snippet_loads_every_image_with_pybids(built):
    """#18.2: the README's pybids snippet, run as written (path replaced), finds every T1w and mask;
    pybids' defaults find none (what the README warns about)."""
    import contextlib
    import io

    from bids import BIDSLayout

    view, out, _ = built
    readme = (out / "bids/README").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0].replace("path/to/bids", str(out / "bids"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README snippet", "exec"), {})
    n = len(view.standard_scans)
    n_subjects = len({s.public_label for s in view.standard_scans})
    assert printed.getvalue().strip() == (
        f"{n_subjects} subjects, {n} T1w images, {n} lesion masks, {n} primary lesion masks"
    )
    default = BIDSLayout(out / "bids")
    assert default.get(suffix="T1w", extension=".nii.gz") == [] and default.get(suffix="mask") == []


def test_bids_says_what_made_it_and_where_it_lies(built, export_spec):
    """#18.5: GeneratedBy lists the pipeline of the specification (with versions) before the packager;
    SourceDatasets names the source, not the release; SpatialReference is the template at the written
    resolution; sessions.json has its own text; the official validator: 0 errors, 0 warnings."""
    import subprocess
    import sys

    import nibabel as nib

    view, out, _ = built
    desc = json.loads((out / "bids/dataset_description.json").read_text())
    assert [g["Name"] for g in desc["GeneratedBy"]] == [p["name"] for p in export_spec.standard.pipeline] + [
        "atlas-registry"
    ]
    assert all(g["Version"] for g in desc["GeneratedBy"])
    assert desc["SourceDatasets"] == [{"DOI": "doi:10.0000/native", "Version": "1.0.0"}]
    assert all(export_spec.name not in json.dumps(sd) for sd in desc["SourceDatasets"])
    for side in (out / "bids").rglob("*_T1w.json"):
        t1 = nib.load(side.with_name(side.name.replace(".json", ".nii.gz")))
        res = {round(float(z), 3) for z in t1.header.get_zooms()[:3]}
        meta = json.loads(side.read_text())
        assert res == {1.0} and meta["SpatialReference"].endswith("tpl-MNI152NLin2009aSym_res-1_T1w.nii.gz")
        assert meta["Sources"] == [meta["SpatialReference"]]
    sessions = json.loads((out / "bids/sessions.json").read_text())
    participants = json.loads((out / "bids/participants.json").read_text())
    assert sessions["pvh"]["Description"].endswith("At this session.")
    assert sessions["Description"] != participants["Description"]
    exe = Path(sys.executable).parent / "bids-validator-deno"
    r = subprocess.run([str(exe), str(out / "bids"), "--format", "json"], capture_output=True, text=True, timeout=600)
    issues = json.loads(r.stdout)["issues"]["issues"]
    assert r.returncode == 0 and sorted({(i["severity"], i["code"]) for i in issues}) == []


def test_parquet_types_keys_and_one_row_per_mask_file(built):
    """#18.7 with pyarrow and DuckDB: list and date types, non-null keys, one row per BIDS mask file
    whose path, size and SHA-256 are those of the file."""
    import datetime

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    view, out, entries = built
    pdir = out / "parquet"
    scans = pq.read_table(pdir / "scans.parquet")
    assert scans.schema.field("releases").type == pa.list_(pa.string())
    assert scans.column("releases").to_pylist()[0] == ["T1.0"]
    rel = pq.read_table(pdir / "releases.parquet")
    assert rel.schema.field("date").type == pa.date32() and rel.column("date").to_pylist() == [
        datetime.date(2020, 3, 4)
    ]
    for name, keys in (
        ("scans", ("scan", "subject", "cohort")),
        ("lesions", ("scan", "lesion")),
        ("masks", ("scan", "path", "sha256")),
        ("releases", ("name",)),
    ):
        sch = pq.read_schema(pdir / f"{name}.parquet")
        assert all(not sch.field(k).nullable for k in keys), name
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT path, size_bytes, sha256, lesion, lesion_desc FROM read_parquet('{pdir}/masks.parquet') ORDER BY path"
    ).fetchall()
    by_path = {e.path: e for e in entries}
    mask_files = sorted(e.path for e in entries if e.path.startswith("bids/") and e.path.endswith("_mask.nii.gz"))
    assert [r[0] for r in rows] == mask_files
    for path, size, sha, lesion, desc in rows:
        assert (
            (size, sha)
            == (by_path[path].size, by_path[path].sha256)
            == ((out / path).stat().st_size, sha256_file(out / path))
        )
        assert f"desc-{desc}_" in path and (lesion is None) == (desc == "T1lesion")
    assert con.execute(
        f"SELECT COUNT(*) FROM read_parquet('{pdir}/scans.parquet') WHERE list_contains(releases, 'T1.0')"
    ).fetchone()[0] == len(view.scans)


def test_spss_measure_levels_formats_widths_and_labels(built, export_spec):
    """#18.4 with pyreadstat: every variable has a measure level, whole numbers are F8.0, text widths
    fit the longest value, the file label is a whole phrase, no variable name is cut."""
    import pyreadstat

    from atlas_registry import metadata
    from atlas_registry.export import icpsr

    view, out, _ = built
    for table in ("scans", "lesions", "scanners"):
        df, meta = pyreadstat.read_sav(str(out / f"icpsr/tables/ATLAS_{table}.sav"))
        cols = {c.stat_name: c for c in icpsr.columns(table)}
        assert list(meta.column_names) == [c.stat_name for c in icpsr.columns(table)]
        assert set(meta.variable_measure.values()) <= {"nominal", "ordinal", "scale"}, meta.variable_measure
        for name, fmt in meta.original_variable_types.items():
            c = cols[name]
            if c.numeric or c.categories:
                assert fmt == ("F8.0" if c.integer else "F8.3"), (name, fmt)
            else:
                longest = max([1, *(len(str(v).encode()) for v in df[name])])
                assert fmt == f"A{longest}", (name, fmt)
        assert meta.file_label in icpsr.label_candidates(export_spec.title, export_spec.name, table)
        assert len(meta.file_label.encode()) <= 64
        assert len(metadata.COLUMNS[table]) == len(meta.column_names)
    df, meta = pyreadstat.read_sav(str(out / "icpsr/tables/ATLAS_scans.sav"))
    assert meta.variable_measure["pvh"] == "ordinal" and meta.variable_measure["stroke_type"] == "nominal"
    assert meta.variable_measure["n_strokes_lh_cortical"] == "scale"
    assert "primary_hemisphere" in meta.column_names  # not primary_stroke_location_hemisp
    assert all(float(v).is_integer() for v in df["n_strokes_lh_cortical"].dropna())
    _, smeta = pyreadstat.read_sav(str(out / "icpsr/tables/ATLAS_scanners.sav"))
    assert smeta.original_variable_types["field_strength_t"] == "F8.3"
    # a long title: a shorter whole phrase, not the title cut at 64 bytes
    long = "Anatomical Tracings of Lesions After Stroke (ATLAS) Release 1.2"
    assert icpsr.file_label(icpsr.label_candidates(long, "R1.2", "lesions"), 64) == "ATLAS R1.2: lesions table"


def test_every_archive_is_a_bagit_1_0_bag_with_the_deposit_fields(built, export_spec):
    """#18.6 with the bagit library: one valid BagIt 1.0 bag per archive, its payload the archive's
    files, bag-info.txt with the specification's organization, contact and identifier."""
    import bagit

    view, out, entries = built
    for archive in ("icpsr", "bids", "parquet"):
        bag = bagit.Bag(str(out / f"packages/atlas-T1.0-{archive}"))
        bag.validate()
        assert bag.version_info == (1, 0) and (out / f"packages/atlas-T1.0-{archive}/bagit.txt").read_text().startswith(
            "BagIt-Version: 1.0\n"
        )
        assert sorted(bag.payload_entries()) == sorted(
            "data/" + e.path[len(archive) + 1 :] for e in entries if e.archive == archive
        )
        assert bag.info["Source-Organization"] == export_spec.deposit.source_organization == "Test Laboratory"
        assert bag.info["Contact-Name"] == "Ada Lovelace" and bag.info["Contact-Email"] == "ada@example.org"
        assert bag.info["External-Identifier"] == "T1.0 1.0.0 10.0000/test"
        assert bag.info["Bagging-Date"] == export_spec.date  # the release date: the same bag on every rebuild


def test_ddi_codebook_describes_every_data_file_and_is_valid_ddi_2_5(built):
    """#18.3: codebook.xml is valid against the official DDI-C 2.5 XSD (xmlschema, offline), has a file
    description for every data file (CSV, SPSS, Stata, the workbook, the crosswalk), categories whose
    values are the codes in the .sav/.dta files (pyreadstat), and a study description."""
    import pyreadstat
    import xmlschema

    view, out, _ = built
    xsd = xmlschema.XMLSchema(str(Path(__file__).parent / "ddi-codebook-2.5/schemas/codebook.xsd"))
    xml = out / "icpsr/codebook.xml"
    errors = [str(e)[:300] for e in xsd.iter_errors(str(xml))]
    assert errors == []
    ns = {"d": "ddi:codebook:2_5"}
    root = ET.parse(xml).getroot()
    uris = {f.get("URI") for f in root.findall("d:fileDscr", ns)}
    data_files = {
        p.relative_to(out / "icpsr").as_posix()
        for p in (out / "icpsr").rglob("*")
        if p.suffix in (".csv", ".sav", ".dta", ".xlsx")
    }
    assert uris == data_files and "crosswalk.csv" in uris and "tables/ATLAS_lesions.sav" in uris
    ids = {f.get("ID"): f.get("URI") for f in root.findall("d:fileDscr", ns)}
    for stem in ("ATLAS_scans", "ATLAS_lesions", "ATLAS_scanners"):
        for ext, read in ((".sav", pyreadstat.read_sav), (".dta", pyreadstat.read_dta)):
            _, meta = read(str(out / f"icpsr/tables/{stem}{ext}"))
            for var in root.findall("d:dataDscr/d:var", ns):
                files = {ids[i] for i in var.get("files").split()}
                if f"tables/{stem}{ext}" not in files or not var.findall("d:catgry", ns):
                    continue
                cats = {
                    float(c.find("d:catValu", ns).text): c.find("d:labl", ns).text for c in var.findall("d:catgry", ns)
                }
                assert cats == meta.variable_value_labels[var.get("name")], (stem, ext, var.get("name"))
    study = root.find("d:stdyDscr", ns)
    for path in (
        "d:stdyInfo/d:subject/d:keyword",
        "d:stdyInfo/d:sumDscr/d:timePrd",
        "d:stdyInfo/d:sumDscr/d:nation",
        "d:stdyInfo/d:sumDscr/d:anlyUnit",
        "d:stdyInfo/d:sumDscr/d:universe",
        "d:stdyInfo/d:sumDscr/d:dataKind",
        "d:method/d:dataColl/d:collMode",
    ):
        assert (study.findtext(path, namespaces=ns) or "").strip(), path
