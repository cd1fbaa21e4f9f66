"""Pseudonymous public IDs for published archives.

A subject gets its label once (at ingest) from a cryptographic random source: stable across
releases, never reused (labels are unique in ``public_id`` and rows are never deleted), and not
derivable from the native identifier. The crosswalk stays in the registry.
"""

from __future__ import annotations

import secrets

from sqlmodel import Session, select

from .models import PublicId

# Lower-case letters and digits without look-alikes; BIDS labels must be alphanumeric.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
LENGTH = 8


def new_label() -> str:
    return "a" + "".join(secrets.choice(ALPHABET) for _ in range(LENGTH - 1))


def assign(sess: Session, subject_id: int, created_at) -> PublicId:
    """The subject's public ID, creating one if it has none."""
    have = sess.exec(select(PublicId).where(PublicId.subject_id == subject_id)).first()
    if have is not None:
        return have
    while True:
        label = new_label()
        if sess.exec(select(PublicId.id).where(PublicId.label == label)).first() is None:
            break
    pid = PublicId(subject_id=subject_id, label=label, created_at=created_at)
    sess.add(pid)
    return pid


def assign_many(sess: Session, subject_ids: list[int], created_at) -> None:
    """Public IDs for many new subjects at once (one look-up, one bulk insert)."""
    from sqlalchemy import insert

    if not subject_ids:
        return
    taken = set(sess.exec(select(PublicId.label)).all())
    rows = []
    for sid in subject_ids:
        label = new_label()
        while label in taken:
            label = new_label()
        taken.add(label)
        rows.append({"subject_id": sid, "label": label, "created_at": created_at})
    sess.execute(insert(PublicId), rows)
