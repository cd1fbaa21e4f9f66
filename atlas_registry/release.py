"""Releases: plan, build, publish and compare immutable, reproducible releases.

* :func:`plan` — what a release would publish: scans, subset sizes, exclusion reasons, and every
  change since the previous published release with its issue.
* :func:`build` — the archives (:func:`export.write_archives`: ``icpsr/``, ``bids/``, ``parquet/``,
  ``packages/`` with the bag as a folder, no zip) and ``MANIFEST.json`` (path, size, SHA-256, archive,
  source revision of every file), written into a temporary folder beside ``DIR`` and renamed into
  place only when complete: a failed or killed build leaves no ``DIR``. A build into the folder of an
  earlier build (``force``) starts from that tree and replaces only the files that differ; one whose
  inputs (:func:`fingerprint`) and folder are those of the recorded build does nothing.
  A build always reads the registry the way a rebuild will: first the scan list and standardized
  subset (the *membership*) and the newest revision, then the view at that revision with that
  membership, so build and rebuild run the same code on the same input.
* :func:`publish` — freezes a built release: ``release.status = published``; its membership
  (``release_scan``: scans, standardized subset, exclusion reasons and public labels as the build read
  them) and manifest (``release_item``, ``manifest_sha256``, ``last_revision_id``) were stored by the
  build and are never rewritten. Publication writes the deposit zip once into the build folder, records
  its size and SHA-256 (``package_*``), and writes ``packages/SHA256SUMS`` and
  ``packages/RELEASE-NOTES.md`` (the manifest's and the zip's SHA-256, how to check a copy). Rebuilding
  a published release reads the registry as of its last revision with its stored membership
  (:func:`export.view.recorded_view`: nothing from the registry's current state) and must reproduce the
  stored manifest (and the deposit zip) exactly, or fails naming the first differing file (``REL021``)
  and leaves nothing at ``DIR``. ``release plan`` of a published release shows it the same way: as it
  was published.
* :func:`diff` — files and scans added, removed or changed between two releases, with the issues
  behind each change.

``MANIFEST.json`` lists paths, not native scan codes: the BIDS paths carry pseudonymous labels and
the manifest must not become the crosswalk (``release_item.timepoint_id`` keeps it in the registry).

Rule codes: ``REL010`` no such release in the registry, ``REL011`` not built yet, ``REL012`` already
published, ``REL013`` the registry or specification changed since the build, or another release was published
since, ``REL014`` version not
above the published ones, ``REL015`` the output folder exists, ``REL016`` name mismatch between
specification and request, ``REL017`` the output folder is inside the folder of specifications,
``REL011`` also when the folder to publish does not hold the recorded build, ``REL021`` a rebuild
differs from the published manifest (or its deposit zip from the published one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeGuard

from sqlalchemy import func, insert
from sqlmodel import Session, SQLModel, col, delete, select

from . import __version__, changelog, db, facts
from .changelog import Change, Edition, semver
from .clock import now
from .config import Workspace
from .errors import AtlasError
from .models import Issue, Release, ReleaseItem, ReleaseScan, Revision, Timepoint, row_id
from .release_spec import ReleaseSpec, load_spec, parse_spec
from .splits import counts as split_counts
from .splits import public_view
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
        assert rel is not None  # no file was read: the registry knows the release
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


def _frozen(rel: Release | None) -> TypeGuard[Release]:
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
    return build_view(
        s, spec, as_of_revision=first.revision, membership={sc.code: sc.in_standard for sc in first.scans}
    )


def _read(s: Session, name: str, specs: Path | None):
    """(specification, release row or None, view, edition) of release ``name``."""
    spec, rel = _spec_for(s, name, specs)
    view = _view(s, spec, rel)
    ed = Edition(
        spec.name,
        spec.version,
        spec.date,
        view.revision,
        {sc.code: sc.in_standard for sc in view.scans},
        rel.published_at if _frozen(rel) else None,
        frozenset(sc.code for sc in view.scans if sc.withheld),
    )
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
    # benchmark splits: training | test | hidden -> scans, subjects, standard (None: the release has none)
    splits: dict[str, dict[str, int]] | None = None
    split_seed: int | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["changes"] = [c.to_dict() for c in self.changes]
        return d

    def to_text(self) -> str:
        out = [
            f"Release {self.name} ({self.version}, {self.date}) [{self.status}] at revision {self.revision}",
            f"  {self.n_scans} scans of {self.n_subjects} subjects, {self.n_lesions} lesions, from "
            f"{len(self.cohorts)} cohort(s): " + ", ".join(f"{c} {n}" for c, n in self.cohorts.items()),
            f"  standardized subset: {self.n_standard} scans; excluded "
            + (", ".join(f"{r} {n}" for r, n in self.exclusions.items()) or "none"),
        ]
        if self.splits is not None:
            out.append(
                f"  splits (seed {self.split_seed}): "
                + "; ".join(
                    f"{k} {v['scans']} scans of {v['subjects']} subjects ({v['standard']} standardized)"
                    for k, v in self.splits.items()
                )
                + " — training released with masks, test images only, hidden not released"
            )
        if self.previous is None:
            out.append("  first release: no previous published release")
        else:
            out.append(
                f"  since {self.previous}: {len(self.added)} scan(s) added, {len(self.removed)} removed, "
                f"{len(self.changes)} revision(s)"
            )
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
            opened = [
                (i.id, code, i.title)
                for i, code in s.exec(
                    select(Issue, Timepoint.code)
                    .join(Timepoint, col(Timepoint.id) == col(Issue.timepoint_id))
                    .where(Issue.status == "open")
                    .order_by(col(Issue.id))
                ).all()
            ]
        return Plan(
            name=spec.name,
            version=spec.version,
            date=spec.date,
            status=rel.status if rel else "new",
            revision=view.revision,
            n_scans=len(view.scans),
            n_subjects=len({sc.subject for sc in view.scans}),
            n_standard=len(view.standard_scans),
            n_lesions=view.n_lesions,
            cohorts=dict(sorted(cohorts.items())),
            exclusions=_exclusions(view),
            previous=prev.name if prev else None,
            added=sorted(codes - set(prev.membership)) if prev else [],
            removed=sorted(set(prev.membership) - codes) if prev else [],
            # the revisions of its scans and of the previous release's scans it no longer holds (withdrawals)
            changes=changelog.changes_between(s, prev.last_revision_id, view.revision, codes | set(prev.membership))
            if prev
            else [],
            open_issues=[{"number": n, "scan": code, "title": title} for n, code, title in opened if code in codes],
            splits=split_counts(view) if spec.splits is not None else None,
            split_seed=spec.splits.seed if spec.splits is not None else None,
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
    unchanged: bool = False  # inputs and folder were those of the recorded build: nothing was done
    kept: int = 0  # files of the earlier build in the folder that already held the right bytes

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def manifest_bytes(spec: ReleaseSpec, revision: int | None, entries) -> bytes:
    """``MANIFEST.json``: every file of the build, sorted by path; no time, no host, no scan code."""
    files = [
        {
            "path": e.path,
            "size": e.size,
            "sha256": e.sha256,
            "archive": e.archive,
            "source_revision_id": e.source_revision_id,
        }
        for e in sorted(entries, key=lambda e: e.path)
    ]
    doc = {
        "format": MANIFEST_FORMAT,
        "release": spec.name,
        "version": spec.version,
        "date": spec.date,
        "last_revision_id": revision,
        "files": files,
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8")


def _temp_dir(out: Path) -> Path:
    """A fresh build folder beside ``out``; stale ones of killed builds (dead pid) are removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out.name}.build-"
    for old in out.parent.glob(prefix + "*"):
        pid = old.name[len(prefix) :].split("-", 1)[0]
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
        raise AtlasError(
            "REL021", f"rebuild of published release {rel.name} differs from its manifest: {why}", path=path
        )
    if sha256_bytes(manifest) != rel.manifest_sha256:
        raise AtlasError(
            "REL021",
            f"rebuild of published release {rel.name}: {MANIFEST} differs from the published one",
            path=MANIFEST,
        )


def _occupied(out: Path, force: bool) -> bool:
    """Whether ``out`` holds something; REL015 unless ``force``."""
    if not (out.exists() and any(out.iterdir())):
        return False
    if not force:
        raise AtlasError("REL015", "output folder exists and is not empty (use --force to replace it)", path=str(out))
    return True


def _install(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished build into place (an existing ``out`` only with ``force``)."""
    from .folders import swap_in

    _occupied(out, force)
    swap_in(tmp, out)


def _outside_specs(out: Path, specs: Path | None) -> None:
    """REL017: a release is never built into the folder of release specifications (the clone's
    ``releases/``), where it would sit among, or replace, the files it was built from."""
    from .release_spec import releases_dir

    folder = Path(specs or releases_dir()).resolve()
    if out.resolve() == folder or out.resolve().is_relative_to(folder):
        raise AtlasError(
            "REL017",
            f"{out} is inside the folder of release specifications {folder}; "
            "build elsewhere (default: <home>/releases/NAME)",
            path=str(out),
        )


# -- what a build reads, and whether a folder holds that build ---------------------------------------

_SOURCE_SHA: list[str] = []


def _source_sha256() -> str:
    """SHA-256 of the package's source (every ``.py`` of atlas_registry): a changed exporter changes bytes."""
    if not _SOURCE_SHA:
        h = hashlib.sha256(__version__.encode())
        pkg = Path(__file__).resolve().parent
        for p in sorted(pkg.rglob("*.py")):
            h.update(p.relative_to(pkg).as_posix().encode() + b"\x00" + p.read_bytes() + b"\x00")
        _SOURCE_SHA.append(h.hexdigest())
    return _SOURCE_SHA[0]


def fingerprint(s: Session, name: str, spec_text: str) -> str:
    """SHA-256 of everything a build of release ``name`` reads: the software, the specification, and
    the registry's state — the newest revision (every change to scans, masks, metadata, the
    standardized subset and withdrawals is one), the number and last id of every table's rows, the
    issues (their text and status change without a revision) and the other releases (published ones
    appear in CHANGES, the notes and the Parquet tables)."""
    from sqlalchemy import text

    h = hashlib.sha256()

    def add(*parts) -> None:
        h.update(json.dumps(parts, default=str, sort_keys=True).encode() + b"\n")

    add("source", _source_sha256())
    add("spec", name, spec_text)
    conn = s.connection()
    for table in SQLModel.metadata.sorted_tables:
        if table.name in ("release", "release_scan", "release_item") or "id" not in table.c:  # releases: below
            continue
        add(table.name, *conn.execute(text(f"SELECT COUNT(*), MAX(id) FROM {table.name}")).one())
    for i in s.exec(select(Issue).order_by(col(Issue.id))).all():
        add("issue", i.id, i.timepoint_id, i.file_kind, i.title, i.body, i.url, i.status, i.opened_at, i.closed_at)
    for r in s.exec(select(Release).where(Release.name != name).order_by(col(Release.id))).all():
        add(
            "release",
            r.name,
            r.version,
            r.status,
            r.spec,
            r.last_revision_id,
            r.manifest_sha256,
            r.previous_release_id,
            r.published_at,
        )
    return h.hexdigest()


def _holds_build(out: Path, rel: Release) -> list[dict] | None:
    """Whether ``out`` holds exactly the recorded build of ``rel``: its ``MANIFEST.json`` (by SHA-256)
    and every listed file, regular, of the listed size, and nothing else (contents are not re-hashed:
    ``release verify`` does that)."""
    from .export.output import scan_tree

    try:
        data = (out / MANIFEST).read_bytes()
        if sha256_bytes(data) != rel.manifest_sha256 or stat.S_ISLNK(os.lstat(out / MANIFEST).st_mode):
            return None
        listed = json.loads(data)["files"]
        files = {f["path"]: f["size"] for f in listed}
        tree = scan_tree(out)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if tree is None:
        return None
    tree.pop(MANIFEST, None)
    same = len(tree) == len(files) and all(files.get(p) == st.st_size for p, st in tree.items())
    return listed if same else None


def build(
    ws: Workspace,
    name: str,
    out: str | os.PathLike,
    *,
    specs: Path | None = None,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = False,
) -> BuildOutcome:
    """Build release ``name`` into ``out`` atomically; record it (unless published: then verify it).

    With ``force`` and an earlier build in ``out``, the build starts from that tree (renamed to the
    temporary folder; files holding the right bytes stay) — so a failed build leaves no ``out`` at all."""
    from .export import write_archives
    from .export.determinism import FILE_MODE
    from .export.output import scan_tree

    out = Path(out).absolute()
    _outside_specs(out, specs)
    occupied = _occupied(out, force)
    require_registry(ws)
    with db.session(ws) as s:
        spec0, rel0 = _spec_for(s, name, specs)
        fp = fingerprint(s, spec0.name, spec0.source_text)
        files = (
            _holds_build(out, rel0)
            if occupied
            and not _frozen(rel0)
            and rel0 is not None
            and rel0.status == "built"
            and rel0.build_fingerprint == fp
            else None
        )
        if files is not None:
            assert rel0 is not None and rel0.manifest_sha256 is not None  # files: its recorded build
            _remember_location(ws, spec0.name, out)
            return BuildOutcome(
                spec0.name,
                spec0.version,
                str(out),
                rel0.last_revision_id,
                len(files),
                sum(f["size"] for f in files),
                rel0.manifest_sha256,
                reproduced=False,
                unchanged=True,
                kept=len(files),
            )
        spec, rel, view, ed = _read(s, name, specs)
        changes = changelog.changes_text(s, ed)
        notes = changelog.release_notes(
            s,
            spec,
            ed,
            _exclusions(public_view(view)),  # the scans it releases (a hidden scan is not)
            split_counts(view) if spec.splits is not None else None,
        )
    existing = None
    if occupied:
        tmp = _temp_dir(out)
        tmp.rmdir()
        os.rename(out, tmp)  # the earlier build becomes the temporary folder
        existing = scan_tree(tmp)
        if existing is None:  # a symbolic link or special file somewhere: start afresh
            shutil.rmtree(tmp)
            tmp.mkdir()
    else:
        tmp = _temp_dir(out)
    try:
        entries = write_archives(
            ws,
            view,
            tmp,
            changes=changes,
            release_notes=notes,
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            progress=progress,
            existing=existing,
        )
        manifest = manifest_bytes(spec, view.revision, entries)
        atomic_write(tmp / MANIFEST, manifest, mode=FILE_MODE)
        with db.session(ws) as s:
            if _frozen(rel):
                rel = s.get(Release, rel.id)
                assert rel is not None  # a published release is never deleted
                _check_reproduced(s, rel, entries, manifest)
                if rel.package_sha256:
                    _reproduce_publication(tmp, spec, rel, entries, progress)
            else:
                _record(s, spec, view, entries, manifest).build_fingerprint = fp
            _install(tmp, out, force and not occupied)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remember_location(ws, spec.name, out)
    kept = 0
    for e in entries if existing else ():  # files of the earlier build left as they were (same inode)
        assert existing is not None  # the loop runs only over an earlier build
        st = existing.get(e.path)
        kept += st is not None and os.lstat(out / e.path).st_ino == st.st_ino
    return BuildOutcome(
        spec.name,
        spec.version,
        str(out),
        view.revision,
        len(entries),
        sum(e.size for e in entries),
        sha256_bytes(manifest),
        reproduced=_frozen(rel),
        kept=kept,
    )


def _remember_location(ws: Workspace, name: str, out: Path) -> None:
    """``release publish``, ``sql --release`` and ``stats --release`` find a release built outside
    ``<home>/releases`` by a pointer file ``<home>/releases/<name>.location``."""
    default = ws.home / "releases" / name
    pointer = ws.home / "releases" / f"{name}.location"
    if out.resolve() != default.resolve():
        text = (str(out.resolve()) + "\n").encode()
        if not pointer.is_file() or pointer.read_bytes() != text:
            atomic_write(pointer, text)
    elif pointer.exists():
        pointer.unlink()


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
    s.exec(delete(ReleaseItem).where(col(ReleaseItem.release_id) == rel.id))
    s.exec(delete(ReleaseScan).where(col(ReleaseScan.release_id) == rel.id))
    codes = [sc.code for sc in view.scans]
    ids = (
        dict(s.exec(select(Timepoint.code, Timepoint.id).where(col(Timepoint.code).in_(codes))).all()) if codes else {}
    )
    conn = s.connection()  # thousands of rows: one executemany each, not one ORM object per row
    if view.scans:
        conn.execute(
            insert(ReleaseScan.__table__),  # type: ignore[attr-defined]  # sqlmodel declares no __table__
            [
                {
                    "release_id": rel.id,
                    "timepoint_id": ids[sc.code],
                    "in_standard": sc.in_standard,
                    "scan": sc.code,
                    "cohort": sc.cohort,
                    "public_label": sc.public_label,
                    "exclusion_reason": None if sc.in_standard else sc.exclusion_reason,
                    "exclusion_note": None if sc.in_standard else sc.exclusion_note,
                    "split": sc.split,
                }
                for sc in view.scans
            ],
        )
    if entries:
        conn.execute(
            insert(ReleaseItem.__table__),  # type: ignore[attr-defined]  # sqlmodel declares no __table__
            [
                {
                    "release_id": rel.id,
                    "archive": e.archive,
                    "path": e.path,
                    "size_bytes": e.size,
                    "sha256": e.sha256,
                    "timepoint_id": ids.get(e.scan) if e.scan else None,
                    "source_revision_id": e.source_revision_id,
                }
                for e in sorted(entries, key=lambda e: e.path)
            ],
        )
    rel.version, rel.spec, rel.status = spec.version, spec.source_text, "built"
    rel.last_revision_id, rel.manifest_sha256, rel.built_at = view.revision, sha256_bytes(manifest), now()
    s.add(rel)
    s.flush()
    return rel


# -- publish -------------------------------------------------------------------------------------

SUMS = "packages/SHA256SUMS"
NOTES = "packages/RELEASE-NOTES.md"


@dataclass
class PublishOutcome:
    name: str
    version: str
    last_revision_id: int | None
    manifest_sha256: str
    files: int
    scans: int
    previous: str | None
    out: str = ""
    package_path: str = ""
    package_size: int = 0
    package_sha256: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _bag_members(name: str, files: list[dict]) -> list[str]:
    """The bag's files (relative to the bag folder) among the manifest's ``files``."""
    from .export.bag import deposit_zip_path

    base = deposit_zip_path(name)[: -len(".zip")] + "/"
    return sorted(f["path"][len(base) :] for f in files if f["path"].startswith(base))


def _notes_text(spec: ReleaseSpec, manifest_sha: str, zip_rel: str, size: int, sha: str, changes: str) -> str:
    """``packages/RELEASE-NOTES.md``: the fixity of the published release and its history."""
    return "\n".join(
        [
            f"# {spec.title}: release {spec.name} (version {spec.version}, {spec.date})",
            "",
            "## Fixity",
            "",
            f"- `{MANIFEST}` SHA-256: `{manifest_sha}` (every file of the release with its size and SHA-256)",
            f"- `{zip_rel}` ({size} bytes) SHA-256: `{sha}` (the ICPSR deposit package: the BagIt bag of `icpsr/`)",
            "",
            "Check a downloaded copy of the release folder against the published manifest:",
            "",
            f"    atlas-registry release verify DIR --manifest-sha256 {manifest_sha}",
            "",
            "or, with coreutils, `cd packages && sha256sum -c SHA256SUMS`, and `sha256sum MANIFEST.json`.",
            "",
            "## Changes",
            "",
            "```",
            changes.rstrip("\n"),
            "```",
            "",
        ]
    )


def _write_publication(root: Path, spec: ReleaseSpec, manifest: bytes, progress: bool = False) -> tuple[str, int, str]:
    """Write the deposit zip, ``packages/RELEASE-NOTES.md`` and ``packages/SHA256SUMS`` into the
    release folder ``root`` (its ``MANIFEST.json`` is ``manifest``); returns (zip path, size, SHA-256).
    The zip is written under a temporary name and renamed when complete."""
    from .export.bag import deposit_zip_path, write_deposit_zip
    from .export.determinism import FILE_MODE

    files = json.loads(manifest)["files"]
    zip_rel = deposit_zip_path(spec.name)
    members = _bag_members(spec.name, files)
    sizes = {f["path"]: f["size"] for f in files}
    base = zip_rel[: -len(".zip")]
    for m in members:  # the folder must hold the recorded bag (sizes; the zip's SHA-256 is what is recorded)
        try:
            st = os.lstat(root / base / m)
        except FileNotFoundError:
            st = None
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != sizes[f"{base}/{m}"]:
            raise AtlasError(
                "REL011",
                "the build folder does not hold the recorded bag (missing, changed size or "
                "not a regular file); build the release again",
                path=f"{base}/{m}",
            )
    tmp = root / f"{zip_rel}.tmp-{os.getpid()}"
    try:
        if progress:
            import sys

            print(f"writing {zip_rel} ({len(members)} files)", file=sys.stderr, flush=True)
        size, sha = write_deposit_zip(root, spec.name, spec.date, members, tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, root / zip_rel)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    changes = root / "icpsr" / "CHANGES"
    changes_text = changes.read_text("utf-8") if sizes.get("icpsr/CHANGES") is not None and changes.is_file() else ""
    notes = _notes_text(spec, sha256_bytes(manifest), zip_rel, size, sha, changes_text).encode("utf-8")
    for rel_path in (NOTES, SUMS):
        (root / rel_path).unlink(missing_ok=True)
    atomic_write(root / NOTES, notes, mode=FILE_MODE)
    sums = f"{sha}  {zip_rel.removeprefix('packages/')}\n{sha256_bytes(notes)}  {NOTES.removeprefix('packages/')}\n"
    atomic_write(root / SUMS, sums.encode("ascii"), mode=FILE_MODE)
    return zip_rel, size, sha


def _reproduce_publication(root: Path, spec: ReleaseSpec, rel: Release, entries, progress: bool) -> None:
    """A rebuild of a published release writes its deposit zip again and checks it against the record."""
    manifest = (root / MANIFEST).read_bytes()
    zip_rel, size, sha = _write_publication(root, spec, manifest, progress)
    if (zip_rel, size, sha) != (rel.package_path, rel.package_size, rel.package_sha256):
        raise AtlasError(
            "REL021",
            f"rebuild of published release {rel.name}: the deposit zip ({size} bytes, sha256 "
            f"{sha[:12]}) differs from the published one ({rel.package_size} bytes, "
            f"{(rel.package_sha256 or '')[:12]})",
            path=zip_rel,
        )


def publish(
    ws: Workspace, name: str, *, specs: Path | None = None, out: str | os.PathLike | None = None, progress: bool = False
) -> PublishOutcome:
    """Freeze the built release ``name``: it must have been built from the registry as it is now, and
    its build folder (``out``, default where it was built) must hold that build. Writes the deposit zip
    into the folder and records its size and SHA-256."""
    from .query import release_dir

    require_registry(ws)
    with db.session(ws) as s:
        db.write_lock(s)
        rel = _release_row(s, name)
        if rel is None:
            raise AtlasError(
                "REL011", f"release {name} has not been built (atlas-registry release build {name} --out DIR)"
            )
        if rel.status == "published":
            raise AtlasError("REL012", f"release {name} is already published ({rel.published_at:%Y-%m-%d})")
        newest = s.exec(select(func.max(Revision.id))).one()
        if newest != rel.last_revision_id:
            raise AtlasError(
                "REL013",
                f"the registry changed since {name} was built (revision {newest}, built at "
                f"{rel.last_revision_id}); build it again, then publish",
            )
        spec = _file_spec(name, specs)  # the build stored its specification: the file is optional now
        if spec is not None and spec.source_text != rel.spec:
            raise AtlasError("REL013", f"the specification of {name} changed since it was built; build it again")
        spec = spec or parse_spec(rel.spec, rel.name)
        published = s.exec(select(Release).where(Release.status == "published")).all()
        since = [
            r
            for r in published
            if rel.built_at is not None and r.published_at is not None and _utc(r.published_at) >= _utc(rel.built_at)
        ]
        if since:  # its CHANGES, notes and tables list the releases published before its build
            raise AtlasError(
                "REL013", f"release {since[0].name} was published after {name} was built; build it again, then publish"
            )
        higher = [r for r in published if semver(r.version) >= semver(rel.version)]
        if higher:
            raise AtlasError(
                "REL014", f"version {rel.version} is not above published {higher[0].name} ({higher[0].version})"
            )
        prev = max(published, key=lambda r: semver(r.version), default=None)
        root = Path(out).absolute() if out is not None else Path(release_dir(ws, name)).absolute()
        try:
            manifest = (root / MANIFEST).read_bytes()
        except OSError:
            raise AtlasError(
                "REL011", f"no build of {name} here (give the folder it was built into)", path=str(root)
            ) from None
        if sha256_bytes(manifest) != rel.manifest_sha256:
            raise AtlasError(
                "REL011",
                f"{MANIFEST} is not that of the recorded build of {name}; build it again",
                path=str(root / MANIFEST),
            )
        zip_rel, size, sha = _write_publication(root, spec, manifest, progress)
        try:
            rel.status, rel.published_at = "published", now()
            rel.previous_release_id = prev.id if prev else None
            rel.package_path, rel.package_size, rel.package_sha256 = zip_rel, size, sha
            s.add(rel)
            facts.refresh_releases(s)  # the current-state rows list published releases
            n_files = s.exec(
                select(func.count()).select_from(ReleaseItem).where(ReleaseItem.release_id == rel.id)
            ).one()
            n_scans = s.exec(
                select(func.count()).select_from(ReleaseScan).where(ReleaseScan.release_id == rel.id)
            ).one()
            outcome = PublishOutcome(
                rel.name,
                rel.version,
                rel.last_revision_id,
                rel.manifest_sha256,
                n_files,
                n_scans,
                prev.name if prev else None,
                str(root),
                zip_rel,
                size,
                sha,
            )
            s.flush()
        except BaseException:
            for p in (zip_rel, SUMS, NOTES):
                (root / p).unlink(missing_ok=True)
            raise
    return outcome


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


# -- diff ----------------------------------------------------------------------------------------

_MARK = {"added": "+", "removed": "-", "changed": "~"}


@dataclass
class ScanChange:
    scan: str
    status: str  # added | removed | changed
    files: list[dict]  # path, change (added/removed/changed)
    changes: list[Change]  # the revisions behind it, with their issues

    def to_dict(self) -> dict:
        return {
            "scan": self.scan,
            "status": self.status,
            "files": self.files,
            "changes": [c.to_dict() for c in self.changes],
        }


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
        return {
            "a": self.a,
            "b": self.b,
            "scans": [s.to_dict() for s in self.scans],
            "release_files": self.release_files,
            "standard_added": self.standard_added,
            "standard_removed": self.standard_removed,
            "issues": self.issues,
        }

    def to_text(self) -> str:
        n = {k: sum(1 for s in self.scans if s.status == k) for k in ("added", "removed", "changed")}
        out = [
            f"{self.a} -> {self.b}: {n['added']} scan(s) added, {n['removed']} removed, {n['changed']} changed; "
            f"{len(self.release_files)} release-level file(s) differ"
        ]
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
        items = [
            {
                i.path.replace(r.name, "{release}"): i
                for i in s.exec(select(ReleaseItem).where(ReleaseItem.release_id == r.id)).all()
            }
            for r in (ra, rb)
        ]
        ma, mb = changelog.membership(s, row_id(ra)), changelog.membership(s, row_id(rb))
        codes = dict(
            s.exec(
                select(Timepoint.id, Timepoint.code).where(
                    col(Timepoint.id).in_(
                        sorted({i.timepoint_id for d in items for i in d.values() if i.timepoint_id is not None})
                    )
                )
            ).all()
        )
        lo, hi = sorted((ra.last_revision_id or 0, rb.last_revision_id or 0))
        revs = changelog.changes_between(s, lo, hi, set(ma) | set(mb))
    by_scan: dict[str | None, list[dict]] = {}
    for key in sorted(set(items[0]) | set(items[1])):
        x, y = items[0].get(key), items[1].get(key)
        if x is not None and y is not None and (x.sha256, x.size_bytes) == (y.sha256, y.size_bytes):
            continue
        change = "added" if x is None else "removed" if y is None else "changed"
        item = y if y is not None else x
        assert item is not None  # key is in one of the two
        tp = item.timepoint_id
        by_scan.setdefault(codes.get(tp) if tp is not None else None, []).append({"path": item.path, "change": change})
    scans = []
    # a scan changed when its files did, or a revision touched it (metadata lives in release-level tables)
    for code in sorted({c for c in by_scan if c is not None} | (set(ma) ^ set(mb)) | {c.scan for c in revs}):
        status = "added" if code not in ma else "removed" if code not in mb else "changed"
        scans.append(ScanChange(code, status, by_scan.get(code, []), [c for c in revs if c.scan == code]))
    both = set(ma) & set(mb)
    return ReleaseDiff(
        a=ra.name,
        b=rb.name,
        scans=scans,
        release_files=by_scan.get(None, []),
        standard_added=sorted(c for c in both if mb[c] and not ma[c]),
        standard_removed=sorted(c for c in both if ma[c] and not mb[c]),
    )


def _built(s: Session, name: str) -> Release:
    rel = _release_row(s, name)
    if rel is None:
        raise AtlasError("REL010", f"no release {name!r} in the registry")
    if rel.status == "draft" or rel.manifest_sha256 is None:
        raise AtlasError("REL011", f"release {name} has not been built")
    return rel
