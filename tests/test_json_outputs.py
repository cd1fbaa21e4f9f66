"""Every command's ``--format json`` output is indented and valid against its JSON Schema (issue #16).

One scenario runs every command that has ``--format`` once, in JSON, in one workspace: synth, init,
validate, ingest, status, store verify, sql, stats, reliability, the issue tracker, every kind of
revision, mask export, history, release plan/build/publish/diff/verify and report. Each output must
be indented JSON valid against the schema ``SCHEMAS`` names for its command; a command with
``--format`` that has no schema fails ``test_every_json_command_has_a_schema``, so a new command
cannot ship without one. The commands in ``ELSEWHERE`` need data this scenario does not make (a site
delivery, predicted masks, a registration run); the test files named there check them against
their schemas.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import assert_valid
from test_cli_contract import LEAVES
from test_revise import SEVEN_LESIONS

from atlas_registry.cli import main
from atlas_registry.metadata import schema_dir

ROOT = Path(__file__).resolve().parent.parent

# command -> its schema in schemas/ (shared documents first, then one file per command in output/)
SHARED = {
    "validate": "findings-report.schema.json",
    "release verify": "findings-report.schema.json",
    "store verify": "findings-report.schema.json",
    "stats tables": "stats-tables.schema.json",
    "stats volumes": "stats-volumes.schema.json",
    "intake": "intake-result.schema.json",
}


# command -> the test file that runs it and validates its JSON against its schema
ELSEWHERE = {"intake": "test_intake_nifti.py", "score": "test_score.py", "standardize": "test_standardize.py"}


def schema_of(command: str) -> str:
    return SHARED.get(command) or f"output/{command.replace(' ', '-')}.schema.json"


JSON_COMMANDS = sorted(" ".join(p) for p, cmd in LEAVES if any(x.name == "format" for x in cmd.params))


def test_every_json_command_has_a_schema():
    missing = [c for c in JSON_COMMANDS if not (schema_dir() / schema_of(c)).is_file()]
    assert not missing, f"commands with --format json and no schema: {missing}"
    listed = {p.name for p in (schema_dir() / "output").glob("*.schema.json")}
    used = {schema_of(c).split("/", 1)[1] for c in JSON_COMMANDS if c not in SHARED}
    assert listed == used, f"schemas of no command: {sorted(listed - used)}"
    readme = (schema_dir() / "README.md").read_text(encoding="utf-8")
    assert all(f"`output/{name}`" in readme for name in listed), "every output schema is listed in schemas/README.md"


@pytest.fixture(scope="module")
def outputs(synth_two_cohorts, tmp_path_factory) -> dict[str, list]:
    """Run the scenario once: every JSON command with the arguments a curator would give it."""
    tmp = tmp_path_factory.mktemp("json-outputs")
    home = tmp / "ws"
    data = synth_two_cohorts
    got: dict[str, list] = {}
    capsys = _Capture()

    def run(command: str, *args: str, ok: tuple[int, ...] = (0,)) -> dict:
        with capsys:
            status = main([*command.split(), *args, "--format", "json", "--home", str(home)])
        text = capsys.out
        assert status in ok, (command, args, status, capsys.err)
        assert text[:1] in "{[" and "\n  " in text, f"{command}: not indented JSON: {text[:80]!r}"
        doc = json.loads(text)
        got.setdefault(command if status == 0 else f"{command} (refused)", []).append(doc)
        return doc

    def issue(scan: str, title: str) -> str:
        return str(run("issue open", "--scan", scan, "--title", title)["number"])

    scan = sorted(p.name for p in (data / "standard" / "c0009").iterdir() if p.is_dir())[0]
    multi = SEVEN_LESIONS
    run("synth", str(tmp / "one"), "--scale", "small", "--cohorts", "c0001", "--reliability", "--no-progress")
    run("init")
    run("validate", str(data / "native" / "c0009"), "--workers", "1")
    run("ingest", str(data / "native"), "--workers", "2", "--no-progress")
    run("ingest", str(data / "standard"), "--workers", "2", "--no-progress")
    bad = tmp / "bad"
    shutil.copytree(data / "native", bad)
    victim = sorted(p for p in (bad / "c0001").iterdir() if p.is_dir())[0]
    (victim / f"{victim.name}.nii.gz").write_bytes(b"not gzip")
    run("ingest", str(bad), "--workers", "1", "--no-progress", ok=(1,))  # refused: the findings
    run("status")
    run("store verify", "--no-progress")
    run("store gc")  # a dry run: lists what nothing refers to
    run("sql", "SELECT cohort, COUNT(*) AS scans FROM scans GROUP BY cohort ORDER BY cohort")
    run("stats tables")
    run("stats volumes")
    run("reliability", str(tmp / "one" / "reliability"))
    run("release plan", "R1.1")
    run("release build", "R1.1", "--no-progress")
    run("release publish", "R1.1")
    run("release verify", "R1.1", "--no-progress")
    first = issue(scan, "Lesion over-traced")
    run("issue show", first)
    run("mask export", scan, "--lesion", "0", "--erode", "1", "--out", str(tmp / "fixed.voi"))
    run("revise mask", scan, "--lesion", "0", "--raw", str(tmp / "fixed.voi"), "--issue", first)
    run("revise metadata", scan, "--set", "notes=checked again", "--issue", issue(scan, "note"))
    run("revise exclude", scan, "--note", "registration drifted", "--issue", issue(scan, "exclude"))
    run("revise include", scan, "--issue", issue(scan, "include"))
    run("revise withdraw", scan, "--issue", issue(scan, "withdraw"))
    run("revise reinstate", scan, "--issue", issue(scan, "reinstate"))
    run("mask export", multi, "--lesion", "1", "--out", str(tmp / "second.voi"))
    run("revise remove-lesion", multi, "--lesion", "1", "--issue", issue(multi, "not a lesion"))
    tracers = ("--tracer", "T01", "--reviewer", "T02")
    run("revise add-lesion", multi, "--raw", str(tmp / "second.voi"), *tracers, "--issue", issue(multi, "a lesion"))
    run("issue close", issue(scan, "duplicate report"), "--reason", f"a duplicate of #{first}")
    run("issue list")
    run("history", scan)
    issue(multi, "still open at release time")
    run("release plan", "R1.2")
    run("release build", "R1.2", "--no-progress")
    run("release publish", "R1.2")
    run("release diff", "R1.1", "R1.2")
    specs = tmp / "specs"  # a benchmark release: its plan shows the splits
    specs.mkdir()
    spec = (ROOT / "releases" / "R1.2.toml").read_text(encoding="utf-8").replace('name = "R1.2"', 'name = "B1.0"')
    (specs / "B1.0.toml").write_text(spec + '\n[splits]\nseed = 1\ntest = 0.25\nhidden_cohorts = ["c0001"]\n')
    plan = run("release plan", "B1.0", "--specs", str(specs))
    assert set(plan["splits"]) == {"training", "test", "hidden"}
    run("stats overlap", "--release", "R1.2", "--out", str(tmp / "overlap.nii.gz"))
    run("report", "--release", "R1.2", "--out", str(tmp / "report"), "--no-progress")
    run("status")
    if os.environ.get("ATLAS_DUMP_JSON"):  # samples for writing a schema
        Path(os.environ["ATLAS_DUMP_JSON"]).write_text(json.dumps(got, indent=1, default=str))
    return got


class _Capture:
    """stdout/stderr of one in-process command (``capsys`` is function-scoped)."""

    def __enter__(self):
        import io
        import sys

        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        return self

    def __exit__(self, *exc):
        import sys

        self.out, self.err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.stdout, sys.stderr = self._saved


def test_the_scenario_runs_every_json_command(outputs):
    assert sorted(c for c in outputs if not c.endswith("(refused)")) == [c for c in JSON_COMMANDS if c not in ELSEWHERE]


def test_the_commands_run_elsewhere_are_checked_against_their_schemas():
    here = Path(__file__).parent
    for command, test_file in ELSEWHERE.items():
        assert f'"{schema_of(command)}"' in (here / test_file).read_text(encoding="utf-8"), (command, test_file)


def test_a_refused_ingest_prints_its_findings(outputs):
    (doc,) = outputs["ingest (refused)"]
    assert_valid(doc, "findings-report.schema.json")
    assert doc["summary"]["errors"] == 1 and doc["findings"][0]["code"] == "IMG001"


@pytest.mark.parametrize("command", [c for c in JSON_COMMANDS if c not in ELSEWHERE])
def test_json_output_matches_its_schema(command, outputs):
    for doc in outputs[command]:
        assert_valid(doc, schema_of(command))
