"""The seed's keys beside the hub's in ``--errors-summary`` and ``--stats`` JSON.

Scripts written against the seed's ``scripts/query_logs.py`` read ``total_errors``,
``by_task`` and friends from its JSON. The hub's summaries keep their own shape and gain
those keys, with two differences on purpose (README "Coming from the seed's
orchestrator"): the counts are the database's, exact for the window instead of counted
from at most 1,000 fetched rows, and an error is ERROR *or* CRITICAL. A seed key the hub
already uses with another shape (``by_worker``, a list here) keeps the hub's shape.

- ``--errors-summary``: ``total_errors`` (= ``total``); ``by_task`` as
  ``{task_id: count}`` for the top tasks (the same ``--limit`` as the other lists), with
  ``distinct_tasks`` saying how many there were (``func_log_errors_by_task``).
- ``--stats``: ``total_logs`` (= ``total``), ``total_errors`` (= ``errors``) and
  ``by_source_type`` as ``{source_type: count}``. No ``by_task``: counting tasks means
  reading every row of the window, which the statistics never do.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.db.calls import CallExecutor
from orchestrator.query import calls


def errors_summary_keys(
    db: CallExecutor,
    summary: Mapping[str, Any],
    *,
    since: datetime,
    until: datetime,
    source_type: str | None,
    worker_id: str | None,
    top: int,
) -> dict[str, Any]:
    """The seed's keys for ``summary``, an errors summary of this window and filters."""
    tasks = db.run(
        calls.errors_by_task(since, until, source_type=source_type, worker_id=worker_id, top=top)
    )
    return {
        "total_errors": summary["total"],
        "by_task": {entry["task_id"]: entry["count"] for entry in tasks.by_task},
        "distinct_tasks": tasks.distinct_tasks,
    }


def stats_keys(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The seed's keys for statistics (``by_source`` covers every source: exact sums)."""
    by_source_type: dict[str, int] = {}
    for source in stats["by_source"]:
        kind = source["source_type"]
        by_source_type[kind] = by_source_type.get(kind, 0) + int(source["count"])
    return {
        "total_logs": stats["total"],
        "total_errors": stats["errors"],
        "by_source_type": by_source_type,
    }
