"""``orchestrator audit list|verify``: the audit trail from a shell.

``list`` pages newest first (``--after ID`` continues); ``verify`` recomputes the hash
chain and exits 1 naming the first bad entry.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from tabulate import tabulate

from orchestrator.audit.calls import audit_query, audit_verify
from orchestrator.cli.schema import prepare_schema
from orchestrator.config import get_settings
from orchestrator.db.calls import CallExecutor
from orchestrator.db.executor import executor_for
from orchestrator.db.target import SqlTarget, resolve_database
from orchestrator.query.timespec import TIME_HELP, parse_time


def register(commands: Any) -> None:
    """Adds the ``audit`` subcommand."""
    parser = commands.add_parser("audit", help="read and verify the audit trail")
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="entries, newest first")
    listing.add_argument(
        "--type", dest="event_type", help="only this event type (e.g. auth_failed)"
    )
    listing.add_argument("--since", help=TIME_HELP)
    listing.add_argument("--until", help=TIME_HELP)
    listing.add_argument("--actor-ip", help="only entries of this client address")
    listing.add_argument("--target-type")
    listing.add_argument("--target-id")
    listing.add_argument("--limit", type=int, default=100, help="entries per page (1-1000)")
    listing.add_argument("--after", type=int, metavar="ID", help="continue below this entry id")
    listing.add_argument("--format", choices=("table", "json", "jsonl"), default="table")
    listing.set_defaults(run=_list)
    check = sub.add_parser("verify", help="recompute the hash chain (exit 1 when broken)")
    check.add_argument("--from-id", type=int)
    check.add_argument("--to-id", type=int)
    check.set_defaults(run=_verify)


@contextlib.contextmanager
def _executor() -> Iterator[CallExecutor]:
    with resolve_database(get_settings()) as target:
        if isinstance(target, SqlTarget):
            prepare_schema(target)
        executor = executor_for(target)
        try:
            yield executor
        finally:
            executor.close()


def _row(entry: dict[str, Any]) -> list[Any]:
    target = "/".join(str(p) for p in (entry.get("target_type"), entry.get("target_id")) if p)
    details = json.dumps(entry.get("details") or {}, sort_keys=True)
    return [
        entry["id"],
        str(entry["occurred_at"])[:23],
        entry["event_type"],
        entry.get("actor") or "",
        entry.get("actor_ip") or "",
        target,
        entry["action"],
        details if len(details) <= 80 else details[:77] + "...",
    ]


def _list(args: argparse.Namespace) -> int:
    since = parse_time(args.since, what="--since").isoformat() if args.since else None
    until = parse_time(args.until, what="--until").isoformat() if args.until else None
    call = audit_query(
        event_type=args.event_type,
        since=since,
        until=until,
        actor_ip=args.actor_ip,
        target_type=args.target_type,
        target_id=args.target_id,
        after_id=args.after,
        limit=args.limit,
    )
    with _executor() as db:
        page = db.run(call)
    entries = page["entries"]
    if args.format == "json":
        print(json.dumps(entries, indent=2, default=str))
    elif args.format == "jsonl":
        for entry in entries:
            print(json.dumps(entry, default=str))
    else:
        headers = [
            "id",
            "occurred_at",
            "event_type",
            "actor",
            "actor_ip",
            "target",
            "action",
            "details",
        ]
        print(tabulate([_row(e) for e in entries], headers=headers))
    if page["more"]:
        print(
            f"showing {len(entries)} entries; more match. "
            f"Continue with --after {page['next_after']}",
            file=sys.stderr,
        )
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _executor() as db:
        result = db.run(audit_verify(args.from_id, args.to_id))
    if result["valid"]:
        span = f" (ids {result['first_id']}..{result['last_id']})" if result["checked"] else ""
        print(f"audit chain valid: {result['checked']} entries checked{span}")
        return 0
    print(
        f"audit chain broken at id {result['broken_at']}: {result['reason']} "
        f"({result['checked']} entries in range)",
        file=sys.stderr,
    )
    return 1
