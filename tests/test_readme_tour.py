"""The README's tour runs as written (issue #16): every `$ atlas-registry …` line of its console
block is executed in order, in a fresh folder, with the default workspace (./atlas-workspace), and
the output it shows is compared with what the command prints.

How the shown output is compared: run-dependent figures are normalized on both sides (times,
dates, hashes, absolute paths, sizes in MB); a shown line ending in `…` matches an actual line
that starts with the same text; a line that is only `…` stands for any number of lines; every
other shown line must be printed as shown, in order, and nothing may follow the last shown line
unless the block ends with `…`. A shown line starting with `error [` means the command must fail
with that one-line error. Shell lines that are not `atlas-registry` commands (`. .venv/bin/activate`)
set up the shell and are not run here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def tour() -> list[tuple[str, list[str]]]:
    """(command line, shown output lines) of the README's tour, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## A tour", 1)[1].split("\n## ", 1)[0]
    block = section.split("```console\n", 1)[1].split("\n```", 1)[0]
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif line.strip() and steps:
            steps[-1][1].append(line)
    return steps


def commands(cmdline: str) -> list[list[str]]:
    """The argument lists of a shell line: comments dropped, split at ``&&``."""
    lexer = shlex.shlex(cmdline, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = [[]]
    for tok in lexer:
        if tok == "&&":
            out.append([])
        else:
            out[-1].append(tok)
    return [c for c in out if c]


_NORMALIZE = [
    (re.compile(r"\b\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2})?)?"), "DATE"),
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "HASH"),
    (re.compile(r"HASH…(?=.)"), "HASH"),  # a hash shortened in the middle of a line
    (re.compile(r"\bin \d+(\.\d+)? s\b"), "in N s"),
    (re.compile(r"\d+(\.\d+)? MB\b"), "N MB"),
    (re.compile(r"\b\d+ (release-level )?(files|file\(s\))"), r"N \1\2"),  # release files: the exporters' business
    (re.compile(r"(sqlite:///)?/\S*?/(atlas-workspace|report)\b"), r"ROOT/\2"),
    (re.compile(r"\bby [\w.-]+"), "by USER"),  # the operator: who ran the command
]


def normalize(line: str) -> str:
    for rx, sub in _NORMALIZE:
        line = rx.sub(sub, line)
    return line.rstrip()


def matches(shown: list[str], actual: list[str]) -> str | None:
    """None when ``actual`` shows what ``shown`` does (see the module's docstring), else why not."""
    shown = [normalize(x) for x in shown]
    actual = [normalize(x) for x in actual]
    i = 0
    skipping = False
    for want in shown:
        if want.strip() == "…":
            skipping = True
            continue
        prefix = want.endswith("…")
        body = want[:-1].rstrip() if prefix else want

        def ok(got: str, body: str = body, prefix: bool = prefix) -> bool:
            return got.startswith(body) if prefix else got == body

        while i < len(actual) and not ok(actual[i]):
            if not skipping:
                return f"expected {want!r}, got {actual[i]!r}"
            i += 1
        if i == len(actual):
            return f"expected {want!r}, the output ended"
        i += 1
        skipping = False
    if i < len(actual) and not skipping:
        return f"unexpected output after the last shown line: {actual[i]!r}"
    return None


def test_matching_rules_can_fail():
    assert matches(["a", "…", "c"], ["a", "b", "b2", "c"]) is None
    assert matches(["a…"], ["abc"]) is None
    assert matches(["a", "c"], ["a", "b", "c"]) is not None
    assert matches(["a"], ["a", "b"]) is not None
    assert matches(["x 2026-11-26 23:31 in 31.0 s"], ["x 2031-01-02 08:09 in 58.2 s"]) is None
    assert matches(["304 scans"], ["303 scans"]) is not None
    assert (
        matches(
            ["in /…/atlas-workspace/releases/R1.1 (sha256 73b6e07a42eb…"],
            ["in /tmp/x/atlas-workspace/releases/R1.1 (sha256 " + "ab" * 32 + ")"],
        )
        is None
    )
    assert commands("atlas-registry a 'b c' && atlas-registry d   # note") == [
        ["atlas-registry", "a", "b c"],
        ["atlas-registry", "d"],
    ]


def test_tour_lists_the_whole_job():
    cmds = " ".join(c for c, _ in tour())
    for needed in (
        "synth data",
        "ingest data/native",
        "release build R1.1",
        "release publish R1.1",
        "issue open",
        "mask export",
        "revise mask",
        "release build R1.2",
        "release publish R1.2",
        "release diff R1.1 R1.2",
        "release verify R1.1",
        "store verify",
        "status",
        "report",
    ):
        assert needed in cmds, needed
    order = [" ".join(" ".join(a) for a in commands(c)) for c, _ in tour()]
    published = max(n for n, c in enumerate(order) if "release publish R1.1" in c)
    assert all(n > published for n, c in enumerate(order) if "R1.1 R1.2" in c or "verify R1.1" in c)


@pytest.mark.slow
def test_readme_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    from atlas_registry.cli import _state, main

    monkeypatch.chdir(tmp_path)
    for var in ("ATLAS_REGISTRY_HOME", "ATLAS_REGISTRY_DB", "ATLAS_REGISTRY_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    ran = 0
    for cmdline, shown in tour():
        argvs = commands(cmdline)
        if argvs[0][0] != "atlas-registry":
            assert argvs == [[".", ".venv/bin/activate"]], cmdline  # shell set-up only
            continue
        out: list[str] = []
        failed = None
        for argv in argvs:
            assert argv[0] == "atlas-registry", cmdline
            _state.update(home=None, db=None, debug=False)
            code = main(argv[1:])
            captured = capsys.readouterr()
            out += [x for x in captured.out.splitlines() + captured.err.splitlines() if x.strip()]
            ran += 1
            if code != 0:
                failed = (shlex.join(argv), code)
                break
        expect_error = any(x.startswith("error [") for x in shown)
        if expect_error:
            assert failed is not None, f"{cmdline}: expected a refusal, it succeeded"
        else:
            assert failed is None, f"{failed[0]} exited {failed[1]}:\n" + "\n".join(out[-10:])
        why = matches(shown, out)
        assert why is None, f"$ {cmdline}\n{why}\nprinted:\n" + "\n".join(out)
    assert ran >= 20
    assert (tmp_path / "report" / "index.html").is_file()
    assert (tmp_path / "atlas-workspace" / "releases" / "R1.2" / "MANIFEST.json").is_file()
