"""Reading logs page by page: one page (:func:`query_logs`) or every row in constant
memory (:func:`iter_logs`, :func:`iter_pages`), over any executor.

Pages are bounded by their row limit and chained by keyset cursors, never by OFFSET, so
a REST gateway's row cap never cuts a result and a deep page costs what the first does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator

from orchestrator.db.calls import Call, CallExecutor
from orchestrator.query import calls
from orchestrator.query.model import Cursor, LogFilter, LogPage, LogRow


def query_logs(
    executor: CallExecutor,
    filter: LogFilter,
    *,
    after: Cursor | None = None,
    limit: int = 100,
    newest_first: bool = False,
    except_ids: Collection[str] | None = None,
) -> LogPage:
    """One page of the logs matching ``filter``, strictly after ``after``, without the
    rows of ``except_ids``."""
    return executor.run(
        calls.query_logs(
            filter, after=after, limit=limit, newest_first=newest_first, except_ids=except_ids
        )
    )


def iter_pages(
    executor: CallExecutor,
    page_call: Callable[[Cursor | None], Call[LogPage]],
    *,
    after: Cursor | None = None,
) -> Iterator[LogPage]:
    """Every page of a paged read, each asked for with the previous page's ``next``.

    ``page_call(cursor)`` builds the call of one page (query, task or worker timeline).
    Only one page is held at a time.
    """
    cursor = after
    while True:
        page = executor.run(page_call(cursor))
        yield page
        if not page.more or page.next is None:
            return
        cursor = page.next


def iter_logs(
    executor: CallExecutor,
    filter: LogFilter,
    *,
    after: Cursor | None = None,
    page_size: int = 1000,
    newest_first: bool = False,
) -> Iterator[LogRow]:
    """Every row matching ``filter`` (after ``after``), page by page in constant memory."""

    def page(cursor: Cursor | None) -> Call[LogPage]:
        return calls.query_logs(filter, after=cursor, limit=page_size, newest_first=newest_first)

    for one in iter_pages(executor, page, after=after):
        yield from one.rows
