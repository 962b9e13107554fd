"""``orchestrator jobs users|rules|limits|approvals list``: what an operator set up, and
the approval requests that wait for a decision, as tables (or ``--format json``).

Each listing is one call of a ``func_list_*`` function (sql/functions/jobs/listings.sql);
paged ones print the ``--after`` that continues them, as ``jobs list`` does.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.cli.argtypes import whole_number
from orchestrator.cli.jobs_show import print_rows
from orchestrator.db.calls import Call
from orchestrator.jobs import calls as job_calls
from orchestrator.jobs.views import Listing

Runner = Callable[[Call[Listing]], Listing]
REQUEST_STATUSES = ("pending", "approved", "rejected", "expired", "cancelled", "all")


def _list_parser(sub: Any, help: str, runner: Runner, run: Any, *, paged: bool) -> Any:
    p = sub.add_parser("list", help=help)
    p.add_argument("--format", choices=("table", "json"), default="table", dest="fmt")
    if paged:
        p.add_argument("--after", help="the page after this one (from the `More:` line)")
        p.add_argument(
            "--limit", type=whole_number(1, 1000), default=100, help="rows per page (100)"
        )
    p.set_defaults(run=lambda args: run(args, runner))
    return p


def register_users(users: Any, runner: Runner) -> None:
    """``jobs users list [--org ORG]``."""
    p = _list_parser(users, "users who may submit jobs", runner, _users, paged=True)
    p.add_argument("--org", help="only users of this organisation")


def register_rules(rules: Any, runner: Runner) -> None:
    """``jobs rules list``."""
    _list_parser(rules, "approval rules", runner, _rules, paged=False)


def register_limits(limits: Any, runner: Runner) -> None:
    """``jobs limits list``."""
    _list_parser(limits, "concurrency limits and what runs under them", runner, _limits,
                 paged=False)  # fmt: skip


def register_approvals(sub: Any, runner: Runner) -> None:
    """``jobs approvals list [--status STATUS]``: pending requests unless asked."""
    approvals = sub.add_parser("approvals", help="approval requests (list)").add_subparsers(
        dest="approvals_command", required=True, metavar="SUBCOMMAND"
    )
    p = _list_parser(approvals, "approval requests, pending ones by default", runner,
                     _approvals, paged=True)  # fmt: skip
    p.add_argument(
        "--status", choices=REQUEST_STATUSES, default="pending", help="requests in this state"
    )


def _show(
    args: argparse.Namespace,
    listing: Listing,
    columns: Sequence[str],
    empty: str,
    more: str = "",
) -> int:
    if args.fmt == "json":
        print(json.dumps({"rows": list(listing.rows), "more": listing.more, "next": listing.next},
                         indent=2, default=str))  # fmt: skip
        return 0
    print_rows(listing.rows, columns, empty=empty)
    if listing.more:
        print(f"\nMore: {more} --after {listing.next}")
    return 0


def _users(args: argparse.Namespace, runner: Runner) -> int:
    listing = runner(job_calls.list_hub_users(args.org, args.after, args.limit))
    columns = ("user_id", "organization_id", "display_name", "created_at")
    more = "orchestrator jobs users list" + (f" --org {args.org}" if args.org else "")
    empty = "(no users: add one with `orchestrator jobs users add USER --org ORG`)"
    return _show(args, listing, columns, empty, more)


def _rules(args: argparse.Namespace, runner: Runner) -> int:
    listing = runner(job_calls.list_approval_rules())
    columns = ("name", "enabled", "job_type", "provider", "min_estimated_cost",
               "approval_ttl_seconds", "allow_self_approval")  # fmt: skip
    return _show(args, listing, columns,
                 "(no approval rules: every job is queued at once)")  # fmt: skip


def _limits(args: argparse.Namespace, runner: Runner) -> int:
    listing = runner(job_calls.list_concurrency_limits())
    columns = ("scope_type", "scope_id", "max_running", "running")
    return _show(args, listing, columns, "(no concurrency limits: nothing is capped)")


def _approvals(args: argparse.Namespace, runner: Runner) -> int:
    status = None if args.status == "all" else args.status
    listing = runner(job_calls.list_approval_requests(status, args.after, args.limit))
    columns = ("request_id", "status", "job_id", "requested_by", "job_type", "estimated_cost",
               "created_at", "expires_at", "decided_by")  # fmt: skip
    more = f"orchestrator jobs approvals list --status {args.status}"
    return _show(args, listing, columns, f"(no {args.status} approval requests)", more)
