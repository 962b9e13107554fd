"""open_executor picks the driver the settings name; the psycopg session reconnects."""

from __future__ import annotations

import pytest

from orchestrator.config import Settings
from orchestrator.db.executor import PsycopgSession, open_executor
from orchestrator.db.supabase import SupabaseExecutor
from orchestrator.errors import ConfigError, DatabaseUnavailable, InputRefused
from orchestrator.query import LogFilter, query_logs
from tests.integration.logrows import entry, insert
from tests.support.fake_postgrest import FakePostgrest

KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_database_url_reads_over_psycopg(db_url, conn):
    """DATABASE_URL: a psycopg session that reads the rows."""
    insert(conn, [entry(message="over psycopg")])
    with open_executor(settings(DATABASE_URL=db_url)) as db:
        assert isinstance(db, PsycopgSession)
        assert [r.message for r in query_logs(db, LogFilter()).rows] == ["over psycopg"]


def test_supabase_settings_read_over_rest(db_url, conn):
    """SUPABASE_URL + key without DATABASE_URL: supabase-py rpc through the stand-in."""
    insert(conn, [entry(message="over rest")])
    with FakePostgrest(db_url, KEY) as fake:
        env = settings(SUPABASE_URL=fake.url, SUPABASE_SERVICE_ROLE_KEY=KEY)
        with open_executor(env) as db:
            assert isinstance(db, SupabaseExecutor)
            assert [r.message for r in query_logs(db, LogFilter()).rows] == ["over rest"]
        assert fake.requests[-1].path == "/rest/v1/rpc/func_query_logs"
    no_key = open_executor(settings(SUPABASE_URL="https://x.supabase.co"))
    with pytest.raises(ConfigError, match="SUPABASE_SERVICE_ROLE_KEY"):
        no_key.__enter__()


def test_rest_errors_say_what_and_whether_to_retry(db_url):
    """A refused input is InputRefused (with the SQLSTATE); a 503 or no answer is
    DatabaseUnavailable, with the server's Retry-After."""
    with FakePostgrest(db_url, KEY) as fake, SupabaseExecutor(fake.url, KEY) as rest:
        with pytest.raises(InputRefused, match="HTTP 400: unknown log level 'x'") as info:
            rest.rpc("func_query_logs", {"min_level": "x"})
        assert not isinstance(info.value, DatabaseUnavailable)
        assert info.value.sqlstate == "22023"
        fake.fail_next(503, retry_after="2")
        with pytest.raises(DatabaseUnavailable, match="HTTP 503") as busy:
            rest.rpc("func_query_logs", {})
        assert busy.value.retry_after == 2.0
        fake.stop()
        with pytest.raises(DatabaseUnavailable, match="unreachable: ConnectError"):
            rest.rpc("func_query_logs", {})


def test_session_survives_a_lost_connection(db_url, conn):
    """A killed connection is one DatabaseUnavailable; the next call reconnects."""
    insert(conn, [entry(message="still here")])
    session = PsycopgSession(db_url, "the test database")
    try:
        assert query_logs(session, LogFilter()).rows
        pid = session._conn.info.backend_pid  # type: ignore[union-attr]
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseUnavailable, match="lost the connection to the test database"):
            query_logs(session, LogFilter())
        assert [r.message for r in query_logs(session, LogFilter()).rows] == ["still here"]
        with pytest.raises(InputRefused, match="unknown log level") as refused:
            session.run(_raw_query_call("nope"))
        assert refused.value.sqlstate == "22023"
    finally:
        session.close()


def _raw_query_call(level: str):
    """A call that skips the Python-side checks, to see the database's own refusal."""
    from orchestrator.db.calls import Call

    return Call("func_query_logs", {"min_level": level}, lambda raw: raw)


def test_unreachable_url_is_database_unavailable():
    """Nothing listening: one DatabaseUnavailable, raised at the first call."""
    session = PsycopgSession("postgresql://hub@127.0.0.1:1/none", "nowhere", connect_timeout=2)
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        query_logs(session, LogFilter())
