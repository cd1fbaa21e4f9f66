"""One progress bar for every long command: rich, on stderr, gone when done.

No refresh thread: validation, synth, thumbnails and intake fork worker processes while the bar is
live, and a thread in the parent at fork time is a hazard; the bar is redrawn on each update instead.
A disabled bar (``--no-progress``, JSON output, not a terminal) costs nothing and draws nothing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class Bar:
    """What a job sees of its bar: :meth:`advance` by units done, or :meth:`update` to an absolute
    count, total and label. A disabled bar ignores both."""

    def __init__(self, progress=None, task=None):
        self._p, self._task = progress, task

    def advance(self, n: float = 1) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)
            self._p.refresh()

    def update(self, done: float, total: float | None = None, label: str = "") -> None:
        if self._p is not None:
            self._p.update(self._task, completed=done, total=total, description=label)
            self._p.refresh()


@contextmanager
def bar(
    title: str,
    total: float | None = None,
    *,
    enabled: bool = True,
    unit: str = "count",
    console=None,
    transient: bool = True,
) -> Iterator[Bar]:
    """A bar titled ``title`` for ``total`` units (unknown: ``None``, set later by :meth:`Bar.update`).

    ``unit``: ``count`` (done/total, time elapsed), ``files`` (done/total files, time remaining) or
    ``bytes`` (bytes done/total, time remaining). ``console``: where to draw (default stderr)."""
    if not enabled:
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns: list = [TextColumn(title), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TimeRemainingColumn()]
    elif unit == "files":
        columns += [MofNCompleteColumn(), TextColumn("files"), TimeRemainingColumn()]
    else:
        columns += [MofNCompleteColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    progress = Progress(*columns, console=console or Console(stderr=True), transient=transient, auto_refresh=False)
    task = progress.add_task("", total=total)
    with progress:
        yield Bar(progress, task)
