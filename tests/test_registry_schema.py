"""The schema: migrations agree with the models, upgrade/downgrade work, constraints bite."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from atlas_registry import db
from atlas_registry.models import Cohort, Revision, ScanReport, Subject, Timepoint


def _diff(ws):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with db.engine(ws).connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(mc, SQLModel.metadata)


def test_models_and_migrations_agree(registry):
    assert _diff(registry) == []


def test_upgrade_downgrade_upgrade(workspace):
    db.upgrade(workspace)
    tables = set(inspect(db.engine(workspace)).get_table_names())
    assert {"cohort", "timepoint", "lesion_mask", "release_item", "audit_event"} <= tables
    db.downgrade(workspace, "base")
    left = set(inspect(db.engine(workspace)).get_table_names()) - {"alembic_version"}
    assert left == set()
    db.upgrade(workspace)
    assert db.current_revision(workspace) == db.head_revision()
    assert _diff(workspace) == []


def test_covering_indexes_migration_down_and_up(workspace):
    """0004 adds the covering indexes of scan_current and release_scan; its downgrade removes
    them and leaves the schema of 0003."""
    db.upgrade(workspace)

    def names(table):
        return {ix["name"] for ix in inspect(db.engine(workspace)).get_indexes(table)}

    assert "ix_scan_current_cohort" in names("scan_current")
    assert "ix_release_scan_membership" in names("release_scan")
    db.downgrade(workspace, "0003_current_state")
    db.engine(workspace).dispose()
    assert db.current_revision(workspace) == "0003_current_state"
    assert "ix_scan_current_cohort" not in names("scan_current")
    assert "ix_release_scan_membership" not in names("release_scan")
    assert "ix_scan_current_scan" in names("scan_current")
    db.upgrade(workspace)
    assert db.current_revision(workspace) == db.head_revision()
    assert _diff(workspace) == []


def _seed(s):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    c = Cohort(code="c0001")
    s.add(c)
    s.flush()
    sub = Subject(cohort_id=c.id, code="c0001s0001", number=1)
    s.add(sub)
    s.flush()
    tp = Timepoint(subject_id=sub.id, code="c0001s0001t01", number=1)
    s.add(tp)
    s.flush()
    rev = Revision(kind="ingest", author="test", reason="seed", created_at=now)
    s.add(rev)
    s.flush()
    return tp, rev


@pytest.mark.parametrize(
    "bad",
    [
        {"pvh": 4},
        {"dwmh": -1},
        {"primary_hemisphere": "middle"},
    ],
)
def test_check_constraints_refuse_out_of_range(registry, bad):
    from sqlmodel import Session

    with Session(db.engine(registry)) as s:
        tp, rev = _seed(s)
        s.add(ScanReport(timepoint_id=tp.id, created_rev_id=rev.id, **bad))
        with pytest.raises(IntegrityError):
            s.flush()


def test_unique_natural_keys_and_foreign_keys(registry):
    from sqlmodel import Session

    with Session(db.engine(registry)) as s:
        _seed(s)
        s.commit()
        s.add(Cohort(code="c0001"))
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
        s.add(Subject(cohort_id=9999, code="c0099s0001", number=1))
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
        # an excluded scan must say why
        tp = s.exec(text("SELECT id FROM timepoint")).first()
        with pytest.raises(IntegrityError):
            s.exec(text(f"UPDATE timepoint SET standard_status='excluded' WHERE id={tp[0]}"))
            s.flush()


def test_cli_init_is_idempotent(workspace):
    from atlas_registry.cli import main

    args = ["--home", str(workspace.home)] + (["--db", workspace.db] if workspace.db else [])
    assert main(args + ["init"]) == 0
    first = db.current_revision(workspace)
    assert first == db.head_revision()
    assert main(args + ["init"]) == 0
    assert db.current_revision(workspace) == first


def test_help_is_fast():
    """--help must not import the heavy stack (nibabel, pandas, sqlalchemy models…)."""
    code = (
        "import sys, atlas_registry.cli as c\n"
        "heavy = [m for m in ('nibabel','pandas','scipy','pyarrow','duckdb','matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_names_the_schema_head_without_the_heavy_stack():
    from importlib.metadata import version

    code = "import sys\nfrom atlas_registry.cli import main\nmain(['--version'])"
    out = subprocess.run([sys.executable, "-c", code + "\n"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"atlas-registry {version('atlas-registry')} (registry schema {db.head_revision()})"
    probe = code.replace(
        "main(['--version'])",
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(','.join(m for m in ('sqlalchemy','nibabel','pandas') if m in sys.modules), file=sys.stderr)",
    )
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stderr.strip() == ""


def test_withdrawal_migration_down_and_up_keeps_release_membership(workspace):
    """0005 names the scans in release_scan (filled from the registry) and admits withdrawals; its
    downgrade restores 0004 and keeps every release's membership."""
    from sqlmodel import Session

    from atlas_registry.models import Release, ReleaseScan

    db.upgrade(workspace, "0004_covering_indexes")
    eng = db.engine(workspace)
    with eng.begin() as c:  # a release of one scan, written as 0004 knew it
        c.execute(text("INSERT INTO cohort (id, code) VALUES (1, 'c0001')"))
        c.execute(text("INSERT INTO subject (id, cohort_id, code, number) VALUES (1, 1, 'c0001s0001', 1)"))
        c.execute(
            text(
                "INSERT INTO timepoint (id, subject_id, code, number, standard_status, "
                "primary_chosen_by_neuroradiologist) VALUES (1, 1, 'c0001s0001t01', 1, 'pending', false)"
            )
        )
        c.execute(
            text("INSERT INTO release (id, name, version, status, spec) VALUES (1, 'R1.0', '1.0.0', 'built', '')")
        )
        c.execute(text("INSERT INTO release_scan (id, release_id, timepoint_id, in_standard) VALUES (1, 1, 1, false)"))
    db.upgrade(workspace)
    eng.dispose()
    with Session(db.engine(workspace)) as s:
        rs = s.get(ReleaseScan, 1)
        assert (rs.scan, rs.cohort) == ("c0001s0001t01", "c0001") and s.get(Release, 1).name == "R1.0"
    with db.engine(workspace).connect() as c:
        assert c.execute(text("SELECT release, scan, cohort FROM release_scans")).all() == [
            ("R1.0", "c0001s0001t01", "c0001")
        ]
    assert "ix_release_scan_scan" in {ix["name"] for ix in inspect(db.engine(workspace)).get_indexes("release_scan")}
    assert _diff(workspace) == []
    db.downgrade(workspace, "0004_covering_indexes")
    db.engine(workspace).dispose()
    with db.engine(workspace).connect() as c:
        assert c.execute(text("SELECT release, scan, cohort FROM release_scans")).all() == [
            ("R1.0", "c0001s0001t01", "c0001")
        ]
        cols = {col["name"] for col in inspect(c).get_columns("release_scan")}
    assert "scan" not in cols
    db.upgrade(workspace)
    assert _diff(workspace) == []


def test_frozen_release_scan_migration_down_and_up(workspace):
    """0006 records in release_scan what a build read from the current state (exclusion reason and note,
    public label): upgrading fills the labels of existing releases from public_id; downgrading drops the
    columns and keeps every release's membership."""
    from sqlmodel import Session

    from atlas_registry.models import ReleaseScan

    db.upgrade(workspace, "0005_withdrawal")
    eng = db.engine(workspace)
    with eng.begin() as c:  # a published release of two scans of one subject, written as 0005 knew it
        c.execute(text("INSERT INTO cohort (id, code) VALUES (1, 'c0001')"))
        c.execute(text("INSERT INTO subject (id, cohort_id, code, number) VALUES (1, 1, 'c0001s0001', 1)"))
        c.execute(
            text(
                "INSERT INTO public_id (id, subject_id, label, created_at) "
                "VALUES (1, 1, 'a7kq2mzp', '2026-01-02 00:00:00')"
            )
        )
        for n in (1, 2):
            c.execute(
                text(
                    f"INSERT INTO timepoint (id, subject_id, code, number, standard_status, withdrawn, "
                    f"primary_chosen_by_neuroradiologist) VALUES ({n}, 1, 'c0001s0001t0{n}', {n}, 'pending', "
                    "false, false)"
                )
            )
        c.execute(
            text("INSERT INTO release (id, name, version, status, spec) VALUES (1, 'R1.0', '1.0.0', 'published', '')")
        )
        for n in (1, 2):
            c.execute(
                text(
                    f"INSERT INTO release_scan (id, release_id, timepoint_id, in_standard, scan, cohort) "
                    f"VALUES ({n}, 1, {n}, false, 'c0001s0001t0{n}', 'c0001')"
                )
            )
    db.upgrade(workspace)
    eng.dispose()
    assert _diff(workspace) == []
    with Session(db.engine(workspace)) as s:
        rows = [s.get(ReleaseScan, n) for n in (1, 2)]
        assert [(r.scan, r.public_label, r.exclusion_reason, r.exclusion_note) for r in rows] == [
            ("c0001s0001t01", "a7kq2mzp", None, None),
            ("c0001s0001t02", "a7kq2mzp", None, None),
        ]
        rows[0].exclusion_reason, rows[0].exclusion_note = "pending", "not yet processed"
        s.add(rows[0])
        s.commit()
    db.engine(workspace).dispose()
    db.downgrade(workspace, "0005_withdrawal")
    db.engine(workspace).dispose()
    assert db.current_revision(workspace) == "0005_withdrawal"
    with db.engine(workspace).connect() as c:
        assert c.execute(text("SELECT release, scan FROM release_scans ORDER BY scan")).all() == [
            ("R1.0", "c0001s0001t01"),
            ("R1.0", "c0001s0001t02"),
        ]
        cols = {col["name"] for col in inspect(c).get_columns("release_scan")}
    assert not cols & {"exclusion_reason", "exclusion_note", "public_label"} and {"scan", "in_standard"} <= cols
    db.upgrade(workspace)
    db.engine(workspace).dispose()
    assert _diff(workspace) == []
    with db.engine(workspace).connect() as c:
        assert c.execute(text("SELECT public_label FROM release_scan ORDER BY id")).scalars().all() == [
            "a7kq2mzp",
            "a7kq2mzp",
        ]
