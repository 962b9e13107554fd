"""Which database the hub talks to: the one place every command asks.

Resolution order, the same for every command and library entry point:

1. ``DATABASE_URL`` (any PostgreSQL, Supabase's own connection string included): SQL;
2. ``SUPABASE_URL`` + ``SUPABASE_SERVICE_ROLE_KEY``: Supabase REST, which reaches only
   the RPC functions, so a command that needs SQL (migrations, the demo, the daemon)
   is refused with one line asking for ``DATABASE_URL``;
3. neither: the embedded server, started (or joined) in its data directory.

:func:`resolve_database` returns a :class:`SqlTarget` or a :class:`RestTarget`, each a
context manager: leaving it stops this process's use of an embedded server. Callers
that live as long as the process (the log handler) simply never leave it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, overload

from orchestrator.config import Settings
from orchestrator.db.embedded import EmbeddedServer, start_embedded
from orchestrator.errors import ConfigError

POOLER_PORTS = frozenset({"6432", "6543"})  # PgBouncer's, Supavisor's transaction mode


@dataclass
class SqlTarget:
    """A database the hub can run SQL on, a label that says which one (no password),
    and the embedded server behind it, if it is the hub's own."""

    url: str
    label: str
    embedded: EmbeddedServer | None = None
    _released: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def of_url(cls, url: str) -> SqlTarget:
        """A target for a URL given by hand (tests, benches, ``--dsn``)."""
        return cls(url, describe_url(url))

    @property
    def behind_transaction_pooler(self) -> bool:
        """True for URLs on PgBouncer's (6432) or Supavisor's transaction (6543) port,
        where a session (LISTEN, advisory locks) is not the client's own."""
        return behind_transaction_pooler(self.url)

    def close(self) -> None:
        """Releases this process's handle on the embedded server (the last one out
        stops it); nothing for a configured database."""
        if self.embedded is not None and not self._released:
            self._released = True
            self.embedded.stop()

    def __enter__(self) -> SqlTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class RestTarget:
    """Supabase REST: the project URL and the service_role key (never printed)."""

    url: str
    key: str = field(repr=False)

    @property
    def label(self) -> str:
        """What messages call this database."""
        return f"Supabase REST at {self.url}"

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> RestTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Target = SqlTarget | RestTarget


@overload
def resolve_database(settings: Settings, *, sql: Literal[True]) -> SqlTarget: ...
@overload
def resolve_database(settings: Settings, *, sql: bool = False) -> Target: ...
def resolve_database(settings: Settings, *, sql: bool = False) -> Target:
    """The database the settings name (see the module docstring); with ``sql`` a
    command that needs SQL is refused Supabase REST. Starts an embedded server when
    it is the one: use the result as a context manager to release it."""
    if settings.database_url:
        return SqlTarget.of_url(settings.database_url)
    if settings.supabase_url:
        if sql:
            raise ConfigError(
                "this command needs SQL access: set DATABASE_URL to the Supabase database's "
                "connection string (Project Settings > Database), or apply the sql/ files "
                "in the Supabase SQL editor"
            )
        if settings.supabase_service_role_key is None:
            raise ConfigError(
                "SUPABASE_URL is set without SUPABASE_SERVICE_ROLE_KEY: set the project's "
                "service_role key, or DATABASE_URL instead (an anon key is not used: the "
                "hub grants anon nothing)"
            )
        return RestTarget(
            settings.supabase_url, settings.supabase_service_role_key.get_secret_value()
        )
    server = start_embedded(settings.embedded_data_dir)
    return SqlTarget(server.url, f"embedded PostgreSQL in {server.data_dir}", server)


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


def behind_transaction_pooler(url: str) -> bool:
    """True for URLs on PgBouncer's (6432) or Supavisor's transaction (6543) port."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        port = str(conninfo_to_dict(url).get("port") or "")
    except Exception:
        return False
    return port in POOLER_PORTS
