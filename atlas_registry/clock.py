"""Who and when, for the audit trail: the time every row is stamped with and the operator's name.

Ingest, revisions, issues and releases stamp their rows through these two functions, so a change
of clock or identity (tests, a service account) happens in one place.
"""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime


def now() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


def operator() -> str:
    """Who is acting: ``ATLAS_REGISTRY_USER``, else the login name, else ``unknown``."""
    try:
        return os.environ.get("ATLAS_REGISTRY_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises several kinds when there is no login name
        return "unknown"
