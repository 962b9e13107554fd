"""The tail: log rows, one line each, with a cursor, in the manner of lnav and k9s.

A line-API widget (Textual's ``ScrollView``) that keeps the rows themselves, not just
their text, so Enter opens the row under the cursor (whole: message, exception,
metadata) and a click selects one. A row is one line (two with an exception's last
line), cut with … at the width, so appending costs nothing per row: a row is drawn only
when it is on screen, once per width. Up to ``max_rows`` rows are kept (the oldest
dropped first). Moving up, paging up or scrolling back asks the app to pause the tail
(it keeps appending while live and sticks to the end); End asks to go back to live.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orchestrator.dashboard.render import exception_cause, render_row
from orchestrator.query import LogRow


def row_height(row: LogRow) -> int:
    """Lines a row takes in the tail: one, and one more for its exception's last line."""
    return 2 if exception_cause(row.exception) else 1


def draw(text: Text, console: Console, width: int) -> list[Strip]:
    """``text``'s lines, each cut to ``width`` cells with … (never wrapped: the tail
    keeps one line per row; Enter shows the row whole)."""
    strips = []
    for line in Segment.split_lines(text.render(console)):
        strip = Strip(line)
        if strip.cell_length > width:
            strip = Strip.join([strip.crop(0, width - 1), Strip([Segment("…", Style(dim=True))])])
        strips.append(strip.extend_cell_length(width))
    return strips


class TailView(ScrollView, can_focus=True):
    """Log rows, oldest at the top; ``cursor`` is the selected row (None: none)."""

    COMPONENT_CLASSES = {"tail--cursor"}
    DEFAULT_CSS = """
    TailView { height: 1fr; padding: 0 0 0 1; overflow-x: hidden; }
    TailView > .tail--cursor { background: $accent 35%; }
    """
    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Live", show=False),
        Binding("enter", "open", "Detail"),
    ]

    class ScrolledUp(Message):
        """The user moved back into history: the app pauses the tail."""

    class FollowRequested(Message):
        """The user asked to jump back to the live end."""

    class Opened(Message):
        """Enter on a row: the app shows its detail."""

        def __init__(self, row: LogRow) -> None:
            super().__init__()
            self.row = row

    def __init__(
        self,
        max_rows: int = 5000,
        *,
        render: Callable[[LogRow], Text] = render_row,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.max_rows = max_rows
        self._render_row = render
        self._rows: deque[LogRow] = deque()
        self._first = 0  # the absolute number of _rows[0]: numbers survive dropping
        self._strips: dict[int, list[Strip]] = {}  # row number -> its lines at _width, drawn
        self._lines: list[tuple[int, int]] = []  # (row number, line of that row)
        self._width = 0
        self.cursor: int | None = None
        self.follow = True

    # -- content ------------------------------------------------------------------

    @property
    def rows(self) -> list[LogRow]:
        """The rows held, oldest first."""
        return list(self._rows)

    @property
    def selected(self) -> LogRow | None:
        """The row under the cursor (None when there is no cursor)."""
        if self.cursor is None or not self._rows:
            return None
        return self._rows[self.cursor - self._first]

    def line_strips(self) -> list[Strip]:
        """Every line held, as rendered at the current width."""
        return [self._row_strips(n)[i] for n, i in self._lines]

    def text_lines(self) -> list[str]:
        """Every line as plain text (tests, and what a screen reader would get)."""
        return [strip.text.rstrip() for strip in self.line_strips()]

    def add_rows(self, rows: Iterable[LogRow]) -> None:
        """Appends rows (dropping the oldest beyond ``max_rows``); sticks to the end
        while following."""
        added = False
        for row in rows:
            number = self._first + len(self._rows)
            self._rows.append(row)
            self._lines.extend((number, i) for i in range(row_height(row)))
            added = True
        if not added:
            return
        excess = len(self._rows) - self.max_rows
        if excess > 0:
            for _ in range(excess):
                self._rows.popleft()
                self._strips.pop(self._first, None)
                self._first += 1
            self._lines = [(n, i) for n, i in self._lines if n >= self._first]
            if self.cursor is not None and self.cursor < self._first:
                self.cursor = self._first
        self._resize_virtual()
        if self.follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def clear(self) -> None:
        """Forgets every row."""
        self._rows.clear()
        self._strips.clear()
        self._lines.clear()
        self._first, self.cursor = 0, None
        self._resize_virtual()

    def select(self, row_id: str) -> bool:
        """Puts the cursor on the row with this id (False when it is not held)."""
        for offset, row in enumerate(self._rows):
            if row.id == row_id:
                self._move_to(self._first + offset)
                return True
        return False

    def _row_strips(self, number: int) -> list[Strip]:
        strips = self._strips.get(number)
        if strips is None:
            row = self._rows[number - self._first]
            strips = draw(self._render_row(row), self.app.console, max(self._width, 20))
            strips = (strips + [Strip.blank(self._width)] * row_height(row))[: row_height(row)]
            self._strips[number] = strips
        return strips

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(self._width, len(self._lines))
        self.refresh()

    def _fit_width(self) -> None:
        """Lines are drawn for the width there is; a resize, or the scrollbar appearing,
        changes it (lines never scroll sideways: they are cut with …)."""
        width = self.scrollable_content_region.width
        if width and width != self._width:
            self._width = width
            self._strips.clear()
            self._resize_virtual()
            if self.follow:
                self.scroll_end(animate=False, immediate=False, x_axis=False)

    def on_resize(self, event: events.Resize) -> None:
        self._fit_width()

    def render_line(self, y: int) -> Strip:
        self._fit_width()
        number = self.scroll_offset.y + y
        width = self.scrollable_content_region.width
        if number >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        row, line = self._lines[number]
        strip = self._row_strips(row)[line]
        if row == self.cursor:
            strip = strip.apply_style(self.get_component_rich_style("tail--cursor"))
        return strip.crop_extend(0, width, self.rich_style)

    # -- moving -------------------------------------------------------------------

    def _move_to(self, number: int) -> None:
        if not self._rows:
            return
        last = self._first + len(self._rows) - 1
        self.cursor = max(self._first, min(number, last))
        lines = [i for i, (n, _) in enumerate(self._lines) if n == self.cursor]
        if lines:
            top, bottom = lines[0], lines[-1]
            if top < self.scroll_offset.y:
                self.scroll_to(y=top, animate=False, immediate=True)
            elif bottom >= self.scroll_offset.y + self.scrollable_content_region.height:
                height = self.scrollable_content_region.height
                self.scroll_to(y=bottom - height + 1, animate=False, immediate=True)
        self.refresh()

    def _newest(self) -> int:
        return self._first + len(self._rows) - 1

    def _back(self, steps: int) -> None:
        self.post_message(self.ScrolledUp())
        self._move_to((self._newest() + 1 if self.cursor is None else self.cursor) - steps)

    def action_cursor_up(self) -> None:
        """Up: the row above (the newest one first), pausing the tail."""
        self._back(1)

    def action_page_up(self) -> None:
        """A page back, pausing the tail."""
        self._back(max(1, self.scrollable_content_region.height // 2))

    def action_first(self) -> None:
        """The oldest row held, pausing the tail."""
        self.post_message(self.ScrolledUp())
        self._move_to(self._first)

    def action_cursor_down(self) -> None:
        """Down: the row below (past the newest one: nothing)."""
        if self.cursor is not None:
            self._move_to(self.cursor + 1)

    def action_page_down(self) -> None:
        """A page on."""
        if self.cursor is not None:
            self._move_to(self.cursor + max(1, self.scrollable_content_region.height // 2))

    def action_last(self) -> None:
        """End: back to the newest line, live."""
        self.post_message(self.FollowRequested())

    def action_open(self) -> None:
        """Enter: the selected row's detail (the newest row's when none is selected)."""
        if not self._rows:
            return
        if self.cursor is None:
            self._move_to(self._newest())
        row = self.selected
        if row is not None:
            self.post_message(self.Opened(row))

    def go_live(self) -> None:
        """No cursor, stuck to the end."""
        self.cursor = None
        self.follow = True
        self.scroll_end(animate=False, immediate=False, x_axis=False)
        self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        """The wheel moved towards older lines (the view scrolls by itself)."""
        self.post_message(self.ScrolledUp())

    def on_click(self, event: events.Click) -> None:
        """A click selects the row under the pointer (and pauses the tail)."""
        number = self.scroll_offset.y + event.y
        if 0 <= number < len(self._lines):
            self.post_message(self.ScrolledUp())
            self._move_to(self._lines[number][0])
