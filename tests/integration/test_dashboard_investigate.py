"""The dashboard as a tool to investigate with, under Textual's pilot on a real database:
rows carry their task, cycle and worker; Enter opens a row whole; t and w jump to its
task's and its worker's timelines; the task filter, the exact level filter, the jobs
screen, and an error sparkline that draws nothing when there is nothing to draw."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

from rich.console import Console
from textual.widgets import Static

from orchestrator.dashboard.app import DashboardApp
from orchestrator.dashboard.screens import JobsScreen, RowDetail, Timeline
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
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


def screen_text(app: DashboardApp) -> str:
    """What the Static widgets of the screen on top hold, as plain text."""
    console = Console(width=200, record=True, file=io.StringIO())
    for widget in app.screen.query(Static):
        if widget.display:
            console.print(widget.content)
    return console.export_text()


async def back(pilot, times: int) -> None:
    """Esc, a screen at a time."""
    for _ in range(times):
        await pilot.press("escape")
        await pilot.pause()


def test_two_jobs_lines_are_told_apart_by_task_and_cycle(conn, db_url):
    """The same message from two tasks shows each task's id; a cycle shows as #N."""
    task_a, task_b = str(uuid.uuid4()), str(uuid.uuid4())
    add_rows(conn, ["frame 2 rendered"], task_id=task_a, worker_id="gpu-1", source_id="gpu-1")
    add_rows(conn, ["frame 2 rendered"], task_id=task_b, worker_id="gpu-2", source_id="gpu-2")
    add_rows(conn, ["cycle done"], source_type="orchestrator_gpu", source_id="orch-1",
             cycle_number=42)  # fmt: skip
    app, _ = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 3)
            lines = tail_text(app)
            assert "gpu-1" in lines[0] and f"{task_a[:8]} frame 2 rendered" in lines[0]
            assert f"{task_b[:8]} frame 2 rendered" in lines[1]
            assert "#42 cycle done" in lines[2]

    run(scenario())


def test_enter_opens_the_row_and_t_and_w_jump_to_its_timelines(conn, db_url):
    """Up selects, Enter shows every column, the exception whole and the metadata; t
    lists the task's whole life (a day-old row included), w the worker's half hour
    around the row; Enter there opens another row; Esc walks back."""
    conn.execute("SELECT func_maintain_log_partitions(days_ahead => 1, days_behind => 3)")
    task = str(uuid.uuid4())
    old = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    insert(conn, [entry(timestamp=old, message="task started yesterday", task_id=task,
                        worker_id="gpu-9", source_id="gpu-9")])  # fmt: skip
    add_rows(conn, ["other worker"], worker_id="gpu-1", source_id="gpu-1")
    add_rows(conn, ["Task failed"], task_id=task, worker_id="gpu-9", source_id="gpu-9",
             log_level="ERROR", metadata={"vram_gb": 79.5},
             exception="Traceback (most recent call last):\n  File 'w.py', line 3\n"
                       "MemoryError: CUDA out of memory")  # fmt: skip
    add_rows(conn, ["newest"], worker_id="gpu-1", source_id="gpu-1")
    app, source = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 4)
            assert tail_text(app)[0].startswith(old[:10] + " ")  # not today: dated
            await pilot.press("up", "up")
            assert app.state.paused and app.tail.selected.message == "Task failed"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RowDetail))
            shown = screen_text(app)
            for part in (
                task,
                "gpu-9",
                "ERROR (severity 17)",
                "File 'w.py', line 3",
                "MemoryError: CUDA out of memory",
                '"vram_gb": 79.5',
            ):
                assert part in shown, part  # fmt: skip

            await pilot.press("t")
            await wait_for(pilot, lambda: isinstance(app.screen, Timeline) and app.screen.page)
            timeline = app.screen
            assert [r.message for r in timeline.view.rows] == [
                "task started yesterday",
                "Task failed",
            ]
            assert timeline.view.selected.message == "Task failed"  # where we came from
            assert source.named("task_timeline")[-1][1] == task
            await pilot.press("up", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RowDetail)
                           and app.screen.row.message == "task started yesterday")  # fmt: skip
            await back(pilot, 2)
            assert isinstance(app.screen, RowDetail) and app.screen.row.message == "Task failed"

            await pilot.press("w")
            await wait_for(pilot, lambda: isinstance(app.screen, Timeline) and app.screen.page)
            assert [r.message for r in app.screen.view.rows] == ["Task failed"]
            assert "worker gpu-9" in screen_text(app)
            await back(pilot, 2)
            assert app.screen is app.screen_stack[0]
            await pilot.press("G")
            assert not app.state.paused

    run(scenario())


def test_a_row_without_a_task_says_so_instead_of_jumping(conn, db_url):
    """t on a row of no task: a notice, and the detail stays."""
    add_rows(conn, ["no task here"])
    app, _ = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RowDetail))
            await pilot.press("t")
            await pilot.pause(0.2)
            assert isinstance(app.screen, RowDetail)
            assert any("no task" in str(n.message) for n in app._notifications)

    run(scenario())


def test_t_filters_by_task_and_refuses_what_is_not_a_uuid(conn, db_url):
    """t then a task id shows only that task's rows; a malformed id is refused in a
    notice and the filter stays as it was."""
    task = str(uuid.uuid4())
    add_rows(conn, ["mine"], task_id=task)
    add_rows(conn, ["someone else's"], task_id=str(uuid.uuid4()))
    app, _ = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 2)
            await pilot.press("t", *"nope", "enter")
            await pilot.pause(0.2)
            assert app.state.filter.task_id is None
            assert any("malformed task id 'nope'" in str(n.message) for n in app._notifications)
            await pilot.press("t", *task, "enter")
            await wait_for(pilot, lambda: app.state.filter.task_id == task and app.state.filled)
            await wait_for(pilot, lambda: app.rows_shown == 1)
            assert "mine" in tail_text(app)[0]
            assert f"task={task[:8]}" in str(app.status.render())

    run(scenario())


def test_the_level_filter_can_be_exact(conn, db_url):
    """l picks ERROR and above; L makes it ERROR only; L again, and above again."""
    for level in ("WARNING", "ERROR", "CRITICAL"):
        add_rows(conn, [f"a {level.lower()}"], log_level=level)
    app, _ = make_app(db_url)

    def messages() -> list[str]:
        return [line.split()[-1] for line in tail_text(app)]

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 3)
            await pilot.press("l", "l", "l")
            await wait_for(pilot, lambda: app.state.filled and messages() == ["error", "critical"])
            await pilot.press("L")
            await wait_for(pilot, lambda: app.state.filled and messages() == ["error"])
            assert "level=ERROR" in str(app.status.render())
            await pilot.press("L")
            await wait_for(pilot, lambda: app.state.filled and messages() == ["error", "critical"])
            assert "level>=ERROR" in str(app.status.render())

    run(scenario())


def test_the_error_sparkline_draws_nothing_without_errors(conn, db_url):
    """Before the first answer and with no error in the hour: no bar at all (Textual
    draws a lone value as a full bar); with errors: the bars and the hour's peak."""
    add_rows(conn, ["all is well"])
    app, _ = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(100, 24)) as pilot:
            assert not app.trend.sparkline.display
            await wait_for(pilot, lambda: app.summary is not None)
            assert not app.trend.sparkline.display
            assert "none" in str(app.trend.label.render())
            add_rows(conn, ["it broke", "again"], log_level="ERROR")
            await wait_for(pilot, lambda: app.trend.sparkline.display)
            assert "max 2" in str(app.trend.label.render())

    run(scenario())


def test_the_jobs_screen_shows_the_queue_and_opens_a_failed_jobs_timeline(conn, db_url):
    """j: queued, running per worker, awaiting approval, recent failures (with their
    error); Enter on a failure opens its task's timeline; j again goes back."""
    with PsycopgExecutor.connect(db_url) as db:
        db.run(job_calls.upsert_hub_user("alice", "acme"))
        db.run(job_calls.upsert_approval_rule("costly", min_estimated_cost=100))
        waiting = db.run(
            job_calls.submit_job("alice", "train", {"command": "x"}, estimated_cost=500)
        )
        queued = db.run(job_calls.submit_job("alice", "probe", {"command": "true"}))
        failing = db.run(job_calls.submit_job("alice", "render", {"command": "x"}, max_attempts=1))
        db.run(job_calls.submit_job("alice", "render", {"command": "y"}))
        claimed = {j.job_id: j for j in db.run(job_calls.claim_jobs("gpu-7", max_jobs=3)).jobs}
        lease = claimed[failing.job_id].lease_token
        db.run(job_calls.fail_job(failing.job_id, lease, "exit 3\nCUDA out of memory", False))
    add_rows(
        conn, ["rendering failed"], task_id=failing.job_id, worker_id="gpu-7", source_id="gpu-7"
    )
    app, _source = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 1)
            await pilot.press("j")
            await wait_for(
                pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen.overview
            )
            overview = app.screen.overview
            assert (overview.queued, overview.running, overview.awaiting_approval) == (0, 2, 1)
            assert [w["worker_id"] for w in overview.running_by_worker] == ["gpu-7"]
            assert overview.approvals[0]["job_id"] == waiting.job_id
            [failure] = overview.recent_failures
            assert (failure["job_id"], failure["error"]) == (failing.job_id, "exit 3")
            assert queued.job_id in {j for w in overview.running_by_worker for j in w["job_ids"]}
            assert "awaiting approval 1" in screen_text(app)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, Timeline) and app.screen.page)
            assert [r.message for r in app.screen.view.rows] == ["rendering failed"]
            await pilot.press("q")  # on another screen q goes back, it does not quit
            await pilot.pause()
            assert isinstance(app.screen, JobsScreen) and app.is_running
            await pilot.press("j")
            assert app.screen is app.screen_stack[0]

    run(scenario())


def test_a_long_message_is_one_line_in_the_tail_and_whole_in_the_detail(conn, db_url):
    """The tail keeps one line per row, cut with an ellipsis at the width; Enter shows
    the message whole."""
    long = "allocating the attention buffers of layer 31 " * 8
    add_rows(conn, [long.strip()])
    app, _ = make_app(db_url)

    async def scenario() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.rows_shown == 1)
            [line] = tail_text(app)
            assert line.endswith("…") and len(line) <= 80
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RowDetail))
            assert " ".join(long.split()) in " ".join(screen_text(app).split())

    run(scenario())
