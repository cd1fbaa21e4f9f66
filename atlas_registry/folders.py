"""Finished folders put in place whole: a reader sees the old folder or the new one, never a mix.

Release builds, reports, intake and standardization write into a temporary folder beside the
destination and call :func:`swap_in` once everything is written; a failure or a kill before that
leaves the destination as it was (and at most a hidden temporary folder beside it)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished folder ``tmp`` to ``out``. An existing ``out`` (the caller has checked
    that it may be replaced) is renamed aside first and removed afterwards; an empty one is
    simply replaced. ``tmp`` and ``out`` must be on the same file system (same parent folder)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)  # replaces an empty folder, or creates out
