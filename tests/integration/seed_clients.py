"""What the seed orchestrator's own clients send, for the tests that replay it against the
hub through the PostgREST stand-in.

Written from seed 004 and the shapes issue 21 observed (not from the seed's code): its
workers and its ``DatabaseLogHandler`` call RPCs with supabase-py, its
``scripts/query_logs.py`` and dashboard read tables and views with supabase-py's query
builder, all with the project's key in ``apikey`` and ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from supabase import Client, ClientOptions, create_client

from tests.support.fake_postgrest import FakePostgrest

# JWT-shaped, like a Supabase key (the stand-in compares keys as opaque strings).
KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2VlZA"
ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2VlZA"
WORKER = "gpu-20250115-abc123"


def seed_log(message: str, level: str = "INFO", **extra: Any) -> dict[str, Any]:
    """A log entry as the seed's worker ``LogBuffer`` builds it: ``level``, not
    ``log_level``, and no source: the heartbeat says whose it is."""
    return {"timestamp": datetime.now(UTC).isoformat(), "level": level, "message": message, **extra}


def seed_beat(
    worker: str = WORKER, status: str = "active", logs: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The body of the seed worker's ``func_worker_heartbeat_with_logs`` call."""
    return {
        "worker_id_param": worker,
        "vram_total_mb_param": 81920,
        "vram_used_mb_param": 40960,
        "logs_param": logs or [],
        "status_param": status,
    }


def handler_entry(message: str, level: str = "INFO", **extra: Any) -> dict[str, Any]:
    """A record as the seed's orchestrator ``DatabaseLogHandler`` sends it (no id: the
    seed's table made one)."""
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "source_type": "orchestrator_gpu",
        "source_id": "orchestrator-main",
        "log_level": level,
        "message": message,
        "task_id": None,
        "worker_id": None,
        "cycle_number": 42,
        "metadata": {"logger": "gpu_orchestrator.control_loop"},
        **extra,
    }


def post(
    fake: FakePostgrest, function: str, body: dict[str, Any], key: str = KEY
) -> httpx.Response:
    """``POST /rest/v1/rpc/<function>`` as supabase-py sends it."""
    return httpx.post(
        f"{fake.url}/rest/v1/rpc/{function}",
        json=body,
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        timeout=10,
    )


def get(fake: FakePostgrest, path_and_query: str, key: str = KEY) -> httpx.Response:
    """``GET /rest/v1/<path_and_query>`` exactly as written (already URL-encoded)."""
    return httpx.get(
        f"{fake.url}/rest/v1/{path_and_query}",
        headers={"apikey": key, "Authorization": f"Bearer {key}"},
        timeout=10,
    )


@pytest.fixture
def fake(db_url: str) -> Iterator[FakePostgrest]:
    """The stand-in over this test's database, capped at Supabase's 1,000 rows."""
    with FakePostgrest(db_url, KEY, max_rows=1000) as server:
        yield server


@pytest.fixture
def seed(fake: FakePostgrest) -> Iterator[Client]:
    """A supabase-py client of the stand-in, as the seed's scripts and workers make one."""
    with httpx.Client(timeout=10) as http:
        yield create_client(fake.url, KEY, options=ClientOptions(httpx_client=http))
