"""The views ``scans``, ``lesions`` and ``release_scans``: current rows only, the same answers on
SQLite and PostgreSQL, the documented columns, and every example of docs/sql.md runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from atlas_registry import db, query, views

DOCS = Path(__file__).resolve().parent.parent / "docs" / "sql.md"


def _rows(ws, sql):
    r = query.run(ws, sql)
    return [dict(zip(r.columns, row, strict=False)) for row in r.rows]


@pytest.fixture
def hand_made(sql_builder):
    """Two cohorts; history (retired rows) that the views must not show; releases whose names
    sort differently by byte and by locale."""
    b = sql_builder
    report = dict(
        stroke_type="ischemic",
        primary_location="thalamus",
        primary_hemisphere="left",
        vascular_territory="PCA",
        pvh=2,
        dwmh=1,
    )
    b.release("draft", status="draft")
    tp1 = b.scan(
        "c0001s0001t01",
        [
            dict(hemisphere="left", location="subcortical", volume=1500.0),
            dict(
                hemisphere="right",
                location="cortical",
                volume=300.0,
                mask_hemisphere="right",
                mask_location="subcortical",
            ),
            dict(hemisphere="left", location="other", volume=50.0),
        ],
        report=report,
        releases=["a2", "B1", ("draft", True)],
    )
    b.scan(
        "c0001s0002t01",
        [dict(hemisphere="other", location="other", volume=20.0)],
        standard="excluded",
        reason="registration_failed",
        releases=["B1"],
    )
    b.scan(
        "c0002s0001t02",
        [],
        scanner=(1.5, "GE", "Signa"),
        voxel=(0.9, 0.9, 3.0),
        standard="excluded",
        reason="low_resolution",
    )
    # History: lesion 2 of the first scan was removed, lesion 1 re-annotated, the report corrected.
    from sqlmodel import select

    from atlas_registry.models import Lesion, LesionAnnotation, ScanReport

    s = b.s
    lesions = s.exec(select(Lesion).where(Lesion.timepoint_id == tp1.id).order_by(Lesion.number)).all()
    b.retire(lesions[2])
    old = s.exec(select(LesionAnnotation).where(LesionAnnotation.lesion_id == lesions[1].id)).one()
    b.retire(old)
    s.add(
        LesionAnnotation(lesion_id=lesions[1].id, hemisphere="right", location="subcortical", created_rev_id=b.fix.id)
    )
    rep = s.exec(select(ScanReport).where(ScanReport.timepoint_id == tp1.id)).one()
    b.retire(rep)
    s.add(ScanReport(timepoint_id=tp1.id, created_rev_id=b.fix.id, **{**report, "pvh": 3}))
    return b.commit()


def test_views_show_current_rows_only(hand_made):
    ws = hand_made
    scans = {r["scan"]: r for r in _rows(ws, "SELECT * FROM scans")}
    assert set(scans) == {"c0001s0001t01", "c0001s0002t01", "c0002s0001t02"}
    s1 = scans["c0001s0001t01"]
    assert (s1["cohort"], s1["subject"], s1["timepoint"]) == ("c0001", "c0001s0001", 1)
    assert s1["n_lesions"] == 2
    assert s1["primary_volume_mm3"] == pytest.approx(1500.0)
    assert s1["total_volume_mm3"] == pytest.approx(1800.0)  # native smooth masks only, retired lesion out
    assert (s1["pvh"], s1["dwmh"], s1["stroke_type"], s1["vascular_territory"]) == (3, 1, "ischemic", "PCA")
    assert (s1["field_strength_t"], s1["scanner_manufacturer"], s1["scanner_model"]) == (3.0, "Siemens", "Prisma")
    assert s1["releases"] == "B1,a2"  # published only, byte-wise order on both backends
    assert (s1["standard_status"], s1["exclusion_reason"]) == ("included", None)
    s3 = scans["c0002s0001t02"]
    assert (s3["n_lesions"], s3["primary_volume_mm3"], s3["total_volume_mm3"], s3["releases"]) == (0, None, None, None)
    assert (s3["timepoint"], s3["field_strength_t"], s3["voxel_z_mm"]) == (2, 1.5, 3.0)
    assert (s3["standard_status"], s3["exclusion_reason"], s3["pvh"]) == ("excluded", "low_resolution", None)

    les = {(r["scan"], r["lesion"]): r for r in _rows(ws, "SELECT * FROM lesions")}
    assert set(les) == {("c0001s0001t01", 0), ("c0001s0001t01", 1), ("c0001s0002t01", 0)}
    l1 = les["c0001s0001t01", 1]
    assert (l1["hemisphere"], l1["location"]) == ("right", "subcortical")  # the new annotation
    assert (l1["mask_hemisphere"], l1["mask_location"]) == ("right", "subcortical")
    assert l1["volume_mm3"] == pytest.approx(300.0) and l1["voxel_count"] == 300
    assert not l1["is_primary"] and les["c0001s0001t01", 0]["is_primary"]
    assert (l1["pvh"], l1["releases"], l1["cohort"]) == (3, "B1,a2", "c0001")
    assert les["c0001s0002t01", 0]["releases"] == "B1"

    rs = _rows(ws, "SELECT * FROM release_scans ORDER BY release, scan")
    assert {(r["release"], r["scan"], r["status"], bool(r["in_standard"])) for r in rs} == {
        ("B1", "c0001s0001t01", "published", True),
        ("B1", "c0001s0002t01", "published", False),
        ("a2", "c0001s0001t01", "published", True),
        ("draft", "c0001s0001t01", "draft", True),
    }


def test_boolean_columns_filter_the_same_on_both_backends(hand_made):
    ws = hand_made
    for where in ("is_primary", "is_primary = TRUE", "NOT is_primary", "is_primary = FALSE"):
        n = query.run(ws, f"SELECT COUNT(*) FROM lesions WHERE {where}").rows[0][0]
        assert n == (2 if "NOT" not in where and "FALSE" not in where else 1), where
    assert query.run(ws, "SELECT COUNT(*) FROM release_scans WHERE in_standard").rows[0][0] == 3


def test_view_columns_are_the_documented_contract(sql_registry):
    ws, _ = sql_registry
    for view, cols in views.COLUMNS.items():
        assert tuple(query.run(ws, f"SELECT * FROM {view} LIMIT 1").columns) == cols
        assert set(views.DESCRIPTIONS[view]) == set(cols)
    doc = DOCS.read_text(encoding="utf-8")
    for view, cols in views.COLUMNS.items():
        section = doc.split(f"### `{view}`", 1)[1].split("\n### ", 1)[0]
        for col in cols:
            assert f"`{col}`" in section, f"docs/sql.md does not document {view}.{col}"


def test_views_agree_with_the_loaded_plan(sql_registry):
    """Counts through the views equal what the bulk loader generated (computed from its arrays)."""
    from collections import Counter

    ws, plan = sql_registry
    got = Counter(
        {
            (r[0], r[1], r[2]): r[3]
            for r in query.run(
                ws, "SELECT cohort, hemisphere, location, COUNT(*) FROM lesions GROUP BY cohort, hemisphere, location"
            ).rows
        }
    )
    want = Counter(
        (plan.cohort_codes[plan.scan_cohort[s]], h, loc)
        for s, h, loc in zip(plan.lesion_scan, plan.lesion_hemisphere, plan.lesion_location, strict=False)
    )
    assert got == want
    n_r11 = query.run(ws, "SELECT COUNT(*) FROM scans WHERE releases LIKE '%R1.1%'").rows[0][0]
    assert n_r11 == len(plan.release_scans["R1.1"])
    n_r10 = query.run(ws, "SELECT COUNT(*) FROM release_scans WHERE release = 'R1.0'").rows[0][0]
    assert n_r10 == len(plan.release_scans["R1.0"])
    assert query.run(ws, "SELECT COUNT(*) FROM scans WHERE releases LIKE '%R2.0%'").rows[0][0] == 0  # a draft


def _doc_examples() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_docs_examples_run(sql_registry, release_parquet):
    """Every example of docs/sql.md runs on the registry (SQLite and PostgreSQL) and on a release,
    and the registry's answer restricted to the release's scans is the release's answer where the
    example reads only ``scans``/``lesions``."""
    ws, _ = sql_registry
    rel = release_parquet(ws, "R1.1", "R1.1")
    examples = _doc_examples()
    assert len(examples) >= 12
    for sql in examples:
        r = query.run(ws, sql)
        assert r.columns and not r.truncated, sql
        assert query.run_release(rel, "R1.1", sql).columns == r.columns, sql
    n = query.run(ws, "SELECT COUNT(*) FROM release_scans WHERE release = 'R1.1' AND in_standard").rows
    assert len(query.run(ws, next(e for e in examples if "rs.release = 'R1.1'" in e)).rows) == n[0][0] > 0
    assert len(query.run_release(rel, "R1.1", next(e for e in examples if "rs.release = 'R1.1'" in e)).rows) == n[0][0]


def test_downgrade_drops_the_views_and_upgrade_restores_them(registry):
    def names():
        insp = inspect(db.engine(registry))
        return set(insp.get_view_names())

    assert set(views.VIEWS) <= names()
    db.downgrade(registry, "0001_initial")
    assert not set(views.VIEWS) & names()
    with db.engine(registry).connect() as c:  # the tables are untouched
        assert c.execute(text("SELECT COUNT(*) FROM lesion")).scalar() == 0
    db.upgrade(registry)
    assert set(views.VIEWS) <= names()
    assert db.current_revision(registry) == db.head_revision()


def _nearest_rank(values: list[float], p: float) -> float:
    """The smallest value whose cumulative distribution reaches ``p``."""
    import math

    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def test_docs_quartiles_are_nearest_rank_on_every_path(sql_registry, release_parquet):
    """``percentile_disc(p) WITHIN GROUP (ORDER BY volume_mm3)`` (docs/sql.md) gives the nearest-rank
    quartiles on a SQLite registry, a PostgreSQL registry and a release alike."""
    ws, _ = sql_registry
    rel = release_parquet(ws, "R1.1", "R1.1")
    standard = next(e for e in _doc_examples() if "percentile_disc" in e)

    def want(rows):
        by_territory: dict = {}
        for territory, volume in rows:
            if volume is not None:
                by_territory.setdefault(territory, []).append(volume)
        return [
            (t, len(v), _nearest_rank(v, 0.25), _nearest_rank(v, 0.5), _nearest_rank(v, 0.75))
            for t, v in sorted(by_territory.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ]

    with db.engine(ws).connect() as c:  # the registry's own rows, not through the code under test
        lesions = c.execute(text("SELECT vascular_territory, volume_mm3 FROM lesions")).all()
        in_r11 = c.execute(
            text(
                "SELECT l.vascular_territory, l.volume_mm3 FROM lesions l JOIN release_scans rs"
                " ON rs.scan = l.scan WHERE rs.release = 'R1.1'"
            )
        ).all()
    assert len(want(lesions)) >= 3
    assert [tuple(r) for r in query.run(ws, standard).rows] == want(lesions)
    assert [tuple(r) for r in query.run_release(rel, "R1.1", standard).rows] == want(in_r11)
