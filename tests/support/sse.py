"""A Server-Sent Events client for the tests: a real HTTP connection (httpx streaming),
parsed as the SSE spec says (lines end at LF; a blank line dispatches; ``id`` sets the
last event id even when the block has no data; ``:`` starts a comment)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx


class SseStream:
    """One open stream; ``next_event()`` returns the next message's ``(id, data)``."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        last_event_id: int | None = None,
        params: Any = None,
        read_timeout: float = 30,
    ) -> None:
        headers = {"Accept": "text/event-stream"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.client = httpx.Client(timeout=httpx.Timeout(10, read=read_timeout))
        self._context = self.client.stream("GET", url, headers=headers, params=params)
        self.response = self._context.__enter__()
        self._chunks = self.response.iter_raw()
        self._buffer = b""
        self.last_event_id: int | None = None
        self.comments: list[str] = []
        self.ended = False

    def _line(self) -> str | None:
        while b"\n" not in self._buffer:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.ended = True
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8").removesuffix("\r")

    def next_event(self, timeout: float = 30) -> tuple[int, dict[str, Any]] | None:
        """The next message with data, or None when the server ended the stream."""
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        while True:
            assert time.monotonic() < deadline, "no event within the timeout"
            line = self._line()
            if line is None:
                return None
            if line == "":
                if "id" in fields:
                    self.last_event_id = int(fields["id"])
                if "data" in fields:
                    return int(fields["id"]), json.loads(fields["data"])
                fields = {}
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")

    def quiet_until_heartbeat(self, timeout: float = 30) -> None:
        """Reads up to the next heartbeat comment; fails on any message with data."""
        deadline = time.monotonic() + timeout
        pending: str | None = None
        beat = False
        while True:
            assert time.monotonic() < deadline, "no heartbeat within the timeout"
            line = self._line()
            assert line is not None, "the stream ended"
            assert not line.startswith("data"), f"unexpected event: {line}"
            if line.startswith("id:"):
                pending = line[3:].strip()
            elif line.startswith(":") and "heartbeat" in line:
                beat = True
            elif line == "":
                if pending is not None:
                    self.last_event_id = int(pending)
                pending = None
                if beat:
                    return

    def events(self, n: int, timeout: float = 30) -> list[tuple[int, dict[str, Any]]]:
        """The next ``n`` messages (fails if the stream ends first)."""
        got = []
        for _ in range(n):
            event = self.next_event(timeout)
            assert event is not None, f"the stream ended after {len(got)} of {n} events"
            got.append(event)
        return got

    def close(self) -> None:
        """Hangs up (the server must notice and free the stream)."""
        self._context.__exit__(None, None, None)
        self.client.close()

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
