"""Entry point of the ``orchestrator`` command: parses arguments, runs one subcommand.

Exit statuses: 0 done; 1 a problem the user can fix that is not the command line's
(:class:`~orchestrator.errors.HubError`: a setting, an unreachable database, input the
database refused), one line on stderr; 2 a usage error (a flag or its value), one line;
130 Ctrl-C; 129/143 SIGHUP/SIGTERM; 141 the output pipe was closed (``| head``).
Anything else is a bug and keeps its traceback (see :mod:`orchestrator.cli.lifecycle`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.cli import (
    audit_cmd,
    backup_cmd,
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
from orchestrator.cli.argtypes import attach_dash_values
from orchestrator.cli.lifecycle import (
    EXIT_BROKEN_PIPE,
    EXIT_USAGE,
    CommandParser,
    Stopped,
    exit_on_stop_signals,
    silence_stdout,
)
from orchestrator.cli.wording import in_cli_terms
from orchestrator.errors import HubError, UsageError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and ``--help``)."""
    parser = CommandParser(
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
    backup_cmd.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (see the module docstring)."""
    exit_on_stop_signals()
    try:
        return _run(build_parser(), argv)
    except BrokenPipeError:
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except Stopped as stop:
        _say(f"orchestrator: stopped by {stop}")
        return 128 + stop.signum


def _run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    args = parser.parse_args(attach_dash_values(list(sys.argv[1:] if argv is None else argv)))
    try:
        status: int = args.run(args)
        return status
    except UsageError as error:
        _say(f"{parser.prog} {args.command}: error: {in_cli_terms(str(error))}")
        return EXIT_USAGE
    except HubError as error:
        _say(f"orchestrator: error: {in_cli_terms(str(error))}")
        return 1
    except KeyboardInterrupt:
        _say("orchestrator: interrupted")
        return 130


def _say(line: str) -> None:
    """One line on stderr; a closed stderr has nobody left to tell."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
