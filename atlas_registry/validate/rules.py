"""The catalogue of validation rules: every code a validator can emit, with its default
severity, what it checks and an example of what triggers it.

``docs/validation-rules.md`` documents the same codes (a test keeps the two in step). Codes are
stable: a rule that is dropped keeps its code retired, a new rule takes a new code.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..findings import Finding


@dataclass(frozen=True)
class Rule:
    code: str
    severity: str
    title: str
    example: str


_RULES = [
    # -- naming and layout ------------------------------------------------------------------
    Rule(
        "NAME001",
        "error",
        "a scan folder or file name does not carry a scan identifier cXXXXsXXXXtXX",
        "folder `c0001/c001s0004t01/`",
    ),
    Rule("NAME002", "error", "a scan folder sits in another cohort's folder", "`c0001/c0009s0001t01/`"),
    Rule(
        "NAME003",
        "error",
        "the identifier in a file name differs from its scan folder",
        "`c0001/c0001s0004t01/c0001s0005t01_LesionRaw.voi`",
    ),
    Rule(
        "NAME004",
        "error",
        "a file is not one of the kinds of Table 3 (or a declared sidecar `<id>.json`)",
        "`c0001s0004t01_LesionRaw.nii.gz`, `notes.txt`",
    ),
    Rule(
        "NAME005",
        "error",
        "a file or folder stands where the layout has none",
        "a T1 directly in `c0001/`, a sub-folder inside a scan folder",
    ),
    Rule("NAME006", "error", "a scan folder has no T1 image", "`c0001s0004t01.nii.gz` missing"),
    Rule(
        "NAME007",
        "error",
        "a lesion lacks one of its files (raw VOI, smoothed VOI, smoothed NIfTI)",
        "`c0001s0004t01_LesionSmooth_1.nii.gz` deleted",
    ),
    Rule(
        "NAME008",
        "error",
        "lesion numbers have a gap or secondaries exist without a primary",
        "`_LesionRaw_1.voi` and `_LesionRaw_3.voi` but no `_2`",
    ),
    Rule("NAME009", "error", "a scan has no lesion mask at all", "scan folder with only the T1"),
    Rule(
        "NAME010",
        "error",
        "a path escapes the validated root (`..`, absolute name, symlink pointing outside)",
        "`c0001s0004t01.nii.gz -> /etc/passwd`",
    ),
    Rule(
        "NAME011",
        "error",
        "secondary lesions are not numbered from largest to smallest",
        "`_LesionSmooth_2` larger than `_LesionSmooth_1`",
    ),
    Rule(
        "NAME012",
        "error",
        "the primary lesion is not the largest and the metadata does not record that the neuroradiologist chose it",
        "`_LesionSmooth_1` twice the volume of `_LesionSmooth`",
    ),
    Rule(
        "NAME013",
        "error",
        "the same scan identifier occurs in two folders",
        "`c0001/c0001s0004t01/` and `c0002/c0001s0004t01/`",
    ),
    Rule(
        "NAME014",
        "error",
        "nothing to validate: the path is not a native root, cohort folder or standardized root",
        "an empty folder",
    ),
    Rule(
        "NAME015",
        "error",
        "a special file (named pipe, socket, device) stands where a file is expected; it is never opened",
        "a FIFO named `c0001s0004t01.nii.gz`",
    ),
    # -- images -----------------------------------------------------------------------------
    Rule(
        "IMG001",
        "error",
        "a file cannot be read: I/O error, not gzip-compressed, a truncated or corrupt gzip "
        "stream, an unparsable NIfTI-1 header or voxel data shorter than the header says",
        "a `.nii.gz` or `.voi` cut short",
    ),
    Rule("IMG002", "error", "the image is not 3-D", "a 4-D T1 of shape 64x64x40x2"),
    Rule(
        "IMG003",
        "error",
        "the image holds NaN or infinite values, or a scale factor that is NaN, infinite or "
        "(scl_slope) zero, on a T1 or a mask alike",
        "a float32 T1 with NaN voxels; `scl_slope = NaN` on a mask",
    ),
    Rule(
        "IMG004",
        "error",
        "no valid orientation: neither sform nor qform set, a singular or non-finite affine, "
        "or non-positive voxel sizes",
        "`sform_code = qform_code = 0`",
    ),
    Rule("IMG005", "error", "the spatial unit is not millimetres", "`xyzt_units` spatial part unknown (0) or metre"),
    Rule(
        "IMG006",
        "error",
        "the voxel size differs from the cohort's scanner record",
        "a 1 mm isotropic T1 in cohort c0001 (recorded 0.9 x 0.9 x 3.0 mm)",
    ),
    Rule(
        "IMG007",
        "error",
        "the field strength of a sidecar differs from the cohort's scanner record",
        "`MagneticFieldStrength: 3` in a 1.5 T cohort",
    ),
    Rule(
        "IMG008",
        "error",
        "a standardized image is not on the template grid (197x233x189, 1 mm)",
        "a standardized T1 of shape 182x218x182",
    ),
    Rule(
        "IMG009",
        "error",
        "a JSON sidecar is not a readable JSON object, or an allowed key holds a value of "
        "another shape than `schemas/native-sidecar.schema.json` says",
        'a truncated `c0001s0004t01.json`; `"EchoTime": {"value": 2.9}`',
    ),
    Rule(
        "IMG010",
        "error",
        "sform and qform are both set and place the image differently (more than 1 mm "
        "apart at a corner of the grid): tools that read the qform (ITK, ANTs, ITK-SNAP) and tools that read "
        "the sform (FSL, SPM, nibabel) would put the image, and its masks, in different places",
        "a qform shifted 4 mm from the sform",
    ),
    Rule(
        "IMG011",
        "error",
        "two scans hold the same T1 (the same canonical form: voxels, geometry and scaling, "
        "whatever their header text or gzip stream): one scan under two identifiers (a duplicate across "
        "cohorts or timepoints)",
        "`c0009s0004t01.nii.gz` copied over `c0009s0006t01.nii.gz`",
    ),
    Rule(
        "IMG012",
        "error",
        "a JSON sidecar exceeds a limit: larger than 256 KiB (not read), or nested deeper than 8 levels (not parsed)",
        "a sidecar of 200,000 nested `[`",
    ),
    Rule(
        "IMG013",
        "error",
        "the gzip container holds something the reader does not use: an extra field "
        "(FEXTRA), a comment (FCOMMENT), reserved flag bits, a second gzip member or bytes after the stream",
        "a `.nii.gz` with a gzip comment, or a second member appended",
    ),
    Rule(
        "IMG014",
        "error",
        "the image would inflate past what its header declares (a decompression bomb), or "
        "the header declares more than 512 MiB of voxel data; refused before it is read to the end",
        "a 3 MB `.nii.gz` that inflates to 3 GiB",
    ),
    Rule(
        "IMG015",
        "error",
        "the NIfTI-1 layout carries bytes the header does not account for: the two-file "
        "magic `ni1` in a single file, or bytes after the voxel data",
        "text appended after the voxels inside the gzip stream",
    ),
    # -- masks ------------------------------------------------------------------------------
    Rule("MASK001", "error", "a mask holds values other than 0 and 1", "a smoothed mask saved as probabilities"),
    Rule("MASK002", "error", "a mask is empty", "an all-zero `_LesionRaw.voi`"),
    Rule("MASK003", "error", "a mask is smaller than 10 mm³", "a 5 mm³ lesion"),
    Rule("MASK004", "error", "a mask's shape differs from its T1's", "mask 256x256x60, T1 256x256x50"),
    Rule(
        "MASK005",
        "error",
        "a mask's affine differs from its T1's (not on the same grid)",
        "a c0001 mask in a space shifted by 2 mm (the classic native c0001/c0002 failure)",
    ),
    Rule(
        "MASK006",
        "error",
        "masks of different lesions of one scan overlap",
        "`_LesionSmooth` and `_LesionSmooth_1` share voxels",
    ),
    Rule(
        "MASK007",
        "error",
        "a smoothed mask does not match its raw mask re-smoothed (Gaussian FWHM 2 mm, threshold 0.5; Dice < 0.9)",
        "`_LesionSmooth.nii.gz` traced separately from `_LesionRaw.voi`",
    ),
    Rule(
        "MASK008",
        "error",
        "a VOI is not as MRIcron writes it: gzip NIfTI, uint8, intent_name starting with B, scl_slope 1 / scl_inter 0",
        "a `.voi` stored as int16",
    ),
    Rule(
        "MASK009",
        "error",
        "the smoothed VOI and the smoothed NIfTI of one lesion differ",
        "`_LesionSmooth.voi` edited after `_LesionSmooth.nii.gz` was written",
    ),
    Rule(
        "MASK010",
        "warning",
        "a raw lesion mask is in several non-contiguous parts (26-connectivity): "
        "lesions not contiguous with each other are traced as separate masks (`_LesionRaw_1`, ...), so "
        "this is a second lesion, or stray voxels",
        "a primary mask with a 3-voxel island 20 mm away",
    ),
    # -- metadata ---------------------------------------------------------------------------
    Rule(
        "META001",
        "error",
        "no metadata (workbook or CSV tables) for a native archive",
        "`ATLAS_metadata.xlsx` and the CSVs missing",
    ),
    Rule("META002", "error", "a metadata file cannot be read", "a corrupt `ATLAS_metadata.xlsx`"),
    Rule(
        "META003",
        "error",
        "a metadata row violates the JSON Schema (missing sheet or column, wrong type, bad identifier)",
        "a lesions row without `Lesion`",
    ),
    Rule("META004", "error", "a sheet column is not declared in the schema", "an extra `Comments2` column"),
    Rule("META005", "error", "a value is outside its enumeration or grade range", "`PVH` = 5"),
    Rule(
        "META006",
        "warning",
        "a known quirk was accepted and normalized (leading space, identifier that lost its leading zeros)",
        "`Session` = ` t01`, `Subject` = `4`",
    ),
    Rule(
        "META007",
        "error",
        "a scan in the scans or lesions sheet has no folder (every row in scope: the "
        "whole root, or the validated cohort's rows)",
        "a row for c0001s0099t01 without its folder",
    ),
    Rule(
        "META008",
        "error",
        "files without a metadata row (scan or lesion)",
        "folder c0001s0004t01 with no row in the scans sheet",
    ),
    Rule(
        "META009",
        "error",
        "lesion counts or lesion rows do not match the masks present",
        "`# Strokes LH Cortical` = 2 with one left cortical lesion row",
    ),
    Rule(
        "META010",
        "warning",
        "the recorded hemisphere/location disagrees with where the mask lies",
        "recorded left/cortical, mask in the right hemisphere",
    ),
    Rule("META011", "error", "a scan, lesion or cohort appears twice in the metadata", "two rows for c0001s0004t01"),
    Rule("META012", "error", "a cohort with scans has no scanner record", "no scanners row for c0009"),
    Rule(
        "META013",
        "error",
        "the registration failure list is malformed or contradicts the files",
        "`registration_failures.csv` lists a scan that has standardized files",
    ),
    Rule(
        "META014",
        "error",
        "the workbook and the CSV tables beside it disagree",
        "`ATLAS_scans.csv` edited after `ATLAS_metadata.xlsx` was written",
    ),
    Rule(
        "META015",
        "error",
        "a metadata cell (or column name) that a spreadsheet program could evaluate as a "
        "formula: it starts, after any white space, with `=`, `+`, `-`, `@`, a tab or a carriage return (or "
        "a full-width form of one), or holds a DDE reference; a number in a numeric column is a number",
        "`Notes` = `=cmd|' /C calc'!A0`, `Notes` = `@SUM(1)`, `Tracer` = ` -1+2`",
    ),
    Rule(
        "META016",
        "error",
        "a metadata file exceeds a limit (checked before or while reading, never after): "
        "larger than 64 MiB, a workbook whose parts inflate to more than 256 MiB or number more than 1,000, "
        "a table of more than 100,000 rows or 256 columns, a cell of more than 32,767 characters",
        "a 1 GB `ATLAS_scans.csv`; an `ATLAS_metadata.xlsx` whose sheet inflates to 300 MB",
    ),
    Rule(
        "META017",
        "error",
        "a lesions row names a scan that has no row in the scans sheet",
        "lesion rows for c0099s0001t01, which is in neither the scans sheet nor a folder",
    ),
    Rule(
        "META018",
        "error",
        "a metadata cell (or column name) holds a control character that a workbook "
        "cannot hold (U+0000-U+0008, U+000B, U+000C, U+000E-U+001F)",
        "`Notes` = `ok\\x07`",
    ),
    # -- de-identification ------------------------------------------------------------------
    Rule(
        "DEID001",
        "error",
        "a NIfTI header text field (descrip, aux_file, db_name, intent_name, data_type) "
        "carries text that is not on the allow-list (info `scrubbed` with --scrub-headers)",
        "`descrip = 'TE=2.9;Time=101500.000'`",
    ),
    Rule(
        "DEID002",
        "error",
        "a NIfTI header extension is present (info `scrubbed` with --scrub-headers)",
        "extension code 2 (DICOM header)",
    ),
    Rule("DEID003", "error", "a JSON sidecar has an identifying key", "`PatientName` in `c0001s0004t01.json`"),
    Rule("DEID004", "error", "a JSON sidecar value carries an identifier", '`"ImageComments": "call 555-123-4567"`'),
    Rule("DEID005", "error", "a file or folder name carries an identifier", "`JohnDoe_1962-03-04.nii.gz`"),
    Rule("DEID006", "error", "a metadata column names an identifier", "a `Date of birth` or `Patient Name` column"),
    Rule(
        "DEID007", "error", "a metadata cell carries an identifier (never scrubbed)", "`Notes` = `ask jdoe@example.org`"
    ),
    Rule(
        "DEID008",
        "error",
        "a standardized T1 is not defaced (signal in the face region)",
        "a standardized T1 with the face intact",
    ),
    Rule(
        "DEID009",
        "error",
        "a JSON sidecar key is not on the allow-list of acquisition parameters "
        "(`schemas/native-sidecar.schema.json`; identifying keys are DEID003)",
        '`"ImageComments"`, `"ReferringClinic"` in `c0001s0004t01.json`',
    ),
]

RULES: dict[str, Rule] = {r.code: r for r in _RULES}


def make(code: str, message: str, *, subject=None, path=None, severity: str | None = None) -> Finding:
    """A finding of rule ``code`` (its catalogue severity unless ``severity`` overrides it)."""
    rule = RULES[code]  # an unknown code is a programming error
    return Finding(code, severity or rule.severity, subject, str(path) if path is not None else None, message)
