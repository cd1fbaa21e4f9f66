"""Where the registry lives: the workspace folder and the database URL.

``--home DIR`` / ``ATLAS_REGISTRY_HOME`` (default ``./atlas-workspace``) holds the SQLite file and
the content-addressed object store; ``--db URL`` / ``ATLAS_REGISTRY_DB`` points the registry at any
SQLAlchemy URL (e.g. ``postgresql+psycopg://user@host/db``); ``--store URL`` / ``ATLAS_REGISTRY_STORE``
puts the object store elsewhere: another folder, or ``s3://bucket/prefix`` (:mod:`atlas_registry.objstore`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = "atlas-workspace"


@dataclass(frozen=True)
class Workspace:
    home: Path
    db: str | None = None
    store: str | None = None  # the object store's URL: None for HOME/objects

    @classmethod
    def resolve(
        cls, home: str | os.PathLike | None = None, db: str | None = None, store: str | None = None
    ) -> Workspace:
        home = home or os.environ.get("ATLAS_REGISTRY_HOME") or DEFAULT_HOME
        db = db or os.environ.get("ATLAS_REGISTRY_DB") or None
        store = store or os.environ.get("ATLAS_REGISTRY_STORE") or None
        if store is not None:
            from .objstore import parse_store_url

            parse_store_url(store)  # STO006 (usage) before anything is opened
            if "://" not in store:
                store = str(Path(store).absolute())  # a folder, relative to where the command ran
        return cls(Path(home).absolute(), db, store)

    @property
    def url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'registry.sqlite'}"

    @property
    def store_url(self) -> str:
        """The object store: ``--store`` as given, else the folder ``HOME/objects``."""
        return self.store or str(self.home / "objects")

    @property
    def store_is_folder(self) -> bool:
        from .objstore import parse_store_url

        return parse_store_url(self.store_url)[0] == "folder"

    @property
    def objects_dir(self) -> Path:
        """The folder of a folder store (``HOME/objects`` unless ``--store`` names another)."""
        if self.store:
            from .objstore import parse_store_url

            kind, where, _ = parse_store_url(self.store)
            if kind == "folder":
                return Path(where)
        return self.home / "objects"

    @property
    def verdicts_dir(self) -> Path:
        """Passing de-identification verdicts by content (:mod:`atlas_registry.verdicts`)."""
        return self.home / "verdicts"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def ensure(self) -> Workspace:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.store_is_folder:
            self.objects_dir.mkdir(parents=True, exist_ok=True)
        return self


def migrations_dir() -> Path:
    """The Alembic migrations: the repository's ``migrations/``, or the copy packaged with the wheel."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "migrations", here / "_migrations"):
        if (cand / "env.py").exists():
            return cand
    raise FileNotFoundError("Alembic migrations folder not found")
