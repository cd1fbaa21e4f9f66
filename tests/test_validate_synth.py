"""The synthetic archive validates without a single finding, and the result holds everything ingest
needs; the report is deterministic whatever the number of workers; the CLI contract."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from atlas_registry import metadata as md
from atlas_registry import naming
from atlas_registry.cli import main
from atlas_registry.validate.runner import validate_path


def _assert_clean(result):
    assert result.report.findings == [], result.report.to_text()


def test_native_archive_is_clean_and_complete(synth_two_cohorts):
    root = synth_two_cohorts / "native"
    result = validate_path(root, workers=2)
    _assert_clean(result)
    assert result.kind == "native" and result.root == root.absolute()
    frames = md.read_metadata(root)
    sids = set(frames["scans"][md.SCAN_ID])
    assert set(result.scans) == sids
    lesions = frames["lesions"].groupby(md.SCAN_ID).size().to_dict()
    files = 3  # the workbook and the CSVs... counted below
    for sid, rec in result.scans.items():
        assert rec.t1 is not None and rec.t1.relpath == naming.native_relpath(sid, "t1")
        assert len(rec.t1.sha256) == 64 and rec.t1.size == (root / rec.t1.relpath).stat().st_size
        assert sorted(rec.lesions) == list(range(lesions[sid]))
        for n, variants in rec.lesions.items():
            assert sorted(variants) == sorted(naming.VARIANTS)
            for v, m in variants.items():
                assert m.relpath == naming.native_relpath(sid, "lesion", v, n) and m.space == "native"
                assert m.voxel_count > 0 and m.volume_mm3 >= 10 and m.n_components >= 1
                meta = result.metadata.lesions[(sid, n)]
                assert (m.hemisphere, m.location) == (meta.hemisphere, meta.location)
        files += 1 + 3 * len(rec.lesions)
    assert result.report.files == files + 1
    meta = result.metadata
    assert set(meta.scans) == sids and set(meta.scanners) == {"c0001", "c0009"}
    assert meta.scanners["c0001"].field_strength_t == 1.5
    assert {s.primary_hemisphere for s in meta.scans.values()} <= {"left", "right", "brainstem", "bilateral"}
    assert all(s.pvh in range(4) and s.dwmh in range(4) for s in meta.scans.values())


def test_standard_archive_is_clean_and_complete(synth_two_cohorts):
    root = synth_two_cohorts / "standard"
    result = validate_path(root, workers=2)
    _assert_clean(result)
    assert result.kind == "standard"
    fails = md.read_registration_failures(root)
    low = set(fails.loc[fails["Exclusion"] == "low resolution", md.SCAN_ID])
    failed = dict(fails.loc[fails["Exclusion"] == "registration failure", [md.SCAN_ID, "Reason"]].values)
    assert set(result.low_resolution) == low and {s[:5] for s in low} == {"c0001"}
    assert {f.scan_id: f.reason for f in result.registration_failures} == failed
    assert not (set(result.scans) & (low | set(failed)))
    for sid, rec in result.scans.items():
        assert rec.t1.defaced and rec.t1.relpath == naming.standard_relpath(sid, "t1")
        for variants in rec.lesions.values():
            assert list(variants) == ["smooth_nii"] and variants["smooth_nii"].space == naming.STANDARD_SPACE


def test_deterministic_whatever_the_workers(synth_two_cohorts):
    root = synth_two_cohorts / "native" / "c0009"
    one, two = validate_path(root, workers=1), validate_path(root, workers=2)
    assert one.report.to_dict() == two.report.to_dict()
    assert {k: asdict(v) for k, v in one.scans.items()} == {k: asdict(v) for k, v in two.scans.items()}
    assert one.root == two.root == (synth_two_cohorts / "native").absolute()


def test_cli_json_text_and_exit_codes(synth_two_cohorts, capsys, tmp_path):
    root = synth_two_cohorts / "native" / "c0001"
    assert main(["validate", str(root), "--format", "json", "--workers", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["findings"] == [] and set(out["summary"]) == {"errors", "warnings", "files"}
    assert main(["validate", str(root), "--workers", "1", "--progress"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"0 error(s), 0 warning(s) in {out['summary']['files']} file(s)")
    assert main(["validate", str(tmp_path / "missing")]) == 1
    assert "NAME014" in capsys.readouterr().err
    assert main(["validate", str(tmp_path), "--format", "json"]) == 1
    assert [f["code"] for f in json.loads(capsys.readouterr().out)["findings"]] == ["NAME014"]
    assert main(["validate", str(root), "--format", "yaml"]) == 2


def test_separate_metadata_option(synth_two_cohorts, tmp_path, capsys):
    import shutil

    dst = tmp_path / "native" / "c0009"
    shutil.copytree(synth_two_cohorts / "native" / "c0009", dst)
    result = validate_path(dst, workers=1)
    assert result.report.codes("error") == {"META001"}
    meta = synth_two_cohorts / "native" / naming.METADATA_WORKBOOK
    _assert_clean(validate_path(dst, workers=1, metadata=meta))
    assert main(["validate", str(dst), "--metadata", str(meta), "--workers", "1"]) == 0


@pytest.mark.slow
def test_whole_small_archive_is_clean(request):
    """The 11-cohort small archive, when the session generates it anyway (``synth_small``, used by
    the ingest tests): this file alone stays fast, the whole suite checks all 304 scans."""
    others = [
        i for i in request.session.items if i is not request.node and "synth_small" in getattr(i, "fixturenames", ())
    ]
    if not others:
        pytest.skip("synth_small is generated only when other tests of the session need it")
    synth_small = request.getfixturevalue("synth_small")
    for sub in ("native", "standard"):
        _assert_clean(validate_path(synth_small / sub))
