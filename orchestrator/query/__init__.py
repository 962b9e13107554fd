"""Reading logs back: filters, keyset pages and summaries, computed in the database.

The same functions serve ``orchestrator logs``, the dashboard and your own code, over
psycopg or Supabase REST (see :func:`orchestrator.db.executor.open_executor`)::

    with open_executor(get_settings()) as db:
        page = query_logs(db, LogFilter(worker_id="gpu-1", min_level="WARNING"), limit=50)
        for row in iter_logs(db, LogFilter(task_id=task)):
            ...
"""

from orchestrator.errors import QueryInputError
from orchestrator.query.model import Cursor, ErrorsSummary, LogFilter, LogPage, LogRow
from orchestrator.query.reading import iter_logs, iter_pages, query_logs

__all__ = [
    "Cursor",
    "ErrorsSummary",
    "LogFilter",
    "LogPage",
    "LogRow",
    "QueryInputError",
    "iter_logs",
    "iter_pages",
    "query_logs",
]
