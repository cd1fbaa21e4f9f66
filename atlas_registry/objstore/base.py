"""What every object store offers: the content-addressed interface of :mod:`atlas_registry.objstore`.

An object is named by the SHA-256 of its bytes (64 lower-case hex digits) and is never rewritten:
``put`` of an object that is already there stores nothing. Keys have the folder store's layout,
``ab/cdef…`` (two-level fan-out), below the store's root (a folder, or a bucket and prefix).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ..errors import AtlasError

SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def key_of(sha: str) -> str:
    """The object's name below the store's root: ``ab/cdef…``."""
    return f"{sha[:2]}/{sha[2:]}"


def link_or_copy(src: Path, dest: Path) -> int:
    """``dest`` becomes ``src`` (a read-only object): a hard link, else a copy; returns its size."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return Path(dest).stat().st_size


class Store(ABC):
    """A content-addressed object store (a folder, or S3-compatible object storage)."""

    #: how the store is named in messages and reports (never with credentials)
    url: str
    #: True for a store that is not a local folder (no hard links, no local paths)
    remote: bool = False
    #: threads worth running at once when many objects are written or read
    parallel: int = 4

    def key(self, sha: str) -> str:
        return key_of(sha)

    @abstractmethod
    def has(self, sha: str) -> bool:
        """Whether the object is in the store."""

    @abstractmethod
    def size(self, sha: str) -> int | None:
        """The object's size in bytes, None when it is not in the store."""

    @abstractmethod
    def put(self, data: bytes, sha: str | None = None, *, fsync: bool = True) -> str:
        """Store ``data`` once (an object that is there is not rewritten); returns its SHA-256."""

    def create(self, data: bytes, sha: str) -> bool:
        """Store ``data`` as ``sha`` unless it is there; True when this call wrote it."""
        if self.has(sha):
            return False
        self.put(data, sha, fsync=False)
        return True

    @abstractmethod
    def adopt(self, path: str | os.PathLike, sha: str) -> None:
        """Move the file ``path``, which the caller wrote and knows to hold ``sha``, into the store."""

    @abstractmethod
    def read(self, sha: str) -> bytes:
        """The object's bytes as stored, unchecked (FileNotFoundError when it is not there)."""

    def get(self, sha: str) -> bytes:
        """The object's bytes, checked against its name (OSError when they differ)."""
        from ..store import sha256_bytes

        data = self.read(sha)
        if sha256_bytes(data) != sha:
            raise OSError(f"object {sha} is corrupt in the store")
        return data

    @abstractmethod
    def inventory(self) -> dict[str, int]:
        """Every object in the store: SHA-256 -> size in bytes."""

    def list(self) -> list[str]:
        """Every object in the store (sorted SHA-256 hex)."""
        return sorted(self.inventory())

    @abstractmethod
    def remove(self, sha: str) -> None:
        """Delete the object (nothing when it is not there)."""

    def sync(self) -> None:
        """Make every object written with ``fsync=False`` durable (a no-op where puts are)."""
        return None

    @abstractmethod
    def hash(self, sha: str, advance: Callable[[int], object] | None = None) -> str | OSError:
        """The SHA-256 of the object's bytes as read back now, or the OSError that kept them from
        being read; ``advance(n)`` after each block read."""

    @abstractmethod
    def fetch(self, sha: str, dest: Path) -> int:
        """Put the object's bytes at ``dest`` (a new file; a hard link where the store allows it)
        and return its size; the bytes are checked against ``sha`` when they are copied."""

    def local_path(self, sha: str) -> Path | None:
        """A local file holding the object (the folder store's own file), None for a remote store."""
        return None

    def mode(self, sha: str) -> int | None:
        """The object's permission bits where the store has them (the folder store), else None."""
        return None


class StagedStore(Store):
    """A remote store seen through a local folder: objects are fetched (checked) on first use into
    ``folder``, so that code which needs a file — hard links of a release build, readers that open
    paths — works unchanged. Everything else is the remote store's."""

    def __init__(self, remote: Store, folder: Path):
        self.remote_store = remote
        self.folder = Path(folder)
        self.url = remote.url
        self.remote = True
        self.parallel = remote.parallel
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def local_path(self, sha: str) -> Path:
        from ..store import OBJECT_MODE

        dest = self.folder / key_of(sha)
        if dest.is_file():
            return dest
        with self._guard:
            lock = self._locks.setdefault(sha, threading.Lock())
        with lock:
            if not dest.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.remote_store.fetch(sha, dest)
                except FileNotFoundError:
                    raise AtlasError(
                        "STO001", f"missing from the store {self.url} (see `store verify`)", path=key_of(sha)
                    ) from None
                os.chmod(dest, OBJECT_MODE)
        return dest

    def prefetch(self, shas: Iterable[str], workers: int | None = None) -> None:
        """Fetch many objects at once (threads: the waiting is on the network)."""
        todo = sorted(set(shas))
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=workers or self.parallel) as pool:
            list(pool.map(self.local_path, todo))

    def has(self, sha: str) -> bool:
        return (self.folder / key_of(sha)).is_file() or self.remote_store.has(sha)

    def size(self, sha: str) -> int | None:
        return self.remote_store.size(sha)

    def put(self, data: bytes, sha: str | None = None, *, fsync: bool = True) -> str:
        return self.remote_store.put(data, sha, fsync=fsync)

    def adopt(self, path: str | os.PathLike, sha: str) -> None:
        self.remote_store.adopt(path, sha)

    def read(self, sha: str) -> bytes:
        return self.local_path(sha).read_bytes()

    def inventory(self) -> dict[str, int]:
        return self.remote_store.inventory()

    def remove(self, sha: str) -> None:
        self.remote_store.remove(sha)

    def hash(self, sha: str, advance: Callable[[int], object] | None = None) -> str | OSError:
        return self.remote_store.hash(sha, advance)

    def fetch(self, sha: str, dest: Path) -> int:
        return link_or_copy(self.local_path(sha), dest)


@contextmanager
def local_objects(store: Store, parent: str | os.PathLike | None = None, shas: Iterable[str] = ()) -> Iterator[Store]:
    """``store`` itself when it is a folder; else a :class:`StagedStore` over a temporary folder in
    ``parent`` (fetched in parallel: ``shas``, then whatever is asked for), removed afterwards."""
    if not store.remote:
        yield store
        return
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".objects-", dir=parent)
    try:
        staged = StagedStore(store, Path(tmp))
        staged.prefetch(shas)
        yield staged
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
