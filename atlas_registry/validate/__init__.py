"""Validators of ATLAS archives: naming, images, masks, metadata and de-identification rules.

Entry point: :func:`atlas_registry.validate.runner.validate_path`; every rule code is listed in
:mod:`atlas_registry.validate.rules` and documented in ``docs/validation-rules.md``.
"""
