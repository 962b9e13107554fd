"""Dashboard filters from flags and keys, and the header's numbers, under the pilot."""

from __future__ import annotations

from textual import events
from textual.widgets import Sparkline

from orchestrator.dashboard.app import DashboardApp
from orchestrator.dashboard.state import TailFilter
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as jobs_calls
from tests.integration.dashboard_support import (
    Recording,
    add_rows,
    options,
    real_source,
    run,
    tail_text,
    wait_for,
)


def seed(conn) -> None:
    add_rows(conn, ["debug noise"], log_level="DEBUG", worker_id="gpu-1", source_id="gpu-1")
    add_rows(conn, ["a quiet needle"], log_level="INFO", worker_id="gpu-1", source_id="gpu-1")
    add_rows(conn, ["warned"], log_level="WARNING", worker_id="gpu-2", source_id="gpu-2")
    add_rows(conn, ["broke"], log_level="ERROR", worker_id="gpu-2", source_id="gpu-2")
    add_rows(
        conn,
        ["cycle done"],
        log_level="INFO",
        source_type="orchestrator_gpu",
        source_id="orch",
        worker_id=None,
    )


def messages(app: DashboardApp) -> list[str]:
    known = ["debug noise", "a quiet needle", "warned", "broke", "cycle done"]
    text = "\n".join(tail_text(app))
    return [m for m in known if m in text]


def test_flags_filter_the_tail_and_the_header(conn, db_url):
    """--level WARNING --worker gpu-2: only that worker's warnings and errors, and the
    header counts that worker alone."""
    seed(conn)
    flt = TailFilter(min_level="WARNING", worker_id="gpu-2")
    source = Recording(real_source(lambda: db_url))
    app = DashboardApp(source, options(filter=flt))

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.state.filled and app.summary is not None)
            assert messages(app) == ["warned", "broke"]
            assert app.summary.active_workers == 1
            assert app.summary.error_rate == 0.5
            assert "level>=WARNING worker=gpu-2" in str(app.query_one("#status").render())

    run(scenario())


def test_keys_change_the_filters_and_restart_the_tail(conn, db_url):
    """l cycles the minimum level, / searches, s and w ask for a source type and a worker;
    Escape keeps the filter, c clears them all. Typing in a prompt triggers no key."""
    seed(conn)
    app = DashboardApp(Recording(real_source(lambda: db_url)), options())

    async def shows(pilot, expected: list[str]) -> None:
        try:
            await wait_for(pilot, lambda: app.state.filled and messages(app) == expected)
        except AssertionError:
            raise AssertionError((messages(app), app.state, app.error, tail_text(app))) from None

    async def prompt(pilot, key: str, text: str, confirm: str = "enter") -> None:
        await pilot.press(key)
        assert app.prompt.has_focus
        app.prompt.value = text  # typing itself: see the burst test below
        await pilot.press(confirm)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await shows(pilot, ["debug noise", "a quiet needle", "warned", "broke", "cycle done"])
            await pilot.press("l")
            assert app.state.filter.min_level == "INFO"
            await shows(pilot, ["a quiet needle", "warned", "broke", "cycle done"])
            await pilot.press("l", "l")
            await shows(pilot, ["broke"])
            await pilot.press("l", "l")  # CRITICAL, then everything again
            assert app.state.filter.min_level is None

            await pilot.press("slash", "ctrl+u", *"quiet", "enter")  # q, l are text here
            assert app.is_running and app.state.filter.search == "quiet"
            await shows(pilot, ["a quiet needle"])
            await prompt(pilot, "slash", "")
            await prompt(pilot, "s", "orchestrator_gpu")
            assert app.state.filter.source_type == "orchestrator_gpu", app.state.filter
            await shows(pilot, ["cycle done"])
            await prompt(pilot, "w", "gpu-9", confirm="escape")
            assert app.state.filter.worker_id is None
            await pilot.press("c")
            await prompt(pilot, "w", "gpu-2")
            await shows(pilot, ["warned", "broke"])
            await prompt(pilot, "slash", "[/bold] [red]")  # shown as typed, not as markup
            assert '"[/bold] [red]"' in str(app.status.render())
            await pilot.press("c")
            await shows(pilot, ["debug noise", "a quiet needle", "warned", "broke", "cycle done"])

    run(scenario())


def test_keys_typed_in_one_burst_after_slash_land_in_the_prompt(conn, db_url):
    """A terminal delivers fast typing (or a paste) as one burst: every key after "/"
    goes to the prompt, none to the app's own bindings (l, q, space)."""
    seed(conn)
    app = DashboardApp(Recording(real_source(lambda: db_url)), options())

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.state.filled)
            burst = [("slash", "/"), *((c, c) for c in "quiet"), ("space", " "), ("l", "l")]
            for key, char in burst:
                app.post_message(events.Key(key, char))
            await wait_for(pilot, lambda: app.prompt.value == "quiet l")
            assert app.is_running and app.state.filter.min_level is None
            assert not app.state.paused
            await pilot.press("enter")
            assert app.state.filter.search == "quiet l"

    run(scenario())


def test_header_shows_the_databases_numbers_and_the_queue(conn, db_url):
    """logs/min, error rate, workers, queued jobs and the sparkline come from the
    summary function and follow the database."""
    add_rows(conn, ["a", "b", "c", "d"], worker_id="w1", source_id="w1")
    add_rows(conn, ["e"], worker_id="w1", source_id="w1", log_level="ERROR")
    app = DashboardApp(Recording(real_source(lambda: db_url)), options())

    def header() -> str:
        return str(app.header.render())

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            assert "logs/min 1 " in header()
            assert "errors 20.0%" in header()
            assert "workers 1" in header()
            assert "queue 0" in header()
            trend = app.query_one(Sparkline).data
            assert len(trend) == 60 and sum(trend) == 1 and trend[-1] + trend[-2] == 1
            jobs = PsycopgExecutor(conn)
            jobs.run(jobs_calls.upsert_hub_user("u", "org"))
            jobs.run(jobs_calls.submit_job("u", "render", {"command": "true"}))
            await wait_for(pilot, lambda: "queue 1" in header())

    run(scenario())
