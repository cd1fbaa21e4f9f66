"""A lesion's current files, out of the registry: the starting point of a corrected tracing.

``atlas-registry mask export SCAN --lesion N --out FILE.voi`` writes the lesion's current raw VOI
(MRIcron's format, on the scan's T1 grid), to be corrected in a tracing tool and given back with
``atlas-registry revise mask SCAN --lesion N --raw FILE.voi --issue M``. ``--erode K`` removes the
mask's K outer voxel layers first (keeping the largest piece, so one lesion stays one lesion): the
correction of a mask over-traced at its boundary, as the README tour and the demo make it.
"""

from __future__ import annotations

from .config import Workspace


def erode(mask, layers: int):
    """``mask`` without its ``layers`` outer voxel layers, largest connected piece only."""
    import numpy as np
    from scipy import ndimage

    out = np.asarray(mask) > 0
    if layers > 0:
        out = ndimage.binary_erosion(out, iterations=layers)
    labels, n = ndimage.label(out)
    if n > 1:  # keep one lesion one lesion
        sizes = ndimage.sum(out, labels, range(1, n + 1))
        out = labels == (1 + int(np.argmax(sizes)))
    return out


def raw_voi(ws: Workspace, scan: str, lesion: int = 0, *, erode_layers: int = 0) -> bytes:
    """The current raw VOI of lesion ``lesion`` of ``scan`` (``erode_layers`` outer layers removed).

    ``REV001`` no such scan, ``REV005`` no such lesion, ``REV013`` nothing left after erosion."""
    import numpy as np
    from sqlmodel import Session, col, select

    from . import db, niio, tracker
    from .errors import AtlasError
    from .models import Image, Lesion, LesionMask
    from .objstore import open_store

    tracker.require_registry(ws)
    with Session(db.engine(ws)) as s:
        tp = tracker.timepoint(s, scan, "REV001")
        row = s.exec(
            select(LesionMask.sha256)
            .join(Lesion, col(Lesion.id) == col(LesionMask.lesion_id))
            .where(
                Lesion.timepoint_id == tp.id,
                Lesion.number == lesion,
                col(Lesion.retired_rev_id).is_(None),
                LesionMask.variant == "raw_voi",
                LesionMask.space == "native",
                col(LesionMask.retired_rev_id).is_(None),
            )
        ).first()
        t1_sha = s.exec(
            select(Image.sha256).where(
                Image.timepoint_id == tp.id, Image.space == "native", col(Image.retired_rev_id).is_(None)
            )
        ).first()
    if row is None:
        raise AtlasError("REV005", f"{scan} has no lesion {lesion}", path=scan)
    store = open_store(ws)
    if erode_layers <= 0:
        return store.get(row)
    kept = erode(niio.decode(store.get(row), "raw.voi").dataobj, erode_layers)
    if not kept.any():
        raise AtlasError(
            "REV013", f"lesion {lesion} of {scan} has nothing left after eroding {erode_layers} layer(s)", path=scan
        )
    assert t1_sha is not None, f"{scan} has a lesion but no native T1"  # ingest stores both
    t1 = niio.decode(store.get(t1_sha), "t1.nii.gz")
    return niio.encode_voi(kept.astype(np.uint8), t1)
