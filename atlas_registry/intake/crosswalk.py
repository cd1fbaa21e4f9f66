"""The crosswalk: site subjects → ``sXXXX``, site sessions → ``tNN``, kept only in the registry.

The registry stores keyed digests, never the site's identifiers: HMAC-SHA-256 of the cohort and the
site subject identifier (and of the session label) with the workspace's intake key
(``<home>/intake.key``, 32 random bytes, created on first use, mode 0600). The same site subject gets
the same number in every later delivery; a session seen before keeps its timepoint; a new session
takes the next timepoint. Numbers continue after those the cohort already has in the registry
(scans ingested without intake), so an intake never reuses a subject or timepoint.

Lose the key and the crosswalk cannot recognize anyone again: back it up with the registry.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from ..config import Workspace
from ..errors import AtlasError

KEY_FILE = "intake.key"


def key(ws: Workspace) -> bytes:
    """The workspace's intake key (created once, readable by its owner only)."""
    path = Path(ws.home) / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        ws.ensure()
        data = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another intake created it meanwhile
            return key(ws)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    if len(data) != 32:
        raise AtlasError("INTK012", "the intake key is damaged (not 32 bytes)", path=str(path))
    return data


def digest(k: bytes, *parts: str) -> str:
    return hmac.new(k, "\0".join(parts).encode("utf-8"), sha256).hexdigest()


@dataclass
class Assignment:
    """What one intake assigns: (site subject, site session) → (subject number, timepoint)."""

    cohort: str
    numbers: dict[str, int] = field(default_factory=dict)
    timepoints: dict[tuple[str, str], int] = field(default_factory=dict)
    new_subjects: dict[str, str] = field(default_factory=dict)  # site subject -> digest (rows to insert)
    new_sessions: dict[tuple[str, str], str] = field(default_factory=dict)

    def scan_id(self, subject: str, session: str) -> str:
        return f"{self.cohort}s{self.numbers[subject]:04d}t{self.timepoints[(subject, session)]:02d}"


def _registered(sess, cohort: str) -> tuple[int, dict[int, int]]:
    """The highest subject number of ``cohort`` in the registry and each subject's highest timepoint."""
    from sqlalchemy import text

    rows = (
        sess.connection()
        .execute(
            text(
                "SELECT s.number, MAX(t.number) FROM subject s JOIN cohort c ON c.id = s.cohort_id "
                "LEFT JOIN timepoint t ON t.subject_id = s.id WHERE c.code = :c GROUP BY s.number"
            ),
            {"c": cohort},
        )
        .all()
    )
    return max((r[0] for r in rows), default=0), {int(r[0]): int(r[1] or 0) for r in rows}


def assign(sess, k: bytes, cohort: str, sessions: list[tuple[str, str]]) -> Assignment:
    """Numbers for ``sessions`` ((site subject, site session) in the order new timepoints are given)."""
    from sqlmodel import select

    from ..models import IntakeSession, IntakeSubject

    out = Assignment(cohort)
    known = {r.site_key: r.number for r in sess.exec(select(IntakeSubject).where(IntakeSubject.cohort == cohort))}
    seen = {}
    for r in sess.exec(select(IntakeSession).where(IntakeSession.cohort == cohort)):
        seen[(r.subject_number, r.session_key)] = r.timepoint
    top_registry, tp_registry = _registered(sess, cohort)
    next_subject = max([top_registry, *known.values()]) + 1
    last_tp: dict[int, int] = dict(tp_registry)
    for (num, _), tp in seen.items():
        last_tp[num] = max(last_tp.get(num, 0), tp)
    for subject, session in sessions:
        if subject not in out.numbers:
            sk = digest(k, cohort, subject)
            if sk in known:
                out.numbers[subject] = known[sk]
            else:
                out.numbers[subject] = next_subject
                out.new_subjects[subject] = sk
                next_subject += 1
        num = out.numbers[subject]
        ek = digest(k, cohort, subject, session)
        if (num, ek) in seen:
            out.timepoints[(subject, session)] = seen[(num, ek)]
        else:
            tp = last_tp.get(num, 0) + 1
            last_tp[num] = tp
            out.timepoints[(subject, session)] = tp
            out.new_sessions[(subject, session)] = ek
    if next_subject > 9999 or any(t > 99 for t in out.timepoints.values()):
        raise AtlasError("INTK012", f"cohort {cohort} has run out of subject or timepoint numbers")
    return out


def record(sess, a: Assignment) -> None:
    """Insert the new crosswalk rows of ``a`` (in the caller's transaction)."""
    from ..models import IntakeSession, IntakeSubject

    now = datetime.now(UTC).replace(microsecond=0)
    for subject, sk in sorted(a.new_subjects.items(), key=lambda kv: a.numbers[kv[0]]):
        sess.add(IntakeSubject(cohort=a.cohort, site_key=sk, number=a.numbers[subject], created_at=now))
    for (subject, session), ek in a.new_sessions.items():
        sess.add(
            IntakeSession(
                cohort=a.cohort,
                subject_number=a.numbers[subject],
                session_key=ek,
                timepoint=a.timepoints[(subject, session)],
                created_at=now,
            )
        )
    sess.flush()
