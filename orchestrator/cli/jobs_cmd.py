"""``orchestrator jobs``: submit, list, show, cancel, approve and reject jobs from a shell.

Every subcommand is one call of a ``func_*`` job function (one transaction), so a
refused request leaves nothing half-done. What the database refuses (unknown user or
job, priority out of range, an approval after its deadline) comes back as one line and
exit status 1; a malformed command line is refused before anything is sent, by the
same parser the worker uses (:func:`orchestrator.worker.payload.parse_payload`).
``users add``, ``limits set`` and ``rules add`` set up who may submit, the concurrency
limits and the approval rules; ``users list``, ``limits list``, ``rules list`` and
``approvals list`` show them and what waits for a decision (:mod:`jobs_lists`).
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from orchestrator.cli import jobs_lifecycle_cmd, jobs_lists
from orchestrator.cli.argtypes import whole_number
from orchestrator.cli.jobs_db import executor as _executor
from orchestrator.cli.jobs_db import one as _one
from orchestrator.cli.jobs_show import cell, plain, print_job, print_rows, print_timeline
from orchestrator.errors import HubError, UsageError
from orchestrator.jobs import calls as job_calls
from orchestrator.jobs.errors import job_errors
from orchestrator.query.timespec import parse_duration, parse_time
from orchestrator.worker.payload import check_callable, parse_payload, split_command


def _uuid(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} (a UUID), got {text!r}") from None

    return parse


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def register(commands: Any) -> None:
    """Adds ``jobs`` and its subcommands."""
    jobs = commands.add_parser("jobs", help="submit, list, show, cancel, approve, reject jobs")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="SUBCOMMAND")
    job_id, request_id = _uuid("job id"), _uuid("approval request id")

    p = sub.add_parser("submit", help="submit a job (queued, or awaiting approval)")
    p.add_argument("--user", required=True, help="the submitting user (see `jobs users add`)")
    p.add_argument("--type", required=True, dest="job_type", help="job type, e.g. render")
    p.add_argument("--provider", default="local", help="provider that runs it (local)")
    p.add_argument("--priority", type=int, help="0..1000, higher runs first (100)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--command", help="command line a worker runs (no shell; see README)")
    what.add_argument("--callable", help="Python function 'package.module:function'")
    what.add_argument(
        "--payload", type=_json_object, help="raw JSON payload (for providers other than local)"
    )
    p.add_argument("--kwargs", type=_json_object, help="JSON object of keyword arguments")
    p.add_argument("--cost", type=_decimal, help="estimated cost (approval rules may need it)")
    p.add_argument("--max-attempts", type=int, help="attempts before it fails for good (3)")
    p.add_argument("--idempotency-key", help="resubmitting with the same key returns the job")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at", help="run at this time (ISO 8601, e.g. 2026-12-24T18:00:00Z; UTC)")
    when.add_argument("--in", dest="run_in", help="run after this long (90s, 15m, 2h, 1d)")
    p.add_argument(
        "--timeout", help="stop an attempt that runs longer (90s, 15m, 2h); it then fails"
    )
    p.set_defaults(run=_submit)

    p = sub.add_parser("list", help="list jobs, newest first, one page at a time")
    p.add_argument(
        "--status",
        choices=("awaiting_approval", "queued", "running", "completed", "failed", "cancelled"),
        help="only jobs in this status",
    )
    p.add_argument("--user", help="only jobs of this user")
    p.add_argument("--after", type=job_id, help="the page after this job id (from `next`)")
    p.add_argument("--limit", type=whole_number(1, 1000), default=50, help="rows per page (50)")
    p.set_defaults(run=_list)

    p = sub.add_parser("show", help="a job, its events, its approval request and its logs")
    p.add_argument("job_id", type=job_id)
    p.add_argument("--no-logs", action="store_true", help="leave out the task's log timeline")
    p.set_defaults(run=_show)

    p = sub.add_parser("cancel", help="cancel a job that has not finished")
    p.add_argument("job_id", type=job_id)
    p.add_argument("--by", required=True, help="who cancels it")
    p.add_argument("--reason")
    p.set_defaults(run=_cancel)

    for name, verb in (("approve", "approve"), ("reject", "reject")):
        p = sub.add_parser(name, help=f"{verb} a pending approval request")
        p.add_argument("request_id", type=request_id)
        p.add_argument("--by", required=True, help="who decides")
        p.add_argument("--note")
        p.set_defaults(run=_decide, decision=name)

    _register_admin(sub)
    jobs_lifecycle_cmd.register(sub)


def _register_admin(sub: Any) -> None:
    users = sub.add_parser("users", help="who may submit jobs (add, list)").add_subparsers(
        dest="users_command", required=True, metavar="SUBCOMMAND"
    )
    p = users.add_parser("add", help="add or update a user and their organisation")
    p.add_argument("user_id")
    p.add_argument("--org", required=True, help="the user's organisation")
    p.add_argument("--name", help="display name")
    p.set_defaults(run=_user_add)
    jobs_lists.register_users(users, _one)

    limits = sub.add_parser("limits", help="concurrency limits (set, list)").add_subparsers(
        dest="limits_command", required=True, metavar="SUBCOMMAND"
    )
    p = limits.add_parser("set", help="set (or with --remove, drop) a concurrency limit")
    p.add_argument("scope", choices=["global", "organization", "user"])
    p.add_argument("scope_id", nargs="?", default="", help="organisation or user id")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--max-running", type=int, help="jobs of this scope running at once")
    what.add_argument("--remove", action="store_true", help="remove the limit")
    p.set_defaults(run=_limit_set)
    jobs_lists.register_limits(limits, _one)

    rules = sub.add_parser("rules", help="approval rules (add, list)").add_subparsers(
        dest="rules_command", required=True, metavar="SUBCOMMAND"
    )
    p = rules.add_parser("add", help="add or update an approval rule")
    p.add_argument("name")
    p.add_argument("--job-type")
    p.add_argument("--provider")
    p.add_argument("--min-cost", type=_decimal, help="needs approval from this estimated cost")
    p.add_argument("--ttl", type=int, default=3600, help="seconds an approver has (3600)")
    p.add_argument("--allow-self-approval", action="store_true")
    p.add_argument("--disabled", action="store_true")
    p.set_defaults(run=_rule_add)
    jobs_lists.register_rules(rules, _one)
    jobs_lists.register_approvals(sub, _one)


def _submit(args: argparse.Namespace) -> int:
    payload: dict[str, Any]
    if args.kwargs is not None and args.callable is None:
        raise UsageError("--kwargs goes with --callable; a --command takes its arguments inline")
    if args.command is not None:
        split_command(args.command)  # refused here, before anything is written
        payload = {"command": args.command}
    elif args.callable is not None:
        payload = {"callable": check_callable(args.callable), "kwargs": args.kwargs or {}}
    else:
        if args.provider == "local":
            parse_payload(args.payload)  # a local payload is checked as the worker will
        payload = args.payload
    timeout = None if args.timeout is None else parse_duration(args.timeout, what="--timeout")
    call = job_calls.submit_job(
        args.user,
        args.job_type,
        payload,
        provider=args.provider,
        priority=args.priority,
        estimated_cost=args.cost,
        max_attempts=args.max_attempts,
        idempotency_key=args.idempotency_key,
        run_at=None if args.at is None else parse_time(args.at, what="--at"),
        run_in_seconds=None
        if args.run_in is None
        else parse_duration(args.run_in, what="--in").total_seconds(),
        timeout_seconds=None if timeout is None else max(1, round(timeout.total_seconds())),
    )
    result = _one(call)
    again = " (already submitted with this idempotency key)" if result.duplicate else ""
    later = f", runs at {cell(result.run_at)}" if result.run_at else ""
    print(f"Submitted job {result.job_id}: {result.status}{later}{again}")
    if result.approval_request_id:
        print(
            f"Needs approval: request {result.approval_request_id}, "
            f"expires {cell(result.approval_expires_at)}"
        )
        print(f"  orchestrator jobs approve {result.approval_request_id} --by <approver>")
    return 0


def _list(args: argparse.Namespace) -> int:
    call = job_calls.list_jobs(args.status, args.user, args.after, args.limit)
    page = _one(call)
    columns = [
        "job_id", "submitted_at", "status", "user_id", "job_type", "provider", "priority",
        "attempts",
    ]  # fmt: skip
    print_rows([plain(row) for row in page.rows], columns)
    if page.more:
        print(f"\nMore: orchestrator jobs list --after {page.next} (same filters)")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _executor() as executor, job_errors():
        print_job(executor.run(job_calls.get_job(args.job_id)))
        if not args.no_logs:
            print_timeline(executor, args.job_id)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    result = _one(job_calls.cancel_job(args.job_id, args.by, args.reason))
    if not result.accepted:
        raise HubError(f"job {args.job_id} was not cancelled: {result.reason}")
    print(f"Job {args.job_id}: {result.status}")
    return 0


def _decide(args: argparse.Namespace) -> int:
    build = job_calls.approve_request if args.decision == "approve" else job_calls.reject_request
    decision = _one(build(args.request_id, args.by, args.note))
    print(f"Request {decision.request_id}: {decision.status} by {decision.decided_by}")
    print(f"Job {decision.job_id}: {decision.job_status}")
    return 0


def _user_add(args: argparse.Namespace) -> int:
    _one(job_calls.upsert_hub_user(args.user_id, args.org, args.name))
    print(f"User {args.user_id} (organisation {args.org}) saved.")
    return 0


def _limit_set(args: argparse.Namespace) -> int:
    if args.scope != "global" and not args.scope_id:
        raise UsageError(f"a {args.scope} limit needs the {args.scope} id after the scope")
    limit = None if args.remove else args.max_running
    _one(job_calls.set_concurrency_limit(args.scope, args.scope_id, limit))
    what = "removed" if limit is None else f"set to {limit} running"
    print(f"Limit for {args.scope} {args.scope_id}".rstrip() + f": {what}.")
    return 0


def _rule_add(args: argparse.Namespace) -> int:
    _one(
        job_calls.upsert_approval_rule(
            args.name,
            job_type=args.job_type,
            provider=args.provider,
            min_estimated_cost=args.min_cost,
            approval_ttl_seconds=args.ttl,
            allow_self_approval=args.allow_self_approval,
            enabled=not args.disabled,
        )
    )
    print(f"Approval rule {args.name} saved.")
    return 0
