"""Reading and writing NIfTI-1 images and MRIcron VOIs, the one place that touches their bytes.

* :func:`decode` turns the bytes of a ``.nii.gz``, ``.voi`` (or plain ``.nii``) file into a nibabel
  image, decompressing exactly once in memory, and reports a damaged file as ``AtlasError IMG001``.
* :func:`encode_nifti` / :func:`encode_voi` produce deterministic bytes: the gzip header has
  ``mtime`` 0 and no file name, so the same image always gives the same file (reproducible
  releases, content-addressed storage).
* Every ``save_*`` writes atomically: a temporary file in the destination folder, then ``os.replace``.

A VOI is what MRIcron writes: a gzip single-file NIfTI-1 (``n+1``), uint8 0/1, the header copied from
the T1 it was drawn on (so ``descrip``/``aux_file`` text of the T1 travels into the VOI, a real
de-identification hazard), ``intent_name`` starting with ``B``, ``scl_slope`` 1, ``scl_inter`` 0 and
``vox_offset`` 352.
"""

from __future__ import annotations

import io
import os
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from .errors import AtlasError
from .store import atomic_write

# Compression, measured on full-size synthetic files (CPU seconds / MB per file):
#   T1 (16 MB int16 with noise): level 1 0.24 s / 9.5 MB; level 6 1.16 s / 9.3 MB; level 1 with
#   the run-length strategy 0.12 s / 9.8 MB (8.5 MB for a defaced standardized T1);
#   mask (8 MB uint8, mostly 0): level 1 18 ms / 50 kB; level 6 28 ms / 10 kB; run-length 17 ms / 10 kB.
# Run-length deflate is plain deflate (every gzip reader inflates it): twice as fast on images and
# as small as level 6 on masks, which keeps a full-scale synthesis within its time budget.
GZIP_LEVEL = 1
GZIP_STRATEGY = zlib.Z_RLE
IMAGE_GZIP_LEVEL = MASK_GZIP_LEVEL = GZIP_LEVEL  # one setting for all (names kept for callers)

VOI_INTENT_NAME = b"BINARY"
VOX_OFFSET = 352  # 348-byte header + 4-byte extension flag, no extensions
GZIP_MAGIC = b"\x1f\x8b"

_UMASK = os.umask(0)
os.umask(_UMASK)


def decode(data: bytes, name: str) -> nib.Nifti1Image:
    """Parse the bytes of a NIfTI-1 file (``.nii.gz``, ``.voi`` or ``.nii``) named ``name``.

    The gzip stream is inflated once, in memory, strictly and within what the header declares
    (:func:`canonical.inflate`: ``IMG013`` container extras, ``IMG014`` inflating past the declared
    size, ``IMG015`` a layout with bytes the header does not account for); the image returned reads
    its voxels from that buffer.  As with any nibabel load, ``img.header`` has
    ``scl_slope``/``scl_inter`` reset to NaN (scaling lives in ``img.dataobj``); use
    :func:`read_header` for the fields exactly as stored.  A truncated or corrupt gzip stream, an
    unparsable header or voxel data shorter than the header promises raise
    ``AtlasError("IMG001", ..., path=name)``.
    """
    return decode_raw(data, name)[0]


def decode_raw(data: bytes, name: str) -> tuple[nib.Nifti1Image, bytes]:
    """:func:`decode`, and the inflated bytes the image was read from."""
    from . import canonical

    if data[:2] == GZIP_MAGIC:
        raw = canonical.inflate(data, name)
    elif str(name).endswith(".nii") and not str(name).endswith(".gz"):
        raw = bytes(data)
    else:
        raise AtlasError("IMG001", "not a gzip stream (a .nii.gz or .voi file must be gzip-compressed)", path=name)
    needed = canonical.declared_size(raw, name)
    canonical.check_layout(raw, name)
    try:
        with nib.imageglobals.LoggingOutputSuppressor():
            img = nib.Nifti1Image.from_bytes(raw)
    except Exception as e:  # noqa: BLE001 -- nibabel raises several types (HeaderDataError, ImageFileError, ValueError)
        raise AtlasError("IMG001", f"not a readable NIfTI-1 image ({type(e).__name__}: {e})", path=name) from None
    if len(raw) < needed:
        raise AtlasError("IMG001", f"voxel data truncated ({len(raw)} of {needed} bytes)", path=name)
    return img, raw


def load(path: str | os.PathLike) -> nib.Nifti1Image:
    """Read a file and :func:`decode` it."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise AtlasError("IMG001", f"cannot read file ({e.strerror or e})", path=str(path)) from None
    return decode(data, str(path))


def gzip_bytes(raw: bytes, level: int = GZIP_LEVEL) -> bytes:
    """Deterministic gzip: ``mtime`` 0, no file name in the header, run-length deflate."""
    co = zlib.compressobj(level, zlib.DEFLATED, 31, 9, GZIP_STRATEGY)  # wbits 31: gzip wrapper
    return co.compress(raw) + co.flush()


def encode_nifti(img: nib.Nifti1Image, compresslevel: int | None = None) -> bytes:
    """The deterministic ``.nii.gz`` bytes of ``img``."""
    return gzip_bytes(img.to_bytes(), GZIP_LEVEL if compresslevel is None else compresslevel)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``,
    so a reader never sees a half-written file (no fsync: datasets are rewritten, not journaled).
    The file gets the usual permissions (umask), not the temporary file's private ones."""
    atomic_write(path, data, fsync=False)
    os.chmod(path, 0o666 & ~_UMASK)


def save_nifti(img: nib.Nifti1Image, path: str | os.PathLike, compresslevel: int | None = None) -> None:
    """Write ``img`` as a deterministic ``.nii.gz`` file, atomically."""
    write_atomic(path, encode_nifti(img, compresslevel))


def voi_image(mask: np.ndarray, ref: nib.Nifti1Image) -> nib.Nifti1Image:
    """The image MRIcron would save for ``mask`` drawn on ``ref``: the reference header copied
    (text fields included), uint8 0/1 voxels, binary intent, unit scaling."""
    mask = np.asarray(mask)
    if mask.shape != ref.shape[:3]:
        raise AtlasError("IMG003", f"mask shape {mask.shape} does not match the reference image {ref.shape[:3]}")
    hdr = ref.header.copy()
    hdr.extensions.clear()
    hdr.set_data_dtype(np.uint8)
    hdr.set_data_shape(mask.shape)
    hdr.set_intent("none")
    hdr["intent_name"] = VOI_INTENT_NAME
    hdr["cal_min"], hdr["cal_max"] = 0, 1
    hdr.set_slope_inter(1.0, 0.0)
    data = (mask != 0).astype(np.uint8, order="K")  # keeps a Fortran-ordered mask cheap to write
    img = nib.Nifti1Image(data, ref.affine, hdr)
    img.header["intent_name"] = VOI_INTENT_NAME  # Nifti1Image may reset intent on construction
    return img


def encode_voi(mask: np.ndarray, ref: nib.Nifti1Image) -> bytes:
    """The deterministic bytes of an MRIcron ``.voi`` for ``mask`` drawn on ``ref``."""
    return gzip_bytes(voi_image(mask, ref).to_bytes())


def save_voi(mask: np.ndarray, ref: nib.Nifti1Image, path: str | os.PathLike) -> None:
    """Write an MRIcron ``.voi`` for ``mask`` drawn on ``ref``, atomically."""
    write_atomic(path, encode_voi(mask, ref))


def read_header(data: bytes, name: str) -> nib.Nifti1Header:
    """Only the header of a NIfTI-1 file (inflates just the first 348 bytes of a gzip stream)."""
    if data[:2] == GZIP_MAGIC:
        try:
            head = zlib.decompressobj(wbits=31).decompress(data, 348)
        except zlib.error as e:
            raise AtlasError("IMG001", f"corrupt gzip stream ({e})", path=name) from None
    else:
        head = data[:348]
    if len(head) < 348:
        raise AtlasError("IMG001", "file shorter than a NIfTI-1 header", path=name)
    try:
        with nib.imageglobals.LoggingOutputSuppressor():
            return nib.Nifti1Header.from_fileobj(io.BytesIO(head), check=False)
    except Exception as e:  # noqa: BLE001 - any parse failure is one error for people
        raise AtlasError("IMG001", f"unparsable NIfTI-1 header ({e})", path=name) from None
