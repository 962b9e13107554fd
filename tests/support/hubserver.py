"""`orchestrator serve` as a real process on a free loopback port, for the HTTP tests.

The child gets a clean hub environment (no variable of the developer's own), a secrets
file path of its own under the test's tmp dir, and whatever the test adds. ``stop()``
sends SIGTERM and returns the exit status with everything the process printed; a child
left running at the end is killed, so no test leaves a server behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from orchestrator.config import ACCEPTED

TOKEN = "test-admin-token-5f0c1b2e9a"  # the tests grep every output for it


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def clean_env(**env: str) -> dict[str, str]:
    """The process environment without any hub setting or secret, plus ``env``."""
    drop = set(ACCEPTED) | {"TEST_DATABASE_URL", "ORCHESTRATOR_API_TOKEN"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **env}


class PortTaken(Exception):
    """Someone bound the chosen port between choosing and binding."""


class HubServer:
    """One `orchestrator serve` child; use as a context manager."""

    def __init__(self, tmp: Path, *args: str, scheme: str = "http", **env: str) -> None:
        self.port = free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.tmp = tmp
        self.args = args
        defaults = {
            "ORCHESTRATOR_SECRETS_FILE": str(tmp / f"secrets-{self.port}.json"),
            "ORCHESTRATOR_LOG_LEVEL": "INFO",
        }
        self.env = clean_env(**{**defaults, **env})
        self.log = tmp / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self, *, wait: bool = True, verify: Any = True) -> HubServer:
        """Starts the process and waits until ``/health/live`` answers; a port that
        another process took meanwhile (other test runs share the machine) is replaced."""
        for _attempt in range(3):
            try:
                return self._start(wait, verify)
            except PortTaken:
                self.port = free_port()
                self.url = f"{self.url.partition('://')[0]}://127.0.0.1:{self.port}"
        raise AssertionError(f"no free port after 3 attempts:\n{self.output()}")

    def _start(self, wait: bool, verify: Any) -> HubServer:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "orchestrator",
                    "serve",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                cwd=self.tmp,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if wait:
            deadline = time.monotonic() + 60
            while True:
                if self.proc.poll() is not None:
                    if "address already in use" in self.output():
                        raise PortTaken(self.port)
                    raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.output()}")
                try:
                    if (
                        httpx.get(self.url + "/health/live", timeout=1, verify=verify).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"serve did not answer within 60 s:\n{self.output()}")
                time.sleep(0.05)
        return self

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signals the process and waits for it; its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def __enter__(self) -> HubServer:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        """GET ``path`` (with the admin token when given)."""
        return self.request("GET", path, token=token, **kwargs)

    def request(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Any request to the server, over a fresh connection."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)


def metric_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in an exposition (labels compared as given), or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None
