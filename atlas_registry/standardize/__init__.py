"""``atlas-registry standardize``: native scans to the standardized (MNI152 2009, defaced) layout.

* :mod:`.pipeline`: the chain of one scan (N4, affine registration with the lesions masked out of
  the metric, resampling, intensity standardization, defacing) as bytes, in a worker;
* :mod:`.qc`: the automatic quality control of one registration (figures and thresholds);
* :mod:`.template`: the fixed image, its masks and the output grid;
* :mod:`.runner`: the native root read, the scans handed to a process pool or a Dask cluster, each
  scan's folder made to appear at once, and ``registration_failures.csv``.

Nothing here imports ANTsPy at import time: the worker sets one ITK thread first.
"""
