"""Where the exporters put their files: :class:`Output` writes under the build folder and records a
manifest entry per file; :class:`Cache` keeps derived files between builds (keyed by their inputs).

Files of the object store are copied byte for byte (``copy_file_range``: an in-kernel copy on Linux);
their SHA-256 is the object's name, so they are not hashed again. Every file gets mode 0644.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..store import ObjectStore, sha256_bytes, sha256_file
from .determinism import FILE_MODE, json_bytes


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # POSIX, relative to the build folder
    size: int
    sha256: str
    archive: str  # icpsr | bids | parquet | packages
    scan: str | None  # native scan code (for release_item.timepoint_id); None for release-level files
    source_revision_id: int | None


def copy_file(src: Path, dst: Path) -> int:
    """Copy ``src`` to ``dst`` (mode 0644) and return the bytes copied: ``copy_file_range`` (an
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


class Output:
    """The build folder of one release: writes files and collects their manifest entries."""

    def __init__(self, out: Path, store: ObjectStore, cache: Cache, workers: int | None = None):
        self.out = Path(out)
        self.store = store
        self.cache = cache
        self.entries: list[ManifestEntry] = []
        # Two pools, so that computing (face checks, union masks: numpy and zlib release the GIL) and
        # copying (waiting on the disk) overlap instead of queueing behind each other.
        self._cpu = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2)
        self._io = ThreadPoolExecutor(max_workers=4)
        self._pending: list = []
        self._copies: list[tuple[Path, Path, int]] = []
        self._dirs: set[Path] = set()

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

    def write(self, rel: str, data: bytes, *, archive: str, scan: str | None = None,
              rev: int | None = None) -> ManifestEntry:
        p = self.path(rel)
        self._parent(p)
        with open(p, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
        return self._record(rel, len(data), sha256_bytes(data), archive, scan, rev)

    def write_json(self, rel: str, obj, **kw) -> ManifestEntry:
        return self.write(rel, json_bytes(obj), **kw)

    def write_text(self, rel: str, text: str, **kw) -> ManifestEntry:
        return self.write(rel, text.encode("utf-8"), **kw)

    def copy_object(self, rel: str, sha: str, size: int, *, archive: str, scan: str | None,
                    rev: int | None) -> ManifestEntry:
        """Copy the store object ``sha`` to ``rel``. Copies are queued and run together by
        :meth:`wait` (in parallel, after the small files and folders are written: metadata
        operations crawl while large files stream to the same disk)."""
        p = self.path(rel)
        self._parent(p)
        self._copies.append((self.store.path_of(sha), p, size))
        return self._record(rel, size, sha, archive, scan, rev)

    @staticmethod
    def _copy(src: Path, dst: Path, size: int) -> None:
        got = copy_file(src, dst)
        if got != size:
            raise OSError(f"object {src.name} has {got} bytes, the registry says {size}")

    def add_file(self, rel: str, *, archive: str, scan: str | None = None, rev: int | None = None) -> ManifestEntry:
        """Record a file something else wrote under the build folder (hashes it)."""
        p = self.path(rel)
        os.chmod(p, FILE_MODE)
        return self._record(rel, p.stat().st_size, sha256_file(p), archive, scan, rev)

    def submit(self, fn, *args, io: bool = False):
        """Run ``fn(*args)`` in the background (``io``: a task that mostly waits on the disk)."""
        fut = (self._io if io else self._cpu).submit(fn, *args)
        self._pending.append(fut)
        return fut

    def wait(self) -> None:
        """Run the queued copies (largest first) and wait for every background task; the first failure
        cancels what has not started and is raised."""
        copies, self._copies = self._copies, []
        for src, dst, size in sorted(copies, key=lambda c: -c[2]):
            self._pending.append(self._io.submit(self._copy, src, dst, size))
        pending, self._pending = self._pending, []
        try:
            for fut in pending:
                fut.result()
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise

    def close(self, *, cancel: bool = False) -> None:
        """Finish (or, with ``cancel``, abandon) the background work and stop the worker threads."""
        if cancel:
            self._copies.clear()
            for fut in self._pending:
                fut.cancel()
            self._pending.clear()
        try:
            self.wait()
        finally:
            self._cpu.shutdown(wait=True, cancel_futures=cancel)
            self._io.shutdown(wait=True, cancel_futures=cancel)

    def archive_entries(self, archive: str) -> list[ManifestEntry]:
        return sorted((e for e in self.entries if e.archive == archive), key=lambda e: e.path)
