"""The dashboard app: header, error sparkline, status line, live tail, key bindings.

Every database question goes to the :class:`~orchestrator.dashboard.poller.Poller`
thread; its answers come back as messages, so the UI keeps answering keys while the
database is slow or down. The tail reads only rows after the last one shown (keyset
on ``("timestamp", id)``); a failed refresh leaves the screen as it was and is retried
with a growing delay, from the same cursor, so nothing is skipped or shown twice.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Footer

from orchestrator.dashboard.calls import DashboardSummary
from orchestrator.dashboard.poller import Poller, PollRequest, PollResult
from orchestrator.dashboard.render import render_row
from orchestrator.dashboard.source import TailSource
from orchestrator.dashboard.state import Backoff, TailFilter, TailState, next_min_level
from orchestrator.dashboard.widgets import (
    ErrorTrend,
    FilterPrompt,
    HeaderBar,
    StatusBar,
    TailLog,
)

TYPING_KEYS_ACTIONS = {"quit", "toggle_pause", "prompt", "cycle_level", "clear_filters", "follow"}
PROMPTS = {"search": "search text", "source_type": "source type", "worker_id": "worker id"}


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """How the dashboard runs (the command's flags)."""

    filter: TailFilter = field(default_factory=TailFilter)
    refresh: float = 5.0
    initial_rows: int = 200
    scrollback: int = 5000
    delay: float = 5.0
    max_backoff: float = 30.0
    page_rows: int = 500
    window_minutes: int = 60


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
    TailLog { height: 1fr; border: none; padding: 0 0 0 1; }
    """
    # Priority bindings run as the key arrives, so keys typed right after "/" already
    # find the prompt open; while it is open, check_action turns them off and they
    # reach the prompt as text. Ctrl-C quits in every case.
    BINDINGS = [
        Binding("q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True),
        Binding("space", "toggle_pause", "Pause", priority=True),
        Binding("slash", "prompt('search')", "Search", priority=True),
        Binding("l", "cycle_level", "Level", priority=True),
        Binding("s", "prompt('source_type')", "Source", priority=True),
        Binding("w", "prompt('worker_id')", "Worker", priority=True),
        Binding("c", "clear_filters", "Clear", priority=True),
        Binding("G", "follow", "Live", priority=True),
    ]

    def __init__(self, source: TailSource, options: DashboardOptions | None = None) -> None:
        super().__init__()
        self.options = options or DashboardOptions()
        self.state = TailState(self.options.filter)
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
        self.tail = TailLog(max_lines=self.options.scrollback, wrap=True, min_width=20, id="tail")
        self.prompt = FilterPrompt(id="prompt")
        yield from (self.header, self.trend, self.status, self.tail, self.prompt, Footer())

    def on_mount(self) -> None:
        self.header.show(None)
        self.tail.focus()
        self._poller.start()
        self.set_interval(min(self.options.refresh, 0.5), self._tick)
        self._tick()

    def on_unmount(self) -> None:
        self._poller.stop(timeout=1.0)

    # -- the refresh loop ---------------------------------------------------------

    def _widgets_gone(self) -> bool:
        """True once the tail left the screen (the app is closing)."""
        return not self.tail.is_attached

    def _tick(self) -> None:
        """Sends the next refresh when it is due and none is under way."""
        if self._widgets_gone():
            return
        if not self._in_flight and time.monotonic() >= self._next_poll:
            self._in_flight = True
            self._poller.submit(
                PollRequest(
                    generation=self.state.generation,
                    filter=self.state.filter,
                    cursor=self.state.cursor,
                    filled=self.state.filled,
                    tail=not self.state.paused or not self.state.filled,
                    initial_limit=min(self.options.initial_rows, self.options.scrollback),
                    page_limit=self.options.page_rows,
                    max_rows=self.options.scrollback,
                    delay=self.options.delay,
                    window_minutes=self.options.window_minutes,
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
        log = self.tail
        for row in result.rows:
            log.write(render_row(row), scroll_end=not self.state.paused)
        self.rows_shown += len(result.rows)
        self.rows_read += len(result.rows)
        self.state.cursor = result.cursor
        self.state.filled = result.filled
        if result.summary is not None:
            self.summary = result.summary
            self.header.show(result.summary)
            self.trend.show(result.summary.errors_per_minute)
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
            line.append("PAUSED", style="bold yellow")
            line.append(" space/G: live")
        else:
            line.append("LIVE", style="bold green")
        # Plain Text, never markup: a filter may hold any characters, "[" included.
        line.append(f" | {self.state.filter.describe()} | {self.rows_shown} rows")
        status.set_class(self.error is not None, "-problem")
        status.update(line)

    # -- keys ---------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The single-letter keys are text while the filter prompt is open."""
        return not (action in TYPING_KEYS_ACTIONS and self._prompt_open())

    def _prompt_open(self) -> bool:
        prompt = getattr(self, "prompt", None)
        return prompt is not None and bool(prompt.display)

    def action_interrupt(self) -> None:
        """Ctrl-C: leave cleanly, as ``q`` does."""
        self.exit(0)

    def action_toggle_pause(self) -> None:
        """Space: pause the tail, or resume it (catching up from where it stopped)."""
        if self.state.paused:
            self.action_follow()
        else:
            self.pause()

    def pause(self) -> None:
        """Stops appending and scrolling; the header keeps refreshing."""
        self.state.paused = True
        self.tail.auto_scroll = False
        self._show_status()

    def action_follow(self) -> None:
        """``G``/``end``: back to the newest line, live again."""
        log = self.tail
        self.state.paused = False
        log.auto_scroll = True
        log.scroll_end(animate=False)
        self.refresh_now()

    def on_tail_log_scrolled_up(self, message: TailLog.ScrolledUp) -> None:
        if not self.state.paused:
            self.pause()

    def on_tail_log_follow_requested(self, message: TailLog.FollowRequested) -> None:
        self.action_follow()

    def action_cycle_level(self) -> None:
        """``l``: all, then INFO, WARNING, ERROR, CRITICAL and up, then all again."""
        self.apply_filter(
            self.state.filter.with_(min_level=next_min_level(self.state.filter.min_level))
        )

    def action_prompt(self, field_name: str) -> None:
        """``/``, ``s``, ``w``: ask for a search text, a source type, a worker id."""
        current = getattr(self.state.filter, field_name)
        self.prompt.open(field_name, PROMPTS[field_name], current)

    def on_filter_prompt_chosen(self, message: FilterPrompt.Chosen) -> None:
        if message.value is not None:
            self.apply_filter(self.state.filter.with_(**{message.field: message.value or None}))

    def action_clear_filters(self) -> None:
        """``c``: every filter off."""
        self.apply_filter(TailFilter())

    def apply_filter(self, new: TailFilter) -> None:
        """Restarts the tail under ``new``: the view is cleared and filled afresh."""
        if not self.state.change_filter(new):
            return
        self.tail.clear()
        self.rows_shown = 0
        self.refresh_now()
