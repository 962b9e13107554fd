"""``func_expire_multipart_uploads`` through the real executor: which uploads are due
(old and quiet, job ended or pruned), which are not (fresh, recently active, locked by a
writer), bad arguments refused with one line; and the duty's path checks."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import psycopg
import pytest

from orchestrator.db.asyncpg import AsyncpgExecutor
from orchestrator.errors import InputRefused
from orchestrator.storage import calls
from orchestrator.storage.expiry import expire_multipart_uploads, parts_dir, remove_parts
from tests.integration.jobkit import Hub, hub


def start(h: Hub, job_id: str, started: str = "0", quiet: str = "0") -> str:
    upload_id = secrets.token_urlsafe(24)
    h.run(calls.start_multipart_upload(upload_id, job_id, "outputs", f"{job_id}/k"))
    h.sql(
        "UPDATE multipart_uploads SET started_at = now() - %s::interval, "
        "updated_at = now() - %s::interval WHERE upload_id = %s",
        (started + " hours", quiet + " minutes", upload_id),
    )
    return upload_id


def test_which_uploads_are_due(db_url):
    with hub(db_url) as h:
        h.user("alice")
        live = str(h.submit().job_id)
        ended = str(h.submit().job_id)
        pruned = str(h.submit().job_id)
        old = start(h, live, started="25", quiet="61")
        old_but_active = start(h, live, started="25", quiet="5")
        fresh = start(h, live, started="1", quiet="61")
        of_ended = start(h, ended, quiet="61")
        of_pruned = start(h, pruned, quiet="61")
        locked = start(h, live, started="25", quiet="61")
        h.sql(
            "UPDATE jobs SET status = 'failed', finished_at = now() - interval '2 hours' "
            "WHERE job_id = %s",
            (ended,),
        )
        h.sql(
            "UPDATE multipart_uploads SET job_id = gen_random_uuid() WHERE upload_id = %s",
            (of_pruned,),
        )
        h.conn.commit()
        with psycopg.connect(db_url) as writer:  # a part being recorded holds the row
            writer.execute(
                "SELECT 1 FROM multipart_uploads WHERE upload_id = %s FOR UPDATE", (locked,)
            )
            answer = h.run(calls.expire_multipart_uploads(24, 60))
            writer.rollback()
        reasons = {row["upload_id"]: row["reason"] for row in answer["expired"]}
        assert reasons == {old: "expired", of_ended: "job failed", of_pruned: "job gone"}
        assert answer["count"] == 3
        left = {r[0] for r in h.sql("SELECT upload_id FROM multipart_uploads")}
        assert left == {old_but_active, fresh, locked}
        assert h.run(calls.expire_multipart_uploads(24, 60))["expired"][0]["upload_id"] == locked
        touched = h.run(calls.touch_multipart_upload(fresh))
        assert touched is not None and touched["upload_id"] == fresh
        assert h.run(calls.touch_multipart_upload("no-such-upload-id")) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 60, 10), "max_age_hours must be between 1 and 87600"),
        ((24, -1, 10), "grace_minutes must be between 0 and 10080"),
        ((24, 60, 0), "max_count must be between 1 and 100000"),
    ],
)
def test_bad_arguments_are_one_line(db_url, args, message):
    with hub(db_url) as h, pytest.raises(InputRefused, match=message):
        h.run(calls.expire_multipart_uploads(*args))


def test_the_duty_removes_only_upload_directories_inside_the_storage_dir(db_url, tmp_path: Path):
    root = tmp_path / "storage"
    (root / ".multipart").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file").write_bytes(b"x")
    for bad in ("../victim", "..", "", "a/b", "x" * 65, "short"):
        assert parts_dir(root, bad) is None
        assert remove_parts(root, bad) is False
    (root / ".multipart" / ("V" * 20)).symlink_to(victim, target_is_directory=True)
    assert remove_parts(root, "V" * 20) is False
    assert (victim / "file").exists()

    async def run() -> dict[str, int]:
        async with await AsyncpgExecutor.connect(db_url) as ex:
            return await expire_multipart_uploads(ex, root, 24)

    assert asyncio.run(run()) == {"expired": 0, "orphans": 0, "temporary": 0}
    assert (victim / "file").exists()
