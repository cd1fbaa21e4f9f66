"""Scan thumbnails: one axial T1 slice through the primary lesion with the lesion outlined.

Images are reoriented to RAS (nibabel's closest canonical) so every cohort's thumbnail has the
same orientation whatever its scanner's axis order: anterior at the top, neurological convention
(the patient's left on the picture's left, as MRIcron shows it). The slice is the one where the
lesion is largest. The picture is resampled smoothly to ``size`` pixels wide (true aspect ratio)
and the outline is drawn at that resolution, two pixels wide, so it stays visible on small
lesions. Written with Pillow (no matplotlib figure per scan: a full release has hundreds); the
PNG carries no text chunks, so the same images always give the same bytes.
"""

from __future__ import annotations

import io
import os

import numpy as np

OUTLINE_RGB = (255, 32, 32)
OUTLINE_INDEX = 255
DEFAULT_SIZE = 180
_PALETTE = [v for g in range(OUTLINE_INDEX) for v in (g * 255 // (OUTLINE_INDEX - 1),) * 3] + list(OUTLINE_RGB)


def _canonical(img):
    import nibabel as nib

    return nib.as_closest_canonical(img)


def lesion_slice(mask: np.ndarray) -> int:
    """The axial slice (RAS z index) where ``mask`` covers most voxels; the middle slice if empty."""
    areas = mask.sum(axis=(0, 1))
    return int(np.argmax(areas)) if areas.any() else mask.shape[2] // 2


def _picture(plane: np.ndarray) -> np.ndarray:
    """RAS array ``[x, y]`` -> picture rows = anterior at the top, columns = patient's left first."""
    return np.ascontiguousarray(np.flipud(plane.T))


def _grey(plane: np.ndarray) -> np.ndarray:
    """uint8 grey levels of a T1 slice, windowed between its 1st and 99.5th percentiles."""
    lo, hi = np.percentile(plane, [1, 99.5]) if plane.any() else (0.0, 1.0)
    return (np.clip((plane - lo) / max(float(hi - lo), 1e-6), 0, 1) * 255).astype(np.uint8)


def _outline(mask: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """The two-pixel outline of a binary slice resampled to ``out_size`` (width, height)."""
    from PIL import Image
    from scipy import ndimage

    src = Image.fromarray(mask.astype(np.uint8) * 255)
    big = np.asarray(src.resize(out_size, Image.Resampling.BILINEAR)) >= 128
    if not big.any() and mask.any():  # a lesion smaller than a pixel: keep it visible
        big = np.asarray(src.resize(out_size, Image.Resampling.NEAREST)) > 0
    return ndimage.binary_dilation(big) & ~ndimage.binary_erosion(big)


def axial_thumbnail(t1, mask=None, *, size: int = DEFAULT_SIZE) -> bytes:
    """PNG bytes: the axial slice of ``t1`` where ``mask`` is largest, the lesion outlined in red
    (``mask`` None: the middle slice, no outline)."""
    from PIL import Image

    t1c = _canonical(t1)
    vol = np.asarray(t1c.dataobj, dtype=np.float32)
    if vol.ndim > 3:
        vol = vol[..., 0]
    m = np.zeros(vol.shape, dtype=bool) if mask is None else np.asarray(_canonical(mask).dataobj) > 0
    if m.shape != vol.shape:
        raise ValueError(f"mask grid {m.shape} differs from the image grid {vol.shape}")
    z = lesion_slice(m)
    grey = _picture(_grey(vol[:, :, z]))
    zx, zy = (float(v) for v in t1c.header.get_zooms()[:2])
    h, w = grey.shape
    out = (size, max(1, int(round(size * (h * zy) / (w * zx)))))
    # a palette picture: 255 grey levels and the outline colour (a third of the bytes of RGB)
    idx = np.minimum(np.asarray(Image.fromarray(grey).resize(out, Image.Resampling.BICUBIC)), OUTLINE_INDEX - 1)
    idx[_outline(_picture(m[:, :, z]), out)] = OUTLINE_INDEX
    pic = Image.fromarray(np.ascontiguousarray(idx), mode="P")
    pic.putpalette(_PALETTE)
    buf = io.BytesIO()
    pic.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def thumbnail_file(t1_path: str | os.PathLike, mask_path: str | os.PathLike | None, size: int = DEFAULT_SIZE) -> bytes:
    """:func:`axial_thumbnail` of two NIfTI files (``.nii.gz``, ``.voi``; store objects too)."""
    from . import niio

    return axial_thumbnail(niio.load(t1_path), niio.load(mask_path) if mask_path else None, size=size)
