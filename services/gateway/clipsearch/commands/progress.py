"""The progress display of jobs (ingest, migrate), fed by the jobs' server-sent events: a
``rich`` bar with rate and ETA on a terminal, plain lines (at most one a second) when the
output is a pipe or a file, so logs stay readable."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from clipsearch.client import JobView

PLAIN_EVERY_S = 1.0


def interactive() -> bool:
    """A bar only when a person watches: stdout and stderr both terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class IngestProgress:
    """Progress over ``total`` items of several jobs; :meth:`update` with each job's view.
    ``label`` names the work (``ingest``, ``migrate``), ``unit`` its rate."""

    def __init__(
        self,
        total: int,
        *,
        bar: bool | None = None,
        console: Console | None = None,
        out: IO[str] | None = None,
        label: str = "ingest",
        unit: str = "img/s",
    ) -> None:
        self.total = total
        self.label, self.unit = label, unit
        self.out = out or sys.stderr
        self._done: dict[str, int] = {}
        self._failed: dict[str, int] = {}
        self._started = time.monotonic()
        self._last_line = 0.0
        self._bar = None
        if bar if bar is not None else interactive():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]:.1f} " + unit),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console or Console(file=self.out),
            )
            self._task = self._bar.add_task(label, total=total, rate=0.0, failed=0)

    def __enter__(self) -> IngestProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    @property
    def done(self) -> int:
        return sum(self._done.values())

    def update(self, view: JobView, *, final: bool = False) -> None:
        counts = view["counts"]
        self._done[view["job_id"]] = counts["total"] - counts["pending"]
        self._failed[view["job_id"]] = counts["failed"]
        done, failed = self.done, sum(self._failed.values())
        rate = done / max(time.monotonic() - self._started, 1e-6)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, rate=rate, failed=failed)
            return
        now = time.monotonic()
        if not final and now - self._last_line < PLAIN_EVERY_S:
            return
        self._last_line = now
        left = self.total - done
        eta = f"{left / rate:.0f} s" if rate > 0 and left else "-"
        print(
            f"{self.label}: {done}/{self.total} done, {failed} failed, "
            f"{rate:.1f} {self.unit}, ETA {eta}",
            file=self.out,
            flush=True,
        )
