"""Fixity: check a release folder, as built, copied or downloaded, against its ``MANIFEST.json``.

Every file listed must be there with its size and SHA-256, and nothing else may be there: an
unlisted file in a folder about to be deposited is as wrong as a missing one (it may be a note, a
spreadsheet or a scan that never went through the de-identification gate). Listed paths are
checked before anything is opened: an absolute path, ``..`` or a symbolic link is refused, never
followed. When the registry knows the release, the manifest itself must be the one it stored:
a published release's manifest cannot change, so a folder whose files *and* manifest were edited
is caught too.

A published release folder also holds what publication wrote outside the manifest (which cannot list
files that name its own SHA-256): ``packages/SHA256SUMS`` (``sha256sum -c`` format, paths relative to
``packages/``) listing the deposit zip and ``packages/RELEASE-NOTES.md``. Every file it lists is hashed
and checked, and with a registry the zip must be the one recorded at publication.

Without a registry that knows the release, a folder whose files and manifest were edited together is
internally consistent: that is all that can be said unless the manifest's SHA-256, printed at
publication and written into the release notes, is given (``expected_manifest_sha256``).

Rule codes: ``REL030`` manifest missing, unreadable or not valid against
``schemas/release-manifest.schema.json``; ``REL031`` a listed file is missing; ``REL032`` a file's
size or SHA-256 differs; ``REL033`` a file is not in the manifest; ``REL034`` a listed path is unsafe
or not a regular file; ``REL035`` the manifest differs from the one the registry stored (error for a
published release, warning for a release only built); ``REL036`` (warning) only part could be checked:
there is no registry, it cannot be read, or it does not know the release, and no expected manifest
SHA-256 was given (only internal consistency was checked), or the deposit zip the registry
recorded at publication is not in the folder.
``packages/SHA256SUMS`` is held to the same rules as the manifest: malformed ``REL030``, a
listed file missing ``REL031``, differing ``REL032``, a file listed in both ``REL034``; a deposit zip
that is not the published one, or a manifest whose SHA-256 is not the expected one, ``REL035``.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .config import Workspace
from .findings import Report, error, warning
from .store import sha256_bytes, sha256_file

MANIFEST = "MANIFEST.json"
SUMS = "packages/SHA256SUMS"
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
    anchored: bool = False  # the manifest was checked against the registry or an expected SHA-256

    @property
    def ok(self) -> bool:
        return self.report.ok

    def to_dict(self) -> dict:
        d = self.report.to_dict()
        d["summary"].update(
            root=self.root,
            release=self.release,
            version=self.version,
            manifest_sha256=self.manifest_sha256,
            bytes=self.bytes,
            anchored=self.anchored,
        )
        return d

    def to_text(self) -> str:
        lines = [f.line() for f in self.report.sorted()]
        what = f"{self.release} ({self.version})" if self.release else self.root
        verdict = (
            f"{len(self.report.errors)} error(s)"
            if not self.ok
            else "intact"
            if self.anchored
            else "internally consistent only (no registry, no --manifest-sha256)"
        )
        lines.append(
            f"{what}: {self.report.files} file(s), {self.bytes / 1e6:.1f} MB checked against {self.against}"
            + (f" (sha256 {self.manifest_sha256})" if self.manifest_sha256 else "")
            + f": {verdict}, {len(self.report.warnings)} warning(s)"
        )
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
        out.report.extend(
            [error("REL030", f"not a valid manifest at {where or '(top)'}: {message} ({SCHEMA})", path=MANIFEST)]
        )
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


def _registry_check(
    ws: Workspace | None, doc: dict, out: FixityReport, expected: str | None, sums: dict[str, str] | None
) -> None:
    """REL035/REL036: the manifest against the one the registry stored for the
    release and against ``expected``; the deposit zip against the one recorded at publication."""
    if expected is not None:
        if expected.lower() != out.manifest_sha256:
            out.report.extend(
                [
                    error(
                        "REL035",
                        f"{MANIFEST} has sha256 {out.manifest_sha256}, expected {expected.lower()}"
                        " (the published one): this is not the published release",
                        path=MANIFEST,
                    )
                ]
            )
        else:
            out.anchored = True
            out.against = f"{MANIFEST} (sha256 as expected)"
    stored = _stored_manifest(ws, doc["release"]) if ws is not None else "there is no registry here"
    if isinstance(stored, str):
        if expected is None:
            out.report.extend(
                [
                    warning(
                        "REL036",
                        f"{stored}: only internal consistency was checked (files against the "
                        f"folder's own {MANIFEST}); give --manifest-sha256 from the release notes",
                        path=MANIFEST,
                    )
                ]
            )
        return
    status, sha, package = stored
    if status == "published" and package is not None:
        zpath, zsize, zsha = package
        name = zpath.removeprefix("packages/")
        if sums is None or name not in sums:
            out.report.extend(
                [
                    warning(
                        "REL036",
                        f"the deposit zip published for {doc['release']} ({zsize} bytes) is not "
                        "in this folder: only the release tree was checked",
                        path=zpath,
                    )
                ]
            )
        elif sums[name] != zsha:
            out.report.extend(
                [error("REL035", f"deposit zip sha256 {sums[name][:12]}…, published {zsha[:12]}…", path=zpath)]
            )
    if sha == out.manifest_sha256:
        out.anchored = True
        return
    if status == "published":
        out.report.extend(
            [
                error(
                    "REL035",
                    f"{MANIFEST} differs from the one published for {doc['release']} (registry sha256 {sha})",
                    path=MANIFEST,
                )
            ]
        )
    else:
        out.report.extend(
            [
                warning(
                    "REL035",
                    f"{MANIFEST} is not the registry's latest build of {doc['release']} "
                    f"(status {status}, registry sha256 {sha})",
                    path=MANIFEST,
                )
            ]
        )


def _stored_manifest(ws: Workspace, name: str) -> tuple[str, str, tuple | None] | str:
    """(status, manifest SHA-256, (zip path, size, SHA-256) or None) of release ``name`` in the
    registry, or why there is none to compare with: no registry (nothing is created), unreachable, or
    no such release built."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from . import db

    if db.sqlite_file_missing(ws):
        return "there is no registry here"
    eng = create_engine(ws.url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            row = c.execute(
                text(
                    "SELECT status, manifest_sha256, package_path, package_size, package_sha256 "
                    "FROM release WHERE name = :n"
                ),
                {"n": name},
            ).first()
    except SQLAlchemyError as e:
        return f"the registry could not be read ({type(getattr(e, 'orig', None) or e).__name__})"
    finally:
        eng.dispose()
    if row is None or not row[1]:
        return f"release {name} is not in this registry"
    return row[0], row[1], (row[2], row[3], row[4]) if row[4] else None


_SUM_LINE = re.compile(r"([0-9a-f]{64})  ([A-Za-z0-9][A-Za-z0-9._-]*)")


def _read_sums(root: Path, present: dict, out: FixityReport) -> dict[str, str] | None:
    """``packages/SHA256SUMS`` (name -> SHA-256 of a file of ``packages/``), or None when there is none;
    REL030 for a malformed one."""
    st = present.get(SUMS)
    if st is None:
        return None
    if not _regular(st):
        out.report.extend([error("REL030", "not a regular file", path=SUMS)])
        return {}
    sums: dict[str, str] = {}
    for n, line in enumerate((root / SUMS).read_bytes().decode("utf-8", "replace").splitlines(), start=1):
        m = _SUM_LINE.fullmatch(line)
        if m is None or m.group(2) in sums or m.group(2) == "SHA256SUMS":
            out.report.extend(
                [
                    error(
                        "REL030",
                        f"line {n} is not '<sha256>  <file name>' of a file of packages/ listed once",
                        path=SUMS,
                    )
                ]
            )
            continue
        sums[m.group(2)] = m.group(1)
    return sums


def verify_release(
    root: str | os.PathLike,
    *,
    ws: Workspace | None = None,
    workers: int | None = None,
    progress: bool = False,
    expected_manifest_sha256: str | None = None,
) -> FixityReport:
    """Check the release folder ``root`` against its manifest, its ``packages/SHA256SUMS`` if any, and
    the registry of ``ws`` or the manifest SHA-256 ``expected_manifest_sha256`` (if given)."""
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
            out.report.extend(
                [error("REL034", "not a regular file (a symbolic link or special file is never followed)", path=path)]
            )
        elif st.st_size != entry["size"]:
            out.report.extend([error("REL032", f"{st.st_size} bytes, manifest says {entry['size']}", path=path)])
        else:
            todo.append((path, entry))
    sums = _read_sums(root, present, out) if SUMS not in listed else None
    published: set[str] = set()  # written at publication, outside the manifest, listed by SHA256SUMS
    if sums is not None:
        published.add(SUMS)
        for name, sha in sorted(sums.items()):
            path = f"packages/{name}"
            st = present.get(path)
            if path in listed:
                out.report.extend([error("REL034", f"listed in both {MANIFEST} and {SUMS}", path=path)])
            elif st is None or not _regular(st):
                out.report.extend([error("REL031", f"listed in {SUMS} but missing or not a regular file", path=path)])
            else:
                published.add(path)
                todo.append((path, {"sha256": sha, "size": st.st_size, "sums": True}))
    for path in sorted(set(present) - set(listed) - published):
        kind = "file" if _regular(present[path]) else "symbolic link or special file"
        out.report.extend([error("REL033", f"{kind} not listed in {MANIFEST}", path=path)])
    out.report.files = len(listed)
    out.bytes = sum(e["size"] for _, e in todo)
    for path, digest, entry in hash_all(root, todo, workers, progress, out.bytes):
        against = SUMS if entry.get("sums") else "manifest"
        if isinstance(digest, OSError):
            out.report.extend([error("REL031", f"could not be read ({digest.strerror or digest})", path=path)])
        elif digest != entry["sha256"]:
            out.report.extend(
                [error("REL032", f"sha256 {digest[:12]}…, {against} says {entry['sha256'][:12]}…", path=path)]
            )
    _registry_check(ws, doc, out, expected_manifest_sha256, sums)
    return out


def _regular(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def hash_all(root: Path | None, todo, workers: int | None, progress: bool, total: int, digest=None):
    """(path, SHA-256, entry) of every file in ``todo``, hashed by threads (hashlib releases the GIL),
    with a progress bar in bytes on stderr when ``progress``. ``digest(path, entry, advance)``: how a
    file is read and hashed when it is not a file under ``root`` (an object of a remote store)."""
    workers = workers or min(8, os.cpu_count() or 1)

    def read(rel, entry, advance=None):
        if digest is not None:
            return digest(rel, entry, advance)
        assert root is not None
        return _sha256(root / rel, advance)

    if not progress:
        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(lambda pe: (pe[0], read(pe[0], pe[1]), pe[1]), todo)
        return
    from .progress import bar

    with bar("verify", total, unit="bytes") as b:

        def one(pe):
            return pe[0], read(pe[0], pe[1], b.advance), pe[1]

        with ThreadPoolExecutor(workers) as pool:
            yield from pool.map(one, todo)
