"""The jobs half of ``orchestrator demo``: a daemon, two workers, jobs from several users.

Starts the daemon (``orchestrator run``, when this build has it) and two
``orchestrator worker`` processes against the demo's database, submits jobs from three
users (a command, a Python callable, one that fails, one that waits for approval and is
approved), prints progress until every job has ended, then the end state, the commands
that read the jobs' logs, and stops the processes with SIGTERM, as an operator would.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tabulate import tabulate

from orchestrator.cli.jobs_show import cell
from orchestrator.db.psycopg import PsycopgExecutor
from orchestrator.jobs import calls as job_calls

WORKER_IDS = ("demo-worker-1", "demo-worker-2")
USERS = (("alice", "acme"), ("bob", "acme"), ("carol", "globex"))
APPROVER = "dana"
TERMINAL = {"completed", "failed", "cancelled"}
DEADLINE_SECONDS = 40.0


def _jobs() -> list[dict[str, Any]]:
    """What the demo submits: ``submit_job`` arguments."""
    render = "sh -c 'for f in 1 2 3; do echo \"frame $f rendered\"; sleep 0.3; done'"
    oom = "sh -c 'echo loading checkpoint; echo \"CUDA out of memory\" >&2; exit 3'"
    return [
        {"user_id": "alice", "job_type": "render", "payload": {"command": render}},
        {
            "user_id": "bob",
            "job_type": "stats",
            "payload": {"callable": "statistics:mean", "kwargs": {"data": [3, 5, 10]}},
            "priority": 500,
        },
        {"user_id": "carol", "job_type": "train", "payload": {"command": oom}, "max_attempts": 1},
        {
            "user_id": "alice",
            "job_type": "upscale",
            "payload": {"command": "sh -c 'echo upscaling 4x; sleep 0.5; echo done'"},
            "estimated_cost": 250,
        },
        {"user_id": "bob", "job_type": "probe", "payload": {"command": "uname -sr"}},
        {"user_id": "carol", "job_type": "probe", "payload": {"command": "sh -c 'nproc'"}},
    ]


def _spawn(args: list[str], url: str, log_path: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "ORCHESTRATOR_LOG_FORMAT": "text", **extra_env}
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def has_daemon() -> bool:
    """Whether this build has ``orchestrator run`` (the daemon lands in its own branch)."""
    return importlib.util.find_spec("orchestrator.cli.run_cmd") is not None


def run_jobs_demo(
    executor: PsycopgExecutor, url: str, work_dir: Path, *, command: str = "orchestrator"
) -> bool:
    """Plays the jobs part; returns whether every job reached the state it should.

    ``work_dir`` keeps the processes' output (this run's own directory); ``command`` is
    how the printed follow-up commands call ``orchestrator``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    for user, org in USERS:
        executor.run(job_calls.upsert_hub_user(user, org))
    executor.run(job_calls.upsert_approval_rule("demo-upscale", job_type="upscale"))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:  # whatever was started is stopped, however this ends (Ctrl-C, SIGTERM, SIGHUP)
        _start_processes(processes, url, work_dir)
        started = time.monotonic()
        print(
            f"\nJobs: started {', '.join(processes)} (logs in {work_dir})"
            + ("" if "daemon" in processes else "; no daemon in this build, workers only")
        )
        job_ids = _submit_all(executor)
        ok = _watch(executor, job_ids, started)
    finally:
        codes = _stop(processes)
    print(
        "Stopped with SIGTERM: " + ", ".join(f"{name} exit {code}" for name, code in codes.items())
    )
    _print_end_state(executor, job_ids)
    _print_commands(job_ids, command)
    return ok and all(code == 0 for code in codes.values())


def _start_processes(
    processes: dict[str, subprocess.Popen[bytes]], url: str, work_dir: Path
) -> None:
    """The daemon (when this build has it) and the workers, each added as it starts."""
    if has_daemon():
        processes["daemon"] = _spawn(
            ["run"],
            url,
            work_dir / "daemon.log",
            ENABLE_DB_LOGGING="true",  # its cycles show up next to the workers' rows
            ORCHESTRATOR_INSTANCE_ID="demo-orchestrator",
        )
    flags = ["--concurrency", "2", "--lease", "10", "--heartbeat", "0.5", "--grace", "10"]
    for worker_id in WORKER_IDS:
        args = ["worker", "--worker-id", worker_id, "--poll-interval", "1", *flags]
        processes[worker_id] = _spawn(args, url, work_dir / f"{worker_id}.log")


def _submit_all(executor: PsycopgExecutor) -> list[str]:
    job_ids = []
    for job in _jobs():
        result = executor.run(job_calls.submit_job(**job))
        job_ids.append(result.job_id)
        print(f"  submitted {job['job_type']:<8} for {job['user_id']:<6} -> {result.status}")
        if result.approval_request_id:
            request = result.approval_request_id
            decided = executor.run(job_calls.approve_request(request, APPROVER))
            print(f"  {APPROVER} approved request {request}: the job is {decided.job_status}")
    return job_ids


def _statuses(executor: PsycopgExecutor, job_ids: list[str]) -> dict[str, str]:
    return {job_id: executor.run(job_calls.get_job(job_id)).job.status for job_id in job_ids}


def _watch(executor: PsycopgExecutor, job_ids: list[str], started: float) -> bool:
    last = None
    while True:
        statuses = _statuses(executor, job_ids)
        counts = Counter(statuses.values())
        line = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        if line != last:
            print(f"  [{time.monotonic() - started:5.1f} s] {line}")
            last = line
        if all(status in TERMINAL for status in statuses.values()):
            return True
        if time.monotonic() - started > DEADLINE_SECONDS:
            print(f"  not all jobs ended within {DEADLINE_SECONDS:.0f} s")
            return False
        time.sleep(0.25)


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = {}
    for name, process in processes.items():
        try:
            codes[name] = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            codes[name] = process.wait()
    return codes


def _print_end_state(executor: PsycopgExecutor, job_ids: list[str]) -> None:
    rows = []
    for job_id in job_ids:
        detail = executor.run(job_calls.get_job(job_id))
        job = detail.job
        workers = sorted({e.worker_id for e in detail.events if e.worker_id})
        outcome = job.error or _describe(detail.result)
        rows.append(
            [
                job_id,
                job.user_id,
                job.job_type,
                job.status,
                job.attempts,
                ", ".join(workers),
                cell(outcome, 48),
            ]
        )
    headers = ["job_id", "user", "type", "status", "attempts", "worker", "result / error"]
    print("\nEnd state of the jobs:")
    print(tabulate(rows, headers=headers))


def _describe(result: Any) -> str:
    if isinstance(result, dict) and "exit_code" in result:
        return f"exit {result['exit_code']}, {result.get('stdout_lines', 0)} line(s) on stdout"
    if isinstance(result, dict) and "return" in result:
        return f"returned {result['return']!r}"
    return cell(result)


def _print_commands(job_ids: list[str], command: str) -> None:
    print("\nEach job's log lines are rows of its task (task_id = job id). Read them with:")
    for job_id in job_ids[:3]:
        print(f"  {command} logs --task-timeline {job_id}")
    print(f"  {command} jobs show {job_ids[0]}")
    print(f"and watch everything live with:\n  {command} dashboard")
    if command != "orchestrator" and " " not in command:  # a script's path
        where = Path(command).parent
        print(f"(`orchestrator` alone works after `source {where / 'activate'}`)")
