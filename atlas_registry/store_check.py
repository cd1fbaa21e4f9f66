"""Fixity of the object store: every object the registry records is there, whole and read-only;
and ``store gc``: the objects nothing refers to, removed.

Release builds hard-link store objects, so an object damaged in place damages every build that
holds it; the registry's own history (retired masks, earlier T1s) lives nowhere else. ``atlas-registry
store verify`` reads every object back (from a folder, or through the S3 client): present, its
recorded size, the SHA-256 it is stored under. A finding names the object and the scans and files
that use it (current or retired rows alike).

Rule codes: ``STO001`` an object the registry records is missing, ``STO002`` its size or SHA-256
differs (damaged), ``STO003`` (warning) an object is writable (mode not 0444: a hard link in a
release folder could change it; folder stores only), ``STO004`` (info) an object in the store that
the registry does not record (left by an interrupted ingest or revision, or by an endpoint that went
away mid-ingest; harmless, removed by ``store gc``). ``STO005``: the store could not be reached.

``store gc`` lists (and with ``yes`` deletes) the objects of the store that no row refers to: not in
``stored_object``, not an image or mask row (current or retired), not a file of any release. It
holds the registry's write lock while it lists and deletes, so an ingest or revision — which stores
its objects under that lock before it commits rows pointing at them — cannot race it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text

from . import db
from .config import Workspace
from .findings import error, info, warning
from .fixity import FixityReport, hash_all
from .objstore import Store, open_store
from .store import OBJECT_MODE
from .tracker import require_registry

_USERS = (  # every row that points at an object, with the scan and the file name it was stored under
    "SELECT i.sha256, t.code, i.source_name FROM image i JOIN timepoint t ON t.id = i.timepoint_id",
    "SELECT m.sha256, t.code, m.source_name FROM lesion_mask m JOIN lesion l ON l.id = m.lesion_id"
    " JOIN timepoint t ON t.id = l.timepoint_id",
)

#: every SHA-256 a row of the registry refers to (``store gc`` never removes one of them)
_REFERENCED = (
    "SELECT sha256 FROM stored_object",
    "SELECT sha256 FROM image",
    "SELECT sha256 FROM lesion_mask",
    "SELECT sha256 FROM release_item",
)


def _recorded(ws: Workspace) -> tuple[dict[str, int], dict[str, list[tuple[str, str]]]]:
    """(SHA-256 -> size) of ``stored_object``, and (SHA-256 -> [(scan, file)]) of its users."""
    users: dict[str, list[tuple[str, str]]] = {}
    with db.engine(ws).connect() as c:
        sizes = {sha: int(n) for sha, n in c.execute(text("SELECT sha256, size_bytes FROM stored_object"))}
        for sql in _USERS:
            for sha, scan, name in c.execute(text(sql)):
                users.setdefault(sha, []).append((scan, name))
    return sizes, users


def _used_by(users: list[tuple[str, str]]) -> tuple[str | None, str]:
    """The first scan using an object, and a phrase naming up to three of its files."""
    if not users:
        return None, "used by no image or mask row"
    names = sorted(set(users))
    shown = ", ".join(f"{scan}/{name}" for scan, name in names[:3])
    return names[0][0], f"used by {shown}" + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")


def verify_store(ws: Workspace, *, workers: int | None = None, progress: bool = False) -> FixityReport:
    """Check the object store of ``ws`` against the registry's ``stored_object`` table."""
    require_registry(ws)
    store = open_store(ws)
    out = FixityReport(store.url, against="the registry (stored_object)")
    sizes, users = _recorded(ws)
    present = store.inventory()
    todo: list[tuple[str, dict]] = []
    for sha in sorted(sizes):
        rel = store.key(sha)
        scan, used = _used_by(users.get(sha, []))
        if sha not in present:
            out.report.extend([error("STO001", f"missing from the store; {used}", subject=scan, path=rel)])
            continue
        if present[sha] != sizes[sha]:
            out.report.extend(
                [error("STO002", f"{present[sha]} bytes, recorded {sizes[sha]}; {used}", subject=scan, path=rel)]
            )
            continue
        mode = store.mode(sha)
        if mode is not None and mode & 0o222:
            out.report.extend(
                [
                    warning(
                        "STO003",
                        f"writable (mode {mode:o}, objects are {OBJECT_MODE:o}); {used}",
                        subject=scan,
                        path=rel,
                    )
                ]
            )
        todo.append((rel, {"sha256": sha, "size": sizes[sha], "used": used, "scan": scan}))
    for sha in sorted(set(present) - set(sizes)):
        out.report.extend(
            [
                info(
                    "STO004",
                    "not recorded by the registry (left by an interrupted write; `store gc` removes it)",
                    path=store.key(sha),
                )
            ]
        )
    out.report.files = len(sizes)
    out.bytes = sum(e["size"] for _, e in todo)
    root = getattr(store, "root", None)
    digest = None
    if store.remote:
        workers = workers or store.parallel

        def digest(rel, entry, advance=None):
            return store.hash(entry["sha256"], advance)

    for rel, found, entry in hash_all(root, todo, workers, progress, out.bytes, digest):
        if isinstance(found, OSError):
            out.report.extend(
                [
                    error(
                        "STO001",
                        f"could not be read ({found.strerror or found}); {entry['used']}",
                        subject=entry["scan"],
                        path=rel,
                    )
                ]
            )
        elif found != entry["sha256"]:
            out.report.extend(
                [
                    error(
                        "STO002",
                        f"damaged: its bytes hash to {found[:12]}…; {entry['used']}",
                        subject=entry["scan"],
                        path=rel,
                    )
                ]
            )
    return out


@dataclass
class GcOutcome:
    store: str
    dry_run: bool
    orphans: list[dict] = field(default_factory=list)  # {"object", "sha256", "size"}
    removed: int = 0
    kept: int = 0  # objects a row refers to

    @property
    def bytes(self) -> int:
        return sum(o["size"] for o in self.orphans)

    def to_dict(self) -> dict:
        return {
            "store": self.store,
            "dry_run": self.dry_run,
            "objects_referenced": self.kept,
            "orphans": self.orphans,
            "orphan_bytes": self.bytes,
            "removed": self.removed,
        }

    def to_text(self) -> str:
        lines = [f"  {o['object']}  {o['size']:,} bytes" for o in self.orphans]
        what = f"{len(self.orphans)} orphaned object(s), {self.bytes / 1e6:.1f} MB, in {self.store}"
        if self.dry_run:
            tail = "dry run: nothing removed (run `store gc --yes` to remove them)" if self.orphans else "nothing to do"
        else:
            tail = f"{self.removed} removed"
        lines.append(f"{what} ({self.kept} referenced, kept): {tail}")
        return "\n".join(lines)


def _referenced(conn) -> set[str]:
    shas: set[str] = set()
    for sql in _REFERENCED:
        shas.update(sha for (sha,) in conn.execute(text(sql)) if sha)
    return shas


def gc_store(ws: Workspace, *, yes: bool = False, store: Store | None = None) -> GcOutcome:
    """The objects of the store no registry row or release refers to; removed with ``yes``."""
    require_registry(ws)
    store = store or open_store(ws)
    out = GcOutcome(store=store.url, dry_run=not yes)
    with db.session(ws) as s:
        db.write_lock(s)  # ingest and revise store objects under this lock before their rows commit
        referenced = _referenced(s.connection())
        present = store.inventory()
        out.kept = len(set(present) & referenced)
        for sha in sorted(set(present) - referenced):
            out.orphans.append({"object": store.key(sha), "sha256": sha, "size": present[sha]})
        if yes:
            for o in out.orphans:
                store.remove(o["sha256"])
                out.removed += 1
        s.rollback()
    return out
