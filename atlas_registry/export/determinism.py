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

import io
import json
import os
import re
import shutil
import stat
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

FILE_MODE = 0o644
DIR_MODE = 0o755
# Suffixes whose bytes are already compressed: zip stores them as they are.
_STORED_SUFFIXES = (".gz", ".voi", ".zip", ".xlsx", ".parquet", ".png", ".jpg")


def release_datetime(day: str) -> datetime:
    """Midnight UTC of the release date ``YYYY-MM-DD`` (zip entries cannot predate 1980)."""
    d = date.fromisoformat(day)
    return datetime(max(d.year, 1980), d.month, d.day, tzinfo=timezone.utc)


def zip_date_time(day: str) -> tuple[int, int, int, int, int, int]:
    return release_datetime(day).timetuple()[:6]


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _zinfo(name: str, date_time, *, is_dir: bool = False, compress: bool = True) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, date_time=date_time)
    zi.create_system = 3  # Unix, so that external_attr holds the permissions
    zi.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16 | 0x10) if is_dir else ((stat.S_IFREG | FILE_MODE) << 16)
    zi.compress_type = zipfile.ZIP_DEFLATED if compress and not is_dir else zipfile.ZIP_STORED
    return zi


def write_zip(dest: Path, root: Path, relpaths: list[str], day: str, *, prefix: str = "") -> None:
    """A deterministic zip of ``root/relpath`` for every ``relpath`` (POSIX), stored under
    ``prefix + relpath``; folder entries are added for every parent, all sorted by name."""
    dt = zip_date_time(day)
    names: dict[str, str | None] = {}
    for rel in relpaths:
        parts = (prefix + rel).split("/")
        for i in range(1, len(parts)):
            names.setdefault("/".join(parts[:i]) + "/", None)
        names[prefix + rel] = rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", allowZip64=True) as zf:
        for name in sorted(names):
            rel = names[name]
            if rel is None:
                zf.writestr(_zinfo(name, dt, is_dir=True), b"")
                continue
            zi = _zinfo(name, dt, compress=not rel.endswith(_STORED_SUFFIXES))
            zi.file_size = os.path.getsize(root / rel)
            with open(root / rel, "rb") as src, zf.open(zi, "w", force_zip64=zi.file_size > 0x7FFFFFFF) as out:
                shutil.copyfileobj(src, out, 1 << 20)


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
            zi.create_system, zi.external_attr, zi.compress_type = (info.create_system, info.external_attr,
                                                                    info.compress_type)
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
    return data[:start] + stamp + data[start + n:]
