"""``orchestrator secrets check|set``: which secrets resolve and from where (never their
values), and storing one in the secrets file (created 0600, value read from stdin)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from orchestrator.config import get_settings
from orchestrator.daemon.config import load_enterprise_config
from orchestrator.errors import ConfigError
from orchestrator.secrets import (
    WELL_KNOWN,
    build_secrets_manager,
    default_secrets_file,
    normalise_name,
    write_secret,
)


def register(commands: Any) -> None:
    """Adds the ``secrets`` subcommand."""
    parser = commands.add_parser("secrets", help="check and store secrets (never printed)")
    sub = parser.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="which well-known secrets resolve, and from where")
    check.add_argument("names", nargs="*", metavar="NAME", help="also check these names")
    check.add_argument("--config", type=Path, metavar="FILE", help="the daemon's YAML config file")
    check.set_defaults(run=_check)
    store = sub.add_parser("set", help="store a secret (value from stdin) in the secrets file")
    store.add_argument("name", metavar="NAME")
    store.add_argument("--file", type=Path, help="the secrets file (default: the configured one)")
    store.set_defaults(run=_set)


def _check(args: argparse.Namespace) -> int:
    settings = get_settings()
    names = list(WELL_KNOWN)
    try:
        config = load_enterprise_config(args.config, settings)
        names += [s.token_env for s in config.providers.values() if s.token_env]
    except ConfigError:
        pass  # no or bad daemon config: the well-known names still get checked
    names += [normalise_name(n) for n in args.names]
    manager = build_secrets_manager(settings)
    for provider in manager.providers:
        print(f"provider {provider.name}: {provider.describe()}")
    for name, source in manager.check(dict.fromkeys(names)):
        print(f"{name:<32} {source or 'missing'}")
    errors = manager.errors()
    for problem in errors.values():
        print(f"orchestrator: error: {problem}", file=sys.stderr)
    return 1 if errors else 0


def _set(args: argparse.Namespace) -> int:
    settings = get_settings()
    path = args.file or settings.secrets_file or default_secrets_file()
    name = normalise_name(args.name)
    if sys.stdin.isatty():
        value = getpass.getpass(f"value of {name}: ")
    else:
        value = sys.stdin.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise ConfigError(f"no value given for {name}: pipe it on stdin (printf %s VALUE | ...)")
    if "\x00" in value:
        raise ConfigError(
            f"the value of {name} contains a NUL character, which no file format keeps"
        )
    write_secret(path, name, value)
    print(f"stored {name} in {path} (mode 0600)")
    return 0
