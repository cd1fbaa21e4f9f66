"""``stats tables|volumes|overlap``: the paper's Tables 1 and 2, lesion volumes and the overlap map,
checked against answers computed here from what the test put in the registry."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

import numpy as np
import pytest
from helpers import assert_valid

from atlas_registry import db, stats
from atlas_registry.errors import AtlasError

# scan -> lesions (hemisphere, location, volume) as finally current, and how they got there.
FINAL = {
    "c0001s0001t01": [("left", "cortical", 1200.0)],
    "c0001s0002t01": [("right", "subcortical", 800.0)],
    "c0001s0003t01": [("other", "other", 90.0)],
    "c0001s0003t02": [("left", "subcortical", 5000.0), ("left", "cortical", 700.0), ("right", "subcortical", 60.0)],
    "c0002s0001t01": [],
    "c0002s0002t01": [("right", "cortical", 20000.0), ("other", "other", 15.0)],
    "c0002s0003t01": [("left", "cortical", 3000.0)],  # its second lesion is retired below
    "c0003s0001t01": [("right", "subcortical", 450.0)],  # annotated left first, corrected below
    "c0003s0002t01": [("other", "cortical", 10.0)],  # hemisphere other: Table 2 "other"
}


def _expected_tables(final: dict) -> dict:
    t1, t2 = {}, {}
    for scan, lesions in final.items():
        c = scan[:5]
        row = t1.setdefault(
            c, {"cohort": c, "scans": 0, "single_left": 0, "single_right": 0, "single_other": 0, "multiple": 0}
        )
        row["scans"] += 1
        if len(lesions) == 1:
            h = lesions[0][0]
            row["single_" + (h if h in ("left", "right") else "other")] += 1
        elif len(lesions) >= 2:
            row["multiple"] += 1
        row2 = t2.setdefault(
            c,
            {
                "cohort": c,
                "cortical_left": 0,
                "cortical_right": 0,
                "subcortical_left": 0,
                "subcortical_right": 0,
                "other": 0,
            },
        )
        for h, loc, _v in lesions:
            key = f"{loc}_{h}"
            row2[key if key in row2 else "other"] += 1
    return {"table1": [t1[c] for c in sorted(t1)], "table2": [t2[c] for c in sorted(t2)]}


@pytest.fixture
def hand_made(sql_builder):
    from sqlmodel import select

    from atlas_registry.models import Lesion, LesionAnnotation

    b = sql_builder
    for scan, lesions in FINAL.items():
        spec = [dict(hemisphere=h, location=loc, volume=v) for h, loc, v in lesions]
        if scan == "c0002s0003t01":
            spec.append(dict(hemisphere="right", location="subcortical", volume=99.0))
        if scan == "c0003s0001t01":
            spec[0]["hemisphere"] = "left"
        tp = b.scan(scan, spec)
        if scan == "c0002s0003t01":
            b.retire(b.s.exec(select(Lesion).where(Lesion.timepoint_id == tp.id, Lesion.number == 1)).one())
        if scan == "c0003s0001t01":
            les = b.s.exec(select(Lesion).where(Lesion.timepoint_id == tp.id)).one()
            b.retire(b.s.exec(select(LesionAnnotation).where(LesionAnnotation.lesion_id == les.id)).one())
            b.s.add(
                LesionAnnotation(lesion_id=les.id, hemisphere="right", location="subcortical", created_rev_id=b.fix.id)
            )
    return b.commit()


def test_tables_of_a_hand_made_registry(hand_made):
    assert stats.paper_tables(hand_made) == _expected_tables(FINAL)


def test_volumes_of_a_hand_made_registry(hand_made):
    v = stats.volume_stats(hand_made)
    every = [x for ls in FINAL.values() for _, _, x in ls]
    prim = [ls[0][2] for ls in FINAL.values() if ls]
    for kind, vals in (("all", every), ("primary", prim)):
        o = v[kind]["overall"]
        assert o["n"] == len(vals)
        assert o["mean"] == pytest.approx(statistics.mean(vals))
        assert o["sd"] == pytest.approx(statistics.stdev(vals))
        assert (o["min"], o["max"]) == (min(vals), max(vals))
    c2 = {c["cohort"]: c for c in v["all"]["cohorts"]}["c0002"]
    assert (c2["n"], c2["mean"]) == (3, pytest.approx(statistics.mean([20000.0, 15.0, 3000.0])))
    c3 = {c["cohort"]: c for c in v["primary"]["cohorts"]}["c0003"]
    assert (c3["n"], c3["min"], c3["max"]) == (2, 10.0, 450.0)


def _plan_tables(plan, scans=None) -> dict:
    """Tables 1 and 2 from the bulk loader's arrays (restricted to scan indices ``scans``)."""
    keep = set(range(plan.n_scans)) if scans is None else set(int(s) for s in scans)
    per_scan = defaultdict(list)
    for s, h, loc in zip(plan.lesion_scan, plan.lesion_hemisphere, plan.lesion_location, strict=False):
        if int(s) in keep:
            per_scan[int(s)].append((str(h), str(loc), 0.0))
    final = {plan.scan_codes[s]: per_scan.get(s, []) for s in keep}
    return _expected_tables(final)


def test_tables_of_a_bulk_loaded_registry(sql_registry):
    ws, plan = sql_registry
    assert stats.paper_tables(ws) == _plan_tables(plan)


def test_volumes_of_a_bulk_loaded_registry(sql_registry):
    ws, plan = sql_registry
    v = stats.volume_stats(ws)
    by = defaultdict(list)
    for s, n, vol in zip(plan.lesion_scan, plan.lesion_number, plan.lesion_volume, strict=False):
        by[plan.cohort_codes[plan.scan_cohort[s]], n == 0].append(float(vol))
    prim = [x for (c, p), xs in by.items() if p for x in xs]
    assert v["primary"]["overall"]["n"] == plan.n_scans == len(prim)
    assert v["primary"]["overall"]["sd"] == pytest.approx(statistics.stdev(prim), rel=1e-6)
    for row in v["all"]["cohorts"]:
        vals = by[row["cohort"], True] + by[row["cohort"], False]
        assert row["n"] == len(vals)
        assert row["mean"] == pytest.approx(statistics.mean(vals), rel=1e-6)
        assert row["max"] == pytest.approx(max(vals), rel=1e-6)


def test_tables_and_volumes_from_release_parquet(sql_registry, release_parquet):
    ws, plan = sql_registry
    rel = release_parquet(ws, "R1.0", "R1.0")
    assert stats.paper_tables(rel, "R1.0") == _plan_tables(plan, plan.release_scans["R1.0"])
    keep = set(int(s) for s in plan.release_scans["R1.0"])
    vols = [float(v) for s, v in zip(plan.lesion_scan, plan.lesion_volume, strict=False) if int(s) in keep]
    o = stats.volume_stats(rel, "R1.0")["all"]["overall"]
    assert (o["n"], o["mean"]) == (len(vols), pytest.approx(statistics.mean(vols)))
    with pytest.raises(AtlasError) as e:
        stats.paper_tables(rel, "no-such-release")
    assert e.value.code == "STAT001"


def _cli(ws) -> list[str]:
    return ["--home", str(ws.home)] + (["--db", ws.db] if ws.db else [])


def test_cli_tables_text_and_json(hand_made, capsys):
    from atlas_registry.cli import main

    assert main(_cli(hand_made) + ["stats", "tables", "--format", "json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert tables == _expected_tables(FINAL)
    assert_valid(tables, "stats-tables.schema.json")
    assert main(_cli(hand_made) + ["stats", "tables"]) == 0
    lines = capsys.readouterr().out.splitlines()
    totals = [line.split() for line in lines if line.startswith("Total")]
    # Table 1: 9 scans; single left 2, right 2, other 2; multiple 2. Table 2: 11 lesions.
    assert totals[0] == ["Total", "9", "2", "2", "2", "2"]
    assert totals[1] == ["Total", "3", "1", "1", "3", "3"]
    pct = [line.split() for line in lines if line.startswith("% Total")]
    assert pct[0][-4:] == ["22.2%", "22.2%", "22.2%", "22.2%"]
    assert pct[1][-5:] == ["27.3%", "9.1%", "9.1%", "27.3%", "27.3%"]
    assert main(_cli(hand_made) + ["stats", "volumes", "--format", "json"]) == 0
    volumes = json.loads(capsys.readouterr().out)
    assert volumes["all"]["overall"]["n"] == 11
    assert_valid(volumes, "stats-volumes.schema.json")
    assert main(_cli(hand_made) + ["stats", "volumes"]) == 0
    assert "All lesions" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Overlap map

SHAPE = (10, 12, 8)


def _box(*slices) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8)
    m[slices] = 1
    return m


@pytest.fixture
def with_mni_masks(sql_builder):
    b = sql_builder
    a = _box(slice(2, 6), slice(2, 6), slice(2, 5))
    bb = _box(slice(4, 8), slice(4, 8), slice(3, 6))
    c = _box(slice(0, 3), slice(8, 12), slice(0, 2))
    far = _box(slice(7, 10), slice(0, 2), slice(6, 8))
    t1 = np.random.default_rng(0).random(SHAPE).astype(np.float32) * 100
    b.scan(
        "c0003s0001t01",
        [
            dict(hemisphere="left", location="subcortical", volume=10.0),
            dict(hemisphere="left", location="cortical", volume=5.0),
        ],
        mni={0: a, 1: far},
        t1_mni=t1,
        releases=[("R", True)],
    )
    b.scan(
        "c0003s0002t01",
        [dict(hemisphere="right", location="subcortical", volume=10.0)],
        mni={0: bb},
        releases=[("R", False)],
    )
    b.scan(
        "c0003s0003t01",
        [dict(hemisphere="right", location="subcortical", volume=10.0)],
        mni={0: c},
        standard="excluded",
        reason="registration_failed",
    )
    return b.commit(), a, bb


def test_overlap_map_of_the_standardized_subset_and_of_a_release(with_mni_masks, tmp_path):
    import nibabel as nib

    ws, a, bb = with_mni_masks
    r = stats.overlap_map(ws, tmp_path / "all.nii.gz")
    img = nib.load(tmp_path / "all.nii.gz")
    got = np.asarray(img.dataobj)
    assert got.shape == SHAPE and got.dtype == np.float32
    np.testing.assert_allclose(got, (a + bb) / 2.0)  # excluded scan and secondary lesion left out
    assert r["n_scans"] == 2 and r["max"] == 1.0 and r["underlay"] == "mean standard T1"
    np.testing.assert_allclose(img.affine[:3, :3], np.diag([2.0, 2.0, 2.0]))
    png = tmp_path / "all.png"
    assert r["png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # #18.8: a template grid says so (qform and sform code 4, MNI152), and each slice's MNI coordinate
    assert (int(img.header["qform_code"]), int(img.header["sform_code"])) == (4, 4)
    np.testing.assert_allclose(img.get_qform(coded=True)[0], img.get_sform(coded=True)[0])
    peak = np.unravel_index(int(np.argmax(got)), got.shape)
    x, y, z = (img.affine @ np.array([*peak, 1.0]))[:3]
    assert r["slices"] == {"axial": f"z = {z:+.0f} mm", "coronal": f"y = {y:+.0f} mm", "sagittal": f"x = {x:+.0f} mm"}
    import matplotlib.image as mpimg

    pixels = mpimg.imread(png)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4) and pixels.shape[1] > pixels.shape[0]

    r = stats.overlap_map(ws, tmp_path / "maps" / "r.v1.nii.gz", release="R")
    np.testing.assert_allclose(np.asarray(nib.load(tmp_path / "maps" / "r.v1.nii.gz").dataobj), a.astype(np.float32))
    assert r["n_scans"] == 1 and (tmp_path / "maps" / "r.v1.png").is_file()

    for bad, code in (({"release": "nope"}, "STAT002"), ({"out": tmp_path / "x.png"}, "STAT003")):
        with pytest.raises(AtlasError) as e:
            stats.overlap_map(ws, bad.get("out", tmp_path / "y.nii.gz"), release=bad.get("release"))
        assert e.value.code == code


def test_overlap_refuses_masks_on_different_grids(sql_builder, tmp_path):
    b = sql_builder
    b.scan(
        "c0003s0001t01",
        [dict(hemisphere="left", location="subcortical", volume=10.0)],
        mni={0: _box(slice(1, 3), slice(1, 3), slice(1, 3))},
    )
    b.scan(
        "c0003s0002t01",
        [dict(hemisphere="left", location="subcortical", volume=10.0)],
        mni={0: np.ones((4, 4, 4), np.uint8)},
    )
    ws = b.commit()
    with pytest.raises(AtlasError) as e:
        stats.overlap_map(ws, tmp_path / "o.nii.gz")
    assert e.value.code == "STAT006"


def test_cli_overlap(with_mni_masks, tmp_path, capsys):
    from atlas_registry.cli import main

    ws, _a, _b = with_mni_masks
    out = tmp_path / "o.nii.gz"
    assert main(_cli(ws) + ["stats", "overlap", "--out", str(out), "--release", "R", "--format", "json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_scans"] == 1 and out.is_file() and (tmp_path / "o.png").is_file()


def test_overlap_of_a_release_uses_the_masks_it_holds(export_ws_fresh, release_specs, tmp_path):
    """A mask corrected after a release does not change that release's overlap map; it changes the
    current one."""
    import nibabel as nib
    from test_export_view import replace_standard_mask

    from atlas_registry import release

    ws = export_ws_fresh
    release.build(ws, "T1.0", tmp_path / "v1", specs=release_specs)
    release.publish(ws, "T1.0", specs=release_specs)

    def maps() -> tuple[np.ndarray, np.ndarray]:
        for name, rel in (("rel.nii.gz", "T1.0"), ("now.nii.gz", None)):
            stats.overlap_map(ws, tmp_path / name, release=rel)
        return tuple(np.asarray(nib.load(tmp_path / n).dataobj) for n in ("rel.nii.gz", "now.nii.gz"))

    rel_before, now_before = maps()
    np.testing.assert_array_equal(rel_before, now_before)
    from sqlalchemy import text

    with db.engine(ws).connect() as c:  # a scan of the release's standardized subset
        scan = c.execute(
            text(
                "SELECT t.code FROM release_scan rs JOIN timepoint t ON t.id = rs.timepoint_id"
                " WHERE rs.in_standard ORDER BY t.code"
            )
        ).first()[0]
    replace_standard_mask(ws, scan, 0)  # sets voxel (0, 0, 0) of its primary mask
    rel_after, now_after = maps()
    np.testing.assert_array_equal(rel_after, rel_before)
    assert now_after[0, 0, 0] > now_before[0, 0, 0]
