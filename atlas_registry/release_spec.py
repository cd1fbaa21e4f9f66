"""Release specifications: declarative TOML files in ``releases/`` (see ``releases/R1.1.toml``),
described by ``schemas/release-spec.schema.json``.

Rule codes: ``REL000`` no such specification, ``REL001`` not TOML, ``REL002`` a required string
missing or empty, ``REL003`` version not semantic, ``REL004`` date not YYYY-MM-DD, ``REL005`` cohorts
neither ``"all"`` nor a list of cohort codes, ``REL006`` unknown archive, ``REL007`` anything else the
schema does not allow (unknown keys, wrong types), ``REL008`` a ``[splits]`` section that cannot be met
whatever the registry holds (fractions adding up to 1 or more, ``hidden`` together with
``hidden_cohorts``, a hidden cohort outside the release's cohorts, size-class bounds not increasing).

``[splits]`` (optional) divides the release into a benchmark's ``training`` (images and masks released),
``test`` (images only) and ``hidden`` (not released) sets; see :mod:`atlas_registry.splits`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AtlasError

SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
KNOWN_ARCHIVES = ("icpsr", "bids", "parquet")


@dataclass(frozen=True)
class StandardRules:
    max_voxel_mm: float = 1.0
    require_registration: bool = True
    space: str = "MNI152NLin2009aSym"
    # what made the standardized files (BIDS GeneratedBy): dicts with name, version, description[, code_url]
    pipeline: tuple[dict, ...] = ()
    # the dataset the standardized files derive from (BIDS SourceDatasets): dicts with url or doi, version
    source_datasets: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Study:
    """What the study is (the DDI codebook's study description)."""

    universe: str = ""
    unit_of_analysis: str = ""
    time_period: str = ""
    geography: tuple[str, ...] = ()
    kind_of_data: str = ""
    method: str = ""
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deposit:
    """Who deposits the release (BagIt bag-info.txt of every archive)."""

    source_organization: str = ""
    contact_name: str = ""
    contact_email: str = ""


SPLITS = ("training", "test", "hidden")
DEFAULT_SIZE_CLASSES_MM3 = (5000.0, 50000.0)


@dataclass(frozen=True)
class Splits:
    """The ``[splits]`` section: target sizes (a float below 1 is a fraction of the release's scans, an
    integer a number of scans; ``None`` where not given), the seed, the cohorts held out whole as the
    hidden set, and the bounds (mm^3) of the lesion size classes the assignment stratifies by."""

    seed: int
    test: float | int | None = None
    hidden: float | int | None = None
    training: float | int | None = None
    hidden_cohorts: tuple[str, ...] = ()
    size_classes_mm3: tuple[float, ...] = DEFAULT_SIZE_CLASSES_MM3


@dataclass(frozen=True)
class ReleaseSpec:
    name: str
    version: str
    date: str
    title: str
    description: str = ""
    authors: tuple[str, ...] = ()
    license: str = ""
    data_use: str = ""
    how_to_cite: str = ""
    references: tuple[str, ...] = ()
    cohorts: tuple[str, ...] | None = None  # None = every cohort in the registry
    archives: tuple[str, ...] = KNOWN_ARCHIVES
    standard: StandardRules = field(default_factory=StandardRules)
    deposit: Deposit = field(default_factory=Deposit)
    study: Study = field(default_factory=Study)
    splits: Splits | None = None  # None: no benchmark splits (every scan released with its masks)
    source_text: str = ""  # the TOML as written (stored with the release)

    def includes_cohort(self, code: str) -> bool:
        return self.cohorts is None or code in self.cohorts


def releases_dir() -> Path:
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "releases", here / "_releases"):
        if cand.is_dir():
            return cand
    return here.parent / "releases"


def parse_spec(text: str, origin: str = "<spec>") -> ReleaseSpec:
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AtlasError("REL001", f"release specification is not valid TOML: {e}", path=origin) from None
    for key in ("name", "version", "date", "title"):
        if not isinstance(d.get(key), str) or not d[key].strip():
            raise AtlasError("REL002", f"release specification needs a non-empty string {key!r}", path=origin)
    if not SEMVER.match(d["version"]):
        raise AtlasError("REL003", f"version {d['version']!r} is not semantic (MAJOR.MINOR.PATCH)", path=origin)
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", d["date"]):
        raise AtlasError("REL004", f"date {d['date']!r} is not YYYY-MM-DD", path=origin)
    cohorts = d.get("cohorts", "all")
    if cohorts == "all":
        cohorts_t = None
    elif isinstance(cohorts, list) and all(isinstance(c, str) and re.match(r"^c\d{4}$", c) for c in cohorts):
        cohorts_t = tuple(sorted(cohorts))
    else:
        raise AtlasError("REL005", 'cohorts must be "all" or a list of cXXXX codes', path=origin)
    archives = tuple(d.get("archives", KNOWN_ARCHIVES))
    unknown = [a for a in archives if a not in KNOWN_ARCHIVES]
    if unknown:
        raise AtlasError("REL006", f"unknown archive(s) {unknown}; known: {list(KNOWN_ARCHIVES)}", path=origin)
    _check_schema(d, origin)
    std = d.get("standard", {})
    rules = StandardRules(
        max_voxel_mm=float(std.get("max_voxel_mm", 1.0)),
        require_registration=bool(std.get("require_registration", True)),
        space=str(std.get("space", "MNI152NLin2009aSym")),
        pipeline=tuple(dict(p) for p in std.get("pipeline", ())),
        source_datasets=tuple(dict(p) for p in std.get("source_datasets", ())),
    )
    dep = d.get("deposit", {})
    deposit = Deposit(
        source_organization=dep.get("source_organization", ""),
        contact_name=dep.get("contact_name", ""),
        contact_email=dep.get("contact_email", ""),
    )
    st = d.get("study", {})
    study = Study(
        universe=st.get("universe", ""),
        unit_of_analysis=st.get("unit_of_analysis", ""),
        time_period=st.get("time_period", ""),
        geography=tuple(st.get("geography", ())),
        kind_of_data=st.get("kind_of_data", ""),
        method=st.get("method", ""),
        keywords=tuple(st.get("keywords", ())),
    )
    return ReleaseSpec(
        name=d["name"],
        version=d["version"],
        date=d["date"],
        title=d["title"],
        description=d.get("description", ""),
        authors=tuple(d.get("authors", ())),
        license=d.get("license", ""),
        data_use=d.get("data_use", ""),
        how_to_cite=d.get("how_to_cite", ""),
        references=tuple(d.get("references", ())),
        cohorts=cohorts_t,
        archives=archives,
        standard=rules,
        deposit=deposit,
        study=study,
        splits=_splits(d.get("splits"), cohorts_t, origin),
        source_text=text,
    )


def _splits(d: dict | None, cohorts: tuple[str, ...] | None, origin: str) -> Splits | None:
    """The ``[splits]`` section (already checked against the schema), or REL008."""
    if d is None:
        return None

    def bad(message: str) -> AtlasError:
        return AtlasError("REL008", f"[splits]: {message}", path=origin)

    hidden_cohorts = tuple(sorted(d.get("hidden_cohorts", ())))
    if hidden_cohorts and "hidden" in d:
        raise bad("give either hidden (a size) or hidden_cohorts (cohorts held out whole), not both")
    outside = [c for c in hidden_cohorts if cohorts is not None and c not in cohorts]
    if outside:
        raise bad(f"hidden cohort(s) {outside} are not among the release's cohorts")
    if "test" not in d and "training" not in d:
        raise bad("give the size of the test set (test = 0.2 or test = 300)")
    given = {k: d[k] for k in SPLITS if k in d}
    if "training" not in given:
        fractions = [v for v in given.values() if isinstance(v, float)]
        if sum(fractions) >= 1:
            raise bad("the fractions of the test and hidden sets add up to 1 or more: nothing left for training")
    elif not any(v > 0 for v in given.values()):
        raise bad("every size is zero")
    bounds = tuple(float(b) for b in d.get("size_classes_mm3", DEFAULT_SIZE_CLASSES_MM3))
    if any(b >= c for b, c in zip(bounds, bounds[1:], strict=False)):
        raise bad("size_classes_mm3 must be increasing")
    return Splits(
        seed=int(d["seed"]),
        test=given.get("test"),
        hidden=given.get("hidden"),
        training=given.get("training"),
        hidden_cohorts=hidden_cohorts,
        size_classes_mm3=bounds,
    )


def _check_schema(d: dict, origin: str) -> None:
    """REL007: anything ``schemas/release-spec.schema.json`` does not allow (an unknown key such as a
    misspelt ``cohort``, which would otherwise be ignored and release every cohort; a string where a
    list is expected; a voxel size that is not a number)."""
    from .metadata import schema_problem

    problem = schema_problem(d, "release-spec.schema.json", ".")
    if problem is not None:
        where, message = problem
        raise AtlasError(
            "REL007",
            f"release specification at {where or '(top level)'}: {message} (schemas/release-spec.schema.json)",
            path=origin,
        )


def load_spec(name_or_path: str, search: Path | None = None) -> ReleaseSpec:
    """Load a release by name (``releases/<name>.toml``) or by path."""
    p = Path(name_or_path)
    if p.suffix != ".toml" and "/" not in name_or_path:
        p = (search or releases_dir()) / f"{name_or_path}.toml"
    if not p.is_file():
        raise AtlasError("REL000", f"no release specification {name_or_path!r} (looked for {p})", path=str(p))
    return parse_spec(p.read_text(encoding="utf-8"), str(p))
