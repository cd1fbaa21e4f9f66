"""The main job end to end, on the embedded default (SQLite + synthetic data).

synthesize ATLAS R1.1 -> create the registry -> validate -> ingest every cohort -> build and
publish R1.1 -> file an issue against one mask, revise it, build and publish R1.2 -> Table 1 and
Table 2 beside the paper's numbers, lesion volume statistics, rater reliability -> two SQL
queries -> the HTML report. Every step prints one line; long steps show a progress bar.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .config import Workspace
from .errors import AtlasError

EXAMPLE_QUERIES = (
    (
        "lesions per cohort and hemisphere (left subcortical first)",
        "SELECT cohort, hemisphere, location, COUNT(*) AS lesions, ROUND(AVG(volume_mm3)) AS mean_mm3 "
        "FROM lesions GROUP BY cohort, hemisphere, location ORDER BY cohort, hemisphere, location LIMIT 8",
    ),
    (
        "scans with PVH >= 2 and a subcortical lesion, by vascular territory",
        "SELECT s.vascular_territory, COUNT(DISTINCT s.scan) AS scans FROM scans s JOIN lesions l ON l.scan = s.scan "
        "WHERE s.pvh >= 2 AND l.location = 'subcortical' GROUP BY s.vascular_territory ORDER BY scans DESC",
    ),
)


@dataclass
class DemoResult:
    home: Path
    data: Path
    releases: dict[str, Path] = field(default_factory=dict)
    report: Path | None = None
    seconds: float = 0.0
    steps: list[tuple[str, str, float]] = field(default_factory=list)


class _Steps:
    """Prints ``✓ step  result  (seconds)`` per step; offers a progress bar for long ones."""

    def __init__(self, console: Console, total: int):
        self.console, self.total, self.n = console, total, 0
        self.log: list[tuple[str, str, float]] = []

    @contextmanager
    def step(self, title: str):
        self.n += 1
        box = {"result": ""}
        t0 = time.monotonic()
        with self.console.status(f"[{self.n}/{self.total}] {title} …", spinner="dots"):
            yield box
        dt = time.monotonic() - t0
        self.log.append((title, box["result"], dt))
        self.console.print(
            f"[green]✓[/] [{self.n}/{self.total}] [bold]{title}[/]: {box['result']} [dim]({dt:.1f} s)[/]"
        )

    def bar(self, label: str) -> Progress:
        return Progress(
            TextColumn(f"    {label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            auto_refresh=False,
        )


ISSUE_TITLE = "Primary lesion mask over-traced by one voxel at its boundary"


def _revise_one_mask(ws: Workspace) -> tuple[str, int, bool]:
    """Open an issue against the primary mask of one standardized scan and revise it: the
    corrected raw VOI drops the mask's outer boundary layer (an over-traced edge). (scan, issue,
    whether it was done now: a demo run again in its workspace finds it done.)"""
    import numpy as np
    from sqlmodel import Session, col, select

    from . import db, niio, tracker
    from .lesion_files import erode
    from .models import Image, Issue, Lesion, LesionMask, Timepoint
    from .objstore import open_store
    from .revise import MaskFiles, replace_mask

    store = open_store(ws)
    with Session(db.engine(ws)) as s:
        done = s.exec(
            select(Issue.id, Timepoint.code)
            .join(Timepoint, col(Timepoint.id) == col(Issue.timepoint_id))
            .where(Issue.title == ISSUE_TITLE, Issue.status == "closed")
        ).first()
        if done is not None:
            assert done[0] is not None  # a primary key
            return done[1], done[0], False
        row = s.exec(
            select(Timepoint.code, LesionMask.sha256, Image.sha256)
            .join(Lesion, col(Lesion.timepoint_id) == col(Timepoint.id))
            .join(LesionMask, col(LesionMask.lesion_id) == col(Lesion.id))
            .join(Image, col(Image.timepoint_id) == col(Timepoint.id))
            .where(
                Timepoint.standard_status == "included",
                Lesion.number == 0,
                col(Lesion.retired_rev_id).is_(None),
                LesionMask.variant == "raw_voi",
                LesionMask.space == "native",
                col(LesionMask.retired_rev_id).is_(None),
                Image.space == "native",
                col(Image.retired_rev_id).is_(None),
                LesionMask.voxel_count > 400,
            )
            .order_by(Timepoint.code)
        ).first()
    if row is None:
        raise AtlasError("DEMO001", "no standardized scan with a primary lesion large enough to revise")
    scan, mask_sha, t1_sha = row
    t1 = niio.decode(store.get(t1_sha), "t1.nii.gz")
    eroded = erode(niio.decode(store.get(mask_sha), "raw.voi").dataobj, 1)  # as `mask export --erode 1`
    issue = tracker.open_issue(
        ws,
        scan,
        ISSUE_TITLE,
        body="The raw VOI extends one voxel beyond the lesion into normal-appearing tissue on every side.",
        url="https://github.com/npnl/ATLAS/issues/1",
        file_kind="LesionRaw.voi",
    )
    number = issue.number
    replace_mask(
        ws,
        scan,
        0,
        MaskFiles(raw=niio.encode_voi(eroded.astype(np.uint8), t1)),
        issue=number,
        reason="remove the over-traced boundary layer of the primary lesion",
    )
    return scan, number, True


def run_demo(
    ws: Workspace | None = None,
    *,
    scale: str = "small",
    seed: int = 0,
    console: Console | None = None,
    workers: int | None = None,
) -> DemoResult:
    from . import db, release, stats
    from .ingest import ingest_path
    from .query import render, run
    from .reliability import analyze, format_text
    from .synth import generate
    from .validate.runner import validate_path

    console = console or Console(stderr=False)
    ws = ws or Workspace.resolve()
    home = ws.home
    data = home / "synthetic"
    res = DemoResult(home=home, data=data)
    steps = _Steps(console, 12)
    t_start = time.monotonic()
    console.print(
        f"[bold]atlas-registry demo[/] — workspace {home} ({ws.url.split(':')[0]}), "
        f"synthetic ATLAS R1.1 at {scale} scale"
    )

    with steps.step("synthesize ATLAS R1.1") as r:
        if (data / "synth.json").exists():
            import json

            summary = json.loads((data / "synth.json").read_text())
            r["result"] = "reusing "
        else:
            with steps.bar("synth") as bar:
                task = bar.add_task("", total=None)

                def tick(done, total, label):
                    bar.update(task, completed=done, total=total, description=label)
                    bar.refresh()

                summary = generate(data, seed=seed, scale=scale, workers=workers, overwrite=True, progress=tick)
        r["result"] += (
            f"{summary['scans']} scans, {summary['lesions']} lesion masks, "
            f"{summary['standardized_scans']} standardized, in {data}"
        )

    with steps.step("create the registry") as r:
        db.upgrade(ws)
        r["result"] = f"schema {db.current_revision(ws)} at {ws.url}"

    with steps.step("validate native and standardized archives") as r:
        results = {k: validate_path(data / k, workers=workers, progress=True) for k in ("native", "standard")}
        errs = sum(len(v.report.errors) for v in results.values())
        warns = sum(len(v.report.warnings) for v in results.values())
        files = sum(v.report.files for v in results.values())
        if errs:
            raise AtlasError("DEMO002", f"the synthetic archive has {errs} validation error(s)")
        r["result"] = f"{files} files, {errs} errors, {warns} warnings"

    with steps.step("ingest every cohort") as r:
        if _registry_holds_scans(ws):  # a demo run before in this workspace (and maybe revised since)
            r["result"] = "already in the registry from an earlier run (no-op)"
        else:
            outs = [ingest_path(ws, data / k, result=results[k]) for k in ("native", "standard")]
            r["result"] = (
                f"{outs[0].scans_added} scans, {outs[0].lesions_added} lesions, "
                f"{sum(o.files_stored for o in outs)} files stored once by SHA-256"
            )

    def build_and_publish(name: str, r) -> None:
        out = home / "releases" / name
        b = release.build(ws, name, out, cache_dir=home / "cache", force=True, progress=True)
        try:
            release.publish(ws, name)
            state = "published"
        except AtlasError as e:
            if "already published" not in str(e) and e.code != "REL021":
                raise
            state = "already published"
        res.releases[name] = out
        r["result"] = f"{b.files} files ({b.bytes / 1e6:.0f} MB) in {out}, {state}, manifest {b.manifest_sha256[:12]}"

    with steps.step("build and publish R1.1") as r:
        build_and_publish("R1.1", r)

    with steps.step("file an issue against a mask and revise it") as r:
        scan, number, now = _revise_one_mask(ws)
        r["result"] = f"issue #{number} on {scan}: primary mask replaced, smoothed files regenerated" + (
            "" if now else " (in an earlier run)"
        )

    with steps.step("build and publish R1.2") as r:
        build_and_publish("R1.2", r)
        d = release.diff(ws, "R1.1", "R1.2")
        changed = [sc for sc in d.scans if sc.status == "changed"]
        r["result"] += (
            f"; R1.1 → R1.2: {len(changed)} scan(s) changed "
            f"({', '.join(sc.scan for sc in changed)}), {sum(len(sc.files) for sc in changed)} file(s), "
            f"issue(s) {', '.join('#' + str(i) for i in d.issues)}"
        )

    with steps.step("check both releases and the object store (fixity)") as r:
        from .fixity import verify_release
        from .store_check import verify_store

        checks = [(name, verify_release(folder, ws=ws)) for name, folder in res.releases.items()]
        checks.append(("object store", verify_store(ws)))
        bad = [name for name, c in checks if not c.ok]
        if bad:
            first = next(c for _, c in checks if not c.ok).report.errors[0]
            raise AtlasError("DEMO003", f"fixity check failed for {', '.join(bad)}, first: {first.line()}")
        r["result"] = "; ".join(f"{name} intact ({c.report.files} files, {c.bytes / 1e6:.0f} MB)" for name, c in checks)

    with steps.step("Table 1 and Table 2 beside the paper") as r:
        tables = stats.paper_tables(ws)
        same = _compare_with_paper(tables)
        r["result"] = "identical to the data descriptor" if same else "DIFFERENT from the data descriptor"
    console.print(stats.format_tables(tables))

    with steps.step("lesion volumes and rater reliability") as r:
        vols = stats.volume_stats(ws)
        rel = analyze(data / "reliability")
        r["result"] = "see below"
    console.print(stats.format_volumes(vols))
    console.print(format_text(rel))

    with steps.step("two example SQL queries") as r:
        outputs = []
        for title, sql in EXAMPLE_QUERIES:
            outputs.append((title, sql, render(run(ws, sql), "table")))
        r["result"] = "read-only, on the documented views"
    for title, sql, text in outputs:
        console.print(f'[bold]{title}[/]\n[dim]$ atlas-registry sql "{sql}"[/]')
        console.print(text)

    with steps.step("write the HTML report") as r:
        from .report import build_report

        res.report = build_report(ws, home / "report", release="R1.2", progress=True)
        r["result"] = str(res.report)

    res.seconds = time.monotonic() - t_start
    res.steps = steps.log
    console.print(f"\n[bold]done in {res.seconds:.0f} s.[/] Where everything is:")
    console.print(f"  registry        {ws.url}")
    console.print(f"  object store    {ws.store_url}")
    console.print(f"  synthetic data  {data}")
    for name, p in res.releases.items():
        console.print(f"  release {name:7s} {p}")
    console.print(f"  report          {res.report}")
    console.print(f'  try: atlas-registry --home {home} sql "SELECT cohort, COUNT(*) FROM scans GROUP BY cohort"')
    return res


def _registry_holds_scans(ws: Workspace) -> bool:
    from sqlalchemy import text

    from . import db

    with db.engine(ws).connect() as c:
        return c.execute(text("SELECT COUNT(*) FROM timepoint")).scalar_one() > 0


def _compare_with_paper(tables: dict) -> bool:
    """True when the registry's Table 1 and Table 2 equal the data descriptor's, cohort by cohort."""
    from dataclasses import asdict

    from . import paper

    def same(rows, reference) -> bool:
        return {r["cohort"]: r for r in rows} == {k: asdict(v) for k, v in reference.items()}

    return same(tables["table1"], paper.TABLE1) and same(tables["table2"], paper.TABLE2)
