"""The dashboard's screens beyond the live tail: one row's detail, a task's or a
worker's timeline, and the jobs overview.

An investigation goes tail -> Enter (the row, whole) -> ``t`` or ``w`` (its task's
whole life, or its worker around that moment) -> Enter on another row -> ... and Esc
walks back. Every read runs on the poller's thread (:class:`~.poller.Fetch`), so a
slow database never freezes the keys.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from orchestrator.dashboard.calls import JobsOverview
from orchestrator.dashboard.poller import Fetch
from orchestrator.dashboard.render import clock, render_detail
from orchestrator.dashboard.source import TailSource
from orchestrator.dashboard.tailview import TailView
from orchestrator.query import LogPage, LogRow

TIMELINE_ROWS = 2000
WORKER_SPAN = timedelta(minutes=30)  # a worker's timeline: this long before and after

Fetcher = Callable[[Fetch], None]


class RowDetail(Screen[None]):
    """Every column of one row, its whole message, exception and metadata."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("t", "task", "Task timeline"),
        Binding("w", "worker", "Worker timeline"),
    ]
    DEFAULT_CSS = """
    RowDetail #detail-title { height: 1; background: $panel; padding: 0 1; }
    RowDetail VerticalScroll { padding: 0 1; }
    """

    def __init__(self, row: LogRow, fetch: Fetcher) -> None:
        super().__init__()
        self.row, self._fetch = row, fetch

    def compose(self) -> ComposeResult:
        yield Static(Text(f"log row {self.row.id}", style="bold"), id="detail-title")
        with VerticalScroll():
            yield Static(render_detail(self.row), id="detail")
        yield Footer()

    def action_task(self) -> None:
        """``t``: the whole life of the row's task."""
        if self.row.task_id is None:
            self.notify("This row belongs to no task.", severity="warning")
            return
        self.app.push_screen(Timeline.of_task(self.row.task_id, self.row, self._fetch))

    def action_worker(self) -> None:
        """``w``: the row's worker, half an hour either side of the row."""
        worker = self.row.worker_id or (
            self.row.source_id if self.row.source_type == "worker" else None
        )
        if worker is None:
            self.notify("This row comes from no worker.", severity="warning")
            return
        self.app.push_screen(Timeline.of_worker(worker, self.row, self._fetch))


class Timeline(Screen[None]):
    """A task's or a worker's rows, oldest first, the cursor on the row we came from."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    Timeline #timeline-title { height: 1; background: $panel; padding: 0 1; }
    """

    def __init__(
        self, title: str, read: Callable[[TailSource], LogPage], origin: LogRow, fetch: Fetcher
    ) -> None:
        super().__init__()
        self.title_text, self._read, self.origin, self._fetch = title, read, origin, fetch
        self.page: LogPage | None = None
        self.error: str | None = None

    @classmethod
    def of_task(cls, task_id: str, origin: LogRow, fetch: Fetcher) -> Timeline:
        """The task's whole life (``func_task_timeline``)."""
        title = f"task {task_id}, its whole life"
        return cls(
            title, lambda source: source.task_timeline(task_id, TIMELINE_ROWS), origin, fetch
        )

    @classmethod
    def of_worker(cls, worker_id: str, origin: LogRow, fetch: Fetcher) -> Timeline:
        """The worker from 30 minutes before the row to 30 minutes after it."""
        since, until = origin.timestamp - WORKER_SPAN, origin.timestamp + WORKER_SPAN
        title = f"worker {worker_id}, {clock(since)} to {clock(until)} (UTC)"
        return cls(title, lambda source: source.worker_timeline(
            worker_id, since, until, TIMELINE_ROWS), origin, fetch)  # fmt: skip

    def compose(self) -> ComposeResult:
        self.heading = Static(Text(f"{self.title_text}: reading...", style="bold"),
                              id="timeline-title")  # fmt: skip
        self.view = TailView(max_rows=TIMELINE_ROWS, id="timeline")
        self.view.follow = False
        yield self.heading
        yield self.view
        yield Footer()

    class Arrived(Message):
        """The poller's answer (posted from its thread: post_message is thread-safe)."""

        def __init__(self, result: object | None, error: str | None) -> None:
            super().__init__()
            self.result, self.error = result, error

    def on_mount(self) -> None:
        self.view.focus()
        self._fetch(Fetch(self._read, lambda result, error: self.post_message(
            self.Arrived(result, error))))  # fmt: skip

    def on_timeline_arrived(self, message: Arrived) -> None:
        self.arrived(message.result, message.error)

    def arrived(self, result: object | None, error: str | None) -> None:
        """The timeline's rows (or why there are none)."""
        if error is not None or not isinstance(result, LogPage):
            self.error = error or "no answer"
            self.heading.update(Text(f"{self.title_text}: {self.error}", style="bold red"))
            return
        self.page = result
        self.view.add_rows(result.rows)
        more = f"; the first {len(result.rows)} shown, more exist" if result.more else ""
        self.heading.update(Text(f"{self.title_text}: {len(result.rows)} rows{more}", style="bold"))
        if not self.view.select(self.origin.id) and result.rows:
            self.view.select(result.rows[0].id)

    def on_tail_view_opened(self, message: TailView.Opened) -> None:
        message.stop()  # this screen's row, not the live tail's
        self.app.push_screen(RowDetail(message.row, self._fetch))

    def on_tail_view_scrolled_up(self, message: TailView.ScrolledUp) -> None:
        message.stop()  # nothing to pause here

    def on_tail_view_follow_requested(self, message: TailView.FollowRequested) -> None:
        message.stop()
        if self.view.rows:
            self.view.select(self.view.rows[-1].id)


class JobsScreen(Screen[None]):
    """Queued and running jobs, running per worker, approvals waiting, recent failures
    (refreshed with the header); Enter on a failure opens its task's timeline."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    JobsScreen #jobs-counts { height: 1; background: $panel; padding: 0 1; }
    JobsScreen .jobs-title { height: 1; padding: 0 1; text-style: bold; }
    JobsScreen DataTable { height: auto; max-height: 12; }
    """

    def __init__(self, fetch: Fetcher) -> None:
        super().__init__()
        self._fetch = fetch
        self.overview: JobsOverview | None = None

    def compose(self) -> ComposeResult:
        self.counts = Static("jobs: reading...", id="jobs-counts")
        self.failures: DataTable[str] = DataTable(id="failures", cursor_type="row")
        self.running: DataTable[str] = DataTable(id="running", cursor_type="row")
        self.approvals: DataTable[str] = DataTable(id="approvals", cursor_type="row")
        yield self.counts
        with VerticalScroll():
            yield Static("Recent failures (Enter: the task's timeline)", classes="jobs-title")
            yield self.failures
            yield Static("Running, per worker", classes="jobs-title")
            yield self.running
            yield Static("Awaiting approval (soonest deadline first)", classes="jobs-title")
            yield self.approvals
        yield Footer()

    def on_mount(self) -> None:
        self.failures.add_columns("finished", "job", "user", "type", "attempts", "error")
        self.running.add_columns("worker", "running", "since", "jobs")
        self.approvals.add_columns("expires", "request", "job", "by", "type", "cost")
        self.failures.focus()

    def show(self, overview: JobsOverview | None, error: str | None) -> None:
        """The latest numbers (or why there are none)."""
        if overview is None:
            self.counts.update(Text(f"jobs: {error}", style="bold red"))
            return
        self.overview = overview
        self.counts.update(
            Text.assemble(
                ("queued ", "dim"), (str(overview.queued), "bold"),
                ("  running ", "dim"), (str(overview.running), "bold"),
                ("  awaiting approval ", "dim"), (str(overview.awaiting_approval), "bold"),
            )
        )  # fmt: skip
        _fill(self.failures, [
            (_when(f.get("finished_at")), f["job_id"], f["user_id"], f["job_type"],
             str(f["attempts"]), f.get("error") or "")
            for f in overview.recent_failures
        ], keys=[f["job_id"] for f in overview.recent_failures])  # fmt: skip
        _fill(self.running, [
            (w["worker_id"], str(w["running"]), _when(w.get("since")),
             ", ".join(j[:8] for j in w["job_ids"]))
            for w in overview.running_by_worker
        ])  # fmt: skip
        _fill(self.approvals, [
            (_when(a["expires_at"]), a["request_id"], a["job_id"], a["requested_by"],
             a["job_type"], "" if a.get("estimated_cost") is None else str(a["estimated_cost"]))
            for a in overview.approvals
        ])  # fmt: skip

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is not self.failures or event.row_key.value is None:
            return
        job_id = str(event.row_key.value)
        origin = _placeholder(job_id)
        self.app.push_screen(Timeline.of_task(job_id, origin, self._fetch))


def _when(value: object) -> str:
    if not value:
        return ""
    return clock(datetime.fromisoformat(str(value)))


def _fill(
    table: DataTable[str], rows: list[tuple[str, ...]], keys: list[str] | None = None
) -> None:
    """Replaces a table's rows, keeping the cursor where it was."""
    at = table.cursor_row
    table.clear()
    for i, row in enumerate(rows):
        table.add_row(*row, key=None if keys is None else keys[i])
    if rows:
        table.move_cursor(row=min(at, len(rows) - 1))


def _placeholder(job_id: str) -> LogRow:
    """A row standing for "the start of the task" when a timeline is opened from a job."""
    now = datetime.now(UTC)
    return LogRow(id="", timestamp=now, observed_at=now, source_type="", source_id="",
                  log_level="INFO", severity_number=9, logger_name=None, message="",
                  task_id=job_id, worker_id=None, cycle_number=None, correlation_id=None,
                  exception=None)  # fmt: skip
