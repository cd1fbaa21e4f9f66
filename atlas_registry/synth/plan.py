"""Every decision about the synthetic dataset that does not need an image: the plan.

From the paper's tables (:mod:`atlas_registry.paper`) and a seed, :func:`make_plan` decides the 304
scans: their cohort, subject and timepoint, how many lesions each has and where (hemisphere and
location, so that Tables 1 and 2 hold exactly), a target volume for every lesion (the 521 volumes
follow the published mean, SD, minimum and maximum), which primaries the neuroradiologist chose
although they are not the largest, which scans enter the standardized subset and why the others do
not, which subjects were scanned twice, and the neuroradiologist's and tracers' metadata.

The plan is the same whichever cohorts are generated and however many workers run, which is what
makes a cohort's files identical in a partial and a full run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .. import paper

PLAN_STREAM = 0x504C414E  # "PLAN": the plan's random stream, apart from the per-scan streams

# The 521 target volumes: quantiles of log-volume distributed as Beta(a, b) between ln 10 and
# ln 283800, with the extremes set to the published minimum and maximum.  a and b were fitted so that
# mean and SD equal the published 2.128e4 and 3.898e4 mm³ (checked by volume_quantiles()).
VOLUME_BETA = (2.61402972, 1.86340941)

# Largest target volume a lesion confined to one kind of tissue can have (mm³): a subcortical-only
# lesion must fit in white matter and deep grey without reaching cortex, an "other" one in the
# brainstem/cerebellum.  Everything larger is cortical.
VOLUME_CAP = {"subcortical": 40000.0, "other": 24000.0, "cortical": float("inf")}
# Priority of a lesion for the large volumes: (primary?, location) -> score (plus normal noise).
_SIZE_SCORE = {
    (True, "cortical"): 3.0,
    (True, "subcortical"): 1.8,
    (True, "other"): 1.4,
    (False, "cortical"): 1.4,
    (False, "subcortical"): 0.2,
    (False, "other"): 0.4,
}
_SIZE_NOISE = 0.8

N_PRIMARY_NOT_LARGEST = 5  # < 5 % of the 304 subjects (and of the 128 multi-lesion scans)
N_BILATERAL = 4
FAILURES = {"large lesion": 14, "motion artefact": 17, "poor image quality": 13}
LARGE_LESION_POOL = 30  # "large lesion" failures come from the scans with the 30 largest lesions
N_REPEAT_PAIRS_STANDARDIZED = paper.N_STANDARDIZED - paper.N_STANDARDIZED_PEOPLE  # 229 scans of 220 people
N_REPEAT_PAIRS_LOW_RES = 2
N_REPEAT_PAIRS_FAILED = 1
REPEAT_SHRINK = (0.88, 0.98)  # the t02 lesion is this fraction of the t01 one (chronic shrinkage)

TRACERS = tuple(f"T{i:02d}" for i in range(1, paper.N_TRACERS + 1))
STROKE_TYPES = ("Ischemic", "Embolic", "Lacunar", "Hemorrhagic")
_FAZEKAS_P = (0.3, 0.35, 0.25, 0.1)


@dataclass(frozen=True)
class LesionPlan:
    index: int  # position in the subject's lesion list; with the subject, keys its geometry
    hemisphere: str  # left | right | other
    location: str  # cortical | subcortical | other
    volume_mm3: float  # target volume of the smoothed mask
    primary: bool  # the planned primary (for a flagged scan: the neuroradiologist's choice)


@dataclass(frozen=True)
class ScanPlan:
    scan_id: str
    cohort: str
    subject: int
    timepoint: int
    lesions: tuple[LesionPlan, ...]
    primary_not_largest: bool  # the neuroradiologist chose a primary that is not the largest
    bilateral: bool  # the neuroradiologist called the stroke bilateral
    standardized: bool
    exclusion: str | None  # None | "low resolution" | "registration failure"
    reason: str | None  # why: "low resolution" or one of paper.REGISTRATION_FAILURE_REASONS
    stroke_type: str
    pvh: int
    dwmh: int
    tracer: str
    reviewer: str

    @property
    def artefact(self) -> str | None:
        """Image flaw the T1 must show: "motion" or "noise" for those registration failures."""
        return {"motion artefact": "motion", "poor image quality": "noise"}.get(self.reason or "")


@dataclass(frozen=True)
class DatasetPlan:
    seed: int
    scans: tuple[ScanPlan, ...]

    def by_cohort(self, cohorts) -> list[ScanPlan]:
        wanted = set(cohorts)
        return [s for s in self.scans if s.cohort in wanted]


@dataclass
class _Draft:
    """A scan while it is being planned (mutable), before it gets its identifier."""

    cohort: str
    cats: list  # [(hemisphere, location)]
    volumes: list[float] = field(default_factory=list)  # target volumes (mm³): _assign_volumes
    primary: int = 0
    flagged: bool = False
    bilateral: bool = False
    exclusion: str | None = None
    reason: str | None = None
    twin_of: _Draft | None = None
    shrink: float = 1.0
    subject: int = 0
    timepoint: int = 1


def volume_quantiles(n: int = paper.N_LESIONS) -> np.ndarray:
    """The ``n`` target volumes (ascending, mm³)."""
    lo, hi = np.log(paper.VOLUME_MIN_MM3), np.log(paper.VOLUME_MAX_MM3)
    q = (np.arange(n) + 0.5) / n
    v = np.exp(lo + (hi - lo) * stats.beta.ppf(q, *VOLUME_BETA))
    v[0], v[-1] = paper.VOLUME_MIN_MM3, paper.VOLUME_MAX_MM3
    if n == paper.N_LESIONS:
        assert abs(v.mean() / paper.VOLUME_MEAN_MM3 - 1) < 1e-3 and abs(v.std(ddof=1) / paper.VOLUME_SD_MM3 - 1) < 1e-3
    return v


def _categories(rng: np.random.Generator) -> list[_Draft]:
    """Scans with their lesion (hemisphere, location) lists: Table 1 and Table 2 per cohort."""
    drafts: list[_Draft] = []
    for cohort in paper.COHORTS:
        t1, t2 = paper.TABLE1[cohort], paper.TABLE2[cohort]
        pool = [
            (h, loc) for loc in ("cortical", "subcortical") for h in ("left", "right") for _ in range(t2.count(h, loc))
        ]
        pool += [("other", "other")] * t2.other
        pool = [pool[i] for i in rng.permutation(len(pool))]
        for side, n in (("left", t1.single_left), ("right", t1.single_right), ("other", t1.single_other)):
            for _ in range(n):
                i = next(i for i, c in enumerate(pool) if c[0] == side)
                drafts.append(_Draft(cohort, [pool.pop(i)]))
        multi = [_Draft(cohort, [pool.pop(), pool.pop()]) for _ in range(t1.multiple)]
        weights = rng.gamma(0.7, 1.0, len(multi)) + 0.05
        for cat in pool:
            multi[rng.choice(len(multi), p=weights / weights.sum())].cats.append(cat)
        drafts += multi
    return drafts


def _assign_volumes(drafts: list[_Draft], rng: np.random.Generator) -> None:
    """Give every lesion a target volume; the largest go preferably to (cortical) primaries."""
    slots = []  # (draft, lesion index, score, cap)
    for d in drafts:
        cortical = [i for i, c in enumerate(d.cats) if c[1] == "cortical"]
        intended = cortical[rng.integers(len(cortical))] if cortical else int(rng.integers(len(d.cats)))
        for i, (_, loc) in enumerate(d.cats):
            score = _SIZE_SCORE[(i == intended, loc)] + rng.normal(0.0, _SIZE_NOISE)
            slots.append((d, i, score, VOLUME_CAP[loc]))
        d.volumes = [0.0] * len(d.cats)
    free = sorted(range(len(slots)), key=lambda k: -slots[k][2])
    for v in volume_quantiles(len(slots))[::-1]:
        k = next(k for k in free if slots[k][3] >= v)
        free.remove(k)
        d, i = slots[k][0], slots[k][1]
        d.volumes[i] = float(v)
    for d in drafts:
        d.primary = int(np.argmax(d.volumes))


def _flag_primaries(drafts: list[_Draft], rng: np.random.Generator) -> None:
    """A few multi-lesion scans whose primary (neuroradiologist's choice) is not the largest."""
    ok = []
    for d in drafts:
        if len(d.cats) < 2:
            continue
        order = np.argsort(d.volumes)[::-1]
        big, second = d.volumes[order[0]], d.volumes[order[1]]
        if second >= 2000.0 and big >= 1.6 * second and d.cats[order[1]][0] != "other":
            ok.append((d, int(order[1])))
    for k in rng.choice(len(ok), N_PRIMARY_NOT_LARGEST, replace=False):
        d, i = ok[k]
        d.flagged, d.primary = True, i


def _flag_bilateral(drafts: list[_Draft], rng: np.random.Generator) -> None:
    ok = [
        d
        for d in drafts
        if not d.flagged and {"left", "right"} <= {h for h, _ in d.cats} and all(h != "other" for h, _ in d.cats)
    ]
    for k in rng.choice(len(ok), N_BILATERAL, replace=False):
        ok[k].bilateral = True


def _exclusions(drafts: list[_Draft], rng: np.random.Generator) -> None:
    """Low-resolution cohorts out; registration failures among the rest (large lesions first)."""
    eligible = []
    for d in drafts:
        if d.cohort in paper.LOW_RESOLUTION_COHORTS:
            d.exclusion, d.reason = "low resolution", paper.LOW_RESOLUTION_REASON
        else:
            eligible.append(d)
    by_size = sorted(eligible, key=lambda d: -max(d.volumes))
    pool = by_size[:LARGE_LESION_POOL]
    chosen = [pool[k] for k in sorted(rng.choice(len(pool), FAILURES["large lesion"], replace=False))]
    for d in chosen:
        d.exclusion, d.reason = "registration failure", "large lesion"
    rest = [d for d in eligible if d.exclusion is None]
    picks = rng.choice(len(rest), FAILURES["motion artefact"] + FAILURES["poor image quality"], replace=False)
    for n, k in enumerate(picks):
        reason = "motion artefact" if n < FAILURES["motion artefact"] else "poor image quality"
        rest[k].exclusion, rest[k].reason = "registration failure", reason


def _signature(d: _Draft) -> tuple:
    return (d.cohort, tuple(sorted(d.cats)))


def _pair(drafts: list[_Draft], rng: np.random.Generator) -> None:
    """Second timepoints: scans of one cohort with the same lesion layout become one subject."""
    vols = [v for d in drafts for v in d.volumes]
    extremes = {min(vols), max(vols)}

    def usable(d):
        return (
            d.twin_of is None
            and not d.flagged
            and not d.bilateral
            and not (set(d.volumes) & extremes)
            and not any(x.twin_of is d for x in drafts)
        )

    def make_pairs(n, first_ok, second_ok, per_cohort):
        made, used_cohorts = 0, Counter[str]()
        order = [drafts[i] for i in rng.permutation(len(drafts))]
        for a in order:
            if made == n:
                break
            if not (usable(a) and first_ok(a)) or used_cohorts[a.cohort] >= per_cohort:
                continue
            b = next(
                (b for b in order if b is not a and usable(b) and second_ok(b) and _signature(b) == _signature(a)), None
            )
            if b is None:
                continue
            b.twin_of, b.timepoint = a, 2
            b.shrink = float(rng.uniform(*REPEAT_SHRINK))
            made += 1
            used_cohorts[a.cohort] += 1
        return made

    std = lambda d: d.exclusion is None  # noqa: E731
    made = make_pairs(N_REPEAT_PAIRS_STANDARDIZED, std, std, per_cohort=2)
    if made != N_REPEAT_PAIRS_STANDARDIZED:
        raise RuntimeError("could not plan the second timepoints of the standardized subset")
    make_pairs(N_REPEAT_PAIRS_FAILED, std, lambda d: d.reason == "motion artefact", per_cohort=1)
    make_pairs(
        N_REPEAT_PAIRS_LOW_RES,
        lambda d: d.exclusion == "low resolution",
        lambda d: d.exclusion == "low resolution",
        per_cohort=1,
    )
    for d in drafts:
        if d.twin_of is not None:  # the same lesions, a little smaller, in the same order
            a = d.twin_of
            d.cats, d.primary = list(a.cats), a.primary
            d.volumes = [v * d.shrink for v in a.volumes]


def _number_subjects(drafts: list[_Draft], rng: np.random.Generator) -> None:
    """Subject numbers per cohort: sorted, with gaps (subjects that never made it into the release)."""
    by_cohort = defaultdict(list)
    for d in drafts:
        if d.twin_of is None:
            by_cohort[d.cohort].append(d)
    for firsts in by_cohort.values():
        n = len(firsts)
        numbers = np.sort(rng.choice(np.arange(1, int(n * 1.6) + 8), n, replace=False))
        for d, k in zip([firsts[i] for i in rng.permutation(n)], numbers, strict=False):
            d.subject = int(k)
    for d in drafts:
        if d.twin_of is not None:
            d.subject = d.twin_of.subject


def _finish(d: _Draft, rng: np.random.Generator, twin: ScanPlan | None) -> ScanPlan:
    lesions = tuple(
        LesionPlan(i, h, loc, float(v), i == d.primary)
        for i, ((h, loc), v) in enumerate(zip(d.cats, d.volumes, strict=False))
    )
    if twin is not None:  # same person: same stroke, same white matter disease, same readers
        stroke, pvh, dwmh, tracer, reviewer = twin.stroke_type, twin.pvh, twin.dwmh, twin.tracer, twin.reviewer
    else:
        prim = lesions[d.primary]
        if prim.location == "subcortical" and prim.volume_mm3 < 1500:
            stroke = "Lacunar"
        elif prim.location == "subcortical" and rng.random() < 0.15:
            stroke = "Hemorrhagic"
        else:
            stroke = "Embolic" if rng.random() < 0.35 else "Ischemic"
        pvh = int(rng.choice(4, p=_FAZEKAS_P))
        dwmh = int(np.clip(pvh + rng.choice([-1, 0, 0, 1]), 0, 3))
        tracer, reviewer = (TRACERS[k] for k in rng.choice(len(TRACERS), 2, replace=False))
    return ScanPlan(
        scan_id=f"{d.cohort}s{d.subject:04d}t{d.timepoint:02d}",
        cohort=d.cohort,
        subject=d.subject,
        timepoint=d.timepoint,
        lesions=lesions,
        primary_not_largest=d.flagged,
        bilateral=d.bilateral,
        standardized=d.exclusion is None,
        exclusion=d.exclusion,
        reason=d.reason,
        stroke_type=stroke,
        pvh=pvh,
        dwmh=dwmh,
        tracer=tracer,
        reviewer=reviewer,
    )


def make_plan(seed: int = 0) -> DatasetPlan:
    """The whole synthetic dataset, decided from the paper's numbers and ``seed``."""
    rng = np.random.default_rng([seed, PLAN_STREAM])
    drafts = _categories(rng)
    _assign_volumes(drafts, rng)
    _flag_primaries(drafts, rng)
    _flag_bilateral(drafts, rng)
    _exclusions(drafts, rng)
    _pair(drafts, rng)
    _number_subjects(drafts, rng)
    finished: dict[int, ScanPlan] = {}
    for d in sorted(drafts, key=lambda d: (d.cohort, d.subject, d.timepoint)):
        twin = finished[id(d.twin_of)] if d.twin_of is not None else None
        finished[id(d)] = _finish(d, rng, twin)
    scans = tuple(sorted(finished.values(), key=lambda s: s.scan_id))
    return DatasetPlan(seed, scans)
