"""The changelog (``CHANGES``, CPAN style) and release notes, written from the issues that
revisions resolved.

Both are functions of the registry *as of* a release (its last revision and its membership), so
rebuilding a published release writes the same bytes. Neither names native scan identifiers: the
archives carry pseudonymous subject labels, and a line that paired a native identifier with a
change could help re-link the two. The issue number (and the public tracker's URL) says where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from .models import Issue, Release, ReleaseScan, Revision, Timepoint
from .release_spec import ReleaseSpec, parse_spec

KIND_LABELS = {
    "replace_mask": "lesion mask replaced",
    "add_lesion": "lesion added",
    "remove_lesion": "lesion removed",
    "correct_metadata": "metadata corrected",
    "exclude_scan": "scan excluded from the standardized subset",
    "include_scan": "scan re-included in the standardized subset",
    "withdraw_scan": "scan withdrawn",
    "reinstate_scan": "scan reinstated",
}


def semver(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


@dataclass
class Change:
    """One correction revision of a scan, with the issue it resolved."""

    revision: int
    kind: str
    scan: str
    timepoint_id: int
    author: str
    reason: str
    issue: int | None
    issue_title: str | None
    issue_url: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def changes_between(s: Session, after: int | None, upto: int | None, scans=None) -> list[Change]:
    """Correction revisions with ``after < id <= upto`` (``None`` = unbounded), of the scans whose
    codes are in ``scans`` (``None`` = any), oldest first."""
    q = (
        select(Revision, Timepoint.code, Issue)
        .join(Timepoint, col(Timepoint.id) == col(Revision.timepoint_id))
        .outerjoin(Issue, col(Issue.id) == col(Revision.issue_id))
    )
    if after is not None:
        q = q.where(col(Revision.id) > after)
    if upto is not None:
        q = q.where(col(Revision.id) <= upto)
    out = []
    for r, code, issue in s.exec(q.order_by(col(Revision.id))).all():
        if scans is not None and code not in scans:
            continue
        assert r.id is not None and r.timepoint_id is not None  # loaded, and joined on the scan
        out.append(
            Change(
                revision=r.id,
                kind=r.kind,
                scan=code,
                timepoint_id=r.timepoint_id,
                author=r.author,
                reason=r.reason,
                issue=issue.id if issue else None,
                issue_title=issue.title if issue else None,
                issue_url=issue.url if issue else None,
            )
        )
    return out


@dataclass
class Edition:
    """A release as the changelog sees it: version, date, last revision and membership."""

    name: str
    version: str
    date: str
    last_revision_id: int | None
    membership: dict[str, bool]  # scan code -> in the standardized subset
    published_at: datetime | None = None
    # scans whose masks the release withholds (test and hidden splits): their corrections are counted, not told
    withheld: frozenset[str] = frozenset()


def published_before(s: Session, current: Edition) -> list[Edition]:
    """Published releases before ``current`` (lower version and, when ``current`` is published
    itself, published earlier), newest first: what a rebuild of ``current`` must see again."""
    rels = [
        r
        for r in s.exec(select(Release).where(Release.status == "published", Release.name != current.name)).all()
        if semver(r.version) < semver(current.version)
        and (current.published_at is None or _utc(_published_at(r)) < _utc(current.published_at))
    ]
    rels.sort(key=lambda r: semver(r.version), reverse=True)
    return [edition_of(s, r) for r in rels]


def membership(s: Session, release_id: int) -> dict[str, bool]:
    """The stored membership of a release: scan code -> in the standardized subset."""
    return dict(
        s.exec(
            select(Timepoint.code, ReleaseScan.in_standard)
            .join(Timepoint, col(Timepoint.id) == col(ReleaseScan.timepoint_id))
            .where(ReleaseScan.release_id == release_id)
        ).all()
    )


def edition_of(s: Session, rel: Release) -> Edition:
    assert rel.id is not None  # loaded from the registry
    withheld = s.exec(
        select(Timepoint.code)
        .join(ReleaseScan, col(ReleaseScan.timepoint_id) == col(Timepoint.id))
        .where(ReleaseScan.release_id == rel.id, col(ReleaseScan.split).in_(("test", "hidden")))
    ).all()
    return Edition(
        rel.name,
        rel.version,
        parse_spec(rel.spec, rel.name).date,
        rel.last_revision_id,
        membership(s, rel.id),
        rel.published_at if rel.status == "published" else None,
        frozenset(withheld),
    )


def _published_at(rel: Release) -> datetime:
    assert rel.published_at is not None, f"published release {rel.name} without a date"
    return rel.published_at


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def _issue_lines(changes: list[Change]) -> list[str]:
    """One line per issue (in issue order); revisions without an issue one line each."""
    by_issue: dict[int, list[Change]] = {}
    loose: list[Change] = []
    for c in changes:
        (by_issue.setdefault(c.issue, []) if c.issue is not None else loose).append(c)
    lines = []
    for number in sorted(by_issue):
        cs = by_issue[number]
        kinds = "; ".join(dict.fromkeys(KIND_LABELS.get(c.kind, c.kind) for c in cs))
        url = f", {cs[0].issue_url}" if cs[0].issue_url else ""
        lines.append(f"{cs[0].issue_title} (issue #{number}{url}): {kinds}")
    for c in loose:
        lines.append(f"{KIND_LABELS.get(c.kind, c.kind)}: {c.reason}")
    return lines


def edition_lines(s: Session, ed: Edition, prev: Edition | None) -> list[str]:
    """What changed in ``ed`` since ``prev`` (the first release gets a one-line summary)."""
    n, n_std = len(ed.membership), sum(ed.membership.values())
    if prev is None:
        return [f"Initial release: {n} scans, {n_std} in the standardized subset."]
    lines = []
    added = set(ed.membership) - set(prev.membership)
    removed = set(prev.membership) - set(ed.membership)
    if added:
        lines.append(f"Added {len(added)} scan(s).")
    if removed:
        lines.append(f"Removed {len(removed)} scan(s).")
    # the revisions of the scans it holds, and of those it no longer holds (a withdrawal says why)
    changes = changes_between(s, prev.last_revision_id, ed.last_revision_id, set(ed.membership) | removed)
    lines += _issue_lines([c for c in changes if c.scan not in ed.withheld])
    hidden = sum(1 for c in changes if c.scan in ed.withheld)
    if hidden:
        lines.append(f"{hidden} correction(s) to scans whose masks are withheld (test and hidden sets).")
    if not lines:
        lines.append("No changes to the data.")
    return lines


def changes_text(s: Session, current: Edition) -> str:
    """``CHANGES`` (CPAN style, newest first) for ``current`` and every earlier published release."""
    editions = [current] + published_before(s, current)
    blocks = []
    for i, ed in enumerate(editions):
        prev = editions[i + 1] if i + 1 < len(editions) else None
        blocks.append("\n".join([f"{ed.version} {ed.date}"] + [f"  - {line}" for line in edition_lines(s, ed, prev)]))
    return "\n\n".join(blocks) + "\n"


def release_notes(
    s: Session, spec: ReleaseSpec, current: Edition, exclusions: dict[str, int], splits: dict | None = None
) -> str:
    """Markdown release notes: contents, exclusions from the standardized subset, changes by issue;
    ``splits`` (scans per benchmark split, :func:`atlas_registry.splits.counts`) when the release has them."""
    prevs = published_before(s, current)
    prev = prevs[0] if prevs else None
    n_std = sum(current.membership.values())
    subjects = {code[:10] for code in current.membership}
    out = [f"# {spec.title}", "", f"Release {spec.name}, version {spec.version}, {spec.date}.", ""]
    if spec.description:
        out += [spec.description.strip(), ""]
    out += [
        "## Contents",
        "",
        f"- {len(current.membership)} scans of {len(subjects)} subjects; {n_std} scans in the standardized subset.",
        "",
    ]
    if splits:
        out += [
            f"Benchmark splits: training {splits['training']['scans']} scans (images and lesion masks), test "
            f"{splits['test']['scans']} scans (images only: masks withheld), hidden {splits['hidden']['scans']} "
            "scans (not released).",
            "",
        ]
    if exclusions:
        out += ["Excluded from the standardized subset:", ""]
        out += [f"- {reason}: {n}" for reason, n in sorted(exclusions.items())] + [""]
    out += [f"## Changes since {prev.name} ({prev.version})" if prev else "## Changes", ""]
    out += [f"- {line}" for line in edition_lines(s, current, prev)] + [""]
    if spec.how_to_cite:
        out += ["## How to cite", "", spec.how_to_cite.strip(), ""]
    if spec.data_use:
        out += ["## Data use", "", spec.data_use.strip(), ""]
    return "\n".join(out)
