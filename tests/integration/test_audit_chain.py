"""The audit trail is one hash chain, whoever appends and however many at once, and any
change to a stored entry is found by func_audit_verify."""

from __future__ import annotations

import threading

import psycopg
import pytest

from orchestrator.audit.calls import audit_append, audit_prune, audit_query, audit_verify
from orchestrator.db.psycopg import PsycopgExecutor


def test_concurrent_writers_keep_one_chain(db_url):
    """Six connections (as six hub instances) append 40 events each at once: 240 rows,
    ids in chain order, every prev_hash the entry_hash of the entry before."""
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with PsycopgExecutor.connect(db_url) as db:
                barrier.wait()
                for i in range(40):
                    db.run(
                        audit_append(
                            "config_changed", "update", actor=f"writer-{n}", details={"i": i}
                        )
                    )
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT id, prev_hash, entry_hash FROM audit_log ORDER BY id"
        ).fetchall()
        verdict = conn.execute("SELECT func_audit_verify()").fetchone()[0]
    assert len(rows) == 240
    assert rows[0][1] == bytes(32)  # genesis
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    assert verdict == {
        "valid": True,
        "checked": 240,
        "first_id": rows[0][0],
        "last_id": rows[-1][0],
        "broken_at": None,
        "reason": None,
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("UPDATE audit_log SET actor_ip = '6.6.6.6' WHERE id = {id}", "entry_hash does not match"),
        (
            "UPDATE audit_log SET details = details || '{{\"x\": 1}}' WHERE id = {id}",
            "entry_hash does not match",
        ),
        (
            "UPDATE audit_log SET occurred_at = occurred_at + interval '1 microsecond' WHERE id = {id}",
            "entry_hash does not match",
        ),
        ("DELETE FROM audit_log WHERE id = {id}", "prev_hash does not match"),
    ],
)
def test_a_changed_or_removed_entry_breaks_the_chain_at_its_id(db_url, change, reason):
    """Only the owner can switch the guard off; whatever it changes, verify names where."""
    with PsycopgExecutor.connect(db_url) as db:
        ids = [
            db.run(audit_append("auth_failed", "authenticate", actor_ip="10.0.0.9"))["id"]
            for _ in range(5)
        ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(f"UPDATE audit_log SET actor = 'eve' WHERE id = {ids[2]}")
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(change.format(id=ids[2]))
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        verdict = conn.execute("SELECT func_audit_verify()").fetchone()[0]
    assert verdict["valid"] is False
    assert verdict["broken_at"] == (ids[2] if reason.startswith("entry") else ids[3])
    assert reason in verdict["reason"]


def test_throttled_events_are_counted_and_the_next_row_says_how_many(db_url):
    """One row per (type, key) per window; the suppressed ones count and are reported."""
    with PsycopgExecutor.connect(db_url) as db:
        first = [
            db.run(
                audit_append(
                    "auth_failed", "authenticate", throttle_key="1.2.3.4", throttle_seconds=1
                )
            )
            for _ in range(4)
        ]
        assert [r["throttled"] for r in first] == [False, True, True, True]
        other = db.run(
            audit_append("auth_failed", "authenticate", throttle_key="5.6.7.8", throttle_seconds=1)
        )
        assert other["throttled"] is False
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE audit_throttle SET last_written_at = last_written_at - interval '2 seconds'"
        )
        assert (
            conn.execute(
                "SELECT n FROM audit_event_counts WHERE event_type = 'auth_failed'"
            ).fetchone()[0]
            == 5
        )
    with PsycopgExecutor.connect(db_url) as db:
        again = db.run(
            audit_append("auth_failed", "authenticate", throttle_key="1.2.3.4", throttle_seconds=1)
        )
        assert again["throttled"] is False
        newest = db.run(audit_query(event_type="auth_failed", limit=1))["entries"][0]
        assert newest["details"] == {"suppressed_since_last": 3}
        assert db.run(audit_verify())["valid"] is True


def test_pages_and_filters(db_url):
    """Keyset pages newest first, continued with after_id; filters by type."""
    with PsycopgExecutor.connect(db_url) as db:
        for i in range(7):
            db.run(
                audit_append(
                    "config_changed" if i % 2 else "auth_failed",
                    "x",
                    target_type="settings",
                    target_id=f"t{i}",
                )
            )
        page = db.run(audit_query(limit=3))
        assert [e["target_id"] for e in page["entries"]] == ["t6", "t5", "t4"] and page[
            "more"
        ] is True
        rest = db.run(audit_query(limit=10, after_id=page["next_after"]))
        assert [e["target_id"] for e in rest["entries"]] == ["t3", "t2", "t1", "t0"] and rest[
            "more"
        ] is False
        only = db.run(audit_query(event_type="auth_failed", limit=10))
        assert [e["target_id"] for e in only["entries"]] == ["t6", "t4", "t2", "t0"]


OLD_ENTRY = """
INSERT INTO audit_log (id, occurred_at, event_type, action, details, prev_hash, entry_hash)
OVERRIDING SYSTEM VALUE
SELECT n, t, 'auth_failed', 'old', '{}'::jsonb, p,
       hub_internal.func_audit_entry_hash(p, n, t, 'auth_failed', NULL, NULL, NULL, NULL, 'old', '{}'::jsonb, NULL, NULL)
  FROM (SELECT nextval('audit_log_id_seq') AS n, now() - interval '10 days' AS t,
               coalesce((SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1), decode(repeat('00', 32), 'hex')) AS p) s
"""


def test_retention_removes_the_oldest_and_what_stays_verifies(db_url):
    """Three valid entries ten days old (written with the chain's own hash), then four new
    ones: func_audit_prune(5) removes exactly the old three; the rest still verifies."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for _ in range(3):
            conn.execute(OLD_ENTRY)
    with PsycopgExecutor.connect(db_url) as db:
        for _ in range(4):
            db.run(audit_append("config_changed", "new"))
        assert db.run(audit_verify())["valid"] is True
        assert db.run(audit_prune(5))["deleted"] == 3
        verdict = db.run(audit_verify())
        assert verdict["valid"] is True and verdict["checked"] == 4
        assert db.run(audit_prune(5))["deleted"] == 0
        db.run(audit_append("config_changed", "after prune"))
        assert db.run(audit_verify())["checked"] == 5
