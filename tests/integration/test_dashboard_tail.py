"""The dashboard's live tail, headless under Textual's pilot, against a real database:
initial fill, reading only what is new, pause and resume, level colours, exit keys."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.dashboard.app import DashboardApp
from tests.integration.dashboard_support import (
    Recording,
    add_rows,
    options,
    real_source,
    run,
    tail_text,
    wait_for,
)
from tests.integration.logrows import entry, insert


def make_app(db_url: str, **overrides) -> tuple[DashboardApp, Recording]:
    source = Recording(real_source(lambda: db_url))
    return DashboardApp(source, options(**overrides)), source


def test_fill_shows_the_newest_rows_oldest_first_then_new_rows_once(conn, db_url):
    """The fill is the newest N rows in time order; each later read starts the lag
    window before the newest row shown (never the whole history again), and each new
    row appears exactly once."""
    add_rows(conn, [f"old {i:02}" for i in range(30)])
    app, source = make_app(db_url, initial_rows=10, lag=10.0)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 10)
            assert [line.split()[-1] for line in tail_text(app)] == [
                f"{i:02}" for i in range(20, 30)
            ]
            first, newest = app.tail.rows[0], app.tail.rows[-1].timestamp
            await wait_for(pilot, lambda: len(source.named("fetch_new")) >= 3)
            # from the lag window before the newest row, but not before the fill's
            # first row: the 20 older rows were left out on purpose, not late
            assert newest - timedelta(seconds=10) < first.timestamp
            assert {call[1] for call in source.named("fetch_new")} == {first.cursor}

            add_rows(conn, ["new a", "new b", "new c"])
            await wait_for(pilot, lambda: app.rows_shown == 13)
            reads = len(source.named("fetch_new"))
            await wait_for(pilot, lambda: len(source.named("fetch_new")) >= reads + 3)
            assert app.rows_shown == 13  # read again in the lag window, shown once
            assert [line.split(maxsplit=3)[-1] for line in tail_text(app)[-3:]] == [
                "new a",
                "new b",
                "new c",
            ]
            assert len(source.named("fetch_initial")) == 1

    run(scenario())


def test_a_row_that_arrives_late_is_still_shown_once(conn, db_url):
    """A row stamped before the newest row shown (a batch shipped late by another
    process) is read in the lag window and appended; with no lag it would be lost."""
    add_rows(conn, ["newest so far"])
    app, _ = make_app(db_url, lag=30.0)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 1)
            stamped = app.tail.rows[-1].timestamp - timedelta(seconds=5)
            insert(conn, [entry(timestamp=stamped.isoformat(), message="shipped late")])
            await wait_for(pilot, lambda: app.rows_shown == 2)
            assert "shipped late" in tail_text(app)[-1]
            await pilot.pause(0.5)
            assert app.rows_shown == 2

    run(scenario())


def test_pause_counts_the_rows_waiting_and_resume_shows_them(conn, db_url):
    """Space pauses: nothing is appended, the status line counts the rows waiting;
    space again shows them. Scrolling up pauses too; End and G resume."""
    add_rows(conn, ["before"])
    app, _source = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 1)
            await pilot.press("space")
            assert app.state.paused
            add_rows(conn, ["during 1", "during 2"])
            await wait_for(pilot, lambda: len(app.state.pending) == 2)
            assert app.rows_shown == 1 and len(tail_text(app)) == 1
            await wait_for(pilot, lambda: "2 new rows waiting" in str(app.status.render()))
            assert "PAUSED" in str(app.status.render())

            await pilot.press("space")
            assert not app.state.paused
            assert app.rows_shown == 3 and "during 2" in tail_text(app)[-1]

            await pilot.press("up")
            assert app.state.paused
            add_rows(conn, ["while scrolled"])
            await wait_for(pilot, lambda: len(app.state.pending) == 1)
            await pilot.press("end")
            assert not app.state.paused
            assert app.rows_shown == 4
            await pilot.press("pageup")
            assert app.state.paused
            await pilot.press("G")
            assert not app.state.paused

    run(scenario())


def test_catching_up_reads_in_pages_from_the_cursor_without_gaps(conn, db_url):
    """More new rows than one page: several reads, each after the previous one's last
    row, and every row shown once, in order."""
    add_rows(conn, ["seed"])
    app, source = make_app(db_url, page_rows=4)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 1)
            await pilot.press("space")
            calls = len(source.calls)
            add_rows(conn, [f"burst {i:02}" for i in range(10)])
            await wait_for(pilot, lambda: len(app.state.pending) == 10)
            await pilot.press("space")
            assert app.rows_shown == 11
            reads = [call for call in source.calls[calls:] if call[0] == "fetch_new"]
            with_rows = [call for call in reads if call[2] > 0]
            assert [rows for _, _, rows in with_rows] == [4, 4, 2]  # the seed left out
            assert len({cursor for _, cursor, _ in with_rows}) == 3
            shown = [line.split()[-1] for line in tail_text(app) if "burst" in line]
            assert shown == [f"{i:02}" for i in range(10)]

    run(scenario())


def test_levels_are_coloured(conn, db_url):
    """ERROR red, WARNING yellow, CRITICAL on red; INFO's message in the default colour."""
    add_rows(conn, ["all fine"], log_level="INFO")
    add_rows(conn, ["careful"], log_level="WARNING")
    add_rows(conn, ["it broke"], log_level="ERROR")
    add_rows(conn, ["on fire"], log_level="CRITICAL")
    app, _ = make_app(db_url)

    def style_of(text: str):
        for strip in app.tail.line_strips():
            for segment in strip:
                if text in segment.text:
                    return segment.style
        raise AssertionError(f"{text!r} not shown")

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 4)
            assert style_of("ERROR").color.name == "red"
            assert style_of("it broke").color.name == "red"
            assert style_of("WARN").color.name == "yellow"
            assert style_of("CRIT").bgcolor.name == "red"
            assert style_of("INFO").color.name == "green"
            assert style_of("all fine").color is None

    run(scenario())


def test_q_and_ctrl_c_exit_cleanly_with_status_zero(db_url):
    """Both keys end the app with return code 0."""
    for key in ("q", "ctrl+c"):
        app, _ = make_app(db_url)

        async def scenario(app: DashboardApp = app, key: str = key) -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.state.filled)
                await pilot.press(key)
                await pilot.pause()

        run(scenario())
        assert app.return_code == 0
        assert not app.is_running


def test_usable_at_80x24(conn, db_url):
    """Header, sparkline, status and footer take a line each; the tail gets the rest."""
    add_rows(conn, [f"line {i}" for i in range(40)])
    app, _ = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 40)
            assert app.query_one("#header").size.height == 1
            assert app.query_one("#errors").size.height == 1
            assert app.query_one("#status").size.height == 1
            assert app.query_one("#tail").size.height == 20
            tail = app.query_one("#tail")
            await wait_for(
                pilot, lambda: tail.max_scroll_y > 0 and tail.scroll_y == tail.max_scroll_y
            )
            assert "line 39" in tail_text(app)[-1]

    run(scenario())


def test_scrollback_keeps_only_the_newest_lines(conn, db_url):
    """The fill never exceeds the scrollback, and new lines push the oldest out."""
    add_rows(conn, [f"first {i:02}" for i in range(30)])
    app, _ = make_app(db_url, scrollback=20, initial_rows=200)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 20)
            assert "first 10" in tail_text(app)[0]
            add_rows(conn, [f"then {i:02}" for i in range(15)])
            await wait_for(pilot, lambda: app.rows_shown == 35)
            lines = tail_text(app)
            assert len(lines) == 20
            assert "first 25" in lines[0] and "then 14" in lines[-1]

    run(scenario())
