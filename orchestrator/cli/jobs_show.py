"""Printing jobs for people: tables of rows, and one job with its events and approval."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tabulate import tabulate

from orchestrator.cli.logs_render import RowWriter, clock_text, use_color
from orchestrator.db.calls import CallExecutor
from orchestrator.jobs.views import JobDetail
from orchestrator.query.calls import task_timeline
from orchestrator.query.reading import iter_pages


def plain(value: Any) -> Any:
    """Dataclasses (the decoders' results) as dicts, recursively; everything else as is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def cell(value: Any, width: int = 60) -> str:
    """One table cell: times as every text output prints them (``clock_text``), JSON
    compact, long text cut."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return clock_text(value)
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        try:
            return clock_text(value)
        except ValueError:
            pass
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str = "(no jobs)"
) -> None:
    """A table of ``columns`` (missing keys as blanks), or ``empty`` when there are none."""
    if not rows:
        print(empty)
        return
    print(tabulate([[cell(row.get(c)) for c in columns] for row in rows], headers=list(columns)))


JOB_FIELDS = (
    "job_id",
    "status",
    "user_id",
    "organization_id",
    "job_type",
    "provider",
    "priority",
    "attempts",
    "max_attempts",
    "estimated_cost",
    "submitted_at",
    "started_at",
    "finished_at",
    "error",
)


def print_job(detail: JobDetail) -> None:
    """The job's fields, payload and result, queue entry, approval request and events."""
    job = plain(detail.job)
    fields = [(name, cell(job.get(name), 100)) for name in JOB_FIELDS]
    fields += [("payload", cell(detail.payload, 100)), ("result", cell(detail.result, 100))]
    print(tabulate(fields, tablefmt="plain"))
    for title, section in (("Queue entry", detail.queue), ("Approval", detail.approval_request)):
        if section:
            print(f"\n{title}:")
            print(tabulate([(k, cell(v, 100)) for k, v in section.items()], tablefmt="plain"))
    print_upload_progress(detail.upload_progress)
    print(f"\nEvents ({len(detail.events)}):")
    columns = ["created_at", "event_type", "from_status", "to_status", "worker_id", "details"]
    events = [plain(event) for event in detail.events]
    if events:
        print(tabulate([[cell(e.get(c)) for c in columns] for e in events], headers=columns))


def print_upload_progress(progress: Mapping[str, Any] | None) -> None:
    """The job's uploads to the S3 endpoint: objects and bytes stored, multipart uploads
    still in flight (key, parts received, bytes); nothing when it uploaded nothing."""
    if not progress or not (progress.get("objects") or progress.get("in_progress")):
        return
    print(
        f"\nUploads: {progress.get('objects', 0)} object(s), {progress.get('bytes', 0)} bytes"
        + (
            f", last at {cell(progress.get('last_upload_at'))}"
            if progress.get("last_upload_at")
            else ""
        )
    )
    flight = list(progress.get("in_progress") or [])
    if flight:
        columns = ["key", "parts", "bytes", "started_at"]
        print(f"In progress ({len(flight)}):")
        print(tabulate([[cell(p.get(c)) for c in columns] for p in flight], headers=columns))


def print_timeline(executor: CallExecutor, job_id: str) -> None:
    """The task's log rows (task_id = job id), oldest first, every page, as ``orchestrator
    logs --task-timeline`` prints them."""
    print(f"\nLog timeline of task {job_id}:")
    writer = RowWriter(sys.stdout, "table", color=use_color("auto", sys.stdout))
    for page in iter_pages(executor, lambda cursor: task_timeline(job_id, after=cursor)):
        writer.write(page.rows)
    writer.close()
    if writer.count == 0:
        print("(no log rows yet: a worker ships them with its heartbeat)")
