"""`orchestrator audit list|verify` and `orchestrator secrets check|set` as a user runs them."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import psycopg

from orchestrator.audit.calls import audit_append
from orchestrator.db.psycopg import PsycopgExecutor
from tests.support.hubserver import clean_env

SECRET = "s3cr3t-value-9d1f"


def cli(*args: str, cwd, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env=clean_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_audit_list_pages_and_verify_finds_a_tampered_entry(db_url, tmp_path):
    with PsycopgExecutor.connect(db_url) as db:
        ids = [
            db.run(
                audit_append(
                    "auth_failed" if i % 2 else "config_changed",
                    "act",
                    actor_ip="10.0.0.7",
                    target_id=f"t{i}",
                )
            )["id"]
            for i in range(5)
        ]
    listed = cli(
        "audit",
        "list",
        "--type",
        "auth_failed",
        "--format",
        "jsonl",
        cwd=tmp_path,
        DATABASE_URL=db_url,
    )
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["target_id"] for r in rows] == ["t3", "t1"]
    paged = cli("audit", "list", "--limit", "2", cwd=tmp_path, DATABASE_URL=db_url)
    assert paged.returncode == 0
    assert f"more match. Continue with --after {ids[3]}" in paged.stderr
    assert "config_changed" in paged.stdout and "10.0.0.7" in paged.stdout
    ok = cli("audit", "verify", cwd=tmp_path, DATABASE_URL=db_url)
    assert ok.returncode == 0 and ok.stdout.startswith("audit chain valid: 5 entries checked")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET target_id = 'forged' WHERE id = %s", [ids[1]])
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    broken = cli("audit", "verify", cwd=tmp_path, DATABASE_URL=db_url)
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        f"audit chain broken at id {ids[1]}: entry_hash does not match the entry's content "
        "(the entry was changed) (5 entries in range)"
    )
    bad = cli("audit", "list", "--since", "last tuesday", cwd=tmp_path, DATABASE_URL=db_url)
    assert bad.returncode == 1 and bad.stderr.startswith("orchestrator: error: malformed --since")
    assert "Traceback" not in bad.stderr


def test_secrets_set_writes_0600_and_check_reports_sources_never_values(tmp_path):
    path = tmp_path / "conf" / "secrets.json"
    env = {"ORCHESTRATOR_SECRETS_FILE": str(path)}
    stored = cli(
        "secrets", "set", "orchestrator-api-token", cwd=tmp_path, stdin=SECRET + "\n", **env
    )
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip() == f"stored ORCHESTRATOR_API_TOKEN in {path} (mode 0600)"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"ORCHESTRATOR_API_TOKEN": SECRET}
    checked = cli("secrets", "check", "MY_EXTRA", cwd=tmp_path, HF_TOKEN="hf-env-value", **env)
    assert checked.returncode == 0, checked.stderr
    lines = dict(
        line.split(None, 1)
        for line in checked.stdout.splitlines()
        if not line.startswith("provider ")
    )
    assert lines["ORCHESTRATOR_API_TOKEN"] == "file"
    assert lines["HF_TOKEN"] == "env"
    assert lines["MY_EXTRA"] == "missing"
    assert SECRET not in checked.stdout + checked.stderr and "hf-env-value" not in checked.stdout
    empty = cli("secrets", "set", "X", cwd=tmp_path, stdin="", **env)
    assert empty.returncode == 1 and "no value given for X" in empty.stderr
    path.chmod(0o644)
    refused = cli("secrets", "check", cwd=tmp_path, **env)
    assert refused.returncode == 1
    assert f"refusing secrets file {path}: mode 0644" in refused.stderr
    assert SECRET not in refused.stdout + refused.stderr
