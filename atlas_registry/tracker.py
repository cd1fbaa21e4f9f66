"""The issue tracker: reported problems with a scan or one of its files.

An issue names the scan (``cXXXXsXXXXtXX``), optionally which file (``--file``), a title, a body
and the URL of the same issue on the public tracker. Revisions cite the issue they resolve
(:mod:`atlas_registry.revise`); citing an open issue closes it ("resolved by revision N"), and
the changelog of the next release is written from those issues (:mod:`atlas_registry.changelog`).

Rule codes: ``ISS001`` unknown scan, ``ISS002`` bad ``--file`` kind, ``ISS003`` unknown issue,
``ISS004`` issue already closed, ``ISS005`` empty title or reason, ``ISS006`` bad status filter,
``ISS007`` URL is not http(s); ``REG001`` no registry (schema) yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from . import db
from .clock import now, operator
from .config import Workspace
from .errors import AtlasError
from .models import ISSUE_STATUS, Issue, Revision, Timepoint, row_id
from .naming import is_scan_id, parse_native_name, parse_standard_name

# What ``--file`` may name besides an exact native or standardized file name of the scan.
FILE_KINDS = ("t1", "t1_standard", "lesion", "lesion_standard", "metadata")


@dataclass
class IssueView:
    number: int
    scan: str
    file_kind: str | None
    title: str
    body: str | None
    url: str | None
    status: str
    opened_by: str
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    revisions: list[dict]

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("opened_at", "closed_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    def line(self) -> str:
        what = f" [{self.file_kind}]" if self.file_kind else ""
        return f"#{self.number:<4d} {self.status:6s} {self.scan}{what}  {self.title}"


def require_registry(ws: Workspace) -> None:
    """A one-line error (``REG001``) instead of a database error when the registry has no schema yet
    (nothing is created: a mistyped ``--home`` leaves no empty workspace behind)."""
    if db.sqlite_file_missing(ws) or db.current_revision(ws) is None:
        raise AtlasError("REG001", f"no registry at {ws.home}: run `atlas-registry init` and ingest an archive first")


def timepoint(s: Session, scan: str, code: str = "ISS001") -> Timepoint:
    """The scan ``cXXXXsXXXXtXX`` or an :class:`AtlasError` with rule ``code``."""
    tp = s.exec(select(Timepoint).where(Timepoint.code == scan)).first() if is_scan_id(scan) else None
    if tp is None:
        raise AtlasError(code, f"no scan {scan!r} in the registry", path=scan)
    return tp


def check_file_kind(scan: str, kind: str | None) -> str | None:
    """``kind`` as stored: one of :data:`FILE_KINDS`, or a file of ``scan`` named without the scan
    identifier (``c0001s0004t01_LesionRaw_1.voi`` and ``LesionRaw_1.voi`` both give ``LesionRaw_1.voi``;
    a T1 gives ``t1`` / ``t1_standard``), so that the column never carries a native identifier into
    published tables. Anything else: ISS002."""
    if kind is None or kind in FILE_KINDS:
        return kind
    name = kind if kind.startswith(scan) else f"{scan}_{kind}"
    native = parse_native_name(name)
    parsed = native or parse_standard_name(name)
    if parsed is None or str(parsed.scan) != scan or parsed.kind == "sidecar":
        raise AtlasError(
            "ISS002",
            f"--file must be one of {', '.join(FILE_KINDS)} or a file name of {scan} "
            f"(e.g. {scan}_LesionRaw.voi or LesionRaw.voi), not {kind!r}",
            path=scan,
        )
    if parsed.kind == "t1":
        return "t1" if native else "t1_standard"
    return name[len(scan) + 1 :]


def _nonempty(text: str | None, what: str) -> str:
    if text is None or not text.strip():
        raise AtlasError("ISS005", f"{what} must not be empty")
    return text.strip()


def get_issue(s: Session, number: int) -> Issue:
    issue = s.get(Issue, number)
    if issue is None:
        raise AtlasError("ISS003", f"no issue #{number}")
    return issue


def open_issue(
    ws: Workspace,
    scan: str,
    title: str,
    *,
    body: str | None = None,
    url: str | None = None,
    file_kind: str | None = None,
    author: str | None = None,
) -> IssueView:
    require_registry(ws)
    title = _nonempty(title, "the title")
    if url is not None and not url.startswith(("http://", "https://")):
        raise AtlasError("ISS007", f"--url must be the http(s) address of the public tracker's issue, not {url!r}")
    with db.session(ws) as s:
        s.info["atlas_touched"] = set()  # nothing the SQL views show
        tp = timepoint(s, scan)
        issue = Issue(
            timepoint_id=row_id(tp),
            file_kind=check_file_kind(scan, file_kind),
            title=title,
            body=body,
            url=url,
            status="open",
            opened_by=author or operator(),
            opened_at=now(),
        )
        s.add(issue)
        s.flush()
        return _view(s, issue, tp.code)


def close_issue(ws: Workspace, number: int, reason: str) -> IssueView:
    require_registry(ws)
    reason = _nonempty(reason, "the reason")
    with db.session(ws) as s:
        s.info["atlas_touched"] = set()  # nothing the SQL views show
        issue = get_issue(s, number)
        if issue.status == "closed":
            raise AtlasError("ISS004", f"issue #{number} is already closed ({issue.close_reason})")
        mark_closed(issue, reason)
        s.add(issue)
        s.flush()
        return _view(s, issue)


def mark_closed(issue: Issue, reason: str) -> None:
    issue.status, issue.closed_at, issue.close_reason = "closed", now(), reason


def show_issue(ws: Workspace, number: int) -> IssueView:
    require_registry(ws)
    with db.session(ws) as s:
        return _view(s, get_issue(s, number))


def list_issues(ws: Workspace, *, status: str | None = None, scan: str | None = None) -> list[IssueView]:
    require_registry(ws)
    if status is not None and status not in ISSUE_STATUS:
        raise AtlasError("ISS006", f"--status must be one of {', '.join(ISSUE_STATUS)}, not {status!r}")
    with db.session(ws) as s:
        q = select(Issue, Timepoint.code).join(Timepoint, col(Timepoint.id) == col(Issue.timepoint_id))
        if status is not None:
            q = q.where(Issue.status == status)
        if scan is not None:
            q = q.where(Issue.timepoint_id == timepoint(s, scan).id)
        rows = s.exec(q.order_by(col(Issue.id))).all()
        revs = _revisions_by_issue(s, [row_id(i) for i, _ in rows])
        return [_view(s, i, code, revs.get(row_id(i), [])) for i, code in rows]


def _revisions_by_issue(s: Session, ids: list[int]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    if ids:
        for r in s.exec(select(Revision).where(col(Revision.issue_id).in_(ids)).order_by(col(Revision.id))).all():
            assert r.issue_id is not None  # one of ids
            out.setdefault(r.issue_id, []).append(
                {
                    "revision": r.id,
                    "kind": r.kind,
                    "author": r.author,
                    "at": r.created_at.isoformat(),
                    "reason": r.reason,
                }
            )
    return out


def _view(s: Session, issue: Issue, scan: str | None = None, revisions: list[dict] | None = None) -> IssueView:
    if scan is None:
        tp = s.get(Timepoint, issue.timepoint_id)
        assert tp is not None  # a foreign key
        scan = tp.code
    if revisions is None:
        revisions = _revisions_by_issue(s, [row_id(issue)]).get(row_id(issue), [])
    return IssueView(
        number=row_id(issue),
        scan=scan,
        file_kind=issue.file_kind,
        title=issue.title,
        body=issue.body,
        url=issue.url,
        status=issue.status,
        opened_by=issue.opened_by,
        opened_at=issue.opened_at,
        closed_at=issue.closed_at,
        close_reason=issue.close_reason,
        revisions=revisions,
    )
