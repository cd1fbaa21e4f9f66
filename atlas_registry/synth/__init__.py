"""Synthetic ATLAS R1.1: a dataset with the structure, conventions and flaws of the real one.

Real ATLAS data is under a data use agreement; this generator is the demo's default input, the
tests' fixture and the benchmarks' load.  Modules:

* :mod:`.plan` decides every scan and lesion from the paper's tables (no images);
* :mod:`.scanners` the cohorts' scanners and native grids;
* :mod:`.head` a head around the template brain, rendered as T1 images;
* :mod:`.placement` and :mod:`.lesions` where lesions may lie and how they are grown;
* :mod:`.scan` one scan end to end, :mod:`.writer` its files, :mod:`.radiology` its metadata rows;
* :mod:`.reliability` the tracer reliability study, :mod:`.preview` a picture;
* :mod:`.dataset` the whole dataset (``atlas-registry synth``).
"""

from __future__ import annotations


def generate(out, **kwargs) -> dict:
    """See :func:`atlas_registry.synth.dataset.generate`."""
    from .dataset import generate as _generate

    return _generate(out, **kwargs)
