"""What the report shows, read from the registry: the release (or the registry as it stands), its
public view, the changelog and the ingest runs with their audit events (public text, no path of
the curator's machine)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, overload

from ..config import Workspace
from ..errors import AtlasError

if TYPE_CHECKING:
    from ..export import ReleaseView
    from ..release_spec import ReleaseSpec

CURRENT = "(registry)"  # name of the pseudo-release that is the registry as it stands


@dataclass
class Run:
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
class ReportData:
    release: str | None
    status: str  # current | built | published
    spec: ReleaseSpec
    view: ReleaseView
    revision_at: datetime | None
    changes: str
    runs: list[Run]


def load(ws: Workspace, release: str | None) -> ReportData:
    """What the report of the registry (``release`` None) or of release ``release`` shows."""
    from sqlmodel import col, func, select

    from .. import changelog, db
    from ..export import build_view
    from ..export.view import recorded_view
    from ..models import Release, Revision
    from ..release_spec import ReleaseSpec, parse_spec
    from ..splits import public_view
    from ..tracker import require_registry

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
    return ReportData(release, status, spec, view, revision_at, changes, runs)


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

    from .. import changelog
    from ..models import Release

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
) -> list[Run]:
    """Ingest runs (all of them, or those up to ``last_run``) with their audit events other than
    plain file stores (counted instead); events naming a ``withheld`` scan (test or hidden) are left out."""
    from sqlmodel import col, func, select

    from ..export.view import NATIVE_ID_RE
    from ..models import AuditEvent, IngestRun

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
        Run(
            r.id,
            view.public_text(shown_source(r.source)),
            _utc(r.started_at),
            r.status,
            r.n_files,
            r.n_scans,
            r.n_errors,
            r.n_warnings,
            stored.get(r.id, 0),
            [(k, shown_path(p, r.source), shown_text(d, r.source)) for k, p, d in events.get(r.id, [])],
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


# An absolute path inside free text: a "/" that starts a word (not "1/2", "and/or", "https://"),
# followed by at least two components.
_ABSOLUTE_IN_TEXT = re.compile(r"(?<![\w.:/~-])/[^\s/\"'<>()\[\]]+(?:/[^\s/\"'<>()\[\]]*)+")


def shown_text(text: str, source: str | None) -> str:
    """Free text of an ingest event (a validator's message) with every absolute path in it shown as
    :func:`shown_path` shows one: relative to the run's source, or by its last component."""
    if not text:
        return text
    return _ABSOLUTE_IN_TEXT.sub(lambda m: shown_path(m.group(0), source) or "", text)
