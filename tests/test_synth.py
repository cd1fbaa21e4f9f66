"""The synthetic dataset, checked against the files it writes (``--scale small``, seed 0).

Counts come from walking the output folders and classifying the masks on disk, never from the
generator's internal state.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import ndimage as ndi

from atlas_registry import anatomy, masks, metadata, naming, niio, paper
from atlas_registry.synth import reliability

SMALL_VOXEL = 3.0


def _native_scans(root: Path) -> dict[str, dict]:
    """{scan id: {"t1": path, "lesions": {number: {variant: path}}}} from the native folders."""
    out = {}
    for cohort in sorted(p for p in (root / "native").iterdir() if p.is_dir()):
        for folder in sorted(cohort.iterdir()):
            entry = {"t1": None, "lesions": defaultdict(dict), "cohort": cohort.name}
            for f in folder.iterdir():
                nf = naming.parse_native_name(f.name)
                assert nf is not None, f"unexpected file {f}"
                assert str(nf.scan) == folder.name
                if nf.kind == "t1":
                    entry["t1"] = f
                else:
                    entry["lesions"][nf.lesion][nf.variant] = f
            out[folder.name] = entry
    return out


@pytest.fixture(scope="module")
def small(synth_small):
    """Everything the tests need from the files, loaded once."""
    scans = _native_scans(synth_small)
    loaded = {}
    for sid, e in scans.items():
        t1 = niio.load(e["t1"])
        les = {}
        for n, files in sorted(e["lesions"].items()):
            assert set(files) == set(naming.VARIANTS), f"{sid} lesion {n} lacks files"
            raw = np.asarray(niio.load(files["raw_voi"]).dataobj) > 0
            svoi = np.asarray(niio.load(files["smooth_voi"]).dataobj) > 0
            snii_img = niio.load(files["smooth_nii"])
            les[n] = {"raw": raw, "smooth_voi": svoi, "smooth": np.asarray(snii_img.dataobj) > 0, "img": snii_img}
        loaded[sid] = {"t1": t1, "lesions": les, "cohort": e["cohort"]}
    meta = metadata.read_metadata(synth_small / "native")
    return {"root": synth_small, "scans": loaded, "meta": meta}


def _classes(small) -> dict[tuple[str, int], tuple[str, str]]:
    return {
        (sid, n): anatomy.classify(one["smooth"], s["t1"].affine)
        for sid, s in small["scans"].items()
        for n, one in s["lesions"].items()
    }


def test_tables_1_and_2_from_the_files(small):
    scans, classes = small["scans"], _classes(small)
    assert len(scans) == paper.N_SCANS and len(classes) == paper.N_LESIONS
    for cohort in paper.COHORTS:
        ids = [sid for sid, s in scans.items() if s["cohort"] == cohort]
        t1 = paper.TABLE1[cohort]
        single = Counter(classes[(sid, 0)][0] for sid in ids if len(scans[sid]["lesions"]) == 1)
        multiple = sum(1 for sid in ids if len(scans[sid]["lesions"]) > 1)
        assert (len(ids), single["left"], single["right"], single["other"], multiple) == (
            t1.scans,
            t1.single_left,
            t1.single_right,
            t1.single_other,
            t1.multiple,
        ), cohort
        lesions = Counter(c for (sid, _), c in classes.items() if sid in set(ids))
        t2 = paper.TABLE2[cohort]
        got = tuple(
            lesions[k]
            for k in (
                ("left", "cortical"),
                ("right", "cortical"),
                ("left", "subcortical"),
                ("right", "subcortical"),
                ("other", "other"),
            )
        )
        assert got == (t2.cortical_left, t2.cortical_right, t2.subcortical_left, t2.subcortical_right, t2.other), cohort


def test_masks_are_sound(small):
    """≥ 10 mm³, binary VOIs, smoothed = smooth(raw), VOI = NIfTI, one piece, no overlap or contact,
    numbered from largest to smallest, primary largest unless the metadata says otherwise."""
    flagged = {
        r[metadata.SCAN_ID]
        for r in small["meta"]["scans"].to_dict("records")
        if r[metadata.PRIMARY_NOT_LARGEST] == "Yes"
    }
    n_flagged_real = 0
    for sid, s in small["scans"].items():
        aff = s["t1"].affine
        zooms = masks.zooms_of(aff)
        vox = masks.voxel_volume_mm3(aff)
        assert sorted(s["lesions"]) == list(range(len(s["lesions"]))), sid
        sizes = []
        for n, one in s["lesions"].items():
            assert one["raw"].shape == s["t1"].shape and np.allclose(one["img"].affine, aff)
            assert one["smooth"].sum() * vox >= 10.0 and one["raw"].sum() * vox >= 10.0, (sid, n)
            assert np.array_equal(masks.smooth(one["raw"], zooms), one["smooth"]), (sid, n)
            assert np.array_equal(one["smooth_voi"], one["smooth"]), (sid, n)
            assert masks.n_components(one["smooth"]) == 1, (sid, n)
            sizes.append(int(one["smooth"].sum()))
        assert sizes[1:] == sorted(sizes[1:], reverse=True), sid
        if len(sizes) > 1 and sizes[0] < max(sizes[1:]):
            n_flagged_real += 1
            assert sid in flagged, f"{sid}: primary not the largest but not recorded"
        elif sid in flagged:
            pytest.fail(f"{sid}: recorded as primary-not-largest but the primary is the largest")
        numbers = sorted(s["lesions"])
        for a, b in [(a, b) for i, a in enumerate(numbers) for b in numbers[i + 1 :]]:
            la, lb = s["lesions"][a], s["lesions"][b]
            grown = ndi.binary_dilation(la["smooth"] | la["raw"], structure=np.ones((3, 3, 3), bool))
            assert not (grown & (lb["smooth"] | lb["raw"])).any(), f"{sid}: lesions {a} and {b} touch"
    assert 0 < n_flagged_real == len(flagged) < 0.05 * paper.N_SCANS


def test_metadata_agrees_with_masks_and_schema(small):
    meta, classes = small["meta"], _classes(small)
    assert set(meta) == set(metadata.TABLES)
    for t in metadata.TABLES:
        assert tuple(meta[t].columns) == metadata.COLUMNS[t]
        validator = jsonschema.Draft202012Validator(metadata.load_schema(t))
        for row in metadata.typed_records(t, meta[t]):
            errors = list(validator.iter_errors(row))
            assert not errors, (t, row, errors[0].message)
    scans = {r[metadata.SCAN_ID]: r for r in meta["scans"].to_dict("records")}
    assert set(scans) == set(small["scans"])
    rows = {(r[metadata.SCAN_ID], int(r["Lesion"])): r for r in meta["lesions"].to_dict("records")}
    assert set(rows) == set(classes)
    for (sid, n), (hemi, loc) in classes.items():
        r = rows[(sid, n)]
        assert (r["Hemisphere"], r["Location"]) == (hemi, loc), (sid, n)
        raw = small["scans"][sid]["lesions"][n]["raw"]
        assert anatomy.classify(raw, small["scans"][sid]["t1"].affine) == (hemi, loc), (sid, n)
        assert r["Tracer"] != r["Reviewer"]
    for sid, row in scans.items():
        counts = Counter(metadata.count_column(*classes[(sid, n)]) for n in small["scans"][sid]["lesions"])
        for col in metadata.COUNT_COLUMNS:
            assert int(row[col]) == counts[col], (sid, col)
        assert row[metadata.COHORT] == sid[:5]
        side = row["Primary Stroke Location Hemisphere"]
        hemi = classes[(sid, 0)][0]
        assert side == "Bilateral" or side == {"left": "Left", "right": "Right", "other": "Brainstem"}[hemi], sid
    scanners = meta["scanners"].to_dict("records")
    assert [r[metadata.COHORT] for r in scanners] == list(paper.COHORTS)
    for r in scanners:
        low = r[metadata.COHORT] in paper.LOW_RESOLUTION_COHORTS
        assert float(r["Field Strength (T)"]) == (1.5 if low else 3.0)
        want = [2.7, 2.7, 9.0] if low else [3.0, 3.0, 3.0]
        assert sorted(float(r[f"Voxel Size {a} (mm)"]) for a in "XYZ") == want


def test_csv_and_workbook_say_the_same(small):
    csv = metadata.read_metadata(small["root"] / "native", source="csv")
    book = small["meta"]
    for t in metadata.TABLES:
        a, b = csv[t], book[t]
        assert list(a.columns) == list(b.columns) and len(a) == len(b)
        for col in a.columns:
            if col.startswith("Voxel Size") or col.startswith("Field"):
                assert [float(x) for x in a[col]] == [float(x) for x in b[col]]
            else:
                assert list(a[col]) == list(b[col]), (t, col)


def test_t1_images_look_like_scans(small):
    axcodes, affines = set(), set()
    for sid, s in small["scans"].items():
        img = s["t1"]
        hdr = niio.read_header(Path(_t1_path(small, sid)).read_bytes(), sid)
        assert img.get_data_dtype() == np.int16
        assert int(hdr["qform_code"]) == 1 and int(hdr["sform_code"]) == 1
        assert hdr.get_xyzt_units()[0] == "mm"
        assert hdr["descrip"].item() == b"" and hdr["aux_file"].item() == b"" and not hdr.extensions
        zooms = sorted(round(z, 3) for z in img.header.get_zooms())
        low = sid[:5] in paper.LOW_RESOLUTION_COHORTS
        assert zooms == ([2.7, 2.7, 9.0] if low else [3.0, 3.0, 3.0])
        import nibabel as nib

        axcodes.add(nib.aff2axcodes(img.affine))
        affines.add(tuple(np.round(img.affine, 3).ravel()))
    assert len(axcodes) >= 5 and len(affines) == len(small["scans"])


def _t1_path(small, sid):
    return small["root"] / "native" / naming.native_relpath(sid, "t1")


def test_lesions_are_darker_and_faces_present(small):
    darker = 0
    picked = sorted(small["scans"])[::15]
    for sid in picked:
        s = small["scans"][sid]
        data = np.asarray(s["t1"].dataobj, dtype=np.float32)
        les = s["lesions"][0]["smooth"]
        ring = ndi.binary_dilation(les, iterations=2) & ~ndi.binary_dilation(les)
        darker += float(data[les].mean()) < 0.8 * float(data[ring].mean())
        assert anatomy.face_signal(s["t1"]) > anatomy.FACE_SIGNAL_DEFACED_MAX, sid
    assert darker >= 0.9 * len(picked)


def test_standardized_subset(small):
    root = small["root"] / "standard"
    shape, aff = anatomy.template_grid(SMALL_VOXEL)
    folders = {f.name: f for c in root.iterdir() if c.is_dir() for f in c.iterdir()}
    assert len(folders) == paper.N_STANDARDIZED
    people = {naming.parse_scan_id(s).subject_code for s in folders}
    assert len(people) == paper.N_STANDARDIZED_PEOPLE
    failures = metadata.read_registration_failures(root)
    assert tuple(failures.columns) == metadata.REGISTRATION_FAILURES_COLUMNS
    by = Counter(failures["Exclusion"])
    assert by == {"low resolution": paper.N_LOW_RESOLUTION, "registration failure": paper.N_REGISTRATION_FAILURES}
    low = failures[failures["Exclusion"] == "low resolution"]
    assert set(s[:5] for s in low[metadata.SCAN_ID]) == set(paper.LOW_RESOLUTION_COHORTS)
    reg = failures[failures["Exclusion"] == "registration failure"]
    assert set(reg["Reason"]) == set(paper.REGISTRATION_FAILURE_REASONS)
    assert set(failures[metadata.SCAN_ID]).isdisjoint(folders)
    assert set(failures[metadata.SCAN_ID]) | set(folders) == set(small["scans"])
    rows = {(r[metadata.SCAN_ID], int(r["Lesion"])): r for r in small["meta"]["lesions"].to_dict("records")}
    for sid, folder in sorted(folders.items())[::4]:
        t1 = niio.load(folder / naming.standard_name(sid, "t1"))
        assert t1.shape == shape and np.allclose(t1.affine, aff)
        assert int(t1.header["sform_code"]) == 4
        assert anatomy.face_signal(t1) <= anatomy.FACE_SIGNAL_DEFACED_MAX, sid
        n_native = len(small["scans"][sid]["lesions"])
        assert len(list(folder.iterdir())) == n_native + 1
        for n in range(n_native):
            m = np.asarray(niio.load(folder / naming.standard_name(sid, "lesion", n)).dataobj) > 0
            assert m.sum() * SMALL_VOXEL**3 >= 10.0
            assert anatomy.classify(m, aff) == (rows[(sid, n)]["Hemisphere"], rows[(sid, n)]["Location"])


def test_second_timepoints(small):
    ids = set(small["scans"])
    t02 = [s for s in ids if s.endswith("t02")]
    assert t02 and all(s[:-2] + "01" in ids for s in t02)


def test_volume_statistics_near_the_paper(small):
    vols = np.array(
        [
            one["smooth"].sum() * masks.voxel_volume_mm3(s["t1"].affine)
            for s in small["scans"].values()
            for one in s["lesions"].values()
        ]
    )
    assert abs(vols.mean() / paper.VOLUME_MEAN_MM3 - 1) < 0.15
    assert abs(vols.std(ddof=1) / paper.VOLUME_SD_MM3 - 1) < 0.15
    assert abs(vols.max() / paper.VOLUME_MAX_MM3 - 1) < 0.05


def test_summary_and_preview(small):
    summary = json.loads((small["root"] / "synth.json").read_text())
    assert summary["scans"] == paper.N_SCANS and summary["lesions"] == paper.N_LESIONS
    png = (small["root"] / "preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000


def test_reliability_study(small):
    root = small["root"] / "reliability"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.nii.gz"))
    want = sorted(
        [reliability.t1_relpath(b) for b in range(1, 6)]
        + [reliability.mask_relpath(b, r, s) for b in range(1, 6) for r in range(1, 12) for s in (1, 2)]
    )
    assert files == want
    assert (root / "README.md").is_file() and (root / reliability.TRACINGS_CSV).is_file()
    got = reliability.agreement(root)
    assert got["inter_dice"][1][0] == pytest.approx(paper.INTER_RATER_DICE[1].mean, abs=0.1)
    assert got["inter_dice"][2][0] == pytest.approx(paper.INTER_RATER_DICE[2].mean, abs=0.1)
    assert got["intra_dice"][0] == pytest.approx(paper.INTRA_RATER_DICE.mean, abs=0.1)
    assert got["inter_dice"][1][0] < got["inter_dice"][2][0]
    for mean, _ in (got["inter_hd"][1], got["inter_hd"][2], got["intra_hd"]):
        assert 8.0 < mean < 45.0
    # volume agreement as `atlas-registry reliability` computes it (ICC(2,1) on traced volumes)
    from atlas_registry import reliability as analysis

    icc = {
        m["measure"]: m["mean"]
        for m in analysis.analyze(root)["measures"]
        if m["measure"].startswith("volume_icc") and m["session"] in ("all", "1-2")
    }
    assert icc["volume_icc_inter"] == pytest.approx(paper.VOLUME_ICC_INTER.mean, abs=0.12)
    assert icc["volume_icc_intra"] == pytest.approx(paper.VOLUME_ICC_INTRA.mean, abs=0.12)


def _digests(root: Path, subdirs) -> dict[str, str]:
    out = {}
    for sub in subdirs:
        for p in sorted((root / sub).rglob("*")):
            if p.is_file():
                out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_same_seed_same_bytes_whatever_the_workers(synth_small, synth_small_cohorts):
    one = synth_small_cohorts(["c0001", "c0009"], workers=1)
    two = synth_small_cohorts(["c0001", "c0009"], workers=2)
    every = ["native", "standard"]
    a, b = _digests(one, every), _digests(two, every)
    assert a and a == b
    for f in ("synth.json", "preview.png"):
        assert (one / f).read_bytes() == (two / f).read_bytes()
    # a cohort's files are the same in a partial and in the full run
    per_scan = ["native/c0001", "native/c0009", "standard/c0009"]
    assert _digests(one, per_scan) == _digests(synth_small, per_scan)


def test_cli_refuses_bad_requests(tmp_path):
    from atlas_registry.cli import main

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    assert main(["synth", str(tmp_path / "busy")]) == 1
    assert main(["synth", str(tmp_path / "new"), "--cohorts", "c0099"]) == 2
    assert main(["synth", str(tmp_path / "new2"), "--scale", "huge"]) == 2
    assert (tmp_path / "busy" / "keep.txt").read_text() == "x"


def test_metadata_files_are_deterministic(small, tmp_path):
    tables = {t: small["meta"][t] for t in metadata.TABLES}
    metadata.write_metadata(tmp_path / "a", tables)
    metadata.write_metadata(tmp_path / "b", tables)
    names = [naming.METADATA_WORKBOOK, *naming.METADATA_CSV.values()]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    again = metadata.read_metadata(tmp_path / "a")
    for t in metadata.TABLES:
        assert again[t].equals(small["meta"][t])
