"""The report as one HTML page: the sections, Tables 1 and 2 against the paper, figures, the
gallery of scans; all text escaped, no script, nothing loaded from elsewhere. The style sheet is
``report.css`` beside this module, inlined into the page."""

from __future__ import annotations

import html
from importlib import resources

from .. import __version__, paper
from .data import ReportData, Run
from .figures import Figures

GENERATOR = "atlas-registry report"
CSS = "\n" + resources.files(__package__).joinpath("report.css").read_text(encoding="utf-8")


def esc(value) -> str:
    """HTML-escaped text (``None`` -> empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else esc(v)


def _vol(v) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


# Tables 1 and 2 as the paper lays them out: (group heading or None, column heading, key).
TABLE1 = (
    "Table 1",
    "Scans with one lesion, by hemisphere, and scans with multiple lesions, per cohort.",
    [
        (None, "Scans", "scans"),
        ("Single lesion", "Left", "single_left"),
        ("Single lesion", "Right", "single_right"),
        ("Single lesion", "Other", "single_other"),
        (None, "Multiple lesions", "multiple"),
    ],
    "% of scans",
)
TABLE2 = (
    "Table 2",
    "Lesions (primary and secondary) by location and hemisphere, per cohort.",
    [
        ("Cortical", "Left", "cortical_left"),
        ("Cortical", "Right", "cortical_right"),
        ("Subcortical only", "Left", "subcortical_left"),
        ("Subcortical only", "Right", "subcortical_right"),
        (None, "Other", "other"),
    ],
    "% of lesions",
)


def _head_rows(columns) -> str:
    top, sub = ['<th rowspan="2" class="l">Cohort</th>'], []
    i = 0
    while i < len(columns):
        group = columns[i][0]
        if group is None:
            top.append(f'<th rowspan="2">{esc(columns[i][1])}</th>')
            i += 1
            continue
        span = 1
        while i + span < len(columns) and columns[i + span][0] == group:
            span += 1
        top.append(f'<th colspan="{span}" class="group">{esc(group)}</th>')
        sub += [f"<th>{esc(c[1])}</th>" for c in columns[i : i + span]]
        i += span
    return f"<tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr>"


def _cell(ours: str, theirs: str | None) -> tuple[str, bool]:
    """A table cell with our value; where the paper says otherwise, highlighted with the paper's."""
    if theirs is None or theirs == ours:
        return f"<td>{ours}</td>", False
    return (f'<td class="diff" title="paper: {theirs}">{ours}<span class="paper">{theirs}</span></td>', True)


def _paper_table(layout, rows: list[dict], reference) -> str:
    """One of the paper's tables: registry values per cohort, Total and percentage rows, the
    paper's value in every cell that differs (paper totals over the cohorts shown)."""
    label, caption, columns, pct_label = layout
    keys = [c[2] for c in columns]
    body, n_diff, n_cells = [], 0, 0
    known = [reference[r["cohort"]] for r in rows if r["cohort"] in reference]
    for r in rows:
        ref = reference.get(r["cohort"])
        cells = []
        for k in keys:
            cell, diff = _cell(_n(r[k]), _n(getattr(ref, k)) if ref else None)
            cells.append(cell)
            n_diff, n_cells = n_diff + diff, n_cells + (ref is not None)
        mark = "" if ref else ' <span class="note">not in the paper</span>'
        body.append(f'<tr><th class="l">{esc(r["cohort"])}{mark}</th>{"".join(cells)}</tr>')
    ours_tot = {k: sum(r[k] for r in rows) for k in keys}
    ref_tot = {k: sum(getattr(x, k) for x in known) for k in keys} if known else None
    whole_key = "scans" if "scans" in keys else None
    ours_whole = ours_tot[whole_key] if whole_key else sum(ours_tot.values())
    ref_whole = (ref_tot[whole_key] if whole_key else sum(ref_tot.values())) if ref_tot else 0
    tot, pct = [], []
    for k in keys:
        cell, diff = _cell(_n(ours_tot[k]), _n(ref_tot[k]) if ref_tot else None)
        tot.append(cell)
        n_diff, n_cells = n_diff + diff, n_cells + bool(ref_tot)
        if k == whole_key:
            pct.append("<td></td>")
            continue
        cell, diff = _cell(_pct(ours_tot[k], ours_whole), _pct(ref_tot[k], ref_whole) if ref_tot else None)
        pct.append(cell)
        n_diff, n_cells = n_diff + diff, n_cells + bool(ref_tot)
    body.append(f'<tr class="total"><th class="l">Total</th>{"".join(tot)}</tr>')
    body.append(f'<tr class="pct"><th class="l">{esc(pct_label)}</th>{"".join(pct)}</tr>')
    if not rows:
        verdict = "The registry holds no scans."
    elif n_diff:
        verdict = (
            f'<span class="flag">{n_diff} of {n_cells} cells differ from the paper</span>: highlighted, '
            "with the paper's value beneath ours."
        )
    else:
        verdict = f'<span class="ok">All {n_cells} cells match the paper.</span>'
    missing = sorted(set(reference) - {r["cohort"] for r in rows})
    if missing and rows:
        verdict += f" The paper's totals are over the cohorts shown; not shown: {esc(', '.join(missing))}."
    anchor = label.lower().replace(" ", "")
    return (
        f'<table class="data paper" id="{anchor}"><caption><b>{esc(label)}.</b> {esc(caption)}</caption>'
        f"<thead>{_head_rows(columns)}</thead><tbody>{''.join(body)}</tbody>"
        f'<tfoot><tr><td colspan="{len(keys) + 1}" class="verdict"><div>{verdict}</div></td></tr></tfoot></table>'
    )


def _volume_cells(o: dict) -> str:
    spread = "–" if o["mean"] is None else f"{_vol(o['mean'])} ± {_vol(o['sd'])}"
    return f"<td>{spread}</td><td>{_vol(o['min'])}</td><td>{_vol(o['max'])}</td>"


def _volume_table(v: dict) -> str:
    rows = []
    for kind, title in (("primary", "Primary lesions"), ("all", "All lesions")):
        o = v[kind]["overall"]
        rows.append(f'<tr><th class="l">{title}</th><td>{_n(o["n"])}</td>{_volume_cells(o)}</tr>')
    rows.append(
        f'<tr class="ref"><th class="l">Paper (R1.1), all lesions</th><td>{_n(paper.N_LESIONS)}</td>'
        f"{_volume_cells(v['paper_all_lesions'])}</tr>"
    )
    return (
        '<table class="data"><caption><b>Lesion volume</b> (mm³) of the native smoothed masks.</caption>'
        '<thead><tr><th class="l"></th><th>n</th><th>mean ± SD</th><th>min</th><th>max</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _reason(code: str | None) -> str:
    return (code or "").replace("_", " ")


def _exclusions(view) -> str:
    from ..export.view import EXCLUSION_CODES

    out = [scan for scan in view.scans if not scan.in_standard]
    if not out:
        return "<p>Every scan is in the standardized subset.</p>"
    counts: dict[str, int] = {}
    for scan in out:
        counts[scan.exclusion_reason] = counts.get(scan.exclusion_reason, 0) + 1
    every_cohort = set(paper.COHORTS) <= {scan.cohort for scan in view.scans}
    expected = {"low_resolution": paper.N_LOW_RESOLUTION, "registration_failed": paper.N_REGISTRATION_FAILURES}
    items = []
    for code, n in sorted(counts.items()):
        ref = expected.get(code) if every_cohort else None
        note = (
            ""
            if ref is None
            else (
                f' <span class="ok">(paper: {ref})</span>' if ref == n else f' <span class="flag">(paper: {ref})</span>'
            )
        )
        items.append(f"<li><b>{esc(_reason(code))}</b>: {n}{note} — {esc(EXCLUSION_CODES.get(code, ''))}</li>")
    rows = []
    for scan in sorted(out, key=lambda x: (x.exclusion_reason or "", x.cohort, x.public_scan)):
        rows.append(
            f'<tr><th class="l"><a href="#scan-{esc(scan.public_scan)}">{esc(scan.public_scan)}</a></th>'
            f'<td class="l">{esc(scan.cohort)}</td><td class="l">{esc(_reason(scan.exclusion_reason))}</td>'
            f'<td class="l text">{esc(view.public_text(scan.exclusion_note))}</td></tr>'
        )
    return (
        f"<p>{len(out)} of {len(view.scans)} scans are not in the standardized subset.</p>"
        f'<ul class="reasons">{"".join(items)}</ul>'
        '<table class="data list"><caption><b>Scans outside the standardized subset.</b></caption>'
        '<thead><tr><th class="l">Scan</th><th class="l">Cohort</th><th class="l">Reason</th>'
        f'<th class="l">Note</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


MAX_EVENTS = 200  # warnings listed per ingest run (the rest counted)


def _validation(runs: list[Run]) -> str:
    if not runs:
        return "<p>No ingest runs are recorded.</p>"
    rows, lists = [], []
    for r in runs:
        when = r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "–"
        rows.append(
            f'<tr><th class="l">{r.id}</th><td class="l">{esc(when)}</td>'
            f'<td class="l text">{esc(r.source)}</td>'
            f'<td class="l"><span class="status {esc(r.status)}">{esc(r.status)}</span></td>'
            f"<td>{_n(r.n_files)}</td><td>{_n(r.n_scans)}</td><td>{_n(r.stored)}</td><td>{_n(r.n_errors)}</td>"
            f"<td>{_n(r.n_warnings)}</td></tr>"
        )
        if r.events:
            items = [
                f'<li><span class="kind">{esc(kind)}</span> <code>{esc(path or "")}</code> {esc(detail)}</li>'
                for kind, path, detail in r.events[:MAX_EVENTS]
            ]
            if len(r.events) > MAX_EVENTS:
                items.append(f"<li>… and {len(r.events) - MAX_EVENTS:,} more</li>")
            lists.append(
                f'<h4>Run {r.id}: {len(r.events):,} warning(s) and notes</h4><ul class="events">{"".join(items)}</ul>'
            )
    n_warn = sum(r.n_warnings for r in runs)
    n_err = sum(r.n_errors for r in runs)
    summary = (
        f"<p>{len(runs)} ingest run(s); {n_err:,} error(s) and {n_warn:,} warning(s) reported by validation."
        + ("" if lists else " No warnings were recorded.")
        + "</p>"
    )
    table = (
        '<table class="data list"><caption><b>Ingest runs.</b> Every archive passes validation before it is '
        "stored; a run with errors is refused and stores nothing.</caption>"
        '<thead><tr><th class="l">Run</th><th class="l">Started (UTC)</th><th class="l">Source</th>'
        '<th class="l">Status</th><th>Files</th><th>Scans</th><th>Stored</th><th>Errors</th><th>Warnings</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return summary + table + "".join(lists)


def _gallery(view, thumbs: dict[str, tuple[str, int, int]]) -> str:
    sites = {c.code: c.site for c in view.cohorts}
    by_cohort: dict[str, list] = {}
    for scan in view.scans:
        by_cohort.setdefault(scan.cohort, []).append(scan)
    parts = []
    for cohort in sorted(by_cohort):
        scans = sorted(by_cohort[cohort], key=lambda x: x.public_scan)
        figs = []
        for scan in scans:
            src, w, h = thumbs[scan.code]
            primary = next((les for les in scan.lesions if les.is_primary and les.metrics), None)
            facts = (
                "masks withheld"
                if scan.withheld
                else f"{len(scan.lesions)} lesion{'s' if len(scan.lesions) != 1 else ''}"
            )
            if primary:
                facts += f" · primary {_vol(primary.metrics.volume_mm3)} mm³"
            badge = (
                ""
                if scan.in_standard
                else (
                    f'<span class="badge" title="not in the standardized subset">'
                    f"{esc(_reason(scan.exclusion_reason))}</span>"
                )
            )
            if scan.split is not None:
                badge += f'<span class="badge split {esc(scan.split)}" title="benchmark split">{esc(scan.split)}</span>'
            note = view.public_text(scan.report.notes) if scan.report else None
            figs.append(
                f'<figure class="scan" id="scan-{esc(scan.public_scan)}">'
                f'<img src="{esc(src)}" width="{w}" height="{h}" alt="Axial T1 slice of {esc(scan.public_scan)}'
                f'{" through the primary lesion" if primary else ""}">'
                f"<figcaption><b>{esc(scan.public_scan)}</b>{badge}<span>{esc(facts)}</span>"
                + (f'<span class="text note">{esc(note)}</span>' if note else "")
                + "</figcaption></figure>"
            )
        site = f' <span class="site">{esc(sites.get(cohort))}</span>' if sites.get(cohort) else ""
        parts.append(
            f'<section class="cohort"><h3>{esc(cohort)}{site} <span class="count">{len(scans)} scans</span>'
            f'</h3><div class="grid">{"".join(figs)}</div></section>'
        )
    if not parts:
        return "<p>The registry holds no scans.</p>"
    return "".join(parts)


def _cards(view) -> str:
    n_subjects = len({s.subject for s in view.scans})
    cohorts = {s.cohort for s in view.scans}
    known = [c for c in sorted(cohorts) if c in paper.TABLE1]
    ref_scans = sum(paper.TABLE1[c].scans for c in known) if known else None
    ref_lesions = sum(paper.TABLE2[c].total for c in known) if known else None
    ref_std = paper.N_STANDARDIZED if set(paper.COHORTS) <= cohorts else None
    cards = [
        ("Scans", len(view.scans), ref_scans),
        ("Subjects", n_subjects, None),
        ("Lesions", view.n_lesions, ref_lesions),
        ("Cohorts", len(cohorts), None),
        ("Standardized", len(view.standard_scans), ref_std),
    ]
    if any(s.split for s in view.scans):  # a release with benchmark splits (the hidden set is not shown)
        cards += [
            (f"{k.capitalize()} scans", sum(1 for s in view.scans if s.split == k), None) for k in ("training", "test")
        ]
    out = []
    for label, value, ref in cards:
        cls = "" if ref is None else (" ok" if ref == value else " flag")
        sub = "" if ref is None else f'<span class="ref{cls}">paper {ref:,}</span>'
        out.append(f'<div class="card"><span class="v">{value:,}</span><span class="k">{label}</span>{sub}</div>')
    return f'<div class="cards">{"".join(out)}</div>'


SECTIONS = (
    ("tables", "Tables 1 and 2"),
    ("volumes", "Lesion volumes"),
    ("overlap", "Lesion overlap"),
    ("subset", "Standardized subset"),
    ("validation", "Validation"),
    ("changes", "Changes"),
    ("scans", "Scans"),
)


def page(data: ReportData, fig: Figures) -> str:
    """The report's ``index.html``."""
    view, spec = data.view, data.spec
    if data.release is None:
        kicker, title = "Registry report", spec.title
        sub = "The registry as it stands"
    else:
        kicker, title = f"Release report · {data.status}", spec.title
        sub = f"Release {spec.name} · version {spec.version} · {spec.date}"
    when = f" of {data.revision_at:%Y-%m-%d %H:%M} UTC" if data.revision_at else ""
    rev = f"registry revision {view.revision}{when}" if view.revision is not None else "empty registry"
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS)
    num = {a: i + 1 for i, (a, _) in enumerate(SECTIONS)}

    def h2(anchor: str) -> str:
        return f'<h2 id="{anchor}"><span class="num">{num[anchor]}</span>{esc(dict(SECTIONS)[anchor])}</h2>'

    desc = f'<p class="lede">{esc(spec.description.strip())}</p>' if getattr(spec, "description", "") else ""
    hist = (
        f'<figure class="fig"><img src="{fig.histogram}" alt="Histogram of lesion volumes, log scale">'
        "<figcaption><b>Figure 1.</b> Lesion volumes (native smoothed masks), log-spaced bins; primary and "
        "secondary lesions stacked. Dashed lines: the smallest and largest lesion of the paper."
        "</figcaption></figure>"
        if fig.histogram
        else "<p>No lesion volumes.</p>"
    )
    if fig.overlap:
        o = fig.overlap
        ov = (
            f'<figure class="fig dark"><img src="{o["src"]}" alt="Probabilistic overlap map of the primary lesions">'
            f"<figcaption><b>Figure 2.</b> Probabilistic overlap of the primary lesions of the {o['n_scans']:,} "
            "standardized scans in MNI152 2009 space (voxel value: fraction of scans whose primary lesion "
            f"covers it; maximum {o['max']:.2f}, {o['voxels_covered']:,} voxels covered), over "
            f"{esc(o['underlay'] or 'no underlay')}. Slices through the peak.</figcaption></figure>"
        )
    else:
        ov = f'<p class="flag">No overlap map: {esc(fig.overlap_missing)}</p>'
    body = [
        '<header class="masthead">',
        f'<p class="kicker">{esc(kicker)}</p><h1>{esc(title)}</h1>',
        f'<p class="subtitle">{esc(sub)} · {esc(rev)}</p>{desc}',
        _cards(view),
        f'<nav aria-label="Contents">{nav}</nav></header>',
        h2("tables"),
        "<p>Computed from the registry with the data descriptor's definitions (Liew et al., <i>Scientific Data</i> "
        "2018); each cell is compared with the published table.</p>",
        (
            '<p class="flag">This release has benchmark splits: the tables, volumes and overlap map describe the '
            "training set only; the test set's masks are withheld and the hidden set is not released.</p>"
            if getattr(spec, "splits", None) is not None
            else ""
        ),
        '<div class="pair">',
        _paper_table(TABLE1, fig.tables["table1"], paper.TABLE1),
        _paper_table(TABLE2, fig.tables["table2"], paper.TABLE2),
        "</div>",
        h2("volumes"),
        _volume_table(fig.volumes),
        hist,
        h2("overlap"),
        ov,
        h2("subset"),
        _exclusions(view),
        h2("validation"),
        _validation(data.runs),
        h2("changes"),
        f'<pre class="changes">{esc(data.changes)}</pre>',
        h2("scans"),
        '<p class="hint">Native T1, axial slice where the primary lesion is largest, its outline in red. '
        "Neurological convention: the patient's left is on the left, anterior at the top.</p>",
        _gallery(view, fig.thumbs),
        f"<footer>Generated by atlas-registry {esc(__version__)} from {esc(rev)}. Scans are named by their public "
        "identifiers.</footer>",
    ]
    page_title = f"{spec.title} — {spec.name}" if data.release else spec.title
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="{GENERATOR} {esc(__version__)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{esc(page_title)}</title><style>{CSS}</style></head>\n"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
