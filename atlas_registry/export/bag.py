"""The deposit packages (``out/packages/``): a BagIt 1.0 bag (RFC 8493) of every archive of the
release, the ICPSR one zipped at publication.

``packages/atlas-<release>-<archive>/`` (archive ``icpsr``, ``bids``, ``parquet``) is a bag:
``bagit.txt`` (``BagIt-Version: 1.0``), ``bag-info.txt``, ``manifest-sha256.txt``,
``tagmanifest-sha256.txt`` and ``data/`` = the archive. ``bag-info.txt`` carries, from the release
specification, ``Source-Organization``, ``Contact-Name`` and ``Contact-Email`` (``[deposit]``),
``External-Identifier`` (release name and version, and its DOI when the references give one),
``External-Description``, ``Bag-Software-Agent`` and ``Payload-Oxum``. ``Bagging-Date`` is the
release date of the specification, not the day the bag was written: a build is deterministic, so a
rebuild years later writes the same bag byte for byte (RFC 8493 2.2.2 leaves the date to the bagger).

The bags are written directly rather than with ``bagit.make_bag`` so that they are reproducible (fixed
date, sorted lines) and nothing is hashed twice: the payload manifest is made from the SHA-256 the
build already knows. Payload files are hard links to the archive's files of the same build (no second
copy on disk; a copy where links are not possible). ``bagit.Bag(path).validate()`` accepts them (tested).

A build writes the bags as folders and no zip (:func:`write_packages`): a curator iterating on a
release does not pay for a zip of the whole archive on every build. ``release publish`` writes
``packages/atlas-<release>-icpsr.zip`` once (:func:`write_deposit_zip`): the ICPSR bag under its name,
entries sorted, fixed dates and permissions, already-compressed files stored as they are; every file is
read once and the zip's SHA-256 is computed as it is written (:func:`~.determinism.write_zip`).
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__
from .determinism import write_zip
from .output import Output
from .view import ReleaseView

BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
DESCRIPTIONS = {
    "icpsr": "native-space archive (T1-weighted MRIs, lesion masks, metadata tables) for deposit at ICPSR, "
    "under its data use agreement",
    "bids": "standardized subset as a BIDS derivative dataset (defaced, registered to a template), public",
    "parquet": "metadata tables in Parquet (public identifiers only), public",
}


def bag_name(view: ReleaseView, archive: str = "icpsr") -> str:
    return f"atlas-{view.name}-{archive}"


def bag_info(spec, archive: str, payload) -> dict[str, str]:
    """The fields of ``bag-info.txt`` (RFC 8493 2.2.2) of the bag of ``archive``."""
    dep = spec.deposit
    ids = [f"{spec.name} {spec.version}"] + [r.split("doi.org/", 1)[1] for r in spec.references if "doi.org/" in r][:1]
    info = {
        "Bag-Software-Agent": f"atlas-registry {__version__}",
        "Bagging-Date": spec.date,  # the release date: deterministic (module docstring)
        "External-Description": f"{spec.title}: {DESCRIPTIONS[archive]}",
        "External-Identifier": " ".join(ids),
        "Payload-Oxum": f"{sum(e.size for e in payload)}.{len(payload)}",
        "Source-Organization": dep.source_organization,
        "Contact-Name": dep.contact_name,
        "Contact-Email": dep.contact_email,
    }
    return {k: v for k, v in info.items() if v}


def write_packages(output: Output, view: ReleaseView, archives=("icpsr",)) -> None:
    """Bag each archive of ``archives`` already written under ``output`` (its files all in place:
    call after ``output.wait``)."""
    for archive in archives:
        if output.archive_entries(archive):
            _write_bag(output, view, archive)


def _write_bag(output: Output, view: ReleaseView, archive: str) -> None:
    spec = view.spec
    base = f"packages/{bag_name(view, archive)}"
    payload = output.archive_entries(archive)
    cut = len(archive) + 1
    dirs: set = set()
    for e in payload:
        dst = output.path(f"{base}/data/{e.path[cut:]}")
        if dst.parent not in dirs:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dirs.add(dst.parent)
        output.link(output.path(e.path), dst, e.size)
        output.entries.append(
            e.__class__(f"{base}/data/{e.path[cut:]}", e.size, e.sha256, "packages", e.scan, e.source_revision_id)
        )
    output.wait(files=True)
    info = bag_info(spec, archive, payload)
    tags = {
        "bagit.txt": BAGIT_TXT,
        "bag-info.txt": "".join(f"{k}: {' '.join(v.split())}\n" for k, v in sorted(info.items())),
        "manifest-sha256.txt": "".join(f"{e.sha256}  data/{e.path[cut:]}\n" for e in payload),
    }
    tagman = []
    for fname, text in tags.items():
        ent = output.write_text(f"{base}/{fname}", text, archive="packages")
        tagman.append(f"{ent.sha256}  {fname}\n")
    output.write_text(
        f"{base}/tagmanifest-sha256.txt", "".join(sorted(tagman, key=lambda line: line.split()[1])), archive="packages"
    )


def deposit_zip_path(name: str) -> str:
    """Where publication puts the deposit zip of release ``name`` (relative to the release folder)."""
    return f"packages/atlas-{name}-icpsr.zip"


def write_deposit_zip(root: Path, name: str, day: str, members: list[str], dest: Path) -> tuple[int, str]:
    """Zip the bag ``root/packages/atlas-<name>-icpsr/`` (its files ``members``, relative to the bag)
    into ``dest``; returns the zip's size and SHA-256 (computed as it is written)."""
    bag = f"atlas-{name}-icpsr"
    return write_zip(dest, Path(root) / "packages" / bag, sorted(members), day, prefix=f"{bag}/")
