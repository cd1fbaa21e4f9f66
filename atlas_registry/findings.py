"""Validation results as data: every rule produces :class:`Finding` rows.

A finding names the rule (a stable code documented in ``docs/validation-rules.md``), its
severity, the scan it concerns, the file (relative to the validated root) and a one-line message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True, order=True)
class Finding:
    code: str
    severity: str
    subject: str | None
    path: str | None
    message: str

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def line(self) -> str:
        where = self.path or self.subject or "-"
        return f"{self.severity.upper():7s} [{self.code}] {where}: {self.message}"


def error(code, message, *, subject=None, path=None) -> Finding:
    return Finding(code, "error", subject, str(path) if path is not None else None, message)


def warning(code, message, *, subject=None, path=None) -> Finding:
    return Finding(code, "warning", subject, str(path) if path is not None else None, message)


def info(code, message, *, subject=None, path=None) -> Finding:
    return Finding(code, "info", subject, str(path) if path is not None else None, message)


@dataclass
class Report:
    """All findings of one validation run, plus how many files were looked at."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0

    def extend(self, items: Iterable[Finding]) -> None:
        self.findings.extend(items)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self, severity: str | None = None) -> set[str]:
        return {f.code for f in self.findings if severity is None or f.severity == severity}

    def sorted(self) -> list[Finding]:
        order = {s: i for i, s in enumerate(SEVERITIES)}
        return sorted(
            self.findings, key=lambda f: (order[f.severity], f.subject or "", f.path or "", f.code, f.message)
        )

    def to_dict(self) -> dict:
        return {
            "findings": [asdict(f) for f in self.sorted()],
            "summary": {"errors": len(self.errors), "warnings": len(self.warnings), "files": self.files},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [f.line() for f in self.sorted()]
        lines.append(f"{len(self.errors)} error(s), {len(self.warnings)} warning(s) in {self.files} file(s)")
        return "\n".join(lines)
