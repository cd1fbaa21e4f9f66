"""MAP.csv: the curator's description of a delivery, one row per file role (schemas/intake-map.schema.json).

Rows are grouped by (subject, session) into :class:`SessionMap`: the ``t1`` row (exactly one) with
the scan's columns, the ``lesion``/``lesions`` rows, and ``skip`` rows. Every problem is ``INTK003``
naming MAP.csv and its line; paths are checked for ``..`` and absolute names (``INTK002``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .. import metadata
from ..errors import AtlasError
from .delivery import safe_relpath

SCHEMA = "intake-map.schema.json"


@dataclass
class Row:
    line: int
    cells: dict[str, str]

    def get(self, key: str) -> str:
        return self.cells.get(key, "")


@dataclass
class SessionMap:
    subject: str
    session: str
    t1: Row | None = None
    lesions: list[Row] = field(default_factory=list)
    skips: list[Row] = field(default_factory=list)


def columns() -> list[str]:
    return list(metadata.load_schema(SCHEMA)["properties"])


def read(path: Path, label: str = "MAP.csv") -> dict[tuple[str, str], SessionMap]:
    """The sessions of MAP.csv by (subject, session), in file order."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AtlasError("INTK003", f"cannot read MAP.csv ({e})", path=label) from None
    numbered = [(n, r) for n, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not numbered:
        raise AtlasError("INTK003", "MAP.csv is empty", path=label)
    (_, header), body = numbered[0], numbered[1:]
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in columns()]
    if unknown:
        raise AtlasError(
            "INTK003",
            f"unknown column(s) {', '.join(map(repr, unknown))} (columns: {', '.join(columns())})",
            path=label,
        )
    out: dict[tuple[str, str], SessionMap] = {}
    for n, r in body:
        if len(r) > len(header):
            raise AtlasError("INTK003", f"line {n}: more cells than columns", path=label)
        cells = {h: c.strip() for h, c in zip(header, r, strict=False) if c.strip() != ""}
        where = f"{label} line {n}"
        problem = metadata.schema_problem(cells, SCHEMA)
        if problem:
            raise AtlasError("INTK003", f"line {n}: {problem[0] or 'row'}: {problem[1]}", path=label)
        if "path" in cells:
            cells["path"] = safe_relpath(cells["path"], where)
        row = Row(n, cells)
        key = (cells["subject"], cells["session"])
        sm = out.setdefault(key, SessionMap(*key))
        role = cells["role"]
        if role == "t1":
            if sm.t1 is not None:
                raise AtlasError(
                    "INTK003",
                    f"line {n}: a second t1 row for subject {key[0]!r} session {key[1]!r} (first on line {sm.t1.line})",
                    path=label,
                )
            sm.t1 = row
        elif role in ("lesion", "lesions"):
            if "path" not in cells:
                raise AtlasError("INTK003", f"line {n}: a {role} row needs a path", path=label)
            sm.lesions.append(row)
        else:
            if "path" not in cells:
                raise AtlasError("INTK003", f"line {n}: a skip row needs a path", path=label)
            sm.skips.append(row)
    for sm in out.values():
        if sm.t1 is None:
            first = (sm.lesions + sm.skips)[0].line
            raise AtlasError(
                "INTK003", f"line {first}: subject {sm.subject!r} session {sm.session!r} has no t1 row", path=label
            )
        kinds = {r.get("role") for r in sm.lesions}
        if kinds == {"lesion", "lesions"}:
            raise AtlasError(
                "INTK003",
                f"line {sm.lesions[0].line}: subject {sm.subject!r} session {sm.session!r} "
                "mixes lesion and lesions rows",
                path=label,
            )
    return out
