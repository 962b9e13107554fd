"""Backup and restore against real servers: the session's server (the embedded
PostgreSQL 16 by default) backed up, restored into the PostgreSQL 15 at 127.0.0.1:5432.

The big test stores ``BACKUP_TEST_LOG_ROWS`` log rows (default 300,000: a million took 90 s
here, over the minute a test may take; bench/backup.py restores the million) with jobs,
events, approvals and an audit chain, and checks that the restored database holds exactly
what the manifest says, answers the same statistics, and verifies its audit chain.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.backup import backup_database, read_manifest, restore_database
from orchestrator.backup.errors import BackupError
from orchestrator.db import migrate
from orchestrator.jobs import calls
from tests.conftest import PgServer
from tests.integration.jobkit import hub
from tests.support.counters import COUNTED

PG15_ADMIN = os.environ.get(
    "BACKUP_RESTORE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LOG_ROWS = int(os.environ.get("BACKUP_TEST_LOG_ROWS", "300000"))


def _listening(url: str) -> bool:
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(url)
    try:
        with socket.create_connection((str(parts.get("host")), int(parts.get("port") or 5432)), 2):
            return True
    except OSError:
        return False


@pytest.fixture
def pg15() -> PgServer:
    if not _listening(PG15_ADMIN):
        pytest.skip(f"no PostgreSQL listens at {PG15_ADMIN} (the restore target of these tests)")
    return PgServer(PG15_ADMIN)


@pytest.fixture
def target_url(pg15: PgServer) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL 15 server (the restore migrates it)."""
    name = pg15.create_database()
    try:
        yield pg15.url(name)
    finally:
        pg15.drop_database(name)


def store_logs(url: str, rows: int) -> None:
    """``rows`` log rows over the last days (some in daily partitions, most in the
    default one), through the parent so the rollup trigger counts them."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO public.system_logs (id, "timestamp", source_type, source_id, log_level,
                   severity_number, message, worker_id, task_id, exception, metadata)
               SELECT gen_random_uuid(), now() - g * interval '331 ms', 'worker', 'gpu-' || (g %% 8),
                      CASE WHEN g %% 50 = 0 THEN 'ERROR' WHEN g %% 7 = 0 THEN 'WARNING' ELSE 'INFO' END,
                      CASE WHEN g %% 50 = 0 THEN 17 WHEN g %% 7 = 0 THEN 13 ELSE 9 END,
                      'step ' || g || ' loss ' || (g %% 997), 'gpu-' || (g %% 8),
                      CASE WHEN g %% 1000 = 0 THEN gen_random_uuid() END,
                      CASE WHEN g %% 500 = 0 THEN E'Traceback\\nRuntimeError: CUDA out of memory' END,
                      jsonb_build_object('step', g, 'note', E'tab\\there \u00e9')
                 FROM generate_series(1, %s) AS g""",
            [rows],
        )


HOSTILE = [
    "line one\n\\.\nafter COPY's end marker",
    "back\\slashes \\N \\t and a\ttab\r\ncarriage",
    "\u00e9\u4e2d\U0001f600 " + "x" * 100_000,
    "",
]


def store_hostile_logs(url: str) -> None:
    """Rows whose text a COPY stream must escape: its end marker, backslashes, \\N,
    tabs, CR/LF, non-ASCII, a 100 kB message, an empty one."""
    with psycopg.connect(url, autocommit=True) as conn:
        for i, message in enumerate(HOSTILE):
            conn.execute(
                """INSERT INTO public.system_logs (id, "timestamp", source_type, source_id,
                       log_level, severity_number, message, exception, metadata)
                   VALUES (%s, now() - %s * interval '1 s', 'worker', 'hostile', 'ERROR', 17,
                           %s, %s, %s)""",
                [uuid.uuid4(), i, message, message or None, json.dumps({"m": message[:200]})],
            )


def hostile_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, message, exception, metadata FROM system_logs "
            "WHERE source_id = 'hostile' ORDER BY id"
        ).fetchall()


def store_jobs_and_audit(url: str) -> None:
    """Jobs in every state with events, approvals (decided and pending), a concurrency
    limit, and audit entries."""
    with hub(url) as h:
        h.user("alice", "org-1")
        h.user("bob", "org-1")
        h.set_limit("organization", "org-1", 5)
        h.run(calls.upsert_approval_rule("expensive", min_estimated_cost=10))
        for i in range(30):
            h.submit(
                "alice", payload={"command": f"echo {i}"}, estimated_cost=(20 if i % 5 == 0 else 1)
            )
        pending = h.sql("SELECT request_id FROM approval_requests WHERE status = 'pending'")
        h.run(calls.approve_request(str(pending[0][0]), "bob"))
        h.run(calls.reject_request(str(pending[1][0]), "bob"))
        for job in h.claim("w1", 10):
            h.run(calls.complete_job(job.job_id, job.lease_token, {"ok": True}))
        for job in h.claim("w1", 3):
            h.run(calls.fail_job(job.job_id, job.lease_token, "boom", retryable=False))
        h.claim("w2", 2)  # left running: counted in the concurrency limit
        for i in range(25):
            h.sql(
                "SELECT func_audit_append('config_changed', 'set', 'tester', '10.0.0.1', "
                "'setting', %s, %s::jsonb)",
                [f"s{i}", '{"from": 1, "to": 2}'],
            )


def table_counts(url: str, tables: list[str]) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


WINDOW = (datetime.now(UTC) - timedelta(days=10), datetime.now(UTC) + timedelta(days=1))


def answers(url: str) -> dict[str, Any]:
    """What the hub says about its data: statistics, errors, the job counters (as a
    scrape reads them: folded or not)."""
    since, until = WINDOW
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT func_fold_job_counters()")

        def one(query: str, *params: Any) -> Any:
            return conn.execute(query, params).fetchone()[0]  # type: ignore[index]

        stats = one("SELECT func_log_statistics(%s, %s)", since, until)
        errors = one("SELECT func_log_errors_summary(%s, %s)", since, until)
        rollup = conn.execute(
            "SELECT resolution, bucket, log_level, source_id, count, errors FROM system_log_counts "
            "ORDER BY 1, 2, 3, 4"
        ).fetchall()
        totals = conn.execute(f"{COUNTED} ORDER BY 1, 2, 3").fetchall()
        limits = conn.execute(
            "SELECT scope_type, scope_id, running FROM concurrency_limits"
        ).fetchall()
    for volatile in ("generated_at", "query_time_ms", "elapsed_ms"):
        stats.pop(volatile, None)
        errors.pop(volatile, None)
    return {"stats": stats, "errors": errors, "rollup": rollup, "totals": totals, "limits": limits}


def test_embedded_backup_restores_into_pg15_exactly(db_url, target_url, tmp_path):
    """300,000 log rows (BACKUP_TEST_LOG_ROWS), jobs, approvals and an audit chain: the
    restored database's counts equal the manifest, its statistics and job counters equal
    the source's, and its audit chain verifies (with the restore's own event appended)."""
    store_logs(db_url, LOG_ROWS - len(HOSTILE))
    store_hostile_logs(db_url)
    store_jobs_and_audit(db_url)
    before = answers(db_url)

    info = backup_database(db_url, directory=tmp_path)
    manifest = read_manifest(info.path)
    assert manifest["rows"]["public.system_logs"] == LOG_ROWS
    assert manifest["rows"] == table_counts(db_url, list(manifest["rows"]))
    assert manifest["schema"]["migrations"] and manifest["oldest_log"]

    report = restore_database(target_url, info.path)
    assert not report.replaced
    assert table_counts(target_url, list(manifest["rows"])) == {
        **manifest["rows"],
        "public.audit_log": manifest["rows"]["public.audit_log"] + 1,  # backup_restored
        "public.audit_event_counts": table_counts(target_url, ["public.audit_event_counts"])[
            "public.audit_event_counts"
        ],
    }
    assert answers(target_url) == before
    assert hostile_rows(target_url) == hostile_rows(db_url)
    with psycopg.connect(target_url) as conn:
        verify = conn.execute("SELECT func_audit_verify()").fetchone()[0]  # type: ignore[index]
        last = conn.execute("SELECT event_type FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
        server = conn.execute("SHOW server_version_num").fetchone()[0]  # type: ignore[index]
    assert verify["valid"] is True and verify["checked"] == manifest["rows"]["public.audit_log"] + 1
    assert last == ("backup_restored",)
    assert int(server) // 10000 == 15


def test_a_backup_taken_while_jobs_complete_restores_consistent(db_url, target_url, tmp_path):
    """Workers keep completing jobs while the backup runs: the restored jobs agree with
    their events and the counters equal a recount."""
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.set_limit("global", None, 1000)
        for i in range(400):
            h.submit("alice", payload={"command": f"echo {i}"})
    store_logs(db_url, 50_000)  # so the dump takes a moment
    stop = threading.Event()
    done = [0]

    def worker() -> None:
        with hub(db_url) as h:
            while not stop.is_set():
                jobs = h.claim("w1", 5)
                if not jobs:
                    break
                for job in jobs:
                    h.run(calls.complete_job(job.job_id, job.lease_token))
                    done[0] += 1

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while done[0] < 20 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        info = backup_database(db_url, directory=tmp_path)
        during = done[0]
    finally:
        stop.set()
        thread.join()
    restore_database(target_url, info.path)
    with psycopg.connect(target_url) as conn:
        mismatched = conn.execute(
            """SELECT count(*) FROM jobs j JOIN job_queue q USING (job_id)
                JOIN LATERAL (SELECT e.to_status FROM job_events e WHERE e.job_id = j.job_id
                                AND e.to_status IS NOT NULL AND e.event_type NOT LIKE 'provider\\_%%'
                              ORDER BY e.event_id DESC LIMIT 1) last ON true
               WHERE last.to_status <> j.status"""
        ).fetchone()[0]  # type: ignore[index]
        totals = dict(
            conn.execute(
                "SELECT to_status, sum(transitions) FROM job_status_totals GROUP BY 1"
            ).fetchall()
        )
        recount = dict(
            conn.execute(
                "SELECT to_status, count(*) FROM job_events WHERE to_status IS NOT NULL "
                "AND event_type NOT LIKE 'provider\\_%%' GROUP BY 1"
            ).fetchall()
        )
        running, counted = conn.execute(
            "SELECT (SELECT count(*) FROM job_queue WHERE status = 'running'), "
            "(SELECT running FROM concurrency_limits WHERE scope_type = 'global')"
        ).fetchone()  # type: ignore[misc]
        completed = conn.execute("SELECT count(*) FROM jobs WHERE status = 'completed'").fetchone()[
            0
        ]  # type: ignore[index]
    assert mismatched == 0
    assert {k: int(v) for k, v in totals.items()} == recount
    assert running == counted
    assert 20 <= completed <= during


def test_refusals_are_one_line_and_change_nothing(db_url, target_url, tmp_path):
    """Data without --force, a live daemon lease, a newer backup, a pooler URL."""
    store_jobs_and_audit(db_url)
    info = backup_database(db_url, directory=tmp_path)
    restore_database(target_url, info.path)
    before = table_counts(target_url, ["public.jobs", "public.audit_log"])

    with pytest.raises(BackupError, match=r"already holds hub data .* pass --force"):
        restore_database(target_url, info.path)
    with psycopg.connect(target_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO daemon_leases VALUES ('reaper', 'host-a:1', now(), now() + interval '1 minute')"
        )
    with pytest.raises(BackupError, match=r"a daemon \(host-a:1\) holds the 'reaper' lease"):
        restore_database(target_url, info.path)
    for url in (
        "postgresql://u@db.example:6543/postgres",
        "postgresql://u@aws-0-eu.pooler.supabase.com/postgres",
    ):
        with pytest.raises(BackupError, match=r"connection pooler .* direct URL"):
            restore_database(url, info.path)
        with pytest.raises(BackupError, match="connection pooler"):
            backup_database(url, directory=tmp_path)
    assert table_counts(target_url, ["public.jobs", "public.audit_log"]) == before

    # --force replaces: same counts as the manifest (plus this restore's audit event)
    report = restore_database(target_url, info.path, force=True)
    assert report.replaced
    assert table_counts(target_url, ["public.jobs"])["public.jobs"] == info.rows["public.jobs"]


def test_a_backup_from_a_newer_schema_is_refused(db_url, target_url, tmp_path):
    """A migration this code does not know: refused before the target is touched."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (filename, checksum, duration_ms) "
            "VALUES ('migrations/9999_future.sql', 'abc', 0)"
        )
    info = backup_database(db_url, directory=tmp_path)
    with pytest.raises(BackupError, match=r"made by a newer hub .*9999_future.sql.* upgrade"):
        restore_database(target_url, info.path)
    with psycopg.connect(target_url) as conn:
        assert migrate.status(conn).empty


def test_a_failed_load_rolls_everything_back(db_url, target_url, tmp_path):
    """A manifest that disagrees with the dump: the restore raises and the target keeps
    its previous data (the load is one transaction)."""
    store_jobs_and_audit(db_url)
    info = backup_database(db_url, directory=tmp_path)
    restore_database(target_url, info.path)
    before = table_counts(target_url, ["public.jobs", "public.audit_log"])
    lied = tmp_path / "lied" / info.path.name
    lied.parent.mkdir()
    _rewrite_manifest(info.path, lied, lambda m: m["rows"].update({"public.jobs": 9999}))
    with pytest.raises(
        BackupError, match=r"rolled back: .*restored 30 rows into public.jobs.*says 9999"
    ):
        restore_database(target_url, lied, force=True)
    assert table_counts(target_url, ["public.jobs", "public.audit_log"]) == before


def _rewrite_manifest(source: Path, dest: Path, change: Any) -> None:
    import io
    import json
    import tarfile

    with tarfile.open(source) as old, tarfile.open(dest, "w") as new:
        manifest = json.loads(old.extractfile("manifest.json").read())  # type: ignore[union-attr]
        change(manifest)
        data = json.dumps(manifest).encode()
        entry = tarfile.TarInfo("manifest.json")
        entry.size = len(data)
        new.addfile(entry, io.BytesIO(data))
        member = old.getmember("data.dump")
        new.addfile(member, old.extractfile(member))


def test_a_manifest_naming_an_unknown_table_is_refused(db_url, target_url, tmp_path):
    """Table names go into the restore's SQL: only tables this hub backs up are accepted."""
    info = backup_database(db_url, directory=tmp_path)
    evil = tmp_path / "evil" / info.path.name
    evil.parent.mkdir()
    _rewrite_manifest(
        info.path, evil, lambda m: m["rows"].update({'public.x"; DROP TABLE public.jobs; --': 0})
    )
    with pytest.raises(BackupError, match="which this hub does not back up"):
        restore_database(target_url, evil)
    with psycopg.connect(target_url) as conn:
        assert migrate.status(conn).empty


def test_not_a_backup_is_one_line(target_url, tmp_path):
    junk = tmp_path / "hub-backup-20260101T000000Z.tar"
    junk.write_bytes(b"\0" * 1024 + uuid.uuid4().bytes)
    with pytest.raises(BackupError, match="is not a hub backup"):
        restore_database(target_url, junk)
    with pytest.raises(BackupError, match="does not exist"):
        restore_database(target_url, tmp_path / "missing.tar")


def test_a_freshly_migrated_empty_hub_takes_a_restore_without_force(db_url, target_url, tmp_path):
    """`orchestrator migrate` first, then restore: the row the migrations write themselves
    (the upload signing key) is not hub data, so nothing asks for --force, the report
    says nothing was replaced, and the backup's key wins (credentials handed out before
    the backup keep working on the restored hub)."""
    store_jobs_and_audit(db_url)
    info = backup_database(db_url, directory=tmp_path)
    with psycopg.connect(target_url, autocommit=True) as conn:
        migrate.migrate(conn)
        assert (
            conn.execute("SELECT count(*) FROM hub_internal.upload_signing_key").fetchone()[0] == 1
        )

    report = restore_database(target_url, info.path)

    assert not report.replaced
    key = "SELECT key FROM hub_internal.upload_signing_key"
    with psycopg.connect(db_url) as source, psycopg.connect(target_url) as target:
        assert target.execute(key).fetchall() == source.execute(key).fetchall()
