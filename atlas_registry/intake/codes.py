"""The intake rule codes (``INTK``): every refusal of ``atlas-registry intake``, with an example.

``docs/validation-rules.md`` (section *Intake*) documents the same codes; a test keeps them in step.
Every refusal names the file (or MAP.csv row) it is about, and nothing is written.
"""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    "INTK001": (
        "the delivery is not a folder, or holds nothing intake can read (no DICOM, no BIDS "
        "dataset, no MAP.csv for NIfTI files)",
        "an empty folder given as DELIVERY",
    ),
    "INTK002": (
        "an unsafe name or file: a MAP.csv path with `..` or an absolute path, a symbolic link, a "
        "FIFO, socket or device in the delivery",
        "`masks/../../etc/passwd` in MAP.csv, a FIFO `s01/x.dcm`",
    ),
    "INTK003": (
        "MAP.csv cannot be read or a row breaks its schema (unknown column, bad role, missing "
        "subject/session, bad lesion number)",
        "a row with role `flair`",
    ),
    "INTK004": (
        "a MAP.csv row names files that are not in the delivery, or a MAP.csv session has no files",
        "a row for subject `P17` whose `path` does not exist",
    ),
    "INTK005": (
        "files in the delivery that no MAP.csv row accounts for (a subject or session without a row, "
        "an unmapped NIfTI)",
        "`P22/ses1/` DICOM series with no row for subject P22",
    ),
    "INTK006": (
        "two or more T1 candidates for one session and no rule in MAP.csv chooses one",
        "two 3-D T1-weighted series `MPRAGE` and `MPRAGE_repeat` in one session",
    ),
    "INTK007": (
        "no T1 candidate for a session: every series was skipped (localizer, derived, 2-D, not "
        "T1-weighted) and MAP.csv chose none",
        "a session holding only a localizer and a FLAIR",
    ),
    "INTK008": (
        "a corrupt DICOM series or image: unreadable file, no pixel data, missing or inconsistent "
        "geometry, or the converter failed",
        "a `.dcm` cut short in the middle of its pixel data",
    ),
    "INTK009": ("files of more than one patient in one subject folder", "two PatientID values under `P03/`"),
    "INTK010": (
        "a lesion mask cannot be used: unreadable, empty, or not on the grid of the T1 it belongs to",
        "a mask of shape 192x256x256 for a T1 of 176x256x256",
    ),
    "INTK011": ("the output folder exists and is not empty", "`--out native` where `native/c0012` exists"),
    "INTK012": (
        "the registry is missing or not at the newest schema (intake keeps its crosswalk there)",
        "`intake` before `atlas-registry init`",
    ),
    "INTK013": ("the BIDS validator reports errors in a BIDS delivery", "`sub-01/anat/sub-01_T1w.json` not JSON"),
    "INTK014": (
        "a required converter or validator is not installed (dcm2niix, bids-validator-deno)",
        "a DICOM delivery on a machine without dcm2niix",
    ),
    "INTK015": (
        "the result failed validation (the validator's finding is given): intake writes only what `validate` accepts",
        "a T1 whose voxel size differs from the cohort's scanner record",
    ),
}


def title(code: str) -> str:
    return CODES[code][0]
