"""Writing one synthetic scan's files, named by :mod:`atlas_registry.naming`.

Native: the T1 and, per lesion, ``_LesionRaw.voi``, ``_LesionSmooth.voi`` and ``_LesionSmooth.nii.gz``
(``_1``, ``_2``, … for secondary lesions).  Standard: the defaced T1 and the smoothed masks in
MNI152 2009 space.  Headers are clean (no text, no extensions), orientation codes set (scanner for
native, MNI-152 for standard) and units millimetres.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from .. import naming, niio

XFORM_SCANNER, XFORM_MNI = 1, 4


def t1_image(data: np.ndarray, affine: np.ndarray, standard: bool = False) -> nib.Nifti1Image:
    """A T1 image with a clean header: int16 voxels, qform = sform, codes set, mm units."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(data.dtype)
    hdr.set_xyzt_units("mm", "sec")
    img = nib.Nifti1Image(data, affine, hdr)
    code = XFORM_MNI if standard else XFORM_SCANNER
    img.set_qform(affine, code=code)
    img.set_sform(affine, code=code)
    return img


def mask_image(mask: np.ndarray, ref: nib.Nifti1Image) -> nib.Nifti1Image:
    """A 0/1 uint8 mask image on the grid (and with the orientation codes) of ``ref``."""
    hdr = ref.header.copy()
    hdr.set_data_dtype(np.uint8)
    img = nib.Nifti1Image((np.asarray(mask) != 0).astype(np.uint8, order="K"), ref.affine, hdr)
    img.set_qform(ref.affine, code=int(ref.header["qform_code"]))
    img.set_sform(ref.affine, code=int(ref.header["sform_code"]))
    return img


def _full(shape, box, crop) -> np.ndarray:
    """A full-size 0/1 uint8 mask from a crop, in NIfTI's (Fortran) voxel order: cheap to write."""
    out = np.zeros(shape, dtype=np.uint8, order="F")
    out[box] = crop
    return out


def write_native(root: Path, scan_id: str, t1: nib.Nifti1Image, lesions) -> None:
    """The native files of one scan; ``lesions`` are (number, Lesion) with number 0 the primary."""
    niio.save_nifti(t1, root / naming.native_relpath(scan_id, "t1"))
    for number, les in lesions:
        raw = _full(t1.shape, les.box, les.raw)
        smooth = _full(t1.shape, les.box, les.smooth)
        niio.save_voi(raw, t1, root / naming.native_relpath(scan_id, "lesion", "raw_voi", number))
        niio.save_voi(smooth, t1, root / naming.native_relpath(scan_id, "lesion", "smooth_voi", number))
        niio.save_nifti(mask_image(smooth, t1), root / naming.native_relpath(scan_id, "lesion", "smooth_nii", number))


def write_standard(root: Path, scan_id: str, t1: nib.Nifti1Image, lesions) -> None:
    """The standardized files of one scan: defaced T1 and smoothed masks in template space."""
    niio.save_nifti(t1, root / naming.standard_relpath(scan_id, "t1"))
    for number, les in lesions:
        mask = _full(t1.shape, les.std_box, les.std)
        niio.save_nifti(mask_image(mask, t1), root / naming.standard_relpath(scan_id, "lesion", number))
