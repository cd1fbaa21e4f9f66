"""The numbers of the ATLAS R1.1 data descriptor (Liew et al., Scientific Data 2018), typed in once.

Everything here is a published fact the registry is checked against: Table 1 (scans per cohort by
single lesion left/right/other and multiple lesions), Table 2 (lesions per cohort by cortical and
subcortical-only, left and right, and other locations), the lesion volume statistics, the make-up of
the standardized subset, the inter/intra-rater reliability figures of the Technical Validation and
the scanner facts of Data Characteristics.  The synthetic generator plans from these numbers and the
validators and statistics compare against them; nothing else should type them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

COHORTS: tuple[str, ...] = tuple(f"c{i:04d}" for i in range(1, 12))


@dataclass(frozen=True)
class Table1Row:
    """Table 1: scans of one cohort, by single lesion (left, right, other) or multiple lesions."""

    cohort: str
    scans: int
    single_left: int
    single_right: int
    single_other: int
    multiple: int


@dataclass(frozen=True)
class Table2Row:
    """Table 2: lesion masks of one cohort by location (primary and secondary lesions)."""

    cohort: str
    cortical_left: int
    cortical_right: int
    subcortical_left: int
    subcortical_right: int
    other: int

    @property
    def total(self) -> int:
        return self.cortical_left + self.cortical_right + self.subcortical_left + self.subcortical_right + self.other

    def count(self, hemisphere: str, location: str) -> int:
        """Lesions of this cohort with the given (hemisphere, location) in the project's vocabulary."""
        if location == "other":
            return self.other if hemisphere == "other" else 0
        return getattr(self, f"{location}_{hemisphere}", 0)


def _t1(*rows: tuple) -> MappingProxyType:
    return MappingProxyType({r[0]: Table1Row(*r) for r in rows})


def _t2(*rows: tuple) -> MappingProxyType:
    return MappingProxyType({r[0]: Table2Row(*r) for r in rows})


# cohort, scans, single left, single right, single other, multiple
TABLE1: MappingProxyType = _t1(
    ("c0001", 6, 3, 2, 0, 1),
    ("c0002", 25, 6, 12, 1, 6),
    ("c0003", 55, 14, 19, 0, 22),
    ("c0004", 34, 7, 3, 1, 23),
    ("c0005", 30, 9, 3, 6, 12),
    ("c0006", 12, 4, 1, 2, 5),
    ("c0007", 36, 9, 9, 0, 18),
    ("c0008", 32, 8, 11, 0, 13),
    ("c0009", 12, 8, 0, 0, 4),
    ("c0010", 47, 9, 10, 7, 21),
    ("c0011", 15, 1, 11, 0, 3),
)
TABLE1_TOTAL = Table1Row("total", 304, 78, 81, 17, 128)

# cohort, cortical left, cortical right, subcortical-only left, subcortical-only right, other
TABLE2: MappingProxyType = _t2(
    ("c0001", 2, 2, 2, 1, 0),
    ("c0002", 1, 7, 14, 11, 4),
    ("c0003", 3, 0, 38, 44, 0),
    ("c0004", 7, 6, 31, 32, 7),
    ("c0005", 9, 1, 20, 14, 7),
    ("c0006", 3, 2, 8, 3, 3),
    ("c0007", 8, 10, 28, 18, 4),
    ("c0008", 6, 13, 20, 13, 1),
    ("c0009", 5, 3, 12, 2, 0),
    ("c0010", 11, 8, 21, 24, 13),
    ("c0011", 0, 5, 3, 10, 1),
)
TABLE2_TOTAL = Table2Row("total", 55, 57, 197, 172, 40)

N_SCANS = 304
N_LESIONS = 521

# Lesion volume (mm³) over all 521 masks: "2.128 ± 3.898 × 10^4 mm³, min 10, max 2.838 × 10^5".
VOLUME_MEAN_MM3 = 2.128e4
VOLUME_SD_MM3 = 3.898e4
VOLUME_MIN_MM3 = 10.0
VOLUME_MAX_MM3 = 2.838e5

# The standardized (MNI152 2009, defaced) subset.
N_STANDARDIZED = 229
N_LOW_RESOLUTION = 31  # every scan of the two 1.5 T cohorts
N_REGISTRATION_FAILURES = 44
N_STANDARDIZED_PEOPLE = 220
LOW_RESOLUTION_COHORTS: tuple[str, ...] = ("c0001", "c0002")
REGISTRATION_FAILURE_REASONS: tuple[str, ...] = ("large lesion", "motion artefact", "poor image quality")
LOW_RESOLUTION_REASON = "low resolution"
PRIMARY_NOT_LARGEST_MAX_FRACTION = 0.05  # "less than 5% of the subjects"

# Scanners (Data Characteristics): field strength in tesla and acquired voxel size in mm.
FIELD_STRENGTH_T = MappingProxyType({c: (1.5 if c in LOW_RESOLUTION_COHORTS else 3.0) for c in COHORTS})
VOXEL_SIZE_MM = MappingProxyType(
    {c: ((0.9, 0.9, 3.0) if c in LOW_RESOLUTION_COHORTS else (1.0, 1.0, 1.0)) for c in COHORTS}
)

# Smoothing of the raw tracing (Methods): Gaussian FWHM 2 mm, threshold 0.5.
SMOOTH_FWHM_MM = 2.0
SMOOTH_THRESHOLD = 0.5


@dataclass(frozen=True)
class MeanSD:
    mean: float
    sd: float


# Technical Validation: 11 tracers traced the same 5 brains twice, one week apart.
N_TRACERS = 11
N_TRAINING_BRAINS = 5
TRAINING_VOLUME_RANGE_MM3 = (1871.0, 162015.0)
TRAINING_LOCATIONS = MappingProxyType(
    {("right", "cortical"): 1, ("left", "cortical"): 0, ("left", "subcortical"): 4, ("right", "subcortical"): 0}
)
INTER_RATER_DICE = MappingProxyType({1: MeanSD(0.73, 0.20), 2: MeanSD(0.83, 0.13)})
INTER_RATER_HAUSDORFF_MM = MappingProxyType({1: MeanSD(22.57, 21.36), 2: MeanSD(25.29, 23.53)})
INTRA_RATER_DICE = MeanSD(0.83, 0.13)
INTRA_RATER_HAUSDORFF_MM = MeanSD(21.02, 22.66)
VOLUME_ICC_INTER = MeanSD(0.76, 0.14)
VOLUME_ICC_INTRA = MeanSD(0.84, 0.09)


def _check() -> None:
    """The typed-in rows must add up to the published totals (guards against typos)."""
    t1, t2 = TABLE1.values(), TABLE2.values()
    for name in ("scans", "single_left", "single_right", "single_other", "multiple"):
        assert sum(getattr(r, name) for r in t1) == getattr(TABLE1_TOTAL, name), name
    for r in t1:
        assert r.scans == r.single_left + r.single_right + r.single_other + r.multiple, r
    for name in ("cortical_left", "cortical_right", "subcortical_left", "subcortical_right", "other"):
        assert sum(getattr(r, name) for r in t2) == getattr(TABLE2_TOTAL, name), name
    assert sum(r.total for r in t2) == N_LESIONS and TABLE1_TOTAL.scans == N_SCANS
    low = sum(TABLE1[c].scans for c in LOW_RESOLUTION_COHORTS)
    assert low == N_LOW_RESOLUTION and N_SCANS - low - N_REGISTRATION_FAILURES == N_STANDARDIZED


_check()
