"""The BIDS archive for INDI (``out/bids/``): the standardized subset as a BIDS derivative dataset.

Layout (as ATLAS 2.0; ``<L>`` is the subject's public label, ``<n>`` the timepoint number)::

    dataset_description.json  README  CHANGES  participants.tsv  participants.json
    sessions.json  sub-<L>/sub-<L>_sessions.tsv                (subjects with several sessions)
    sub-<L>/ses-<n>/anat/
        sub-<L>_ses-<n>_space-MNI152NLin2009aSym_T1w.nii.gz (+ .json)          defaced T1
        sub-<L>_ses-<n>_space-MNI152NLin2009aSym_label-L_desc-T1lesion_mask.nii.gz (+ .json)
                                                    every lesion of the scan in one mask (union)
        sub-<L>_ses-<n>_space-MNI152NLin2009aSym_label-L_desc-primary_mask.nii.gz (+ .json)
        sub-<L>_ses-<n>_space-MNI152NLin2009aSym_label-L_desc-secondary1_mask.nii.gz (+ .json), 2, 3, ...
                                                    one mask per lesion (secondary 1 = largest)

T1s and per-lesion masks are the registry's files, byte for byte. The union mask is computed (voxel
OR of the lesion masks, uint8, deterministic gzip) and cached by the SHA-256 of its inputs; for a scan
with one lesion it is that lesion's file. Subject labels are the registry's public IDs: no native
identifier appears in any name or text (checked by the de-identification gate).
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from .. import __version__, niio
from ..errors import AtlasError
from ..store import sha256_bytes
from . import ddi
from .determinism import json_bytes
from .icpsr import linking_sections
from .view import LesionInfo, MaskInfo, ReleaseView, ScanView

BIDS_VERSION = "1.10.0"
TEMPLATEFLOW = "https://templateflow.s3.amazonaws.com"
TEMPLATE_RESOLUTIONS = {"MNI152NLin2009aSym": {1.0: "1", 2.0: "2"}}  # TemplateFlow res- labels by voxel mm


def template_reference(space: str, voxel_mm) -> str:
    """BIDS ``SpatialReference`` of an image in ``space`` at ``voxel_mm``: the TemplateFlow template at
    that resolution, or the space label where TemplateFlow has no such resolution."""
    res = TEMPLATE_RESOLUTIONS.get(space, {})
    iso = {round(float(v), 3) for v in voxel_mm}
    label = res.get(iso.pop()) if len(iso) == 1 else None
    if label is None:
        return space
    return f"{TEMPLATEFLOW}/tpl-{space}/tpl-{space}_res-{label}_T1w.nii.gz"


UNION_DESC = "T1lesion"
UNION_RECIPE = "bids-union-mask-1"
NA = "n/a"

PVH_LEVELS = {
    "0": "absent",
    "1": "caps or pencil-thin lining",
    "2": "smooth halo",
    "3": "irregular, extending into the deep white matter",
}
DWMH_LEVELS = {"0": "absent", "1": "punctate foci", "2": "beginning confluence of foci", "3": "large confluent areas"}
HEMISPHERE_LEVELS = {
    "left": "left hemisphere",
    "right": "right hemisphere",
    "brainstem": "brainstem",
    "bilateral": "both hemispheres",
}
_COUNT_COLUMNS = (  # (column, hemisphere, location) counted over the scan's lesion annotations
    ("lesions_lh_cortical", "left", "cortical"),
    ("lesions_lh_subcortical", "left", "subcortical"),
    ("lesions_rh_cortical", "right", "cortical"),
    ("lesions_rh_subcortical", "right", "subcortical"),
    ("lesions_other", "other", "other"),
)


def lesion_desc(number: int) -> str:
    return "primary" if number == 0 else f"secondary{number}"


def scan_prefix(s: ScanView, space: str) -> str:
    return f"{s.bids_subject}/{s.bids_session}/anat/{s.public_scan}_space-{space}"


def t1_path(s: ScanView, space: str) -> str:
    return f"{scan_prefix(s, space)}_T1w.nii.gz"


def mask_path(s: ScanView, space: str, desc: str) -> str:
    return f"{scan_prefix(s, space)}_label-L_desc-{desc}_mask.nii.gz"


def _sidecar(path: str) -> str:
    return path[: -len(".nii.gz")] + ".json"


def _uri(path: str) -> str:
    return f"bids::{path}"


# -- the union mask ------------------------------------------------------------------------------


def _standard_mask(les: LesionInfo) -> MaskInfo:
    """The standard-space mask of a lesion of a standardized scan (the only scans BIDS holds)."""
    assert les.standard is not None, f"lesion {les.number} of a standardized scan without its standard mask"
    return les.standard


def union_mask_bytes(store, lesions: tuple[LesionInfo, ...]) -> bytes:
    """Every lesion of a scan in one uint8 mask (header of the primary's mask, no extensions)."""
    imgs = [niio.decode(store.get(_standard_mask(les).sha256), _standard_mask(les).sha256) for les in lesions]
    ref = imgs[0]
    union = np.zeros(ref.shape[:3], dtype=bool)
    for img in imgs:
        if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-4):
            raise AtlasError("EXP020", "standard-space lesion masks of one scan are not on the same grid")
        union |= np.asarray(img.dataobj) > 0
    hdr = ref.header.copy()
    hdr.extensions.clear()
    hdr.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(union.astype(np.uint8), ref.affine, hdr)
    out.header.set_slope_inter(1.0, 0.0)
    out.header["cal_min"], out.header["cal_max"] = 0, 1
    return niio.encode_nifti(out, niio.MASK_GZIP_LEVEL)


# -- tables ----------------------------------------------------------------------------------------


def _cell(v) -> str:
    if v is None or v == "":
        return NA
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).replace("\t", " ").replace("\n", " ").strip() or NA


def _tsv(columns: list[str], rows: list[dict]) -> str:
    lines = ["\t".join(columns)]
    lines += ["\t".join(_cell(r.get(c)) for c in columns) for r in rows]
    return "\n".join(lines) + "\n"


def _counts_as(les: LesionInfo, hemisphere: str, location: str) -> bool:
    """Table 2's categories: brainstem/cerebellum (hemisphere or location ``other``) count as other."""
    is_other = les.hemisphere == "other" or les.location == "other"
    if location == "other":
        return is_other
    return not is_other and (les.hemisphere, les.location) == (hemisphere, location)


def _scan_columns(s: ScanView) -> dict:
    r, sc = s.report, s.scanner
    counts = {col: sum(1 for les in s.lesions if _counts_as(les, h, loc)) for col, h, loc in _COUNT_COLUMNS}
    if s.withheld:  # a test scan: nothing of its masks or of the report describing them (n/a)
        return {
            "scanner_manufacturer": sc and sc.manufacturer,
            "scanner_model": sc and sc.model,
            "field_strength": sc and sc.field_strength_t,
            "split": s.split,
        }
    return {
        "scanner_manufacturer": sc and sc.manufacturer,
        "scanner_model": sc and sc.model,
        "field_strength": sc and sc.field_strength_t,
        "stroke_type": r and r.stroke_type,
        "primary_location": r and r.primary_location,
        "primary_hemisphere": r and r.primary_hemisphere,
        "vascular_territory": r and r.vascular_territory,
        "pvh": r and r.pvh,
        "dwmh": r and r.dwmh,
        "n_lesions": len(s.lesions),
        **counts,
        "lesion_volume": round(sum(les.standard.volume_mm3 for les in s.lesions if les.standard), 3),
        "split": s.split,
    }


PARTICIPANT_COLUMNS = [
    "participant_id",
    "cohort",
    "n_sessions",
    "scanner_manufacturer",
    "scanner_model",
    "field_strength",
    "stroke_type",
    "primary_location",
    "primary_hemisphere",
    "vascular_territory",
    "pvh",
    "dwmh",
    "n_lesions",
    *[c for c, _, _ in _COUNT_COLUMNS],
    "lesion_volume",
]
SESSION_COLUMNS = ["session_id", *PARTICIPANT_COLUMNS[3:]]
SPLIT_COLUMN = "split"  # the last column of both tables when the release has benchmark splits


def participant_columns(view: ReleaseView) -> list[str]:
    return PARTICIPANT_COLUMNS + ([SPLIT_COLUMN] if view.spec.splits is not None else [])


def session_columns(view: ReleaseView) -> list[str]:
    return SESSION_COLUMNS + ([SPLIT_COLUMN] if view.spec.splits is not None else [])


# Participant-level free text (DEID007 applies to these cells).
TEXT_COLUMNS = ("scanner_manufacturer", "scanner_model", "stroke_type", "primary_location", "vascular_territory")


def _levels(values) -> dict:
    return {v: v for v in sorted({str(v) for v in values if v not in (None, "")})}


def column_descriptions(view: ReleaseView, scans: list[ScanView], *, sessions: bool = False) -> dict:
    """Column dictionaries of participants.tsv, or (``sessions``) of sub-<label>_sessions.tsv."""
    first = (
        "At this session."
        if sessions
        else "At the subject's first session in this dataset; sub-<label>_sessions.tsv gives every session."
    )
    sites = {c.code: c.site or f"cohort {c.code}" for c in view.cohorts}
    d = {
        "participant_id": {"Description": "Public, pseudonymous subject label (not the native identifier)."},
        "cohort": {
            "Description": "Contributing cohort (research site).",
            "Levels": {c: sites.get(c, c) for c in sorted({s.cohort for s in scans})},
        },
        "n_sessions": {"Description": "Number of sessions (timepoints) of the subject in this dataset."},
        "session_id": {"Description": "Session label ses-<n>: the timepoint number of the scan."},
        "scanner_manufacturer": {
            "Description": "MRI scanner manufacturer.",
            "Levels": _levels(s.scanner and s.scanner.manufacturer for s in scans),
        },
        "scanner_model": {
            "Description": "MRI scanner model.",
            "Levels": _levels(s.scanner and s.scanner.model for s in scans),
        },
        "field_strength": {"Description": "Scanner field strength.", "Units": "T"},
        "stroke_type": {
            "Description": "Type of stroke (neuroradiologist's report). " + first,
            "Levels": _levels(s.report and s.report.stroke_type for s in scans),
        },
        "primary_location": {"Description": "Location of the primary stroke (neuroradiologist's report). " + first},
        "primary_hemisphere": {
            "Description": "Hemisphere of the primary stroke. " + first,
            "Levels": HEMISPHERE_LEVELS,
        },
        "vascular_territory": {
            "Description": "Vascular territory of the primary stroke. " + first,
            "Levels": _levels(s.report and s.report.vascular_territory for s in scans),
        },
        "pvh": {
            "Description": "Periventricular white matter hyperintensities, Fazekas grade. " + first,
            "Levels": PVH_LEVELS,
        },
        "dwmh": {"Description": "Deep white matter hyperintensities, Fazekas grade. " + first, "Levels": DWMH_LEVELS},
        "n_lesions": {"Description": "Number of lesion masks (primary + secondary). " + first},
        "lesions_lh_cortical": {"Description": "Left-hemisphere lesions reaching the cortex. " + first},
        "lesions_lh_subcortical": {
            "Description": "Left-hemisphere lesions wholly within white matter and subcortical structures. " + first
        },
        "lesions_rh_cortical": {"Description": "Right-hemisphere lesions reaching the cortex. " + first},
        "lesions_rh_subcortical": {
            "Description": "Right-hemisphere lesions wholly within white matter and subcortical structures. " + first
        },
        "lesions_other": {"Description": "Lesions in the brainstem or cerebellum. " + first},
        "lesion_volume": {
            "Description": "Total lesion volume in template space (sum of the lesion masks). " + first,
            "Units": "mm^3",
        },
        "split": {
            "Description": "Benchmark split of the subject (every session in the same one). Lesion columns and "
            "the report are n/a for test subjects, whose masks are withheld.",
            "Levels": {
                "training": "images and lesion masks released",
                "test": "images released, lesion masks withheld (scored with atlas-registry score)",
            },
        },
    }
    return d


_NA = {"const": NA}
_COUNT = {"anyOf": [{"type": "string", "pattern": "^[0-9]+$"}, _NA]}
_NUMBER = {"anyOf": [{"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$"}, _NA]}
_GRADE = {"anyOf": [{"enum": list(PVH_LEVELS)}, _NA]}
_TEXT = {"type": "string", "minLength": 1, "pattern": "^[^\t\n]+$"}
_ROW_TYPES = {
    "participant_id": {"type": "string", "pattern": "^sub-[a-z0-9]+$"},
    "session_id": {"type": "string", "pattern": "^ses-[0-9]+$"},
    "cohort": {"type": "string", "pattern": "^c[0-9]{4}$"},
    "n_sessions": _COUNT,
    "n_lesions": _COUNT,
    **{c: _COUNT for c, _, _ in _COUNT_COLUMNS},
    "field_strength": _NUMBER,
    "lesion_volume": _NUMBER,
    "pvh": _GRADE,
    "dwmh": _GRADE,
    "primary_hemisphere": {"anyOf": [{"enum": list(HEMISPHERE_LEVELS)}, _NA]},
    "split": {"enum": ["training", "test"]},
}


def tsv_json_schema(columns: list[str], title: str, schema_id: str | None = None) -> dict:
    """A JSON Schema (draft 2020-12) of one row of a participants/sessions TSV, cells as the strings
    the file holds (``n/a`` for a missing value); ``schema_id``: its ``$id``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **({"$id": schema_id} if schema_id else {}),
        "title": title,
        "description": "One row of the BIDS archive's table, every cell a string as written (n/a: missing). "
        "Written by atlas_registry.export.bids.tsv_json_schema(); participants.json in the "
        "archive describes each column and lists its levels.",
        "type": "object",
        "properties": {c: _ROW_TYPES.get(c, _TEXT) for c in columns},
        "required": list(columns),
        "additionalProperties": False,
        "x-column-order": list(columns),
    }


def participants(view: ReleaseView) -> tuple[list[dict], dict[str, list[dict]]]:
    """participants.tsv rows, and sessions.tsv rows of the subjects with several sessions."""
    by_subject: dict[str, list[ScanView]] = defaultdict(list)
    for s in view.standard_scans:
        by_subject[s.bids_subject].append(s)
    rows, sessions = [], {}
    for sub in sorted(by_subject):
        scans = sorted(by_subject[sub], key=lambda s: s.timepoint)
        rows.append(
            {"participant_id": sub, "cohort": scans[0].cohort, "n_sessions": len(scans), **_scan_columns(scans[0])}
        )
        if len(scans) > 1:
            sessions[sub] = [{"session_id": s.bids_session, **_scan_columns(s)} for s in scans]
    return rows, sessions


# -- documents ------------------------------------------------------------------------------------


def dataset_description(view: ReleaseView) -> dict:
    spec = view.spec
    made = [
        {
            "Name": p["name"],
            "Version": p["version"],
            "Description": p["description"],
            **({"CodeURL": p["code_url"]} if p.get("code_url") else {}),
        }
        for p in spec.standard.pipeline
    ]
    sources = [
        {
            **({"URL": d["url"]} if d.get("url") else {}),
            **({"DOI": d["doi"]} if d.get("doi") else {}),
            "Version": d["version"],
        }
        for d in spec.standard.source_datasets
    ]
    d = {
        "Name": spec.title,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            *made,
            {
                "Name": "atlas-registry",
                "Version": __version__,
                "Description": f"packaging of release {spec.name} (version {spec.version}, "
                f"registry revision {view.revision}): selection, union masks, "
                "sidecars and tables",
            },
        ],
        "SourceDatasets": sources,
        "License": spec.license or "n/a",
        "Authors": list(spec.authors),
        "HowToAcknowledge": spec.how_to_cite,
        "ReferencesAndLinks": list(spec.references),
    }
    if not d["SourceDatasets"]:
        del d["SourceDatasets"]
    return d


def split_sections(view: ReleaseView) -> list[str]:
    """Markdown lines: the benchmark splits (nothing when the release has none)."""
    if view.spec.splits is None:
        return []
    n_test = sum(1 for s in view.standard_scans if s.split == "test")
    return [
        "## Benchmark splits",
        "",
        f"The `split` column of `participants.tsv` tells each subject's set: `training` (images and lesion masks) "
        f"or `test` ({n_test} scans here: T1-weighted images only; the lesion masks are withheld and the lesion "
        "and report columns are `n/a`). A further hidden set is not released. Submit predicted masks named as "
        f"the union masks here (`*_space-{view.spec.standard.space}_label-L_desc-{UNION_DESC}_mask.nii.gz`, on the "
        "grid of the T1) to the curators, who score them with `atlas-registry score`.",
        "",
    ]


def pybids_sections(space: str) -> list[str]:
    """Markdown lines: how to load the dataset with pybids (a test runs the snippet on a build)."""
    return [
        "## Loading with pybids",
        "",
        "This is a derivative dataset (`DatasetType` `derivative`; every image has a `space-` entity). With "
        "its default settings pybids validates files as raw BIDS and indexes none of the images or masks here, "
        "without a warning. Load it as a derivative, without raw-BIDS validation:",
        "",
        "```python",
        "from bids import BIDSLayout",
        "",
        'layout = BIDSLayout("path/to/bids", is_derivative=True, validate=False)',
        f't1w = layout.get(suffix="T1w", space="{space}", extension=".nii.gz", return_type="filename")',
        f'masks = layout.get(suffix="mask", label="L", desc="{UNION_DESC}", extension=".nii.gz", '
        'return_type="filename")',
        'primary = layout.get(suffix="mask", desc="primary", extension=".nii.gz", return_type="filename")',
        'print(len(layout.get_subjects()), "subjects,", len(t1w), "T1w images,", len(masks), "lesion masks,",',
        '      len(primary), "primary lesion masks")',
        "```",
        "",
    ]


def readme(view: ReleaseView, release_notes: str = "") -> str:
    spec, space = view.spec, view.spec.standard.space
    n_sub = len({s.public_label for s in view.standard_scans})
    parts = [
        f"# {spec.title}",
        "",
        f"Release {spec.name}, version {spec.version}, {spec.date}.",
        "",
        spec.description.strip(),
        "",
        "## This dataset",
        "",
        f"The standardized subset: {len(view.standard_scans)} T1-weighted MRIs of {n_sub} subjects, defaced, "
        f"intensity-normalized and registered to {space}, with manually traced lesion masks. It is a BIDS "
        "derivative dataset.",
        "",
        "* `sub-<label>` is a public, pseudonymous subject label; `ses-<n>` is the timepoint "
        "(several sessions of one subject are the same person: do not treat them as independent).",
        f"* `*_space-{space}_T1w.nii.gz`: the defaced T1-weighted image.",
        f"* `*_space-{space}_label-L_desc-{UNION_DESC}_mask.nii.gz`: every lesion of the scan in one mask "
        "(as ATLAS 2.0 shipped).",
        f"* `*_space-{space}_label-L_desc-primary_mask.nii.gz`, `*_desc-secondary1_mask.nii.gz`, ...: one mask "
        "per lesion, the primary apart from the secondary lesions (secondary 1 is the largest).",
        "* `participants.tsv` (described by `participants.json`): cohort, scanner, the neuroradiologist's "
        "report and lesion counts; `n/a` marks a missing value. Subjects with several sessions have "
        "`sub-<label>/sub-<label>_sessions.tsv`.",
        "",
        *split_sections(view),
        *pybids_sections(space),
        *linking_sections(public=True),
        *ddi.terms_sections(spec),
        *ddi.closing_sections(spec, release_notes),
    ]
    return "\n".join(parts)


# -- writing ---------------------------------------------------------------------------------------


def write_bids(
    output, view: ReleaseView, gate, *, changes: str, release_notes: str = "", masks: list | None = None
) -> dict[str, str]:
    """Write ``bids/``; returns scan code -> path of its T1 in the archive (for the Parquet images table).
    ``masks``, when given, receives one :class:`MaskFile` per mask file written (for the Parquet masks table)."""
    space = view.spec.standard.space
    store = output.store
    t1_paths: dict[str, str] = {}

    def doc(rel: str, data, *, rev=None, scan=None):
        """Write a text file of the archive (a dict: a JSON sidecar, de-identification checked)."""
        if isinstance(data, dict):
            gate.sidecar("bids/" + rel, data)
            data = json_bytes(data)
        gate.no_native_ids("bids/" + rel, data)
        output.write("bids/" + rel, data, archive="bids", rev=rev, scan=scan)

    doc("dataset_description.json", json_bytes(dataset_description(view)))  # the curators' words: ids only
    doc("README", readme(view, view.public_text(release_notes) or "").encode())
    doc("CHANGES", (view.public_text(changes) or "").encode())
    rows, sessions = participants(view)
    cols = column_descriptions(view, list(view.standard_scans))
    pcols, scols_ = participant_columns(view), session_columns(view)
    gate.table("bids/participants.tsv", "participants", pcols, rows, text_columns=TEXT_COLUMNS)
    doc("participants.tsv", _tsv(pcols, rows).encode(), rev=view.revision)
    # the column dictionary, with the top-level Description the BIDS schema recommends for tabular sidecars
    # (without it the official validator warns SIDECAR_KEY_RECOMMENDED)
    doc(
        "participants.json",
        {
            "Description": "One row per subject of the standardized subset: cohort, scanner, the "
            "neuroradiologist's report and lesion counts at the first session.",
            **{c: cols[c] for c in pcols},
        },
    )
    for sub, srows in sessions.items():
        gate.table(f"bids/{sub}/{sub}_sessions.tsv", "sessions", scols_, srows, text_columns=TEXT_COLUMNS)
        doc(f"{sub}/{sub}_sessions.tsv", _tsv(scols_, srows).encode(), rev=view.revision)
    if sessions:  # one column dictionary for every sub-<label>_sessions.tsv (inheritance principle)
        scols = column_descriptions(view, list(view.standard_scans), sessions=True)
        scols["session_id"] = {
            "Description": "Session label ses-<n>: the timepoint number of the scan; one row "
            "per session of a subject scanned more than once."
        }
        doc(
            "sessions.json",
            {
                "Description": "One row per session (timepoint) of a subject scanned more than once: "
                "scanner, the neuroradiologist's report and lesion counts at that "
                "session.",
                **{c: scols[c] for c in scols_},
            },
        )

    for s in view.standard_scans:
        _write_scan(output, gate, store, s, space, t1_paths, doc, masks if masks is not None else [])
    return t1_paths


@dataclass(frozen=True)
class MaskFile:
    """A mask file of the BIDS archive: ``sha256``/``size`` known, or (a union mask computed in the
    background) ``pending``, a future giving (size, sha256)."""

    scan: str  # native code (the Parquet table names the public one)
    lesion: int | None  # None: the union of every lesion of the scan
    desc: str
    path: str
    size: int | None = None
    sha256: str | None = None
    pending: Future[tuple[int, str]] | None = None

    def resolved(self) -> tuple[int, str]:
        if self.pending is not None:
            return self.pending.result()
        assert self.size is not None and self.sha256 is not None  # known unless pending
        return self.size, self.sha256


def _write_union(output, gate, s: ScanView, rel: str, rev: int) -> tuple[int, str]:
    """The union mask of a scan with several lesions (computed once per set of inputs, then cached)."""
    key = output.cache.key(UNION_RECIPE, *[_standard_mask(les).sha256 for les in s.lesions])
    data = output.cache.get_or_make(key, lambda: union_mask_bytes(output.store, s.lesions))
    gate.nifti(rel, data, sha256_bytes(data), mask=True)
    e = output.write(rel, data, archive="bids", scan=s.code, rev=rev)
    return e.size, e.sha256


def _write_scan(output, gate, store, s: ScanView, space: str, t1_paths: dict, doc, masks: list) -> None:
    assert s.t1_standard is not None  # a standardized scan
    t1 = t1_path(s, space)
    t1_paths[s.code] = "bids/" + t1
    output.copy_object(
        "bids/" + t1,
        s.t1_standard.sha256,
        s.t1_standard.size,
        archive="bids",
        scan=s.code,
        rev=s.t1_standard.created_rev_id,
    )
    path = output.object_path(s.t1_standard.sha256)
    gate.nifti("bids/" + t1, path, s.t1_standard.sha256, mask=False)
    output.submit(gate.defaced, "bids/" + t1, path, s.t1_standard.sha256)
    template = template_reference(space, s.t1_standard.voxel_mm)
    t1_side = {
        "SkullStripped": False,
        "Defaced": True,
        "IntensityNormalized": True,
        "Description": f"T1-weighted MRI, defaced, intensity-normalized, linearly registered to {space}. "
        "Derived from the native-space T1 of the restricted archive (not named here: "
        "see README) and the template it was registered to (Sources).",
        "SpatialReference": template,
        "Sources": [template] if template.startswith("http") else [],
    }
    if not t1_side["Sources"]:
        del t1_side["Sources"]
    doc(_sidecar(t1), t1_side, rev=s.t1_standard.created_rev_id, scan=s.code)
    if s.withheld:  # a test scan: its masks stay in the registry
        return

    lesion_paths = []
    for les in s.lesions:
        rel = mask_path(s, space, lesion_desc(les.number))
        lesion_paths.append(rel)
        m = _standard_mask(les)
        output.copy_object("bids/" + rel, m.sha256, m.size, archive="bids", scan=s.code, rev=m.created_rev_id)
        masks.append(MaskFile(s.code, les.number, lesion_desc(les.number), "bids/" + rel, m.size, m.sha256))
        gate.nifti("bids/" + rel, output.object_path(m.sha256), m.sha256, mask=True)
        what = "primary lesion" if les.is_primary else f"secondary lesion {les.number} (largest secondary first)"
        side = {
            "Type": "Lesion",
            "Description": f"Manually traced {what}, resampled to {space} (nearest neighbour).",
            "Sources": [_uri(t1)],
            "SpatialReference": _uri(t1),
            "LesionNumber": les.number,
            "Hemisphere": les.hemisphere or NA,
            "Location": les.location or NA,
            "Volume": round(m.volume_mm3, 3),
            "VolumeUnits": "mm^3",
        }
        doc(_sidecar(rel), side, rev=m.created_rev_id, scan=s.code)

    union = mask_path(s, space, UNION_DESC)
    rev = max(_standard_mask(les).created_rev_id for les in s.lesions)
    if len(s.lesions) == 1:
        m = _standard_mask(s.lesions[0])
        output.copy_object("bids/" + union, m.sha256, m.size, archive="bids", scan=s.code, rev=rev)
        masks.append(MaskFile(s.code, None, UNION_DESC, "bids/" + union, m.size, m.sha256))
    else:
        fut = output.submit(_write_union, output, gate, s, "bids/" + union, rev)
        masks.append(MaskFile(s.code, None, UNION_DESC, "bids/" + union, pending=fut))
    side = {
        "Type": "Lesion",
        "Description": "Every lesion of the scan in one mask (voxel-wise union of the per-lesion masks).",
        "Sources": [_uri(p) for p in lesion_paths],
        "SpatialReference": _uri(t1),
        "NumberOfLesions": len(s.lesions),
    }
    doc(_sidecar(union), side, rev=rev, scan=s.code)
