"""The figures of the report: the statistics (:mod:`atlas_registry.stats`, from the registry or the
release's Parquet tables), the lesion-volume histogram, the overlap map and a thumbnail of every
scan (:mod:`atlas_registry.thumbnails`, drawn by a pool of worker processes).

Every PNG is written deterministically: matplotlib figures with fixed style settings and no
``Software`` text chunk, other PNGs re-encoded by Pillow without text chunks.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .. import paper
from ..config import Workspace
from ..errors import AtlasError
from .data import CURRENT, ReportData

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# One look for every figure, whatever the user's matplotlibrc says.
STYLE: dict[RcKeyType, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": "#333333",
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "savefig.facecolor": "white",
    "path.simplify": False,
}
PRIMARY_COLOUR, SECONDARY_COLOUR, PAPER_COLOUR = "#1f4e79", "#9dc3e6", "#b35900"
SERIAL_BELOW = 32  # fewer thumbnails than this are drawn in this process


def clean_png(data: bytes) -> bytes:
    """``data`` re-encoded by Pillow: the same pixels, no text or time chunks."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        buf = io.BytesIO()
        im.save(buf, format="PNG")
    return buf.getvalue()


def histogram_bins(values, paper_range: tuple[float, float]):
    """Log-spaced bin edges (6 per decade) covering ``values`` and the paper's range with a margin: a
    paper line on a power of ten (its minimum, 10 mm³) would otherwise sit on the axis, unseen."""
    import numpy as np

    every = np.concatenate([np.asarray(values, dtype=float), np.array(paper_range, dtype=float)])
    lo, hi = np.floor(np.log10(every.min() * 0.8)), np.ceil(np.log10(every.max() * 1.25))
    return np.logspace(lo, hi, int(hi - lo) * 6 + 1)


def volume_histogram(volumes: list[tuple[int, float]], dest: Path, *, paper_range: tuple[float, float]) -> None:
    """Histogram of lesion volumes (mm³, log-spaced bins, log x axis): primary lesions and
    secondary lesions stacked; the paper's minimum and maximum as dashed lines.
    ``volumes``: (lesion number, volume) pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    primary = np.array([v for n, v in volumes if n == 0 and v > 0], dtype=float)
    secondary = np.array([v for n, v in volumes if n != 0 and v > 0], dtype=float)
    bins = histogram_bins(np.concatenate([primary, secondary]), paper_range)
    with matplotlib.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.2, 2.9), dpi=150)
        ax.hist(
            [primary, secondary],
            bins=bins,
            stacked=True,
            color=[PRIMARY_COLOUR, SECONDARY_COLOUR],
            edgecolor="white",
            linewidth=0.4,
            label=[f"primary lesions (n={len(primary)})", f"secondary lesions (n={len(secondary)})"],
        )
        for x in paper_range:
            ax.axvline(x, color=PAPER_COLOUR, linestyle="--", linewidth=0.9)
        ax.plot([], [], color=PAPER_COLOUR, linestyle="--", linewidth=0.9, label="paper: min and max")
        ax.set_xscale("log")
        ax.set_xlim(bins[0], bins[-1])
        ax.set_xlabel("lesion volume (mm³, native smoothed mask)")
        ax.set_ylabel("lesions")
        ax.yaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]  # a MaxNLocator
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="upper right")
        fig.tight_layout()
        dest.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(dest, format="png", metadata={"Software": None})
        plt.close(fig)


# -- thumbnails ----------------------------------------------------------------------------------


def _thumbnail(job: tuple[str, str, str | None]) -> tuple[str, bytes | None, str | None]:
    """Worker: (key, T1 path, mask path) -> (key, PNG bytes, None) or (key, None, error)."""
    from ..thumbnails import thumbnail_file

    key, t1, mask = job
    try:
        return key, thumbnail_file(t1, mask), None
    except Exception as e:  # noqa: BLE001 - reported by the parent with the scan it belongs to
        return key, None, f"{type(e).__name__}: {e}"


def _drawn(jobs: list[tuple[str, str, str | None]], workers: int):
    """The answers of :func:`_thumbnail` for ``jobs``, in this process or a pool of ``workers``."""
    if workers == 1:
        yield from map(_thumbnail, jobs)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import nibabel  # noqa: E401, F401 - imported once, before the workers fork

    # fork: the workers start at once, with the modules above already imported (not on macOS)
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() and sys.platform != "darwin" else None
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        try:
            for fut in as_completed([ex.submit(_thumbnail, job) for job in jobs]):
                yield fut.result()
        except BaseException:  # Ctrl-C: do not wait for the queue to drain
            ex.shutdown(wait=False, cancel_futures=True)
            raise


def thumbnails(
    jobs: list[tuple[str, str, str | None]], *, workers: int | None = None, progress: bool = False
) -> dict[str, bytes | str]:
    """Draw every thumbnail of ``jobs`` ((key, T1 path, mask path or None)), in worker processes
    when there are enough. Returns key -> PNG bytes, or key -> error message for a scan that could
    not be drawn."""
    if workers is None:  # a pool pays for itself only with enough scans to share out
        workers = min(os.cpu_count() or 1, 8) if len(jobs) >= SERIAL_BELOW else 1
    out: dict[str, bytes | str] = {}
    from ..progress import bar

    with bar("thumbnails", len(jobs), enabled=progress and bool(jobs)) as b:
        for key, png, err in _drawn(jobs, max(1, min(workers, len(jobs)))):
            out[key] = png if png is not None else err
            b.advance()
    return out


# -- statistics and figures ------------------------------------------------------------------------


@dataclass
class Figures:
    tables: dict
    volumes: dict
    histogram: str | None  # path relative to the report
    overlap: dict | None  # stats.overlap_map's answer, with "src"
    overlap_missing: str | None
    thumbs: dict[str, tuple[str, int, int]]  # scan code -> (src, width, height)


def _stats_source(ws: Workspace, view, work: Path) -> tuple[Workspace, Path | None]:
    """Where :mod:`stats` reads from: the registry, or (for a release) the release's ``scans`` and
    ``lesions`` Parquet tables written from its view, in a scratch folder (given as a path)."""
    if view.name == CURRENT:
        return ws, None
    from ..export import parquet
    from ..query import release_dir

    scratch = Workspace(work / "stats")
    folder = release_dir(scratch, view.name) / "parquet"
    folder.mkdir(parents=True)
    for name in ("scans", "lesions"):
        (folder / f"{name}.parquet").write_bytes(parquet.to_bytes(parquet.table(view, name)))
    return scratch, folder.parent


def make_figures(ws: Workspace, data: ReportData, out: Path, work: Path, progress: bool) -> Figures:
    """The statistics and figures of the report of ``data``; PNGs written under ``out/img``."""
    from .. import stats

    view = data.view
    img = out / "img"
    img.mkdir()
    from ..splits import training_view

    sws, srel = _stats_source(ws, training_view(view), work)
    tables, volumes = stats.paper_tables(sws, srel), stats.volume_stats(sws, srel)
    rows = [(number, vol) for _, number, vol in stats.fetch(sws, stats.VOLUMES_SQL, srel)]
    histogram = None
    if rows:
        volume_histogram(rows, img / "lesion-volumes.png", paper_range=(paper.VOLUME_MIN_MM3, paper.VOLUME_MAX_MM3))
        histogram = "img/lesion-volumes.png"
    overlap, missing = None, None
    try:
        overlap = stats.overlap_map(ws, work / "overlap.nii.gz", data.release)
    except AtlasError as e:
        if e.code != "STAT004":
            raise
        missing = str(e)
    if overlap is not None:
        (img / "lesion-overlap.png").write_bytes(clean_png(Path(overlap["png"]).read_bytes()))
        overlap["src"] = "img/lesion-overlap.png"
    return Figures(tables, volumes, histogram, overlap, missing, _thumbnails(ws, view, img / "scans", progress))


def _thumbnails(ws: Workspace, view, folder: Path, progress: bool) -> dict[str, tuple[str, int, int]]:
    from PIL import Image

    from ..objstore import local_objects, open_store

    wanted = []
    for sc in view.scans:
        primary = next((les for les in sc.lesions if les.is_primary), None)
        mask = primary and (primary.native_mask("smooth_nii") or (primary.native[0] if primary.native else None))
        wanted.append((sc.code, sc.t1_native.sha256, mask.sha256 if mask else None))
    shas = {sha for _, t1, m in wanted for sha in (t1, m) if sha}
    with local_objects(open_store(ws), None, shas) as store:  # a remote store: fetched to a temporary folder
        jobs = [(code, str(store.local_path(t1)), str(store.local_path(m)) if m else None) for code, t1, m in wanted]
        drawn = thumbnails(jobs, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for sc in view.scans:
        png = drawn[sc.code]
        if isinstance(png, str):
            raise AtlasError("REP004", f"cannot draw the thumbnail of {sc.code}: {png}", path=sc.code)
        name = f"{sc.public_scan}.png"
        (folder / name).write_bytes(png)
        with Image.open(folder / name) as im:
            out[sc.code] = (f"img/{folder.name}/{quote(name)}", *im.size)
    return out
