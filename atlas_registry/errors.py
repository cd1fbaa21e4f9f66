"""Errors meant for people: each carries a stable rule code and a one-line message."""

from __future__ import annotations


class AtlasError(Exception):
    """A refusal the CLI reports as one line: ``error [CODE] message`` and exit 1."""

    exit_code = 1

    def __init__(self, code: str, message: str, *, path: str | None = None):
        self.code = code
        self.path = path
        super().__init__(message)

    def __str__(self) -> str:  # one line, names the file when there is one
        msg = super().__str__()
        return f"{self.path}: {msg}" if self.path else msg


class UsageError(AtlasError):
    """The request itself is malformed (exit 2)."""

    exit_code = 2
