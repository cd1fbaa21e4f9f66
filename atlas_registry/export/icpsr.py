"""The ICPSR archive (``out/icpsr/``): every scan of the release in native space, as Table 3 names them.

Layout::

    icpsr/README.md           what the archive holds, data use terms, how to cite
    icpsr/CHANGES             the release history (CPAN style)
    icpsr/codebook.xml        DDI Codebook 2.5: study, files, one <var> per column
    icpsr/codebook.md         the same codebook, readable
    icpsr/tables/ATLAS_<table>.sav, .dta   the metadata tables for SPSS and Stata (labels, value labels)
    icpsr/native/             a native root, as ``atlas-registry validate``/``ingest`` read it:
        ATLAS_metadata.xlsx, ATLAS_scans.csv, ATLAS_lesions.csv, ATLAS_scanners.csv
        cXXXX/cXXXXsXXXXtXX/cXXXXsXXXXtXX.nii.gz, …_LesionRaw.voi, …_LesionSmooth.voi,
                            …_LesionSmooth.nii.gz, …_LesionRaw_1.voi, …

Image and mask files are the registry's objects, byte for byte. The metadata tables have the columns
of the metadata sheets the registry ingests (:mod:`atlas_registry.metadata`), so the ``native/``
folder of a release can be validated and ingested again. SPSS/Stata variable names are the columns
made into identifiers; the sheet column name is the variable label; coded columns (hemisphere,
location, Fazekas grades) carry value labels.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from .. import metadata
from ..naming import METADATA_CSV, METADATA_WORKBOOK, native_relpath
from . import ddi
from .determinism import fix_dta_timestamp, fix_sav_timestamp, fix_xlsx
from .view import LesionInfo, ReleaseView, ScanView

NATIVE = "icpsr/native"
STAT_DIR = "icpsr/tables"

# Value labels of coded columns (the schema's enumerations label themselves).
VALUE_LABELS = {
    "PVH": (
        ("0", "absence"),
        ("1", "caps or pencil-thin lining"),
        ("2", "smooth halo"),
        ("3", "irregular PVH extending into the deep white matter"),
    ),
    "DWMH": (
        ("0", "absence"),
        ("1", "punctate foci"),
        ("2", "beginning confluence of foci"),
        ("3", "large confluent areas"),
    ),
    "Hemisphere": (("left", "left hemisphere"), ("right", "right hemisphere"), ("other", "brainstem or cerebellum")),
    "Location": (
        ("cortical", "reaches the cortex"),
        ("subcortical", "wholly within white matter and subcortical structures"),
        ("other", "brainstem or cerebellum"),
    ),
}
# Short variable labels (SPSS/Stata, DDI <labl>); the schema's description goes into DDI <txt>.
LABELS = {
    metadata.SCAN_ID: "scan identifier cXXXXsXXXXtXX",
    metadata.COHORT: "cohort cXXXX",
    "# Strokes LH Cortical": "left-hemisphere cortical lesions",
    "# Strokes LH subcortical": "left-hemisphere subcortical lesions",
    "# Strokes RH Cortical": "right-hemisphere cortical lesions",
    "# Strokes RH subcortical": "right-hemisphere subcortical lesions",
    "Other Location": "lesions in the brainstem or cerebellum",
    "Stroke type": "type of stroke (neuroradiologist)",
    "Primary Stroke Location": "primary stroke location",
    "Primary Stroke Location Hemisphere": "hemisphere of the primary stroke",
    "Vascular territory": "vascular territory of the primary stroke",
    "PVH": "periventricular hyperintensities (Fazekas)",
    "DWMH": "deep white matter hyperintensities (Fazekas)",
    "Notes": "neuroradiologist's notes",
    metadata.PRIMARY_NOT_LARGEST: "primary lesion is not the largest",
    "Lesion": "lesion number: 0 primary, 1.. secondary (largest first)",
    "Hemisphere": "hemisphere of the lesion",
    "Location": "location of the lesion",
    "Tracer": "tracer code",
    "Reviewer": "reviewer code",
    "Field Strength (T)": "field strength (T)",
    "Manufacturer": "scanner manufacturer",
    "Model": "scanner model",
    "Voxel Size X (mm)": "voxel size x (mm)",
    "Voxel Size Y (mm)": "voxel size y (mm)",
    "Voxel Size Z (mm)": "voxel size z (mm)",
}


# Columns whose identifier would be longer than Stata allows: their SPSS/Stata names.
SHORT_NAMES = {"Primary Stroke Location Hemisphere": "primary_hemisphere"}
# Ordered grades (SPSS measure "ordinal").
ORDINAL = ("PVH", "DWMH")


@dataclass(frozen=True)
class Column:
    name: str  # sheet/CSV column (atlas_registry.metadata)
    label: str
    get: Callable
    numeric: bool = False
    categories: tuple[tuple[str, str], ...] = ()
    unit: str | None = None
    description: str = ""

    @property
    def stat_name(self) -> str:
        """The SPSS/Stata variable name: the column as an identifier, never cut (Stata allows 32
        characters and a value-label set needs one less: longer names have a chosen short form)."""
        if self.name in SHORT_NAMES:
            return SHORT_NAMES[self.name]
        s = re.sub(r"[^0-9A-Za-z]+", "_", self.name.replace("#", "n")).strip("_").lower()
        s = s if s[:1].isalpha() else f"v_{s}"
        if len(s) > 31:
            raise ValueError(f"column {self.name!r} needs a short SPSS/Stata name (SHORT_NAMES)")
        return s

    @property
    def integer(self) -> bool:
        """Whole numbers (counts, codes, grades): SPSS format F8.0."""
        return self.numeric and self.unit is None or bool(self.categories)

    @property
    def measure(self) -> str:
        """SPSS measurement level: ordered grades are ordinal, other codes and text nominal, the rest scale."""
        if self.name in ORDINAL:
            return "ordinal"
        if self.categories or not self.numeric:
            return "nominal"
        return "scale"

    def variable(self) -> ddi.Variable:
        return ddi.Variable(
            self.name, self.stat_name, self.label, self.numeric, self.categories, self.unit, self.description
        )


def _report(attr, fmt=lambda v: v):
    return lambda s: fmt(getattr(s.report, attr)) if s.report and getattr(s.report, attr) is not None else None


def _class(les: LesionInfo) -> tuple[str | None, str | None]:
    """The lesion's (hemisphere, location): as annotated, else as computed from its mask."""
    m = les.metrics
    return les.hemisphere or (m.hemisphere if m else None), les.location or (m.location if m else None)


def _count(column):
    return lambda s: sum(1 for les in s.lesions if metadata.count_column(*_class(les)) == column)


def _scanner(attr, i=None):
    def get(s: ScanView):
        v = getattr(s.scanner, attr) if s.scanner else None
        return v[i] if v is not None and i is not None else v

    return get


_GETTERS = {
    "scans": {
        metadata.SCAN_ID: lambda s: s.code,
        metadata.COHORT: lambda s: s.cohort,
        **{c: _count(c) for c in metadata.COUNT_COLUMNS},
        "Stroke type": _report("stroke_type"),
        "Primary Stroke Location": _report("primary_location"),
        "Primary Stroke Location Hemisphere": _report("primary_hemisphere", str.capitalize),
        "Vascular territory": _report("vascular_territory"),
        "PVH": _report("pvh"),
        "DWMH": _report("dwmh"),
        "Notes": _report("notes"),
        metadata.PRIMARY_NOT_LARGEST: lambda s: "Yes" if s.primary_chosen_by_neuroradiologist else "No",
    },
    "lesions": {
        metadata.SCAN_ID: lambda p: p[0].code,
        "Lesion": lambda p: p[1].number,
        "Hemisphere": lambda p: _class(p[1])[0],
        "Location": lambda p: _class(p[1])[1],
        "Tracer": lambda p: p[1].tracer,
        "Reviewer": lambda p: p[1].reviewer,
    },
    "scanners": {
        metadata.COHORT: lambda s: s.cohort,
        "Field Strength (T)": _scanner("field_strength_t"),
        "Manufacturer": _scanner("manufacturer"),
        "Model": _scanner("model"),
        "Voxel Size X (mm)": _scanner("voxel_mm", 0),
        "Voxel Size Y (mm)": _scanner("voxel_mm", 1),
        "Voxel Size Z (mm)": _scanner("voxel_mm", 2),
    },
}
TABLE_DESCRIPTIONS = {
    "scans": "One row per scan (subject-timepoint): lesion counts and the neuroradiologist's report",
    "lesions": "One row per lesion (primary and secondary) with its hemisphere, location, tracer and reviewer",
    "scanners": "One row per cohort: the scanner and acquisition resolution",
}


def columns(table: str, rows_values: dict[str, list] | None = None) -> tuple[Column, ...]:
    """The columns of ``table`` (:data:`metadata.COLUMNS`), typed and labelled from its JSON Schema.

    Categories of a string column are its schema enumeration plus any other value the rows hold, so
    that coding it for SPSS/Stata never loses a value."""
    props = metadata.load_schema(table)["properties"]
    out = []
    for name in metadata.COLUMNS[table]:
        prop = props.get(name, {})
        kinds = prop.get("type", "string")
        numeric = any(k in ("integer", "number") for k in (kinds if isinstance(kinds, list) else [kinds]))
        cats = VALUE_LABELS.get(name)
        if cats is None and "enum" in prop and not numeric:
            seen = sorted(
                {str(v) for v in (rows_values or {}).get(name, ()) if v not in (None, "")}
                - {str(v) for v in prop["enum"]}
            )
            cats = tuple((str(v), str(v)) for v in [*prop["enum"], *seen])
        unit = "T" if "(T)" in name else ("mm" if "(mm)" in name else None)
        out.append(
            Column(
                name,
                LABELS.get(name, name),
                _GETTERS[table][name],
                numeric,
                cats or (),
                unit,
                prop.get("description", ""),
            )
        )
    return tuple(out)


def tables(view: ReleaseView) -> dict[str, tuple[tuple[Column, ...], list[dict]]]:
    """name -> (columns, rows by column name) of the scans, lesions and scanners tables."""
    first_of_cohort: dict[str, ScanView] = {}
    for s in view.scans:
        if s.scanner is not None:
            first_of_cohort.setdefault(s.cohort, s)
    sources: dict[str, list] = {
        "scans": list(view.scans),
        "lesions": [(s, les) for s in view.scans for les in s.lesions],
        "scanners": [first_of_cohort[c] for c in sorted(first_of_cohort)],
    }
    out = {}
    for name in metadata.TABLES:
        getters = _GETTERS[name]
        rows = [{c: getters[c](src) for c in metadata.COLUMNS[name]} for src in sources[name]]
        cols = columns(name, {c: [r[c] for r in rows] for c in metadata.COLUMNS[name]})
        text = [c.name for c in cols if not c.numeric]
        for r in rows:  # an empty text cell is "" (as the ingested sheets hold it), never a missing cell
            r.update({c: "" for c in text if r[c] is None})
        out[name] = (cols, rows)
    return out


# -- file formats ---------------------------------------------------------------------------------


def _frame(cols, rows):
    import pandas as pd

    return pd.DataFrame([[r[c.name] for c in cols] for r in rows], columns=[c.name for c in cols], dtype=object)


def workbook(tabs, day: str) -> bytes:
    """The metadata workbook as :func:`metadata.workbook_bytes` writes it, dated the release date."""
    return fix_xlsx(metadata.workbook_bytes({n: _frame(cols, rows) for n, (cols, rows) in tabs.items()}), day)


def _coded(cols, rows):
    """The table as a DataFrame for SPSS/Stata: text-coded columns as integers 1..k with value labels."""
    import pandas as pd

    data, labels, names = {}, {}, {}
    for c in cols:
        vals = [r[c.name] for r in rows]
        if c.categories and not c.numeric:
            codes = {v: i + 1 for i, (v, _) in enumerate(c.categories)}
            data[c.stat_name] = pd.array([codes.get(v) for v in vals], dtype="Float64").astype("float64")
            labels[c.stat_name] = {float(i + 1): lab for i, (_, lab) in enumerate(c.categories)}
        elif c.numeric:
            data[c.stat_name] = pd.array([None if v is None else float(v) for v in vals], dtype="Float64").astype(
                "float64"
            )
            if c.categories:
                labels[c.stat_name] = {float(v): lab for v, lab in c.categories}
        else:
            data[c.stat_name] = ["" if v is None else str(v) for v in vals]
        names[c.stat_name] = c.name if c.name == c.label else f"{c.name}: {c.label}"
    return pd.DataFrame(data), {k: v[:80] for k, v in names.items()}, labels


def file_label(candidates: list[str], limit: int) -> str:
    """The first of ``candidates`` that fits in ``limit`` bytes (SPSS 64, Stata 80): a whole phrase,
    never one cut in the middle; the last one is cut at a word boundary only if nothing fits."""
    for c in candidates:
        if len(c.encode("utf-8")) <= limit:
            return c
    words, out = candidates[-1].split(), ""
    for w in words:
        if len((out + " " + w).strip().encode("utf-8")) > limit:
            break
        out = (out + " " + w).strip()
    return out


def label_candidates(title: str, release: str, table: str) -> list[str]:
    """File labels of a table, longest first: the title, its acronym (in parentheses), the release."""
    m = re.search(r"\(([A-Z][A-Za-z0-9-]{1,15})\)", title)
    out = [f"{title}: {table}"]
    if m:
        out.append(f"{m.group(1)} {release}: {table} table")
    out.append(f"{release}: {table} table")
    return out


def _formats(cols, df) -> tuple[dict, dict, dict]:
    """SPSS formats (F8.0 for whole numbers, F8.3 for measurements, A<w> for text), display widths and
    measurement levels of every variable."""
    fmt, width, measure = {}, {}, {}
    for c in cols:
        n = c.stat_name
        if c.numeric or c.categories:
            fmt[n] = "F8.0" if c.integer else "F8.3"
            width[n] = 8
        else:
            w = max([1, *(len(str(v).encode("utf-8")) for v in df[n])])
            fmt[n] = f"A{w}"
            width[n] = min(max(w, len(n)), 60)
        measure[n] = c.measure
    return fmt, width, measure


def stat_files(cols, rows, day: str, title: str, *, release: str = "", table: str = "") -> tuple[bytes, bytes]:
    """(``.sav``, ``.dta``) bytes of one table, with variable and value labels, SPSS formats and
    measurement levels, and the release date."""
    import os
    import tempfile

    import pyreadstat

    df, col_labels, value_labels = _coded(cols, rows)
    fmt, width, measure = _formats(cols, df)
    labels = label_candidates(title, release, table) if table else [title]
    with tempfile.TemporaryDirectory() as tmp:
        sav, dta = os.path.join(tmp, "t.sav"), os.path.join(tmp, "t.dta")
        pyreadstat.write_sav(
            df,
            sav,
            file_label=file_label(labels, 64),
            column_labels=col_labels,
            variable_value_labels=value_labels,
            variable_format=fmt,
            variable_display_width=width,
            variable_measure=measure,
        )
        pyreadstat.write_dta(
            df,
            dta,
            file_label=file_label(labels, 80),
            column_labels=col_labels,
            variable_value_labels=value_labels,
            version=14,
        )  # format 118: Stata 14 and later
        with open(sav, "rb") as f:
            sav_b = fix_sav_timestamp(f.read(), day)
        with open(dta, "rb") as f:
            dta_b = fix_dta_timestamp(f.read(), day)
    return sav_b, dta_b


def _split_lines(view: ReleaseView) -> list[str]:
    if view.spec.splits is None:
        return []
    n_test = sum(1 for s in view.scans if s.withheld)
    return [
        "## Benchmark splits",
        "",
        f"This release is divided into a training set (`native/`: images, lesion masks and metadata) and a test "
        f"set (`test/cXXXX/cXXXXsXXXXtXX/cXXXXsXXXXtXX.nii.gz`: {n_test} T1-weighted images only; their lesion masks "
        "and lesion metadata are withheld). The `split` column of `crosswalk.csv` gives each scan's set. A hidden "
        "set is not released.",
        "",
    ]


def readme(view: ReleaseView, tabs, release_notes: str = "") -> str:
    spec = view.spec
    parts = [
        f"# {spec.title}",
        "",
        f"Release {spec.name}, version {spec.version}, {spec.date}: the native-space archive "
        f"({len(view.scans)} scans, {view.n_lesions} lesion masks, {len(view.cohorts)} cohorts).",
        "",
        spec.description.strip(),
        "",
        *ddi.terms_sections(spec),
        "## Contents",
        "",
        "* `native/cXXXX/cXXXXsXXXXtXX/` — one folder per scan (cohort c, subject s, timepoint t):",
        "  * `cXXXXsXXXXtXX.nii.gz` — the T1-weighted MRI;",
        "  * `*_LesionRaw.voi` — the primary lesion as hand traced (MRIcron VOI: a gzip NIfTI);",
        "  * `*_LesionSmooth.voi`, `*_LesionSmooth.nii.gz` — the same smoothed (Gaussian FWHM 2 mm, threshold 0.5);",
        "  * `*_LesionRaw_1.voi`, `*_LesionSmooth_1.voi`, `*_LesionSmooth_1.nii.gz`, `_2`, … — secondary lesions, "
        "largest first.",
        f"* `native/{METADATA_WORKBOOK}` — the metadata workbook (sheets "
        + ", ".join(f"`{n}`" for n in tabs)
        + "); the same tables as CSV: "
        + ", ".join(f"`native/{METADATA_CSV[n]}`" for n in tabs if n in METADATA_CSV)
        + ".",
        "* `tables/ATLAS_<table>.sav`, `tables/ATLAS_<table>.dta` — the tables for SPSS and Stata, with variable and "
        "value labels.",
        "* `codebook.xml` (DDI Codebook 2.5) and `codebook.md` — every variable with its label, categories and "
        "summary statistics.",
        "* `crosswalk.csv` — native identifier ↔ public label of every scan (see below).",
        "* `CHANGES` — what changed in each release.",
        "",
        *_split_lines(view),
        *linking_sections(public=False),
        *ddi.closing_sections(spec, release_notes),
    ]
    return "\n".join(parts)


# -- the crosswalk to the public archives ----------------------------------------------------------

CROSSWALK = "icpsr/crosswalk.csv"
CROSSWALK_COLUMNS = ("scan_id", "subject_id", "cohort", "participant_id", "session_id", "public_scan", "in_bids")
TEST = "icpsr/test"  # the test scans' native T1s (their masks withheld), when the release has splits
CROSSWALK_LABELS = {
    "scan_id": "native scan identifier cXXXXsXXXXtXX",
    "subject_id": "native subject identifier cXXXXsXXXX",
    "cohort": "cohort cXXXX",
    "participant_id": "public subject label sub-<label> (BIDS)",
    "session_id": "BIDS session ses-<n> (timepoint)",
    "public_scan": "public scan sub-<label>_ses-<n> (Parquet scan)",
    "in_bids": "in the standardized subset (BIDS archive): yes | no",
    "split": "benchmark split: training (masks released) | test (masks withheld)",
}


def crosswalk_columns(view: ReleaseView) -> tuple[str, ...]:
    return CROSSWALK_COLUMNS + (("split",) if view.spec.splits is not None else ())


def crosswalk_csv(view: ReleaseView) -> bytes:
    """Native identifier <-> public label of every scan (restricted archive only, never public)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    splits = view.spec.splits is not None
    w.writerow(crosswalk_columns(view))
    for s in sorted(view.scans, key=lambda s: s.code):
        w.writerow(
            [
                s.code,
                s.subject,
                s.cohort,
                s.bids_subject,
                s.bids_session,
                s.public_scan,
                "yes" if s.in_standard else "no",
                *([s.split] if splits else []),
            ]
        )
    return buf.getvalue().encode("utf-8")


def linking_sections(public: bool) -> list[str]:
    """Markdown lines: how the restricted (ICPSR) and public (BIDS, Parquet) archives are linked."""
    why = (
        "The public archives cannot carry this table: the native identifiers are the contributing sites' "
        "codes, which the sites can trace back to a patient's records, so pairing them with the public labels "
        "would re-identify every public scan. The crosswalk is therefore only in the restricted ICPSR archive, "
        "released under its data use agreement."
    )
    if public:
        return [
            "## Linking to the restricted (ICPSR) archive",
            "",
            "Subjects here carry public, pseudonymous labels (`sub-<label>`, stable across releases). The "
            "native-space archive at ICPSR (data use agreement required) names the same scans by the sites' "
            "native identifiers (`cXXXXsXXXXtXX`) and holds `crosswalk.csv`, one row per scan: `scan_id` (native), "
            "`participant_id` and `session_id` (as here), `public_scan` (`sub-<label>_ses-<n>`, the `scan` key of "
            "the Parquet tables). Join on `participant_id` and `session_id`.",
            "",
            why,
            "",
        ]
    return [
        "## Linking to the public archives (BIDS, Parquet)",
        "",
        "`crosswalk.csv` pairs every scan's native identifier with its public label, one row per scan: "
        "`scan_id` and `subject_id` (native, as in `native/`), `cohort`, `participant_id` and `session_id` (the "
        "BIDS `sub-<label>` and `ses-<n>`: `participants.tsv`, `sub-<label>/ses-<n>/`), `public_scan` "
        "(`sub-<label>_ses-<n>`, the `scan` key of the Parquet tables) and `in_bids` (whether the scan is in the "
        "standardized subset, the BIDS archive). For example, in Python: "
        '`crosswalk.merge(participants, on="participant_id")`; in DuckDB: '
        "`SELECT * FROM 'crosswalk.csv' c JOIN 'scans.parquet' p ON p.scan = c.public_scan`.",
        "",
        why,
        "Keep `crosswalk.csv` with the rest of this archive, under the same terms.",
        "",
    ]


# -- writing ----------------------------------------------------------------------------------------


def _scan_files(s: ScanView):
    """(relpath under native/, FileRef, is_mask) of every file of one scan."""
    yield native_relpath(s.code, "t1"), s.t1_native, False
    for les in s.lesions:
        for m in les.native:
            yield native_relpath(s.code, "lesion", m.variant, les.number), m, True


TABLES_RECIPE = "icpsr-tables-1"


def _recipe() -> str:
    """What the table files' bytes depend on besides their rows: this code and the writers' versions."""
    import openpyxl
    import pyreadstat

    from ..release import _source_sha256

    return f"{TABLES_RECIPE}:{_source_sha256()}:{pyreadstat.__version__}:{openpyxl.__version__}"


def _rows_key(cache, what: str, day: str, title: str, tabs) -> str:
    """Cache key of a table file: the recipe, the release date and title, and every row."""
    import json

    data = json.dumps(
        {n: [[c.name for c in cols], rows] for n, (cols, rows) in tabs.items()}, default=str, sort_keys=True
    )
    return cache.key(_recipe(), what, day, title, data)


def training_only(view: ReleaseView) -> ReleaseView:
    """The scans released with their masks (every scan when the release has no splits)."""
    if view.spec.splits is None:
        return view
    from dataclasses import replace

    return replace(view, scans=tuple(s for s in view.scans if not s.withheld))


def write_icpsr(output, view: ReleaseView, gate, *, changes: str, release_notes: str = "") -> None:
    """Write ``icpsr/``. The SPSS, Stata and xlsx files (the slow ones) come from the export cache when
    their rows, the release date and title and the code are those of an earlier build."""
    day = view.spec.date
    rev = view.revision
    cache = output.cache
    for s in view.scans:
        for rel, ref, is_mask in _scan_files(s):
            path = f"{TEST if s.withheld else NATIVE}/{rel}"
            output.copy_object(path, ref.sha256, ref.size, archive="icpsr", scan=s.code, rev=ref.created_rev_id)
            gate.nifti(path, output.object_path(ref.sha256), ref.sha256, mask=is_mask)
    full, view = view, training_only(view)  # the tables of native/ hold the scans released with their masks
    tabs = tables(view)
    files = []
    for i, (name, (cols, rows)) in enumerate(tabs.items(), start=1):
        csv_name = METADATA_CSV.get(name, f"ATLAS_{name}.csv")
        gate.table(
            f"{NATIVE}/{csv_name}",
            name,
            [c.name for c in cols],
            rows,
            text_columns=[c.name for c in cols if not c.numeric],
        )
        output.write(f"{NATIVE}/{csv_name}", metadata.csv_bytes(_frame(cols, rows)), archive="icpsr", rev=rev)
        title = view.spec.title
        key = _rows_key(cache, "sav+dta", day, f"{title}\x00{view.spec.name}\x00{name}", {name: (cols, rows)})
        sav = cache.get(key + ".sav") if cache.root is not None else None
        dta = cache.get(key + ".dta") if sav is not None else None
        if sav is None or dta is None:
            sav, dta = stat_files(cols, rows, day, title, release=view.spec.name, table=name)
            cache.put(key + ".sav", sav)
            cache.put(key + ".dta", dta)
        stem = csv_name.rsplit(".", 1)[0]
        output.write(f"{STAT_DIR}/{stem}.sav", sav, archive="icpsr", rev=rev)
        output.write(f"{STAT_DIR}/{stem}.dta", dta, archive="icpsr", rev=rev)
        forms = (
            ddi.FileForm(
                f"F{i}sav",
                f"{stem}.sav",
                f"tables/{stem}.sav",
                ddi.MIME[".sav"],
                "SPSS system file: variables named as below, coded text as numbers with value labels",
            ),
            ddi.FileForm(
                f"F{i}dta",
                f"{stem}.dta",
                f"tables/{stem}.dta",
                ddi.MIME[".dta"],
                "Stata 14+ file: variables named as below, coded text as numbers with value labels",
            ),
            ddi.FileForm(
                "Fxlsx",
                METADATA_WORKBOOK,
                f"native/{METADATA_WORKBOOK}",
                ddi.MIME[".xlsx"],
                "The metadata workbook: one sheet per table (scans, lesions, scanners), as the CSV files",
            ),
        )
        files.append(
            ddi.DataFile(
                f"F{i}",
                csv_name,
                f"native/{csv_name}",
                TABLE_DESCRIPTIONS[name],
                tuple(c.variable() for c in cols),
                tuple(rows),
                forms,
            )
        )
    xlsx = cache.get_or_make(_rows_key(cache, "xlsx", day, "", tabs), lambda: workbook(tabs, day))
    output.write(f"{NATIVE}/{METADATA_WORKBOOK}", xlsx, archive="icpsr", rev=rev)
    cw_rows = list(csv.DictReader(io.StringIO(crosswalk_csv(full).decode("utf-8"))))
    files.append(
        ddi.DataFile(
            f"F{len(files) + 1}",
            "crosswalk.csv",
            "crosswalk.csv",
            "One row per scan: native identifier and public label (restricted: links to the public BIDS and Parquet "
            "archives)",
            tuple(ddi.Variable(c, c, CROSSWALK_LABELS[c]) for c in crosswalk_columns(full)),
            tuple(cw_rows),
            coded=False,
        )
    )
    output.write("icpsr/codebook.xml", ddi.codebook_xml(view.spec, files, revision=rev), archive="icpsr")
    output.write_text("icpsr/codebook.md", ddi.codebook_markdown(view.spec, files, revision=rev), archive="icpsr")
    output.write(CROSSWALK, crosswalk_csv(full), archive="icpsr", rev=rev)
    output.write_text("icpsr/README.md", readme(full, tabs, release_notes), archive="icpsr")
    output.write_text("icpsr/CHANGES", changes, archive="icpsr")
