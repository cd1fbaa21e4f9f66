"""The HTML release report: rendered by headless Chromium (no console errors, nothing loaded from
elsewhere, every image decoded and visibly not blank), deterministic, escaped, public; the
thumbnail outline in the right place; release reports frozen at their release."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import select
import subprocess
import time
from datetime import UTC
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import revise_report_orm
from PIL import Image

from atlas_registry import release
from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.export.view import NATIVE_ID_RE
from atlas_registry.report import build_report, esc, make_report
from atlas_registry.store import sha256_file
from atlas_registry.thumbnails import OUTLINE_RGB, axial_thumbnail

CHROMIUM = os.environ.get("ATLAS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)


# -- a DevTools client over --remote-debugging-pipe (no websocket library needed) ---------------


class Browser:
    """Headless Chromium driven through the DevTools protocol on file descriptors 3 (commands) and
    4 (answers and events): NUL-terminated JSON messages."""

    def __init__(self, profile: Path):
        assert Path(CHROMIUM).exists(), f"Chromium is required for the report test (not found at {CHROMIUM})"
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds() -> None:  # runs in the child: the pipe ends become its fds 3 and 4 (inheritable)
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen(
            args,
            close_fds=False,
            preexec_fn=fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.events = b"", 0, []
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, *, page: bool = False, timeout: float = 30) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if page:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self._id:
                assert "error" not in m, f"{method}: {m['error']}"
                return m["result"]
            self.events.append(m)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._recv(deadline))
        return next(e for e in self.events if e.get("method") == method)

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, page=True)
        assert "exceptionDetails" not in r, r
        return r["result"]["value"]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (TimeoutError, EOFError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def render(index: Path, profile: Path, width: int = 1280, lossless: tuple[str, ...] = ()) -> dict:
    """Load ``index`` in headless Chromium; what the page did and a screenshot of all of it (JPEG),
    and a PNG screenshot of each image whose ``src`` is in ``lossless`` (colours exact)."""
    b = Browser(profile)
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.call(f"{domain}.enable", page=True)
        b.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            page=True,
        )
        b.call("Page.navigate", {"url": index.as_uri()}, page=True)
        b.wait_for("Page.loadEventFired", timeout=60)
        images = b.evaluate("""[...document.images].map(i => { const r = i.getBoundingClientRect();
            return {src: i.getAttribute('src'), complete: i.complete, w: i.naturalWidth, h: i.naturalHeight,
                    x: r.left + scrollX, y: r.top + scrollY, cw: r.width, ch: r.height,
                    scan: i.closest('figure.scan') ? i.closest('figure.scan').id : null}; })""")
        height = int(b.evaluate("document.documentElement.scrollHeight"))
        # JPEG: a fifth of the time of PNG for a page this tall; the red outline survives quality 95
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        shot = b.call(
            "Page.captureScreenshot",
            {"format": "jpeg", "quality": 95, "captureBeyondViewport": True, "clip": clip},
            page=True,
            timeout=120,
        )
        pngs = {}
        for i in images:
            if i["src"] in lossless:
                rect = {"x": i["x"], "y": i["y"], "width": i["cw"], "height": i["ch"], "scale": 1}
                one = b.call(
                    "Page.captureScreenshot",
                    {"format": "png", "captureBeyondViewport": True, "clip": rect},
                    page=True,
                    timeout=60,
                )
                pngs[i["src"]] = Image.open(io.BytesIO(base64.b64decode(one["data"]))).convert("RGB")
        text = b.evaluate("document.body.innerText")
        dom = b.evaluate("document.documentElement.outerHTML")
        events = list(b.events)
    finally:
        b.close()
    return {
        "images": images,
        "text": text,
        "dom": dom,
        "events": events,
        "png": pngs,
        "screenshot": Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB"),
    }


def problems(events: list[dict]) -> list[str]:
    """Console errors and warnings, uncaught exceptions, failed loads, requests that left file://."""
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
            out.append(f"console.{p['type']}: {p['args']}")
        elif m == "Runtime.exceptionThrown":
            out.append(f"exception: {p['exceptionDetails']}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed":
            out.append(f"failed load: {p.get('errorText')}")
        elif m == "Network.requestWillBeSent" and not p["request"]["url"].startswith(("file://", "data:")):
            out.append(f"external request: {p['request']['url']}")
    return out


def red_pixels(a: np.ndarray) -> np.ndarray:
    return (a[..., 0] > 170) & (a[..., 1] < 110) & (a[..., 2] < 110)


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def _dashed_line_columns(crop: np.ndarray) -> list[int]:
    """x of the vertical orange lines (the paper's dashed lines) of a histogram as shown: columns in
    which at least a sixth of the pixels are orange (the bars are blue, the text black)."""
    r, g, b = crop[..., 0], crop[..., 1], crop[..., 2]
    orange = (r > 120) & (r - b > 90) & (r - g > 40)
    cols = np.flatnonzero(orange.sum(axis=0) >= crop.shape[0] // 6)
    return [int(c) for i, c in enumerate(cols) if i == 0 or c - cols[i - 1] > 2]  # one x per line


def _y_axis_column(crop: np.ndarray) -> int:
    """x of the histogram's y axis: the leftmost long dark vertical line."""
    dark = (crop < 90).all(axis=2)
    return int(np.flatnonzero(dark.sum(axis=0) >= crop.shape[0] // 2)[0])


# -- the report of the small synthetic release -----------------------------------------------------


def test_small_registry_report_renders_in_chromium(ingested_small, tmp_path):
    from atlas_registry import db

    summary = make_report(ingested_small, tmp_path / "report")
    counts = (summary.scans, summary.lesions, summary.standard, summary.excluded, summary.thumbnails)
    assert counts == (304, 521, 229, 75, 304)
    index = summary.index
    page = index.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:|//)""", page, re.I), "nothing from elsewhere"
    assert "<script" not in page.lower()
    assert not NATIVE_ID_RE.search(page), "native identifiers must not appear in the report"
    assert 'class="diff"' not in page  # the synthetic release reproduces the paper's Tables 1 and 2
    assert "All 64 cells match the paper" in page and "All 65 cells match the paper" in page

    r = render(index, tmp_path / "profile", lossless=("img/lesion-volumes.png",))
    assert problems(r["events"]) == []
    imgs = r["images"]
    assert len(imgs) == 306 and all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in imgs), [
        i for i in imgs if not (i["complete"] and i["w"] > 0)
    ][:3]
    assert {i["src"] for i in imgs} >= {"img/lesion-volumes.png", "img/lesion-overlap.png"}
    for section in (
        "Table 1.",
        "Table 2.",
        "Figure 1.",
        "Figure 2.",
        "Scans outside the standardized subset",
        "Ingest runs",
        "Unreleased",
        "sub-",
    ):
        assert section in r["text"] or section.lower() in r["text"].lower(), section

    # #18.9: nothing of the machine it was made on (the ingest runs' sources are absolute paths there)
    with db.engine(ingested_small).connect() as c:
        sources = [row[0] for row in c.exec_driver_sql("SELECT source FROM ingest_run")]
    assert sources and all(Path(x).is_absolute() for x in sources)
    for shown in (r["dom"], r["text"]):
        for leak in (*sources, str(ingested_small.home), str(tmp_path), "/tmp/", "file:"):
            assert leak not in shown, leak

    shot = np.asarray(r["screenshot"], dtype=np.float32)
    assert shot.std() > 20  # the page as a whole is not blank
    # the paper's minimum visible: its smallest lesion (10 mm³) a dashed line inside the histogram,
    # clear of the y axis (bins starting at 10 mm³ would draw it under the axis, unseen), and its largest
    crop = np.asarray(r["png"]["img/lesion-volumes.png"], dtype=np.float32)
    assert crop.shape[1] > 400 and crop.shape[0] > 150, crop.shape
    lines, axis = _dashed_line_columns(crop), _y_axis_column(crop)
    assert len(lines) == 2, f"the paper's minimum and maximum as two dashed lines, found at x = {lines}"
    assert lines[0] - axis >= 4, f"the paper's minimum (x = {lines[0]}) sits on the axis (x = {axis})"
    thumbs = 0
    for i in imgs:
        assert i["cw"] >= 100 and i["ch"] >= 100, i
        y0, x0 = int(i["y"]) + 1, int(i["x"]) + 1
        crop = shot[y0 : int(i["y"] + i["ch"]) - 1, x0 : int(i["x"] + i["cw"]) - 1]
        assert crop.size and crop.std() > 12, f"{i['src']} renders blank"
        if i["scan"]:
            thumbs += 1
            assert red_pixels(crop).sum() >= 5, f"{i['src']}: no lesion outline visible"
    assert thumbs == 304


# -- thumbnails ------------------------------------------------------------------------------------


def _phantom(axes: str, shape=(40, 48, 30)) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """A head-like ellipsoid and a lesion box in the patient's left, anterior part, slices z 18-21 of
    the RAS grid (largest at z 20), stored with voxel axes ``axes`` (e.g. ``LPS``)."""
    ras = np.eye(4)
    ras[:3, :3] = np.diag([2.0, 2.0, 2.0])
    x, y, z = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    head = (((x - 20) / 18) ** 2 + ((y - 24) / 22) ** 2 + ((z - 15) / 14) ** 2) < 1
    t1 = np.where(head, 400 + 10 * np.sin(x + y), 5).astype(np.int16)
    mask = np.zeros(shape, np.uint8)
    mask[6:12, 30:38, 18:22] = 1  # x 6-11: patient's left (RAS x grows to the right); y 30-37: anterior
    mask[4:14, 28:40, 20] = 1  # the largest slice
    # the same world positions on a grid with the other axis order
    ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(axes))
    t1o, masko = (nib.orientations.apply_orientation(a, ornt) for a in (t1, mask))
    aff = ras @ nib.orientations.inv_ornt_aff(ornt, shape)
    return nib.Nifti1Image(t1o, aff), nib.Nifti1Image(masko, aff)


@pytest.mark.parametrize("axes", ["RAS", "LPS", "PIR"])
def test_thumbnail_outlines_the_lesion_in_the_right_place(axes):
    t1, mask = _phantom(axes)
    assert nib.aff2axcodes(t1.affine) == tuple(axes)
    pic = np.asarray(Image.open(io.BytesIO(axial_thumbnail(t1, mask, size=160))).convert("RGB"))
    assert pic.shape == (192, 160, 3)  # 48 x 2 mm tall, 40 x 2 mm wide, at 160 px wide
    red = np.argwhere((pic == OUTLINE_RGB).all(axis=2))
    assert len(red) > 40
    (top, left), (bottom, right) = red.min(axis=0), red.max(axis=0)
    # lesion x 4-13 of 40 -> columns 16-56 of 160 (neurological: the patient's left on the left);
    # y 28-39 of 48, anterior at the top -> rows (48-40)*4=32 to (48-28)*4=80
    assert 12 <= left <= 20 and 52 <= right <= 60, (left, right)
    assert 28 <= top <= 36 and 76 <= bottom <= 84, (top, bottom)
    inside = pic[50:60, 30:40]
    assert (inside == OUTLINE_RGB).all(axis=2).sum() == 0  # an outline, not a filled box
    assert inside.std() > 0 or inside.mean() > 100  # T1 shows through


def test_thumbnail_without_mask_and_png_is_deterministic():
    t1, mask = _phantom("RAS")
    a, b = axial_thumbnail(t1, mask), axial_thumbnail(t1, mask)
    assert a == b and b"tEXt" not in a and b"tIME" not in a
    plain = np.asarray(Image.open(io.BytesIO(axial_thumbnail(t1, None))).convert("RGB"))
    assert not (plain == OUTLINE_RGB).all(axis=2).any() and plain.std() > 10


# -- release reports, escaping, determinism ------------------------------------------------------


def test_html_escaping():
    assert esc("<a href=\"x\">Tom & 'Jerry'</a>") == "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/a&gt;"
    assert esc(None) == "" and esc(12) == "12"


EVIL = '<script>alert("x")</script> & <img src=x onerror=alert(1)> of c0003s0002t01'


def test_release_reports_are_frozen_escaped_and_deterministic(export_ws_fresh, release_specs, tmp_path):
    ws = export_ws_fresh
    release.build(ws, "T1.0", tmp_path / "b1", specs=release_specs)
    release.publish(ws, "T1.0", specs=release_specs)
    revise_report_orm(ws, "c0003s0001t01", notes=EVIL, issue_title='Note <b>missing</b> & "quoted"')
    release.build(ws, "T1.1", tmp_path / "b2", specs=release_specs)

    t11 = build_report(ws, tmp_path / "r11", release="T1.1").read_text(encoding="utf-8")
    t10 = build_report(ws, tmp_path / "r10", release="T1.0").read_text(encoding="utf-8")
    now = build_report(ws, tmp_path / "now").read_text(encoding="utf-8")
    for page in (t11, t10, now):
        assert "<script" not in page and "<img src=x" not in page and "<b>missing" not in page
        assert not NATIVE_ID_RE.search(page)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; of sub-" in t11
    assert "Note &lt;b&gt;missing&lt;/b&gt; &amp; &quot;quoted&quot; (issue #" in t11  # the changelog
    assert "&lt;script&gt;" not in t10 and "issue #" not in t10  # T1.0 is as it was published
    assert "1.1.0 2021-05-06" in t11 and "1.0.0 2020-03-04" in t11 and "Unreleased" in now
    assert "Release T1.1 · version 1.1.0" in t11 and "Release report · published" in t10
    # 6 scans; 3 standardized; the low-resolution and failed ones listed with their reason
    assert t10.count('<figure class="scan"') == 6 and "registration failed" in t10 and "low resolution" in t10
    # Table 1 from the release's own rows, each cell against the paper (c0001 has 6 scans there, c0003 55)
    assert '<th class="l">Total</th><td class="diff" title="paper: 61">6<span class="paper">61</span></td>' in t10

    # same registry -> same bytes; an earlier report is replaced (stale files do not survive)
    (tmp_path / "r11" / "img" / "scans" / "stale.png").write_bytes(b"x")
    again = build_report(ws, tmp_path / "r11", release="T1.1")
    other = build_report(ws, tmp_path / "elsewhere" / "r11", release="T1.1")
    assert tree(again.parent) == tree(other.parent)
    assert "img/scans/stale.png" not in tree(again.parent)
    assert len([p for p in tree(other.parent) if p.startswith("img/scans/")]) == 6


def test_cli_report_and_refusals(export_ws_fresh, tmp_path, capsys):
    home = str(export_ws_fresh.home)
    assert main(["--home", home, "report", "--out", str(tmp_path / "rep")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and str(tmp_path / "rep" / "index.html") in line and "6 scans" in line
    assert main(["--home", home, "report", "--out", str(tmp_path / "rep"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["thumbnails"] == 6
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.tex").write_text("mine")
    assert main(["--home", home, "report", "--out", str(tmp_path / "other")]) == 1
    assert "REP003" in capsys.readouterr().err and (tmp_path / "other" / "thesis.tex").exists()
    with pytest.raises(AtlasError) as e:
        build_report(export_ws_fresh, tmp_path / "x", release="nope")
    assert e.value.code == "REP001" and not (tmp_path / "x").exists()


def test_report_shows_no_path_of_the_curators_machine(export_ws_fresh, tmp_path):
    """#18.9, in Chromium: ingest runs recorded with absolute sources, event paths and validator messages
    naming absolute paths show folder names and relative paths, and nothing of the workspace or the
    curator's machine is in the page's DOM or text (the histogram: in the small report's test)."""
    from datetime import datetime

    from sqlmodel import Session

    from atlas_registry import db, paper
    from atlas_registry.models import AuditEvent, IngestRun
    from atlas_registry.report import figures as report_figures

    secret = "/home/jdoe-curator/secret-project/deliveries/cohort3"
    with Session(db.engine(export_ws_fresh)) as s:
        run = IngestRun(
            source=secret,
            started_at=datetime(2020, 1, 1, tzinfo=UTC),
            status="committed",
            operator="jdoe",
            n_files=3,
            n_scans=1,
            n_warnings=1,
        )
        s.add(run)
        s.flush()
        s.add(
            AuditEvent(ingest_run_id=run.id, kind="info", path=f"{secret}/scans/notes.txt", detail="an unexpected file")
        )
        s.add(AuditEvent(ingest_run_id=run.id, kind="skip", path="/mnt/elsewhere/jdoe/x.csv", detail="elsewhere"))
        s.add(
            AuditEvent(
                ingest_run_id=run.id,
                kind="info",
                path=None,
                detail=f"[VAL001] cannot read {secret}/scans/broken.nii.gz; see /mnt/elsewhere/jdoe/log.txt",
            )
        )
        s.commit()
    index = build_report(export_ws_fresh, tmp_path / "rep")
    page = index.read_text(encoding="utf-8")
    r = render(index, tmp_path / "profile")
    assert problems(r["events"]) == []
    workspace = str(export_ws_fresh.home)
    for shown in (page, r["dom"], r["text"]):
        for leak in ("jdoe-curator", "/home/", "/mnt/", "/tmp/", str(tmp_path), workspace, "file:"):
            assert leak not in shown, leak
    assert "…/cohort3" in r["text"] and "scans/notes.txt" in r["text"] and "…/x.csv" in r["text"]
    assert "cannot read scans/broken.nii.gz; see …/log.txt" in r["text"]
    assert all(not (i["src"] or "").startswith(("/", "file:")) for i in r["images"])

    for shown in ("Table 1.", "Table 2.", "Lesion volume"):
        assert shown in r["text"], shown
    bins = report_figures.histogram_bins([50.0, 1e4], (paper.VOLUME_MIN_MM3, paper.VOLUME_MAX_MM3))
    assert bins[0] < paper.VOLUME_MIN_MM3 and bins[-1] > paper.VOLUME_MAX_MM3
