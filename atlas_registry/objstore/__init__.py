"""Where the objects live: a folder (the default, ``HOME/objects``) or S3-compatible object storage.

``--store URL`` / ``ATLAS_REGISTRY_STORE`` chooses: a folder path (or ``file:///path``), or
``s3://BUCKET/PREFIX`` (endpoint and credentials from the standard AWS variables and files, never
from the URL). :func:`open_store` gives the :class:`~.base.Store` of a workspace; code that needs a
local file of an object uses :func:`~.base.local_objects` (a remote store's objects are fetched
into a temporary folder, checked, then removed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from .base import StagedStore, Store, key_of, local_objects

if TYPE_CHECKING:
    from ..config import Workspace

__all__ = ["Store", "StagedStore", "key_of", "local_objects", "open_store", "parse_store_url"]


def parse_store_url(url: str) -> tuple[str, str, str]:
    """``("folder", path, "")`` or ``("s3", bucket, prefix)``; ``STO006`` (usage) for anything else."""
    from urllib.parse import urlsplit

    text = url.strip()
    if "://" not in text:
        return "folder", text, ""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError("STO006", "a file:// store URL names a local folder: file:///path/to/objects")
        return "folder", parts.path, ""
    if scheme != "s3":
        raise UsageError("STO006", f"store URL scheme {scheme!r} is not known: use a folder or s3://bucket/prefix")
    if "@" in parts.netloc or parts.password or parts.username:
        raise UsageError(
            "STO006",
            "credentials do not belong in the store URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or a profile in ~/.aws/credentials",
        )
    bucket = parts.netloc
    if not bucket or not all(c.isalnum() or c in "-." for c in bucket) or parts.query or parts.fragment:
        raise UsageError("STO006", "an S3 store URL is s3://BUCKET/PREFIX (a bucket name, no query)")
    return "s3", bucket, parts.path.strip("/")


def open_store(ws: Workspace) -> Store:
    """The object store of ``ws``."""
    kind, where, prefix = parse_store_url(ws.store_url)
    if kind == "s3":
        from .s3 import S3Store

        return S3Store(where, prefix)
    from .folder import FolderStore

    return FolderStore(Path(where))
