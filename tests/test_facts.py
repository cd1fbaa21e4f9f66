"""The current-state tables ``scan_current`` and ``lesion_current`` equal what the versioned tables
give (computed here with joins of our own, not with the registry's SQL): after a bulk load, after
rows are retired and replaced or removed and the scan refreshed, after a release is published, after
an upgrade of a registry that already holds scans. The partial unique indexes allow one current row.
"""

from __future__ import annotations

from datetime import UTC

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from atlas_registry import bulkload, db, facts, views
from atlas_registry.models import Lesion, LesionAnnotation, LesionMask, Release, Revision, ScanReport, Timepoint

# The scan's own columns, as the views defined them (current report, scanner), for both queries.
_SCAN_SELECT = """
  t.code AS scan, c.code AS cohort, s.code AS subject, t.number AS timepoint,
  r.stroke_type, r.primary_location, r.primary_hemisphere, r.vascular_territory, r.pvh, r.dwmh,
  sc.field_strength_t, sc.manufacturer AS scanner_manufacturer, sc.model AS scanner_model,
  sc.voxel_x_mm, sc.voxel_y_mm, sc.voxel_z_mm, t.standard_status, t.exclusion_reason"""
_SCAN_JOINS = """
JOIN subject s ON s.id = t.subject_id
JOIN cohort c ON c.id = s.cohort_id
LEFT JOIN scanner sc ON sc.id = t.scanner_id
LEFT JOIN scan_report r ON r.timepoint_id = t.id AND r.retired_rev_id IS NULL"""
EXPECTED_SCANS = f"SELECT t.id AS timepoint_id, {_SCAN_SELECT}\nFROM timepoint t{_SCAN_JOINS}"
EXPECTED_LESIONS = f"""
SELECT l.id AS lesion_id, t.id AS timepoint_id, l.number AS lesion, {_SCAN_SELECT},
  a.hemisphere, a.location, m.hemisphere AS mask_hemisphere, m.location AS mask_location, m.volume_mm3, m.voxel_count
FROM lesion l
JOIN timepoint t ON t.id = l.timepoint_id{_SCAN_JOINS}
LEFT JOIN lesion_annotation a ON a.lesion_id = l.id AND a.retired_rev_id IS NULL
LEFT JOIN lesion_mask m ON m.lesion_id = l.id AND m.retired_rev_id IS NULL AND m.variant = 'smooth_nii'
  AND m.space = 'native'
WHERE l.retired_rev_id IS NULL"""
PUBLISHED = (
    "SELECT rs.timepoint_id, rl.name FROM release_scan rs JOIN release rl ON rl.id = rs.release_id"
    " WHERE rl.status = 'published'"
)


def _rows(conn, sql: str) -> list[dict]:
    return [dict(r._mapping) for r in conn.execute(text(sql))]


def _plain(row: dict) -> dict:
    """Comparable values: booleans as bool, floats rounded (sums may add in another order)."""
    out = {}
    for k, v in row.items():
        if k == "is_primary":
            v = bool(v)
        elif isinstance(v, float):
            v = round(v, 6)
        out[k] = v
    return out


def expected(ws) -> tuple[dict, dict]:
    """{timepoint_id: scans row}, {lesion_id: lesions row} from the versioned tables; the lesion
    counts and volumes of a scan and its published releases are computed here, in Python."""
    with db.engine(ws).connect() as conn:
        scans = {r["timepoint_id"]: r for r in _rows(conn, EXPECTED_SCANS)}
        lesions = {r["lesion_id"]: r for r in _rows(conn, EXPECTED_LESIONS)}
        published: dict[int, list[str]] = {}
        for tp, name in conn.execute(text(PUBLISHED)):
            published.setdefault(tp, []).append(name)
    for tp, row in scans.items():
        mine = [les for les in lesions.values() if les["timepoint_id"] == tp]
        volumes = [les["volume_mm3"] for les in mine if les["volume_mm3"] is not None]
        primary = [les["volume_mm3"] for les in mine if les["lesion"] == 0]
        names = sorted(published.get(tp, []), key=lambda n: n.encode())
        row.update(
            n_lesions=len(mine),
            primary_volume_mm3=primary[0] if primary else None,
            total_volume_mm3=sum(volumes) if volumes else None,
            releases=",".join(names) or None,
        )
    for row in lesions.values():
        row.update(is_primary=row["lesion"] == 0, releases=scans[row["timepoint_id"]]["releases"])
    return ({k: _plain(v) for k, v in scans.items()}, {k: _plain(v) for k, v in lesions.items()})


def stored(ws) -> tuple[dict, dict]:
    """The rows of scan_current and lesion_current, by key."""
    with db.engine(ws).connect() as conn:
        return tuple(
            {r[key]: _plain(r) for r in _rows(conn, f"SELECT * FROM {views.TABLES[view]}")}
            for view, key in ((views.SCANS, "timepoint_id"), (views.LESIONS, "lesion_id"))
        )


def assert_current(ws) -> None:
    """The tables hold the expected rows, and the views show them (a lesion's releases: its scan's)."""
    want_scans, want_lesions = expected(ws)
    for got, want in zip(stored(ws), (want_scans, want_lesions), strict=False):
        assert set(got) == set(want)
        for key, row in got.items():
            assert row == {c: want[key][c] for c in row}, key
    with db.engine(ws).connect() as conn:
        for view, want, key in (
            (views.SCANS, want_scans, ("scan",)),
            (views.LESIONS, want_lesions, ("scan", "lesion")),
        ):
            got = {tuple(r[k] for k in key): _plain(r) for r in _rows(conn, f"SELECT * FROM {view}")}
            assert got == {tuple(r[k] for k in key): {c: r[c] for c in views.COLUMNS[view]} for r in want.values()}


@pytest.fixture
def bulk(registry):
    """A small bulk-loaded registry of the parametrized backend (modified by the tests)."""
    bulkload.load(registry, 40, 95, seed=5)
    return registry


def _multi_lesion_scans(s: Session) -> list[int]:
    rows = s.exec(select(Lesion.timepoint_id, Lesion.number).where(Lesion.retired_rev_id.is_(None))).all()
    counts: dict[int, int] = {}
    for tp, _ in rows:
        counts[tp] = counts.get(tp, 0) + 1
    return sorted(tp for tp, n in counts.items() if n >= 2)


def _current(s: Session, model, **where):
    q = select(model).where(model.retired_rev_id.is_(None), *[getattr(model, k) == v for k, v in where.items()])
    return s.exec(q).all()


def _revision(s: Session) -> Revision:
    from datetime import datetime

    rev = Revision(kind="correct_metadata", author="test", reason="test", created_at=datetime.now(UTC))
    s.add(rev)
    s.flush()
    return rev


def _copy(row, **changes):
    data = row.model_dump(exclude={"id", "created_rev_id", "retired_rev_id"})
    return type(row)(**{**data, **changes})


def _retire(s: Session, rows, rev: Revision) -> None:
    for row in rows:
        row.retired_rev_id = rev.id
        s.add(row)
    s.flush()


def test_bulk_load_fills_the_current_state(bulk):
    assert_current(bulk)
    with db.engine(bulk).connect() as conn:
        n_published = conn.execute(text("SELECT COUNT(*) FROM scan_current WHERE releases IS NOT NULL")).scalar()
    assert n_published > 0


def test_replaced_and_removed_rows_after_refresh(bulk):
    with Session(db.engine(bulk)) as s:
        tp_a, tp_b, tp_c = _multi_lesion_scans(s)[:3]
        rev = _revision(s)
        # tp_a: lesion 1 replaced by a new lesion row (new mask volume, new annotation), lesion 0
        # re-annotated, the report corrected.
        old = _current(s, Lesion, timepoint_id=tp_a, number=1)[0]
        masks, notes = _current(s, LesionMask, lesion_id=old.id), _current(s, LesionAnnotation, lesion_id=old.id)
        _retire(s, [old, *masks, *notes], rev)
        new = Lesion(timepoint_id=tp_a, number=1, created_rev_id=rev.id)
        s.add(new)
        s.flush()
        s.add_all([_copy(m, lesion_id=new.id, volume_mm3=m.volume_mm3 * 2 + 1, created_rev_id=rev.id) for m in masks])
        s.add_all(
            [_copy(a, lesion_id=new.id, hemisphere="other", location="other", created_rev_id=rev.id) for a in notes]
        )
        first = _current(s, Lesion, timepoint_id=tp_a, number=0)[0]
        note = _current(s, LesionAnnotation, lesion_id=first.id)
        _retire(s, note, rev)
        s.add_all([_copy(a, hemisphere="right", location="cortical", created_rev_id=rev.id) for a in note])
        report = _current(s, ScanReport, timepoint_id=tp_a)
        _retire(s, report, rev)
        s.add_all([_copy(r, pvh=3, vascular_territory="PCA", created_rev_id=rev.id) for r in report])
        # tp_b: its last lesion removed (with its masks and annotation).
        last = max(_current(s, Lesion, timepoint_id=tp_b), key=lambda les: les.number)
        _retire(
            s,
            [last, *_current(s, LesionMask, lesion_id=last.id), *_current(s, LesionAnnotation, lesion_id=last.id)],
            rev,
        )
        # tp_c: excluded from the standardized subset.
        tpc = s.get(Timepoint, tp_c)
        tpc.standard_status, tpc.exclusion_reason = "excluded", "revision"
        s.add(tpc)
        s.commit()
    with pytest.raises(AssertionError):  # stale until refreshed
        assert_current(bulk)
    with Session(db.engine(bulk)) as s:
        facts.refresh(s, [tp_a, tp_b])
        facts.refresh_scans(s, [s.get(Timepoint, tp_c).code])
        s.commit()
    assert_current(bulk)
    scans, lesions = stored(bulk)
    assert scans[tp_a]["pvh"] == 3 and scans[tp_c]["standard_status"] == "excluded"
    assert scans[tp_b]["n_lesions"] == len([les for les in lesions.values() if les["timepoint_id"] == tp_b])


def test_refresh_touches_only_the_given_timepoints_and_chunks_long_lists(bulk, monkeypatch):
    with db.engine(bulk).begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM timepoint ORDER BY id"))]
        conn.execute(text("UPDATE scan_current SET pvh = NULL, n_lesions = 99"))
        conn.execute(text("DELETE FROM lesion_current WHERE timepoint_id = :a"), {"a": ids[0]})
    with Session(db.engine(bulk)) as s:
        facts.refresh(s, [ids[1]])
        s.commit()
    scans, _ = stored(bulk)
    assert scans[ids[1]]["n_lesions"] != 99 and scans[ids[2]]["n_lesions"] == 99
    monkeypatch.setattr(facts, "CHUNK", 7)
    with Session(db.engine(bulk)) as s:
        facts.refresh(s, ids + [10**9])  # an id that is no timepoint leaves no row
        s.commit()
    assert_current(bulk)


def test_published_release_after_refresh_releases(bulk):
    with Session(db.engine(bulk)) as s:
        draft = s.exec(select(Release).where(Release.name == "R2.0")).one()
        draft.status = "published"
        s.add(draft)
        facts.refresh_releases(s)
        s.commit()
    assert_current(bulk)
    scans, _ = stored(bulk)
    assert any(r["releases"] == "R1.0,R1.1,R2.0" for r in scans.values())
    with db.engine(bulk).connect() as conn:
        assert {r[0] for r in conn.execute(text("SELECT DISTINCT releases FROM lesions"))} <= {
            "R1.1,R2.0",
            "R1.0,R1.1,R2.0",
        }


def test_upgrade_of_a_registry_holding_scans_fills_the_tables(bulk):
    db.downgrade(bulk, "0002_views")
    with db.engine(bulk).connect() as conn:  # the views of 0002 again
        n = conn.execute(text("SELECT COUNT(*) FROM lesions")).scalar()
    assert n == 95
    db.upgrade(bulk)
    assert_current(bulk)


def test_full_refresh_rebuilds_everything(bulk):
    with db.engine(bulk).begin() as conn:
        conn.execute(text("DELETE FROM lesion_current"))
        conn.execute(text("UPDATE scan_current SET cohort = 'c9999'"))
        facts.refresh(conn)
    assert_current(bulk)


# ---------------------------------------------------------------------------------------------
# One current row


def _one_lesion(sql_builder):
    b = sql_builder
    tp = b.scan(
        "c0001s0001t01",
        [dict(hemisphere="left", location="cortical", volume=10.0)],
        report=dict(stroke_type="ischemic", pvh=1),
    )
    les = _current(b.s, Lesion, timepoint_id=tp.id)[0]
    return b, {
        "lesion": les,
        "annotation": _current(b.s, LesionAnnotation, lesion_id=les.id)[0],
        "mask": _current(b.s, LesionMask, lesion_id=les.id, variant="smooth_nii")[0],
        "report": _current(b.s, ScanReport, timepoint_id=tp.id)[0],
    }


@pytest.mark.parametrize("kind", ["lesion", "annotation", "mask", "report"])
def test_a_second_current_row_is_refused(sql_builder, kind):
    b, rows = _one_lesion(sql_builder)
    row = rows[kind]
    b.s.add(_copy(row, created_rev_id=b.rev.id))
    with pytest.raises(IntegrityError):
        b.s.flush()
    b.s.rollback()


@pytest.mark.parametrize("kind", ["lesion", "annotation", "mask", "report"])
def test_a_retired_row_and_its_replacement_coexist(sql_builder, kind):
    b, rows = _one_lesion(sql_builder)
    row = rows[kind]
    b.retire(row)
    b.s.add(_copy(row, created_rev_id=b.fix.id))
    b.s.flush()
    b.s.add(_copy(row, created_rev_id=b.fix.id))  # but not two current ones
    with pytest.raises(IntegrityError):
        b.s.flush()
    b.s.rollback()


def test_text_columns_compare_bytewise_on_postgresql(pg_schema_url, tmp_path):
    """PostgreSQL only (SQLite compares text byte-wise by default); CI always runs it."""
    from atlas_registry.config import Workspace

    registry = Workspace(tmp_path / "ws", pg_schema_url())
    db.upgrade(registry)
    with db.engine(registry).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, a.attname, co.collname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_type ty ON ty.oid = a.atttypid LEFT JOIN pg_collation co ON co.oid = a.attcollation"
                " WHERE c.relname IN ('scan_current', 'lesion_current')"
                " AND c.relnamespace = current_schema()::regnamespace"
                " AND ty.typname IN ('varchar', 'text')"
            )
        ).all()
    assert len(rows) == 12 + 15 and {r[2] for r in rows} == {"C"}
