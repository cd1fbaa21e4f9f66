"""Spreadsheet formula injection (fail closed): a metadata cell that a spreadsheet program could
evaluate is refused (META015), at validation and again by the release gate on the way out.

A cell is a trigger when, after any leading white space (including the invisible characters
U+200B..U+200D, U+2060, U+FEFF), its first character is one that Excel, LibreOffice Calc or Google
Sheets start a formula with, or that makes them treat the rest as one (OWASP "CSV injection"):

* ``=`` ``+`` ``-`` ``@``, a TAB or a carriage return;
* their full-width and small forms (``＝`` ``＋`` ``－`` ``＠``, ``﹦`` ``﹢`` ``﹣`` ``﹫``), which some programs
  normalize (Unicode NFKC) before parsing, and the minus sign U+2212;

and, anywhere in the cell, a Dynamic Data Exchange reference ``application|topic!item``
(``cmd|' /C calc'!A0``), which Excel runs even inside a longer formula.

A cell (or column name) holding a control character that a workbook cannot hold at all (U+0000–U+0008,
U+000B, U+000C, U+000E–U+001F: not allowed in XML) is refused too (META018): the workbook exporter
could not write it.

Numeric columns: a cell that is a plain decimal number (``-3``, ``+1.5``, ``2e-3``) is a number, not
a formula, and is accepted; anything else there that starts with a trigger is refused like text.
Text columns (``Notes``, ``Tracer``, ...) accept no trigger at all, numbers included: a curator writes
``minus 3`` or ``'-3`` is not a number in a text column anyway.
"""

from __future__ import annotations

import re
import unicodedata

from . import rules

TRIGGERS = frozenset("=+-@\t\r\u2212")
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
# application|topic!item, the topic optionally quoted: cmd|' /C calc'!A0, msexcel|'\..\cmd.exe'!''
_DDE = re.compile(r"[\w.\\/$-]+\s*\|\s*(?:'[^']*'|\"[^\"]*\"|[^\s|!]+)\s*!")


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def control(text) -> str | None:
    """The first control character of ``text`` that a workbook (XML) cannot hold, as ``U+XXXX``."""
    m = _CONTROL.search(str(text)) if text is not None else None
    return f"U+{ord(m.group()):04X}" if m else None


def trigger(text: str) -> str | None:
    """Why a spreadsheet program could evaluate ``text`` (a short description), or ``None``."""
    if not text:
        return None
    for ch in text:
        n = unicodedata.normalize("NFKC", ch)[:1] if ord(ch) > 127 else ch
        if ch in TRIGGERS or n in TRIGGERS:
            shown = {"\t": "a tab", "\r": "a carriage return"}.get(ch, repr(ch))
            return f"starts with {shown}" + ("" if ch == text[0] else " after leading white space")
        if ch.isspace() or ch in _INVISIBLE:
            continue
        break
    if _DDE.search(text):
        return "holds a DDE reference (application|topic!item)"
    return None


def is_number(text: str) -> bool:
    """A plain decimal number, as a numeric column holds it."""
    return bool(_NUMBER.match(text.strip()))


def cell_trigger(text, *, numeric: bool) -> str | None:
    """:func:`trigger` for a cell of a text column, or of a numeric column (where numbers pass)."""
    if text is None:
        return None
    text = str(text)
    if numeric and is_number(text):
        return None
    return trigger(text)


def findings(rows, *, sheet: str, relpath: str, numeric=frozenset()) -> list:
    """META015 for each cell that a spreadsheet program could evaluate, META018 for each cell holding a
    control character a workbook cannot hold.

    ``rows`` yields ``(row_number, subject, {column: text})``; ``numeric``: the columns whose
    numbers are numbers. The message names the cell, never its text."""
    out = []
    for rownum, subject, cells in rows:
        for col, text in cells.items():
            where = f"sheet {sheet!r} row {rownum} column {col!r}"
            if why := cell_trigger(text, numeric=col in numeric):
                out.append(
                    rules.make(
                        "META015",
                        f"{where}: the cell {why}; a spreadsheet program could evaluate it as a formula",
                        subject=subject,
                        path=relpath,
                    )
                )
            if ch := control(text):
                out.append(
                    rules.make(
                        "META018",
                        f"{where}: the cell holds the control character {ch}, which a workbook cannot hold",
                        subject=subject,
                        path=relpath,
                    )
                )
    return out


def column_findings(columns, *, sheet: str, relpath: str) -> list:
    """META015 (META018) for a column name, a header cell, that a spreadsheet program could evaluate (that
    holds a control character)."""
    out = []
    for i, c in enumerate(columns, start=1):
        if why := trigger(str(c)):
            out.append(
                rules.make(
                    "META015",
                    f"sheet {sheet!r} row 1 column {i} (a column name) {why}; a "
                    "spreadsheet program could evaluate it as a formula",
                    path=relpath,
                )
            )
        if ch := control(c):
            out.append(
                rules.make(
                    "META018",
                    f"sheet {sheet!r} row 1 column {i} (a column name) holds the control "
                    f"character {ch}, which a workbook cannot hold",
                    path=relpath,
                )
            )
    return out
