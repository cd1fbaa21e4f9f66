"""The one byte form in which an image or a sidecar enters the store: the tool's own encoding of
what it parsed and allowed, never delivery bytes copied through.

A delivered ``.nii.gz``/``.voi`` is read strictly (:func:`inflate`, :func:`check_layout`):

* **gzip container** (RFC 1952): one member, compression method 8, no reserved flag bits, no
  ``FEXTRA`` field, no ``FCOMMENT``; the optional ``FNAME`` is text like any other (its PHI is
  checked by the de-identification rules) and is dropped. The member's CRC-32 and ``ISIZE`` must
  hold, and nothing may follow the member (a second member, padding, appended bytes: ``IMG013``).
* **size**: the inflated size is bounded by what the NIfTI header declares (``vox_offset`` plus the
  voxel bytes of ``dim``/``datatype``, at most :data:`MAX_VOXEL_BYTES`): inflation stops
  :data:`SLACK_BYTES` past it, so a stream that inflates further is refused before it is read to the
  end (``IMG014``), in memory and time bounded by the declaration.
* **NIfTI-1 layout**: single-file magic ``n+1`` only (the two-file magic ``ni1`` in one file makes
  ``vox_offset`` meaningless), no bytes after the voxel data (``IMG015``); extensions and the bytes
  between header and voxels are de-identification findings (``DEID002``).

What is stored (:func:`encode_image`) is a new little-endian NIfTI-1 header holding only the fields
the tool understands — data type, shape, voxel sizes and ``qfac``, units, the qform and sform with
their codes, ``scl_slope``/``scl_inter``, ``cal_min``/``cal_max``, and ``intent_name`` ``BINARY``
on MRIcron VOIs — every text field empty, no extension, ``vox_offset`` 352, then the voxel bytes,
compressed by :func:`niio.gzip_bytes` (no name, no comment, ``mtime`` 0). Everything else a header
can hold (``descrip``, ``aux_file``, ``db_name``, ``data_type``, ``intent_p*``, ``slice_*``,
``glmax``/``glmin``, ``toffset``, ``dim_info``, extensions) does not survive. A JSON sidecar is
stored as :func:`encode_json` of the object parsed (sorted keys, ASCII, two-space indent).
"""

from __future__ import annotations

import json
import struct
import zlib

import nibabel as nib
import numpy as np

from . import gz
from .errors import AtlasError

#: The largest voxel payload a T1 or mask may declare (a 0.5 mm float32 whole-head image is 64 MiB
#: at 256x256x256; 512 MiB leaves room for any anatomical scan and keeps validate/ingest within
#: about 2 GB with two workers).
MAX_VOXEL_BYTES = 512 * 1024 * 1024
#: The largest file validation reads at all (a gzip stream of at most MAX_VOXEL_BYTES, or a sidecar).
MAX_FILE_BYTES = MAX_VOXEL_BYTES + (1 << 20)
HEADER_BYTES = 348
VOX_OFFSET = 352
#: How far past the declared size inflation goes to tell bytes after the voxel data (IMG015) from a
#: stream that inflates without bound (IMG014).
SLACK_BYTES = 1 << 20

_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16
_RESERVED = 0xE0


def gzip_header(data: bytes, name: str) -> tuple[int, str]:
    """``(offset of the deflate data, FNAME text)`` of a gzip member; refuses what it does not allow."""
    if len(data) < 18:
        raise AtlasError(
            "IMG001", "corrupt or truncated gzip stream (shorter than a gzip header and trailer)", path=name
        )
    if data[:2] != b"\x1f\x8b" or data[2] != 8:
        raise AtlasError("IMG001", "not a gzip stream with deflate compression", path=name)
    flags = data[3]
    if flags & _RESERVED:
        raise AtlasError("IMG013", f"gzip header sets reserved flag bits (0x{flags & _RESERVED:02x})", path=name)
    pos = 10
    if flags & _FEXTRA:
        xlen = struct.unpack("<H", data[pos : pos + 2])[0] if len(data) >= pos + 2 else 0
        raise AtlasError(
            "IMG013", f"gzip header carries an extra field (FEXTRA, {xlen} byte(s)); not allowed", path=name
        )
    fname = ""
    if flags & _FNAME:
        end = data.find(b"\x00", pos)
        if end < 0:
            raise AtlasError("IMG001", "corrupt gzip header (unterminated file name)", path=name)
        fname = data[pos:end].decode("latin-1")
        pos = end + 1
    if flags & _FCOMMENT:
        end = data.find(b"\x00", pos)
        n = (end if end >= 0 else len(data)) - pos
        raise AtlasError("IMG013", f"gzip header carries a comment (FCOMMENT, {n} byte(s)); not allowed", path=name)
    if flags & _FHCRC:
        pos += 2
    return pos, fname


def declared_size(head: bytes, name: str) -> int:
    """The bytes a NIfTI-1 file must hold by its header: ``vox_offset`` + voxels of ``dim``/``datatype``."""
    if len(head) < HEADER_BYTES:
        raise AtlasError("IMG001", "file shorter than a NIfTI-1 header", path=name)
    try:
        hdr = nib.Nifti1Header.from_fileobj(_Bytes(head[:HEADER_BYTES]), check=False)
        if int(hdr["sizeof_hdr"]) != HEADER_BYTES:
            raise ValueError("sizeof_hdr is not 348")
        shape = hdr.get_data_shape()
        itemsize = hdr.get_data_dtype().itemsize
        offset = float(hdr["vox_offset"])
    except Exception as e:  # noqa: BLE001 - nibabel raises several types for a damaged header
        raise AtlasError("IMG001", f"not a readable NIfTI-1 header ({type(e).__name__}: {e})", path=name) from None
    if not np.isfinite(offset) or offset < VOX_OFFSET or offset > 1 << 30:
        raise AtlasError("IMG001", f"vox_offset {offset:g} is not a valid single-file offset (>= 352)", path=name)
    nbytes = int(np.prod([max(int(n), 0) for n in shape], dtype=object)) * itemsize
    if nbytes > MAX_VOXEL_BYTES:
        raise AtlasError(
            "IMG014",
            f"header declares {nbytes:,} bytes of voxel data (shape "
            f"{tuple(int(n) for n in shape)}); the limit is {MAX_VOXEL_BYTES:,}",
            path=name,
        )
    return int(offset) + nbytes


def inflate(data: bytes, name: str) -> bytes:
    """The inflated NIfTI bytes of a gzip file, never more than its header declares (see module doc)."""
    start, _ = gzip_header(data, name)
    d = _decompressobj()
    try:
        head = d.decompress(data[start:], VOX_OFFSET)
    except gz.ERRORS as e:
        raise AtlasError("IMG001", f"corrupt or truncated gzip stream ({e})", path=name) from None
    expected = declared_size(head, name)
    try:
        rest = d.decompress(d.unconsumed_tail, expected - len(head) + SLACK_BYTES) if not d.eof else b""
    except gz.ERRORS as e:
        raise AtlasError("IMG001", f"corrupt or truncated gzip stream ({e})", path=name) from None
    raw = head + rest
    if not d.eof and len(raw) >= expected:
        raise AtlasError(
            "IMG014",
            f"gzip stream inflates more than {SLACK_BYTES:,} byte(s) past the {expected:,} "
            "bytes the NIfTI header declares; refused before reading it to the end",
            path=name,
        )
    if not d.eof:
        raise AtlasError("IMG001", f"corrupt or truncated gzip stream ({len(raw):,} of {expected:,} bytes)", path=name)
    trailer = d.unused_data
    if len(trailer) < 8:
        raise AtlasError("IMG001", "corrupt or truncated gzip stream (no CRC-32/ISIZE trailer)", path=name)
    crc, size = struct.unpack("<II", trailer[:8])
    if crc != gz.crc32(raw) or size != len(raw) % (1 << 32):
        raise AtlasError("IMG001", "corrupt gzip stream (CRC-32 or size in the trailer does not match)", path=name)
    if len(trailer) > 8:
        what = "a second gzip member" if trailer[8:10] == b"\x1f\x8b" else "data"
        raise AtlasError(
            "IMG013", f"{len(trailer) - 8:,} byte(s) after the gzip stream ({what}); not allowed", path=name
        )
    return raw


def check_layout(raw: bytes, name: str) -> None:
    """Single-file magic ``n+1`` and no byte after the voxel data (the header is already readable)."""
    magic = bytes(raw[344:348])
    if magic == b"ni1\x00":
        raise AtlasError(
            "IMG015",
            "two-file NIfTI magic 'ni1' in a single file: its voxel offset does not locate "
            "the voxels; a .nii.gz/.voi must be single-file 'n+1'",
            path=name,
        )
    if magic != b"n+1\x00":
        raise AtlasError("IMG001", f"no NIfTI-1 single-file magic (found {magic!r})", path=name)
    expected = declared_size(raw, name)
    if len(raw) > expected:
        raise AtlasError(
            "IMG015",
            f"{len(raw) - expected:,} byte(s) after the voxel data the header declares; not allowed",
            path=name,
        )


def encode_image(img: nib.Nifti1Image, raw: bytes | None = None, *, voi: bool = False, compress: bool = True) -> bytes:
    """The canonical ``.nii.gz`` bytes of ``img`` (see the module doc); with ``compress=False`` the
    same NIfTI-1 bytes before gzip (what plain ``validate`` hashes: deflating is most of the cost).

    ``raw``: the inflated file ``img`` was decoded from; its voxel bytes are taken from there (byte
    order made little-endian) so that the stored values and their scaling are exactly the file's.
    Without ``raw`` the voxels are ``img``'s array in its header's data type, unscaled."""
    from .niio import gzip_bytes

    src = img.header
    hdr = nib.Nifti1Header()
    dtype = np.dtype(src.get_data_dtype()).newbyteorder("<")
    hdr.set_data_dtype(dtype)
    shape = tuple(int(n) for n in img.shape)
    hdr.set_data_shape(shape)
    hdr["pixdim"][: len(shape) + 1] = src["pixdim"][: len(shape) + 1]
    hdr["xyzt_units"] = src["xyzt_units"]
    for f in (
        "qform_code",
        "quatern_b",
        "quatern_c",
        "quatern_d",
        "qoffset_x",
        "qoffset_y",
        "qoffset_z",
        "sform_code",
        "srow_x",
        "srow_y",
        "srow_z",
        "cal_min",
        "cal_max",
    ):
        hdr[f] = src[f]
    slope, inter = _stored_scaling(img, raw)
    hdr["scl_slope"], hdr["scl_inter"] = slope, inter
    if voi:
        hdr["intent_name"] = b"BINARY"
    hdr["vox_offset"] = VOX_OFFSET
    if raw is not None:
        offset = int(float(_Bytes.header_of(raw)["vox_offset"]))
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        voxels: bytes | memoryview = memoryview(raw)[offset : offset + nbytes]
        src_dtype = np.dtype(_Bytes.header_of(raw).get_data_dtype())
        if src_dtype.byteorder == ">" or (src_dtype.byteorder == "=" and not _little()):
            voxels = np.frombuffer(voxels, dtype=src_dtype).astype(dtype).tobytes()
    else:
        obj = img.dataobj
        arr = np.asanyarray(obj.get_unscaled() if hasattr(obj, "get_unscaled") else obj)
        voxels = np.asarray(arr, dtype=dtype).tobytes(order="F")
    body = b"".join((hdr.binaryblock, b"\x00\x00\x00\x00", voxels))
    return gzip_bytes(body) if compress else body


def encode_json(obj) -> bytes:
    """The canonical bytes of a parsed JSON sidecar."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def _stored_scaling(img, raw: bytes | None) -> tuple[float, float]:
    if raw is not None:
        h = _Bytes.header_of(raw)
        return float(h["scl_slope"]), float(h["scl_inter"])
    obj = img.dataobj
    if hasattr(obj, "slope"):
        return float(obj.slope), float(obj.inter)
    s, i = img.header.get_slope_inter()
    return (1.0 if s is None else float(s)), (0.0 if i is None else float(i))


def _little() -> bool:
    import sys

    return sys.byteorder == "little"


def _decompressobj():
    try:
        from isal import isal_zlib

        return isal_zlib.decompressobj(wbits=-15)
    except ImportError:  # pragma: no cover - isal is a dependency
        return zlib.decompressobj(wbits=-15)


class _Bytes:
    """A minimal read-only file object over bytes (nibabel reads headers from file objects)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n is None or n < 0 else self.pos + n
        out = bytes(self.data[self.pos : end])
        self.pos += len(out)
        return out

    @staticmethod
    def header_of(raw: bytes) -> nib.Nifti1Header:
        return nib.Nifti1Header.from_fileobj(_Bytes(raw[:HEADER_BYTES]), check=False)


def encode_file(data: bytes, name: str) -> bytes:
    """The canonical form of a delivered file (a NIfTI-1 image or VOI, or a JSON sidecar), read
    with the same strict reader as validation; raises ``AtlasError`` for what it refuses."""
    if name.endswith(".json"):
        try:
            return encode_json(json.loads(data.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as e:
            raise AtlasError("IMG009", f"sidecar is not valid JSON ({e})", path=name) from None
    from .niio import decode_raw

    img, raw = decode_raw(data, name)
    return encode_image(img, raw, voi=name.endswith(".voi"))
