"""`orchestrator backup create|list|info|restore` as a user (and cron) runs them, and the
admin endpoints of `orchestrator serve`: one-line errors, never a traceback."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from orchestrator.backup.manifest import backup_name
from tests.support.hubserver import TOKEN, HubServer, clean_env


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def aged_copy(source: Path, directory: Path, days: int) -> Path:
    """A copy of a backup whose manifest says it was made ``days`` ago."""
    when = datetime.now(UTC) - timedelta(days=days)
    dest = directory / backup_name(when)
    with tarfile.open(source) as old, tarfile.open(dest, "w") as new:
        manifest = json.loads(old.extractfile("manifest.json").read())  # type: ignore[union-attr]
        manifest["created_at"] = when.isoformat()
        data = json.dumps(manifest).encode()
        entry = tarfile.TarInfo("manifest.json")
        entry.size = len(data)
        new.addfile(entry, io.BytesIO(data))
        member = old.getmember("data.dump")
        new.addfile(member, old.extractfile(member))
    return dest


def test_cron_line_list_info_restore_and_refusals(db_url, empty_db_url, tmp_path):
    backups = tmp_path / "backups"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT func_audit_append('config_changed', 'set')")
    made = cli(
        "backup",
        "create",
        "--dir",
        str(backups),
        "--keep-days",
        "30",
        cwd=tmp_path,
        DATABASE_URL=db_url,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Backed up ") and str(backups) in made.stdout
    first = next(backups.glob("hub-backup-*.tar"))
    with psycopg.connect(db_url) as conn:
        created = conn.execute(
            "SELECT actor, target_id FROM audit_log WHERE event_type = 'backup_created'"
        ).fetchall()
    assert created == [("orchestrator backup create", first.name)]
    old = aged_copy(first, backups, days=40)
    recent = aged_copy(first, backups, days=3)

    again = cli(
        "backup",
        "create",
        "--dir",
        str(backups),
        "--keep-days",
        "30",
        cwd=tmp_path,
        DATABASE_URL=db_url,
    )
    assert again.returncode == 0, again.stderr
    assert f"Deleted old backup {old}" in again.stdout
    assert not old.exists() and recent.exists() and first.exists()

    listing = cli("backup", "list", "--dir", str(backups), cwd=tmp_path)
    assert listing.returncode == 0 and listing.stdout.count("hub-backup-") == 3
    as_json = [
        json.loads(line)
        for line in cli(
            "backup", "list", "--dir", str(backups), "--json", cwd=tmp_path
        ).stdout.splitlines()
    ]
    assert [b["created_at"] for b in as_json] == sorted(
        (b["created_at"] for b in as_json), reverse=True
    )

    info = cli("backup", "info", str(first), cwd=tmp_path)
    assert info.returncode == 0 and "public.audit_log" in info.stdout
    database = cli("backup", "info", "--json", cwd=tmp_path, DATABASE_URL=db_url)
    assert database.returncode == 0, database.stderr
    facts = json.loads(database.stdout)
    assert facts["schema_up_to_date"] is True and facts["size_bytes"] > 0
    assert "public.system_logs" in {t["table"] for t in facts["tables"]}

    restored = cli("backup", "restore", str(first), cwd=tmp_path, DATABASE_URL=empty_db_url)
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(empty_db_url) as conn:
        events = conn.execute("SELECT event_type, target_id FROM audit_log ORDER BY id").fetchall()
    # the source's config_changed, then this restore's event: the source's backup_created
    # is appended after the dump's snapshot, so it is not in the backup
    assert [e for e, _ in events] == ["config_changed", "backup_restored"]
    assert "counts equal the manifest" in restored.stdout

    refused = cli("backup", "restore", str(first), cwd=tmp_path, DATABASE_URL=empty_db_url)
    assert refused.returncode == 1
    assert "already holds hub data" in one_line_error(refused)
    no_yes = cli(
        "backup", "restore", str(first), "--force", cwd=tmp_path, DATABASE_URL=empty_db_url
    )
    assert no_yes.returncode == 2 and "add --yes" in one_line_error(no_yes)
    forced = cli(
        "backup", "restore", str(first), "--force", "--yes", cwd=tmp_path, DATABASE_URL=empty_db_url
    )
    assert forced.returncode == 0 and forced.stdout.startswith("Replaced the data of"), (
        forced.stderr
    )

    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar \x00\xff" * 100)
    for args in (
        ("restore", str(junk)),
        ("info", str(junk)),
        ("restore", str(tmp_path / "none.tar")),
    ):
        bad = cli("backup", *args, cwd=tmp_path, DATABASE_URL=empty_db_url)
        assert bad.returncode == 1
        assert one_line_error(bad).startswith("orchestrator: error: ")
    pooler = cli(
        "backup",
        "create",
        "--dir",
        str(backups),
        cwd=tmp_path,
        DATABASE_URL="postgresql://u:pw-secret@127.0.0.1:6543/postgres",
    )
    assert pooler.returncode == 1 and "connection pooler" in one_line_error(pooler)
    assert "pw-secret" not in pooler.stderr
    keep_one = cli(
        "backup", "create", "--dir", str(backups), "--keep", "1", cwd=tmp_path, DATABASE_URL=db_url
    )
    assert keep_one.returncode == 0, keep_one.stderr
    assert len(list(backups.glob("hub-backup-*.tar"))) == 1
    usage = cli("backup", "create", "--keep-days", "many", cwd=tmp_path)
    assert usage.returncode == 2 and "expected a number of days" in one_line_error(usage)


def test_admin_endpoints(db_url, tmp_path):
    backups = tmp_path / "backups"
    with HubServer(
        tmp_path,
        "--no-daemon",
        DATABASE_URL=db_url,
        ORCHESTRATOR_API_TOKEN=TOKEN,
        ORCHESTRATOR_BACKUP_DIR=str(backups),
    ) as hub:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{hub.url}/api/backups").status_code == 401
        assert httpx.get(f"{hub.url}/api/backups", headers=auth).json()["backups"] == []
        made = httpx.post(
            f"{hub.url}/api/backups", headers=auth, json={"with_logs": False}, timeout=120
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["with_logs"] is False and "public.system_logs" not in body["rows"]
        listed = httpx.get(f"{hub.url}/api/backups", headers=auth).json()["backups"]
        assert [b["id"] for b in listed] == [body["id"]]
        one = httpx.get(f"{hub.url}/api/backups/{body['id']}", headers=auth)
        assert one.status_code == 200 and one.json()["rows"] == body["rows"]
        for bad, status in (("..%2F..%2Fetc", 422), ("20200101T000000Z", 404), ("x" * 5000, 422)):
            answer = httpx.get(f"{hub.url}/api/backups/{bad}", headers=auth)
            assert answer.status_code in (status, 404), answer.text
            assert list(answer.json()) == ["detail"] and "\n" not in answer.json()["detail"]
        info = httpx.get(f"{hub.url}/api/database/info", headers=auth).json()
        assert info["schema_up_to_date"] is True and info["tables"]
        assert httpx.post(f"{hub.url}/api/backups/x/restore", headers=auth).status_code in (
            404,
            405,
        )
        audit = httpx.get(f"{hub.url}/api/audit?event_type=backup_created", headers=auth).json()
        assert audit["entries"][0]["target_id"] == Path(body["file"]).name
