"""Where the exporters put their files: :class:`Output` writes under the build folder and records a
manifest entry per file; :class:`Cache` keeps derived files between builds (keyed by their inputs).

Files of the object store are hard-linked into the build (a copy where the build folder is on
another file system); their SHA-256 is the object's name, so they are not hashed again. Every file of
a build is read-only (mode 0444): a release does not change after it is built, and a linked file
shares its inode with the store's object (also 0444).

A build may start from the tree of an earlier build (``existing``: :func:`scan_tree` of it): then a
file that already holds the right bytes is left as it is — a derived file whose content equals the
new bytes (compared, not assumed), a link that already is the store object's inode — and only what
differs is replaced (never written through: a file of the tree may be a link to a store object).
:meth:`Output.prune` then removes what the new build does not list.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..objstore import Store
from ..store import OBJECT_MODE, sha256_bytes
from .determinism import FILE_MODE, json_bytes


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # POSIX, relative to the build folder
    size: int
    sha256: str
    archive: str  # icpsr | bids | parquet | packages
    scan: str | None  # native scan code (for release_item.timepoint_id); None for release-level files
    source_revision_id: int | None


def try_link(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` (a read-only file: a store object or a file of this build) to ``dst``;
    False where links are not possible (another file system, a file system without links)."""
    try:
        if os.stat(src).st_mode & 0o777 != OBJECT_MODE:  # an object stored before objects were read-only
            os.chmod(src, OBJECT_MODE)
        os.link(src, dst)
        return True
    except OSError as e:
        if e.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            return False
        raise


def copy_file(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` (read-only) and return the bytes copied: ``copy_file_range`` (an
    in-kernel copy, a shared extent on file systems with reflinks), else ``shutil.copyfile``."""
    try:
        with open(src, "rb") as f, open(dst, "wb") as g:
            os.fchmod(g.fileno(), FILE_MODE)
            size = os.fstat(f.fileno()).st_size
            done = 0
            while done < size:
                n = os.copy_file_range(f.fileno(), g.fileno(), size - done)
                if n == 0:
                    break
                done += n
            return done
    except (AttributeError, OSError):
        shutil.copyfile(src, dst)
        os.chmod(dst, FILE_MODE)
        return os.path.getsize(dst)


class Cache:
    """A cache of derived bytes under ``root`` (``None``: no cache). ``key`` is a SHA-256 of everything
    the bytes depend on (recipe version and input hashes); an entry holds its own SHA-256, checked on
    every read, so a damaged entry is recomputed rather than published."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        assert self.root is not None  # get and put check first
        return self.root / key[:2] / key[2:]

    def get(self, key: str) -> bytes | None:
        try:
            raw = self._path(key).read_bytes() if self.root is not None else b""
        except FileNotFoundError:
            raw = b""
        sha, data = raw[:64].decode("ascii", "replace"), raw[65:]
        if raw and sha256_bytes(data) == sha:
            self.hits += 1
            return data
        self.misses += 1
        return None

    def put(self, key: str, data: bytes) -> None:
        if self.root is None:
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=p.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(sha256_bytes(data).encode("ascii") + b"\n" + data)
        os.replace(tmp, p)

    def get_or_make(self, key: str, make) -> bytes:
        data = self.get(key)
        if data is None:
            data = make()
            self.put(key, data)
        return data


def scan_tree(root: Path) -> dict[str, os.stat_result] | None:
    """Every regular file below ``root`` (relative POSIX path -> ``lstat``), or None when the tree
    holds a symbolic link or special file anywhere (such a tree is not built upon: it is replaced)."""
    found: dict[str, os.stat_result] = {}
    stack = [("", os.fspath(root))]
    isdir, isreg = stat.S_ISDIR, stat.S_ISREG
    while stack:
        rel, d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):  # from the directory entry: no stat
                    stack.append((f"{rel}{e.name}/", e.path))
                    continue
                st = e.stat(follow_symlinks=False)
                if isreg(st.st_mode):
                    found[rel + e.name] = st
                elif not isdir(st.st_mode):
                    return None
    return found


class Output:
    """The build folder of one release: writes files and collects their manifest entries."""

    def __init__(
        self,
        out: Path,
        store: Store,
        cache: Cache,
        workers: int | None = None,
        existing: dict[str, os.stat_result] | None = None,
    ):
        self.out = Path(out)
        self.store = store
        self.cache = cache
        self.existing = existing or {}  # files of an earlier build in ``out`` (scan_tree)
        self.reused = 0
        self.entries: list[ManifestEntry] = []
        # Two pools, so that computing (face checks, union masks: numpy and zlib release the GIL) and
        # copying (waiting on the disk) overlap instead of queueing behind each other.
        self._cpu = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2)
        self._io = ThreadPoolExecutor(max_workers=4)
        self._pending: list = []
        self._copies: list[tuple[Path, Path, int]] = []
        self._dirs: set[Path] = set()
        self._links = True  # until a link fails: then files are copied

    def path(self, rel: str) -> Path:
        return self.out / rel

    def _parent(self, p: Path) -> None:
        if p.parent not in self._dirs:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(p.parent)

    def _record(self, rel: str, size: int, sha: str, archive: str, scan: str | None, rev: int | None) -> ManifestEntry:
        e = ManifestEntry(rel, size, sha, archive, scan, rev)
        self.entries.append(e)
        return e

    def _same_bytes(self, rel: str, p: Path, data: bytes) -> bool:
        """Whether the earlier build's file at ``rel`` holds ``data`` (else it is removed)."""
        st = self.existing.get(rel)
        if st is None:
            return False
        try:
            if st.st_size == len(data):
                with open(p, "rb") as f:
                    if f.read(len(data) + 1) == data:
                        self.reused += 1
                        return True
            os.unlink(p)
        except FileNotFoundError:
            pass
        return False

    def write(
        self, rel: str, data: bytes, *, archive: str, scan: str | None = None, rev: int | None = None
    ) -> ManifestEntry:
        p = self.path(rel)
        if self._same_bytes(rel, p, data):
            return self._record(rel, len(data), sha256_bytes(data), archive, scan, rev)
        self._parent(p)
        with open(p, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
        return self._record(rel, len(data), sha256_bytes(data), archive, scan, rev)

    def write_json(self, rel: str, obj, **kw) -> ManifestEntry:
        return self.write(rel, json_bytes(obj), **kw)

    def write_text(self, rel: str, text: str, **kw) -> ManifestEntry:
        return self.write(rel, text.encode("utf-8"), **kw)

    def copy_object(
        self, rel: str, sha: str, size: int, *, archive: str, scan: str | None, rev: int | None
    ) -> ManifestEntry:
        """Put the store object ``sha`` at ``rel`` (:meth:`link`). Queued and run together by
        :meth:`wait` (after the small files and folders are written)."""
        p = self.path(rel)
        self._parent(p)
        self._copies.append((self.object_path(sha), p, size))
        return self._record(rel, size, sha, archive, scan, rev)

    def object_path(self, sha: str) -> Path:
        """A local file of the store object ``sha``: the folder store's own, or (a remote store seen
        through :func:`~atlas_registry.objstore.local_objects`) the copy fetched for this build."""
        path = self.store.local_path(sha)
        if path is None:
            raise TypeError(f"{self.store.url}: a remote store must be staged (objstore.local_objects)")
        return path

    def link(self, src: Path, dst: Path, size: int) -> None:
        """``dst`` becomes ``src`` (``size`` bytes, checked): a hard link, made now, or, once links have
        failed, a copy run in the background (:meth:`wait`)."""
        rel = dst.relative_to(self.out).as_posix() if self.existing else ""
        if rel in self.existing:  # an earlier build's file: kept if it is already ``src``'s inode
            try:
                s = os.stat(src)
                if (s.st_ino, s.st_dev) == (self.existing[rel].st_ino, self.existing[rel].st_dev):
                    self.reused += 1
                    return
                os.unlink(dst)
            except FileNotFoundError:
                pass
        if self._links and try_link(src, dst):
            got = os.stat(dst).st_size
        else:
            self._links = False
            self.submit(self._copy, src, dst, size, io=True)
            return
        if got != size:
            raise OSError(f"{src.name} has {got} bytes, the registry says {size}")

    @staticmethod
    def _copy(src: Path, dst: Path, size: int) -> None:
        got = copy_file(src, dst)
        if got != size:
            raise OSError(f"{src.name} has {got} bytes, the registry says {size}")

    def record_file(
        self, rel: str, size: int, sha: str, *, archive: str, scan: str | None = None, rev: int | None = None
    ) -> ManifestEntry:
        """Record a file something else wrote under the build folder, whose size and SHA-256 it knows."""
        p = self.path(rel)
        os.chmod(p, FILE_MODE)
        if p.stat().st_size != size:
            raise OSError(f"{rel}: {p.stat().st_size} bytes on disk, {size} written")
        return self._record(rel, size, sha, archive, scan, rev)

    def submit(self, fn, *args, io: bool = False):
        """Run ``fn(*args)`` in the background (``io``: a task that mostly waits on the disk)."""
        fut = (self._io if io else self._cpu).submit(fn, *args)
        self._pending.append((fut, io))
        return fut

    def wait(self, *, files: bool = False) -> None:
        """Put the queued objects in place (largest first) and wait for every background task, or
        (``files``) only for the copies (``io`` tasks): the CPU tasks — checks, union masks — go on
        meanwhile. The first failure cancels what has not started and is raised."""
        copies, self._copies = self._copies, []
        for src, dst, size in sorted(copies, key=lambda c: -c[2]):
            self.link(src, dst, size)
        pending = [p for p in self._pending if p[1]] if files else self._pending
        self._pending = [p for p in self._pending if not p[1]] if files else []
        try:
            for fut, _ in pending:
                fut.result()
        except BaseException:
            for fut, _ in pending + self._pending:
                fut.cancel()
            raise

    def close(self, *, cancel: bool = False) -> None:
        """Finish (or, with ``cancel``, abandon) the background work and stop the worker threads."""
        if cancel:
            self._copies.clear()
            for fut, _ in self._pending:
                fut.cancel()
            self._pending.clear()
        try:
            self.wait()
        finally:
            self._cpu.shutdown(wait=True, cancel_futures=cancel)
            self._io.shutdown(wait=True, cancel_futures=cancel)

    def prune(self, keep: set[str]) -> int:
        """Remove the earlier build's files that are not in ``keep`` (relative paths), then the folders
        left empty; returns how many files were removed."""
        gone = [rel for rel in self.existing if rel not in keep]
        dirs = set()
        for rel in gone:
            try:
                os.unlink(self.out / rel)
            except FileNotFoundError:
                pass
            parent = rel.rpartition("/")[0]
            while parent:
                dirs.add(parent)
                parent = parent.rpartition("/")[0]
        for d in sorted(dirs, key=lambda d: -d.count("/")):
            try:
                os.rmdir(self.out / d)
            except OSError:  # not empty
                pass
        return len(gone)

    def archive_entries(self, archive: str) -> list[ManifestEntry]:
        return sorted((e for e in self.entries if e.archive == archive), key=lambda e: e.path)
