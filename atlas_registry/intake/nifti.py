"""A delivery of NIfTI images and masks under the site's own names, mapped by MAP.csv.

Every t1 row names its image (``.nii``/``.nii.gz``); a JSON sidecar beside it (same stem) is read for
the allow-listed acquisition parameters only. Every lesion/lesions row names a mask (``.nii``,
``.nii.gz`` or MRIcron ``.voi``) on the T1's grid. Every other file must be named by a skip row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .. import niio
from ..errors import AtlasError
from .build import LesionIn, Loaded, ScanIn, allowed_sidecar, components, on_grid
from .mapfile import Row, SessionMap

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".voi")


def natural(text: str) -> tuple:
    """A sort key that puts ``ses2`` before ``ses10``."""
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text))


def sidecar_of(relpath: str) -> str:
    for suf in (".nii.gz", ".nii"):
        if relpath.endswith(suf):
            return relpath[: -len(suf)] + ".json"
    return relpath + ".json"


def load_image(root: Path, rel: str):
    try:
        return niio.load(root / rel)
    except AtlasError as e:
        raise AtlasError("INTK008" if e.code == "IMG001" else e.code, str(e.args[0]), path=rel) from None


def read_sidecar(root: Path, rel: str) -> dict:
    try:
        obj = json.loads((root / rel).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AtlasError("INTK008", f"the JSON sidecar cannot be read ({e})", path=rel) from None
    if not isinstance(obj, dict):
        raise AtlasError("INTK008", "the JSON sidecar is not an object", path=rel)
    return obj


def load_lesions(root: Path, rows: list[Row], t1, paths: dict[int, str] | None = None) -> list[LesionIn]:
    """The masks of lesion/lesions rows on the T1's grid."""
    out: list[LesionIn] = []
    for r in rows:
        rel = r.get("path")
        mask = on_grid(load_image(root, rel), t1, rel)
        if r.get("role") == "lesions":
            out.extend(LesionIn(part, rel, None, r) for part in components(mask))
        else:
            out.append(LesionIn(mask, rel, int(r.get("lesion")) if r.get("lesion") else None, r))
    return out


def plan(
    root: Path, files: list[str], sessions: dict[tuple[str, str], SessionMap], map_rel: str | None
) -> list[ScanIn]:
    present = set(files)
    used: set[str] = set()
    scans = []
    for (subject, session), sm in sessions.items():
        assert sm.t1 is not None  # mapfile.read refuses a session without a t1 row
        t1_rel = sm.t1.get("path")
        if not t1_rel:
            raise AtlasError("INTK003", f"line {sm.t1.line}: a t1 row of a NIfTI delivery needs a path", path="MAP.csv")
        for r in [sm.t1, *sm.lesions, *sm.skips]:
            rel = r.get("path")
            if rel not in present:
                raise AtlasError(
                    "INTK004",
                    f"MAP.csv line {r.line} (subject {subject!r} session {session!r}): no such file in the delivery",
                    path=rel,
                )
            used.add(rel)
        side = sidecar_of(t1_rel)
        if side in present:
            used.add(side)
        scans.append(
            ScanIn(
                subject,
                session,
                natural(session),
                t1_rel,
                sm.t1,
                _loader(root, t1_rel, side if side in present else None, sm),
                {k: sm.t1.get(k) for k in ("manufacturer", "model", "field_strength") if sm.t1.get(k)},
            )
        )
    unmapped = sorted(f for f in present - used if f != map_rel)
    if unmapped:
        more = f" and {len(unmapped) - 1} more" if len(unmapped) > 1 else ""
        raise AtlasError(
            "INTK005", f"a file no MAP.csv row accounts for{more} (add a row, or a skip row)", path=unmapped[0]
        )
    return scans


def _loader(root: Path, t1_rel: str, side: str | None, sm: SessionMap):
    def load() -> Loaded:
        t1 = load_image(root, t1_rel)
        acq = allowed_sidecar(read_sidecar(root, side)) if side else {}
        return Loaded(t1, load_lesions(root, sm.lesions, t1), acq)

    return load
