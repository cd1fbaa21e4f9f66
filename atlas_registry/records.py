"""What validation learns about the files and the metadata, handed to ingest as plain data.

Validation reads and decompresses every file exactly once; ingest then writes these records to
the registry (and copies the files into the object store by their SHA-256) without decoding any
image again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .findings import Report


@dataclass
class FileRecord:
    relpath: str  # POSIX path relative to the validated root
    sha256: str  # of the bytes the store keeps: the canonical form (canonical.py); with validate_path(
    # stored_form=False), of that form before gzip (not a store key)
    size: int  # of the canonical form
    source_sha256: str = field(default="", compare=False, kw_only=True)  # of the file bytes as delivered


@dataclass
class ImageRecord(FileRecord):
    shape: tuple[int, int, int]
    zooms: tuple[float, float, float]
    dtype: str
    affine: list[list[float]]  # 4x4 voxel-to-world
    defaced: bool = False


@dataclass
class MaskRecord(FileRecord):
    variant: str  # raw_voi | smooth_voi | smooth_nii
    space: str  # native | MNI152NLin2009aSym
    voxel_count: int
    volume_mm3: float
    centroid_mm: tuple[float, float, float]
    n_components: int
    hemisphere: str  # computed: left | right | other
    location: str  # computed: cortical | subcortical | other


@dataclass
class ScanRecord:
    scan_id: str  # cXXXXsXXXXtXX
    t1: ImageRecord | None = None
    # lesion number (0 = primary) -> variant -> record; standard space uses variant "smooth_nii"
    lesions: dict[int, dict[str, MaskRecord]] = field(default_factory=dict)
    sidecars: list[FileRecord] = field(default_factory=list)


@dataclass
class ScannerMeta:
    cohort: str
    field_strength_t: float
    manufacturer: str
    model: str
    voxel_mm: tuple[float, float, float]


@dataclass
class ScanMeta:
    """The neuroradiologist's report and flags of one scan, in the registry's vocabulary."""

    scan_id: str
    stroke_type: str | None = None
    primary_location: str | None = None
    primary_hemisphere: str | None = None  # left | right | brainstem | bilateral
    vascular_territory: str | None = None
    pvh: int | None = None
    dwmh: int | None = None
    notes: str | None = None
    primary_chosen_by_neuroradiologist: bool = False


@dataclass
class LesionMeta:
    scan_id: str
    number: int  # 0 = primary
    hemisphere: str  # left | right | other
    location: str  # cortical | subcortical | other
    tracer: str | None = None
    reviewer: str | None = None


@dataclass
class MetadataRecords:
    scanners: dict[str, ScannerMeta] = field(default_factory=dict)  # by cohort code
    scans: dict[str, ScanMeta] = field(default_factory=dict)  # by scan id
    lesions: dict[tuple[str, int], LesionMeta] = field(default_factory=dict)  # by (scan id, number)


@dataclass
class RegistrationFailure:
    scan_id: str
    reason: str


@dataclass
class ValidationResult:
    """Everything ``validate`` found: the report, and what ingest needs to write."""

    root: Path
    kind: str  # "native" | "standard"
    report: Report
    scans: dict[str, ScanRecord] = field(default_factory=dict)
    metadata: MetadataRecords | None = None
    registration_failures: list[RegistrationFailure] = field(default_factory=list)
    low_resolution: list[str] = field(default_factory=list)
