"""One command-line contract for every command (issue #16): clean help, ``--format`` a choice whose
unknown value is a usage error (exit 2, one line, code CLI001), and the global options accepted after
the subcommand. The commands are read from the registered command tree, so a new command is covered
the moment it is registered."""

from __future__ import annotations

import re

import pytest

from atlas_registry import cli as cli_mod
from atlas_registry.cli import cli, first_sentence, main


def _leaves(cmd, path=()):
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in sorted(subs.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, cmd


def _groups(cmd, path=()):
    subs = getattr(cmd, "commands", None)
    if subs:
        yield path, cmd
        for name, sub in sorted(subs.items()):
            yield from _groups(sub, (*path, name))


LEAVES = list(_leaves(cli()))
IDS = [" ".join(p) for p, _ in LEAVES]


def _dummy_args(cmd) -> list[str]:
    """Values for the required parameters, so that parsing reaches every option."""
    args: list[str] = []
    for p in cmd.params:
        if not p.required:
            continue
        if p.param_type_name == "argument":
            args.append("1")
        else:
            args += [p.opts[0], "1"]
    return args


def test_the_tree_has_every_command():
    names = {i.split()[0] for i in IDS}
    assert {"validate", "ingest", "status", "release", "revise", "sql", "stats", "store", "synth"} <= names
    assert len(LEAVES) >= 25


@pytest.mark.parametrize("path,cmd", LEAVES, ids=IDS)
def test_help_is_clean(path, cmd, capsys):
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: atlas-registry {' '.join(path)} ")
    # no typer-internal type markers, no {argument} in the usage line
    assert not re.search(r"<(str|int|float|bool|path|Path|list\[[^>]*\]|[a-z]+\|[a-z|]+)>", out), out
    assert not re.search(r"\{[a-z_]+\}", out), out
    # every option and argument: at most one default shown, and every parameter described or obvious
    for block in re.split(r"\n  (?=-|[A-Z])", out.split("Options:", 1)[-1]):
        assert block.count("default:") <= 1, block
    for opt in ("--home DIR", "--db URL", "--debug"):
        assert opt in out
    if any(p.name == "format" for p in cmd.params):
        assert re.search(r"--format \[[a-z]+(\|[a-z]+)+\]", out), out


@pytest.mark.parametrize("path,group", list(_groups(cli())), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_summaries_are_whole_sentences(path, group, capsys):
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    listing = out.split("Commands:", 1)[1]
    flat = " ".join(listing.split())
    for name, sub in group.commands.items():
        summary = first_sentence(sub.help)
        assert "..." not in summary
        assert f"{name} {summary}" in flat, (name, summary)


WITH_FORMAT = [(p, c) for p, c in LEAVES if any(q.name == "format" for q in c.params)]


@pytest.mark.parametrize("path,cmd", WITH_FORMAT, ids=[" ".join(p) for p, _ in WITH_FORMAT])
def test_unknown_format_is_a_usage_error(path, cmd, capsys):
    code = main([*path, *_dummy_args(cmd), "--format", "xml"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error [CLI001] Invalid value for '--format'") and "'xml'" in lines[0], err


def test_most_commands_take_format():
    without = sorted(" ".join(p) for p, c in LEAVES if not any(q.name == "format" for q in c.params))
    assert without == ["demo"]


@pytest.mark.parametrize("path,cmd", LEAVES, ids=IDS)
def test_global_options_after_the_subcommand(path, cmd, tmp_path, monkeypatch):
    """Parsing ``atlas-registry <cmd> ... --home DIR --db URL --debug`` sets the workspace."""
    monkeypatch.setitem(cli_mod._state, "home", None)
    monkeypatch.setitem(cli_mod._state, "db", None)
    monkeypatch.setitem(cli_mod._state, "debug", False)
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    root = cli()
    ctx = root.make_context("atlas-registry", [*path], resilient_parsing=True)
    parent = ctx
    node = root
    for name in path[:-1]:
        node = node.commands[name]
        parent = node.make_context(name, [], parent=parent, resilient_parsing=True)
    cmd.make_context(path[-1], [*_dummy_args(cmd), "--home", str(tmp_path), "--db", url, "--debug"], parent=parent)
    ws = cli_mod.workspace()
    assert ws.home == tmp_path and ws.url == url and cli_mod._state["debug"] is True


def test_global_options_after_the_subcommand_end_to_end(tmp_path, capsys):
    """`init --home X` creates the registry in X; `status --home X --format json` reads it there."""
    home = tmp_path / "ws"
    assert main(["init", "--home", str(home), "--format", "json"]) == 0
    capsys.readouterr()
    assert (home / "registry.sqlite").is_file()
    assert main(["status", "--format", "json", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert str(home) in out and out.startswith("{\n  ")  # indented JSON
