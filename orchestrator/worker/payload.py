"""What a local job asks a worker to run, read from its payload and checked once.

Two shapes (the contract of ``func_submit_job`` for the local provider):

- ``{"command": "ffmpeg -i in.mp4 out.webm"}``: a command line. It is split with
  :func:`shlex.split` (POSIX rules) and executed **directly, not through /bin/sh**: no
  pipes, redirections, globbing or ``$VAR`` expansion, so a quote or ``;`` in an argument
  is just a character. A job that wants a shell says so, e.g.
  ``{"command": "sh -c 'make && make test'"}``. The command line is user-supplied by
  design (whoever may submit jobs may run commands on the workers); running it without
  a shell only removes the surprise of an argument being read as shell syntax.
- ``{"callable": "package.module:function", "kwargs": {...}}``: a Python function,
  imported on the worker and called with the keyword arguments.

The jobs CLI checks a payload with the same :func:`parse_payload` before it submits, so a
malformed command never reaches the database, and the worker fails one that got there
by another path (SQL, REST) with the same clear reason instead of crashing.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import HubError

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class InvalidPayload(HubError):
    """A job payload the worker cannot run (malformed command, bad callable name)."""


@dataclass(frozen=True, slots=True)
class ShellCommand:
    """A command line, already split into the argument vector it will be executed with."""

    command: str
    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PythonCallable:
    """``module:function`` (the function part may be dotted: ``mod:Class.method``)."""

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def module(self) -> str:
        """The importable module name."""
        return self.target.partition(":")[0]

    @property
    def attribute(self) -> str:
        """The (possibly dotted) attribute path inside the module."""
        return self.target.partition(":")[2]


JobSpec = ShellCommand | PythonCallable


def split_command(command: str) -> tuple[str, ...]:
    """The argument vector of ``command``, or :class:`InvalidPayload` saying what is wrong."""
    try:
        argv = tuple(shlex.split(command))
    except ValueError as error:  # "No closing quotation", "No escaped character"
        raise InvalidPayload(
            f"malformed command {command!r}: {error} (quote with ' or \" and close every quote)"
        ) from None
    if not argv:
        raise InvalidPayload("empty command: give the program to run and its arguments")
    return argv


def check_callable(target: str) -> str:
    """``target`` if it reads ``module:function``, else :class:`InvalidPayload`."""
    if not _CALLABLE.match(target):
        raise InvalidPayload(f"malformed callable {target!r}: expected 'package.module:function'")
    return target


def parse_payload(payload: Any) -> JobSpec:
    """The job a payload describes; :class:`InvalidPayload` with one clear line otherwise."""
    if not isinstance(payload, Mapping):
        raise InvalidPayload(
            "payload must be a JSON object with 'command' or 'callable', "
            f"got {type(payload).__name__}"
        )
    has_command, has_callable = "command" in payload, "callable" in payload
    if has_command == has_callable:
        raise InvalidPayload("payload needs exactly one of 'command' or 'callable'")
    if has_command:
        command = payload["command"]
        if not isinstance(command, str):
            raise InvalidPayload("payload 'command' must be a string (a command line)")
        return ShellCommand(command, split_command(command))
    target = payload["callable"]
    if not isinstance(target, str):
        raise InvalidPayload("payload 'callable' must be a string 'module:function'")
    kwargs = payload.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise InvalidPayload("payload 'kwargs' must be a JSON object of keyword arguments")
    return PythonCallable(check_callable(target), dict(kwargs))
