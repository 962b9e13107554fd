"""bench/upload: the S3 upload endpoint's throughput against the disk it writes to, and
the server's memory while a big object streams in, in the same run.

A real ``orchestrator serve --no-daemon`` on its own embedded PostgreSQL (fresh, in a
temporary directory) stores objects in a temporary directory; a job credential signs
every request (SigV4 by botocore's own signer, ``UNSIGNED-PAYLOAD`` so the client does
not hash: the numbers are the server's). Clients are plain ``http.client`` connections
sending one preallocated buffer over loopback (cheap, GIL released in ``sendall``).

1. one PUT stream of ``--size`` MiB vs writing the same bytes to a file in the same
   directory (1 MiB writes + fsync, the server's own discipline): target >= 40 %;
2. 4 parallel multipart uploads (8 MiB parts) of ``--size``/4 MiB each vs writing the
   same total to the disk: target >= 60 %;
3. the server's resident memory growth (psutil, sampled every 20 ms) during one PUT of
   ``--memory-size`` MiB (default 1024): target <= 64 MiB.

    python bench/upload.py [--size 512] [--memory-size 1024] [--rounds 1]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from tabulate import tabulate

from orchestrator.db import migrate
from orchestrator.db.embedded import start_embedded
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls
from orchestrator.storage import calls

MiB = 1024 * 1024
PART = 8 * MiB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UnsignedPayload(S3SigV4Auth):
    """botocore's S3 signer with the payload left unsigned (the client never hashes)."""

    def payload(self, request: Any) -> str:
        return "UNSIGNED-PAYLOAD"


class Client:
    """Signed requests to the endpoint over one keep-alive connection."""

    def __init__(self, port: int, cred: dict[str, Any]) -> None:
        self.port = port
        self.creds = Credentials(cred["access_key_id"], cred["secret_access_key"])
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.retries = 0

    def request(self, method: str, path: str, body: bytes | memoryview = b"") -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.port}/api/cloud/storage{path}"
        request = AWSRequest(method, url, headers={"Content-Length": str(len(body))})
        UnsignedPayload(self.creds, "s3", "us-east-1").add_auth(request)
        headers = {k: v for k, v in request.headers.items()}
        try:
            self.conn.request(method, "/api/cloud/storage" + path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as error:
            # Counted and reported: S3 clients retry such a request on a new connection.
            self.retries += 1
            print(f"{method} {path}: {error!r}; retried on a new connection", file=sys.stderr)
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            self.conn.request(method, "/api/cloud/storage" + path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path} answered {response.status}: {data[:300]!r}")
        return response.status, data

    def put(self, key: str, body: memoryview) -> None:
        self.request("PUT", f"/outputs/{key}", body)

    def multipart(self, key: str, body: memoryview, etags: list[str]) -> None:
        _, created = self.request("POST", f"/outputs/{key}?uploads")
        match = re.search(rb"<UploadId>([^<]+)</UploadId>", created)
        assert match is not None
        upload = match.group(1).decode()
        parts = []
        for number, start in enumerate(range(0, len(body), PART), start=1):
            self.request(
                "PUT",
                f"/outputs/{key}?partNumber={number}&uploadId={upload}",
                body[start : start + PART],
            )
            parts.append(number)
        listing = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
            for n, e in zip(parts, etags, strict=True)
        )
        xml = f"<CompleteMultipartUpload>{listing}</CompleteMultipartUpload>".encode()
        self.request("POST", f"/outputs/{key}?uploadId={upload}", xml)

    @staticmethod
    def etags(body: memoryview) -> list[str]:
        """The parts' MD5s, computed before the clock starts (the server computes its own)."""
        import hashlib

        return [
            hashlib.md5(body[s : s + PART], usedforsecurity=False).hexdigest()
            for s in range(0, len(body), PART)
        ]


def disk_write(directory: Path, buffer: memoryview, total: int) -> float:
    """Seconds to write ``total`` bytes in 1 MiB writes and fsync (the baseline)."""
    path = directory / f"baseline-{time.monotonic_ns()}"
    started = time.perf_counter()
    with open(path, "wb") as out:
        written = 0
        while written < total:
            chunk = buffer[: min(MiB, total - written)]
            out.write(chunk)
            written += len(chunk)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


def md5_seconds(buffer: memoryview, total: int) -> float:
    """Seconds to MD5 ``total`` bytes in 1 MiB steps: the ETag's cost, a ceiling for any
    S3 server on one core (context for the ratios, not a target)."""
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    started = time.perf_counter()
    for start in range(0, total, MiB):
        digest.update(buffer[start : start + MiB])
    return time.perf_counter() - started


def parser_name() -> str:
    """The HTTP parser uvicorn picks (``http="auto"``): httptools when installed, else h11."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def timed(function: Callable[[], None]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def parallel(clients: list[Client], keys: list[str], body: memoryview, etags: list[str]) -> None:
    threads = [
        threading.Thread(target=c.multipart, args=(k, body, etags))
        for c, k in zip(clients, keys, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def rss_growth(pid: int, action: Callable[[], None]) -> tuple[float, float]:
    """(MiB of resident memory growth at the peak, seconds) while ``action`` runs."""
    process = psutil.Process(pid)
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        seconds = timed(action)
    finally:
        done.set()
        sampler.join()
    return (peak - before) / MiB, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="MiB of the single PUT")
    parser.add_argument("--memory-size", type=int, default=1024, help="MiB of the memory PUT")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    size = args.size * MiB
    buffer = memoryview(os.urandom(max(size, args.memory_size * MiB)))
    results: dict[str, list[float]] = {k: [] for k in ("disk1", "put", "disk4", "multi", "md5")}
    with tempfile.TemporaryDirectory(prefix="hub-bench-upload-") as tmp:
        root = Path(tmp)
        storage = root / "storage"
        storage.mkdir()
        server = start_embedded(root / "pg")
        with __import__("psycopg").connect(server.url, autocommit=True) as conn:
            migrate.migrate(conn)
        with PsycopgExecutor.connect(server.url) as ex:
            ex.run(job_calls.upsert_hub_user("bench", "bench"))
            job_id = ex.run(job_calls.submit_job("bench", "upload", {"command": "true"})).job_id
            cred = ex.run(calls.issue_upload_credential(str(job_id)))
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ORCHESTRATOR_", "DATABASE_URL"))
        }
        hub = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--no-daemon", "--port", str(port)],
            env={
                **env,
                "DATABASE_URL": server.url,
                "ORCHESTRATOR_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                "ORCHESTRATOR_SECRETS_FILE": str(root / "none.json"),
                "ORCHESTRATOR_STORAGE_DIR": str(storage),
                "ORCHESTRATOR_STORAGE_MIN_FREE_BYTES": "0",
            },
            cwd=tmp,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (
                        httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code
                        == 200
                    ):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or hub.poll() is not None:
                    raise SystemExit("serve did not start")
                time.sleep(0.1)
            prefix = f"{job_id}/"
            quarter = buffer[: size // 4]
            quarter_etags = Client.etags(quarter)
            clients: list[Client] = []
            # A fresh connection for each phase: uvicorn closes one idle for 5 s.
            for round_ in range(args.rounds):
                results["md5"].append(md5_seconds(buffer, size))
                results["disk1"].append(disk_write(storage, buffer, size))
                one = Client(port, cred)
                results["put"].append(
                    timed(lambda r=round_, c=one: c.put(f"{prefix}single-{r}", buffer[:size]))
                )
                results["disk4"].append(disk_write(storage, buffer, 4 * len(quarter)))
                keys = [f"{prefix}multi-{round_}-{i}" for i in range(4)]
                four = [Client(port, cred) for _ in range(4)]
                results["multi"].append(
                    timed(lambda k=keys, f=four: parallel(f, k, quarter, quarter_etags))
                )
                clients += [one, *four]
            one = Client(port, cred)
            one.put(f"{prefix}warm", buffer[:MiB])
            clients.append(one)
            growth, memory_seconds = rss_growth(
                hub.pid, lambda: one.put(f"{prefix}memory", buffer[: args.memory_size * MiB])
            )
        finally:
            hub.terminate()
            hub.wait(30)
            server.stop()

    def mbps(total: int, seconds: list[float]) -> float:
        return total / MiB / statistics.median(seconds)

    disk1, put = mbps(size, results["disk1"]), mbps(size, results["put"])
    disk4, multi = mbps(4 * (size // 4), results["disk4"]), mbps(4 * (size // 4), results["multi"])
    md5 = mbps(size, results["md5"])
    rows = [
        [
            "(context) MD5 of the bytes, one core",
            f"{args.size} MiB",
            f"{md5:.0f}",
            f"{md5 / disk1:.2f}",
            "",
            "",
        ],
        ["disk write (baseline)", f"{args.size} MiB", f"{disk1:.0f}", "", "", ""],
        [
            "one PUT stream",
            f"{args.size} MiB",
            f"{put:.0f}",
            f"{put / disk1:.2f}",
            ">= 0.40",
            "met" if put / disk1 >= 0.40 else "NOT met",
        ],
        ["disk write (baseline)", f"4 x {args.size // 4} MiB", f"{disk4:.0f}", "", "", ""],
        [
            "4 parallel multipart",
            f"4 x {args.size // 4} MiB",
            f"{multi:.0f}",
            f"{multi / disk4:.2f}",
            ">= 0.60",
            "met" if multi / disk4 >= 0.60 else "NOT met",
        ],
    ]
    print(
        f"\nUploads over loopback vs the same bytes written to the same disk, "
        f"{args.rounds} round(s), medians; uvicorn's HTTP parser: {parser_name()}"
    )
    print(tabulate(rows, headers=["what", "bytes", "MiB/s", "ratio", "target", "verdict"]))
    print(
        f"\nserver RSS growth during one {args.memory_size} MiB PUT "
        f"({args.memory_size / memory_seconds:.0f} MiB/s): {growth:.1f} MiB "
        f"(target <= 64 MiB): {'met' if growth <= 64 else 'NOT met'}"
    )
    retries = sum(c.retries for c in clients)
    print(f"requests retried on a new connection after the server closed one: {retries}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
