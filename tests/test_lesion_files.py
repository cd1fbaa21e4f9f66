"""`mask export`: a lesion's current raw VOI out of the registry, as is or eroded, ready for `revise mask`."""

from __future__ import annotations

import numpy as np
import pytest
from test_revise import TWO_LESIONS, mask_bytes, masks_of

from atlas_registry import niio
from atlas_registry.cli import main
from atlas_registry.store import sha256_file

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


def voxels(data: bytes) -> np.ndarray:
    return np.asarray(niio.decode(data, "LesionRaw.voi").dataobj) > 0


@SQLITE_ONLY
def test_export_then_revise(ingested_two, tmp_path, capsys):
    ws = ingested_two
    home = ["--home", str(ws.home)]
    same = tmp_path / "same.voi"
    assert main(["mask", "export", TWO_LESIONS, "--lesion", "1", "--out", str(same), *home]) == 0
    assert sha256_file(same) == masks_of(ws, TWO_LESIONS)[(1, "raw_voi", "native")].sha256
    # the secondary made thinner (the primary must stay the largest: NAME012)
    original = voxels(mask_bytes(ws, TWO_LESIONS, 1))
    corrected = tmp_path / "corrected_LesionRaw_1.voi"
    assert main(["mask", "export", TWO_LESIONS, "--lesion", "1", "--erode", "1", "--out", str(corrected), *home]) == 0
    assert f"wrote lesion 1 of {TWO_LESIONS} eroded by 1 voxel(s) to {corrected}" in capsys.readouterr().out
    thinner = voxels(corrected.read_bytes())
    assert thinner.shape == original.shape and 0 < thinner.sum() < original.sum()
    assert not (thinner & ~original).any()  # only removed voxels
    assert (
        main(
            ["revise", "mask", TWO_LESIONS, "--lesion", "1", "--raw", str(corrected), "--reason", "over-traced", *home]
        )
        == 0
    ), capsys.readouterr().err
    assert (voxels(mask_bytes(ws, TWO_LESIONS, 1)) == thinner).all()


@SQLITE_ONLY
def test_export_refusals(ingested_two, tmp_path, capsys):
    home = ["--home", str(ingested_two.home)]
    out = tmp_path / "x.voi"
    for args, code in (
        (["c0099s0001t01"], "REV001"),
        ([TWO_LESIONS, "--lesion", "9"], "REV005"),
        ([TWO_LESIONS, "--erode", "60"], "REV013"),
    ):
        assert main(["mask", "export", *args, "--out", str(out), *home]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error [{code}]"), err
        assert not out.exists()
    assert main(["mask", "export", TWO_LESIONS, "--erode", "-1", "--out", str(out), *home]) == 2
