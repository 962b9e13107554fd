"""Upgrading a database made by orchestrator-hub 0.1 gives the schema of a new one.

tests/fixtures/legacy_sql holds the migrations 0001..0015 exactly as 0.1 released them
(one file per change, functions copied into later files). A database built by them and
holding data of every kind is migrated by today's runner and compared, catalog fact by
catalog fact (functions, views, indexes, constraints, grants, RLS, policies, triggers,
comments), with a database migrated from scratch. Its data must be intact and usable.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.db import migrate
from orchestrator.db.schema_files import bookkeeping_sql
from tests.support.schema_snapshot import differences, snapshot

LEGACY = sorted((Path(__file__).parents[1] / "fixtures" / "legacy_sql").glob("*.sql"))


def _build_legacy(conn: psycopg.Connection[Any], upto: int) -> None:
    """Applies the 0.1 files 0001..upto and records them as 0.1's runner did."""
    conn.execute(bookkeeping_sql())
    for path in LEGACY[:upto]:
        text = path.read_text(encoding="utf-8")
        conn.execute(text)
        conn.execute(
            "INSERT INTO schema_migrations (filename, checksum, duration_ms) VALUES (%s, %s, 0)",
            [path.name, hashlib.sha256(text.encode()).hexdigest()],
        )


def _fill(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Data of every kind through the 0.1 API: logs, a heartbeat, users, limits, an
    approval, jobs claimed, completed and failed, a duty lease."""
    logs = [
        {"log_level": level, "source_type": "worker", "source_id": "gpu-1", "message": f"m{i}"}
        for i, level in enumerate(["INFO", "ERROR", "WARNING", "CRITICAL"] * 25)
    ]
    conn.execute("SELECT func_insert_logs_batch(%s::jsonb)", [json.dumps(logs)])
    conn.execute(
        "SELECT func_worker_heartbeat_with_logs('gpu-1', 'busy', NULL, '{}'::jsonb, %s::jsonb)",
        [json.dumps([{"level": "INFO", "message": "beat"}])],
    )
    conn.execute("SELECT func_upsert_hub_user('alice', 'org-1')")
    conn.execute("SELECT func_upsert_hub_user('bob', 'org-1')")
    conn.execute("SELECT func_set_concurrency_limit('organization', 'org-1', 2)")
    conn.execute("SELECT func_upsert_approval_rule('big', NULL, NULL, 100, 3600, false, true)")
    for n in range(6):
        conn.execute(
            "SELECT func_submit_job(%s::jsonb)",
            [
                json.dumps(
                    {
                        "user_id": "alice",
                        "job_type": "render",
                        "provider": "local",
                        "payload": {"command": f"echo {n}"},
                        "estimated_cost": 500 if n == 0 else 1,
                    }
                )
            ],
        )
    claimed = conn.execute("SELECT func_claim_jobs('w1', 2)").fetchone()[0]
    first, second = claimed["jobs"]
    conn.execute(
        "SELECT func_complete_job(%s, %s, '{}'::jsonb)", [first["job_id"], first["lease_token"]]
    )
    conn.execute(
        "SELECT func_fail_job(%s, %s, 'boom', false)", [second["job_id"], second["lease_token"]]
    )
    conn.execute("SELECT func_try_duty_lease('worker_reaping', 'daemon-a', 30)")
    return _counts(conn)


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    tables = [
        "system_logs",
        "workers",
        "hub_users",
        "jobs",
        "job_queue",
        "job_events",
        "approval_requests",
        "concurrency_limits",
        "daemon_leases",
    ]
    return {t: conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0] for t in tables}


@pytest.mark.parametrize("upto", [15, 8], ids=["0.1-released", "0.1-halfway"])
def test_an_upgraded_0_1_database_has_the_schema_of_a_new_one(empty_db_url, db_url, upto):
    """0.1's full set (or a database stopped halfway through it) upgrades to exactly the
    schema `migrate` makes from scratch, with every row kept and the rollups exact."""
    with psycopg.connect(empty_db_url, autocommit=True) as old:
        _build_legacy(old, upto)
        before = _fill(old) if upto == 15 else None
        status = migrate.status(old)
        assert not status.up_to_date and len(status.superseded) == upto
        migrate.migrate(old)
        assert migrate.status(old).up_to_date
        recorded = {r[0] for r in old.execute("SELECT filename FROM schema_migrations")}
        assert recorded == {f.name for f in migrate.discover().migrations}
        with psycopg.connect(db_url, autocommit=True) as new:
            assert differences(snapshot(old), snapshot(new)) == []
        if before is not None:
            assert _counts(old) == before
            stats = old.execute(
                "SELECT func_log_statistics(now() - interval '1 hour', now() + interval '1 hour')"
            ).fetchone()[0]
            raw = old.execute("SELECT count(*) FROM system_logs").fetchone()[0]
            assert stats["total"] == raw == before["system_logs"]
            claimed = old.execute("SELECT func_claim_jobs('w2', 1)").fetchone()[0]
            assert len(claimed["jobs"]) == 1  # the queue still works on the upgraded tables
