"""Naming rules on top of the grammar of :mod:`atlas_registry.naming`: one scan per identifier,
a T1 and complete, gap-free lesions in every scan folder, lesions numbered by size."""

from __future__ import annotations

from .. import naming
from . import rules


def duplicate_findings(folders) -> list:
    """NAME013: an identifier used by two scan folders."""
    out: list = []
    seen: dict[str, str] = {}
    for folder in sorted(folders, key=lambda f: f.relpath):
        if folder.scan_id in seen:
            out.append(
                rules.make(
                    "NAME013",
                    f"scan {folder.scan_id} also in {seen[folder.scan_id]}",
                    subject=folder.scan_id,
                    path=folder.relpath,
                )
            )
        seen.setdefault(folder.scan_id, folder.relpath)
    return out


def folder_findings(kind: str, folder) -> list:
    """NAME006/007/008/009: the T1 is there, lesions are complete and numbered without gaps."""
    out = []
    sid, rel = folder.scan_id, folder.relpath
    if not any(f.kind == "t1" for f in folder.files):
        out.append(rules.make("NAME006", "scan folder has no T1 image", subject=sid, path=rel))
    lesions: dict[int, set[str]] = {}
    for f in folder.files:
        if f.kind == "lesion":
            lesions.setdefault(f.lesion, set()).add(f.variant)
    if not lesions:
        out.append(rules.make("NAME009", "scan folder has no lesion mask", subject=sid, path=rel))
        return out
    if missing := sorted(set(range(max(lesions) + 1)) - set(lesions)):
        names = ", ".join("primary" if n == 0 else f"_{n}" for n in missing)
        out.append(
            rules.make(
                "NAME008",
                f"lesion numbering has gaps: no {names} (present: {', '.join(str(n) for n in sorted(lesions))})",
                subject=sid,
                path=rel,
            )
        )
    if kind == "native":
        for n, variants in sorted(lesions.items()):
            for v in naming.VARIANTS:
                if v not in variants:
                    name = naming.native_name(sid, "lesion", v, n)
                    out.append(
                        rules.make("NAME007", f"lesion {n} lacks its file {name}", subject=sid, path=f"{rel}/{name}")
                    )
    return out


def order_findings(rec, folder_relpath: str, *, primary_chosen: bool | None) -> list:
    """NAME011 (secondaries not largest first) and NAME012 (primary not the largest without the
    neuroradiologist's choice on record; not checked when there is no record, ``None``).

    Sizes are voxel counts of one variant (all variants of a scan share the T1's grid); an order
    counts as wrong only when it is wrong for every variant present, so that smoothing, which can
    swap two lesions of almost equal size, never makes a correct archive fail."""
    by_variant: dict[str, dict[int, int]] = {}
    for n, variants in rec.lesions.items():
        for v, m in variants.items():
            by_variant.setdefault(v, {})[n] = m.voxel_count
    numbers = sorted(rec.lesions)
    if len(numbers) < 2 or not by_variant:
        return []

    def wrong(check) -> bool:
        usable = [s for s in by_variant.values() if set(s) == set(numbers)]
        return bool(usable) and all(check(s) for s in usable)

    out = []
    secondary = [n for n in numbers if n > 0]
    for a, b in zip(secondary, secondary[1:], strict=False):
        if wrong(lambda s, a=a, b=b: s[a] < s[b]):
            out.append(
                rules.make(
                    "NAME011",
                    f"secondary lesion _{b} is larger than _{a}: secondaries are numbered from largest to smallest",
                    subject=rec.scan_id,
                    path=folder_relpath,
                )
            )
    if 0 in numbers and secondary and primary_chosen is False:
        big = max(secondary, key=lambda n: max(s.get(n, 0) for s in by_variant.values()))
        if wrong(lambda s: s[0] < max(s[n] for n in secondary)):
            out.append(
                rules.make(
                    "NAME012",
                    f"the primary lesion is smaller than _{big} and the metadata does not "
                    "record that the neuroradiologist chose it",
                    subject=rec.scan_id,
                    path=folder_relpath,
                )
            )
    return out
