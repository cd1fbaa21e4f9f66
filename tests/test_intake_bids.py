"""intake of a BIDS delivery: the official validator first, lesion masks from an ATLAS 2.0 derivative."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from atlas_registry import gz
from atlas_registry import metadata as md
from atlas_registry.errors import AtlasError
from atlas_registry.intake import run
from atlas_registry.synth.bids_delivery import write_bids_delivery
from atlas_registry.validate.runner import validate_path

COHORT = "c0001"

if not (Path(sys.executable).parent / "bids-validator-deno").exists():
    pytest.skip("bids-validator-deno not installed (test extra)", allow_module_level=True)


@pytest.fixture
def bids_delivery(synth_two_cohorts, tmp_path):
    info = write_bids_delivery(synth_two_cohorts / "native", COHORT, tmp_path / "d")
    return tmp_path / "d", info


def test_bids_delivery_becomes_a_valid_cohort(registry, bids_delivery, synth_two_cohorts, tmp_path):
    root, info = bids_delivery
    res = run(root, "c0012", tmp_path / "native", registry, workers=1)
    assert res.kind == "bids" and len(res.scans) == len(info["scans"])
    report = validate_path(tmp_path / "native", workers=1).report
    assert [f for f in report.findings if f.severity == "error"] == []
    src, got = md.read_metadata(synth_two_cohorts / "native"), md.read_metadata(tmp_path / "native")
    for orig, key in info["scans"].items():
        new = res.ids[key]
        n_src = int((src["lesions"]["Scan ID"] == orig).sum())
        n_got = int((got["lesions"]["Scan ID"] == new).sum())
        assert n_got >= n_src  # one combined mask split into its 26-connected parts
    side = json.loads(next((tmp_path / "native").rglob("c0012s*.json")).read_text())
    assert "InstitutionName" not in side and "AcquisitionDateTime" not in side and side["MagneticFieldStrength"] == 1.5
    for p in (tmp_path / "native").rglob("*"):
        if p.is_file():
            data = p.read_bytes()
            data += gz.decompress(data) if data[:2] == b"\x1f\x8b" else b""
            for v in info["identifiers"] + ["baseline", "sub-", "2014"]:
                assert v.encode() not in data, (p, v)


def test_bids_validator_errors_refuse_the_delivery(registry, bids_delivery, tmp_path):
    root, info = bids_delivery
    subject, session = next(iter(info["scans"].values()))
    bad = root / f"sub-{subject}" / f"ses-{session}" / "anat" / "notes_T1w.txt"
    bad.write_text("scanned late\n")
    with pytest.raises(AtlasError) as e:
        run(root, "c0012", tmp_path / "native", registry, workers=1)
    assert e.value.code == "INTK013" and e.value.path == bad.relative_to(root).as_posix()
    assert not (tmp_path / "native").exists()


def test_bids_subject_without_row_is_refused(registry, bids_delivery, tmp_path):
    root, info = bids_delivery
    text = (root / "MAP.csv").read_text().splitlines()
    (root / "MAP.csv").write_text("\n".join(text[:-1]) + "\n")
    with pytest.raises(AtlasError) as e:
        run(root, "c0012", tmp_path / "native", registry, workers=1)
    assert e.value.code == "INTK005" and e.value.path.startswith("sub-")
