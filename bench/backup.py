"""bench/backup: `orchestrator backup create|restore` against bare pg_dump / pg_restore.

Issue 18's targets: a backup at most 1.3x a bare ``pg_dump -Fc`` of the same tables; a
restore at most 2.5x a bare ``pg_restore``, both measured in the same run on the same
data. The data: ``--rows`` log rows (default 1,000,000, over about four days, so most sit
in the default partition and some in daily ones) plus 30 jobs with their events,
approvals and 25 audit entries (the generators of tests/integration/test_backup_restore.py),
in a database this bench creates (and drops) on the server at ``--admin-url`` (default
the PostgreSQL at 127.0.0.1:5432), or in an embedded PostgreSQL 16 started in a temporary
directory with ``--embedded``.

* backup: ``backup_database`` (snapshot export, same-snapshot row counts, the tar with
  its manifest) against ``pg_dump -Fc --data-only --load-via-partition-root`` of the same
  tables with the same binary;
* restore: ``restore_database`` (checks, partitions, one-transaction load through psql,
  counters recounted, counts proved, ANALYZE, audit event) against ``pg_restore
  --data-only --single-transaction`` of the bare dump; each into a fresh database that
  is already migrated (the schema is not the data; migrating is not timed in either).

Rounds alternate which of ours and bare runs first; the medians of ``--rounds`` are
compared.

    python bench/backup.py [--rows N] [--rounds K] [--admin-url URL | --embedded]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.backup import backup_database, restore_database  # noqa: E402
from orchestrator.backup.manifest import hub_tables  # noqa: E402
from orchestrator.db.backup.create import dumped_tables, server_major  # noqa: E402
from orchestrator.db.backup.tools import find_tools, tool_env  # noqa: E402
from orchestrator.db.embedded import start_embedded  # noqa: E402
from orchestrator.db.migrate import migrate  # noqa: E402
from orchestrator.db.schema_files import discover  # noqa: E402
from tests.conftest import with_dbname  # noqa: E402
from tests.integration.test_backup_restore import store_jobs_and_audit, store_logs  # noqa: E402

TARGETS = {"backup": 1.3, "restore": 2.5}


class Server:
    """Creates and drops the bench's databases."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.made: list[str] = []

    def create(self, migrated: bool) -> str:
        name = f"bench_backup_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.made.append(name)
        url = with_dbname(self.admin_url, name)
        if migrated:
            with psycopg.connect(url, autocommit=True) as conn:
                migrate(conn)
        return url

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.made:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@contextmanager
def admin_server(args: argparse.Namespace) -> Iterator[str]:
    if not args.embedded:
        yield args.admin_url
        return
    with tempfile.TemporaryDirectory(prefix="bench-backup-pg-") as tmp:
        server = start_embedded(Path(tmp) / "pgdata")
        try:
            yield with_dbname(server.url, "postgres")
        finally:
            server.stop()


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bare_dump(url: str, out: Path) -> None:
    """``pg_dump -Fc --data-only`` of the tables the hub's backup holds, nothing else."""
    with psycopg.connect(url) as conn:
        tools = find_tools(server_major(conn))
        tables, partitions = dumped_tables(conn, hub_tables(discover()))
    conninfo, env = tool_env(url)
    args = [
        str(tools.pg_dump),
        f"--dbname={conninfo}",
        "-Fc",
        "--data-only",
        "--load-via-partition-root",
        f"--file={out}",
    ]
    args += [f'--table="{t.split(".")[0]}"."{t.split(".")[1]}"' for t in [*tables, *partitions]]
    subprocess.run(args, env=env, check=True)


def bare_restore(url: str, dump: Path) -> None:
    with psycopg.connect(url) as conn:
        tools = find_tools(server_major(conn))
    conninfo, env = tool_env(url)
    subprocess.run(
        [
            str(tools.pg_restore),
            "--data-only",
            "--single-transaction",
            f"--dbname={conninfo}",
            str(dump),
        ],
        env=env,
        check=True,
    )


def one_round(
    server: Server,
    source: str,
    work: Path,
    results: dict[str, dict[str, list[float]]],
    ours_first: bool,
) -> None:
    """Bare and our backup, then bare and our restore (fresh migrated targets each), in
    the order ``ours_first`` says (rounds alternate it: the second run of a pair finds a
    warmer cache)."""
    work.mkdir(parents=True)
    bare_file = work / "bare.dump"
    made: list[Path] = []

    def ours_backup() -> None:
        made.append(backup_database(source, directory=work).path)

    backups = {"bare": lambda: bare_dump(source, bare_file), "ours": ours_backup}
    for name in ("ours", "bare") if ours_first else ("bare", "ours"):
        results["backup"][name].append(timed(backups[name]))
    bare_target = server.create(migrated=True)
    ours_target = server.create(migrated=True)
    restores = {
        "bare": lambda: bare_restore(bare_target, bare_file),
        "ours": lambda: restore_database(ours_target, made[0]),
    }
    for name in ("ours", "bare") if ours_first else ("bare", "ours"):
        results["restore"][name].append(timed(restores[name]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--embedded", action="store_true", help="an embedded PostgreSQL 16")
    args = parser.parse_args()
    with admin_server(args) as admin, tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        server = Server(admin)
        work = Path(tmp)
        try:
            source = server.create(migrated=True)
            generate = time.perf_counter()
            store_logs(source, args.rows)
            store_jobs_and_audit(source)
            with psycopg.connect(source, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            print(
                f"PostgreSQL {version}: {args.rows:,} log rows + jobs and audit generated "
                f"in {time.perf_counter() - generate:.1f} s"
            )
            results: dict[str, dict[str, list[float]]] = {
                "backup": {"ours": [], "bare": []},
                "restore": {"ours": [], "bare": []},
            }
            for index in range(args.rounds):
                one_round(server, source, work / str(index), results, index % 2 == 1)
                print(
                    f"round {index + 1}: "
                    + ", ".join(
                        f"{k} ours {v['ours'][-1]:.2f} s bare {v['bare'][-1]:.2f} s"
                        for k, v in results.items()
                    ),
                    flush=True,
                )
            rows = []
            for name, times in results.items():
                ours, bare = statistics.median(times["ours"]), statistics.median(times["bare"])
                ratio = ours / bare
                rounds = " ".join(
                    f"{o / b:.2f}" for o, b in zip(times["ours"], times["bare"], strict=True)
                )
                rows.append(
                    (
                        name,
                        f"{bare:.2f}",
                        f"{ours:.2f}",
                        f"{ratio:.2f}",
                        rounds,
                        f"<= {TARGETS[name]}",
                        "met" if ratio <= TARGETS[name] else "NOT met",
                    )
                )
            print(f"\n{args.rows:,} log rows, median of {args.rounds} alternating rounds (seconds)")
            print(
                tabulate(
                    rows,
                    headers=[
                        "step",
                        "bare",
                        "ours",
                        "ours/bare",
                        "each round",
                        "target",
                        "verdict",
                    ],
                )
            )
        finally:
            server.drop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
