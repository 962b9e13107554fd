"""The database of the ``orchestrator jobs`` subcommands: one call, one transaction, and
what the database refuses as one line (``JobError``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from orchestrator.cli.schema import prepare_schema
from orchestrator.config import get_settings
from orchestrator.db.calls import Call
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.db.target import resolve_database
from orchestrator.jobs.errors import job_errors

T = TypeVar("T")


@contextmanager
def executor() -> Iterator[PsycopgExecutor]:
    """psycopg on the configured database (the embedded one migrated), schema checked."""
    with resolve_database(get_settings(), sql=True) as target:
        prepare_schema(target)
        with PsycopgExecutor.connect(target.url, target.label) as connection:
            yield connection


def one(call: Call[T]) -> T:
    """Runs one call; what the database refuses becomes one line (``JobError``)."""
    with executor() as connection, job_errors():
        return connection.run(call)
