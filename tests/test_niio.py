"""NIfTI / MRIcron VOI input and output: decoding, damage reports, deterministic bytes, atomic writes."""

from __future__ import annotations

import gzip
import os
import struct

import nibabel as nib
import numpy as np
import pytest

from atlas_registry import niio
from atlas_registry.errors import AtlasError


def _t1(shape=(20, 24, 16), descrip=b"", aux=b""):
    aff = np.array([[0.0, 0.0, 1.0, -8.0], [-0.9, 0.0, 0.0, 10.0], [0.0, -0.9, 0.0, 12.0], [0, 0, 0, 1]])
    hdr = nib.Nifti1Header()
    hdr["descrip"], hdr["aux_file"] = descrip, aux
    hdr.set_xyzt_units("mm", "sec")
    data = (np.random.default_rng(1).random(shape) * 900).astype(np.int16)
    img = nib.Nifti1Image(data, aff, hdr)
    img.set_qform(aff, 1)
    img.set_sform(aff, 1)
    return img


def test_round_trip_through_files_written_by_nibabel(tmp_path):
    img = _t1()
    nib.save(img, tmp_path / "a.nii.gz")  # written by nibabel itself
    back = niio.load(tmp_path / "a.nii.gz")
    assert back.shape == img.shape
    assert np.array_equal(np.asarray(back.dataobj), np.asarray(img.dataobj))
    assert np.allclose(back.affine, img.affine)
    niio.save_nifti(img, tmp_path / "b.nii.gz")
    again = nib.load(tmp_path / "b.nii.gz")  # and what we write, nibabel reads
    assert np.array_equal(np.asarray(again.dataobj), np.asarray(img.dataobj))
    assert int(again.header["qform_code"]) == 1 and int(again.header["sform_code"]) == 1


def test_plain_nii_is_accepted(tmp_path):
    img = _t1()
    raw = img.to_bytes()
    assert niio.decode(raw, "x.nii").shape == img.shape


def test_deterministic_gzip_without_name_or_time(tmp_path):
    img = _t1()
    a, b = niio.encode_nifti(img), niio.encode_nifti(_t1())
    assert a == b
    assert a[:2] == b"\x1f\x8b"
    flags, mtime = a[3], struct.unpack("<I", a[4:8])[0]
    assert mtime == 0 and not flags & 0x08  # no FNAME
    niio.save_nifti(img, tmp_path / "one.nii.gz")
    niio.save_nifti(img, tmp_path / "two.nii.gz")
    assert (tmp_path / "one.nii.gz").read_bytes() == (tmp_path / "two.nii.gz").read_bytes() == a


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated gzip stream
        lambda b: b[:10] + bytes(x ^ 0x5A for x in b[10:40]) + b[40:],  # corrupt deflate data
        lambda b: gzip.decompress(b)[:300],  # not gzip at all (raw header bytes) in a .nii.gz
        lambda b: gzip.compress(b"\0" * 400),  # gzip, but no NIfTI header
        lambda b: gzip.compress(gzip.decompress(b)[:600]),  # header fine, voxels cut short
    ],
)
def test_damaged_files_raise_img001_with_the_path(damage):
    data = niio.encode_nifti(_t1())
    with pytest.raises(AtlasError) as e:
        niio.decode(damage(data), "c0001/c0001s0001t01/c0001s0001t01.nii.gz")
    assert e.value.code == "IMG001"
    assert e.value.path == "c0001/c0001s0001t01/c0001s0001t01.nii.gz"


def test_load_of_missing_file_is_img001(tmp_path):
    with pytest.raises(AtlasError) as e:
        niio.load(tmp_path / "nope.voi")
    assert e.value.code == "IMG001"


def test_decode_inflates_once(monkeypatch):
    data = niio.encode_nifti(_t1())
    from atlas_registry import canonical

    calls = []
    real = canonical._decompressobj

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(canonical, "_decompressobj", counting)
    img = niio.decode(data, "x.nii.gz")
    np.asarray(img.dataobj)
    assert len(calls) == 1


def test_voi_is_what_mricron_writes(tmp_path):
    ref = _t1(descrip=b"TE=2.9;Time=101500.000", aux=b"ImageComments")
    mask = np.zeros(ref.shape, dtype=bool)
    mask[5:9, 6:10, 4:7] = True
    niio.save_voi(mask, ref, tmp_path / "x_LesionRaw.voi")
    data = (tmp_path / "x_LesionRaw.voi").read_bytes()
    assert data[:2] == b"\x1f\x8b" and struct.unpack("<I", data[4:8])[0] == 0
    raw = gzip.decompress(data)
    assert raw[344:347] == b"n+1"
    hdr = niio.read_header(data, "x.voi")
    assert hdr.get_data_dtype() == np.uint8
    assert bytes(hdr["intent_name"].item()).startswith(b"B")
    assert float(hdr["scl_slope"]) == 1.0 and float(hdr["scl_inter"]) == 0.0
    assert int(hdr["vox_offset"]) == 352
    # the T1's text travels into the VOI (the de-identification hazard validators look for)
    assert hdr["descrip"].item() == b"TE=2.9;Time=101500.000"
    assert hdr["aux_file"].item() == b"ImageComments"
    img = niio.decode(data, "x.voi")
    vox = np.asarray(img.dataobj)
    assert set(np.unique(vox).tolist()) == {0, 1}
    assert np.array_equal(vox.astype(bool), mask)
    assert np.allclose(img.affine, ref.affine)
    assert niio.encode_voi(mask, ref) == data


def test_voi_shape_must_match_reference():
    with pytest.raises(AtlasError) as e:
        niio.encode_voi(np.zeros((3, 3, 3)), _t1())
    assert e.value.code == "IMG003"


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "f.bin"
    niio.write_atomic(target, b"one")
    niio.write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(os.listdir(target.parent)) == ["f.bin"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not left with mkstemp's private mode


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    niio.write_atomic(target, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(niio.os, "replace", boom)
    with pytest.raises(OSError):
        niio.write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["f.bin"]


def test_fast_gzip_agrees_with_the_standard_library():
    import zlib

    from atlas_registry import gz

    data = os.urandom(70_000) + b"\0" * 200_000
    two_members = gzip.compress(data, mtime=0) + gzip.compress(data[:999], mtime=0)
    assert gz.decompress(two_members) == gzip.decompress(two_members)
    assert gz.crc32(data) == zlib.crc32(data) and gz.crc32(data[10:], gz.crc32(data[:10])) == zlib.crc32(data)
    for bad in (two_members[:5000], b"\x1f\x8b" + b"garbage" * 9, gzip.compress(data)[:-4] + b"\0\0\0\0"):
        with pytest.raises(gz.ERRORS):
            gz.decompress(bad)
