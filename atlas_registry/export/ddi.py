"""The ICPSR codebook: DDI Codebook 2.5 XML (:func:`codebook_xml`) and the same as Markdown
(:func:`codebook_markdown`).

``codeBook`` > ``docDscr`` (about the codebook), ``stdyDscr`` (``citation`` > ``titlStmt`` > ``titl``,
``IDNo``; authors, producer, version, bibliographic citation; abstract; data access and citation
requirement), one ``fileDscr`` per data table, and ``dataDscr`` with one ``var`` per column: ``labl``,
summary statistics (``sumStat``: valid/invalid counts; min, max, mean, standard deviation of numeric
columns), ``catgry`` (value, label, frequency) for coded columns, ``varFormat``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .. import __version__
from ..release_spec import ReleaseSpec

DDI_NS = "ddi:codebook:2_5"
DDI_XSD = "http://www.ddialliance.org/Specification/DDI-Codebook/2.5/XMLSchema/codebook.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


@dataclass(frozen=True)
class Variable:
    name: str  # column name in the CSV/workbook
    stat_name: str  # variable name in the SPSS/Stata files
    label: str
    numeric: bool = False
    categories: tuple[tuple[str, str], ...] = ()  # (value, label) of a coded column
    unit: str | None = None
    description: str = ""


@dataclass(frozen=True)
class FileForm:
    """Another file holding the same table (SPSS, Stata, the workbook): its own DDI file description."""

    id: str
    name: str
    uri: str
    mime: str
    note: str = ""


@dataclass(frozen=True)
class DataFile:
    id: str
    name: str  # file name of the CSV table
    uri: str  # path in the archive
    description: str
    variables: tuple[Variable, ...]
    rows: tuple[dict, ...]  # by column name
    forms: tuple[FileForm, ...] = ()  # the same table in other formats
    coded: bool = True  # text categories are numeric codes 1..k in the SPSS/Stata forms


MIME = {
    ".csv": "text/csv",
    ".sav": "application/x-spss-sav",
    ".dta": "application/x-stata-dta",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def category_code(var: Variable, value: str) -> str:
    """The value of a category in the SPSS/Stata files: a coded text column's 1..k, else the value."""
    if var.numeric:
        return value
    return str([v for v, _ in var.categories].index(value) + 1)


def _num(v) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _fmt(x: float) -> str:
    return f"{x:.6g}" if not float(x).is_integer() else str(int(x))


def summary(var: Variable, rows) -> dict:
    """``vald``/``invd`` counts, and ``min``/``max``/``mean``/``stdev`` of a numeric column."""
    values = [r.get(var.name) for r in rows]
    valid = [v for v in values if v is not None and v != ""]
    out = {"vald": str(len(valid)), "invd": str(len(values) - len(valid))}
    if var.numeric:
        nums = [x for x in (_num(v) for v in valid) if x is not None]
        if nums:
            mean = sum(nums) / len(nums)
            sd = math.sqrt(sum((x - mean) ** 2 for x in nums) / (len(nums) - 1)) if len(nums) > 1 else 0.0
            out.update(min=_fmt(min(nums)), max=_fmt(max(nums)), mean=_fmt(round(mean, 6)), stdev=_fmt(round(sd, 6)))
    return out


def frequencies(var: Variable, rows) -> dict[str, int]:
    counts = {str(v): 0 for v, _ in var.categories}
    for r in rows:
        v = r.get(var.name)
        if v is None or v == "":
            continue
        key = _fmt(float(v)) if var.numeric and _num(v) is not None else str(v)
        if key in counts:
            counts[key] += 1
    return counts


def _sub(parent, tag: str, text: str | None = None, **attrs) -> ET.Element:
    el = ET.SubElement(parent, f"{{{DDI_NS}}}{tag}", {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _doi(spec: ReleaseSpec) -> str | None:
    for r in spec.references:
        if "doi.org/" in r:
            return r.split("doi.org/", 1)[1]
    return None


def codebook_xml(spec: ReleaseSpec, files: list[DataFile], *, revision: int | None) -> bytes:
    ET.register_namespace("", DDI_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(
        f"{{{DDI_NS}}}codeBook",
        {
            "version": "2.5",
            "ID": f"atlas-{spec.name}",
            f"{{{XSI_NS}}}schemaLocation": f"{DDI_NS} {DDI_XSD}",
        },
    )
    doc = _sub(root, "docDscr")
    dcit = _sub(doc, "citation")
    _sub(_sub(dcit, "titlStmt"), "titl", f"Codebook: {spec.title}")
    dprod = _sub(dcit, "prodStmt")
    _sub(dprod, "prodDate", spec.date, date=spec.date)
    _sub(dprod, "software", "atlas-registry", version=__version__)

    study = _sub(root, "stdyDscr")
    cit = _sub(study, "citation")
    titl = _sub(cit, "titlStmt")
    _sub(titl, "titl", spec.title)
    _sub(titl, "IDNo", f"{spec.name}", agency="atlas-registry")
    if doi := _doi(spec):
        _sub(titl, "IDNo", doi, agency="DOI")
    rsp = _sub(cit, "rspStmt")
    for a in spec.authors:
        _sub(rsp, "AuthEnty", a)
    prod = _sub(cit, "prodStmt")
    _sub(prod, "prodDate", spec.date, date=spec.date)
    _sub(prod, "software", "atlas-registry", version=__version__)
    _sub(_sub(cit, "verStmt"), "version", spec.version, date=spec.date)
    if spec.how_to_cite:
        _sub(cit, "biblCit", spec.how_to_cite)
    st = spec.study
    info = _sub(study, "stdyInfo")
    if st.keywords:
        subj = _sub(info, "subject")
        for k in st.keywords:
            _sub(subj, "keyword", k)
    _sub(info, "abstract", spec.description or spec.title)
    summ = _sub(info, "sumDscr")
    if st.time_period:
        _sub(summ, "timePrd", st.time_period)
    for nation in st.geography:
        _sub(summ, "nation", nation)
    if st.geography:
        _sub(summ, "geogCover", ", ".join(st.geography))
    _sub(summ, "anlyUnit", st.unit_of_analysis or "scan (subject-timepoint) and lesion")
    if st.universe:
        _sub(summ, "universe", st.universe)
    _sub(summ, "dataKind", st.kind_of_data or "neuroimaging and clinical metadata")
    if st.method:
        _sub(_sub(_sub(study, "method"), "dataColl"), "collMode", st.method)
    acc = _sub(study, "dataAccs")
    use = _sub(acc, "useStmt")
    if spec.how_to_cite:
        _sub(use, "citReq", spec.how_to_cite)
    if spec.data_use:
        _sub(use, "conditions", spec.data_use)
    if revision is not None:
        _sub(study, "notes", f"Written from registry revision {revision}.")

    described: set[str] = set()
    for f in files:
        for fid, name, uri, mime, note in [
            (f.id, f.name, f.uri, "text/csv", ""),
            *[(x.id, x.name, x.uri, x.mime, x.note) for x in f.forms],
        ]:
            if fid in described:  # the workbook holds several tables: described once
                continue
            described.add(fid)
            fd = _sub(root, "fileDscr", ID=fid, URI=uri)
            ft = _sub(fd, "fileTxt")
            _sub(ft, "fileName", name)
            _sub(ft, "fileCont", f"{f.description}" + (f". {note}" if note else ""))
            if fid == f.id or not note:
                dim = _sub(ft, "dimensns")
                _sub(dim, "caseQnty", str(len(f.rows)))
                _sub(dim, "varQnty", str(len(f.variables)))
            _sub(ft, "fileType", mime)

    data = _sub(root, "dataDscr")
    n = 0
    for f in files:
        for v in f.variables:
            n += 1
            var = _sub(
                data,
                "var",
                ID=f"V{n}",
                name=v.stat_name,
                files=" ".join([f.id, *[x.id for x in f.forms]]),
                intrvl="contin" if v.numeric and not v.categories else "discrete",
            )
            _sub(var, "labl", v.label)
            for typ, val in summary(v, f.rows).items():
                _sub(var, "sumStat", val, type=typ)
            _sub(
                var,
                "txt",
                " ".join(
                    x
                    for x in (
                        v.description,
                        f"Column {v.name!r} of {f.name}" + (f"; unit {v.unit}." if v.unit else "."),
                    )
                    if x
                ),
            )
            freq = frequencies(v, f.rows)
            for value, label in v.categories:
                c = _sub(var, "catgry")
                code = category_code(v, value) if f.coded else value
                _sub(c, "catValu", code)  # as the SPSS and Stata files hold it
                _sub(c, "labl", label)
                if code != value:
                    _sub(
                        c,
                        "txt",
                        f"Written {value!r} in the CSV and the workbook, {code} in the SPSS and Stata "
                        "files (value label above).",
                    )
                _sub(c, "catStat", str(freq[str(value)]), type="freq")
            numeric = v.numeric or (bool(v.categories) and f.coded)
            _sub(var, "varFormat", type="numeric" if numeric else "character")
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def terms_sections(spec: ReleaseSpec) -> list[str]:
    """Markdown lines: the data use terms and how to cite (README files and the readable codebook)."""
    return [
        "## Data use",
        "",
        spec.data_use.strip() or "n/a",
        "",
        "## How to cite",
        "",
        spec.how_to_cite.strip() or "n/a",
        "",
    ]


def closing_sections(spec: ReleaseSpec, release_notes: str = "") -> list[str]:
    """Markdown lines: references and links, then the release notes (when there are any)."""
    out = []
    if spec.references:
        out += ["## References and links", "", *[f"* {r}" for r in spec.references], ""]
    if release_notes.strip():
        out += ["## Release notes", "", release_notes.strip(), ""]
    return out


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def codebook_markdown(spec: ReleaseSpec, files: list[DataFile], *, revision: int | None) -> str:
    lines = [
        f"# Codebook: {spec.title}",
        "",
        f"Release {spec.name}, version {spec.version}, {spec.date}."
        + (f" Registry revision {revision}." if revision is not None else ""),
        "",
    ]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += terms_sections(spec)
    lines += ["The same codebook in DDI Codebook 2.5 XML: `codebook.xml`.", ""]
    for f in files:
        lines += [
            f"## {f.name}",
            "",
            f"{f.description}. {len(f.rows)} rows, {len(f.variables)} variables (`{f.uri}`).",
            "",
            "| Column | SPSS/Stata name | Label | Valid | Missing | Min | Max | Mean | SD |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for v in f.variables:
            s = summary(v, f.rows)
            lines.append(
                "| "
                + " | ".join(
                    _md_cell(x)
                    for x in (
                        v.name,
                        v.stat_name,
                        v.label + (f" ({v.unit})" if v.unit else ""),
                        s["vald"],
                        s["invd"],
                        s.get("min", ""),
                        s.get("max", ""),
                        s.get("mean", ""),
                        s.get("stdev", ""),
                    )
                )
                + " |"
            )
        lines.append("")
        for v in f.variables:
            if v.categories:
                freq = frequencies(v, f.rows)
                lines += [
                    f"**{v.name}** ({v.label}): "
                    + "; ".join(f"`{val}` = {lab} (n={freq[str(val)]})" for val, lab in v.categories),
                    "",
                ]
    return "\n".join(lines)
