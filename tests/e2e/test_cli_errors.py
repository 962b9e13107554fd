"""Errors as the README says, and the same start for every command: usage errors are one
line and exit 2, database refusals one line and exit 1 in the CLI's own words, the
listings show what was set up, and a database without the hub's schema gets the same
line from every command."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from tests.e2e.test_cli import orchestrator

UNREACHABLE = "postgresql://hub@127.0.0.1:1/nothing"
MISSING = "is reachable, but the hub's schema is missing: run `orchestrator migrate`"


def one_line(done, status: int) -> str:
    """The single stderr line of a failed command (and its status checked)."""
    assert done.returncode == status, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["jobs", "show", "not-a-uuid"],
            "argument job_id: expected a job id (a UUID), got 'not-a-uuid'",
        ),
        (
            ["jobs", "list", "--limit", "5000"],
            "argument --limit: expected a whole number from 1 to 1000",
        ),
        (["jobs", "list", "--status", "lost"], "argument --status: invalid choice: 'lost'"),
        (["jobs", "approve", "x", "--by", "b"], "expected a approval request id (a UUID)"),
        (["jobs", "approvals", "list", "--status", "maybe"], "argument --status: invalid choice"),
        (
            ["jobs", "users", "list", "--limit", "0"],
            "expected a whole number from 1 to 1000, got '0'",
        ),
        (["jobs"], "the following arguments are required: SUBCOMMAND"),
        (["dashboard", "--refresh", "0"], "argument --refresh: expected a number of seconds"),
        (["worker", "--concurrency", "none"], "argument --concurrency: expected a whole number"),
        (["nonsense"], "argument COMMAND: invalid choice: 'nonsense'"),
        (
            ["jobs", "limits", "set", "organization", "--max-running", "2"],
            "a organization limit needs the organization id",
        ),
        (
            ["jobs", "submit", "--user", "a", "--type", "t", "--command", "x", "--kwargs", "{}"],
            "--kwargs goes with --callable",
        ),
    ],
)
def test_usage_errors_of_every_command_are_one_line_and_exit_2(tmp_path, args, says):
    """No usage block, no database touched (the URL is unreachable), exit 2."""
    line = one_line(orchestrator(*args, cwd=tmp_path, DATABASE_URL=UNREACHABLE), 2)
    assert says in line and re.match(r"orchestrator[\w ]*: error: ", line), line


def test_database_refusals_speak_the_cli_language(db_url, tmp_path):
    """An unknown user points at `orchestrator jobs users add`, not at a SQL function."""
    done = orchestrator(
        "jobs", "submit", "--user", "mallory", "--type", "x", "--command", "true",
        cwd=tmp_path, DATABASE_URL=db_url,
    )  # fmt: skip
    line = one_line(done, 1)
    assert "unknown user 'mallory'" in line
    assert "`orchestrator jobs users add USER --org ORGANIZATION`" in line
    assert "func_" not in line


def test_listings_show_users_rules_limits_and_pending_approvals(db_url, tmp_path):
    """What `users add`, `rules add` and `limits set` made, and the requests waiting,
    as tables and as JSON; `jobs list` says when each job was submitted."""
    with PsycopgExecutor.connect(db_url) as db:
        db.run(job_calls.upsert_hub_user("alice", "acme", "Alice"))
        db.run(job_calls.upsert_hub_user("bob", "globex"))
        db.run(job_calls.upsert_approval_rule("costly", min_estimated_cost=100))
        db.run(job_calls.set_concurrency_limit("organization", "acme", 2))
        waiting = db.run(job_calls.submit_job("alice", "train", {"command": "true"},
                                              estimated_cost=250))  # fmt: skip
        db.run(job_calls.submit_job("bob", "probe", {"command": "true"}))

    def run(*args: str) -> str:
        done = orchestrator("jobs", *args, cwd=tmp_path, DATABASE_URL=db_url)
        assert done.returncode == 0, done.stderr
        return done.stdout

    users = run("users", "list")
    assert re.search(r"alice\s+acme\s+Alice", users) and re.search(r"bob\s+globex", users)
    assert "bob" not in run("users", "list", "--org", "acme")
    paged = run("users", "list", "--limit", "1")
    assert "alice" in paged and "More: orchestrator jobs users list --after alice" in paged
    assert re.search(
        r"costly\s+True\s+100\s+3600\s+False", run("rules", "list").replace(" " * 2, " ")
    )
    assert re.search(r"organization\s+acme\s+2\s+0", run("limits", "list"))
    pending = run("approvals", "list")
    assert waiting.approval_request_id in pending and "alice" in pending and "train" in pending
    as_json = json.loads(run("approvals", "list", "--format", "json"))
    assert [r["job_id"] for r in as_json["rows"]] == [waiting.job_id]
    listed = run("list")
    assert "submitted_at" in listed.splitlines()[0]
    assert re.search(
        rf"{waiting.job_id}\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}}\s+awaiting_approval", listed
    )


@pytest.mark.parametrize(
    "args",
    [["logs"], ["logs", "--stats"], ["logs", "-f"], ["dashboard"], ["jobs", "list"],
     ["jobs", "users", "list"], ["worker", "--once"], ["run", "--once"]],
    ids=" ".join,
)  # fmt: skip
def test_a_database_without_the_schema_gets_the_same_line_from_every_command(
    tmp_path, empty_db_url, args
):
    """Never "unreachable", never "function does not exist": one line, exit 1."""
    line = one_line(orchestrator(*args, cwd=tmp_path, DATABASE_URL=empty_db_url), 1)
    assert line.endswith(MISSING), line
    with psycopg.connect(empty_db_url) as conn:  # and nothing was created there
        assert conn.execute("SELECT to_regclass('public.system_logs')").fetchone() == (None,)
