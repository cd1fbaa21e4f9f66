"""The folder store: objects as read-only files ``ROOT/ab/cdef…`` (the store of one machine, or of a
folder every site mounts). Its writes and layout are :class:`atlas_registry.store.ObjectStore`'s."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from ..store import ObjectStore
from .base import SHA_RE, Store, link_or_copy


class FolderStore(ObjectStore, Store):
    """:class:`~atlas_registry.store.ObjectStore` with the rest of the :class:`~.base.Store` interface."""

    remote = False
    parallel = 4

    def __init__(self, root: str | os.PathLike):
        super().__init__(root)
        self.url = str(self.root)

    def key(self, sha: str) -> str:
        return os.path.relpath(self.path_of(sha), self.root)

    def size(self, sha: str) -> int | None:
        try:
            st = self.path_of(sha).lstat()
        except FileNotFoundError:
            return None
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def read(self, sha: str) -> bytes:
        return self.path_of(sha).read_bytes()

    def inventory(self) -> dict[str, int]:
        found: dict[str, int] = {}
        if not self.root.exists():
            return found
        for p in self.root.glob("??/*"):
            sha = p.parent.name + p.name
            if p.name.startswith(".tmp-") or not SHA_RE.match(sha):
                continue
            st = p.lstat()
            if stat.S_ISREG(st.st_mode):
                found[sha] = st.st_size
        return found

    def hash(self, sha: str, advance: Callable[[int], object] | None = None) -> str | OSError:
        from ..store import sha256_file

        try:
            return sha256_file(self.path_of(sha), 1 << 20, follow=False, advance=advance)
        except OSError as e:
            return e

    def fetch(self, sha: str, dest: Path) -> int:
        """A hard link when possible (objects are never rewritten), else a copy."""
        return link_or_copy(self.path_of(sha), dest)

    def local_path(self, sha: str) -> Path:
        return self.path_of(sha)

    def mode(self, sha: str) -> int | None:
        try:
            return stat.S_IMODE(self.path_of(sha).lstat().st_mode)
        except FileNotFoundError:
            return None
