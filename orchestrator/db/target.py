"""Which database the hub talks to: the embedded default, a PostgreSQL URL, or Supabase.

Resolution order: ``DATABASE_URL`` (any PostgreSQL, including Supabase's own connection
string), else the embedded server when no Supabase settings are given. Supabase REST
alone (``SUPABASE_URL`` + ``SUPABASE_SERVICE_ROLE_KEY``) reaches only the RPC functions,
so commands that need SQL (migrations, the demo) ask for ``DATABASE_URL``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.config import Settings
from orchestrator.db.embedded import EmbeddedServer, start_embedded
from orchestrator.errors import ConfigError


@dataclass
class Target:
    """A database the hub can run SQL on, and a label that says which one."""

    url: str
    label: str
    embedded: EmbeddedServer | None = None


def describe_url(url: str) -> str:
    """The URL without its password, for messages and logs (secrets are never printed)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "the configured DATABASE_URL"
    host = str(parts.get("host") or "localhost")
    user = f"{parts['user']}@" if parts.get("user") else ""
    if host.startswith("/"):
        return f"database {parts.get('dbname', '')} on the socket in {host}"
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


@contextlib.contextmanager
def sql_target(settings: Settings) -> Iterator[Target]:
    """Yields the SQL database to use; an embedded server is stopped on exit."""
    if settings.database_url:
        yield Target(settings.database_url, describe_url(settings.database_url))
        return
    if settings.supabase_url:
        raise ConfigError(
            "this command needs SQL access: set DATABASE_URL to the Supabase database's "
            "connection string (Project Settings > Database), or apply the sql/ files in "
            "the Supabase SQL editor"
        )
    server = start_embedded(settings.embedded_data_dir)
    try:
        yield Target(server.url, f"embedded PostgreSQL in {server.data_dir}", server)
    finally:
        server.stop()
