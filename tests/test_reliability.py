"""``atlas-registry reliability``: Dice, Hausdorff (mm) and volume ICC on tracings whose answers are
known in closed form, ICC against Shrout & Fleiss (1979), Hausdorff against a brute-force
computation on surface points."""

from __future__ import annotations

import json
import math
import statistics

import nibabel as nib
import numpy as np
import pytest

from atlas_registry import reliability
from atlas_registry.errors import AtlasError

ZOOMS = (1.5, 1.0, 1.0)
GRID = (40, 36, 36)
SIDES = {"b01": 10, "b02": 14}
# rater -> (x shift in session 1, x shift in session 2), voxels
SHIFTS = {"01": (0, 1), "02": (2, 2), "03": (0, 4)}


def _save(path, mask):
    aff = np.diag([*ZOOMS, 1.0])
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), aff), path)


def _cube(side: int, shift: int) -> np.ndarray:
    m = np.zeros(GRID, bool)
    m[10 + shift : 10 + shift + side, 10 : 10 + side, 10 : 10 + side] = True
    return m


@pytest.fixture
def cubes(tmp_path):
    root = tmp_path / "tracings"
    for brain, side in SIDES.items():
        (root / brain).mkdir(parents=True)
        for rater, shifts in SHIFTS.items():
            for session, shift in zip(("1", "2"), shifts, strict=False):
                _save(root / brain / f"{brain}_rater-{rater}_session-{session}_mask.nii.gz", _cube(side, shift))
    (root / "b01" / "notes.txt").write_text("ignored")
    return root


def _measure(result, name, session):
    return next(m for m in result["measures"] if m["measure"] == name and m["session"] == session)


def test_cubes_give_the_closed_form_answers(cubes):
    r = reliability.analyze(cubes)
    assert (r["brains"], r["raters"], r["sessions"], r["n_tracings"]) == (
        ["b01", "b02"],
        ["01", "02", "03"],
        ["1", "2"],
        12,
    )
    # Cubes of side L shifted by k voxels along x: Dice (L-k)/L, Hausdorff k * 1.5 mm.
    for session, col in (("1", 0), ("2", 1)):
        dice, hd = [], []
        for side in SIDES.values():
            for rater, shifts in SHIFTS.items():
                others = [s[col] for o, s in SHIFTS.items() if o != rater]
                ks = [abs(shifts[col] - k) for k in others]
                dice.append(statistics.mean((side - k) / side for k in ks))
                hd.append(statistics.mean(k * ZOOMS[0] for k in ks))
        m = _measure(r, "inter_dice", session)
        assert (m["n"], m["mean"], m["sd"]) == (
            6,
            pytest.approx(statistics.mean(dice)),
            pytest.approx(statistics.stdev(dice)),
        )
        m = _measure(r, "inter_hd_mm", session)
        assert (m["mean"], m["sd"]) == (pytest.approx(statistics.mean(hd)), pytest.approx(statistics.stdev(hd)))
    dice = [(side - abs(a - b)) / side for side in SIDES.values() for a, b in SHIFTS.values()]
    hd = [abs(a - b) * ZOOMS[0] for _side in SIDES.values() for a, b in SHIFTS.values()]
    assert _measure(r, "intra_dice", "1-2")["mean"] == pytest.approx(statistics.mean(dice))
    assert _measure(r, "intra_hd_mm", "1-2")["sd"] == pytest.approx(statistics.stdev(hd))
    # Every rater gives the same volume per brain: perfect agreement.
    assert _measure(r, "volume_icc_inter", "all")["mean"] == pytest.approx(1.0)
    assert _measure(r, "volume_icc_intra", "1-2")["mean"] == pytest.approx(1.0)
    vols = {(v["brain"], v["rater"], v["session"]): v["volume_mm3"] for v in r["volumes"]}
    assert vols["b02", "03", "2"] == pytest.approx(14**3 * 1.5)
    # The paper's figures sit beside ours.
    assert _measure(r, "inter_dice", "1")["paper"] == {"mean": 0.73, "sd": 0.20}
    assert _measure(r, "inter_hd_mm", "2")["paper"] == {"mean": 25.29, "sd": 23.53}
    assert _measure(r, "volume_icc_intra", "1-2")["paper"] == {"mean": 0.84, "sd": 0.09}


def test_icc_matches_shrout_and_fleiss():
    # Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges; ICC(2,1) = .29, ICC(3,1) = .71.
    y = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert round(reliability.icc_2_1(y), 2) == 0.29
    assert round(reliability.icc_3_1(y), 2) == 0.71
    assert math.isnan(reliability.icc_2_1([[1, 2]]))
    assert reliability.icc_2_1([[1, 1], [2, 2], [5, 5]]) == pytest.approx(1.0)


def _blob(rng, shape, n=3):
    from scipy import ndimage as ndi

    m = ndi.gaussian_filter(rng.random(shape), 2.0) > 0.53
    return m if m.any() else _blob(rng, shape, n)


def _surface_points(m, zooms):
    inner = m.copy()
    for ax in range(3):
        for d in (1, -1):
            nb = np.roll(m, d, axis=ax)
            edge = [slice(None)] * 3
            edge[ax] = 0 if d == 1 else -1
            nb[tuple(edge)] = False  # outside the grid is background
            inner &= nb
    return np.argwhere(m & ~inner) * np.asarray(zooms)


def test_hausdorff_agrees_with_brute_force_and_masks_module(tmp_path):
    from scipy.spatial.distance import directed_hausdorff

    from atlas_registry import masks

    rng = np.random.default_rng(5)
    shape, zooms = (30, 28, 22), (1.2, 0.9, 2.0)
    root = tmp_path / "t"
    (root / "b1").mkdir(parents=True)
    blobs = {}
    for rater in ("01", "02", "03"):
        blobs[rater] = _blob(rng, shape)
        aff = np.diag([*zooms, 1.0])
        nib.save(
            nib.Nifti1Image(blobs[rater].astype(np.uint8), aff), root / "b1" / f"b1_rater-{rater}_session-1_mask.nii.gz"
        )
    loaded, _z = reliability._load_brain({(r, "1"): root / "b1" / f"b1_rater-{r}_session-1_mask.nii.gz" for r in blobs})
    for a in blobs:
        for b in blobs:
            if a >= b:
                continue
            d, h = reliability._pair(loaded[a, "1"], loaded[b, "1"])
            pa, pb = _surface_points(blobs[a], zooms), _surface_points(blobs[b], zooms)
            brute = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
            assert h == pytest.approx(brute)
            assert h == pytest.approx(masks.hausdorff_mm(blobs[a], blobs[b], zooms))
            inter = np.logical_and(blobs[a], blobs[b]).sum()
            assert d == pytest.approx(2 * inter / (blobs[a].sum() + blobs[b].sum()))


def test_missing_tracings_and_odd_layouts_are_tolerated(cubes):
    (cubes / "b02" / "b02_rater-03_session-2_mask.nii.gz").unlink()
    (cubes / "b03").mkdir()
    _save(cubes / "b03" / "b03_rater-01_session-1_mask.nii.gz", _cube(8, 0))  # one tracing only: no pairs
    r = reliability.analyze(cubes)
    assert r["brains"] == ["b01", "b02", "b03"] and r["n_tracings"] == 12
    assert _measure(r, "inter_dice", "2")["n"] == 5  # b02 session 2 has two raters left
    assert _measure(r, "intra_dice", "1-2")["n"] == 5


def test_refusals(tmp_path, cubes):
    with pytest.raises(AtlasError) as e:
        reliability.analyze(tmp_path / "nowhere")
    assert e.value.code == "RATER001"
    (tmp_path / "empty").mkdir()
    with pytest.raises(AtlasError) as e:
        reliability.analyze(tmp_path / "empty")
    assert e.value.code == "RATER001"
    _save(cubes / "b01" / "b01_rater-09_session-1_mask.nii.gz", np.zeros((5, 5, 5), bool))
    with pytest.raises(AtlasError) as e:
        reliability.analyze(cubes)
    assert e.value.code == "RATER002"


def test_cli(cubes, capsys):
    from atlas_registry.cli import main

    assert main(["reliability", str(cubes), "--format", "json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert _measure(r, "intra_hd_mm", "1-2")["n"] == 6
    assert main(["reliability", str(cubes)]) == 0
    out = capsys.readouterr().out
    assert "inter-rater Dice" in out and "0.73 ± 0.20" in out and "ICC(2,1)" in out
