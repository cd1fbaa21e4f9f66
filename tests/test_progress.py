"""The one progress bar (atlas_registry/progress.py): draws counts, bytes and labels when enabled,
nothing when disabled, and goes away when the job is done (transient)."""

from __future__ import annotations

import io

from rich.console import Console

from atlas_registry.progress import bar


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=100, color_system=None), buf


def test_a_bar_draws_its_counts_and_label_then_goes_away():
    console, buf = _console()
    with bar("validating", 10, unit="files", console=console) as b:
        b.advance(3)
        assert "3/10" in buf.getvalue() and "validating" in buf.getvalue()
        b.update(7, 10, "c0009")
        assert "7/10" in buf.getvalue()
    console2, buf2 = _console()
    with bar("synth", console=console2) as b:
        b.update(2, 5, "cohort c0003")
        assert "2/5" in buf2.getvalue() and "cohort c0003" in buf2.getvalue()


def test_a_bytes_bar_counts_bytes():
    console, buf = _console()
    with bar("verify", 4_000_000, unit="bytes", console=console) as b:
        b.advance(2_000_000)
        assert "2.0/4.0 MB" in buf.getvalue()


def test_a_disabled_bar_draws_nothing():
    console, buf = _console()
    with bar("validating", 10, enabled=False, console=console) as b:
        b.advance(3)
        b.update(5, 10, "x")
    assert buf.getvalue() == ""
