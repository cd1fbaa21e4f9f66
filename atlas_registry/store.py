"""The content-addressed object store: every file stored once under its SHA-256.

Layout: ``objects/ab/cdef…`` (two-level fan-out). Writes are atomic (temp file in the same
folder, fsync, ``os.replace``), so a kill never leaves a partial object under a final name.
Objects are read-only (mode 0444): release builds hard-link them (:mod:`atlas_registry.export.output`),
so a file of a build and the object it came from are one inode, and neither may change.
The registry table ``stored_object`` records what the registry points at; files present in the
store but not in the table are harmless leftovers of interrupted writes, which ``atlas-registry store
verify`` (:mod:`atlas_registry.store_check`) reports beside missing, damaged or writable objects.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20, *, follow: bool = True, advance=None) -> str:
    """SHA-256 of a file, read in ``chunk``-byte blocks; ``follow=False``: a symbolic link is refused
    (OSError), not followed; ``advance(n)``: called after each block (a progress bar)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | (0 if follow else getattr(os, "O_NOFOLLOW", 0)))
    with open(fd, "rb", buffering=0) as f:
        while block := f.read(chunk):
            h.update(block)
            if advance:
                advance(len(block))
    return h.hexdigest()


OBJECT_MODE = 0o444


def read_regular(path: str | os.PathLike, limit: int, *, truncate: bool = False) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes (with ``truncate``:
    its first ``limit`` bytes, whatever its size).

    Opened without blocking (a named pipe put in its place since the folder was listed cannot hang
    the reader) and checked on the open descriptor; raises ``OSError`` (``EINVAL`` for a special
    file) or ``ValueError`` (too large) before reading anything."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(22, "not a regular file (named pipe, socket or device)")
        if st.st_size > limit and not truncate:
            raise ValueError(f"{st.st_size:,} bytes, more than the {limit:,} allowed")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes, *, fsync: bool = True, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (same-folder temp file, fsync, rename); ``mode``: the
    file's permissions (default: the temporary file's, 0600).

    With ``fsync=False`` the caller promises one :func:`sync` before anything depends on the
    file being on disk (ingest syncs once before its commit instead of once per file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class ObjectStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path_of(self, sha: str) -> Path:
        return self.root / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        return self.path_of(sha).is_file()

    def put(self, data: bytes, sha: str | None = None, *, fsync: bool = True) -> str:
        """Store ``data`` once; returns its SHA-256. Existing objects are not rewritten."""
        sha = sha or sha256_bytes(data)
        dest = self.path_of(sha)
        if not dest.exists():
            atomic_write(dest, data, fsync=fsync, mode=OBJECT_MODE)
        return sha

    def adopt(self, path: str | os.PathLike, sha: str) -> None:
        """Move the file ``path``, which the caller wrote and knows to hold ``sha``, into the store
        (a rename on the same file system; an existing object is kept and ``path`` removed)."""
        dest = self.path_of(sha)
        if dest.exists():
            os.unlink(path)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path, OBJECT_MODE)
        os.replace(path, dest)

    @staticmethod
    def sync() -> None:
        """Flush every object written with ``fsync=False`` to disk."""
        os.sync()

    def get(self, sha: str) -> bytes:
        data = self.path_of(sha).read_bytes()
        if sha256_bytes(data) != sha:
            raise OSError(f"object {sha} is corrupt in the store")
        return data

    def list(self) -> list[str]:
        """Every object in the store (sorted SHA-256 hex), ignoring temp files."""
        if not self.root.exists():
            return []
        return sorted(
            p.parent.name + p.name for p in self.root.glob("??/*") if p.is_file() and not p.name.startswith(".tmp-")
        )

    def remove(self, sha: str) -> None:
        self.path_of(sha).unlink(missing_ok=True)
