"""The ICPSR deposit package (``out/packages/``): a BagIt bag of the ICPSR archive, zipped at publication.

``packages/<bag>/`` is a BagIt 0.97 bag (``bagit.txt``, ``bag-info.txt``, ``manifest-sha256.txt``,
``tagmanifest-sha256.txt``, ``data/`` = the ICPSR archive). It is written directly rather than with
``bagit.make_bag`` so that it is reproducible (``Bagging-Date`` is the release date, lines are
sorted) and so that nothing is hashed twice: the payload manifest is made from the SHA-256 the build
already knows. Payload files are hard links to the ICPSR files of the same build (no second copy on
disk; a copy where links are not possible). ``bagit.Bag(path).validate()`` accepts it (tested).

A build writes the bag as a folder and no zip (:func:`write_packages`): a curator iterating on a
release does not pay for a zip of the whole archive on every build. ``release publish`` writes
``packages/<bag>.zip`` once (:func:`write_deposit_zip`): the bag under ``<bag>/``, entries sorted,
fixed dates and permissions, already-compressed files stored as they are; every file is read once and
the zip's SHA-256 is computed as it is written (:func:`~.determinism.write_zip`).
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from .determinism import write_zip
from .output import Output
from .view import ReleaseView

BAGIT_TXT = "BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n"


def bag_name(view: ReleaseView) -> str:
    return f"atlas-{view.name}-icpsr"


def write_packages(output: Output, view: ReleaseView) -> None:
    """Bag the ICPSR archive already written under ``output`` (call after ``output.wait(files=True)``)."""
    spec = view.spec
    name = bag_name(view)
    base = f"packages/{name}"
    payload = output.archive_entries("icpsr")
    dirs: set = set()
    for e in payload:
        dst = output.path(f"{base}/data/{e.path[len('icpsr/'):]}")
        if dst.parent not in dirs:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dirs.add(dst.parent)
        output.link(output.path(e.path), dst, e.size)
        output.entries.append(e.__class__(f"{base}/data/{e.path[len('icpsr/'):]}", e.size, e.sha256, "packages",
                                          e.scan, e.source_revision_id))
    output.wait(files=True)
    oxum = f"{sum(e.size for e in payload)}.{len(payload)}"
    info = {
        "Bag-Software-Agent": f"atlas-registry {__version__}",
        "Bagging-Date": spec.date,
        "External-Description": f"{spec.title}: native-space archive for ICPSR deposit",
        "External-Identifier": f"{spec.name} {spec.version}",
        "Payload-Oxum": oxum,
    }
    tags = {
        "bagit.txt": BAGIT_TXT,
        "bag-info.txt": "".join(f"{k}: {' '.join(v.split())}\n" for k, v in sorted(info.items())),
        "manifest-sha256.txt": "".join(f"{e.sha256}  data/{e.path[len('icpsr/'):]}\n" for e in payload),
    }
    tagman = []
    for fname, text in tags.items():
        ent = output.write_text(f"{base}/{fname}", text, archive="packages")
        tagman.append(f"{ent.sha256}  {fname}\n")
    output.write_text(f"{base}/tagmanifest-sha256.txt", "".join(sorted(tagman, key=lambda l: l.split()[1])),
                      archive="packages")


def deposit_zip_path(name: str) -> str:
    """Where publication puts the deposit zip of release ``name`` (relative to the release folder)."""
    return f"packages/atlas-{name}-icpsr.zip"


def write_deposit_zip(root: Path, name: str, day: str, members: list[str], dest: Path) -> tuple[int, str]:
    """Zip the bag ``root/packages/atlas-<name>-icpsr/`` (its files ``members``, relative to the bag)
    into ``dest``; returns the zip's size and SHA-256 (computed as it is written)."""
    bag = f"atlas-{name}-icpsr"
    return write_zip(dest, Path(root) / "packages" / bag, sorted(members), day, prefix=f"{bag}/")
