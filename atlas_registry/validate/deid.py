"""De-identification rules (fail closed).

* NIfTI header text fields and extensions (:func:`header_findings`; what the store keeps has
  neither: :mod:`atlas_registry.canonical`);
* JSON sidecars (:func:`sidecar_findings`);
* free text that carries HIPAA Safe Harbor identifiers (:func:`phi_kinds`) in file names, sheet
  columns and cells (:func:`name_findings`, :func:`column_findings`, :func:`cell_findings`);
* defacing of standardized T1s (:func:`face_findings`).

Messages name the field and the *kind* of identifier found, never the identifying text itself, so
that a validation report can be shared.
"""

from __future__ import annotations

import functools
import re

from . import rules

# -- free text ------------------------------------------------------------------------------

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_GIVEN = (
    "James|John|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Christopher|Daniel|"
    "Matthew|Anthony|Mark|Donald|Steven|Paul|Andrew|Joshua|Kenneth|Kevin|Brian|George|Edward|Peter|"
    "Mary|Patricia|Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|Nancy|Lisa|Betty|"
    "Margaret|Sandra|Ashley|Dorothy|Emily|Donna|Michelle|Carol|Amanda|Melissa|Deborah|Jane|Anna|Maria"
)
# kind of identifier -> patterns; ``(?i)`` where case does not matter
_PHI: dict[str, list[str]] = {
    "email address": [r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"],
    "URL": [r"(?i)\b(?:https?|ftp)://|\bwww\.[\w-]+\."],
    "IP address": [r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"],
    "date": [
        r"(?<!\d)(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\d)",
        r"(?<!\d)(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:19|20)?\d{2}(?!\d)",
        r"(?<![\d.])(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)",  # DICOM 20150312
        rf"(?i)\b{_MONTH}\.?\s+(?:\d{{1,2}}(?:st|nd|rd|th)?\b|(?:19|20)\d{{2}}\b)",
        rf"(?i)\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b",
    ],
    "time of day": [r"(?i)(?<![\d:])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?![\d:])|\bTime\s*=\s*\d"],
    "age over 89": [
        r"(?i)(?<!\d)(?:9\d|1[0-4]\d)\s*-?\s*(?:years?|yrs?|y/?o|y\.o\.)(?![a-z])",
        r"(?i)\bage[ds]?\s*(?:[:=]|of)?\s*(?:9\d|1[0-4]\d)(?!\d)",
    ],
    "phone or fax number": [
        r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}(?![\w.])",
        r"(?i)\b(?:tel|phone|fax|mobile|cell)\b\W{0,3}\+?\d",
    ],
    "social security number": [r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"],
    "record or serial number": [
        r"(?i)\b(?:MRN|SSN|medical\s+record|record|account|acct|serial|S/N|accession|patient\s*id|health\s*plan|"
        r"member\s*id|licen[cs]e|certificate|VIN)\b\s*(?:no\.?|number|num|#|id)?\s*[:#=.]?\s*[A-Z]{0,4}-?\d",
        r"\b(?:MRN|SSN)\b",
    ],
    "long number": [r"(?<![\d.])\d{7,}(?![\d.])"],
    "ZIP code": [
        r"(?i)\b(?:ZIP|postal)\s*(?:code)?\W{0,3}\d{5}",
        r"\b[A-Z]{2}\s+\d{5}(?:-\d{4})?\b|(?<![\d-])\d{5}-\d{4}(?![\d-])",
    ],
    "person name": [
        r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Mx)\b\.?\s*[A-Z][a-zA-Z'-]+",
        rf"\b(?:{_GIVEN})\s+[A-Z][a-zA-Z'-]+",
        r"\b[A-Z][a-z]+\s+Doe\b",
        r"(?i)\b(?:patient|subject|participant|first|last|full)?\s*name\s*[:=]\s*\S",
    ],
}
PHI_PATTERNS: list[tuple[str, re.Pattern]] = [(kind, re.compile(rx)) for kind, rxs in _PHI.items() for rx in rxs]


def phi_kinds(text: str) -> list[str]:
    """The kinds of HIPAA identifiers that ``text`` appears to carry (sorted, no repeats)."""
    if not text:
        return []
    return list(_phi_kinds(text))


@functools.lru_cache(maxsize=1 << 16)
def _phi_kinds(text: str) -> tuple[str, ...]:  # the same cell texts and sidecar values recur thousands of times
    return tuple(sorted({label for label, rx in PHI_PATTERNS if rx.search(text)}))


def _name_text(name: str) -> str:
    """A file name as words: separators to spaces, CamelCase split (``JohnDoe`` -> ``John Doe``)."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return re.sub(r"[_]+", " ", spaced)


# -- NIfTI header text fields and extensions --------------------------------------------------

# (offset, length) of the free-text fields in the 348-byte NIfTI-1 header
HEADER_TEXT_FIELDS: dict[str, tuple[int, int]] = {
    "data_type": (4, 10),
    "db_name": (14, 18),
    "descrip": (148, 80),
    "aux_file": (228, 24),
    "intent_name": (328, 16),
}
EXTENSION_CODES = {
    2: "DICOM header",
    4: "AFNI",
    6: "comment",
    8: "XCEDE",
    10: "JIM meta",
    12: "Fiswiki",
    14: "MIND",
    16: "Caret",
    18: "NeuroML",
    20: "MRtrix",
    22: "FreeSurfer",
    24: "PyPNG",
    28: "Matlab",
    30: "Quantiphyse",
    32: "MRS",
    40: "CIFTI",
}
_MRICRON_INTENT = re.compile(r"^B[A-Za-z0-9 ._-]*$")


def _field_text(raw: bytes) -> str:
    """A header field as text; bytes after a NUL terminator count too (fail closed)."""
    return raw.strip(b"\x00 ").replace(b"\x00", b" ").decode("latin-1")


def text_allowed(field: str, text: str, *, mask: bool) -> bool:
    """The allow-list: empty fields, and MRIcron's binary intent (``B…``) on lesion masks."""
    if not text.strip():
        return True
    return mask and field == "intent_name" and bool(_MRICRON_INTENT.match(text)) and not phi_kinds(text)


def header_text(block: bytes) -> dict[str, str]:
    """The free-text fields of a raw NIfTI-1 header block (any byte after a NUL counts too)."""
    return {f: _field_text(block[o : o + n]) for f, (o, n) in HEADER_TEXT_FIELDS.items()}


def header_findings(
    block: bytes,
    extension_codes: list[int],
    vox_offset: int = 352,
    *,
    relpath: str,
    subject: str | None,
    mask: bool,
    scrub: bool,
) -> list:
    """DEID001 for text fields off the allow-list, DEID002 for each header extension (and for
    bytes between the header and the voxels that no extension accounts for).

    With ``scrub`` they are info findings saying what ingest will blank/drop."""
    out = []
    sev = "info" if scrub else None
    pre = "scrubbed: " if scrub else ""
    for field, text in header_text(block).items():
        if text_allowed(field, text, mask=mask):
            continue
        kinds = phi_kinds(text) or ["unlisted text"]
        out.append(
            rules.make(
                "DEID001",
                f"{pre}header field {field} carries {len(text)} character(s) of text "
                f"({', '.join(kinds)}); only empty fields are allowed"
                + (" (and intent_name B… on masks)" if mask else ""),
                subject=subject,
                path=relpath,
                severity=sev,
            )
        )
    for code in extension_codes:
        what = EXTENSION_CODES.get(code, "unknown")
        out.append(
            rules.make(
                "DEID002",
                f"{pre}header extension code {code} ({what}) present; extensions can "
                "carry anything and are not allowed",
                subject=subject,
                path=relpath,
                severity=sev,
            )
        )
    if not extension_codes and vox_offset > 352:
        out.append(
            rules.make(
                "DEID002",
                f"{pre}{vox_offset - 352} byte(s) between the header and the voxel data "
                "(vox_offset > 352) that are not a readable extension",
                subject=subject,
                path=relpath,
                severity=sev,
            )
        )
    return out


def container_findings(fname: str, *, relpath: str, subject: str | None, scrub: bool) -> list:
    """DEID001 for a gzip header file name (``FNAME``) that carries an identifier: the canonical
    form never keeps it, but the delivery is refused (or, with ``scrub``, told) all the same."""
    if not fname or not (kinds := sorted(set(phi_kinds(fname)) | set(phi_kinds(_name_text(fname))))):
        return []
    return [
        rules.make(
            "DEID001",
            f"{'scrubbed: ' if scrub else ''}gzip header file name (FNAME, {len(fname)} "
            f"character(s)) carries {', '.join(kinds)}",
            subject=subject,
            path=relpath,
            severity="info" if scrub else None,
        )
    ]


# -- JSON sidecars ----------------------------------------------------------------------------

IDENTIFYING_KEYS = re.compile(
    r"^Patient|Birth|^Institution|Physician|Operator|SerialNumber$|^StationName$|^AccessionNumber$|"
    r"Date(?:Time)?$|^(?:Acquisition|Study|Series|Content|PerformedProcedureStepStart)Time$|InstanceUID$|"
    r"^StudyID$|^OtherPatient|^ResponsiblePerson|^RequestingService$|Address$|Telephone",
    re.IGNORECASE,
)
_VERSION_KEY = re.compile(r"Version(?:s)?$", re.IGNORECASE)


def _walk_json(obj, prefix=""):
    """``(where, key, value)`` for every member at any depth (``value`` None for containers)."""
    if isinstance(obj, dict):
        items = [(f"{prefix}{k}", str(k), v) for k, v in obj.items()]
    elif isinstance(obj, list):
        items = [(f"{prefix}[{i}]", "", v) for i, v in enumerate(obj)]
    else:
        return
    for where, key, value in items:
        nested = isinstance(value, (dict, list))
        yield where, key, None if nested else value
        if nested:
            yield from _walk_json(value, where + ".")


def sidecar_findings(obj, *, relpath: str, subject: str | None) -> list:
    """DEID003 for identifying keys, DEID004 for identifiers in values (any depth)."""
    out = []
    for where, key, value in _walk_json(obj):
        if IDENTIFYING_KEYS.search(key):
            out.append(
                rules.make("DEID003", f"sidecar key {where} is an identifying field", subject=subject, path=relpath)
            )
        elif isinstance(value, str) and not _VERSION_KEY.search(key) and (kinds := phi_kinds(value)):
            out.append(
                rules.make(
                    "DEID004", f"sidecar value {where} carries {', '.join(kinds)}", subject=subject, path=relpath
                )
            )
    return out


# -- names, sheet columns and cells ----------------------------------------------------------


def name_findings(relpath: str, subject: str | None = None) -> list:
    """DEID005 when any component of a path name carries an identifier."""
    out = []
    for part in relpath.split("/"):
        if kinds := sorted(set(phi_kinds(part)) | set(phi_kinds(_name_text(part)))):
            out.append(
                rules.make("DEID005", f"name {part!r} carries {', '.join(kinds)}", subject=subject, path=relpath)
            )
    return out


IDENTIFYING_COLUMN = re.compile(
    r"\b(?:dob|d o b|date of birth|birth ?date|birth ?day|born|patient ?name|name|names|first ?name|last ?name|"
    r"surname|full ?name|initials|mrn|medical record|record number|ssn|social security|address|street|city|"
    r"zip|zip ?code|postal ?code|phone|telephone|mobile|fax|e ?mail|ip|ip address|url|website|health plan|"
    r"account|licen[cs]e|serial|serial number|device serial|vehicle|plate|date|dates|scan date|"
    r"acquisition date|admission|discharge|death|date of death|time of day|acquisition time|photo|photograph)\b"
)


def _norm_column(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", name.lower()).strip()


def column_findings(columns, *, sheet: str, relpath: str) -> list:
    """DEID006 for each column whose name names an identifier (DOB, Patient Name, …)."""
    return [
        rules.make(
            "DEID006",
            f"sheet {sheet!r}: column {c!r} names an identifier; such data may not be deposited",
            path=relpath,
        )
        for c in columns
        if IDENTIFYING_COLUMN.search(_norm_column(str(c)))
    ]


def cell_findings(rows, *, sheet: str, relpath: str) -> list:
    """DEID007 for cells whose text carries an identifier.

    ``rows`` yields ``(row_number, subject, {column: text})``; ages above 89 in an ``Age`` column
    count too. Never scrubbed: a sheet with PHI is refused."""
    out = []
    for rownum, subject, cells in rows:
        for col, text in cells.items():
            if text is None or text == "":
                continue
            kinds = phi_kinds(text)
            if _norm_column(str(col)) in ("age", "age years", "age at scan") and _over_89(text):
                kinds = sorted(set(kinds) | {"age over 89"})
            if kinds:
                out.append(
                    rules.make(
                        "DEID007",
                        f"sheet {sheet!r} row {rownum} column {col!r} carries {', '.join(kinds)}",
                        subject=subject,
                        path=relpath,
                    )
                )
    return out


def _over_89(text: str) -> bool:
    try:
        return float(text) > 89
    except ValueError:
        return False


# -- defacing ---------------------------------------------------------------------------------


def face_findings(img, *, relpath: str, subject: str | None) -> list:
    """DEID008 when a standardized T1 still has signal in the face region."""
    from .. import anatomy

    signal = anatomy.face_signal(img)
    if signal <= anatomy.FACE_SIGNAL_DEFACED_MAX:
        return []
    return [
        rules.make(
            "DEID008",
            f"standardized T1 is not defaced: {signal:.0%} of the face region holds tissue "
            f"(at most {anatomy.FACE_SIGNAL_DEFACED_MAX:.0%} allowed)",
            subject=subject,
            path=relpath,
        )
    ]
