"""A picture of the synthetic data for people: slices of one scan with its lesions outlined.

Top row: the native T1 (axial, coronal, sagittal through the primary lesion); bottom row: the same
scan in standard space, defaced, when it is in the standardized subset.  Written with matplotlib's
Agg backend and no metadata that changes between runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import naming, niio

PREVIEW = "preview.png"
_COLOURS = ("#ff3030", "#30c0ff", "#ffd000", "#60ff60", "#ff60ff", "#ffa040")


def _canonical(path: Path):
    import nibabel as nib

    img = nib.as_closest_canonical(niio.load(path))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def _lesion_paths(root: Path, scan_id: str, standard: bool) -> list[Path]:
    out = []
    for n in range(0, 64):
        rel = (
            naming.standard_relpath(scan_id, "lesion", n)
            if standard
            else naming.native_relpath(scan_id, "lesion", "smooth_nii", n)
        )
        p = root / rel
        if not p.is_file():
            break
        out.append(p)
    return out


def _row(axes, t1: np.ndarray, lesions: list[np.ndarray], title: str) -> None:
    centre = (
        np.argwhere(lesions[0]).mean(axis=0).round().astype(int)
        if lesions and lesions[0].any()
        else (np.array(t1.shape) // 2)
    )
    vmax = float(np.percentile(t1[t1 > 0], 99.5)) if (t1 > 0).any() else 1.0
    views = (("axial", 2), ("coronal", 1), ("sagittal", 0))
    for ax, (name, axis) in zip(axes, views, strict=False):
        idx: list[slice | int] = [slice(None)] * 3
        idx[axis] = int(np.clip(centre[axis], 0, t1.shape[axis] - 1))
        ax.imshow(t1[tuple(idx)].T, origin="lower", cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
        for k, les in enumerate(lesions):
            sl = les[tuple(idx)].T
            if sl.any():
                ax.contour(sl.astype(float), levels=[0.5], colors=_COLOURS[k % len(_COLOURS)], linewidths=0.9)
        ax.set_title(f"{title} - {name}", fontsize=8)
        ax.set_axis_off()


def write_preview(out: str | Path, scan_id: str, standardized: bool) -> Path:
    """Draw ``scan_id`` from the files under ``out`` into ``out/preview.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = [("native", out / "native", naming.native_relpath(scan_id, "t1"), False)]
    if standardized:
        rows.append(("standard (defaced)", out / "standard", naming.standard_relpath(scan_id, "t1"), True))
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3.2 * len(rows)), squeeze=False)
    for r, (label, root, t1_rel, std) in enumerate(rows):
        t1, _ = _canonical(root / t1_rel)
        lesions = [_canonical(p)[0] > 0 for p in _lesion_paths(root, scan_id, std)]
        _row(axes[r], t1, lesions, f"{scan_id} {label}")
    fig.suptitle("Synthetic ATLAS scan with lesion outlines (primary in red)", fontsize=9)
    fig.tight_layout()
    buf_path = out / PREVIEW
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    niio.write_atomic(buf_path, buf.getvalue())
    return buf_path
