"""BIDS deliveries: a raw dataset checked by the official BIDS validator, lesion masks as a
derivative in ATLAS 2.0 naming.

* The validator (``bids-validator-deno``, the ``bids`` extra) runs first on the whole delivery; any
  error refuses it (``INTK013`` naming the first file it names); missing validator: ``INTK014``.
* T1: ``sub-<subject>/[ses-<session>/]anat/sub-<subject>[_ses-<session>]_*T1w.nii[.gz]``; exactly one
  per session unless the t1 row's ``path`` chooses (``INTK006``); none is ``INTK007``. MAP.csv names
  subject and session by their labels (without ``sub-``/``ses-``; ``1`` for a dataset without sessions).
  The JSON sidecar beside the T1 gives the allow-listed acquisition parameters and the scanner.
* Masks: MAP.csv ``lesion``/``lesions`` rows, else every derivative file
  ``derivatives/*/sub-<subject>/[ses-<session>/]anat/…_label-L…_mask.nii[.gz]`` (ATLAS 2.0:
  ``sub-X_ses-Y_space-orig_label-L_desc-T1lesion_mask.nii.gz``), one mask holding every lesion of the
  scan: split into 26-connected parts, largest first = primary.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import AtlasError
from .build import LesionIn, Loaded, ScanIn, allowed_sidecar, components, on_grid
from .delivery import MAP_NAME
from .mapfile import Row, SessionMap
from .nifti import load_image, natural, read_sidecar, sidecar_of

_T1 = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)(?:_ses-(?P<ses>[A-Za-z0-9]+))?_(?:[a-z]+-[A-Za-z0-9]+_)*T1w\.nii(?:\.gz)?$"
)
_MASK = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)(?:_ses-(?P<ses>[A-Za-z0-9]+))?_(?:[a-z]+-[A-Za-z0-9]+_)*"
    r"label-L(?:_[a-z]+-[A-Za-z0-9]+)*_mask\.nii(?:\.gz)?$"
)
NO_SESSION = "1"


def validator_path() -> str:
    here = Path(sys.executable).parent / "bids-validator-deno"
    if here.is_file():
        return str(here)
    found = shutil.which("bids-validator-deno")
    if not found:
        raise AtlasError(
            "INTK014", "the BIDS validator is not installed (pip install 'atlas-registry[bids]' or bids-validator-deno)"
        )
    return found


def validate(root: Path) -> None:
    """The official BIDS validator on the delivery: any error refuses it (INTK013)."""
    exe = validator_path()
    with tempfile.TemporaryDirectory(prefix="atlas-intake-bids-") as tmp:
        config = Path(tmp) / "config.json"  # MAP.csv at the top of the delivery is intake's, not the dataset's
        config.write_text(json.dumps({"ignore": [{"code": "NOT_INCLUDED", "location": f"/{MAP_NAME}"}]}))
        _run_validator(exe, root, config)


def _run_validator(exe: str, root: Path, config: Path) -> None:
    try:
        proc = subprocess.run(
            [exe, str(root), "--format", "json", "--config", str(config)], capture_output=True, text=True, timeout=1800
        )
        issues = json.loads(proc.stdout)["issues"]["issues"]
    except (subprocess.TimeoutExpired, json.JSONDecodeError, KeyError, TypeError) as e:
        raise AtlasError(
            "INTK013", f"the BIDS validator gave no usable report ({type(e).__name__})", path=str(root)
        ) from None
    errors = [i for i in issues if i.get("severity") == "error"]
    if errors:
        first = errors[0]
        where = str(first.get("location") or "").lstrip("/") or "."
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise AtlasError(
            "INTK013", f"BIDS validator: {first.get('code')} {first.get('subCode') or ''}".rstrip() + more, path=where
        )


def _anat(rel: str) -> tuple[str, str, str] | None:
    """(kind, subject, session) of a T1 or lesion mask file, else None."""
    parts = rel.split("/")
    name = parts[-1]
    if len(parts) >= 3 and parts[-2] == "anat":
        if parts[0].startswith("sub-") and (m := _T1.match(name)):
            return "t1", m["sub"], m["ses"] or NO_SESSION
        if parts[0] == "derivatives" and (m := _MASK.match(name)):
            return "mask", m["sub"], m["ses"] or NO_SESSION
    return None


def plan(
    root: Path, files: list[str], sessions: dict[tuple[str, str], SessionMap], map_rel: str | None
) -> list[ScanIn]:
    validate(root)
    t1s: dict[tuple[str, str], list[str]] = {}
    found_masks: dict[tuple[str, str], list[str]] = {}
    for rel in files:
        a = _anat(rel)
        if a is None:
            if rel.startswith("sub-") and rel.endswith((".nii", ".nii.gz")) and "/anat/" not in rel:
                continue  # other modalities of the raw dataset are not taken
            continue
        kind, sub, ses = a
        (t1s if kind == "t1" else found_masks).setdefault((sub, ses), []).append(rel)
    unmapped = sorted(set(t1s) - set(sessions))
    if unmapped:
        sub, ses = unmapped[0]
        raise AtlasError(
            "INTK005", f"subject {sub!r} session {ses!r} of the dataset has no row in MAP.csv", path=t1s[unmapped[0]][0]
        )
    present = set(files)
    scans = []
    for (sub, ses), sm in sessions.items():
        assert sm.t1 is not None  # mapfile.read refuses a session without a t1 row
        t1_rel = sm.t1.get("path")
        if t1_rel:
            if t1_rel not in present:
                raise AtlasError("INTK004", f"MAP.csv line {sm.t1.line}: no such file in the delivery", path=t1_rel)
        else:
            cands = sorted(t1s.get((sub, ses), []))
            if not cands:
                raise AtlasError(
                    "INTK004",
                    f"MAP.csv line {sm.t1.line}: subject {sub!r} session {ses!r} has no T1w image in the dataset",
                    path="MAP.csv",
                )
            if len(cands) > 1:
                raise AtlasError(
                    "INTK006",
                    f"{len(cands)} T1w images for subject {sub!r} session {ses!r} "
                    f"({', '.join(cands)}); choose one with the t1 row's path",
                    path=cands[0],
                )
            t1_rel = cands[0]
        rows = sm.lesions
        for r in rows:
            if r.get("path") not in present:
                raise AtlasError("INTK004", f"MAP.csv line {r.line}: no such file in the delivery", path=r.get("path"))
        mask_rels = [] if rows else sorted(found_masks.get((sub, ses), []))
        if not rows and not mask_rels:
            raise AtlasError(
                "INTK004",
                f"subject {sub!r} session {ses!r} has no lesion mask (derivatives/*/…"
                "_label-L_…_mask.nii.gz, or MAP.csv lesion rows)",
                path=t1_rel,
            )
        side: str | None = sidecar_of(t1_rel)
        side = side if side in present else None
        scans.append(
            ScanIn(
                sub,
                ses,
                natural(ses),
                t1_rel,
                sm.t1,
                _loader(root, t1_rel, side, rows, mask_rels),
                _scanner(root, side, sm.t1),
            )
        )
    return scans


def _scanner(root: Path, side: str | None, row: Row) -> dict:
    obj = read_sidecar(root, side) if side else {}
    out = {
        "manufacturer": str(obj.get("Manufacturer") or ""),
        "model": str(obj.get("ManufacturersModelName") or ""),
        "field_strength": str(obj.get("MagneticFieldStrength") or ""),
    }
    for k in out:
        out[k] = row.get(k) or out[k]
    return {k: v for k, v in out.items() if v}


def _loader(root: Path, t1_rel: str, side: str | None, rows: list[Row], mask_rels: list[str]):
    from .nifti import load_lesions

    def load() -> Loaded:
        t1 = load_image(root, t1_rel)
        acq = allowed_sidecar(read_sidecar(root, side)) if side else {}
        if rows:
            lesions = load_lesions(root, rows, t1)
        else:
            lesions = [
                LesionIn(part, rel) for rel in mask_rels for part in components(on_grid(load_image(root, rel), t1, rel))
            ]
        return Loaded(t1, lesions, acq)

    return load
