"""The release archives: ICPSR (native), BIDS (standardized, for INDI), Parquet (metadata) and the
ICPSR deposit package (a BagIt bag; its zip is written at publication, :mod:`.bag`).

:func:`build_view` reads what a release contains from the registry (once); :func:`write_archives`
writes the archives from that view, deterministically (the same view gives the same bytes in every
file) and incrementally (derived files are cached under ``cache_dir`` by the SHA-256 of their
inputs). Every file that leaves passes the de-identification gate (:mod:`.deid_gate`) or the build
aborts with an :class:`~atlas_registry.errors.AtlasError` naming the file and the rule.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from pathlib import Path

from ..objstore import local_objects, open_store
from .output import Cache, ManifestEntry, Output
from .view import ReleaseView, build_view

__all__ = ["ManifestEntry", "ReleaseView", "build_view", "write_archives"]


def view_objects(view: ReleaseView, archives) -> set[str]:
    """The store objects a build of ``view`` copies: native files (icpsr), standardized ones (bids)."""
    shas: set[str] = set()
    if "icpsr" in archives:
        for s in view.scans:
            shas.add(s.t1_native.sha256)
            shas.update(m.sha256 for les in s.lesions for m in les.native)
    if "bids" in archives:
        for s in view.standard_scans:
            if s.t1_standard is not None:
                shas.add(s.t1_standard.sha256)
            shas.update(les.standard.sha256 for les in s.lesions if les.standard is not None)
    return shas


def write_archives(
    ws,
    view: ReleaseView,
    out: Path,
    *,
    changes: str,
    release_notes: str = "",
    cache_dir: Path | None = None,
    progress: bool = False,
    existing: dict | None = None,
) -> list[ManifestEntry]:
    """Write ``out/icpsr``, ``out/bids``, ``out/parquet`` and ``out/packages`` (the archives of
    ``view.spec.archives``; packages with icpsr). Returns one entry per file, sorted by path.

    A release with splits is written from :func:`atlas_registry.splits.public_view`: no exporter sees a
    hidden scan, or a lesion, report or issue of a test scan.

    ``existing``: ``out`` holds an earlier build (:func:`.output.scan_tree`): files that already hold
    the right bytes stay, the others are replaced, and files the build does not list are removed."""
    from ..splits import public_view
    from .bag import write_packages
    from .bids import write_bids
    from .deid_gate import Gate
    from .icpsr import write_icpsr
    from .parquet import write_parquet

    view = public_view(view)  # hidden scans out, test scans without anything of their masks
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mine = Path(cache_dir) / "export" if cache_dir is not None else None  # the folder may be shared
    cache = Cache(mine)
    gate = Gate(ws.verdicts_dir)
    archives = view.spec.archives
    t0 = time.perf_counter()

    def say(what: str) -> None:
        if progress:
            print(f"[{time.perf_counter() - t0:6.1f}s] {what}", file=sys.stderr, flush=True)

    stack = ExitStack()
    store = open_store(ws)
    if store.remote:  # no hard links from S3: every object is fetched (in parallel, checked) beside the build
        say(f"fetching {len(view_objects(view, archives))} objects from {store.url}")
    objects = stack.enter_context(local_objects(store, out.parent, view_objects(view, archives)))
    output = Output(out, objects, cache, existing=existing)

    done = False
    try:
        bids_paths: dict[str, str] = {}
        masks: list = []
        if "bids" in archives:
            say(f"bids: {len(view.standard_scans)} scans")
            bids_paths = write_bids(output, view, gate, changes=changes, release_notes=release_notes, masks=masks)
        if "icpsr" in archives:
            say(f"icpsr: {len(view.scans)} scans")
            write_icpsr(output, view, gate, changes=changes, release_notes=release_notes)
        if "parquet" in archives:
            say("parquet")
            write_parquet(output, view, gate, bids_paths=bids_paths, masks=masks)
        output.wait(files=True)  # the checks of standardized T1s run on while the first bags are made
        say("packages: bags")
        write_packages(output, view, [a for a in ("icpsr", "parquet") if a in archives])
        say("packages: icpsr and parquet bagged; waiting for the last checks and union masks")
        output.wait()
        if "bids" in archives:
            write_packages(output, view, ["bids"])
            output.wait()
        removed = output.prune({e.path for e in output.entries}) if existing else 0
        done = True
    finally:
        try:
            output.close(cancel=not done)  # a failed build stops at once: no copying of what will be thrown away
        finally:
            stack.close()  # the fetched objects of a remote store (the build's files are links of them)
    gate.save()  # only after a complete build: every remembered verdict passed
    say(
        f"done: {len(output.entries)} files ({output.reused} kept from the earlier build, {removed} removed); "
        f"cache {cache.hits} hits, {cache.misses} misses; "
        f"de-identification: {gate.checked} checked, {gate.cached} known"
    )
    return sorted(output.entries, key=lambda e: e.path)
