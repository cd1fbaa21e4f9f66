"""Releases: plan, build, publish and compare immutable, reproducible releases.

* :func:`plan` — what a release would publish: scans, subset sizes, exclusion reasons, and every
  change since the previous published release with its issue.
* :func:`build` — the archives (:func:`export.write_archives`: ``icpsr/``, ``bids/``, ``parquet/``,
  ``packages/``) and ``MANIFEST.json`` (path, size, SHA-256, archive, source revision of every file),
  written into a temporary folder beside ``DIR`` and renamed into place only when complete: a failed
  or killed build leaves no ``DIR``. A build always reads the registry the way a rebuild will: first
  the scan list and standardized subset (the *membership*) and the newest revision, then the view
  at that revision with that membership, so build and rebuild run the same code on the same input.
* :func:`publish` — freezes a built release: ``release.status = published``; its membership
  (``release_scan``: scans, standardized subset, exclusion reasons and public labels as the build read
  them) and manifest (``release_item``, ``manifest_sha256``, ``last_revision_id``) were stored by the
  build and are never rewritten. Rebuilding a published release reads the registry as of its last
  revision with its stored membership (:func:`export.view.recorded_view`: nothing from the registry's
  current state) and must reproduce the stored manifest exactly, or fails naming the first differing
  file (``REL021``) and leaves nothing at ``DIR``. ``release plan`` of a published release shows it the
  same way: as it was published.
* :func:`diff` — files and scans added, removed or changed between two releases, with the issues
  behind each change.

``MANIFEST.json`` lists paths, not native scan codes: the BIDS paths carry pseudonymous labels and
the manifest must not become the crosswalk (``release_item.timepoint_id`` keeps it in the registry).

Rule codes: ``REL010`` no such release in the registry, ``REL011`` not built yet, ``REL012`` already
published, ``REL013`` the registry or specification changed since the build, or another release was published
since, ``REL014`` version not
above the published ones, ``REL015`` the output folder exists, ``REL016`` name mismatch between
specification and request, ``REL017`` the output folder is inside the folder of specifications,
``REL021`` a rebuild differs from the published manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, insert
from sqlmodel import Session, delete, select

from . import changelog, db, facts
from .changelog import Change, Edition, semver
from .clock import now
from .config import Workspace
from .errors import AtlasError
from .models import Issue, Release, ReleaseItem, ReleaseScan, Revision, Timepoint
from .release_spec import ReleaseSpec, load_spec, parse_spec
from .store import atomic_write, sha256_bytes
from .tracker import require_registry

MANIFEST = "MANIFEST.json"
MANIFEST_FORMAT = 1


# -- which release, which view -------------------------------------------------------------------

def _release_row(s: Session, name: str) -> Release | None:
    return s.exec(select(Release).where(Release.name == name)).first()


def _spec_for(s: Session, name: str, specs: Path | None) -> tuple[ReleaseSpec, Release | None]:
    """The specification of ``name``: the stored one once published; else the file
    (``--specs``/``releases/<name>.toml``), or, when there is no file, the one stored by the last build."""
    rel, spec = _release_row(s, name), None
    if rel is None:  # not recorded under that name: read the file (``name`` may be a path)
        spec = load_spec(name, specs)
        if spec.name != name and not name.endswith(".toml"):
            raise AtlasError("REL016", f"the specification {name}.toml names its release {spec.name!r}")
        rel = _release_row(s, spec.name)
    if _frozen(rel):
        return parse_spec(rel.spec, rel.name), rel
    if spec is None:
        spec = _file_spec(name, specs)
    if spec is None:  # built before: the registry keeps the specification it was built from
        spec = parse_spec(rel.spec, rel.name)
    return spec, rel


def _file_spec(name: str, specs: Path | None) -> ReleaseSpec | None:
    """The specification file of ``name``, or ``None`` when there is none (``REL000``)."""
    try:
        return load_spec(name, specs)
    except AtlasError as e:
        if e.code != "REL000":
            raise
        return None


def _frozen(rel: Release | None) -> bool:
    return rel is not None and rel.status == "published"


def _view(s: Session, spec: ReleaseSpec, rel: Release | None):
    """The release's view: as published (its revision, its membership as recorded), or the registry now
    read through the same two arguments."""
    from .export import build_view
    from .export.view import recorded_view

    if _frozen(rel):
        return recorded_view(s, spec, rel)
    first = build_view(s, spec)
    if first.revision is None:
        return first
    return build_view(s, spec, as_of_revision=first.revision,
                      membership={sc.code: sc.in_standard for sc in first.scans})


def _read(s: Session, name: str, specs: Path | None):
    """(specification, release row or None, view, edition) of release ``name``."""
    spec, rel = _spec_for(s, name, specs)
    view = _view(s, spec, rel)
    ed = Edition(spec.name, spec.version, spec.date, view.revision, {sc.code: sc.in_standard for sc in view.scans},
                 rel.published_at if _frozen(rel) else None)
    return spec, rel, view, ed


def _exclusions(view) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, reason in view.exclusions:
        out[reason] = out.get(reason, 0) + 1
    return dict(sorted(out.items()))


# -- plan ----------------------------------------------------------------------------------------

@dataclass
class Plan:
    name: str
    version: str
    date: str
    status: str  # new | built | published
    revision: int | None
    n_scans: int
    n_subjects: int
    n_standard: int
    n_lesions: int
    cohorts: dict[str, int]
    exclusions: dict[str, int]
    previous: str | None
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    open_issues: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["changes"] = [c.to_dict() for c in self.changes]
        return d

    def to_text(self) -> str:
        out = [f"Release {self.name} ({self.version}, {self.date}) [{self.status}] at revision {self.revision}",
               f"  {self.n_scans} scans of {self.n_subjects} subjects, {self.n_lesions} lesions, from "
               f"{len(self.cohorts)} cohort(s): " + ", ".join(f"{c} {n}" for c, n in self.cohorts.items()),
               f"  standardized subset: {self.n_standard} scans; excluded "
               + (", ".join(f"{r} {n}" for r, n in self.exclusions.items()) or "none")]
        if self.previous is None:
            out.append("  first release: no previous published release")
        else:
            out.append(f"  since {self.previous}: {len(self.added)} scan(s) added, {len(self.removed)} removed, "
                       f"{len(self.changes)} revision(s)")
            for c in self.changes:
                issue = f"issue #{c.issue} {c.issue_title!r}" if c.issue else "no issue"
                out.append(f"    r{c.revision} {c.kind:16s} {c.scan}  {issue}  ({c.author}: {c.reason})")
        for i in self.open_issues:
            out.append(f"  open issue #{i['number']} on {i['scan']}: {i['title']}")
        return "\n".join(out)


def plan(ws: Workspace, name: str, *, specs: Path | None = None) -> Plan:
    require_registry(ws)
    with db.session(ws) as s:
        spec, rel, view, ed = _read(s, name, specs)
        prevs = changelog.published_before(s, ed)
        prev = prevs[0] if prevs else None
        cohorts: dict[str, int] = {}
        for sc in view.scans:
            cohorts[sc.cohort] = cohorts.get(sc.cohort, 0) + 1
        codes = set(ed.membership)
        if _frozen(rel):  # the issues of its scans open at its revision
            opened = [(i.number, i.scan, i.title) for i in view.issues if i.status == "open"]
        else:
            opened = [(i.id, code, i.title) for i, code in s.exec(
                select(Issue, Timepoint.code).join(Timepoint, Timepoint.id == Issue.timepoint_id)
                .where(Issue.status == "open").order_by(Issue.id)).all()]
        return Plan(
            name=spec.name, version=spec.version, date=spec.date, status=rel.status if rel else "new",
            revision=view.revision, n_scans=len(view.scans), n_subjects=len({sc.subject for sc in view.scans}),
            n_standard=len(view.standard_scans), n_lesions=view.n_lesions, cohorts=dict(sorted(cohorts.items())),
            exclusions=_exclusions(view), previous=prev.name if prev else None,
            added=sorted(codes - set(prev.membership)) if prev else [],
            removed=sorted(set(prev.membership) - codes) if prev else [],
            # the revisions of its scans and of the previous release's scans it no longer holds (withdrawals)
            changes=changelog.changes_between(s, prev.last_revision_id, view.revision,
                                              codes | set(prev.membership)) if prev else [],
            open_issues=[{"number": n, "scan": code, "title": title} for n, code, title in opened if code in codes],
        )


# -- build ---------------------------------------------------------------------------------------

@dataclass
class BuildOutcome:
    name: str
    version: str
    out: str
    revision: int | None
    files: int
    bytes: int
    manifest_sha256: str
    reproduced: bool  # a published release rebuilt and checked against its stored manifest

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def manifest_bytes(spec: ReleaseSpec, revision: int | None, entries) -> bytes:
    """``MANIFEST.json``: every file of the build, sorted by path; no time, no host, no scan code."""
    files = [{"path": e.path, "size": e.size, "sha256": e.sha256, "archive": e.archive,
              "source_revision_id": e.source_revision_id} for e in sorted(entries, key=lambda e: e.path)]
    doc = {"format": MANIFEST_FORMAT, "release": spec.name, "version": spec.version, "date": spec.date,
           "last_revision_id": revision, "files": files}
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _temp_dir(out: Path) -> Path:
    """A fresh build folder beside ``out``; stale ones of killed builds (dead pid) are removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.build-"
    for old in out.parent.glob(prefix + "*"):
        pid = old.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    tmp = out.parent / f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_reproduced(s: Session, rel: Release, entries, manifest: bytes) -> None:
    """A rebuild of a published release must match its stored manifest file by file."""
    stored = {i.path: i for i in s.exec(select(ReleaseItem).where(ReleaseItem.release_id == rel.id)).all()}
    built = {e.path: e for e in entries}
    for path in sorted(set(stored) | set(built)):
        a, b = stored.get(path), built.get(path)
        if a is None:
            why = "not in the published manifest"
        elif b is None:
            why = "missing from the rebuild"
        elif (a.sha256, a.size_bytes) != (b.sha256, b.size):
            why = f"sha256 {b.sha256[:12]} ({b.size} bytes), published {a.sha256[:12]} ({a.size_bytes} bytes)"
        else:
            continue
        raise AtlasError("REL021", f"rebuild of published release {rel.name} differs from its manifest: {why}",
                         path=path)
    if sha256_bytes(manifest) != rel.manifest_sha256:
        raise AtlasError("REL021", f"rebuild of published release {rel.name}: {MANIFEST} differs from the "
                         "published one", path=MANIFEST)


def _occupied(out: Path, force: bool) -> bool:
    """Whether ``out`` holds something; REL015 unless ``force``."""
    if not (out.exists() and any(out.iterdir())):
        return False
    if not force:
        raise AtlasError("REL015", "output folder exists and is not empty (use --force to replace it)", path=str(out))
    return True


def _install(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished build into place (an existing ``out`` only with ``force``)."""
    if _occupied(out, force):
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)  # replaces an empty folder


def _outside_specs(out: Path, specs: Path | None) -> None:
    """REL017: a release is never built into the folder of release specifications (the clone's
    ``releases/``), where it would sit among, or replace, the files it was built from."""
    from .release_spec import releases_dir

    folder = Path(specs or releases_dir()).resolve()
    if out.resolve() == folder or out.resolve().is_relative_to(folder):
        raise AtlasError("REL017", f"{out} is inside the folder of release specifications {folder}; "
                         "build elsewhere (default: <home>/releases/NAME)", path=str(out))


def build(ws: Workspace, name: str, out: str | os.PathLike, *, specs: Path | None = None,
          cache_dir: str | os.PathLike | None = None, force: bool = False, progress: bool = False) -> BuildOutcome:
    """Build release ``name`` into ``out`` atomically; record it (unless published: then verify it)."""
    from .export import write_archives
    from .export.determinism import FILE_MODE

    out = Path(out).absolute()
    _outside_specs(out, specs)
    _occupied(out, force)
    require_registry(ws)
    with db.session(ws) as s:
        spec, rel, view, ed = _read(s, name, specs)
        changes = changelog.changes_text(s, ed)
        notes = changelog.release_notes(s, spec, ed, _exclusions(view))
    tmp = _temp_dir(out)
    try:
        entries = write_archives(ws, view, tmp, changes=changes, release_notes=notes,
                                 cache_dir=cache_dir, progress=progress)
        manifest = manifest_bytes(spec, view.revision, entries)
        atomic_write(tmp / MANIFEST, manifest, mode=FILE_MODE)
        with db.session(ws) as s:
            if _frozen(rel):
                _check_reproduced(s, s.get(Release, rel.id), entries, manifest)
            else:
                _record(s, spec, view, entries, manifest)
            _install(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildOutcome(spec.name, spec.version, str(out), view.revision, len(entries), sum(e.size for e in entries),
                        sha256_bytes(manifest), reproduced=_frozen(rel))


def _record(s: Session, spec: ReleaseSpec, view, entries, manifest: bytes) -> Release:
    """Store the build: release row (status built), membership and manifest rows (replacing those of
    an earlier unpublished build). Committed only with the installed build folder."""
    db.write_lock(s)
    rel = _release_row(s, spec.name)
    if rel is None:
        rel = Release(name=spec.name, version=spec.version, spec=spec.source_text)
        s.add(rel)
        s.flush()
    elif rel.status == "published":  # published by someone else meanwhile
        raise AtlasError("REL012", f"release {spec.name} was published while this build ran; build again")
    s.exec(delete(ReleaseItem).where(ReleaseItem.release_id == rel.id))
    s.exec(delete(ReleaseScan).where(ReleaseScan.release_id == rel.id))
    codes = [sc.code for sc in view.scans]
    ids = dict(s.exec(select(Timepoint.code, Timepoint.id).where(Timepoint.code.in_(codes))).all()) if codes else {}
    conn = s.connection()  # thousands of rows: one executemany each, not one ORM object per row
    if view.scans:
        conn.execute(insert(ReleaseScan.__table__), [
            {"release_id": rel.id, "timepoint_id": ids[sc.code], "in_standard": sc.in_standard, "scan": sc.code,
             "cohort": sc.cohort, "public_label": sc.public_label,
             "exclusion_reason": None if sc.in_standard else sc.exclusion_reason,
             "exclusion_note": None if sc.in_standard else sc.exclusion_note} for sc in view.scans])
    if entries:
        conn.execute(insert(ReleaseItem.__table__), [
            {"release_id": rel.id, "archive": e.archive, "path": e.path, "size_bytes": e.size, "sha256": e.sha256,
             "timepoint_id": ids.get(e.scan) if e.scan else None, "source_revision_id": e.source_revision_id}
            for e in sorted(entries, key=lambda e: e.path)])
    rel.version, rel.spec, rel.status = spec.version, spec.source_text, "built"
    rel.last_revision_id, rel.manifest_sha256, rel.built_at = view.revision, sha256_bytes(manifest), now()
    s.add(rel)
    s.flush()
    return rel


# -- publish -------------------------------------------------------------------------------------

@dataclass
class PublishOutcome:
    name: str
    version: str
    last_revision_id: int | None
    manifest_sha256: str
    files: int
    scans: int
    previous: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def publish(ws: Workspace, name: str, *, specs: Path | None = None) -> PublishOutcome:
    """Freeze the built release ``name``: it must have been built from the registry as it is now."""
    require_registry(ws)
    with db.session(ws) as s:
        db.write_lock(s)
        rel = _release_row(s, name)
        if rel is None:
            raise AtlasError("REL011", f"release {name} has not been built (atlas-registry release build {name} --out DIR)")
        if rel.status == "published":
            raise AtlasError("REL012", f"release {name} is already published ({rel.published_at:%Y-%m-%d})")
        newest = s.exec(select(func.max(Revision.id))).one()
        if newest != rel.last_revision_id:
            raise AtlasError("REL013", f"the registry changed since {name} was built (revision {newest}, built at "
                             f"{rel.last_revision_id}); build it again, then publish")
        spec = _file_spec(name, specs)  # the build stored its specification: the file is optional now
        if spec is not None and spec.source_text != rel.spec:
            raise AtlasError("REL013", f"the specification of {name} changed since it was built; build it again")
        spec = spec or parse_spec(rel.spec, rel.name)
        published = s.exec(select(Release).where(Release.status == "published")).all()
        since = [r for r in published if rel.built_at is not None and _utc(r.published_at) >= _utc(rel.built_at)]
        if since:  # its CHANGES, notes and tables list the releases published before its build
            raise AtlasError("REL013", f"release {since[0].name} was published after {name} was built; build it "
                             "again, then publish")
        higher = [r for r in published if semver(r.version) >= semver(rel.version)]
        if higher:
            raise AtlasError("REL014", f"version {rel.version} is not above published {higher[0].name} "
                             f"({higher[0].version})")
        prev = max(published, key=lambda r: semver(r.version), default=None)
        rel.status, rel.published_at = "published", now()
        rel.previous_release_id = prev.id if prev else None
        s.add(rel)
        facts.refresh_releases(s)  # the current-state rows list published releases
        n_files = s.exec(select(func.count()).select_from(ReleaseItem).where(ReleaseItem.release_id == rel.id)).one()
        n_scans = s.exec(select(func.count()).select_from(ReleaseScan).where(ReleaseScan.release_id == rel.id)).one()
        return PublishOutcome(rel.name, rel.version, rel.last_revision_id, rel.manifest_sha256, n_files, n_scans,
                              prev.name if prev else None)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


# -- diff ----------------------------------------------------------------------------------------

_MARK = {"added": "+", "removed": "-", "changed": "~"}


@dataclass
class ScanChange:
    scan: str
    status: str  # added | removed | changed
    files: list[dict]  # path, change (added/removed/changed)
    changes: list[Change]  # the revisions behind it, with their issues

    def to_dict(self) -> dict:
        return {"scan": self.scan, "status": self.status, "files": self.files,
                "changes": [c.to_dict() for c in self.changes]}


@dataclass
class ReleaseDiff:
    a: str
    b: str
    scans: list[ScanChange]
    release_files: list[dict]  # files not of one scan (tables, descriptions, CHANGES)
    standard_added: list[str]
    standard_removed: list[str]

    @property
    def issues(self) -> list[int]:
        return sorted({c.issue for sc in self.scans for c in sc.changes if c.issue is not None})

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "scans": [s.to_dict() for s in self.scans],
                "release_files": self.release_files, "standard_added": self.standard_added,
                "standard_removed": self.standard_removed, "issues": self.issues}

    def to_text(self) -> str:
        n = {k: sum(1 for s in self.scans if s.status == k) for k in ("added", "removed", "changed")}
        out = [f"{self.a} -> {self.b}: {n['added']} scan(s) added, {n['removed']} removed, {n['changed']} changed; "
               f"{len(self.release_files)} release-level file(s) differ"]
        for sc in self.scans:
            out.append(f"{_MARK[sc.status]} {sc.scan}")
            for c in sc.changes:
                issue = f"issue #{c.issue} {c.issue_title!r}" if c.issue else "no issue"
                out.append(f"    r{c.revision} {c.kind}: {issue} ({c.reason})")
            for f in sc.files:
                out.append(f"      {f['change']:8s} {f['path']}")
        for code in self.standard_added:
            out.append(f"  standardized subset + {code}")
        for code in self.standard_removed:
            out.append(f"  standardized subset - {code}")
        for f in self.release_files:
            out.append(f"  {f['change']:8s} {f['path']}")
        return "\n".join(out)


def diff(ws: Workspace, a: str, b: str) -> ReleaseDiff:
    """Scans and files added, removed or changed from release ``a`` to ``b`` (both built or published)."""
    require_registry(ws)
    with db.session(ws) as s:
        ra, rb = (_built(s, n) for n in (a, b))
        # paths that carry the release's name (packages/atlas-<name>-icpsr/...) are compared without it
        items = [{i.path.replace(r.name, "{release}"): i
                  for i in s.exec(select(ReleaseItem).where(ReleaseItem.release_id == r.id)).all()}
                 for r in (ra, rb)]
        ma, mb = changelog.membership(s, ra.id), changelog.membership(s, rb.id)
        codes = dict(s.exec(select(Timepoint.id, Timepoint.code)
                            .where(Timepoint.id.in_(sorted({i.timepoint_id for d in items for i in d.values()
                                                            if i.timepoint_id is not None})))).all())
        lo, hi = sorted((ra.last_revision_id or 0, rb.last_revision_id or 0))
        revs = changelog.changes_between(s, lo, hi, set(ma) | set(mb))
    by_scan: dict[str | None, list[dict]] = {}
    for key in sorted(set(items[0]) | set(items[1])):
        x, y = items[0].get(key), items[1].get(key)
        if x is not None and y is not None and (x.sha256, x.size_bytes) == (y.sha256, y.size_bytes):
            continue
        change = "added" if x is None else "removed" if y is None else "changed"
        tp = (y or x).timepoint_id
        by_scan.setdefault(codes.get(tp) if tp is not None else None, []).append({"path": (y or x).path,
                                                                                   "change": change})
    scans = []
    # a scan changed when its files did, or a revision touched it (metadata lives in release-level tables)
    for code in sorted((set(by_scan) - {None}) | (set(ma) ^ set(mb)) | {c.scan for c in revs}):
        status = "added" if code not in ma else "removed" if code not in mb else "changed"
        scans.append(ScanChange(code, status, by_scan.get(code, []), [c for c in revs if c.scan == code]))
    both = set(ma) & set(mb)
    return ReleaseDiff(a=ra.name, b=rb.name, scans=scans, release_files=by_scan.get(None, []),
                       standard_added=sorted(c for c in both if mb[c] and not ma[c]),
                       standard_removed=sorted(c for c in both if ma[c] and not mb[c]))


def _built(s: Session, name: str) -> Release:
    rel = _release_row(s, name)
    if rel is None:
        raise AtlasError("REL010", f"no release {name!r} in the registry")
    if rel.status == "draft" or rel.manifest_sha256 is None:
        raise AtlasError("REL011", f"release {name} has not been built")
    return rel
