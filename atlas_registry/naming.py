"""The naming grammar of ATLAS (data descriptor, Table 3) in one place.

Native (ICPSR) layout::

    cXXXX/cXXXXsXXXXtXX/cXXXXsXXXXtXX.nii.gz              T1
    cXXXX/cXXXXsXXXXtXX/cXXXXsXXXXtXX_LesionRaw.voi        primary lesion, raw VOI
    cXXXX/cXXXXsXXXXtXX/cXXXXsXXXXtXX_LesionSmooth.voi     primary lesion, smoothed VOI
    cXXXX/cXXXXsXXXXtXX/cXXXXsXXXXtXX_LesionSmooth.nii.gz  primary lesion, smoothed NIfTI
    ..._LesionRaw_1.voi, ..._LesionSmooth_1.voi, ..._LesionSmooth_1.nii.gz   secondary lesions

Standardized (R1.1 INDI) layout, one folder per scan under the standard root::

    cXXXXsXXXXtXX_t1w_deface_stx.nii.gz, cXXXXsXXXXtXX_LesionSmooth_stx.nii.gz,
    cXXXXsXXXXtXX_LesionSmooth_1_stx.nii.gz, ...
    cXXXXsXXXXtXX_t1w_deface_stx.json   optional sidecar of `standardize`: what made the files, the
                                        native→MNI affine and the QC figures

Lesion number 0 is the primary lesion; 1, 2, ... are the secondary lesions (largest first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import AtlasError

SCAN_RE = re.compile(r"^c(\d{4})s(\d{4})t(\d{2})$")
COHORT_RE = re.compile(r"^c(\d{4})$")

VARIANTS = ("raw_voi", "smooth_voi", "smooth_nii")
SPACES = ("native", "MNI152NLin2009aSym")
STANDARD_SPACE = "MNI152NLin2009aSym"

# Metadata files of a native root (the release workbook and the same tables as CSV).
METADATA_WORKBOOK = "ATLAS_metadata.xlsx"
METADATA_CSV = {"scans": "ATLAS_scans.csv", "lesions": "ATLAS_lesions.csv", "scanners": "ATLAS_scanners.csv"}
# Standard root: the list of scans whose registration failed.
REGISTRATION_FAILURES = "registration_failures.csv"


@dataclass(frozen=True, order=True)
class ScanId:
    cohort: int
    subject: int
    timepoint: int

    def __str__(self) -> str:
        return f"c{self.cohort:04d}s{self.subject:04d}t{self.timepoint:02d}"

    @property
    def cohort_code(self) -> str:
        return f"c{self.cohort:04d}"

    @property
    def subject_code(self) -> str:
        return f"c{self.cohort:04d}s{self.subject:04d}"


def parse_scan_id(text: str) -> ScanId:
    m = SCAN_RE.match(text)
    if not m:
        raise AtlasError("NAME001", f"{text!r} is not a scan identifier of the form cXXXXsXXXXtXX")
    c, s, t = (int(g) for g in m.groups())
    return ScanId(c, s, t)


def is_scan_id(text: str) -> bool:
    return bool(SCAN_RE.match(text))


@dataclass(frozen=True)
class NativeFile:
    """What a native file name says: the scan, the kind and (for lesions) variant and number."""

    scan: ScanId
    kind: str  # "t1" | "lesion" | "sidecar"
    variant: str | None = None
    lesion: int = 0


_NATIVE_LESION_RE = re.compile(
    r"^(?P<id>c\d{4}s\d{4}t\d{2})_Lesion(?P<what>Raw|Smooth)(?:_(?P<n>[1-9]\d*))?(?P<ext>\.voi|\.nii\.gz)$"
)
_NATIVE_T1_RE = re.compile(r"^(?P<id>c\d{4}s\d{4}t\d{2})\.nii\.gz$")
_NATIVE_SIDECAR_RE = re.compile(r"^(?P<id>c\d{4}s\d{4}t\d{2})\.json$")


def parse_native_name(name: str) -> NativeFile | None:
    """Parse a native file name; ``None`` when it is not one of the file kinds of Table 3."""
    if m := _NATIVE_T1_RE.match(name):
        return NativeFile(parse_scan_id(m["id"]), "t1")
    if m := _NATIVE_SIDECAR_RE.match(name):
        return NativeFile(parse_scan_id(m["id"]), "sidecar")
    if m := _NATIVE_LESION_RE.match(name):
        what, ext = m["what"], m["ext"]
        if what == "Raw" and ext == ".voi":
            variant = "raw_voi"
        elif what == "Smooth" and ext == ".voi":
            variant = "smooth_voi"
        elif what == "Smooth" and ext == ".nii.gz":
            variant = "smooth_nii"
        else:  # e.g. LesionRaw.nii.gz is not a kind of Table 3
            return None
        return NativeFile(parse_scan_id(m["id"]), "lesion", variant, int(m["n"] or 0))
    return None


def native_name(scan: ScanId | str, kind: str, variant: str | None = None, lesion: int = 0) -> str:
    sid = str(scan)
    if kind == "t1":
        return f"{sid}.nii.gz"
    if kind == "sidecar":
        return f"{sid}.json"
    suffix = f"_{lesion}" if lesion else ""
    if variant == "raw_voi":
        return f"{sid}_LesionRaw{suffix}.voi"
    if variant == "smooth_voi":
        return f"{sid}_LesionSmooth{suffix}.voi"
    if variant == "smooth_nii":
        return f"{sid}_LesionSmooth{suffix}.nii.gz"
    raise ValueError(f"unknown lesion variant {variant!r}")


def native_relpath(scan: ScanId | str, kind: str, variant: str | None = None, lesion: int = 0) -> str:
    s = scan if isinstance(scan, ScanId) else parse_scan_id(scan)
    return f"{s.cohort_code}/{s}/{native_name(s, kind, variant, lesion)}"


@dataclass(frozen=True)
class StandardFile:
    scan: ScanId
    kind: str  # "t1" | "lesion" | "sidecar"
    lesion: int = 0


_STD_SIDECAR_RE = re.compile(r"^(?P<id>c\d{4}s\d{4}t\d{2})_t1w_deface_stx\.json$")
_STD_T1_RE = re.compile(r"^(?P<id>c\d{4}s\d{4}t\d{2})_t1w_deface_stx\.nii\.gz$")
_STD_LESION_RE = re.compile(r"^(?P<id>c\d{4}s\d{4}t\d{2})_LesionSmooth(?:_(?P<n>[1-9]\d*))?_stx\.nii\.gz$")


def parse_standard_name(name: str) -> StandardFile | None:
    if m := _STD_T1_RE.match(name):
        return StandardFile(parse_scan_id(m["id"]), "t1")
    if m := _STD_LESION_RE.match(name):
        return StandardFile(parse_scan_id(m["id"]), "lesion", int(m["n"] or 0))
    if m := _STD_SIDECAR_RE.match(name):
        return StandardFile(parse_scan_id(m["id"]), "sidecar")
    return None


def standard_name(scan: ScanId | str, kind: str, lesion: int = 0) -> str:
    if kind == "t1":
        return f"{scan}_t1w_deface_stx.nii.gz"
    if kind == "sidecar":
        return f"{scan}_t1w_deface_stx.json"
    suffix = f"_{lesion}" if lesion else ""
    return f"{scan}_LesionSmooth{suffix}_stx.nii.gz"


def standard_relpath(scan: ScanId | str, kind: str, lesion: int = 0) -> str:
    s = scan if isinstance(scan, ScanId) else parse_scan_id(scan)
    return f"{s.cohort_code}/{s}/{standard_name(s, kind, lesion)}"


def safe_relpath(root: Path, path: Path) -> PurePosixPath:
    """The path of ``path`` relative to ``root``, refusing anything that escapes the root
    (``..``, absolute names, symlinks that resolve outside)."""
    root_r = Path(root).resolve()
    p = Path(path)
    if ".." in p.parts:
        raise AtlasError("NAME010", "path contains '..'", path=str(path))
    full = p if p.is_absolute() else root / p
    try:
        rel = full.resolve().relative_to(root_r)
    except ValueError:
        raise AtlasError("NAME010", "path escapes the root (symlink or absolute name)", path=str(path)) from None
    return PurePosixPath(rel.as_posix())
