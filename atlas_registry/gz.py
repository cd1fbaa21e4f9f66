"""Fast gzip inflation and CRC-32: ISA-L (:mod:`isal`) where it is installed, else the standard library.

Reading is where the time of validation, ingest and release builds goes (every T1 is inflated to be
checked); ISA-L inflates the same streams about twice as fast as zlib and computes CRC-32 several
times faster, with the same results and the same errors (``EOFError`` for a truncated stream,
``gzip.BadGzipFile`` for a damaged one). Compression stays with :mod:`zlib`: the bytes this package
writes must not depend on which library is installed.
"""

from __future__ import annotations

import zlib

try:
    from isal import igzip as _gzip
    from isal.isal_zlib import crc32 as _crc32
    from isal.isal_zlib import error as _isal_error

    #: What :func:`decompress` raises for a truncated or damaged stream.
    ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, _isal_error)  # type: ignore[assignment]  # isal stub: an instance
except ImportError:  # pragma: no cover - isal is a dependency; this keeps other platforms working
    import gzip as _gzip  # type: ignore[no-redef]  # the fallback of the import above

    _crc32 = zlib.crc32
    ERRORS = (OSError, EOFError, zlib.error)

__all__ = ["ERRORS", "crc32", "decompress"]


def decompress(data: bytes) -> bytes:
    """Inflate a gzip stream (all members), like :func:`gzip.decompress`."""
    return _gzip.decompress(data)


def crc32(data, value: int = 0) -> int:
    """The CRC-32 of ``data``, continuing from ``value`` (as :func:`zlib.crc32`)."""
    return _crc32(data, value)
