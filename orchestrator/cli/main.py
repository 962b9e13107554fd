"""Entry point of the ``orchestrator`` command: parses arguments, runs one subcommand.

User errors (:class:`~orchestrator.errors.HubError`) become one line on stderr and exit
status 1; Ctrl-C exits 130 quietly. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.cli import (
    audit_cmd,
    dashboard_cmd,
    demo,
    jobs_cmd,
    logs_cmd,
    migrate_cmd,
    run_cmd,
    secrets_cmd,
    serve_cmd,
    worker_cmd,
)
from orchestrator.errors import HubError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Logs and jobs of an orchestrator and its GPU workers, in PostgreSQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    migrate_cmd.register(commands)
    demo.register(commands)
    logs_cmd.register(commands)
    run_cmd.register(commands)
    dashboard_cmd.register(commands)
    worker_cmd.register(commands)
    jobs_cmd.register(commands)
    serve_cmd.register(commands)
    audit_cmd.register(commands)
    secrets_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except HubError as error:
        print(f"orchestrator: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("orchestrator: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
