"""The dashboard app: header, error sparkline, status line, live tail, key bindings, and
the screens an investigation opens (a row's detail, timelines, jobs).

Every database question goes to the :class:`~orchestrator.dashboard.poller.Poller`
thread; its answers come back as messages, so the UI keeps answering keys while the
database is slow or down. Each refresh reads the tail from the lag window before the
newest row shown (:class:`~orchestrator.query.tailing.LagWindow`, as ``logs -f``
does): new rows show within one refresh, and a row that reached the database a few
seconds late still shows, once. A failed refresh leaves the screen as it was and is
retried with a growing delay, from the same place, so nothing is skipped or doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from datetime import timedelta

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer

from orchestrator.dashboard.calls import DashboardSummary
from orchestrator.dashboard.poller import Poller, PollRequest, PollResult
from orchestrator.dashboard.screens import JobsScreen, RowDetail
from orchestrator.dashboard.source import TailSource
from orchestrator.dashboard.state import (
    Backoff,
    TailFilter,
    TailState,
    next_min_level,
)
from orchestrator.dashboard.tailview import TailView
from orchestrator.dashboard.widgets import ErrorTrend, FilterPrompt, HeaderBar, StatusBar
from orchestrator.errors import QueryInputError

TAIL_ACTIONS = {
    "quit", "toggle_pause", "prompt", "cycle_level", "toggle_exact", "clear_filters",
    "follow",
}  # fmt: skip
PROMPTS = {
    "search": "search text",
    "source_type": "source type",
    "worker_id": "worker id",
    "task_id": "task id (a UUID)",
}


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """How the dashboard runs (the command's flags)."""

    filter: TailFilter = field(default_factory=TailFilter)
    refresh: float = 2.0
    initial_rows: int = 200
    scrollback: int = 5000
    delay: float = 0.0
    lag: float = 10.0
    max_backoff: float = 30.0
    page_rows: int = 500
    window_minutes: int = 60
    recent_jobs: int = 10


class PollArrived(Message):
    """The poller's answer to one refresh."""

    def __init__(self, result: PollResult) -> None:
        super().__init__()
        self.result = result


class DashboardApp(App[int]):
    """``orchestrator dashboard``: a live, filterable tail of the log store."""

    TITLE = "orchestrator dashboard"
    ENABLE_COMMAND_PALETTE = False  # its footer entry would crowd the keys at 80 columns
    CSS = """
    Screen { layout: vertical; }
    """
    # Priority bindings run as the key arrives, so keys typed right after "/" already
    # find the prompt open; while it is open, or another screen is shown, check_action
    # turns them off and they reach the prompt (or that screen). Ctrl-C quits always.
    BINDINGS = [
        Binding("q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True),
        Binding("space", "toggle_pause", "Pause", priority=True),
        Binding("slash", "prompt('search')", "Search", priority=True),
        Binding("l", "cycle_level", "Level", priority=True),
        Binding("L", "toggle_exact", "Exact", priority=True),
        Binding("s", "prompt('source_type')", "Source", priority=True),
        Binding("w", "prompt('worker_id')", "Worker", priority=True),
        Binding("t", "prompt('task_id')", "Task", priority=True),
        Binding("c", "clear_filters", "Clear", priority=True),
        Binding("j", "jobs", "Jobs", priority=True),
        Binding("G", "follow", "Live", priority=True),
    ]

    def __init__(self, source: TailSource, options: DashboardOptions | None = None) -> None:
        super().__init__()
        self.options = options or DashboardOptions()
        self.state = TailState(
            self.options.filter,
            lag=timedelta(seconds=self.options.lag),
            max_pending=self.options.scrollback,
        )
        self.backoff = Backoff(base=self.options.refresh, cap=self.options.max_backoff)
        self.summary: DashboardSummary | None = None
        self.error: str | None = None
        self.rows_shown = 0
        self.rows_read = 0
        self._source = source
        self._poller = Poller(source, lambda result: self.post_message(PollArrived(result)))
        self._in_flight = False
        self._next_poll = 0.0

    def compose(self) -> ComposeResult:
        # Held, not queried: a timer or an answer arriving while the app closes must
        # find them even after they left the screen.
        self.header = HeaderBar(id="header")
        self.trend = ErrorTrend(id="errors")
        self.status = StatusBar(id="status")
        self.tail = TailView(max_rows=self.options.scrollback, id="tail")
        self.prompt = FilterPrompt(id="prompt")
        yield from (self.header, self.trend, self.status, self.tail, self.prompt, Footer())

    def on_mount(self) -> None:
        self.header.show(None)
        self.tail.focus()
        self._poller.start()
        self.set_interval(min(self.options.refresh, 0.5), self._tick)
        self._tick()
        # SIGTERM, and SIGHUP when its terminal is closed: quit as q does, so the
        # command's cleanup runs (an embedded server it started is stopped), instead of
        # dying on the spot and leaving PostgreSQL running.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._stopped_by, signum)

    def _stopped_by(self, signum: int) -> None:
        """SIGTERM or SIGHUP: exit with status 128 + signal, as the other commands do."""
        self.exit(return_code=128 + signum)

    def on_unmount(self) -> None:
        self._poller.stop(timeout=1.0)

    # -- the refresh loop ---------------------------------------------------------

    def _widgets_gone(self) -> bool:
        """True once the tail left the screen (the app is closing)."""
        return not self.tail.is_attached

    def _jobs_screen(self) -> JobsScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, JobsScreen)), None)

    def _tick(self) -> None:
        """Sends the next refresh when it is due and none is under way."""
        if self._widgets_gone():
            return
        if not self._in_flight and time.monotonic() >= self._next_poll:
            self._in_flight = True
            state = self.state
            self._poller.submit(
                PollRequest(
                    generation=state.generation,
                    filter=state.filter,
                    start=state.start,
                    tail=not (state.paused and state.pending_full and state.filled),
                    initial_limit=min(self.options.initial_rows, self.options.scrollback),
                    page_limit=self.options.page_rows,
                    max_rows=self.options.scrollback,
                    delay=self.options.delay,
                    window_minutes=self.options.window_minutes,
                    jobs=self._jobs_screen() is not None,
                    recent=self.options.recent_jobs,
                    known=state.window.known,
                    shown=state.window.shown_since(state.start),
                )
            )
        self._show_status()

    def refresh_now(self) -> None:
        """Asks for a refresh at once (after a filter change or a resume)."""
        self._next_poll = 0.0
        self._tick()

    def on_poll_arrived(self, message: PollArrived) -> None:
        result = message.result
        self._in_flight = False
        if self._widgets_gone():
            return
        if result.generation != self.state.generation:
            self.refresh_now()  # asked under a filter that has changed since
            return
        fresh = self.state.arrived(
            result.rows, filled=result.filled, watermark=result.watermark, cut=result.cut
        )
        self.tail.add_rows(fresh)
        self.rows_shown += len(fresh)
        self.rows_read += len(result.rows)
        if result.summary is not None:
            self.summary = result.summary
            self.header.show(result.summary)
            self.trend.show(result.summary.errors_per_minute)
        jobs = self._jobs_screen()
        if jobs is not None and (result.jobs is not None or result.jobs_error is not None):
            jobs.show(result.jobs, result.jobs_error)
        now = time.monotonic()
        if result.error is not None:
            self.error = result.error
            self._next_poll = now + self.backoff.next_delay()
        else:
            self.error = None
            self.backoff.reset()
            self._next_poll = now if result.more else now + self.options.refresh
        self._show_status()

    def _show_status(self) -> None:
        status = self.status
        if not status.is_attached:
            return
        line = Text()
        if self.error is not None:
            wait = max(0, math.ceil(self._next_poll - time.monotonic()))
            retry = "retrying now" if self._in_flight else f"retrying in {wait}s"
            line.append(f"{self.error}; {retry}", style="bold")
            line.append(" | ")
        if self.state.paused:
            waiting = len(self.state.pending)
            more = "+" if self.state.pending_full else ""
            line.append("PAUSED", style="bold yellow")
            line.append(f" {waiting}{more} new row{'' if waiting == 1 else 's'} waiting",
                        style="yellow")  # fmt: skip
            line.append(" | space/G: live")
        else:
            line.append("LIVE", style="bold green")
        # Plain Text, never markup: a filter may hold any characters, "[" included.
        line.append(f" | {self.state.filter.describe()} | {self.rows_shown} rows")
        status.set_class(self.error is not None, "-problem")
        status.update(line)

    # -- keys ---------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The single-letter keys are text while the filter prompt is open, and belong
        to the screen on top while one is (``j`` also closes the jobs screen)."""
        if action == "jobs":
            return not self._prompt_open() and (
                self.screen is self.screen_stack[0] or isinstance(self.screen, JobsScreen)
            )
        if action in TAIL_ACTIONS:
            return not self._prompt_open() and self.screen is self.screen_stack[0]
        return True

    def _prompt_open(self) -> bool:
        prompt = getattr(self, "prompt", None)
        return prompt is not None and bool(prompt.display)

    def action_interrupt(self) -> None:
        """Ctrl-C: leave cleanly, as ``q`` does."""
        self.exit(0)

    def action_toggle_pause(self) -> None:
        """Space: pause the tail, or resume it (showing what arrived meanwhile)."""
        if self.state.paused:
            self.action_follow()
        else:
            self.pause()

    def pause(self) -> None:
        """Stops appending and scrolling; new rows are read and counted meanwhile."""
        self.state.paused = True
        self.tail.follow = False
        self._show_status()

    def action_follow(self) -> None:
        """``G``/``end``: the rows that waited, then the newest line, live again."""
        waiting = self.state.resume()
        self.tail.go_live()
        self.tail.add_rows(waiting)
        self.rows_shown += len(waiting)
        self.refresh_now()

    def on_tail_view_opened(self, message: TailView.Opened) -> None:
        self.push_screen(RowDetail(message.row, self._poller.fetch))

    def on_tail_view_scrolled_up(self, message: TailView.ScrolledUp) -> None:
        if not self.state.paused:
            self.pause()

    def on_tail_view_follow_requested(self, message: TailView.FollowRequested) -> None:
        self.action_follow()

    def action_jobs(self) -> None:
        """``j``: the jobs screen, or back from it."""
        if isinstance(self.screen, JobsScreen):
            self.pop_screen()
            return
        self.push_screen(JobsScreen(self._poller.fetch))
        self.refresh_now()

    def action_cycle_level(self) -> None:
        """``l``: all, then INFO, WARNING, ERROR, CRITICAL and up, then all again."""
        current = self.state.filter
        self.apply_filter(current.with_(min_level=next_min_level(current.min_level),
                                        exact_level=current.exact_level))  # fmt: skip

    def action_toggle_exact(self) -> None:
        """``L``: the level filter means that level only, or that level and above."""
        current = self.state.filter
        if current.min_level is None:
            self.notify("No level filter yet: press l to choose a level first.")
            return
        self.apply_filter(current.with_(exact_level=not current.exact_level))

    def action_prompt(self, field_name: str) -> None:
        """``/``, ``s``, ``w``, ``t``: ask for a search text, a source type, a worker
        id, a task id."""
        current = getattr(self.state.filter, field_name)
        self.prompt.open(field_name, PROMPTS[field_name], current)

    def on_filter_prompt_chosen(self, message: FilterPrompt.Chosen) -> None:
        if message.value is None:
            return
        try:
            new = self.state.filter.with_(**{message.field: message.value or None})
        except QueryInputError as error:
            self.notify(str(error), severity="error", timeout=8)
            return
        self.apply_filter(new)

    def action_clear_filters(self) -> None:
        """``c``: every filter off."""
        self.apply_filter(TailFilter())

    def apply_filter(self, new: TailFilter) -> None:
        """Restarts the tail under ``new``: the view is cleared and filled afresh."""
        if not self.state.change_filter(new):
            return
        self.tail.clear()
        self.tail.go_live()
        self.rows_shown = 0
        self.refresh_now()
