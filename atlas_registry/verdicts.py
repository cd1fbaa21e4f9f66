"""Passing de-identification verdicts on stored content, kept with the registry.

A header check (DEID001/DEID002) or a face check (DEID008) depends only on a file's bytes and on the
rule set, so a passing verdict is a fact about a content-addressed object: ``<home>/verdicts/
<RULESET>.txt`` holds one ``kind sha256`` line per verdict (``header``, ``face``). Ingest adds the
verdicts its validation reached on the objects it stored unchanged (every stored file passed every
rule, or nothing was ingested); the release gate (:mod:`atlas_registry.export.deid_gate`) adds its
own and checks only what is not there, so a T1 is not inflated again on every build. A new rule
set (``RULESET``) starts from nothing; a lost or deleted file only means checking again. Only
passing verdicts exist: a failure is never remembered, it stops the ingest or the build.
"""

from __future__ import annotations

from pathlib import Path

RULESET = "deid-gate-1"


def file_in(folder: str | Path) -> Path:
    return Path(folder) / f"{RULESET}.txt"


def load(folder: str | Path | None) -> set[str]:
    """Every verdict recorded under ``folder`` (none without a folder)."""
    if folder is None:
        return set()
    try:
        return set(file_in(folder).read_text(encoding="ascii").split("\n")) - {""}
    except FileNotFoundError:
        return set()


def add(folder: str | Path | None, verdicts: set[str]) -> None:
    """Merge ``verdicts`` into the file under ``folder`` (atomically: read, merge, replace). Two
    writers at once may lose each other's lines; that only costs a later re-check."""
    if folder is None or not verdicts:
        return
    from .store import atomic_write

    known = load(folder)
    if verdicts <= known:
        return
    atomic_write(file_in(folder), ("\n".join(sorted(known | verdicts)) + "\n").encode("ascii"), mode=0o644)
