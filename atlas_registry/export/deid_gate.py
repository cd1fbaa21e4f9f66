"""The fail-closed de-identification re-check of everything a release writes.

Ingest already refuses identifying content; this gate checks again on the way out, with the rules of
:mod:`atlas_registry.validate.deid` (same codes, same messages), and the first finding aborts the
build with ``AtlasError(<rule>, message, path=<file in the release>)``:

* every NIfTI/VOI file: header text fields and header extensions (DEID001, DEID002);
* every standardized T1 of the BIDS archive: no face left (DEID008, :func:`anatomy.face_signal`);
* every per-scan JSON sidecar: identifying keys and values (DEID003, DEID004);
* every table (participants/sessions TSV, the metadata workbook and CSVs, Parquet tables): column names
  (DEID006) and cell text (DEID007) of participant-level columns, and no cell or column name a
  spreadsheet program could evaluate as a formula (META015, :mod:`atlas_registry.validate.formulas`);
* every text file of a public archive (BIDS, Parquet): no native identifier ``cXXXXsXXXX`` (EXP010) --
  the crosswalk from public labels to native identifiers never leaves the registry.

Release-level documents written from the release specification (authors, citation, links, dates of
releases) are the curators' words, not participant data: they get only the native-identifier check.

Header and face verdicts depend only on the file's bytes, so a passing verdict is remembered with the
registry by SHA-256 and rule-set version (:mod:`atlas_registry.verdicts`; ingest records the verdicts
its validation reached) and a build does not decompress a T1 that was already checked.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from .. import verdicts
from ..errors import AtlasError
from ..validate import deid, formulas
from .view import NATIVE_ID_RE

GATE_VERSION = verdicts.RULESET


def _raise(findings: list) -> None:
    if findings:
        f = findings[0]
        raise AtlasError(f.code, f"de-identification re-check: {f.message}", path=f.path)


def nifti_head(data) -> tuple[bytes, list[int]]:
    """The 348-byte header of a (gzip) NIfTI-1 file and the codes of its header extensions.

    ``data``: the file's bytes, or a path (then only the first few kilobytes are read, more when
    header extensions follow the header)."""
    chunks = _chunks(data)
    first = next(chunks, b"")
    gz = first[:2] == b"\x1f\x8b"
    d = zlib.decompressobj(wbits=31) if gz else None
    head = b""

    def need(n: int) -> bytes:
        nonlocal head, first
        while len(head) < n:
            block = first if first else next(chunks, b"")
            first = b""
            if not block and not (d is not None and d.unconsumed_tail):
                break
            head += d.decompress(d.unconsumed_tail + block, n - len(head)) if d is not None else block
        return head

    head = need(352)
    if len(head) < 348:
        raise AtlasError("IMG001", "file shorter than a NIfTI-1 header")
    end = "<" if struct.unpack("<i", head[:4])[0] == 348 else ">"
    codes: list[int] = []
    if len(head) >= 352 and head[348] != 0:
        vox_offset = int(struct.unpack(end + "f", head[108:112])[0])
        head = need(vox_offset)
        pos = 352
        while pos + 8 <= min(len(head), vox_offset):
            esize, ecode = struct.unpack(end + "ii", head[pos : pos + 8])
            codes.append(ecode)
            if esize < 8:
                break
            pos += esize
        if not codes:
            codes.append(-1)  # flagged but unreadable: still not allowed
    return head[:348], codes


def _chunks(data, size: int = 4096):
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    with open(data, "rb") as f:
        while block := f.read(size):
            yield block
            size = 1 << 16


class Gate:
    """Checks files as they are written. Passing verdicts on content-addressed files (header and face
    checks, by SHA-256) are read from and added to the registry's verdicts (:mod:`atlas_registry.verdicts`,
    ``folder``: ``<home>/verdicts``; ``None``: check everything, remember nothing), saved by :meth:`save`."""

    def __init__(self, folder=None):
        self.folder = folder
        self._known: set[str] = verdicts.load(folder)
        self._new: set[str] = set()
        self.checked = 0
        self.cached = 0

    def _passed_before(self, kind: str, sha: str) -> bool:
        if f"{kind} {sha}" in self._known:
            self.cached += 1
            return True
        return False

    def _remember(self, kind: str, sha: str) -> None:
        self._known.add(f"{kind} {sha}")
        self._new.add(f"{kind} {sha}")

    def save(self) -> None:
        """Add this build's verdicts to the registry's (only passing verdicts exist)."""
        verdicts.add(self.folder, self._new)
        self._new.clear()

    # -- images --------------------------------------------------------------------------------
    def nifti(self, relpath: str, data: bytes | Path, sha: str, *, mask: bool, subject: str | None = None) -> None:
        """DEID001/DEID002 on one NIfTI or VOI file (``data``: its bytes or its path)."""
        if self._passed_before("header", sha):
            return
        try:
            block, codes = nifti_head(data)
        except (zlib.error, struct.error) as e:
            raise AtlasError("IMG001", f"unreadable NIfTI header ({e})", path=relpath) from None
        _raise(deid.header_findings(block, codes, relpath=relpath, subject=subject, mask=mask, scrub=False))
        self.checked += 1
        self._remember("header", sha)

    def defaced(self, relpath: str, path: Path, sha: str, *, subject: str | None = None) -> None:
        """DEID008: the standardized T1 has no face left."""
        if self._passed_before("face", sha):
            return
        from .. import niio

        img = niio.decode(Path(path).read_bytes(), relpath)
        _raise(deid.face_findings(img, relpath=relpath, subject=subject))
        self.checked += 1
        self._remember("face", sha)

    # -- text ----------------------------------------------------------------------------------
    def sidecar(self, relpath: str, obj, *, generated: tuple[str, ...] = ("Sources", "SpatialReference")) -> None:
        """DEID003/DEID004 on a JSON sidecar. ``generated`` keys hold paths and URLs this package
        builds from public labels and template names (a random label can look like a number)."""
        _raise(
            deid.sidecar_findings({k: v for k, v in obj.items() if k not in generated}, relpath=relpath, subject=None)
        )

    def table(self, relpath: str, sheet: str, columns, rows, *, text_columns=None) -> None:
        """DEID006 on the column names; DEID007 on the cells of ``text_columns`` (default: all);
        META015 on every cell and column name a spreadsheet program could evaluate (numbers pass in the
        columns that are not ``text_columns``).

        ``rows`` are dicts by column name."""
        _raise(deid.column_findings(columns, sheet=sheet, relpath=relpath))
        _raise(formulas.column_findings(columns, sheet=sheet, relpath=relpath))
        cols = list(columns if text_columns is None else text_columns)
        numeric = frozenset(columns) - frozenset(cols)
        _raise(
            formulas.findings(
                ((i, None, {c: row.get(c) for c in columns}) for i, row in enumerate(rows, start=2)),
                sheet=sheet,
                relpath=relpath,
                numeric=numeric,
            )
        )

        def cells():
            for i, row in enumerate(rows, start=2):
                yield i, None, {c: None if row.get(c) is None else str(row.get(c)) for c in cols}

        _raise(deid.cell_findings(cells(), sheet=sheet, relpath=relpath))

    @staticmethod
    def no_native_ids(relpath: str, text: str | bytes) -> None:
        """EXP010: a public archive's file carries no native identifier ``cXXXXsXXXX``."""
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        if NATIVE_ID_RE.search(text):
            raise AtlasError(
                "EXP010",
                "a native identifier cXXXXsXXXX appears in a file of a public archive "
                "(the crosswalk never leaves the registry)",
                path=relpath,
            )
