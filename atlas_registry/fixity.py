"""Fixity: check a release folder, as built, copied or downloaded, against its ``MANIFEST.json``.

Every file listed must be there with its size and SHA-256, and nothing else may be there: an
unlisted file in a folder about to be deposited is as wrong as a missing one (it may be a note, a
spreadsheet or a scan that never went through the de-identification gate). Listed paths are
checked before anything is opened: an absolute path, ``..`` or a symbolic link is refused, never
followed. When the registry knows the release, the manifest itself must be the one it stored:
a published release's manifest cannot change, so a folder whose files *and* manifest were edited
is caught too.

Rule codes: ``REL030`` manifest missing, unreadable or not valid against
``schemas/release-manifest.schema.json``; ``REL031`` a listed file is missing; ``REL032`` a file's
size or SHA-256 differs; ``REL033`` a file is not in the manifest; ``REL034`` a listed path is unsafe
or not a regular file; ``REL035`` the manifest differs from the one the registry stored (error for a
published release, warning for a release only built); ``REL036`` (info) there is no registry, it cannot
be read, or it does not know the release: only the folder's own manifest was checked.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .config import Workspace
from .findings import Report, error, info, warning
from .store import sha256_bytes, sha256_file

MANIFEST = "MANIFEST.json"
SCHEMA = "release-manifest.schema.json"
CHUNK = 1 << 20


@dataclass
class FixityReport:
    """The findings of one check and what was checked."""

    root: str
    report: Report = field(default_factory=Report)
    release: str | None = None
    version: str | None = None
    manifest_sha256: str | None = None
    bytes: int = 0
    against: str = MANIFEST  # what the files were checked against

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_dict(self) -> dict:
        d = self.report.to_dict()
        d["summary"].update(root=self.root, release=self.release, version=self.version,
                            manifest_sha256=self.manifest_sha256, bytes=self.bytes)
        return d

    def to_text(self) -> str:
        lines = [f.line() for f in self.report.sorted()]
        what = f"{self.release} ({self.version})" if self.release else self.root
        verdict = "intact" if self.ok else f"{len(self.report.errors)} error(s)"
        lines.append(f"{what}: {self.report.files} file(s), {self.bytes / 1e6:.1f} MB checked against {self.against}"
                     + (f" (sha256 {self.manifest_sha256})" if self.manifest_sha256 else "")
                     + f": {verdict}, {len(self.report.warnings)} warning(s)")
        return "\n".join(lines)


def unsafe(path: str) -> str | None:
    """Why a manifest path may not be opened below the release folder (None: it may)."""
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return "not a relative POSIX path"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has an empty, '.' or '..' segment"
    if path == MANIFEST:
        return f"lists {MANIFEST} itself"
    return None


def _read_manifest(root: Path, out: FixityReport) -> dict | None:
    """The parsed manifest, or None with a REL030 finding."""
    from .metadata import schema_problem

    path = root / MANIFEST
    if not path.is_file() or path.is_symlink():
        out.report.extend([error("REL030", f"no {MANIFEST} (a regular file) in the release folder", path=MANIFEST)])
        return None
    data = path.read_bytes()
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        out.report.extend([error("REL030", f"not JSON: {e}", path=MANIFEST)])
        return None
    problem = schema_problem(doc, SCHEMA, "/")
    if problem is not None:
        where, message = problem
        out.report.extend([error("REL030", f"not a valid manifest at {where or '(top)'}: {message} ({SCHEMA})",
                                 path=MANIFEST)])
        return None
    out.manifest_sha256 = sha256_bytes(data)
    out.release, out.version = doc["release"], doc["version"]
    return doc


def _on_disk(root: Path) -> dict[str, os.stat_result]:
    """Every entry below ``root`` that is not a directory (symbolic links included, not followed)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = Path(dirpath).relative_to(root)
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            found[(rel / name).as_posix()] = p.lstat()
    found.pop(MANIFEST, None)
    return found


def _sha256(path: Path, advance=None) -> str | OSError:
    """The file's SHA-256, or the error that kept it from being read (it went away, or became a
    symbolic link, since the walk: never followed)."""
    try:
        return sha256_file(path, CHUNK, follow=False, advance=advance)
    except OSError as e:
        return e


def _registry_check(ws: Workspace | None, doc: dict, out: FixityReport) -> None:
    """REL035/REL036: the manifest against the one the registry stored for the release."""
    stored = _stored_manifest(ws, doc["release"]) if ws is not None else "there is no registry here"
    if isinstance(stored, str):
        out.report.extend([info("REL036", f"{stored}: checked against the folder's own {MANIFEST} only",
                                path=MANIFEST)])
        return
    status, sha = stored
    if sha == out.manifest_sha256:
        return
    if status == "published":
        out.report.extend([error("REL035", f"{MANIFEST} differs from the one published for {doc['release']} "
                                 f"(registry sha256 {sha})", path=MANIFEST)])
    else:
        out.report.extend([warning("REL035", f"{MANIFEST} is not the registry's latest build of {doc['release']} "
                                   f"(status {status}, registry sha256 {sha})", path=MANIFEST)])


def _stored_manifest(ws: Workspace, name: str) -> tuple[str, str] | str:
    """(status, manifest SHA-256) of release ``name`` in the registry, or why there is none to
    compare with: no registry (nothing is created), unreachable, or no such release built."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from . import db

    if db.sqlite_file_missing(ws):
        return "there is no registry here"
    eng = create_engine(ws.url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            row = c.execute(text("SELECT status, manifest_sha256 FROM release WHERE name = :n"), {"n": name}).first()
    except SQLAlchemyError as e:
        return f"the registry could not be read ({type(getattr(e, 'orig', None) or e).__name__})"
    finally:
        eng.dispose()
    if row is None or not row[1]:
        return f"release {name} is not in this registry"
    return row[0], row[1]


def verify(root: str | os.PathLike, *, ws: Workspace | None = None, workers: int | None = None,
           progress: bool = False) -> FixityReport:
    """Check the release folder ``root`` against its manifest (and the registry of ``ws``, if any)."""
    root = Path(root).absolute()
    out = FixityReport(str(root))
    if not root.is_dir():
        out.report.extend([error("REL030", "not a folder", path=str(root))])
        return out
    doc = _read_manifest(root, out)
    if doc is None:
        return out
    present = _on_disk(root)
    listed: dict[str, dict] = {}
    for entry in doc["files"]:
        path = entry["path"]
        why = unsafe(path) or ("listed twice" if path in listed else None)
        if why:
            out.report.extend([error("REL034", f"manifest path {why}", path=path)])
            continue
        listed[path] = entry
    todo = []
    for path, entry in sorted(listed.items()):
        st = present.get(path)
        if st is None:
            out.report.extend([error("REL031", f"listed in {MANIFEST} ({entry['size']} bytes) but missing", path=path)])
        elif not _regular(st):
            out.report.extend([error("REL034", "not a regular file (a symbolic link or special file is never followed)",
                                     path=path)])
        elif st.st_size != entry["size"]:
            out.report.extend([error("REL032", f"{st.st_size} bytes, manifest says {entry['size']}", path=path)])
        else:
            todo.append((path, entry))
    for path in sorted(set(present) - set(listed)):
        kind = "file" if _regular(present[path]) else "symbolic link or special file"
        out.report.extend([error("REL033", f"{kind} not listed in {MANIFEST}", path=path)])
    out.report.files = len(listed)
    out.bytes = sum(e["size"] for _, e in todo)
    for path, digest, entry in hash_all(root, todo, workers, progress, out.bytes):
        if isinstance(digest, OSError):
            out.report.extend([error("REL031", f"could not be read ({digest.strerror or digest})", path=path)])
        elif digest != entry["sha256"]:
            out.report.extend([error("REL032", f"sha256 {digest[:12]}…, manifest says {entry['sha256'][:12]}…",
                                     path=path)])
    _registry_check(ws, doc, out)
    return out


def _regular(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def hash_all(root: Path, todo, workers: int | None, progress: bool, total: int):
    """(path, SHA-256, entry) of every file in ``todo``, hashed by threads (hashlib releases the GIL),
    with a progress bar in bytes on stderr when ``progress``."""
    workers = workers or min(8, os.cpu_count() or 1)
    if not progress:
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(lambda pe: (pe[0], _sha256(root / pe[0]), pe[1]), todo)
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("verify"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=total)

        def one(pe):
            return pe[0], _sha256(root / pe[0], lambda n: bar.advance(task, n)), pe[1]

        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(one, todo)

