"""``orchestrator serve``: the hub's HTTP face (health, metrics, audit, admin config) with
the daemon's duties in the same event loop.

Same database rules as every command: ``DATABASE_URL``, else the embedded server (migrated
on start); a configured database without the current schema is one line and exit 1.
One process, one uvicorn worker (scale by running more instances: every shared state is
in PostgreSQL). uvicorn runs with ``proxy_headers=False`` (its default trusts 127.0.0.1,
which would believe any loopback client's ``X-Forwarded-For``) and no ``Server`` header.

SIGTERM or SIGINT: uvicorn stops accepting, open event streams end at once (their
clients resume with Last-Event-ID), requests in flight finish (at most 10 s), the
lifespan stops the duties and releases their leases, the log handlers are flushed,
exit status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

from orchestrator.cli.schema import prepared_database
from orchestrator.config import Settings, get_settings
from orchestrator.daemon.config import load_enterprise_config, set_enterprise_config
from orchestrator.errors import ConfigError
from orchestrator.logs.format import init_from_env
from orchestrator.providers.signatures import check_webhook_setup
from orchestrator.secrets import build_secrets_manager

logger = logging.getLogger("orchestrator.server")

GRACEFUL_SECONDS = 10


def _drop_color_message(record: logging.LogRecord) -> bool:
    """uvicorn attaches an ANSI-coloured copy of some messages; it is not a field."""
    record.__dict__.pop("color_message", None)
    return True


def register(commands: Any) -> None:
    """Adds the ``serve`` subcommand."""
    parser = commands.add_parser(
        "serve",
        help="serve health, Prometheus metrics and the admin API over HTTP (with the daemon)",
        description="Runs the hub's HTTP server (FastAPI on uvicorn) and, unless --no-daemon, "
        "the daemon's duties in the same process, until SIGTERM/SIGINT.",
    )
    parser.add_argument(
        "--host", help="address to bind (default $ORCHESTRATOR_HTTP_HOST or 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, help="TCP port (default $ORCHESTRATOR_HTTP_PORT or 8080)"
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="the daemon's YAML config file")
    parser.add_argument(
        "--no-daemon", action="store_true", help="API only: run no daemon duties in this process"
    )
    parser.add_argument(
        "--ssl-certfile", type=Path, metavar="FILE", help="serve HTTPS with this PEM certificate"
    )
    parser.add_argument(
        "--ssl-keyfile", type=Path, metavar="FILE", help="the certificate's PEM private key"
    )
    parser.add_argument("--public-url", help="external base URL (default $ORCHESTRATOR_PUBLIC_URL)")
    parser.set_defaults(run=run)


def _tls(args: argparse.Namespace, settings: Settings) -> tuple[str | None, str | None]:
    cert = args.ssl_certfile or settings.ssl_cert
    key = args.ssl_keyfile or settings.ssl_key
    if (cert is None) != (key is None):
        raise ConfigError(
            "TLS needs both a certificate and its key: give --ssl-certfile and --ssl-keyfile "
            "(or ORCHESTRATOR_SSL_CERT and ORCHESTRATOR_SSL_KEY)"
        )
    for path in (cert, key):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"TLS file {path} does not exist or is not a file")
    return (str(cert) if cert else None, str(key) if key else None)


def _bind(args: argparse.Namespace, settings: Settings) -> tuple[str, int]:
    port = args.port if args.port is not None else settings.http_port
    if not 1 <= port <= 65535:
        raise ConfigError(f"invalid --port {port}: expected a TCP port from 1 to 65535")
    return args.host or settings.http_host, port


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand."""
    settings = get_settings()
    if args.public_url:
        if not args.public_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"invalid --public-url {args.public_url!r}: "
                "expected a URL starting with https:// or http://"
            )
        settings = settings.model_copy(update={"public_url": args.public_url})
    host, port = _bind(args, settings)
    certfile, keyfile = _tls(args, settings)
    config = load_enterprise_config(args.config, settings)
    set_enterprise_config(config)
    init_from_env(settings)
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").addFilter(_drop_color_message)
    # During an outage asyncpg logs a traceback every second for each pool that keeps a
    # floor (the daemon's); health, readiness and the duties' own one-line errors say it.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    secrets = build_secrets_manager(settings)
    secrets.resolve("ORCHESTRATOR_API_TOKEN")
    for problem in secrets.errors().values():  # e.g. a secrets file others may read
        raise ConfigError(problem)
    check_webhook_setup(config, secrets, settings)

    import uvicorn

    from orchestrator.server.app import create_app

    with prepared_database(settings, logger) as target:
        app = create_app(
            settings, target.url, label=target.label, config=config, run_daemon=not args.no_daemon
        )
        app.state.hub.secrets = secrets
        hub = app.state.hub

        class DrainingServer(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                hub.draining = True  # event streams end now instead of at the 10 s cut
                super().handle_exit(sig, frame)

        server = DrainingServer(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                ssl_certfile=certfile,
                ssl_keyfile=keyfile,
                proxy_headers=False,
                server_header=False,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_SECONDS,
            )
        )
        # uvicorn re-raises the signal it caught once it has shut down gracefully; a
        # handler of ours receives it, so the exit status is 0, not "killed".
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
        try:
            server.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if not server.started:
            return 1
        logger.info("Server stopped")
        return 0
