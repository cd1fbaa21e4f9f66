"""Release specifications: the shipped ones load; a broken one is refused with its rule and the key."""

from __future__ import annotations

import pytest

from atlas_registry.cli import main
from atlas_registry.errors import AtlasError
from atlas_registry.release_spec import load_spec, parse_spec, releases_dir

R11 = (releases_dir() / "R1.1.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(p.stem for p in releases_dir().glob("*.toml")))
def test_the_shipped_specifications_load(name):
    spec = load_spec(name)
    assert spec.name == name and spec.cohorts is None and spec.archives == ("icpsr", "bids", "parquet")
    assert len(spec.authors) == 35 and spec.standard.max_voxel_mm == 1.0


@pytest.mark.parametrize(
    "old, new, code, where",
    [
        ('name = "R1.1"', 'name = "R1.1', "REL001", None),
        ('title = "Anatomical', 'titel = "Anatomical', "REL002", None),
        ('version = "1.1.0"', 'version = "1.1"', "REL003", None),
        ('date = "2018-02-20"', 'date = "20 Feb 2018"', "REL004", None),
        ('cohorts = "all"', 'cohorts = "c0001"', "REL005", None),
        ('archives = ["icpsr", "bids", "parquet"]', 'archives = ["icpsr", "dropbox"]', "REL006", None),
        # a misspelt key would otherwise be ignored: "cohort" for "cohorts" would release every cohort
        ('cohorts = "all"', 'cohort = ["c0001"]', "REL007", "'cohort' was unexpected"),
        ("max_voxel_mm = 1.0", 'max_voxel_mm = "1 mm"', "REL007", "standard.max_voxel_mm"),
        ("max_voxel_mm = 1.0", "max_voxel = 1.0", "REL007", "'max_voxel' was unexpected"),
        ("require_registration = true", 'require_registration = "no"', "REL007", "standard.require_registration"),
        ('name = "R1.1"', 'name = "../R1.1"', "REL007", "at name:"),
        ('space = "MNI152NLin2009aSym"', 'space = "MNI 152"', "REL007", "standard.space"),
        (
            'authors = [\n  "Sook-Lei Liew",',
            'authors = "Sook-Lei Liew"\nothers = [\n  "x",',
            "REL007",
            "'others' was unexpected",
        ),
        (
            'references = ["https://doi.org/10.1038/sdata.2018.11", "https://github.com/npnl/ATLAS"]',
            'references = "https://doi.org/10.1038/sdata.2018.11"',
            "REL007",
            "at references:",
        ),
        ('cohorts = "all"', 'cohorts = ["c0001", "c0001"]', "REL007", "at cohorts:"),
    ],
)
def test_a_broken_specification_names_its_rule_and_key(old, new, code, where):
    assert old in R11
    with pytest.raises(AtlasError) as e:
        parse_spec(R11.replace(old, new, 1), "releases/R1.1.toml")
    assert e.value.code == code and e.value.path == "releases/R1.1.toml"
    assert where is None or where in str(e.value), str(e.value)


def test_the_cli_refuses_a_broken_specification_in_one_line(tmp_path, capsys):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "R1.1.toml").write_text(R11.replace('cohorts = "all"', 'cohort = ["c0001"]'), encoding="utf-8")
    assert main(["--home", str(tmp_path / "ws"), "init"]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path / "ws"), "release", "plan", "R1.1", "--specs", str(specs)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error [REL007]") and "cohort" in err[0]
