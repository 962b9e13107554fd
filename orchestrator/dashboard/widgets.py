"""The dashboard's pieces: the header numbers, the error sparkline, the status line
and the one-line filter prompt (the tail is :mod:`orchestrator.dashboard.tailview`)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Sparkline, Static

from orchestrator.dashboard.calls import DashboardSummary


def summary_text(summary: DashboardSummary | None) -> Text:
    """``logs/min 42.0 | errors 2.4% | workers 3 | queue 5`` (queue only once it exists)."""
    if summary is None:
        return Text("logs/min -  errors -  workers -", style="dim")
    text = Text()
    text.append("logs/min ", style="dim")
    text.append(f"{summary.logs_per_minute:g}", style="bold")
    text.append("  errors ", style="dim")
    rate = f"{summary.error_rate * 100:.1f}%"
    text.append(rate, style="bold red" if summary.error_rate > 0 else "bold")
    text.append("  workers ", style="dim")
    text.append(str(summary.active_workers), style="bold")
    if summary.queue_depth is not None:
        text.append("  queue ", style="dim")
        text.append(str(summary.queue_depth), style="bold")
    return text


class HeaderBar(Static):
    """Rates of the last 5 minutes; the sparkline below shows errors per minute."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; background: $panel; padding: 0 1; }
    """

    def show(self, summary: DashboardSummary | None) -> None:
        """Shows the latest numbers."""
        self.update(summary_text(summary))


class ErrorTrend(Horizontal):
    """A label and a sparkline of errors per minute over the last hour, oldest left."""

    DEFAULT_CSS = """
    ErrorTrend { height: 1; background: $panel; padding: 0 1; }
    ErrorTrend Label { width: auto; color: $text-muted; }
    ErrorTrend Sparkline { width: 1fr; height: 1; }
    ErrorTrend Sparkline > .sparkline--max-color { color: $error; }
    ErrorTrend Sparkline > .sparkline--min-color { color: $success 40%; }
    """

    def compose(self) -> ComposeResult:
        self.label = Label("errors/min, 1 h: -", id="trend-label")
        # Textual draws one value as a full bar and no value as a floor line: with
        # nothing to plot, the sparkline is not drawn at all.
        self.sparkline = Sparkline([], id="trend")
        self.sparkline.display = False
        yield self.label
        yield self.sparkline

    def show(self, per_minute: tuple[int, ...]) -> None:
        """Plots the buckets (the label carries the hour's peak); an hour without a
        single error shows no bar at all, and says so."""
        if not any(per_minute):
            self.sparkline.display = False
            self.sparkline.data = []
            self.label.update("errors/min, 1 h: none")
            return
        self.sparkline.data = [float(n) for n in per_minute]
        self.sparkline.display = True
        self.label.update(f"errors/min, 1 h (max {max(per_minute)}) ")


class StatusBar(Static):
    """LIVE or PAUSED, the filter in force, and the database's health."""

    DEFAULT_CSS = """
    StatusBar { height: 1; padding: 0 1; background: $boost; }
    StatusBar.-problem { background: $error 30%; height: auto; max-height: 3; }
    """


class FilterPrompt(Input):
    """A one-line prompt for a filter value; Enter applies it, Escape cancels, an
    empty value clears that filter."""

    DEFAULT_CSS = """
    FilterPrompt { padding: 0 1; display: none; }
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    class Chosen(Message):
        """A filter value the user entered (None: cancelled)."""

        def __init__(self, field: str, value: str | None) -> None:
            super().__init__()
            self.field = field
            self.value = value

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(compact=True, id=id)
        self.field_name = ""
        self._return_focus: Widget | None = None

    def open(self, field: str, label: str, current: str | None) -> None:
        """Shows the prompt for ``field`` with its current value.

        Focus moves at once (not on the next idle, as ``focus()`` does), so keys typed
        right after the one that opened the prompt land in it, not on the tail.
        """
        self.field_name = field
        self.placeholder = f"{label} (empty: any; Enter applies, Esc cancels)"
        self.value = current or ""
        self.display = True
        self._return_focus = self.screen.focused
        self.screen.set_focus(self)

    def close(self) -> None:
        """Hides the prompt and gives the focus back at once."""
        self.display = False
        self.screen.set_focus(self._return_focus)

    async def action_submit(self) -> None:
        self.post_message(self.Chosen(self.field_name, self.value.strip()))
        self.close()

    def action_cancel(self) -> None:
        """Escape: keep the filter as it was."""
        self.post_message(self.Chosen(self.field_name, None))
        self.close()
