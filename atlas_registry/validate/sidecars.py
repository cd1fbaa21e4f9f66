"""JSON sidecars of native T1s (``cXXXXsXXXXtXX.json``), read fail closed.

* size first: a sidecar larger than :data:`MAX_BYTES` is refused without reading the rest (IMG012);
* nesting before parsing: brackets outside strings are counted on the raw bytes, so a document nested
  deeper than :data:`MAX_DEPTH` is refused (IMG012) before ``json.loads`` could recurse into it;
* then a JSON object (IMG009) whose keys are on the allow-list ``schemas/native-sidecar.schema.json``
  (acquisition parameters under their BIDS names): an identifying key is DEID003
  (:mod:`.deid`), any other key not on the list DEID009, a value of another shape IMG009.

A standardized root may carry ``cXXXXsXXXXtXX_t1w_deface_stx.json`` (written by ``standardize``): the
same limits and checks against ``schemas/standard-sidecar.schema.json`` (provenance, the native→MNI
affine, QC figures).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import numpy as np

from . import deid, rules

MAX_BYTES = 256 * 1024
MAX_DEPTH = 8
SCHEMA = "native-sidecar.schema.json"
STANDARD_SCHEMA = "standard-sidecar.schema.json"

_WHAT = {SCHEMA: "acquisition parameters", STANDARD_SCHEMA: "standardization keys"}
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def depth(data: bytes) -> int:
    """The deepest nesting of ``[`` / ``{`` in JSON text, brackets inside strings not counted (a
    malformed document gets a number too; the parser reports it afterwards)."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((steps == ord("[")) | (steps == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


@lru_cache(maxsize=2)
def allowed_keys(schema: str = SCHEMA) -> frozenset[str]:
    from .. import metadata

    return frozenset(metadata.load_schema(schema)["properties"])


def read(data: bytes, *, relpath: str, subject: str | None, schema: str = SCHEMA) -> tuple[dict | None, list]:
    """``(object, findings)`` of a sidecar's bytes (at most ``MAX_BYTES + 1`` of them were read):
    the object is ``None`` when it cannot be used at all."""

    def finding(code: str, message: str):
        return rules.make(code, message, subject=subject, path=relpath)

    if len(data) > MAX_BYTES:
        return None, [finding("IMG012", f"sidecar is larger than {MAX_BYTES // 1024} KiB; not read")]
    if (d := depth(data)) > MAX_DEPTH:
        return None, [finding("IMG012", f"sidecar is nested {d} levels deep (at most {MAX_DEPTH}); not parsed")]
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        return None, [finding("IMG009", f"sidecar is not valid JSON ({e})")]
    if not isinstance(obj, dict):
        return None, [finding("IMG009", f"sidecar holds a JSON {type(obj).__name__}, not an object")]
    return obj, deid.sidecar_findings(obj, relpath=relpath, subject=subject) + shape_findings(
        obj, relpath=relpath, subject=subject, schema=schema
    )


def shape_findings(obj: dict, *, relpath: str, subject: str | None, schema: str = SCHEMA) -> list:
    """DEID009 for each key off the allow-list (identifying keys are DEID003's), IMG009 for an allowed
    key whose value has another shape than the schema says."""
    from .. import metadata

    out = []
    allowed = allowed_keys(schema)
    for key in sorted(obj):
        if key in allowed or deid.IDENTIFYING_KEYS.search(str(key)):
            continue
        kinds = deid.phi_kinds(str(key))
        shown = f"a key carrying {', '.join(kinds)}" if kinds else f"key {key!r}"  # never the identifier itself
        out.append(
            rules.make(
                "DEID009",
                f"sidecar {shown} is not on the allow-list of {_WHAT[schema]} ({schema})",
                subject=subject,
                path=relpath,
            )
        )
    known = {k: v for k, v in obj.items() if k in allowed}
    if problem := metadata.schema_problem(known, schema, sep="."):
        where, message = problem
        out.append(rules.make("IMG009", f"sidecar value {where or '(top)'}: {message}", subject=subject, path=relpath))
    return out
