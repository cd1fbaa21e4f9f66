"""Acceptance: the R1.1 release of the whole small synthetic dataset (``ingested_small``).

304 scans in the ICPSR archive, 229 in the BIDS archive (0 validator errors or warnings), 521 lesions
in Parquet, the BagIt bag validates, SPSS/Stata files read back with labels, the ICPSR native folder is
the ingested native archive byte for byte, Tables 1 and 2 are the same on the release's Parquet as on
the registry, and two writes of the same view are byte-identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from atlas_registry import db
from atlas_registry.export import build_view, write_archives
from atlas_registry.release_spec import load_spec

pytestmark = pytest.mark.slow
CHANGES = "1.1.0 2018-02-20\n  - Initial release.\n"


@pytest.fixture(scope="module")
def small_release(ingested_small, tmp_path_factory):
    spec = load_spec("R1.1")
    with Session(db.engine(ingested_small)) as s:
        view = build_view(s, spec)
    out = tmp_path_factory.mktemp("r11") / "out"
    entries = write_archives(ingested_small, view, out, changes=CHANGES, cache_dir=out.parent / "cache")
    return view, out, entries


def test_counts(small_release):
    import duckdb

    view, out, entries = small_release
    assert len(view.scans) == 304 and len(view.standard_scans) == 229 and view.n_lesions == 521
    assert len(list((out / "icpsr/native").glob("c????/*/c????s????t??.nii.gz"))) == 304
    assert len(list((out / "bids").glob("sub-*/ses-*/anat/*_T1w.nii.gz"))) == 229
    assert len(list((out / "bids").glob("sub-*/ses-*/anat/*_desc-T1lesion_mask.nii.gz"))) == 229
    con = duckdb.connect()
    pq = out / "parquet"
    assert con.execute(f"SELECT COUNT(*) FROM '{pq}/lesions.parquet'").fetchone()[0] == 521
    assert con.execute(f"SELECT COUNT(*) FROM '{pq}/scans.parquet'").fetchone()[0] == 304
    assert (
        con.execute(f"SELECT COUNT(*) FROM '{pq}/scans.parquet' WHERE standard_status = 'included'").fetchone()[0]
        == 229
    )
    assert dict(view.exclusions).values() and set(dict(view.exclusions).values()) == {
        "low_resolution",
        "registration_failed",
    }
    participants = (out / "bids/participants.tsv").read_text().splitlines()
    assert len(participants) == 1 + 220  # 229 scans of 220 people


def test_bids_validator_zero_errors(small_release):
    _, out, _ = small_release
    exe = Path(sys.executable).parent / "bids-validator-deno"
    if not exe.exists():
        pytest.skip("bids-validator-deno not installed")
    r = subprocess.run([str(exe), str(out / "bids"), "--format", "json"], capture_output=True, text=True, timeout=600)
    issues = json.loads(r.stdout)["issues"]["issues"]
    assert [i for i in issues if i["severity"] == "error"] == [] and r.returncode == 0
    assert sorted({i["code"] for i in issues}) == []  # no warnings either


def test_pybids_finds_everything(small_release):
    from bids import BIDSLayout
    from bids.layout import BIDSLayoutIndexer

    view, out, _ = small_release
    layout = BIDSLayout(
        out / "bids", validate=False, is_derivative=True, indexer=BIDSLayoutIndexer(index_metadata=False)
    )  # names only: 3x faster
    assert len(layout.get(suffix="T1w", space="MNI152NLin2009aSym", extension=".nii.gz")) == 229
    assert len(layout.get(suffix="mask", label="L", desc="T1lesion", extension=".nii.gz")) == 229
    assert len(layout.get(suffix="mask", desc="primary", extension=".nii.gz")) == 229
    n_std_lesions = sum(len(s.lesions) for s in view.standard_scans)
    assert len(layout.get(suffix="mask", label="L", extension=".nii.gz")) == 229 + n_std_lesions
    assert len(layout.get_subjects()) == 220


def test_bag_and_statistical_files(small_release):
    import bagit
    import pyreadstat

    _, out, _ = small_release
    bagit.Bag(str(out / "packages/atlas-R1.1-icpsr")).validate()
    df, meta = pyreadstat.read_sav(str(out / "icpsr/tables/ATLAS_scans.sav"))
    assert len(df) == 304 and meta.variable_value_labels["pvh"][3].startswith("irregular")
    df, meta = pyreadstat.read_dta(str(out / "icpsr/tables/ATLAS_lesions.dta"))
    assert len(df) == 521 and set(meta.variable_value_labels["location"].values()) >= {"reaches the cortex"}


def test_paper_tables_same_on_release_as_on_registry(small_release, ingested_small):
    import duckdb

    from atlas_registry import stats

    _, out, _ = small_release
    con = duckdb.connect()
    for view_name in ("scans", "lesions"):
        con.execute(f"CREATE VIEW {view_name} AS SELECT * FROM read_parquet('{out}/parquet/{view_name}.parquet')")
    for sql in (stats.TABLE1_SQL, stats.TABLE2_SQL):
        release_rows = sorted(
            tuple(int(v) if isinstance(v, (int, float)) else v for v in r) for r in con.execute(sql).fetchall()
        )
        registry_rows = sorted(
            tuple(int(v) if isinstance(v, (int, float)) else v for v in r) for r in stats.fetch(ingested_small, sql)
        )
        assert release_rows == registry_rows


def test_two_writes_are_byte_identical(small_release, ingested_small, tmp_path):
    view, out, entries = small_release
    again = write_archives(ingested_small, view, tmp_path / "again", changes=CHANGES, cache_dir=out.parent / "cache")
    assert [(e.path, e.sha256) for e in again] == [(e.path, e.sha256) for e in entries]


def test_icpsr_native_is_the_ingested_archive_byte_for_byte(small_release, synth_small):
    """Images, masks, CSVs and workbook: the release gives back exactly what was ingested (so it
    validates and ingests again as the source did)."""
    from atlas_registry.store import sha256_file

    _, out, _ = small_release
    src, got = synth_small / "native", out / "icpsr/native"
    names = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file())
    assert all(sha256_file(src / n) == sha256_file(got / n) for n in names)
