"""``orchestrator logs --follow``: a live tail that keeps every filter and outlives outages.

Each poll reads only rows after the newest one printed (keyset on time and id), minus a
lag window of :data:`LAG` (:class:`~orchestrator.query.tailing.LagWindow`, the
dashboard's rule too): log handlers ship in batches, so a row stamped a few seconds ago
can arrive after a newer one from another worker. Rows of the lag window already
printed are skipped by id. A row that arrives later than that is not shown by the tail
(it is in the store; query the window to see it).

When the database goes away the tail says so on one line, retries with backoff (1 s
doubling to 30 s) and says so again when it is back; it never exits for an outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TextIO

from orchestrator.cli.logs_render import RowWriter
from orchestrator.db.calls import CallExecutor
from orchestrator.errors import DatabaseUnavailable
from orchestrator.query import calls
from orchestrator.query.model import Cursor, LogFilter, LogRow
from orchestrator.query.reading import iter_pages, query_logs
from orchestrator.query.tailing import LagWindow

LAG = timedelta(seconds=30)
MAX_BACKOFF = 30.0


class Tail:
    """A tail's :class:`~orchestrator.query.tailing.LagWindow` and where it prints."""

    def __init__(self, writer: RowWriter, after: Cursor | None = None) -> None:
        self.writer = writer
        self.window = LagWindow(LAG, after)

    def start(self) -> Cursor | None:
        """Where the next poll begins: the lag window before the newest row printed."""
        return self.window.start()

    def emit(self, rows: Iterable[LogRow]) -> None:
        """Prints the rows not printed yet and remembers them for the lag window."""
        fresh = self.window.admit(rows)
        if fresh:
            self.writer.write_lines(fresh)


def follow(
    db: CallExecutor,
    flt: LogFilter,
    writer: RowWriter,
    err: TextIO,
    *,
    backlog: int,
    interval: float,
    after: Cursor | None = None,
    sleep: Callable[[float], None] = time.sleep,
    polls: int | None = None,
) -> int:
    """Prints the last ``backlog`` rows (or those after ``after``), then new rows forever.

    ``polls`` bounds the loop for tests; the command runs until interrupted. The first
    read is not retried: a database that is unreachable from the start is a setting to
    fix, reported like any other command's.
    """
    tail = Tail(writer, after)
    if after is None:
        page = query_logs(db, flt, limit=backlog, newest_first=True)
        tail.emit(reversed(page.rows))
    else:
        _poll(db, flt, tail)
    backoff, down, done = 1.0, False, 0
    while polls is None or done < polls:
        sleep(interval)
        done += 1
        try:
            _poll(db, flt, tail)
        except DatabaseUnavailable as error:
            if not down:
                err.write(f"orchestrator: {error}; retrying (backoff up to 30 s)\n")
                err.flush()
                down = True
            sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        if down:
            err.write("orchestrator: database reachable again; following\n")
            err.flush()
            down, backoff = False, 1.0
    return 0


def _poll(db: CallExecutor, flt: LogFilter, tail: Tail) -> None:
    start = tail.start()
    shown = tail.window.shown_since(start)
    for page in iter_pages(
        db,
        lambda cur: calls.query_logs(flt, after=cur, limit=1000, except_ids=shown),
        after=start,
    ):
        tail.emit(page.rows)
