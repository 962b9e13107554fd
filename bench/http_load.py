"""A paced HTTP/1.1 load generator on raw asyncio sockets (stdlib only), shared by the
HTTP benches.

Why not httpx: on this 2-core machine an httpx client could not keep 200 requests/s on
schedule (p50 619 ms, client-bound: OPS §3.2), so it measures itself. Here each of
``connections`` keep-alive connections sends its share of the requests at fixed times
(open loop: request k of a connection is due at start + offset + k x interval), and a
request's latency runs from its *due* time to the end of its response, so a server that
falls behind is charged for the queueing it causes (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    """Latencies in seconds of the answered requests; errors by kind."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def pct(self, q: float) -> float:
        """The q-th percentile latency in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def one_connection(
    host: str,
    port: int,
    path: str,
    due: list[float],
    result: LoadResult,
    source: str | None = None,
) -> None:
    """Sends one request at each due time (perf_counter seconds) on one connection
    (leaving from address ``source`` when given: several loopback clients)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hub-bench\r\n\r\n"
    data = request.encode("ascii")
    local = (source, 0) if source else None
    reader, writer = await asyncio.open_connection(host, port, local_addr=local)
    try:
        for when in due:
            delay = when - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                writer.write(data)
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError) as error:
                kind = type(error).__name__
                result.errors[kind] = result.errors.get(kind, 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
                continue
            result.latencies.append(time.perf_counter() - when)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def paced_load(
    host: str,
    port: int,
    path: str,
    rate: float,
    seconds: float,
    connections: int = 8,
    sources: list[str] | None = None,
) -> LoadResult:
    """``rate`` requests/s for ``seconds``, spread evenly over ``connections`` (connection
    i leaving from ``sources[i % len(sources)]`` when given)."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    schedule: list[list[float]] = [[] for _ in range(connections)]
    for k in range(total):
        schedule[k % connections].append(start + k / rate)
    result = LoadResult()
    began = time.perf_counter()
    await asyncio.gather(
        *(
            one_connection(
                host, port, path, due, result, sources[i % len(sources)] if sources else None
            )
            for i, due in enumerate(schedule)
        )
    )
    result.elapsed = time.perf_counter() - began
    return result


async def sequential(host: str, port: int, path: str, count: int) -> LoadResult:
    """``count`` requests one after another on one keep-alive connection (no pacing)."""
    result = LoadResult()
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")
    began = time.perf_counter()
    try:
        for _ in range(count):
            sent = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            result.latencies.append(time.perf_counter() - sent)
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()
    result.elapsed = time.perf_counter() - began
    return result
