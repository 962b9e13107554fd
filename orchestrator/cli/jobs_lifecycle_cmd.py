"""``orchestrator jobs submit-many | rerun | pause | resume | periodic``: the queue's
lifecycle from a shell, each a call of one SQL function (see ``sql/functions/jobs/``).

``submit-many FILE`` reads JSON lines (``-`` = stdin), one ``func_submit_job`` object per
line; every line is checked before anything is sent (a malformed line is one error
naming its number), then the jobs go in calls of up to 1,000 (``func_submit_jobs``: each
call all or nothing).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from orchestrator.cli.jobs_db import executor, one
from orchestrator.cli.jobs_show import cell, print_rows
from orchestrator.errors import HubError, InputRefused
from orchestrator.jobs import calls as job_calls
from orchestrator.jobs.errors import job_errors
from orchestrator.periodic import calls as periodic_calls
from orchestrator.periodic.cron import check_cron, next_tick
from orchestrator.worker.payload import InvalidPayload, parse_payload

BULK_CALL = 1000  # jobs per func_submit_jobs call (its limit)
MAX_LINE = 1 << 20  # one job object: 1 MiB, as func_submit_job accepts


def register(sub: Any) -> None:
    """Adds the lifecycle subcommands to ``orchestrator jobs``."""
    p = sub.add_parser("submit-many", help="submit the jobs of a JSON lines file")
    p.add_argument("file", help="JSON lines: one func_submit_job object per line ('-': stdin)")
    p.set_defaults(run=_submit_many)

    p = sub.add_parser("rerun", help="submit a failed or cancelled job again (a new job)")
    p.add_argument("job_id")
    p.add_argument("--by", help="who asks for it")
    p.set_defaults(run=_rerun)

    for name, verb in (("pause", "pause"), ("resume", "resume")):
        p = sub.add_parser(name, help=f"{verb} a provider's queue (or one job type of it)")
        p.add_argument("provider")
        p.add_argument("--type", dest="job_type", help="only this job type")
        if name == "pause":
            p.add_argument("--by", default="admin", help="who pauses it")
            p.add_argument("--reason")
        p.set_defaults(run=_pause_or_resume, pause=name == "pause")

    periodic = sub.add_parser("periodic", help="cron schedules that submit jobs")
    verbs = periodic.add_subparsers(dest="periodic_command", required=True, metavar="SUBCOMMAND")
    p = verbs.add_parser("add", help="add or replace a schedule")
    p.add_argument("name")
    p.add_argument("--cron", required=True, help="'*/5 * * * *' (UTC), @hourly, @daily ...")
    p.add_argument("--job", required=True, help="the job: a func_submit_job JSON object")
    p.add_argument("--disabled", action="store_true")
    p.set_defaults(run=_periodic_add)
    p = verbs.add_parser("list", help="every schedule and its next tick")
    p.set_defaults(run=_periodic_list)
    p = verbs.add_parser("remove", help="remove a schedule")
    p.add_argument("name")
    p.set_defaults(run=_periodic_remove)


def read_job_lines(stream: IO[str], source: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, job object) of each non-blank line of a JSON lines stream, every
    line checked first: one error naming the first bad line (not JSON, not an object,
    too long, a local payload the worker could not run) and nothing returned."""
    jobs: list[tuple[int, dict[str, Any]]] = []
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        if len(line) > MAX_LINE:
            raise InputRefused(f"{where} is {len(line)} characters; at most {MAX_LINE} accepted")
        try:
            job = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputRefused(f"{where} is not JSON: {error}") from None
        if not isinstance(job, dict):
            raise InputRefused(f"{where} must be a JSON object (a func_submit_job job)")
        if job.get("provider", "local") == "local" and "payload" in job:
            try:
                parse_payload(job["payload"])
            except InvalidPayload as error:
                raise InputRefused(f"{where}: {error}") from None
        jobs.append((number, job))
    return jobs


def _chunks(
    jobs: list[tuple[int, dict[str, Any]]],
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    for start in range(0, len(jobs), BULK_CALL):
        yield jobs[start : start + BULK_CALL]


def _at_line(error: InputRefused, chunk: list[tuple[int, dict[str, Any]]], source: str) -> str:
    """The database's ``jobs[i]: why`` told as ``FILE line N: why``."""
    found = re.match(r"jobs\[(\d+)\]: (.*)", str(error))
    if found and int(found.group(1)) < len(chunk):
        return f"{source} line {chunk[int(found.group(1))][0]}: {found.group(2)}"
    return f"{source}: {error}"


def _submit_many(args: argparse.Namespace) -> int:
    source = "stdin" if args.file == "-" else args.file
    try:
        if args.file == "-":
            jobs = read_job_lines(sys.stdin, source)
        else:
            with open(args.file, encoding="utf-8", errors="strict") as stream:
                jobs = read_job_lines(stream, source)
    except OSError as error:
        raise HubError(f"cannot read {source}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise InputRefused(f"{source} is not UTF-8 text: {error.reason}") from None
    submitted = 0
    with executor() as connection, job_errors():
        for chunk in _chunks(jobs):
            try:
                result = connection.run(job_calls.submit_jobs([job for _, job in chunk]))
            except InputRefused as error:
                done = f" ({submitted} job(s) of earlier lines were submitted)" if submitted else ""
                raise InputRefused(_at_line(error, chunk, source) + done) from None
            submitted += result.submitted
    print(f"Submitted {submitted} job(s) from {source}.")
    return 0


def _rerun(args: argparse.Namespace) -> int:
    result = one(job_calls.rerun_job(args.job_id, args.by))
    print(f"Job {args.job_id} re-run as job {result.job_id}: {result.status}")
    return 0


def _pause_or_resume(args: argparse.Namespace) -> int:
    what = f"{args.provider}" + (f" (job type {args.job_type})" if args.job_type else "")
    if args.pause:
        one(job_calls.pause_queue(args.provider, args.job_type, args.by, args.reason))
        print(f"Queue {what} paused: its jobs wait until `orchestrator jobs resume`.")
    else:
        state = one(job_calls.resume_queue(args.provider, args.job_type))
        print(f"Queue {what} {'was not paused' if state.paused else 'resumed'}.")
    return 0


def _periodic_add(args: argparse.Namespace) -> int:
    cron = check_cron(args.cron)
    try:
        job = json.loads(args.job)
    except json.JSONDecodeError as error:
        raise InputRefused(f"--job is not JSON: {error}") from None
    if not isinstance(job, dict):
        raise InputRefused("--job must be a JSON object (a func_submit_job job)")
    first = next_tick(cron, datetime.now(UTC))
    schedule = one(
        periodic_calls.upsert_periodic_job(args.name, cron, job, first, not args.disabled)
    )
    print(f"Periodic job {schedule.name}: {cron}, next tick {cell(schedule.next_run_at)}")
    return 0


def _periodic_list(args: argparse.Namespace) -> int:
    listing = one(periodic_calls.list_periodic_jobs())
    rows = [
        {
            "name": s.name,
            "cron": s.cron,
            "enabled": s.enabled,
            "next_run_at": cell(s.next_run_at),
            "last_job_id": s.last_job_id or "",
        }
        for s in listing.rows
    ]
    print_rows(rows, ["name", "cron", "enabled", "next_run_at", "last_job_id"])
    return 0


def _periodic_remove(args: argparse.Namespace) -> int:
    if not one(periodic_calls.delete_periodic_job(args.name)):
        raise HubError(f"no periodic job named {args.name!r}")
    print(f"Periodic job {args.name} removed.")
    return 0
