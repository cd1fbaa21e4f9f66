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
identifiers in free text are replaced by public ones (:meth:`ReleaseView.public_text`), and all text
is HTML-escaped. It needs no JavaScript and loads nothing from elsewhere. The same registry gives
the same bytes: no clock, sorted content, PNGs without time or software chunks. The folder is
written beside ``out`` and renamed into place when complete; an existing ``out`` is replaced only if
it holds an earlier report (``REP003`` otherwise).

Rule codes: ``REP001`` no such release, ``REP002`` the release was never built (no membership),
``REP003`` the output folder holds something other than a report, ``REP004`` a thumbnail could not
be drawn (docs/codes.md).
"""

from __future__ import annotations

import html
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, overload
from urllib.parse import quote

from . import __version__, paper
from .config import Workspace
from .errors import AtlasError

if TYPE_CHECKING:
    from .export import ReleaseView
    from .release_spec import ReleaseSpec

GENERATOR = "atlas-registry report"
INDEX = "index.html"
CURRENT = "(registry)"  # name of the pseudo-release that is the registry as it stands


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
    data = _load(ws, release)
    tmp = out.parent / f".{out.name}.report-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        with tempfile.TemporaryDirectory(prefix="atlas-report-") as work:
            figures = _figures(ws, data, tmp, Path(work), progress)
        page = _page(data, figures)
        (tmp / INDEX).write_text(page, encoding="utf-8")
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
    from .folders import swap_in

    if out.exists():
        _check_out(out)
    swap_in(tmp, out)


# -- what the report shows -----------------------------------------------------------------------


@dataclass
class _Run:
    id: int
    source: str
    started_at: datetime
    status: str
    n_files: int
    n_scans: int
    n_errors: int
    n_warnings: int
    stored: int
    events: list[tuple[str, str | None, str]]  # (kind, path, detail), public text


@dataclass
class _Data:
    release: str | None
    status: str  # current | built | published
    spec: ReleaseSpec
    view: ReleaseView
    revision_at: datetime | None
    changes: str
    runs: list[_Run]


def _load(ws: Workspace, release: str | None) -> _Data:
    from sqlmodel import col, func, select

    from . import changelog, db
    from .export import build_view
    from .export.view import recorded_view
    from .models import Release, Revision
    from .release_spec import ReleaseSpec, parse_spec
    from .splits import public_view
    from .tracker import require_registry

    require_registry(ws)
    withheld: set[str] = set()
    with db.session(ws) as s:
        if release is None:
            spec, status = ReleaseSpec(name=CURRENT, version="0.0.0", date="", title="ATLAS lesion registry"), "current"
            view = build_view(s, spec)
            rel = None
        else:
            rel = s.exec(select(Release).where(Release.name == release)).first()
            if rel is None:
                raise AtlasError(
                    "REP001",
                    f"no release {release!r} in the registry (build it first: "
                    f"atlas-registry release build {release} --out DIR)",
                )
            if rel.status == "draft" or rel.manifest_sha256 is None:
                raise AtlasError("REP002", f"release {release} has not been built: it has no membership yet")
            spec, status = parse_spec(rel.spec, rel.name), rel.status
            full = recorded_view(s, spec, rel)  # as its build read it (published: as published)
            withheld = {sc.code for sc in full.scans if sc.withheld}
            view = public_view(full)  # a release with splits: nothing of a withheld mask
        revision_at = None
        if view.revision is not None:
            revision_at = _utc(s.exec(select(Revision.created_at).where(Revision.id == view.revision)).one())
        changes = changelog.changes_text(s, changelog.edition_of(s, rel)) if rel else _unreleased_changes(s, view)
        last_run = None
        if rel is not None:
            last_run = s.exec(
                select(func.max(Revision.ingest_run_id)).where(col(Revision.id) <= (view.revision or 0))
            ).one()
        runs = _runs(s, view, last_run, everything=rel is None, withheld=withheld)
    return _Data(release, status, spec, view, revision_at, changes, runs)


@overload
def _utc(dt: datetime) -> datetime: ...
@overload
def _utc(dt: None) -> None: ...
def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _unreleased_changes(s, view) -> str:
    """The changelog of the registry as it stands: what changed since the newest published
    release (as an "Unreleased" entry), then that release's ``CHANGES``."""
    from sqlmodel import select

    from . import changelog
    from .models import Release

    published = s.exec(select(Release).where(Release.status == "published")).all()
    newest = max(published, key=lambda r: changelog.semver(r.version), default=None)
    head = f"Unreleased (registry revision {view.revision})" if view.revision is not None else "Unreleased"
    if newest is None:
        n_std = sum(1 for sc in view.scans if sc.in_standard)
        return f"{head}\n  - No published release yet: {len(view.scans)} scans, {n_std} in the standardized subset.\n"
    prev = changelog.edition_of(s, newest)
    ed = changelog.Edition(CURRENT, "", "", view.revision, {sc.code: sc.in_standard for sc in view.scans})
    lines = changelog.edition_lines(s, ed, prev)
    block = "\n".join([f"{head}, since {newest.name}"] + [f"  - {line}" for line in lines])
    return block + "\n\n" + changelog.changes_text(s, prev)


def _runs(
    s, view, last_run: int | None, *, everything: bool, withheld: frozenset[str] | set[str] = frozenset()
) -> list[_Run]:
    """Ingest runs (all of them, or those up to ``last_run``) with their audit events other than
    plain file stores (counted instead); events naming a ``withheld`` scan (test or hidden) are left out."""
    from sqlmodel import col, func, select

    from .export.view import NATIVE_ID_RE
    from .models import AuditEvent, IngestRun

    q = select(IngestRun).order_by(col(IngestRun.id))
    if not everything:
        q = q.where(col(IngestRun.id) <= (last_run or 0))
    runs = s.exec(q).all()
    ids = [r.id for r in runs]
    if not ids:
        return []
    stored = dict(
        s.exec(
            select(AuditEvent.ingest_run_id, func.count())
            .where(AuditEvent.kind == "store", col(AuditEvent.ingest_run_id).in_(ids))
            .group_by(col(AuditEvent.ingest_run_id))
        ).all()
    )
    events: dict[int, list] = {}
    for run_id, kind, path, detail in s.exec(
        select(AuditEvent.ingest_run_id, AuditEvent.kind, AuditEvent.path, AuditEvent.detail)
        .where(AuditEvent.kind != "store", col(AuditEvent.ingest_run_id).in_(ids))
        .order_by(col(AuditEvent.id))
    ).all():
        named = set(NATIVE_ID_RE.findall(f"{path or ''} {detail or ''}"))
        if withheld and any(n in withheld or any(w.startswith(n) for w in withheld) for n in named):
            continue
        events.setdefault(run_id, []).append((kind, view.public_text(path), view.public_text(detail)))
    return [
        _Run(
            r.id,
            view.public_text(shown_source(r.source)),
            _utc(r.started_at),
            r.status,
            r.n_files,
            r.n_scans,
            r.n_errors,
            r.n_warnings,
            stored.get(r.id, 0),
            [(k, shown_path(p, r.source), d) for k, p, d in events.get(r.id, [])],
        )
        for r in runs
    ]


def shown_source(source: str | None) -> str:
    """An ingest run's source as the report shows it: the delivery folder's name, never the absolute
    path on the curator's machine (user names, mount points, project folders)."""
    if not source:
        return ""
    p = PurePosixPath(source.replace("\\", "/"))
    return f"…/{p.name}" if p.is_absolute() and p.name else source


def shown_path(path: str | None, source: str | None) -> str | None:
    """A path of an ingest event, relative to the run's source (or its last component)."""
    if not path:
        return path
    p, root = PurePosixPath(path.replace("\\", "/")), PurePosixPath((source or "").replace("\\", "/"))
    if not p.is_absolute():
        return path
    try:
        return str(p.relative_to(root)) if root.is_absolute() else f"…/{p.name}"
    except ValueError:
        return f"…/{p.name}"


# -- statistics and figures ------------------------------------------------------------------------


@dataclass
class _Figures:
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
    from .export import parquet
    from .query import release_dir

    scratch = Workspace(work / "stats")
    folder = release_dir(scratch, view.name) / "parquet"
    folder.mkdir(parents=True)
    for name in ("scans", "lesions"):
        (folder / f"{name}.parquet").write_bytes(parquet.to_bytes(parquet.table(view, name)))
    return scratch, folder.parent


def _figures(ws: Workspace, data: _Data, out: Path, work: Path, progress: bool) -> _Figures:
    from . import report_figures as rf
    from . import stats

    view = data.view
    img = out / "img"
    img.mkdir()
    from .splits import training_view

    sws, srel = _stats_source(ws, training_view(view), work)
    tables, volumes = stats.paper_tables(sws, srel), stats.volume_stats(sws, srel)
    rows = [(number, vol) for _, number, vol in stats.fetch(sws, stats.VOLUMES_SQL, srel)]
    histogram = None
    if rows:
        rf.volume_histogram(rows, img / "lesion-volumes.png", paper_range=(paper.VOLUME_MIN_MM3, paper.VOLUME_MAX_MM3))
        histogram = "img/lesion-volumes.png"
    overlap, missing = None, None
    try:
        overlap = stats.overlap_map(ws, work / "overlap.nii.gz", data.release)
    except AtlasError as e:
        if e.code != "STAT004":
            raise
        missing = str(e)
    if overlap is not None:
        (img / "lesion-overlap.png").write_bytes(rf.clean_png(Path(overlap["png"]).read_bytes()))
        overlap["src"] = "img/lesion-overlap.png"
    return _Figures(tables, volumes, histogram, overlap, missing, _thumbnails(ws, view, img / "scans", progress))


def _thumbnails(ws: Workspace, view, folder: Path, progress: bool) -> dict[str, tuple[str, int, int]]:
    from PIL import Image

    from .objstore import local_objects, open_store
    from .report_figures import thumbnails

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


# -- HTML ----------------------------------------------------------------------------------------


def esc(value) -> str:
    """HTML-escaped text (``None`` -> empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else esc(v)


def _vol(v) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


# Tables 1 and 2 as the paper lays them out: (group heading or None, column heading, key).
TABLE1 = (
    "Table 1",
    "Scans with one lesion, by hemisphere, and scans with multiple lesions, per cohort.",
    [
        (None, "Scans", "scans"),
        ("Single lesion", "Left", "single_left"),
        ("Single lesion", "Right", "single_right"),
        ("Single lesion", "Other", "single_other"),
        (None, "Multiple lesions", "multiple"),
    ],
    "% of scans",
)
TABLE2 = (
    "Table 2",
    "Lesions (primary and secondary) by location and hemisphere, per cohort.",
    [
        ("Cortical", "Left", "cortical_left"),
        ("Cortical", "Right", "cortical_right"),
        ("Subcortical only", "Left", "subcortical_left"),
        ("Subcortical only", "Right", "subcortical_right"),
        (None, "Other", "other"),
    ],
    "% of lesions",
)


def _head_rows(columns) -> str:
    top, sub = ['<th rowspan="2" class="l">Cohort</th>'], []
    i = 0
    while i < len(columns):
        group = columns[i][0]
        if group is None:
            top.append(f'<th rowspan="2">{esc(columns[i][1])}</th>')
            i += 1
            continue
        span = 1
        while i + span < len(columns) and columns[i + span][0] == group:
            span += 1
        top.append(f'<th colspan="{span}" class="group">{esc(group)}</th>')
        sub += [f"<th>{esc(c[1])}</th>" for c in columns[i : i + span]]
        i += span
    return f"<tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr>"


def _cell(ours: str, theirs: str | None) -> tuple[str, bool]:
    """A table cell with our value; where the paper says otherwise, highlighted with the paper's."""
    if theirs is None or theirs == ours:
        return f"<td>{ours}</td>", False
    return (f'<td class="diff" title="paper: {theirs}">{ours}<span class="paper">{theirs}</span></td>', True)


def _paper_table(layout, rows: list[dict], reference) -> str:
    """One of the paper's tables: registry values per cohort, Total and percentage rows, the
    paper's value in every cell that differs (paper totals over the cohorts shown)."""
    label, caption, columns, pct_label = layout
    keys = [c[2] for c in columns]
    body, n_diff, n_cells = [], 0, 0
    known = [reference[r["cohort"]] for r in rows if r["cohort"] in reference]
    for r in rows:
        ref = reference.get(r["cohort"])
        cells = []
        for k in keys:
            cell, diff = _cell(_n(r[k]), _n(getattr(ref, k)) if ref else None)
            cells.append(cell)
            n_diff, n_cells = n_diff + diff, n_cells + (ref is not None)
        mark = "" if ref else ' <span class="note">not in the paper</span>'
        body.append(f'<tr><th class="l">{esc(r["cohort"])}{mark}</th>{"".join(cells)}</tr>')
    ours_tot = {k: sum(r[k] for r in rows) for k in keys}
    ref_tot = {k: sum(getattr(x, k) for x in known) for k in keys} if known else None
    whole_key = "scans" if "scans" in keys else None
    ours_whole = ours_tot[whole_key] if whole_key else sum(ours_tot.values())
    ref_whole = (ref_tot[whole_key] if whole_key else sum(ref_tot.values())) if ref_tot else 0
    tot, pct = [], []
    for k in keys:
        cell, diff = _cell(_n(ours_tot[k]), _n(ref_tot[k]) if ref_tot else None)
        tot.append(cell)
        n_diff, n_cells = n_diff + diff, n_cells + bool(ref_tot)
        if k == whole_key:
            pct.append("<td></td>")
            continue
        cell, diff = _cell(_pct(ours_tot[k], ours_whole), _pct(ref_tot[k], ref_whole) if ref_tot else None)
        pct.append(cell)
        n_diff, n_cells = n_diff + diff, n_cells + bool(ref_tot)
    body.append(f'<tr class="total"><th class="l">Total</th>{"".join(tot)}</tr>')
    body.append(f'<tr class="pct"><th class="l">{esc(pct_label)}</th>{"".join(pct)}</tr>')
    if not rows:
        verdict = "The registry holds no scans."
    elif n_diff:
        verdict = (
            f'<span class="flag">{n_diff} of {n_cells} cells differ from the paper</span>: highlighted, '
            "with the paper's value beneath ours."
        )
    else:
        verdict = f'<span class="ok">All {n_cells} cells match the paper.</span>'
    missing = sorted(set(reference) - {r["cohort"] for r in rows})
    if missing and rows:
        verdict += f" The paper's totals are over the cohorts shown; not shown: {esc(', '.join(missing))}."
    anchor = label.lower().replace(" ", "")
    return (
        f'<table class="data paper" id="{anchor}"><caption><b>{esc(label)}.</b> {esc(caption)}</caption>'
        f"<thead>{_head_rows(columns)}</thead><tbody>{''.join(body)}</tbody>"
        f'<tfoot><tr><td colspan="{len(keys) + 1}" class="verdict"><div>{verdict}</div></td></tr></tfoot></table>'
    )


def _volume_cells(o: dict) -> str:
    spread = "–" if o["mean"] is None else f"{_vol(o['mean'])} ± {_vol(o['sd'])}"
    return f"<td>{spread}</td><td>{_vol(o['min'])}</td><td>{_vol(o['max'])}</td>"


def _volume_table(v: dict) -> str:
    rows = []
    for kind, title in (("primary", "Primary lesions"), ("all", "All lesions")):
        o = v[kind]["overall"]
        rows.append(f'<tr><th class="l">{title}</th><td>{_n(o["n"])}</td>{_volume_cells(o)}</tr>')
    rows.append(
        f'<tr class="ref"><th class="l">Paper (R1.1), all lesions</th><td>{_n(paper.N_LESIONS)}</td>'
        f"{_volume_cells(v['paper_all_lesions'])}</tr>"
    )
    return (
        '<table class="data"><caption><b>Lesion volume</b> (mm³) of the native smoothed masks.</caption>'
        '<thead><tr><th class="l"></th><th>n</th><th>mean ± SD</th><th>min</th><th>max</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _reason(code: str | None) -> str:
    return (code or "").replace("_", " ")


def _exclusions(view) -> str:
    from .export.view import EXCLUSION_CODES

    out = [scan for scan in view.scans if not scan.in_standard]
    if not out:
        return "<p>Every scan is in the standardized subset.</p>"
    counts: dict[str, int] = {}
    for scan in out:
        counts[scan.exclusion_reason] = counts.get(scan.exclusion_reason, 0) + 1
    every_cohort = set(paper.COHORTS) <= {scan.cohort for scan in view.scans}
    expected = {"low_resolution": paper.N_LOW_RESOLUTION, "registration_failed": paper.N_REGISTRATION_FAILURES}
    items = []
    for code, n in sorted(counts.items()):
        ref = expected.get(code) if every_cohort else None
        note = (
            ""
            if ref is None
            else (
                f' <span class="ok">(paper: {ref})</span>' if ref == n else f' <span class="flag">(paper: {ref})</span>'
            )
        )
        items.append(f"<li><b>{esc(_reason(code))}</b>: {n}{note} — {esc(EXCLUSION_CODES.get(code, ''))}</li>")
    rows = []
    for scan in sorted(out, key=lambda x: (x.exclusion_reason or "", x.cohort, x.public_scan)):
        rows.append(
            f'<tr><th class="l"><a href="#scan-{esc(scan.public_scan)}">{esc(scan.public_scan)}</a></th>'
            f'<td class="l">{esc(scan.cohort)}</td><td class="l">{esc(_reason(scan.exclusion_reason))}</td>'
            f'<td class="l text">{esc(view.public_text(scan.exclusion_note))}</td></tr>'
        )
    return (
        f"<p>{len(out)} of {len(view.scans)} scans are not in the standardized subset.</p>"
        f'<ul class="reasons">{"".join(items)}</ul>'
        '<table class="data list"><caption><b>Scans outside the standardized subset.</b></caption>'
        '<thead><tr><th class="l">Scan</th><th class="l">Cohort</th><th class="l">Reason</th>'
        f'<th class="l">Note</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


MAX_EVENTS = 200  # warnings listed per ingest run (the rest counted)


def _validation(runs: list[_Run]) -> str:
    if not runs:
        return "<p>No ingest runs are recorded.</p>"
    rows, lists = [], []
    for r in runs:
        when = r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "–"
        rows.append(
            f'<tr><th class="l">{r.id}</th><td class="l">{esc(when)}</td>'
            f'<td class="l text">{esc(r.source)}</td>'
            f'<td class="l"><span class="status {esc(r.status)}">{esc(r.status)}</span></td>'
            f"<td>{_n(r.n_files)}</td><td>{_n(r.n_scans)}</td><td>{_n(r.stored)}</td><td>{_n(r.n_errors)}</td>"
            f"<td>{_n(r.n_warnings)}</td></tr>"
        )
        if r.events:
            items = [
                f'<li><span class="kind">{esc(kind)}</span> <code>{esc(path or "")}</code> {esc(detail)}</li>'
                for kind, path, detail in r.events[:MAX_EVENTS]
            ]
            if len(r.events) > MAX_EVENTS:
                items.append(f"<li>… and {len(r.events) - MAX_EVENTS:,} more</li>")
            lists.append(
                f'<h4>Run {r.id}: {len(r.events):,} warning(s) and notes</h4><ul class="events">{"".join(items)}</ul>'
            )
    n_warn = sum(r.n_warnings for r in runs)
    n_err = sum(r.n_errors for r in runs)
    summary = (
        f"<p>{len(runs)} ingest run(s); {n_err:,} error(s) and {n_warn:,} warning(s) reported by validation."
        + ("" if lists else " No warnings were recorded.")
        + "</p>"
    )
    table = (
        '<table class="data list"><caption><b>Ingest runs.</b> Every archive passes validation before it is '
        "stored; a run with errors is refused and stores nothing.</caption>"
        '<thead><tr><th class="l">Run</th><th class="l">Started (UTC)</th><th class="l">Source</th>'
        '<th class="l">Status</th><th>Files</th><th>Scans</th><th>Stored</th><th>Errors</th><th>Warnings</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return summary + table + "".join(lists)


def _gallery(view, thumbs: dict[str, tuple[str, int, int]]) -> str:
    sites = {c.code: c.site for c in view.cohorts}
    by_cohort: dict[str, list] = {}
    for scan in view.scans:
        by_cohort.setdefault(scan.cohort, []).append(scan)
    parts = []
    for cohort in sorted(by_cohort):
        scans = sorted(by_cohort[cohort], key=lambda x: x.public_scan)
        figs = []
        for scan in scans:
            src, w, h = thumbs[scan.code]
            primary = next((les for les in scan.lesions if les.is_primary and les.metrics), None)
            facts = (
                "masks withheld"
                if scan.withheld
                else f"{len(scan.lesions)} lesion{'s' if len(scan.lesions) != 1 else ''}"
            )
            if primary:
                facts += f" · primary {_vol(primary.metrics.volume_mm3)} mm³"
            badge = (
                ""
                if scan.in_standard
                else (
                    f'<span class="badge" title="not in the standardized subset">'
                    f"{esc(_reason(scan.exclusion_reason))}</span>"
                )
            )
            if scan.split is not None:
                badge += f'<span class="badge split {esc(scan.split)}" title="benchmark split">{esc(scan.split)}</span>'
            note = view.public_text(scan.report.notes) if scan.report else None
            figs.append(
                f'<figure class="scan" id="scan-{esc(scan.public_scan)}">'
                f'<img src="{esc(src)}" width="{w}" height="{h}" alt="Axial T1 slice of {esc(scan.public_scan)}'
                f'{" through the primary lesion" if primary else ""}">'
                f"<figcaption><b>{esc(scan.public_scan)}</b>{badge}<span>{esc(facts)}</span>"
                + (f'<span class="text note">{esc(note)}</span>' if note else "")
                + "</figcaption></figure>"
            )
        site = f' <span class="site">{esc(sites.get(cohort))}</span>' if sites.get(cohort) else ""
        parts.append(
            f'<section class="cohort"><h3>{esc(cohort)}{site} <span class="count">{len(scans)} scans</span>'
            f'</h3><div class="grid">{"".join(figs)}</div></section>'
        )
    if not parts:
        return "<p>The registry holds no scans.</p>"
    return "".join(parts)


def _cards(view) -> str:
    n_subjects = len({s.subject for s in view.scans})
    cohorts = {s.cohort for s in view.scans}
    known = [c for c in sorted(cohorts) if c in paper.TABLE1]
    ref_scans = sum(paper.TABLE1[c].scans for c in known) if known else None
    ref_lesions = sum(paper.TABLE2[c].total for c in known) if known else None
    ref_std = paper.N_STANDARDIZED if set(paper.COHORTS) <= cohorts else None
    cards = [
        ("Scans", len(view.scans), ref_scans),
        ("Subjects", n_subjects, None),
        ("Lesions", view.n_lesions, ref_lesions),
        ("Cohorts", len(cohorts), None),
        ("Standardized", len(view.standard_scans), ref_std),
    ]
    if any(s.split for s in view.scans):  # a release with benchmark splits (the hidden set is not shown)
        cards += [
            (f"{k.capitalize()} scans", sum(1 for s in view.scans if s.split == k), None) for k in ("training", "test")
        ]
    out = []
    for label, value, ref in cards:
        cls = "" if ref is None else (" ok" if ref == value else " flag")
        sub = "" if ref is None else f'<span class="ref{cls}">paper {ref:,}</span>'
        out.append(f'<div class="card"><span class="v">{value:,}</span><span class="k">{label}</span>{sub}</div>')
    return f'<div class="cards">{"".join(out)}</div>'


SECTIONS = (
    ("tables", "Tables 1 and 2"),
    ("volumes", "Lesion volumes"),
    ("overlap", "Lesion overlap"),
    ("subset", "Standardized subset"),
    ("validation", "Validation"),
    ("changes", "Changes"),
    ("scans", "Scans"),
)


def _page(data: _Data, fig: _Figures) -> str:
    view, spec = data.view, data.spec
    if data.release is None:
        kicker, title = "Registry report", spec.title
        sub = "The registry as it stands"
    else:
        kicker, title = f"Release report · {data.status}", spec.title
        sub = f"Release {spec.name} · version {spec.version} · {spec.date}"
    when = f" of {data.revision_at:%Y-%m-%d %H:%M} UTC" if data.revision_at else ""
    rev = f"registry revision {view.revision}{when}" if view.revision is not None else "empty registry"
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS)
    num = {a: i + 1 for i, (a, _) in enumerate(SECTIONS)}

    def h2(anchor: str) -> str:
        return f'<h2 id="{anchor}"><span class="num">{num[anchor]}</span>{esc(dict(SECTIONS)[anchor])}</h2>'

    desc = f'<p class="lede">{esc(spec.description.strip())}</p>' if getattr(spec, "description", "") else ""
    hist = (
        f'<figure class="fig"><img src="{fig.histogram}" alt="Histogram of lesion volumes, log scale">'
        "<figcaption><b>Figure 1.</b> Lesion volumes (native smoothed masks), log-spaced bins; primary and "
        "secondary lesions stacked. Dashed lines: the smallest and largest lesion of the paper."
        "</figcaption></figure>"
        if fig.histogram
        else "<p>No lesion volumes.</p>"
    )
    if fig.overlap:
        o = fig.overlap
        ov = (
            f'<figure class="fig dark"><img src="{o["src"]}" alt="Probabilistic overlap map of the primary lesions">'
            f"<figcaption><b>Figure 2.</b> Probabilistic overlap of the primary lesions of the {o['n_scans']:,} "
            "standardized scans in MNI152 2009 space (voxel value: fraction of scans whose primary lesion "
            f"covers it; maximum {o['max']:.2f}, {o['voxels_covered']:,} voxels covered), over "
            f"{esc(o['underlay'] or 'no underlay')}. Slices through the peak.</figcaption></figure>"
        )
    else:
        ov = f'<p class="flag">No overlap map: {esc(fig.overlap_missing)}</p>'
    body = [
        '<header class="masthead">',
        f'<p class="kicker">{esc(kicker)}</p><h1>{esc(title)}</h1>',
        f'<p class="subtitle">{esc(sub)} · {esc(rev)}</p>{desc}',
        _cards(view),
        f'<nav aria-label="Contents">{nav}</nav></header>',
        h2("tables"),
        "<p>Computed from the registry with the data descriptor's definitions (Liew et al., <i>Scientific Data</i> "
        "2018); each cell is compared with the published table.</p>",
        (
            '<p class="flag">This release has benchmark splits: the tables, volumes and overlap map describe the '
            "training set only; the test set's masks are withheld and the hidden set is not released.</p>"
            if getattr(spec, "splits", None) is not None
            else ""
        ),
        '<div class="pair">',
        _paper_table(TABLE1, fig.tables["table1"], paper.TABLE1),
        _paper_table(TABLE2, fig.tables["table2"], paper.TABLE2),
        "</div>",
        h2("volumes"),
        _volume_table(fig.volumes),
        hist,
        h2("overlap"),
        ov,
        h2("subset"),
        _exclusions(view),
        h2("validation"),
        _validation(data.runs),
        h2("changes"),
        f'<pre class="changes">{esc(data.changes)}</pre>',
        h2("scans"),
        '<p class="hint">Native T1, axial slice where the primary lesion is largest, its outline in red. '
        "Neurological convention: the patient's left is on the left, anterior at the top.</p>",
        _gallery(view, fig.thumbs),
        f"<footer>Generated by atlas-registry {esc(__version__)} from {esc(rev)}. Scans are named by their public "
        "identifiers.</footer>",
    ]
    page_title = f"{spec.title} — {spec.name}" if data.release else spec.title
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR} {esc(__version__)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{esc(page_title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


CSS = """
:root{--ink:#1d1d1f;--muted:#62656b;--rule:#1d1d1f;--accent:#1f4e79;--diff:#fdf0c4;--diff-ink:#8a4b00;--ok:#2e6b34;
--sans:"Liberation Sans","Helvetica Neue",Arial,"DejaVu Sans",sans-serif;
--serif:"Liberation Serif",Georgia,"Times New Roman","DejaVu Serif",serif}
*{box-sizing:border-box}
html{background:#eeede9}
body{margin:0;color:var(--ink);font:16.5px/1.55 var(--serif)}
main{max-width:1140px;margin:0 auto;background:#fff;padding:44px 64px 56px;box-shadow:0 0 0 1px #dddcd6}
.masthead{border-bottom:3px double var(--rule);padding-bottom:18px;margin-bottom:8px}
.kicker{font:700 12px/1.2 var(--sans);letter-spacing:.14em;text-transform:uppercase;color:var(--accent);margin:0}
h1{font-size:36px;line-height:1.15;margin:8px 0 6px;font-weight:700;letter-spacing:-.01em}
.subtitle{font:14px/1.4 var(--sans);color:var(--muted);margin:0 0 10px}
.lede{font-size:17px;color:#333;max-width:52em;margin:6px 0 4px}
h2{font-size:23px;line-height:1.25;margin:46px 0 12px;padding-top:14px;border-top:1px solid #d6d6d6}
header+h2{border-top:0;padding-top:0}
h2 .num{display:inline-block;min-width:1.5em;color:var(--accent)}
h3{font:700 15px/1.3 var(--sans);margin:26px 0 10px}
h3 .site{font-weight:400;color:var(--muted)}
h3 .count,.hint,footer,.verdict{font:13px/1.45 var(--sans);color:var(--muted)}
h3 .count{font-weight:400;margin-left:.4em}
h4{font:600 13px/1.3 var(--sans);margin:16px 0 6px}
p{max-width:60em}
a{color:var(--accent)}
nav{display:flex;flex-wrap:wrap;gap:4px 18px;font:600 13px/1.4 var(--sans);margin-top:16px}
nav a{text-decoration:none}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:18px 0 4px;font-family:var(--sans)}
.card{flex:1 1 120px;border:1px solid #dcdcdc;border-top:3px solid var(--accent);padding:10px 12px 9px}
.card .v{display:block;font-size:26px;font-weight:700;font-variant-numeric:tabular-nums;line-height:1.1}
.card .k{display:block;font-size:12px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted)}
.card .ref{display:block;font-size:12px;margin-top:2px}
.ok{color:var(--ok)} .flag{color:var(--diff-ink);font-weight:600}
table.data{border-collapse:collapse;margin:22px 0 6px;border-top:2px solid var(--rule);
font:13.5px/1.35 var(--sans);font-variant-numeric:tabular-nums}
table.data>tbody{border-bottom:2px solid var(--rule)}
table.data tfoot td.verdict{text-align:left;padding:8px 0 0}
table.data tfoot td.verdict div{width:0;min-width:100%}/* the note wraps at the table's width */
.pair{display:flex;flex-wrap:wrap;gap:0 56px;align-items:flex-start}
table.data caption{caption-side:top;text-align:left;font:14px/1.45 var(--serif);padding-bottom:8px;max-width:60em}
table.data th,table.data td{padding:5px 14px;text-align:right;vertical-align:top}
table.data thead th{font-weight:600;border-bottom:1px solid var(--rule);vertical-align:bottom}
table.data thead th.group{border-bottom:1px solid #8a8a8a;text-align:center}
table.data tbody th{font-weight:600}
table.data .l{text-align:left}
table.data tr.total th,table.data tr.total td{border-top:1px solid var(--rule);font-weight:700}
table.data tr.pct th,table.data tr.pct td{color:var(--muted);font-style:italic}
table.data tr.ref th,table.data tr.ref td{color:var(--muted);border-top:1px solid #c8c8c8}
table.paper tbody tr:nth-child(even):not(.total):not(.pct){background:#f7f7f5}
td.diff{background:var(--diff);color:var(--diff-ink);font-weight:700}
td.diff .paper{display:block;font-size:11px;font-weight:400}
td.diff .paper::before{content:"paper "}
.note{font:italic 12px var(--sans);color:var(--muted);font-weight:400}
table.list td.text{max-width:34em;white-space:normal}
table.list td,table.list th{padding:4px 12px}
ul.reasons{font:14px/1.5 var(--sans);padding-left:1.2em}
ul.events{font:12.5px/1.45 var(--sans);padding-left:1.2em;max-width:70em}
.kind,.badge,.status{display:inline-block;font:600 10.5px/1.5 var(--sans);text-transform:uppercase;letter-spacing:.05em;
padding:0 6px;border-radius:3px;background:#e8eef5;color:var(--accent)}
.status.committed{background:#e3f1e4;color:var(--ok)} .status.refused{background:var(--diff);color:var(--diff-ink)}
code{font:12px "Liberation Mono","DejaVu Sans Mono",monospace}
figure.fig{margin:22px 0 8px}
figure.fig img{display:block;max-width:100%;height:auto;border:1px solid #e2e2e2}
figure.fig.dark img{background:#000}
figure.fig figcaption{font:13.5px/1.5 var(--serif);margin-top:8px;max-width:60em}
pre.changes{font:13px/1.55 "Liberation Mono","DejaVu Sans Mono",monospace;background:#f7f7f5;
border-left:3px solid var(--accent);padding:14px 18px;white-space:pre-wrap;overflow-wrap:anywhere}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:16px 14px}
figure.scan{margin:0;font:11.5px/1.35 var(--sans)}
figure.scan img{display:block;width:100%;height:auto;background:#000;border-radius:2px}
figure.scan figcaption{margin-top:5px}
figure.scan figcaption b{display:block;font-size:11.5px;overflow-wrap:anywhere}
figure.scan figcaption span{display:block;color:var(--muted)}
figure.scan .badge{display:inline-block;background:var(--diff);color:var(--diff-ink);margin:2px 0}
figure.scan .note{font-size:11px;overflow-wrap:anywhere}
footer{margin-top:48px;padding-top:12px;border-top:1px solid #d6d6d6}
@media print{html{background:none}main{box-shadow:none;padding:0}figure.scan,table{break-inside:avoid}}
"""
