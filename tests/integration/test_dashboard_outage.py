"""The dashboard with the database down: it says so, keeps its lines, answers keys, and
recovers by itself, resuming the tail from its cursor (no gap, no duplicate)."""

from __future__ import annotations

import socket

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


def closed_port_url() -> str:
    """A URL nobody listens on (a port just bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def status(app: DashboardApp) -> str:
    return str(app.query_one("#status").render())


def test_down_at_start_shows_why_answers_keys_and_recovers(conn, db_url):
    """Unreachable from the first refresh: the status says so with a retry countdown,
    keys still work (l changes the level), and once the database is back the tail fills
    under the filter chosen meanwhile."""
    add_rows(conn, ["info row"], log_level="INFO")
    add_rows(conn, ["warning row"], log_level="WARNING")
    target = [closed_port_url()]
    app = DashboardApp(Recording(real_source(lambda: target[0])), options())

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.error is not None)
            assert app.error.startswith("database unreachable: ")
            await wait_for(pilot, lambda: "retrying in" in status(app))
            await pilot.press("l", "l")
            assert app.state.filter.min_level == "WARNING"
            await pilot.press("space")
            assert app.state.paused
            await pilot.press("space")
            target[0] = db_url
            await wait_for(pilot, lambda: app.error is None and app.state.filled)
            await wait_for(pilot, lambda: app.rows_shown == 1)
            assert "warning row" in "\n".join(tail_text(app))
            assert "unreachable" not in status(app)

    run(scenario())


def test_outage_mid_tail_keeps_the_lines_and_resumes_from_the_cursor(conn, db_url):
    """Connections cut and the server unreachable: lines stay, rows written meanwhile
    appear exactly once after recovery, read from where the tail stood before it."""
    add_rows(conn, [f"before {i}" for i in range(5)])
    target = [db_url]
    source = Recording(real_source(lambda: target[0]))
    app = DashboardApp(source, options())

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 5)
            cursor = app.state.start
            target[0] = closed_port_url()
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await wait_for(pilot, lambda: app.error is not None)
            assert "database unreachable" in status(app)
            during = add_rows(conn, [f"during {i}" for i in range(3)])
            failures = app.backoff.failures
            await wait_for(pilot, lambda: app.backoff.failures >= failures + 2)
            assert app.state.start == cursor
            assert len(tail_text(app)) == 5  # what was shown stays
            await pilot.press("space", "space")  # still answering keys

            target[0] = db_url
            await wait_for(pilot, lambda: app.rows_shown == 8)
            assert app.error is None
            resumed = next(call for call in source.named("fetch_new") if call[2] > 0)
            assert resumed[1] == cursor  # the same lag window as before the outage
            assert resumed[2] == 3  # the rows shown already were left out by the database
            assert app.tail.rows[-1].id == during[-1]
            lines = tail_text(app)
            assert [line.split(maxsplit=3)[-1] for line in lines] == [
                *(f"before {i}" for i in range(5)),
                *(f"during {i}" for i in range(3)),
            ]
            await pilot.press("q")
        assert app.return_code == 0

    run(scenario())
