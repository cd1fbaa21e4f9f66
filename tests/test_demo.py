"""The main job end to end (`atlas-registry demo`) on the small synthetic archive, as `make demo` runs
it: every step succeeds, the tables equal the paper's, both releases and the store check out, and
running it again in the same workspace changes nothing."""

from __future__ import annotations

import io
import shutil

import pytest
from rich.console import Console

from atlas_registry import fixity, stats, store_check
from atlas_registry.config import Workspace
from atlas_registry.demo import _compare_with_paper, run_demo
from atlas_registry.store import sha256_file


def _tree(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_demo_end_to_end_and_again(synth_small, tmp_path):
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(synth_small, ws.home / "synthetic")  # the demo reuses an archive it finds
    out = io.StringIO()
    res = run_demo(ws, console=Console(file=out, width=200), workers=2)
    text = out.getvalue()
    assert [title for title, _, _ in res.steps][0] == "synthesize ATLAS R1.1" and len(res.steps) == 12
    assert "identical to the data descriptor" in text and _compare_with_paper(stats.paper_tables(ws))
    assert sorted(res.releases) == ["R1.1", "R1.2"]
    for folder in res.releases.values():
        assert fixity.verify_release(folder, ws=ws).report.findings == []
    assert store_check.verify_store(ws).report.findings == []
    assert (res.report / "index.html").is_file() if res.report.is_dir() else res.report.is_file()
    before = {name: _tree(folder) for name, folder in res.releases.items()}

    again = run_demo(ws, console=Console(file=io.StringIO(), width=200), workers=2)  # published: rebuilt, same bytes
    assert {name: _tree(folder) for name, folder in again.releases.items()} == before
