"""What a delivery holds, read safely: every regular file under the delivery folder, by relative path.

A symbolic link, FIFO, socket or device anywhere in the delivery is refused (``INTK002``) before any
file is opened: intake reads only regular files that really are in the folder it was given.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from ..errors import AtlasError

MAP_NAME = "MAP.csv"


def files(root: Path) -> list[str]:
    """Every regular file under ``root`` as a POSIX relative path, sorted; refuses special files."""
    root = Path(root)
    try:
        st = os.lstat(root)
    except OSError as e:
        raise AtlasError("INTK001", f"cannot read the delivery ({e.strerror or e})", path=str(root)) from None
    if not stat.S_ISDIR(st.st_mode):
        raise AtlasError("INTK001", "the delivery is not a folder", path=str(root))
    out: list[str] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError as e:
            raise AtlasError("INTK001", f"cannot list a folder ({e.strerror or e})", path=str(d)) from None
        for entry in entries:
            mode = entry.stat(follow_symlinks=False).st_mode
            rel = Path(entry.path).relative_to(root).as_posix()
            if stat.S_ISLNK(mode):
                raise AtlasError(
                    "INTK002", "a symbolic link in the delivery (intake reads regular files only)", path=rel
                )
            if stat.S_ISDIR(mode):
                stack.append(Path(entry.path))
            elif stat.S_ISREG(mode):
                out.append(rel)
            else:
                kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
                raise AtlasError("INTK002", f"a {kind} in the delivery (intake reads regular files only)", path=rel)
    return sorted(out)


def safe_relpath(text: str, where: str) -> str:
    """A MAP.csv path as a clean POSIX relative path; ``..``, absolute paths and backslashes refused."""
    t = text.strip()
    if "\\" in t or "\0" in t:
        raise AtlasError("INTK002", f"path {t!r} holds a backslash or NUL", path=where)
    p = PurePosixPath(t)
    if p.is_absolute() or any(part == ".." for part in p.parts) or not p.parts:
        raise AtlasError("INTK002", f"path {t!r} is absolute or climbs out of the delivery (..)", path=where)
    return p.as_posix()


def is_dicom(path: Path) -> bool:
    """A DICOM Part 10 file: ``DICM`` after the 128-byte preamble."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"
