"""The release report: one static HTML page (``index.html`` + ``img/``) describing the registry now,
or one release, the way a consortium publishes a data release.

Contents: key figures; Tables 1 and 2 of the data descriptor computed with
:func:`stats.paper_tables` beside the paper's numbers (:mod:`atlas_registry.paper`), differences
highlighted; lesion volumes (:func:`stats.volume_stats`) with a histogram; the probabilistic
overlap map of the standardized primary lesions (:func:`stats.overlap_map`); the scans outside the
standardized subset and why; the validation summary (ingest runs and their warnings); the
changelog (:mod:`atlas_registry.changelog`); and a thumbnail of every scan (native T1 slice through
the primary lesion, outlined; :mod:`atlas_registry.thumbnails`).

* Without a release: the registry as it stands (every scan; the standardized subset as the
  registry records it).
* ``release=NAME``: that release as it was built: the registry at the release's last revision with
  its stored membership (``release_scan``). Its tables and volumes run the same SQL on the
  release's Parquet tables, written from the release's view exactly as the release builder writes
  them; the overlap map averages the release's standardized scans.

The page is public: scans are named by their public identifiers (``sub-<label>_ses-<n>``), native
identifiers in free text are replaced by public ones (:meth:`ReleaseView.public_text`), no path of
the curator's machine is shown (ingest sources by folder name, event paths and absolute paths in
validator messages relative to the delivery: :mod:`.data`), and all text is HTML-escaped. It needs
no JavaScript and loads nothing from elsewhere. The same registry gives the same bytes: no clock,
sorted content, PNGs without time or software chunks. The folder is written beside ``out`` and
renamed into place when complete; an existing ``out`` is replaced only if it holds an earlier
report (``REP003`` otherwise).

The package: :mod:`.data` reads what the report shows from the registry, :mod:`.figures` computes
the statistics and draws the figures and thumbnails, :mod:`.html` writes the page with the style
sheet ``report.css`` (package data); this module puts the folder in place.

Rule codes: ``REP001`` no such release, ``REP002`` the release was never built (no membership),
``REP003`` the output folder holds something other than a report, ``REP004`` a thumbnail could not
be drawn (docs/codes.md).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..config import Workspace
from ..errors import AtlasError
from .data import CURRENT, load, shown_path, shown_source
from .figures import make_figures
from .html import CSS, GENERATOR, esc, page

__all__ = [
    "CSS",
    "CURRENT",
    "GENERATOR",
    "INDEX",
    "ReportSummary",
    "build_report",
    "esc",
    "make_report",
    "shown_path",
    "shown_source",
]

INDEX = "index.html"


@dataclass
class ReportSummary:
    index: Path
    release: str | None
    revision: int | None
    scans: int
    lesions: int
    standard: int
    excluded: int
    thumbnails: int
    seconds: float

    def to_dict(self) -> dict:
        return {**self.__dict__, "index": str(self.index)}


def build_report(ws: Workspace, out: Path, *, release: str | None = None, progress: bool = False) -> Path:
    """Write the report of the registry (or of release ``release``) into folder ``out``; returns
    the path of its ``index.html``."""
    return make_report(ws, out, release=release, progress=progress).index


def make_report(ws: Workspace, out: Path, *, release: str | None = None, progress: bool = False) -> ReportSummary:
    """:func:`build_report`, returning what the report holds."""
    started = time.perf_counter()
    out = Path(out).absolute()
    _check_out(out)
    data = load(ws, release)
    tmp = out.parent / f".{out.name}.report-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory(prefix="atlas-report-") as work:
            figures = make_figures(ws, data, tmp, Path(work), progress)
        (tmp / INDEX).write_text(page(data, figures), encoding="utf-8")
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    v = data.view
    return ReportSummary(
        out / INDEX,
        release,
        v.revision,
        len(v.scans),
        v.n_lesions,
        len(v.standard_scans),
        len(v.exclusions),
        len(figures.thumbs),
        round(time.perf_counter() - started, 2),
    )


# -- output folder ---------------------------------------------------------------------------------


def _is_report(folder: Path) -> bool:
    entries = {p.name for p in folder.iterdir()}
    if not entries:
        return True
    if INDEX not in entries or not entries <= {INDEX, "img"}:
        return False
    with open(folder / INDEX, encoding="utf-8", errors="replace") as f:
        return f'<meta name="generator" content="{GENERATOR}' in f.read(4096)


def _check_out(out: Path) -> None:
    if out.exists() and not (out.is_dir() and _is_report(out)):
        raise AtlasError("REP003", "output exists and is not an earlier report (choose another --out)", path=str(out))


def _install(tmp: Path, out: Path) -> None:
    """Rename the finished report into place, replacing an earlier one."""
    from ..folders import swap_in

    if out.exists():
        _check_out(out)
    swap_in(tmp, out)
