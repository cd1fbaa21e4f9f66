"""What the neuroradiologist and the quality-control tracer write about a synthetic scan.

From the masks actually generated: the lesion counts per hemisphere and location, the primary stroke
location in words, its hemisphere (Left/Right/Brainstem/Bilateral) and vascular territory, plus the
plan's stroke type, Fazekas grades and notes.  These become the rows of the metadata tables.
"""

from __future__ import annotations

import numpy as np

from .. import anatomy, metadata, naming
from .plan import ScanPlan

SIDE = {"left": "Left", "right": "Right"}


def _labels(world: np.ndarray) -> np.ndarray:
    return anatomy.sample_labels(anatomy.regions(), world)


def describe(world: np.ndarray, hemisphere: str, location: str) -> tuple[str, str]:
    """(primary stroke location in words, vascular territory) of a lesion from its voxels' world
    coordinates and its classification."""
    x, y, z = world.mean(axis=0)
    if location == "other":
        if abs(x) < 15 and y > -45:
            part = "Medulla" if z < -45 else ("Pons" if z < -20 else "Midbrain")
            return part, "Basilar"
        side = "left" if x < 0 else "right"
        return f"Cerebellum ({side})", "PICA" if z < -35 else "SCA"
    side = SIDE[hemisphere]
    if location == "subcortical":
        labels = _labels(world)
        deep = np.count_nonzero(labels == anatomy.DEEP) / max(1, int(np.count_nonzero(labels)))
        if deep >= 0.3:
            return (f"{side} thalamus", "PCA") if y < -12 else (f"{side} basal ganglia", "MCA")
        if z > 18:
            return f"{side} corona radiata", "MCA"
        if abs(x) < 30 and -20 < y < 15:
            return f"{side} internal capsule", "Anterior choroidal" if y < -5 else "MCA"
        return f"{side} periventricular white matter", "MCA"
    if y < -65:
        return f"{side} occipital lobe", "PCA"
    if y > 0:
        return f"{side} frontal lobe", "ACA" if abs(x) < 22 and z > 20 else "MCA"
    if z < 0 and abs(x) > 30:
        return f"{side} temporal lobe", "MCA"
    return f"{side} parietal lobe", "MCA"


def scan_row(plan: ScanPlan, classes: list[tuple[str, str]], primary_world: np.ndarray, primary_class) -> dict:
    """The scans-table row of a scan: ``classes`` are (hemisphere, location) of all its lesions."""
    counts = {c: 0 for c in metadata.COUNT_COLUMNS}
    for h, loc in classes:
        counts[metadata.count_column(h, loc)] += 1
    where, territory = describe(primary_world, *primary_class)
    if plan.bilateral:
        side = "Bilateral"
    else:
        side = {"left": "Left", "right": "Right", "other": "Brainstem"}[primary_class[0]]
    notes = []
    if plan.primary_not_largest:
        notes.append("Primary lesion chosen by the neuroradiologist; it is not the largest.")
    if plan.timepoint > 1:
        notes.append(f"Timepoint {plan.timepoint} of subject {naming.parse_scan_id(plan.scan_id).subject_code}.")
    if plan.artefact == "motion":
        notes.append("Motion artefact.")
    elif plan.artefact == "noise":
        notes.append("Poor image quality (low signal-to-noise).")
    if plan.bilateral:
        notes.append("Strokes in both hemispheres.")
    return {
        metadata.SCAN_ID: plan.scan_id,
        metadata.COHORT: plan.cohort,
        **counts,
        "Stroke type": plan.stroke_type,
        "Primary Stroke Location": where,
        "Primary Stroke Location Hemisphere": side,
        "Vascular territory": territory,
        "PVH": plan.pvh,
        "DWMH": plan.dwmh,
        "Notes": " ".join(notes),
        metadata.PRIMARY_NOT_LARGEST: "Yes" if plan.primary_not_largest else "No",
    }


def lesion_row(plan: ScanPlan, number: int, hemisphere: str, location: str) -> dict:
    return {
        metadata.SCAN_ID: plan.scan_id,
        "Lesion": number,
        "Hemisphere": hemisphere,
        "Location": location,
        "Tracer": plan.tracer,
        "Reviewer": plan.reviewer,
    }
