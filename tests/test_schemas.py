"""The JSON Schemas themselves: valid draft 2020-12, named by their ``$id``, listed in the README.

Each schema is also checked against what the program reads or writes: the metadata sheets
(test_synth, test_validate_*), release specifications (test_release_spec), MANIFEST.json
(test_fixity: `release verify` validates it), Parquet and participants.tsv (test_export_archives),
the findings report (test_validate_faults, test_fixity) and the stats documents (test_stats).
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from atlas_registry.metadata import schema_dir

SCHEMAS = sorted(p.relative_to(schema_dir()).as_posix() for p in schema_dir().rglob("*.schema.json"))


def test_there_are_schemas():
    assert len(SCHEMAS) >= 9


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_and_documented(name):
    doc = json.loads((schema_dir() / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith("/" + name) and doc.get("title")
    assert f"`{name}`" in (schema_dir() / "README.md").read_text(encoding="utf-8")
