"""The inventory and the naming rules on folders of empty files (nothing is decoded here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atlas_registry import naming
from atlas_registry.errors import AtlasError
from atlas_registry.records import MaskRecord, ScanRecord
from atlas_registry.validate import inventory
from atlas_registry.validate.naming import order_findings


def touch(root: Path, rel: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def scan(root: Path, sid: str, lesions: int = 1, *, standard: bool = False, cohort: str | None = None) -> None:
    s = naming.parse_scan_id(sid)
    folder = f"{cohort or s.cohort_code}/{sid}"
    if standard:
        touch(root, f"{folder}/{naming.standard_name(s, 't1')}")
        for n in range(lesions):
            touch(root, f"{folder}/{naming.standard_name(s, 'lesion', n)}")
        return
    touch(root, f"{folder}/{naming.native_name(s, 't1')}")
    for n in range(lesions):
        for v in naming.VARIANTS:
            touch(root, f"{folder}/{naming.native_name(s, 'lesion', v, n)}")


def codes(inv) -> list[str]:
    return sorted(f.code for f in inv.findings)


def test_detects_native_root_cohort_folder_and_standard_root(tmp_path):
    nat, std = tmp_path / "native", tmp_path / "standard"
    scan(nat, "c0001s0001t01", 2)
    scan(nat, "c0009s0002t01")
    touch(nat, naming.METADATA_WORKBOOK)
    inv = inventory.build(nat)
    assert (inv.kind, inv.cohort, inv.root, codes(inv)) == ("native", None, nat.absolute(), [])
    assert [f.scan_id for f in inv.scans] == ["c0001s0001t01", "c0009s0002t01"]
    assert inv.files == 1 + 7 + 4
    one = inventory.build(nat / "c0009")
    assert (one.kind, one.cohort, one.root, [f.scan_id for f in one.scans]) == (
        "native",
        "c0009",
        nat.absolute(),
        ["c0009s0002t01"],
    )
    assert one.scans[0].files[0].relpath == "c0009/c0009s0002t01/c0009s0002t01.nii.gz"
    scan(std, "c0009s0002t01", 2, standard=True)
    touch(std, naming.REGISTRATION_FAILURES)
    inv = inventory.build(std)
    assert (inv.kind, codes(inv)) == ("standard", [])
    assert {(f.kind, f.variant, f.lesion) for f in inv.scans[0].files} == {
        ("t1", None, 0),
        ("lesion", "smooth_nii", 0),
        ("lesion", "smooth_nii", 1),
    }


def test_not_a_folder_and_empty_folder(tmp_path):
    with pytest.raises(AtlasError) as e:
        inventory.build(tmp_path / "missing")
    assert e.value.code == "NAME014"
    assert codes(inventory.build(tmp_path)) == ["NAME014"]


@pytest.mark.parametrize(
    "breakage,expected",
    [
        ("bad-folder-name", ["NAME001"]),
        ("wrong-cohort", ["NAME002"]),
        ("id-mismatch", ["NAME003", "NAME007"]),
        ("unknown-kind", ["NAME004"]),
        ("raw-nifti", ["NAME004"]),
        ("file-in-cohort", ["NAME005"]),
        ("folder-in-scan", ["NAME005"]),
        ("stray-root-file", ["NAME005"]),
        ("no-t1", ["NAME006"]),
        ("missing-smooth", ["NAME007"]),
        ("gap", ["NAME008"]),
        ("no-primary", ["NAME008"]),
        ("no-lesion", ["NAME009"]),
        ("symlink-out", ["NAME007", "NAME010"]),
        ("duplicate", ["NAME002", "NAME013"]),
        ("phi-name", ["DEID005", "NAME004"]),
    ],
)
def test_layout_breakages(tmp_path, breakage, expected):
    root = tmp_path / "native"
    sid = "c0009s0001t01"
    scan(root, sid, 3)
    touch(root, naming.METADATA_WORKBOOK)
    folder = root / "c0009" / sid
    if breakage == "bad-folder-name":
        scan(root, "c0009s0002t01")
        (root / "c0009" / "c0009s0002t01").rename(root / "c0009" / "c009s0002t01")
    elif breakage == "wrong-cohort":
        scan(root, "c0001s0002t01", cohort="c0009")
    elif breakage == "id-mismatch":
        (folder / f"{sid}_LesionRaw_2.voi").rename(folder / "c0009s0005t01_LesionRaw_2.voi")
    elif breakage == "unknown-kind":
        touch(folder, "notes.txt")
    elif breakage == "raw-nifti":
        touch(folder, f"{sid}_LesionRaw.nii.gz")
    elif breakage == "file-in-cohort":
        touch(root, f"c0009/{sid}.nii.gz")
    elif breakage == "folder-in-scan":
        touch(folder, "extra/x.nii.gz")
    elif breakage == "stray-root-file":
        touch(root, "dump.sql")
    elif breakage == "no-t1":
        (folder / f"{sid}.nii.gz").unlink()
    elif breakage == "missing-smooth":
        (folder / f"{sid}_LesionSmooth_1.nii.gz").unlink()
    elif breakage in ("gap", "no-primary"):
        n = 1 if breakage == "gap" else 0
        for v in naming.VARIANTS:
            (folder / naming.native_name(sid, "lesion", v, n)).unlink()
    elif breakage == "no-lesion":
        for p in folder.glob("*_Lesion*"):
            p.unlink()
    elif breakage == "symlink-out":
        outside = touch(tmp_path, "outside.voi")
        (folder / f"{sid}_LesionRaw_1.voi").unlink()
        os.symlink(outside, folder / f"{sid}_LesionRaw_1.voi")
    elif breakage == "duplicate":
        scan(root, sid, 3, cohort="c0001")
    elif breakage == "phi-name":
        touch(folder, "John_Doe_1962-03-04.nii.gz")
    assert codes(inventory.build(root)) == expected


def _mask(n: int, variant: str, count: int) -> MaskRecord:
    return MaskRecord(
        f"x_{n}_{variant}",
        "0" * 64,
        1,
        variant,
        "native",
        count,
        float(count),
        (0.0, 0.0, 0.0),
        1,
        "left",
        "subcortical",
    )


def _scan_record(sizes: dict[int, int]) -> ScanRecord:
    rec = ScanRecord("c0009s0001t01")
    for n, size in sizes.items():
        rec.lesions[n] = {v: _mask(n, v, size) for v in naming.VARIANTS}
    return rec


def test_size_order():
    ok = _scan_record({0: 100, 1: 50, 2: 50, 3: 10})
    assert order_findings(ok, "f", primary_chosen=False) == []
    swapped = _scan_record({0: 100, 1: 10, 2: 50})
    assert [f.code for f in order_findings(swapped, "f", primary_chosen=False)] == ["NAME011"]
    small_primary = _scan_record({0: 10, 1: 50})
    assert [f.code for f in order_findings(small_primary, "f", primary_chosen=False)] == ["NAME012"]
    assert order_findings(small_primary, "f", primary_chosen=True) == []
    # wrong for one variant only (smoothing swapped two near-equal lesions): accepted
    near = _scan_record({0: 100, 1: 50, 2: 49})
    near.lesions[2]["raw_voi"].voxel_count = 51
    assert order_findings(near, "f", primary_chosen=False) == []
