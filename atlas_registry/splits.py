"""Benchmark splits of a release: training, test and hidden sets (ATLAS R2.0: 655 training scans with
masks, 300 test scans without, 316 hidden scans of a new cohort).

* :func:`assign` — the split of every scan of a release from its ``[splits]`` specification
  (:class:`~atlas_registry.release_spec.Splits`): the participant (every timepoint of a subject) is the
  unit, so a subject is in exactly one split; the cohorts of ``hidden_cohorts`` are held out whole as the
  hidden set; the other participants are stratified by cohort and lesion size class (total lesion volume
  of the participant's first scan, classes bounded by ``size_classes_mm3``) and dealt to the splits in
  the order of ``sha256(seed:subject)``, each to the split furthest below its target within the stratum
  and overall. Deterministic: the same seed and registry give the same assignment, whatever the order
  the registry lists its rows in.
* :func:`public_view` — the view the archives and the report are written from: hidden scans removed,
  test scans stripped of everything that comes from or describes their masks (lesions, the
  neuroradiologist's report, the primary-not-largest flag), issues and revision reasons of withheld scans
  left out. Exporters given this view cannot leak a withheld mask, whatever they compute.

Rule code: ``REL018`` a split's size cannot be met by the release's scans (more scans asked than there
are, a hidden cohort without scans).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import replace

from .errors import AtlasError
from .release_spec import SPLITS, Splits

TRAINING, TEST, HIDDEN = SPLITS
WITHHELD = (TEST, HIDDEN)  # splits whose masks stay in the registry
SIZE_CLASSES = ("small", "medium", "large", "very large")


def size_class(volume_mm3: float, bounds: tuple[float, ...]) -> int:
    """Index of the size class of a total lesion volume: the number of bounds at or below it."""
    return sum(1 for b in bounds if volume_mm3 >= b)


def _order(seed: int, subject: str) -> str:
    return hashlib.sha256(f"{seed}:{subject}".encode()).hexdigest()


def _total_volume(scan) -> float:
    return sum(les.metrics.volume_mm3 for les in scan.lesions if les.metrics is not None)


def targets(spec: Splits, n_pool: int) -> dict[str, float]:
    """Target number of scans of each split among the ``n_pool`` scans outside the hidden cohorts."""

    def amount(v) -> float:
        if v is None:
            return 0.0
        if isinstance(v, float) and v < 1:
            return v * n_pool
        return float(v)

    if spec.training is not None:  # all given: relative weights
        w = {k: float(getattr(spec, k) or 0) for k in SPLITS}
        total = sum(w.values())
        out = {k: n_pool * w[k] / total for k in SPLITS}
    else:
        out = {TEST: amount(spec.test), HIDDEN: amount(spec.hidden)}
        asked = out[TEST] + out[HIDDEN]
        if asked > n_pool:
            raise AtlasError(
                "REL018",
                f"[splits] asks for {asked:g} test and hidden scans but the release has {n_pool} "
                "(outside the hidden cohorts)",
            )
        out[TRAINING] = n_pool - asked
    return out


def assign(scans, spec: Splits) -> dict[str, str]:
    """Scan code -> split of every scan in ``scans`` (:class:`~atlas_registry.export.view.ScanView`)."""
    by_subject: dict[str, list] = defaultdict(list)
    for s in scans:
        by_subject[s.subject].append(s)
    split_of: dict[str, str] = {}
    pool: list[str] = []
    for subject, ss in by_subject.items():
        if ss[0].cohort in spec.hidden_cohorts:
            split_of[subject] = HIDDEN
        else:
            pool.append(subject)
    empty = [c for c in spec.hidden_cohorts if not any(s.cohort == c for s in scans)]
    if empty:
        raise AtlasError("REL018", f"[splits] hidden cohort(s) {empty} have no scans in the release")
    n_pool = sum(len(by_subject[p]) for p in pool)
    goal = targets(spec, n_pool)
    strata: dict[tuple[str, int], list[str]] = defaultdict(list)
    for subject in pool:
        first = min(by_subject[subject], key=lambda s: s.timepoint)
        strata[(first.cohort, size_class(_total_volume(first), spec.size_classes_mm3))].append(subject)
    share = {k: (goal[k] / n_pool if n_pool else 0.0) for k in SPLITS}
    got = {k: 0 for k in SPLITS}
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda p: _order(spec.seed, p))
        size = sum(len(by_subject[p]) for p in members)
        have = {k: 0 for k in SPLITS}
        for subject in members:
            n = len(by_subject[subject])

            options = [k for k in SPLITS if share[k] > 0]
            # furthest below target in the stratum, then overall; ties in the order training, test, hidden
            best = max(options, key=lambda k: (size * share[k] - have[k], goal[k] - got[k], -SPLITS.index(k)))  # noqa: B023
            split_of[subject] = best
            have[best] += n
            got[best] += n
    _balance(split_of, by_subject, pool, goal, spec.seed)
    return {s.code: split_of[s.subject] for s in scans}


def _balance(split_of: dict[str, str], by_subject: dict, pool: list[str], goal: dict[str, float], seed: int) -> None:
    """Move participants from splits above their target to splits below, while that brings both nearer
    (stratification rounds per stratum; a small release can otherwise miss a count by a few scans)."""
    for _ in range(len(pool)):
        n = {k: sum(len(by_subject[p]) for p in pool if split_of[p] == k) for k in SPLITS}
        over = [k for k in SPLITS if n[k] - goal[k] >= 1]
        under = [k for k in SPLITS if goal[k] - n[k] >= 1]
        moved = False
        for a in over:
            for b in under:
                for p in sorted((p for p in pool if split_of[p] == a), key=lambda p: _order(seed, p)):
                    k = len(by_subject[p])
                    before = abs(n[a] - goal[a]) + abs(n[b] - goal[b])
                    after = abs(n[a] - k - goal[a]) + abs(n[b] + k - goal[b])
                    if after < before - 1e-9:
                        split_of[p] = b
                        moved = True
                        break
                if moved:
                    break
            if moved:
                break
        if not moved:
            return


def counts(view) -> dict[str, dict[str, int]]:
    """Per split: scans, subjects and scans in the standardized subset."""
    out: dict[str, dict[str, int]] = {}
    for k in SPLITS:
        ss = [s for s in view.scans if s.split == k]
        out[k] = {
            "scans": len(ss),
            "subjects": len({s.subject for s in ss}),
            "standard": sum(1 for s in ss if s.in_standard),
        }
    return out


def public_view(view):
    """``view`` as the public files may show it (the view itself when the release has no splits)."""
    if view.spec.splits is None:
        return view
    withheld = {s.code for s in view.scans if s.split in WITHHELD}
    scans = tuple(
        s if s.split == TRAINING else replace(s, lesions=(), report=None, primary_chosen_by_neuroradiologist=False)
        for s in view.scans
        if s.split != HIDDEN
    )
    revisions = tuple(
        r if r.scan is None or r.scan not in withheld else replace(r, scan=None, reason="(a withheld scan)")
        for r in view.revisions
    )
    releases = view.releases
    if releases:  # this release (the last) counts the scans it releases
        this = replace(releases[-1], n_scans=len(scans), n_standard=sum(1 for s in scans if s.in_standard))
        releases = (*releases[:-1], this)
    return replace(
        view,
        scans=scans,
        exclusions=tuple((s.code, s.exclusion_reason) for s in scans if not s.in_standard),
        issues=tuple(i for i in view.issues if i.scan not in withheld),
        revisions=revisions,
        releases=releases,
    )


def training_view(view):
    """Only the scans released with their masks (statistics and figures of the report)."""
    if view.spec.splits is None:
        return view
    scans = tuple(s for s in view.scans if s.split == TRAINING)
    return replace(
        view, scans=scans, exclusions=tuple((s.code, s.exclusion_reason) for s in scans if not s.in_standard)
    )
