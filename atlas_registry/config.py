"""Where the registry lives: the workspace folder and the database URL.

``--home DIR`` / ``ATLAS_REGISTRY_HOME`` (default ``./atlas-workspace``) holds the SQLite file and
the content-addressed object store; ``--db URL`` / ``ATLAS_REGISTRY_DB`` points the registry at any
SQLAlchemy URL (e.g. ``postgresql+psycopg://user@host/db``).
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

    @classmethod
    def resolve(cls, home: str | os.PathLike | None = None, db: str | None = None) -> Workspace:
        home = home or os.environ.get("ATLAS_REGISTRY_HOME") or DEFAULT_HOME
        db = db or os.environ.get("ATLAS_REGISTRY_DB") or None
        return cls(Path(home).absolute(), db)

    @property
    def url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'registry.sqlite'}"

    @property
    def objects_dir(self) -> Path:
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
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        return self


def migrations_dir() -> Path:
    """The Alembic migrations: the repository's ``migrations/``, or the copy packaged with the wheel."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "migrations", here / "_migrations"):
        if (cand / "env.py").exists():
            return cand
    raise FileNotFoundError("Alembic migrations folder not found")
