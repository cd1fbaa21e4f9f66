"""Synthetic site deliveries, as sites send them, from a synthetic native cohort.

:func:`write_delivery` turns ``NATIVE_ROOT/<cohort>`` (from ``synth``) back into what a site would
deliver before intake: hospital-style subject identifiers and session labels, files under the site's
own names, the neuroradiologist's reading in MAP.csv, and

* ``kind="nifti"``: ``<subject>/<session>/anat.nii.gz`` and one ``lesion<k>.nii.gz`` per lesion;
* ``kind="dicom"``: ``<subject>/<session>/<series>/IM<k>.dcm``: the T1 as a 3-D MPRAGE series of
  classic single-frame MR slices (or one enhanced multi-frame object), plus a localizer and a 2-D
  FLAIR series to be skipped, every file carrying identifying attributes (PatientName, PatientID,
  PatientBirthDate, AccessionNumber, InstitutionName, study dates and times, UIDs, physicians ...)
  that intake must leave behind; lesion masks as NIfTI under ``masks/``;
* ``kind="bids"``: a raw BIDS dataset with the masks as an ATLAS 2.0-style derivative.

The delivery's identifying values are listed in ``identifiers.json`` beside it (not inside it) so a
test can look for every one of them in every output byte.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .. import metadata as md
from .. import naming, niio

MAP_COLUMNS = (
    "subject",
    "session",
    "role",
    "path",
    "lesion",
    "hemisphere",
    "location",
    "tracer",
    "reviewer",
    "stroke_type",
    "primary_location",
    "primary_hemisphere",
    "vascular_territory",
    "pvh",
    "dwmh",
    "notes",
    "manufacturer",
    "model",
    "field_strength",
)
SESSION_LABELS = ("baseline", "followup", "followup2")


def site_subject(cohort: str, number: int, seed: int = 0) -> str:
    """A hospital-number-like identifier (the kind intake must never let through)."""
    rng = np.random.default_rng([seed, int(cohort[1:]), number])
    return f"MRN{int(rng.integers(1_000_000, 9_999_999))}"


def _scans(native_root: Path, cohort: str):
    tables = md.read_metadata(native_root)
    scans = tables["scans"][tables["scans"]["Cohort"] == cohort]
    lesions = tables["lesions"]
    scanners = tables["scanners"][tables["scanners"]["Cohort"] == cohort].iloc[0].to_dict()
    for rec in scans.sort_values("Scan ID").to_dict(orient="records"):
        sid = naming.parse_scan_id(rec["Scan ID"])
        rows = lesions[lesions["Scan ID"] == rec["Scan ID"]].sort_values("Lesion", key=lambda c: c.astype(int))
        yield sid, rec, rows.to_dict(orient="records"), scanners


def _map_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(MAP_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in MAP_COLUMNS})
    return buf.getvalue().encode("utf-8")


def _t1_row(subject: str, session: str, rec: dict, scanner: dict, path: str, tracer: str, reviewer: str) -> dict:
    return {
        "subject": subject,
        "session": session,
        "role": "t1",
        "path": path,
        "tracer": tracer,
        "reviewer": reviewer,
        "stroke_type": rec["Stroke type"],
        "primary_location": rec["Primary Stroke Location"],
        "primary_hemisphere": rec["Primary Stroke Location Hemisphere"],
        "vascular_territory": rec["Vascular territory"],
        "pvh": rec["PVH"],
        "dwmh": rec["DWMH"],
        "notes": rec["Notes"],
        "manufacturer": scanner["Manufacturer"],
        "model": scanner["Model"],
        "field_strength": scanner["Field Strength (T)"],
    }


def write_delivery(
    native_root,
    cohort: str,
    out,
    kind: str = "nifti",
    seed: int = 0,
    scans: list[str] | None = None,
    enhanced: bool = False,
) -> dict:
    """Write a delivery of ``cohort`` (optionally only the scans ``scans``) into ``out``; returns
    {"map": rows, "identifiers": [values], "scans": {scan id: (site subject, session)}}."""
    native_root, out = Path(native_root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, idents, where = [], set(), {}
    for sid, rec, lesion_rows, scanner in _scans(native_root, cohort):
        if scans is not None and str(sid) not in scans:
            continue
        subject, session = site_subject(cohort, sid.subject, seed), SESSION_LABELS[sid.timepoint - 1]
        where[str(sid)] = (subject, session)
        idents.add(subject)
        t1 = niio.load(native_root / naming.native_relpath(sid, "t1"))
        base = f"{subject}/{session}"
        if kind == "dicom":
            from .dicom import write_series

            t1_path = ""
            idents |= write_series(out / base, t1, scanner, subject, session, seed, sid, enhanced=enhanced)
            mask_dir = f"masks/{subject}_{session}"
        else:
            t1_path = f"{base}/anat.nii.gz"
            niio.save_nifti(t1, _mk(out / t1_path))
            mask_dir = base
        tracer, reviewer = lesion_rows[0]["Tracer"], lesion_rows[0]["Reviewer"]
        row = _t1_row(subject, session, rec, scanner, t1_path, tracer, reviewer)
        if kind == "dicom":  # the scanner comes from the headers' allow-listed keys
            row.update(manufacturer="", model="", field_strength="")
        rows.append(row)
        for les in lesion_rows:
            n = int(les["Lesion"])
            raw = niio.load(native_root / naming.native_relpath(sid, "lesion", "raw_voi", n))
            rel = f"{mask_dir}/lesion{n + 1}.nii.gz"
            niio.save_nifti(raw, _mk(out / rel))
            rows.append(
                {
                    "subject": subject,
                    "session": session,
                    "role": "lesion",
                    "path": rel,
                    "lesion": n,
                    "hemisphere": les["Hemisphere"],
                    "location": les["Location"],
                    "tracer": les["Tracer"],
                    "reviewer": les["Reviewer"],
                }
            )
    niio.write_atomic(out / "MAP.csv", _map_csv(rows))
    niio.write_atomic(
        out.parent / f"{out.name}.identifiers.json", (json.dumps(sorted(idents), indent=1) + "\n").encode("utf-8")
    )
    return {"map": rows, "identifiers": sorted(idents), "scans": where}


def _mk(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    return p
