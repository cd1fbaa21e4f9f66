"""A synthetic BIDS delivery: a raw dataset of the synthetic T1s with lesion masks as an ATLAS 2.0
derivative (``derivatives/lesion_masks/sub-X/ses-Y/anat/sub-X_ses-Y_space-orig_label-L_desc-T1lesion_mask``),
under the site's own subject and session labels, with MAP.csv carrying the reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import naming, niio
from .delivery import SESSION_LABELS, _map_csv, _mk, _scans, _t1_row, site_subject

DESCRIPTION = {
    "Name": "Synthetic site delivery",
    "BIDSVersion": "1.8.0",
    "License": "CC0",
    "Authors": ["Site Imaging Team", "Stroke Unit"],
    "DatasetType": "raw",
}
DERIVATIVE = {
    "Name": "Lesion masks",
    "BIDSVersion": "1.8.0",
    "DatasetType": "derivative",
    "License": "CC0",
    "GeneratedBy": [{"Name": "Manual tracing", "Description": "traced in MRIcron"}],
}


def write_bids_delivery(native_root, cohort: str, out, seed: int = 0, scans: list[str] | None = None) -> dict:
    native_root, out = Path(native_root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, where, idents = [], {}, set()
    participants = set()
    for sid, rec, lesion_rows, scanner in _scans(native_root, cohort):
        if scans is not None and str(sid) not in scans:
            continue
        subject, session = site_subject(cohort, sid.subject, seed), SESSION_LABELS[sid.timepoint - 1]
        where[str(sid)] = (subject, session)
        idents.add(subject)
        participants.add(subject)
        stem = f"sub-{subject}_ses-{session}"
        t1 = niio.load(native_root / naming.native_relpath(sid, "t1"))
        niio.save_nifti(t1, _mk(out / f"sub-{subject}/ses-{session}/anat/{stem}_T1w.nii.gz"))
        side = {
            "MagneticFieldStrength": float(scanner["Field Strength (T)"]),
            "Manufacturer": scanner["Manufacturer"],
            "ManufacturersModelName": scanner["Model"],
            "RepetitionTime": 2.3,
            "EchoTime": 0.00298,
            "InstitutionName": "St Elsewhere General Hospital",
            "AcquisitionDateTime": "2014-03-12T10:15:00",
        }
        idents |= {"St Elsewhere General Hospital", "2014-03-12T10:15:00"}
        niio.write_atomic(
            out / f"sub-{subject}/ses-{session}/anat/{stem}_T1w.json",
            (json.dumps(side, indent=1) + "\n").encode("utf-8"),
        )
        union: np.ndarray | None = None
        for les in lesion_rows:
            raw = niio.load(native_root / naming.native_relpath(sid, "lesion", "raw_voi", int(les["Lesion"])))
            arr = np.asanyarray(raw.dataobj) != 0
            union = arr if union is None else (union | arr)
        assert union is not None  # every scan has its primary lesion
        mask = t1.__class__(union.astype(np.uint8), t1.affine)
        mask.header.set_xyzt_units("mm", "sec")
        niio.save_nifti(
            mask,
            _mk(
                out / f"derivatives/lesion_masks/sub-{subject}/ses-{session}/anat/"
                f"{stem}_space-orig_label-L_desc-T1lesion_mask.nii.gz"
            ),
        )
        row = _t1_row(subject, session, rec, scanner, "", lesion_rows[0]["Tracer"], lesion_rows[0]["Reviewer"])
        row.update(manufacturer="", model="", field_strength="")
        rows.append(row)
    niio.write_atomic(out / "dataset_description.json", (json.dumps(DESCRIPTION, indent=1) + "\n").encode())
    niio.write_atomic(out / "README", b"Synthetic site delivery for atlas-registry intake tests.\n")
    niio.write_atomic(
        out / "participants.tsv", ("participant_id\n" + "".join(f"sub-{p}\n" for p in sorted(participants))).encode()
    )
    niio.write_atomic(
        out / "derivatives/lesion_masks/dataset_description.json", (json.dumps(DERIVATIVE, indent=1) + "\n").encode()
    )
    niio.write_atomic(out / "MAP.csv", _map_csv(rows))
    return {"map": rows, "identifiers": sorted(idents), "scans": where}
