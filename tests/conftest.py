"""Shared fixtures. Blocks are separated by ``# --- <name> fixtures ---`` markers."""

from __future__ import annotations

import os
import uuid
from datetime import UTC

import pytest
from helpers import (  # noqa: F401 - the fixtures below build with these
    EXPORT_SPEC,
    assert_valid,
    build_export_registry,
    revise_report_orm,
    write_metadata_tables,
)

# --- database fixtures ---
# Every database test runs on SQLite and, when ATLAS_TEST_POSTGRES_URL is set (CI sets it), on
# PostgreSQL too, each test in a schema of its own that is dropped afterwards.

PG_ENV = "ATLAS_TEST_POSTGRES_URL"


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


def _pg_schema_url(base: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_schema_url():
    """A factory of fresh PostgreSQL schemas (URLs whose search_path is that schema)."""
    from sqlalchemy import create_engine, text

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set")
    eng = create_engine(base)
    made: list[str] = []

    def make() -> str:
        schema = "t_" + uuid.uuid4().hex[:16]
        with eng.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        made.append(schema)
        return _pg_schema_url(base, schema)

    yield make
    from atlas_registry.db import engine_for

    for url in [_pg_schema_url(base, s) for s in made]:
        engine_for(url).dispose()
    with eng.begin() as c:
        for schema in made:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture(params=_backends())
def backend(request) -> str:
    return request.param


@pytest.fixture
def workspace(backend, tmp_path, request):
    """An empty workspace (no schema yet) on the parametrized backend."""
    from atlas_registry.config import Workspace

    if backend == "sqlite":
        return Workspace(tmp_path / "ws")
    make = request.getfixturevalue("pg_schema_url")
    return Workspace(tmp_path / "ws", make())


@pytest.fixture
def registry(workspace):
    """A workspace whose registry is at the newest schema."""
    from atlas_registry import db

    db.upgrade(workspace)
    return workspace


# --- export fixtures ---
# The tiny registry of helpers.build_export_registry, built once per session (or per test, fresh).


@pytest.fixture(scope="session")
def export_spec():
    from atlas_registry.release_spec import parse_spec

    return parse_spec(EXPORT_SPEC, "<export test spec>")


@pytest.fixture(scope="session")
def export_ws(tmp_path_factory):
    """The tiny export registry, shared by the tests that only read it."""
    return build_export_registry(tmp_path_factory.mktemp("export") / "ws")


@pytest.fixture
def export_ws_fresh(tmp_path):
    """A private copy of the tiny export registry, for tests that revise it."""
    return build_export_registry(tmp_path / "ws")


# --- ingest fixtures ---


@pytest.fixture(scope="session")
def ingested_small(synth_small, tmp_path_factory):
    """A SQLite workspace holding the whole small synthetic release (native + standard).

    Session-scoped and shared: tests must not modify it (copy ``ws.home`` first if they must).
    """
    from atlas_registry.config import Workspace
    from atlas_registry.ingest import ingest_path

    ws = Workspace(tmp_path_factory.mktemp("ingested") / "ws")
    ingest_path(ws, synth_small / "native")
    ingest_path(ws, synth_small / "standard")
    return ws


# --- release fixtures ---
# Releases of the tiny export registry (fast, SQLite) and of a 2-cohort synthetic dataset ingested
# for real (SQLite and PostgreSQL), for the release and revision tests.

RELEASE_SPEC_NEXT = (
    EXPORT_SPEC.replace('name = "T1.0"', 'name = "T1.1"')
    .replace('version = "1.0.0"', 'version = "1.1.0"')
    .replace('date = "2020-03-04"', 'date = "2021-05-06"')
)


@pytest.fixture
def release_specs(tmp_path):
    """A folder of release specifications: T1.0 (1.0.0) and T1.1 (1.1.0) of the export registry."""
    d = tmp_path / "specs"
    d.mkdir()
    (d / "T1.0.toml").write_text(EXPORT_SPEC, encoding="utf-8")
    (d / "T1.1.toml").write_text(RELEASE_SPEC_NEXT, encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def synth_two_cohorts(tmp_path_factory):
    """The small synthetic dataset of cohorts c0001 (1.5 T, native only) and c0009 (3 T, 12 scans, one
    with 3 and one with 7 lesions), generated once per test run (shared by the xdist workers)."""
    import fcntl

    from atlas_registry.cli import main

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / "synth-c0001-c0009"
    with open(shared / "synth-c0001-c0009.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".complete").exists():
            assert main(["synth", str(out), "--scale", "small", "--cohorts", "c0001,c0009", "--no-reliability"]) == 0
            (out / ".complete").write_text("ok\n")
    return out


def _ingest_two(ws, root):
    from atlas_registry.ingest import ingest_path

    ingest_path(ws, root / "native", workers=2)
    ingest_path(ws, root / "standard", workers=2)
    return ws


@pytest.fixture(scope="session")
def _ingested_two_sqlite(synth_two_cohorts, tmp_path_factory):
    """The 2-cohort dataset ingested into SQLite once per worker (read-only: copy it to change it)."""
    from atlas_registry.config import Workspace

    return _ingest_two(Workspace(tmp_path_factory.mktemp("ingested2") / "ws"), synth_two_cohorts)


@pytest.fixture
def ingested_two(backend, synth_two_cohorts, _ingested_two_sqlite, tmp_path, request):
    """A private registry of the 2-cohort dataset, safe to revise: a copy of the SQLite workspace,
    or a fresh PostgreSQL schema ingested for this test."""
    import shutil

    from atlas_registry.config import Workspace

    if backend == "sqlite":
        shutil.copytree(_ingested_two_sqlite.home, tmp_path / "ws")
        return Workspace(tmp_path / "ws")
    return _ingest_two(Workspace(tmp_path / "ws", request.getfixturevalue("pg_schema_url")()), synth_two_cohorts)


# --- sql fixtures ---
# A small bulk-loaded registry per backend, shared by the read-only tests of sql/views/stats (a
# test that wrote to it would be caught by the before/after snapshots of the sql tests), and a
# builder of hand-made registries with the ORM whose expected answers the tests know exactly.


@pytest.fixture(scope="session")
def sql_registry_factory(tmp_path_factory):
    """backend -> (workspace, BulkPlan): 150 synthetic metadata-only scans, 260 lesions, loaded
    once per backend and session. Read-only use."""
    from sqlalchemy import create_engine, text

    from atlas_registry import bulkload, db
    from atlas_registry.config import Workspace

    made: dict = {}
    schemas: list[str] = []

    def get(backend: str):
        if backend not in made:
            home = tmp_path_factory.mktemp(f"sqlreg-{backend}") / "ws"
            if backend == "sqlite":
                ws = Workspace(home)
            else:
                schema = "t_" + uuid.uuid4().hex[:16]
                with create_engine(os.environ[PG_ENV]).begin() as c:
                    c.execute(text(f'CREATE SCHEMA "{schema}"'))
                schemas.append(schema)
                ws = Workspace(home, _pg_schema_url(os.environ[PG_ENV], schema))
            db.upgrade(ws)
            made[backend] = (ws, bulkload.load(ws, 150, 260, seed=3))
        return made[backend]

    yield get
    for ws, _ in made.values():
        db.engine_for(ws.url).dispose()
    if schemas:
        eng = create_engine(os.environ[PG_ENV])
        with eng.begin() as c:
            for schema in schemas:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        eng.dispose()


@pytest.fixture(params=_backends())
def sql_registry(request, sql_registry_factory):
    """(workspace, BulkPlan) of the shared bulk-loaded registry on the parametrized backend."""
    return sql_registry_factory(request.param)


class SqlRegistryBuilder:
    """Hand-made registry content with the ORM: scans, lesions (annotation + native smoothed NIfTI
    mask, optionally other variants), reports, releases, retirements, MNI masks as real files."""

    def __init__(self, ws):
        from datetime import datetime

        from sqlmodel import Session

        from atlas_registry import db
        from atlas_registry.models import Revision
        from atlas_registry.store import ObjectStore

        self.ws = ws
        self.when = datetime(2026, 1, 2, tzinfo=UTC)
        self.store = ObjectStore(ws.objects_dir)
        self.s = Session(db.engine(ws), expire_on_commit=False)
        self.rev = Revision(kind="ingest", author="test", reason="hand-made registry", created_at=self.when)
        self.fix = Revision(kind="correct_metadata", author="test", reason="a correction", created_at=self.when)
        self.s.add(self.rev)
        self.s.add(self.fix)
        self.s.flush()
        self.cohorts, self.subjects, self.releases, self._n = {}, {}, {}, 0

    def _object(self, data: bytes | None = None) -> str:
        """A stored_object row: ``data`` put in the store, or (None) a made-up object, no file."""
        import hashlib

        from atlas_registry.models import StoredObject

        self._n += 1
        sha = self.store.put(data) if data is not None else hashlib.sha256(f"fake {self._n}".encode()).hexdigest()
        data = data or b""
        if self.s.get(StoredObject, sha) is None:
            self.s.add(
                StoredObject(sha256=sha, size_bytes=len(data), media_type="application/gzip", created_at=self.when)
            )
            self.s.flush()
        return sha

    def nifti(self, array, zooms=(2.0, 2.0, 2.0)) -> str:
        """Store ``array`` as a gzipped NIfTI in the object store; its SHA-256."""
        import gzip

        import nibabel as nib
        import numpy as np

        aff = np.diag([*zooms, 1.0])
        aff[:3, 3] = (-10.0, -12.0, -8.0)
        return self._object(gzip.compress(nib.Nifti1Image(np.asarray(array), aff).to_bytes(), mtime=0))

    def release(self, name: str, status: str = "published"):
        from atlas_registry.models import Release

        if name not in self.releases:
            r = Release(name=name, version="1.0.0", status=status, spec=f'name = "{name}"')
            self.s.add(r)
            self.s.flush()
            self.releases[name] = r
        return self.releases[name]

    def scan(
        self,
        code,
        lesions=(),
        *,
        report=None,
        standard="included",
        reason=None,
        scanner=(3.0, "Siemens", "Prisma"),
        voxel=(1.0, 1.0, 1.0),
        releases=(),
        mni=None,
        t1_mni=None,
    ):
        """A scan ``cXXXXsXXXXtXX``; ``lesions``: dicts with hemisphere, location, volume (and
        optionally mask_hemisphere, mask_location); ``releases``: names or (name, in_standard);
        ``mni``: {lesion number: array} stored as standard-space smoothed masks."""
        from atlas_registry.models import (
            Cohort,
            Image,
            ReleaseScan,
            Scanner,
            ScanReport,
            Subject,
            Timepoint,
        )

        s = self.s
        cc, sc = code[:5], code[:10]
        if cc not in self.cohorts:
            c = Cohort(code=cc, site=f"site {cc}")
            s.add(c)
            s.flush()
            scn = Scanner(
                cohort_id=c.id,
                manufacturer=scanner[1],
                model=scanner[2],
                field_strength_t=scanner[0],
                voxel_x_mm=voxel[0],
                voxel_y_mm=voxel[1],
                voxel_z_mm=voxel[2],
            )
            s.add(scn)
            s.flush()
            self.cohorts[cc] = (c, scn)
        c, scn = self.cohorts[cc]
        if sc not in self.subjects:
            sub = Subject(cohort_id=c.id, code=sc, number=int(code[6:10]))
            s.add(sub)
            s.flush()
            self.subjects[sc] = sub
        tp = Timepoint(
            subject_id=self.subjects[sc].id,
            scanner_id=scn.id,
            code=code,
            number=int(code[11:13]),
            standard_status=standard,
            exclusion_reason=reason,
        )
        s.add(tp)
        s.flush()
        if report is not None:
            s.add(ScanReport(timepoint_id=tp.id, created_rev_id=self.rev.id, **report))
        for k, les in enumerate(lesions):
            self.lesion(tp, k, **les)
        for k, arr in (mni or {}).items():
            self.mask(tp, k, arr)
        if t1_mni is not None:
            s.add(
                Image(
                    timepoint_id=tp.id,
                    space="MNI152NLin2009aSym",
                    sha256=self.nifti(t1_mni),
                    source_name="t1.nii.gz",
                    shape_x=t1_mni.shape[0],
                    shape_y=t1_mni.shape[1],
                    shape_z=t1_mni.shape[2],
                    voxel_x_mm=2.0,
                    voxel_y_mm=2.0,
                    voxel_z_mm=2.0,
                    dtype=str(t1_mni.dtype),
                    affine="[]",
                    created_rev_id=self.rev.id,
                )
            )
        for rel in releases:
            name, in_std = rel if isinstance(rel, tuple) else (rel, standard == "included")
            s.add(
                ReleaseScan(
                    release_id=self.release(name).id, timepoint_id=tp.id, in_standard=in_std, scan=code, cohort=cc
                )
            )
        s.flush()
        return tp

    def lesion(self, tp, number, hemisphere, location, volume, mask_hemisphere=None, mask_location=None):
        from atlas_registry.models import Lesion, LesionAnnotation, LesionMask

        les = Lesion(timepoint_id=tp.id, number=number, created_rev_id=self.rev.id)
        self.s.add(les)
        self.s.flush()
        self.s.add(
            LesionAnnotation(
                lesion_id=les.id,
                hemisphere=hemisphere,
                location=location,
                tracer="rater-01",
                created_rev_id=self.rev.id,
            )
        )
        for variant, vol in (("smooth_nii", volume), ("raw_voi", volume * 1.1)):  # the views use smooth_nii
            self.s.add(
                LesionMask(
                    lesion_id=les.id,
                    variant=variant,
                    space="native",
                    sha256=self._object(),
                    source_name=f"{tp.code}_{variant}_{number}",
                    voxel_count=max(1, int(vol)),
                    volume_mm3=vol,
                    centroid_x_mm=0,
                    centroid_y_mm=0,
                    centroid_z_mm=0,
                    n_components=1,
                    hemisphere=mask_hemisphere or hemisphere,
                    location=mask_location or location,
                    created_rev_id=self.rev.id,
                )
            )
        self.s.flush()
        return les

    def mask(self, tp, number, array):
        """A standard-space smoothed mask (a real file in the store) for lesion ``number`` of ``tp``."""
        from sqlmodel import select

        from atlas_registry.models import Lesion, LesionMask

        les = self.s.exec(
            select(Lesion).where(Lesion.timepoint_id == tp.id, Lesion.number == number, Lesion.retired_rev_id.is_(None))
        ).first()
        if les is None:
            les = self.lesion(tp, number, "left", "subcortical", 100.0)
        self.s.add(
            LesionMask(
                lesion_id=les.id,
                variant="smooth_nii",
                space="MNI152NLin2009aSym",
                sha256=self.nifti(array.astype("uint8")),
                source_name=f"{tp.code}_stx_{number}",
                voxel_count=max(1, int(array.sum())),
                volume_mm3=max(1.0, float(array.sum()) * 8.0),
                centroid_x_mm=0,
                centroid_y_mm=0,
                centroid_z_mm=0,
                n_components=1,
                hemisphere="left",
                location="subcortical",
                created_rev_id=self.rev.id,
            )
        )
        self.s.flush()

    def retire(self, row):
        """Mark a versioned row (lesion, annotation, mask, report) as replaced by the correction."""
        row.retired_rev_id = self.fix.id
        self.s.add(row)
        self.s.flush()

    def commit(self):
        """Refresh the current-state tables (as every writer of the registry does) and commit."""
        from atlas_registry import db, facts

        facts.refresh(self.s)
        self.s.connection().exec_driver_sql(db.BUMP_COUNTER)  # a committed write, as db.session counts it
        self.s.commit()
        self.s.close()
        return self.ws


@pytest.fixture
def sql_builder(registry):
    """A :class:`SqlRegistryBuilder` on an empty registry of the parametrized backend."""
    return SqlRegistryBuilder(registry)


# --- validate fixtures ---
# A trimmed copy of the 2-cohort synthetic dataset for the validator tests: a few scans of c0009
# (one with at least three lesions, one with a single lesion) and one of c0001, with the metadata
# tables cut to those scans; and the standardized files of the same c0009 scans. Tests copy it
# before breaking it (``validate_native`` / ``validate_standard``).


def _validate_pick(frames) -> list[str]:
    counts = frames["lesions"].groupby("Scan ID").size()
    c9 = counts[counts.index.str.startswith("c0009")]
    multi = sorted(c9[c9 >= 3].index)[:1] or sorted(c9[c9 == c9.max()].index)[:1]
    singles = sorted(c9[c9 == 1].index)[:2]
    pairs = sorted(c9[c9 == 2].index)[:1]
    low = sorted(counts[counts.index.str.startswith("c0001")].index)[:1]
    return sorted(set(multi + singles + pairs + low))


@pytest.fixture(scope="session")
def validate_clean(synth_two_cohorts, tmp_path_factory):
    """(native root, standard root, picked scan ids) of the trimmed clean dataset. Read-only."""
    import shutil

    from atlas_registry import metadata as md
    from atlas_registry import naming

    src = synth_two_cohorts
    frames = md.read_metadata(src / "native")
    picked = _validate_pick(frames)
    out = tmp_path_factory.mktemp("validate-clean")
    native, standard = out / "native", out / "standard"
    for sid in picked:
        s = naming.parse_scan_id(sid)
        shutil.copytree(src / "native" / s.cohort_code / sid, native / s.cohort_code / sid)
        if (src / "standard" / s.cohort_code / sid).is_dir():
            shutil.copytree(src / "standard" / s.cohort_code / sid, standard / s.cohort_code / sid)
    keep = {"scans": md.SCAN_ID, "lesions": md.SCAN_ID}
    trimmed = {
        name: (
            df[df[keep[name]].isin(picked)] if name in keep else df[df[md.COHORT].isin({p[:5] for p in picked})]
        ).reset_index(drop=True)
        for name, df in frames.items()
    }
    write_metadata_tables(native, trimmed)
    shutil.copy2(src / "standard" / naming.REGISTRATION_FAILURES, standard / naming.REGISTRATION_FAILURES)
    return native, standard, picked


@pytest.fixture
def validate_native(validate_clean, tmp_path):
    """A private copy of the trimmed clean native root, safe to break."""
    import shutil

    dst = tmp_path / "native"
    shutil.copytree(validate_clean[0], dst, symlinks=True)
    return dst


@pytest.fixture
def validate_standard(validate_clean, tmp_path):
    """A private copy of the trimmed clean standardized root, safe to break."""
    import shutil

    dst = tmp_path / "standard"
    shutil.copytree(validate_clean[1], dst, symlinks=True)
    return dst


@pytest.fixture
def release_parquet(tmp_path):
    """f(ws, name, member_of) -> a Workspace sharing ``ws``'s database whose folder holds release
    ``name``: the scans/lesions views restricted to the scans of release ``member_of``, written as
    the exporter writes them (``releases/<name>/parquet/{scans,lesions}.parquet``)."""

    def write(ws, name: str, member_of: str):
        import pyarrow as pa
        import pyarrow.parquet as pq

        from atlas_registry import query
        from atlas_registry.config import Workspace

        out = Workspace(tmp_path / f"rel-{name}", ws.url)
        folder = query.release_dir(out, name) / "parquet"
        folder.mkdir(parents=True)
        for view in ("scans", "lesions"):
            r = query.run(
                ws, f"SELECT * FROM {view} WHERE scan IN (SELECT scan FROM release_scans WHERE release = '{member_of}')"
            )
            cols = list(zip(*r.rows, strict=False)) if r.rows else [[] for _ in r.columns]
            data = {c: list(v) for c, v in zip(r.columns, cols, strict=False)}
            if "is_primary" in data:  # SQLite 0/1 -> a Parquet boolean, as the exporter writes it
                data["is_primary"] = [bool(x) for x in data["is_primary"]]
            pq.write_table(pa.table(data), folder / f"{view}.parquet")
        return out

    return write


# --- synth fixtures ---
# The small synthetic dataset, generated once per test run and shared by the xdist workers (a lock
# file in the run's common temporary folder; the first worker generates, the others wait).


def _synth_shared(tmp_path_factory, name: str, **kwargs):
    import fcntl

    from atlas_registry.synth import generate

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "synth.json").exists():
            if out.exists():
                import shutil

                shutil.rmtree(out)
            generate(out, scale="small", **kwargs)
    return out


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory):
    """The whole small synthetic dataset (all 11 cohorts, seed 0, reliability study included):
    ``OUT`` with ``native/``, ``standard/``, ``reliability/``, ``preview.png``, ``synth.json``.
    Shared: tests must not modify it."""
    return _synth_shared(tmp_path_factory, "synth-small-seed0")


@pytest.fixture(scope="session")
def synth_small_cohorts(tmp_path_factory):
    """f(cohorts, seed=0, workers=None, reliability=False) -> OUT of a small synthetic dataset of
    those cohorts only, generated once per distinct argument set. Shared: do not modify."""

    def make(cohorts, seed: int = 0, workers=None, reliability: bool = False):
        cohorts = sorted(cohorts)
        name = f"synth-small-{'-'.join(cohorts)}-seed{seed}-w{workers or 0}{'-rel' if reliability else ''}"
        return _synth_shared(
            tmp_path_factory, name, cohorts=cohorts, seed=seed, workers=workers, with_reliability=reliability
        )

    return make
