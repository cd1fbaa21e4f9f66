"""Scan thumbnails: one axial T1 slice through the primary lesion with the lesion outlined.

Images are reoriented to RAS (nibabel's closest canonical) so every cohort's thumbnail has the
same orientation whatever its scanner's axis order. Written with Pillow (no matplotlib figure per
scan: a full release has hundreds).
"""

from __future__ import annotations

import io

import numpy as np


def _canonical(img):
    import nibabel as nib

    return nib.as_closest_canonical(img)


def axial_thumbnail(t1, mask, *, size: int = 160) -> bytes:
    """PNG bytes: the axial slice of ``t1`` through the centre of ``mask``, outline in red."""
    from PIL import Image
    from scipy import ndimage

    t1c, mc = _canonical(t1), _canonical(mask)
    vol = np.asarray(t1c.dataobj, dtype=np.float32)
    m = np.asarray(mc.dataobj) > 0
    if m.shape != vol.shape:
        raise ValueError("mask and image grids differ")
    zs = np.nonzero(m.any(axis=(0, 1)))[0]
    z = int(zs[len(zs) // 2]) if len(zs) else vol.shape[2] // 2
    sl = vol[:, :, z]
    lo, hi = np.percentile(sl, [1, 99.5]) if sl.any() else (0.0, 1.0)
    grey = np.clip((sl - lo) / max(hi - lo, 1e-6), 0, 1)
    ms = m[:, :, z]
    edge = ms & ~ndimage.binary_erosion(ms)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    rgb[edge] = (255, 40, 40)
    # RAS array [x, y] -> picture rows = anterior at top, columns = patient left on the right
    pic = np.flipud(np.transpose(rgb, (1, 0, 2)))
    zx, zy = (float(v) for v in t1c.header.get_zooms()[:2])
    h, w = pic.shape[:2]
    aspect = (h * zy) / (w * zx)
    out_w = size
    out_h = max(1, int(round(size * aspect)))
    im = Image.fromarray(np.ascontiguousarray(pic)).resize((out_w, out_h), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
