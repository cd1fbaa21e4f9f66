"""atlas-registry: curate, validate and publish stroke lesion datasets (ATLAS)."""

__version__ = "0.1.0"
