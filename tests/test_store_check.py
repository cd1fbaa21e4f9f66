"""`store verify`: every object the registry records, read back from the store and named with the
scans and files that use it."""

from __future__ import annotations

import json
import os

from helpers import assert_valid
from sqlalchemy import text

from atlas_registry import db, store_check
from atlas_registry.cli import main
from atlas_registry.store import ObjectStore


def _cli(ws) -> list[str]:
    return ["--home", str(ws.home)] + (["--db", ws.db] if ws.db else [])


def _objects_of(ws, sql: str) -> list[tuple[str, str, str]]:
    with db.engine(ws).connect() as c:
        return [tuple(r) for r in c.execute(text(sql))]


def test_an_intact_store_and_three_kinds_of_damage(ingested_two, capsys):
    ws = ingested_two
    store = ObjectStore(ws.objects_dir)
    result = store_check.verify_store(ws)
    assert result.ok and result.report.findings == []
    with db.engine(ws).connect() as c:
        n, size = c.execute(text("SELECT COUNT(*), SUM(size_bytes) FROM stored_object")).one()
    assert (result.report.files, result.bytes) == (n, size)

    t1s = _objects_of(
        ws,
        "SELECT i.sha256, t.code, i.source_name FROM image i JOIN timepoint t "
        "ON t.id = i.timepoint_id WHERE i.space = 'native' ORDER BY t.code",
    )
    (gone, gone_scan, gone_name), (flipped, flipped_scan, _), (loose, _, _) = t1s[0], t1s[1], t1s[2]
    os.unlink(store.path_of(gone))
    p = store.path_of(flipped)
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[-10] ^= 0xFF
    p.write_bytes(bytes(data))
    os.chmod(p, 0o444)
    os.chmod(store.path_of(loose), 0o664)
    stray = store.put(b"left by an interrupted ingest")
    result = store_check.verify_store(ws, workers=2)
    assert not result.ok
    rel = lambda sha: os.path.relpath(store.path_of(sha), store.root)  # noqa: E731
    assert sorted((f.code, f.severity, f.path) for f in result.report.findings) == sorted(
        [
            ("STO001", "error", rel(gone)),
            ("STO002", "error", rel(flipped)),
            ("STO003", "warning", rel(loose)),
            ("STO004", "info", rel(stray)),
        ]
    )
    missing = next(f for f in result.report.findings if f.code == "STO001")
    assert missing.subject == gone_scan and f"{gone_scan}/{gone_name}" in missing.message
    assert next(f for f in result.report.findings if f.code == "STO002").subject == flipped_scan

    assert main(_cli(ws) + ["store", "verify", "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert_valid(doc, "findings-report.schema.json")
    assert doc["summary"]["errors"] == 2 and doc["summary"]["warnings"] == 1
    assert main(_cli(ws) + ["store", "verify"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].endswith("2 error(s), 1 warning(s)") and any(line.startswith("ERROR   [STO002]") for line in out)


def test_no_registry_is_refused_in_one_line(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "none"), "store", "verify"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [REG001]") and not (tmp_path / "none").exists()
