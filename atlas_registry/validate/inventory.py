"""Walk a root and classify every file by the naming grammar (Table 3), without reading any.

Accepts a native root (``cXXXX/cXXXXsXXXXtXX/…``), one cohort folder of it, or a standardized
root (same folders, ``…_t1w_deface_stx.nii.gz`` names, ``registration_failures.csv``). Layout
problems (names, places, paths escaping the root) become findings; what is left is a list of scan
folders whose files the image and mask validators then read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import naming
from ..errors import AtlasError
from . import deid, rules
from . import naming as vnaming

# Files a root may hold besides its cohort folders (anything else is refused: nothing unchecked
# travels with an archive).
NATIVE_ROOT_FILES = frozenset({naming.METADATA_WORKBOOK, *naming.METADATA_CSV.values()})
STANDARD_ROOT_FILES = frozenset({naming.REGISTRATION_FAILURES})


@dataclass(frozen=True)
class InvFile:
    relpath: str  # POSIX, relative to Inventory.root
    kind: str  # t1 | lesion | sidecar
    variant: str | None  # native: raw_voi | smooth_voi | smooth_nii; standard lesions: smooth_nii
    lesion: int


@dataclass
class ScanFolder:
    scan_id: str
    relpath: str
    files: list[InvFile] = field(default_factory=list)

    @property
    def cohort(self) -> str:
        return self.scan_id[:5]


@dataclass
class Inventory:
    root: Path  # what relpaths are relative to (the native/standard root)
    kind: str  # native | standard
    cohort: str | None = None  # set when a single cohort folder was given
    scans: list[ScanFolder] = field(default_factory=list)
    findings: list = field(default_factory=list)
    files: int = 0  # every regular file seen (classified or not)


def detect(path: Path) -> tuple[Path, str, str | None]:
    """``(root, kind, cohort)`` for a native root, a cohort folder or a standardized root."""
    path = Path(path).absolute()
    if not path.is_dir():
        raise AtlasError(
            "NAME014", "not a folder: give a native root, a cohort folder or a standardized root", path=str(path)
        )
    cohort = path.name if naming.COHORT_RE.match(path.name) else None
    if cohort and not (path / naming.METADATA_WORKBOOK).exists() and not (path / naming.REGISTRATION_FAILURES).exists():
        root = path.parent
        cohort_dirs = [path]
    else:
        root, cohort = path, None
        cohort_dirs = [p for p in _listdir(path) if p.is_dir() and naming.COHORT_RE.match(p.name)]
    if (root / naming.REGISTRATION_FAILURES).is_file() and cohort is None:
        return root, "standard", None
    return root, _vote(cohort_dirs), cohort


def _listdir(p: Path) -> list[Path]:
    try:
        return sorted(p.iterdir())
    except OSError:
        return []


def _vote(cohort_dirs: list[Path]) -> str:
    """``standard`` when the scan folders hold standardized names rather than native ones."""
    std = nat = 0
    for c in cohort_dirs:
        for s in _listdir(c):
            for f in _listdir(s) if s.is_dir() else []:
                std += naming.parse_standard_name(f.name) is not None
                nat += naming.parse_native_name(f.name) is not None
            if std + nat >= 8:
                return "standard" if std > nat else "native"
    return "standard" if std > nat else "native"


def build(path: Path) -> Inventory:
    root, kind, cohort = detect(path)
    inv = Inventory(root=root, kind=kind, cohort=cohort)
    scope = root / cohort if cohort else root
    if cohort:
        _walk_cohort(inv, scope, scope)
    else:
        _walk_root(inv, scope)
    inv.findings.extend(vnaming.duplicate_findings(inv.scans))
    for folder in inv.scans:
        inv.findings.extend(vnaming.folder_findings(inv.kind, folder))
    if not inv.scans:
        inv.findings.append(rules.make("NAME014", f"no scan folders found under {scope.name}/", path="."))
    inv.scans.sort(key=lambda f: f.scan_id)
    return inv


def _rel(inv: Inventory, p: Path) -> str:
    return p.relative_to(inv.root).as_posix()


def _escapes(inv: Inventory, scope: Path, p: Path) -> bool:
    """Record NAME010 for a path that leaves ``scope`` (symlink, ``..``); True when it does."""
    if not p.is_symlink():
        return False
    try:
        naming.safe_relpath(scope, p)
    except AtlasError as e:
        inv.findings.append(rules.make(e.code, f"{e.args[0]}; not read", path=_rel(inv, p)))
        return True
    return False


def _special(inv: Inventory, p: Path, subject: str | None = None) -> bool:
    """Record NAME015 for a named pipe, socket or device (never opened: reading a pipe can block
    forever, a device can be endless); True when ``p`` is one."""
    import stat

    try:
        mode = p.stat().st_mode
    except OSError:
        return False  # a dangling link: left to the checks that open files (IMG001)
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return False
    kind = "named pipe" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device or special file"
    inv.findings.append(
        rules.make(
            "NAME015",
            f"a {kind} stands here; only regular files are read (not opened)",
            subject=subject,
            path=_rel(inv, p),
        )
    )
    return True


def _odd(inv: Inventory, p: Path, message: str, *, code="NAME005", subject=None) -> None:
    rel = _rel(inv, p)
    inv.findings.append(rules.make(code, message, subject=subject, path=rel))
    inv.findings.extend(deid.name_findings(rel, subject))
    if p.is_file():
        inv.files += 1


def _walk_root(inv: Inventory, root: Path) -> None:
    allowed = STANDARD_ROOT_FILES if inv.kind == "standard" else NATIVE_ROOT_FILES
    for p in _listdir(root):
        if _escapes(inv, root, p) or _special(inv, p):
            continue
        if p.is_dir() and naming.COHORT_RE.match(p.name):
            _walk_cohort(inv, root, p)
        elif p.is_file() and p.name in allowed:
            inv.files += 1
        elif p.is_dir():
            _odd(inv, p, "folder at the root that is not a cohort folder cXXXX; not read")
        else:
            _odd(inv, p, "file at the root that is not one of " + ", ".join(sorted(allowed)) + "; not read")


def _walk_cohort(inv: Inventory, scope: Path, cohort_dir: Path) -> None:
    for p in _listdir(cohort_dir):
        if _escapes(inv, scope, p) or _special(inv, p):
            continue
        if not p.is_dir():
            _odd(inv, p, "file directly in a cohort folder (files belong in scan folders); not read")
            continue
        if not naming.is_scan_id(p.name):
            _odd(inv, p, f"{p.name!r} is not a scan identifier of the form cXXXXsXXXXtXX; not read", code="NAME001")
            continue
        folder = ScanFolder(p.name, _rel(inv, p))
        if p.name[:5] != cohort_dir.name:
            inv.findings.append(
                rules.make(
                    "NAME002",
                    f"scan folder {p.name} is in cohort folder {cohort_dir.name}/, not {p.name[:5]}/",
                    subject=p.name,
                    path=folder.relpath,
                )
            )
        _walk_scan(inv, scope, p, folder)
        inv.scans.append(folder)


def _walk_scan(inv: Inventory, scope: Path, scan_dir: Path, folder: ScanFolder) -> None:
    parse = naming.parse_standard_name if inv.kind == "standard" else naming.parse_native_name
    for p in _listdir(scan_dir):
        if _escapes(inv, scope, p) or _special(inv, p, folder.scan_id):
            continue
        if p.is_dir():
            _odd(inv, p, "folder inside a scan folder; not read", subject=folder.scan_id)
            continue
        parsed = parse(p.name)
        if parsed is None:
            what = "standardized" if inv.kind == "standard" else "native (Table 3)"
            _odd(inv, p, f"not a {what} file kind; not read", code="NAME004", subject=folder.scan_id)
            continue
        inv.files += 1
        rel = _rel(inv, p)
        if str(parsed.scan) != folder.scan_id:
            inv.findings.append(
                rules.make(
                    "NAME003",
                    f"file names scan {parsed.scan} but lies in folder {folder.scan_id}; not read",
                    subject=folder.scan_id,
                    path=rel,
                )
            )
            continue
        variant = getattr(parsed, "variant", None) or ("smooth_nii" if parsed.kind == "lesion" else None)
        folder.files.append(InvFile(rel, parsed.kind, variant, parsed.lesion))
