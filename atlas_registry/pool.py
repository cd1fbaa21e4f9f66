"""The one process pool of every parallel command (validate, thumbnails, synth, intake, standardize).

Workers start by ``fork`` where the platform has it (not on macOS, where fork is unsafe with the
system frameworks): they inherit what the parent prepared before the pool started (the anatomy
tables, the template, imported modules) instead of building it once per worker. Elsewhere the
platform's default start method is used.

``finished(pool, fn, items)`` yields ``(item, future)`` as each call finishes and, on Ctrl-C or any
error in the consumer, cancels what has not started instead of waiting for the queue to drain.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def process_pool(workers: int, *, initializer: Callable[[], Any] | None = None) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes, forked where the platform allows it."""
    import multiprocessing as mp

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() and sys.platform != "darwin" else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=initializer)


def finished(pool: ProcessPoolExecutor, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[Any, Future]]:
    """``(item, future)`` of ``fn(item)`` for every item, in the order the calls finish."""
    futures = {pool.submit(fn, item): item for item in items}
    try:
        for fut in as_completed(futures):
            yield futures[fut], fut
    except BaseException:  # Ctrl-C or the consumer gave up: do not wait for the queue to drain
        pool.shutdown(wait=False, cancel_futures=True)
        raise
