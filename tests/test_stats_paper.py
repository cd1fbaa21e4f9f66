"""The whole small synthetic R1.1, ingested, gives the paper's Tables 1 and 2 exactly.

The numbers below are typed in from the data descriptor (Liew et al. 2018, Tables 1 and 2), not
taken from the code: the synthetic dataset is built to match them, ingest must keep every lesion
and annotation, and ``stats tables`` must count them as the paper does.
"""

from __future__ import annotations

import json

# cohort: scans, one lesion left, right, other, multiple lesions
PAPER_TABLE1 = {
    "c0001": (6, 3, 2, 0, 1),
    "c0002": (25, 6, 12, 1, 6),
    "c0003": (55, 14, 19, 0, 22),
    "c0004": (34, 7, 3, 1, 23),
    "c0005": (30, 9, 3, 6, 12),
    "c0006": (12, 4, 1, 2, 5),
    "c0007": (36, 9, 9, 0, 18),
    "c0008": (32, 8, 11, 0, 13),
    "c0009": (12, 8, 0, 0, 4),
    "c0010": (47, 9, 10, 7, 21),
    "c0011": (15, 1, 11, 0, 3),
}
# cohort: cortical left, right, subcortical-only left, right, other locations
PAPER_TABLE2 = {
    "c0001": (2, 2, 2, 1, 0),
    "c0002": (1, 7, 14, 11, 4),
    "c0003": (3, 0, 38, 44, 0),
    "c0004": (7, 6, 31, 32, 7),
    "c0005": (9, 1, 20, 14, 7),
    "c0006": (3, 2, 8, 3, 3),
    "c0007": (8, 10, 28, 18, 4),
    "c0008": (6, 13, 20, 13, 1),
    "c0009": (5, 3, 12, 2, 0),
    "c0010": (11, 8, 21, 24, 13),
    "c0011": (0, 5, 3, 10, 1),
}


def test_tables_match_the_paper(ingested_small):
    from atlas_registry import stats

    t = stats.paper_tables(ingested_small)
    got1 = {r["cohort"]: tuple(r[k] for k in stats.TABLE1_COLUMNS[1:]) for r in t["table1"]}
    got2 = {r["cohort"]: tuple(r[k] for k in stats.TABLE2_COLUMNS[1:]) for r in t["table2"]}
    assert got1 == PAPER_TABLE1
    assert got2 == PAPER_TABLE2


def test_cli_prints_the_paper_totals_and_percentages(ingested_small, capsys):
    from atlas_registry.cli import main

    assert main(["--home", str(ingested_small.home), "stats", "tables"]) == 0
    lines = capsys.readouterr().out.splitlines()
    totals = [line.split() for line in lines if line.startswith("Total")]
    assert totals == [["Total", "304", "78", "81", "17", "128"], ["Total", "55", "57", "197", "172", "40"]]
    pct = [line.split()[-5:] for line in lines if line.startswith("% Total")]
    assert pct[0][1:] == ["25.7%", "26.6%", "5.6%", "42.1%"]
    assert pct[1] == ["10.6%", "10.9%", "37.8%", "33.0%", "7.7%"]
    assert main(["--home", str(ingested_small.home), "stats", "tables", "--format", "json"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert sum(r["scans"] for r in t["table1"]) == 304
    assert sum(sum(v for k, v in r.items() if k != "cohort") for r in t["table2"]) == 521
