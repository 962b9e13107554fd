"""A small PostgREST stand-in: ``POST /rest/v1/rpc/<function>`` and table reads
(``GET /rest/v1/<table or view>``) served from a real database.

Supabase's REST gateway (PostgREST) cannot be installed here and the project does not
mock its own database, so this real HTTP server on 127.0.0.1 speaks the part of
PostgREST's protocol the hub and the seed orchestrator's clients use (RPC with named
arguments, overloads resolved by argument names as PostgREST resolves them, table reads
as in :mod:`tests.support.postgrest_reads`, ``apikey``/``Authorization``, PostgREST-shaped
JSON errors and status codes) and runs each request on real PostgreSQL. Tests queue
canned failures (429, 503, an HTML proxy page...) with ``fail_next`` and inspect what
clients sent in ``requests``.

``max_rows`` plays PostgREST's ``db-max-rows``: a table read, and a function result that
is a JSON array (what a set-returning function gives), are cut to that many rows,
silently, as PostgREST does. A function returning one jsonb object (every hub function)
is one row and is not cut.

Roles: requests with ``api_key`` run as the role of ``database_url``, or as ``role`` when
given (``SET ROLE``, as PostgREST switches to the JWT's role); requests with ``anon_key``
run as ``anon``, as Supabase's anon key does. Not reproduced: JWT verification (keys are
compared as opaque strings), GET/HEAD RPC, set-returning or void functions (every hub
function returns one jsonb), ``Prefer``, writes to tables, schemas besides public.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from tests.support.postgrest_reads import ReadRefused, content_range, parse_read, read_statement

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_RPC_PATH = re.compile(r"^/rest/v1/rpc/([^/?#]+)/?(?:\?.*)?$")
_TABLE_PATH = re.compile(r"^/rest/v1/([^/?#]+)/?(?:\?(.*))?$")
_JSON = "application/json; charset=utf-8"

# Every overload of public.<fn>: number of defaults, and the names, modes and types of
# all its arguments (modes empty when all are IN).
_LOOKUP = """
SELECT p.pronargdefaults, coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
       array(SELECT format_type(t, NULL)
               FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]))
                    WITH ORDINALITY AS u(t, n) ORDER BY n)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND p.proname = %s AND p.prokind = 'f'
 ORDER BY p.oid
"""
# A relation PostgREST would serve: a table, partition, view or foreign table in public.
_RELATION = """
SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""


class RecordedRequest(NamedTuple):
    """A request: path, headers (lower-case names), JSON body (text if not JSON), and
    when it arrived (``time.monotonic()``)."""

    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = 0.0


class _Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()


def _error(status: int, code: str, message: str, details: Any = None, hint: Any = None,
           headers: tuple[tuple[str, str], ...] = ()) -> _Reply:  # fmt: skip
    body = {"code": code, "message": message, "details": details, "hint": hint}
    return _Reply(status, json.dumps(body).encode(), _JSON, headers)


def status_for_sqlstate(sqlstate: str) -> int:
    """PostgREST's HTTP status for a PostgreSQL error code.

    From the table in PostgREST's docs (references/errors, "HTTP Status Codes"). There,
    40001/40P01 (serialization failure, deadlock) and 57P01/57P03 (admin shutdown,
    cannot connect now) are 500, not 409/503; only a lost connection (no SQLSTATE) is
    PostgREST's own 503. 42501 is 401 for an anonymous request and 403 with a JWT; a
    request here always carries the key, so 403.
    """
    exact = {"23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400,
             "42883": 404, "42P01": 404, "42P17": 500, "42501": 403}  # fmt: skip
    by_class = {"08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500,
                "38": 500, "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500,
                "57": 500, "58": 500, "F0": 500, "HV": 500, "P0": 500, "XX": 500}  # fmt: skip
    return exact.get(sqlstate, by_class.get(sqlstate[:2], 400))


class FakePostgrest:
    """PostgREST's RPC endpoint and table reads backed by ``database_url``; a context
    manager."""

    def __init__(
        self,
        database_url: str,
        api_key: str,
        *,
        max_rows: int | None = None,
        role: str | None = None,
        anon_key: str | None = None,
    ) -> None:
        self.database_url = database_url
        self.api_key = api_key
        self.max_rows = max_rows
        self.role = role
        self.anon_key = anon_key
        self._lock = threading.Lock()
        self._canned: deque[tuple[str | None, _Reply]] = deque()
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakePostgrest:
        """Binds a free port on 127.0.0.1 and serves from a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 (one request per connection): after stop() nothing still answers.
            def do_POST(self) -> None:
                self._answer("POST")

            def do_GET(self) -> None:
                self._answer("GET")

            def _answer(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = fake._handle(self.path, headers, raw, method)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass  # keeps test output clean; fake.requests records every request

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the listening socket: the port then refuses."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakePostgrest:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the project URL (REST lives under /rest/v1)."""
        if self._server is None:
            raise RuntimeError("FakePostgrest is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None,
                  body: dict[str, Any] | str | None = None,
                  function: str | None = None) -> None:  # fmt: skip
        """Answers the next ``times`` requests with ``status``, before auth or database.

        ``body``: a dict goes as JSON, a str as ``text/html`` (a proxy's error page), None
        as a PostgREST-shaped JSON error. ``retry_after`` sets the Retry-After header.
        ``function``: only requests to ``/rest/v1/rpc/<function>`` get it; others pass.
        """
        headers = (("Retry-After", retry_after),) if retry_after is not None else ()
        if isinstance(body, str):
            reply = _Reply(status, body.encode(), "text/html; charset=utf-8", headers)
        elif body is None:
            reply = _error(status, str(status), f"canned HTTP {status}", headers=headers)
        else:
            reply = _Reply(status, json.dumps(body).encode(), _JSON, headers)
        with self._lock:
            self._canned.extend([(function, reply)] * times)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy; thread-safe)."""
        with self._lock:
            return list(self._requests)

    def _handle(
        self, path: str, headers: dict[str, str], raw: bytes, method: str = "POST"
    ) -> _Reply:
        try:  # PostgREST's JSON parser refuses NaN/Infinity, so this one does too
            body: Any = json.loads(raw, parse_constant=_refuse) if raw else None
            valid = body is None or isinstance(body, dict)
        except ValueError:
            body, valid = raw.decode("utf-8", "replace"), False
        with self._lock:
            self._requests.append(RecordedRequest(path, headers, body, time.monotonic()))
            canned = self._take_canned(path)
        if canned is not None:
            return canned
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        key = headers.get("apikey", bearer)
        if key not in (self.api_key, self.anon_key) or bearer not in ("", key):
            return _error(401, "PGRST301", "Invalid API key", None,
                          "Double check your Supabase `anon` or `service_role` API key.",
                          (("WWW-Authenticate", 'Bearer error="invalid_token"'),))  # fmt: skip
        role = "anon" if key == self.anon_key else self.role
        match = _RPC_PATH.match(path)
        if method == "GET":
            table = _TABLE_PATH.match(path)
            if match is not None or table is None:
                return _error(404, "PGRST125", f"Invalid path specified in request URL: {path}")
            return self._read(table.group(1), table.group(2) or "", role)
        if match is None:
            return _error(404, "PGRST125", f"Invalid path specified in request URL: {path}")
        if not valid:
            return _error(400, "PGRST102", "Empty or invalid json")
        return self._call(match.group(1), body or {}, role)

    def _take_canned(self, path: str) -> _Reply | None:
        """The first canned reply meant for ``path`` (any path, or its function), if any;
        called with the lock held."""
        match = _RPC_PATH.match(path)
        called = match.group(1) if match else None
        for index, (function, reply) in enumerate(self._canned):
            if function is None or function == called:
                del self._canned[index]
                return reply
        return None

    def _connect(self, role: str | None) -> psycopg.Connection[Any]:
        """A connection for one request, in UTC (as Supabase's), as ``role`` if given."""
        conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=5)
        conn.execute("SET TimeZone = 'UTC'")
        if role is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        return conn

    def _read(self, relation: str, query: str, role: str | None) -> _Reply:
        """A table read (``GET /rest/v1/<relation>?...``) as a JSON array of rows."""
        try:
            read = parse_read(relation, query)
        except ReadRefused as refused:
            return _error(refused.status, refused.code, refused.message)
        try:
            with self._connect(role) as conn:
                if conn.execute(_RELATION, [relation]).fetchone() is None:
                    return _error(
                        404, "PGRST205",
                        f"Could not find the table 'public.{relation}' in the schema cache")  # fmt: skip
                statement, params = read_statement(read, self.max_rows)
                row = conn.execute(statement, params).fetchone()
        except psycopg.Error as error:
            return _db_error(error, anonymous=role == "anon")
        text = row[0] if row is not None else "[]"
        count = len(json.loads(text))
        return _Reply(
            200, text.encode(), _JSON, (("Content-Range", content_range(read.offset, count)),)
        )

    def _call(self, function: str, args: dict[str, Any], role: str | None = None) -> _Reply:
        """Runs ``SELECT public.<function>(<arg> => %s::<type>, ...)`` and returns its JSON."""
        signature = f"public.{function}({', '.join(sorted(args))})"
        not_found = _error(
            404, "PGRST202", f"Could not find the function {signature} in the schema cache",
            None, "If a new function was created in the database with this name and "
            "parameters, try reloading the schema cache.")  # fmt: skip
        if not all(_IDENTIFIER.match(name) for name in (function, *args)):
            return not_found
        try:
            with self._connect(role) as conn:
                candidates = _resolve(conn, function, set(args))
                if not candidates:
                    return not_found
                if len(candidates) > 1:
                    return _ambiguous(function, candidates)
                arg_types = candidates[0]
                named = [  # names checked above; type names come from format_type()
                    sql.SQL("{} => %s::{}").format(sql.Identifier(n), sql.SQL(arg_types[n]))
                    for n in args
                ]
                query = sql.SQL("SELECT to_jsonb(public.{}({}))::text")
                row = conn.execute(
                    query.format(sql.Identifier(function), sql.SQL(", ").join(named)),
                    [_as_text(args[n], arg_types[n]) for n in args],
                ).fetchone()
        except psycopg.Error as error:
            return _db_error(error, anonymous=role == "anon")
        text = row[0] if row is not None and row[0] is not None else "null"
        if self.max_rows is not None and text.startswith("["):
            text = json.dumps(json.loads(text)[: self.max_rows])
        return _Reply(200, text.encode())  # a jsonb result goes back as-is


def _resolve(conn: psycopg.Connection[Any], fn: str, names: set[str]) -> list[dict[str, str]]:
    """{argument: type} of every overload that fits the call as PostgREST matches them
    (every argument given is one of its own, every one without a default is given):
    PostgREST calls the one that fits and refuses the call when several do."""
    fitting = []
    for defaults, arg_names, modes, types in conn.execute(_LOOKUP, [fn]):
        inputs = [(arg_names[i] if i < len(arg_names) else "", t)
                  for i, t in enumerate(types) if not modes or modes[i] in "ibv"]  # fmt: skip
        required = {n for n, _ in inputs[: len(inputs) - defaults]}
        if required <= names <= {n for n, _ in inputs}:
            fitting.append(dict(inputs))
    return fitting


def _ambiguous(function: str, candidates: list[dict[str, str]]) -> _Reply:
    """PostgREST's answer when several overloads fit a call's argument names (300)."""
    signatures = ", ".join(
        f"public.{function}({', '.join(f'{n} => {t}' for n, t in c.items())})" for c in candidates
    )
    return _error(
        300, "PGRST203", f"Could not choose the best candidate function between: {signatures}",
        None, "Try renaming the parameters or the function itself in the database so "
        "function overloading can be resolved")  # fmt: skip


def _as_text(value: Any, type_name: str) -> str | None:
    """An argument as text to cast: JSON text for json(b), else strings as they are."""
    if value is None:
        return None
    if type_name in ("json", "jsonb") or not isinstance(value, str):
        return json.dumps(value)
    return value


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _db_error(error: psycopg.Error, *, anonymous: bool = False) -> _Reply:
    """A database error as PostgREST sends it: the SQLSTATE as ``code``, its own status
    (permission denied is 401 for the anonymous role, 403 for any other)."""
    state, d = error.sqlstate, error.diag
    if state is None:  # no answer from the server: connection refused or lost
        return _error(503, "PGRST001", "Database client error. Retrying the connection.")
    message = d.message_primary or str(error)
    status = 401 if anonymous and state == "42501" else status_for_sqlstate(state)
    return _error(status, state, message, d.message_detail, d.message_hint)
