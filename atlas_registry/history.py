"""The history of one scan: every revision that touched it, with the issue it resolved.

Ingest revisions list the scans they wrote in ``details.scans``; corrections carry the scan in
``revision.timepoint_id``. Each entry also names the first published release that contains it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, or_, select

from . import db
from .config import Workspace
from .models import Issue, Release, ReleaseScan, Revision, Timepoint
from .tracker import require_registry, timepoint


@dataclass
class HistoryEntry:
    revision: int
    kind: str
    at: datetime
    author: str
    reason: str
    issue: dict | None  # number, title, url, status
    changes: list[str]  # one human line per change
    first_release: str | None  # first published release reflecting this revision

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["at"] = self.at.isoformat()
        return d


def describe(details: dict) -> list[str]:
    """Human lines for a revision's ``details`` JSON (see :mod:`atlas_registry.revise`)."""
    lines = []
    for f in details.get("files", []):
        if f.get("old") and f.get("new"):
            lines.append(f"{f['file']}: replaced {f['old'][:12]} -> {f['new'][:12]}")
        elif f.get("new"):
            lines.append(f"{f['file']}: added {f['new'][:12]}")
        elif f.get("old"):
            lines.append(f"{f['file']}: removed (was {f['old'][:12]})")
    for old, new in details.get("renumbered", []):
        lines.append(f"lesion {old} renumbered to {new}")
    for name, (old, new) in sorted(details.get("fields", {}).items()):
        lines.append(f"{name}: {old!r} -> {new!r}")
    if details.get("standard") in ("regenerated", "given"):
        lines.append(f"standard-space mask(s) {details['standard']}")
    if "status" in details:
        st = details["status"]
        lines.append(
            f"standardized subset: {st['from']} -> {st['to']}" + (f" ({st['note']})" if st.get("note") else "")
        )
    if "withdrawn" in details:
        lines.append(
            "withdrawn from every future release (published releases keep it)"
            if details["withdrawn"]["to"]
            else "reinstated: in the views and the next releases again"
        )
    return lines


_INGEST_LINES = {
    "ingest": ["native files and metadata ingested"],
    "attach_standard": ["standardized files or registration outcome ingested"],
}


def revisions_of(s: Session, tp: Timepoint) -> list[Revision]:
    """Every revision of the scan ``tp``, oldest first."""
    revs = s.exec(
        select(Revision)
        .where(or_(col(Revision.timepoint_id) == tp.id, col(Revision.kind).in_(("ingest", "attach_standard"))))
        .order_by(col(Revision.id))
    ).all()
    return [
        r
        for r in revs
        if r.timepoint_id == tp.id
        or (r.timepoint_id is None and tp.code in json.loads(r.details or "{}").get("scans", []))
    ]


def scan_history(ws: Workspace, scan: str) -> list[HistoryEntry]:
    require_registry(ws)
    with db.session(ws) as s:
        tp = timepoint(s, scan, "HIS001")
        # published releases, oldest content first, and those that hold this scan
        published = s.exec(
            select(Release)
            .where(Release.status == "published", col(Release.last_revision_id).is_not(None))
            .order_by(col(Release.last_revision_id), col(Release.id))
        ).all()
        holding = set(s.exec(select(ReleaseScan.release_id).where(ReleaseScan.timepoint_id == tp.id)).all())
        out = []
        for r in revisions_of(s, tp):
            assert r.id is not None  # loaded from the registry
            issue = s.get(Issue, r.issue_id) if r.issue_id else None
            details = json.loads(r.details or "{}")
            changes = _INGEST_LINES.get(r.kind) or describe(details)
            # the first published release that reflects it: holds the scan, or (a withdrawal) no longer does
            first = next(
                (
                    rel.name
                    for rel in published
                    if rel.last_revision_id is not None
                    and rel.last_revision_id >= r.id
                    and (rel.id in holding) != (r.kind == "withdraw_scan")
                ),
                None,
            )
            out.append(
                HistoryEntry(
                    revision=r.id,
                    kind=r.kind,
                    at=r.created_at,
                    author=r.author,
                    reason=r.reason,
                    issue={"number": issue.id, "title": issue.title, "url": issue.url, "status": issue.status}
                    if issue
                    else None,
                    changes=changes,
                    first_release=first,
                )
            )
        return out
