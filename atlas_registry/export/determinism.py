"""Byte-for-byte reproducible output: the same release view always gives the same files.

* gzip: ``mtime`` 0, no file name (:func:`atlas_registry.niio.gzip_bytes`);
* zip: entries sorted by name, one fixed ``date_time`` (the release date), fixed permissions
  (``0644`` files, ``0755`` folders), no extra fields, STORED for data that is already compressed;
* JSON: sorted keys, two-space indent, UTF-8, final newline;
* xlsx: the workbook's created/modified properties set to the release date and the zip rewritten
  with fixed entry dates (openpyxl stamps both with the current time on save);
* SPSS ``.sav`` / Stata ``.dta``: ReadStat writes the current date and time into the file header;
  :func:`fix_sav_timestamp` / :func:`fix_dta_timestamp` overwrite them with the release date.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import zipfile
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

from .. import gz

FILE_MODE = 0o444  # files of a build (read-only: a release does not change)
ZIP_FILE_MODE = 0o644  # files inside a zip (what unzip gives the person who downloads it)
DIR_MODE = 0o755
# Suffixes whose bytes are already compressed: zip stores them as they are.
_STORED_SUFFIXES = (".gz", ".voi", ".zip", ".xlsx", ".parquet", ".png", ".jpg")
_CHUNK = 1 << 20
_WHOLE_FILE_MAX = 256 << 20  # larger files are read twice (CRC-32, then data) rather than held


def release_datetime(day: str) -> datetime:
    """Midnight UTC of the release date ``YYYY-MM-DD`` (zip entries cannot predate 1980)."""
    d = date.fromisoformat(day)
    return datetime(max(d.year, 1980), d.month, d.day, tzinfo=UTC)


def zip_date_time(day: str) -> tuple[int, int, int, int, int, int]:
    return release_datetime(day).timetuple()[:6]


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _zinfo(name: str, date_time, *, is_dir: bool = False, compress: bool = True) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=date_time)
    zi.create_system = 3  # Unix, so that external_attr holds the permissions
    zi.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16 | 0x10) if is_dir else ((stat.S_IFREG | ZIP_FILE_MODE) << 16)
    zi.compress_type = zipfile.ZIP_DEFLATED if compress and not is_dir else zipfile.ZIP_STORED
    return zi


class _HashingWriter:
    """A write-only, forward-only file for :class:`zipfile.ZipFile` that hashes what passes through
    (no ``seek``: zipfile then writes strictly in order and never rewrites a header). Hashing runs
    in a second thread (hashlib releases the GIL), a few blocks behind the writes; small writes
    (headers, the central directory) are gathered into one block first."""

    _AHEAD = 8  # blocks handed to the hashing thread and not yet hashed
    _SMALL = 64 << 10

    def __init__(self, f):
        self._f = f
        self._sha = hashlib.sha256()
        self._hasher = ThreadPoolExecutor(max_workers=1)  # one worker: blocks are hashed in order
        self._queued: deque = deque()
        self._small = bytearray()
        self.pos = 0

    def _hash(self, block) -> None:
        self._queued.append(self._hasher.submit(self._sha.update, block))
        if len(self._queued) > self._AHEAD:
            self._queued.popleft().result()

    def _hash_small(self) -> None:
        if self._small:
            self._hash(bytes(self._small))
            self._small.clear()

    def write(self, data) -> int:
        self._f.write(data)
        if len(data) < self._SMALL:
            self._small += data
            if len(self._small) >= _CHUNK:
                self._hash_small()
        else:
            self._hash_small()
            self._hash(data)
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        """Part of zipfile's protocol, never called for a file it was given: the owner closes ``f``."""

    def hexdigest(self) -> str:
        """The SHA-256 of everything written (waits for the hashing thread; call once, at the end)."""
        self._hash_small()
        while self._queued:
            self._queued.popleft().result()
        self._hasher.shutdown()
        return self._sha.hexdigest()

    def abandon(self) -> None:
        for fut in self._queued:
            fut.cancel()
        self._hasher.shutdown()


def file_crc32(path: Path) -> int:
    """The CRC-32 of a file (zip entries carry it)."""
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            crc = gz.crc32(block, crc)
    return crc


def _zip64(zi: zipfile.ZipInfo) -> bool:
    """Whether zipfile would give the entry ZIP64 sizes (what ``ZipFile.open(zi, "w")`` decides)."""
    return zi.file_size > 0x7FFFFFFF or zi.file_size * 1.05 > zipfile.ZIP64_LIMIT


def entry_names(relpaths: list[str], prefix: str = "") -> dict[str, str | None]:
    """Zip entry name -> relpath (``None``: a folder entry, one for every parent) of :func:`write_zip`."""
    names: dict[str, str | None] = {}
    for rel in relpaths:
        parts = (prefix + rel).split("/")
        for i in range(1, len(parts)):
            names.setdefault("/".join(parts[:i]) + "/", None)
        names[prefix + rel] = rel
    return names


def _add_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo, path: Path | None) -> None:
    """Append one entry (header, then data) as ``ZipFile.open(zi, "w")`` on a seekable file would
    write it, but without going back: the file is read once, its CRC-32 computed before the header
    is written. Already-compressed files are stored, others deflated (as zipfile deflates)."""
    fp = zf.fp
    assert fp is not None  # the zip is open for writing
    zi.flag_bits = 0
    zi.header_offset = fp.tell()
    if path is None:  # a folder
        zi.file_size = zi.compress_size = zi.CRC = 0
        fp.write(zi.FileHeader(False))
    elif zi.file_size > _WHOLE_FILE_MAX and zi.compress_type == zipfile.ZIP_STORED:  # too big to hold: two reads
        zi.CRC = file_crc32(path)
        zi.compress_size = zi.file_size
        fp.write(zi.FileHeader(_zip64(zi)))
        with open(path, "rb") as f:
            left = zi.file_size
            while left > 0:
                block = f.read(min(_CHUNK, left))
                if not block:
                    raise OSError(f"{path} shrank while it was being zipped")
                fp.write(block)
                left -= len(block)
    else:
        data = path.read_bytes()
        if len(data) != zi.file_size:
            raise OSError(f"{path} changed while it was being zipped")
        if zi.compress_type == zipfile.ZIP_STORED:
            body = data
        else:
            comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
            body = comp.compress(data) + comp.flush()
        zi.compress_size, zi.CRC = len(body), gz.crc32(data)
        fp.write(zi.FileHeader(_zip64(zi)))
        fp.write(body)
    zf.filelist.append(zi)
    zf.NameToInfo[zi.filename] = zi


def write_zip(dest: Path, root: Path, relpaths: list[str], day: str, *, prefix: str = "") -> tuple[int, str]:
    """A deterministic zip of ``root/relpath`` for every ``relpath`` (POSIX), stored under
    ``prefix + relpath``; folder entries are added for every parent, all sorted by name. Every file
    is read once; the zip is written in one pass and not read back: returns its size and SHA-256.
    The bytes are those ``zipfile`` writes on its own (tested against it)."""
    dt = zip_date_time(day)
    names = entry_names(relpaths, prefix)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw:
        out = _HashingWriter(raw)
        try:
            zf = zipfile.ZipFile(out, "w", allowZip64=True)
            for name in sorted(names):
                rel = names[name]
                if rel is None:
                    _add_member(zf, _zinfo(name, dt, is_dir=True), None)
                    continue
                zi = _zinfo(name, dt, compress=not rel.endswith(_STORED_SUFFIXES))
                zi.file_size = os.path.getsize(root / rel)
                _add_member(zf, zi, root / rel)
            zf.start_dir = out.tell()
            zf.close()
        except BaseException:
            out.abandon()
            raise
    return out.pos, out.hexdigest()


def fix_xlsx(data: bytes, day: str) -> bytes:
    """An openpyxl workbook with its document dates set to the release date and fixed zip entries."""
    stamp = release_datetime(day).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    src = zipfile.ZipFile(io.BytesIO(data))
    core = src.read("docProps/core.xml")
    core = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)", rb"\g<1>" + stamp + rb"\g<2>", core)
    out = io.BytesIO()
    dt = zip_date_time(day)
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = core if info.filename == "docProps/core.xml" else src.read(info)
            zi = zipfile.ZipInfo(info.filename, date_time=dt)  # attributes as the writer set them
            zi.create_system, zi.external_attr, zi.compress_type = (
                info.create_system,
                info.external_attr,
                info.compress_type,
            )
            dst.writestr(zi, body, compresslevel=6)
    return out.getvalue()


_SAV_DATE = slice(92, 101)  # "dd Mmm yy" in the SPSS file header record
_SAV_TIME = slice(101, 109)  # "hh:mm:ss"


def fix_sav_timestamp(data: bytes, day: str) -> bytes:
    """Set the creation date/time of an SPSS ``.sav`` header (``$FL2`` record) to the release date."""
    if data[:4] not in (b"$FL2", b"$FL3"):
        raise ValueError("not an SPSS system file")
    d = release_datetime(day)
    buf = bytearray(data)
    buf[_SAV_DATE] = d.strftime("%d %b %y").encode("ascii")
    buf[_SAV_TIME] = b"00:00:00"
    return bytes(buf)


_DTA_STAMP = re.compile(rb"<timestamp>(.)")


def fix_dta_timestamp(data: bytes, day: str) -> bytes:
    """Set the ``<timestamp>`` of a Stata 118/119 ``.dta`` header to the release date."""
    m = _DTA_STAMP.search(data, 0, 512)
    if not m:
        raise ValueError("not a Stata 118/119 file (no <timestamp> in the header)")
    n = m.group(1)[0]
    if n == 0:
        return data
    stamp = release_datetime(day).strftime("%d %b %Y 00:00").encode("ascii")
    if len(stamp) != n:
        raise ValueError(f"unexpected Stata timestamp length {n}")
    start = m.end()
    return data[:start] + stamp + data[start + n :]
