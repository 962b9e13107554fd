"""``orchestrator worker``: claim → run → renew leases → complete, fail or release.

The main thread claims jobs (``func_claim_jobs``, up to the free slots and at most
``batch_size`` per call), hands each to a job thread, and sleeps until a ``NOTIFY``
(or the poll interval, or a finished job) says there may be more. Finished jobs are
reported in batches (reports.py); a batch also claims the slots it frees, in the same
call and commit (``func_complete_jobs_and_claim``), so a worker running short jobs pays
one round trip per batch, not two. The :class:`Pulse`
thread heartbeats, ships the logs and renews the leases. Every report carries the lease
token, so a worker the database gave up on cannot overwrite the job's new owner.

Stopping (SIGTERM, SIGINT, :meth:`Worker.request_stop`): no new claims; running jobs get
``grace`` seconds to finish; then each is stopped (a command's process group gets
SIGTERM, then SIGKILL) and released with ``func_release_job`` so another worker takes
it without losing an attempt; the logs are flushed with a last heartbeat.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from orchestrator.db.target import SqlTarget
from orchestrator.errors import DatabaseUnavailable
from orchestrator.jobs.errors import JobError
from orchestrator.jobs.model import ClaimedJob, ClaimResult, Verdict
from orchestrator.jobs.wakeup import polling_reason
from orchestrator.logs.context import clear_task_context, set_task_context
from orchestrator.logs.worker import LogBuffer
from orchestrator.storage.calls import issue_upload_credential
from orchestrator.storage.jobenv import upload_environment
from orchestrator.worker.active import ActiveJob
from orchestrator.worker.heartbeat import Pulse
from orchestrator.worker.options import WorkerCounts as WorkerCounts
from orchestrator.worker.options import WorkerOptions as WorkerOptions
from orchestrator.worker.reports import Completion, CompletionBatcher
from orchestrator.worker.runners import RunOutcome, start_run
from orchestrator.worker.store import JobStore, WorkerDatabase
from orchestrator.worker.threads import JobThreads
from orchestrator.worker.wakeup import ListenWakeup, PollWakeup, Wakeup

_log = logging.getLogger("orchestrator.worker")
CLAIM_COALESCE = 0.002  # seconds: short jobs ending together are replaced by one claim
T = TypeVar("T")


class Worker:
    """One worker process's runtime (one per process: it owns the log context)."""

    def __init__(self, database: WorkerDatabase, options: WorkerOptions, buffer: LogBuffer) -> None:
        self.options, self.database = options, database
        self.store = JobStore(database, options.worker_id, options.provider)
        self.counts = WorkerCounts()
        self._active: dict[str, ActiveJob] = {}
        self._active_lock = threading.Lock()
        self._stopping = threading.Event()
        self._hurry = threading.Event()
        self._next_run_after: datetime | None = None
        # one claim at a time (the main loop's, or a report batch's): each counts the
        # free slots and fills them, so two at once could take more than concurrency
        self._claiming = threading.Lock()
        self.reports = CompletionBatcher(self._complete_batch)
        self.threads = JobThreads(options.concurrency)
        self.pulse = Pulse(
            JobStore(database, options.worker_id, options.provider),  # its own connection
            buffer,
            self.active_jobs,
            interval=options.heartbeat_seconds,
            lease_seconds=options.lease_seconds,
            status=self._status,
            metadata={
                "hostname": socket.gethostname(),
                "concurrency": options.concurrency,
                # the reaper waits for three missed beats of this interval, not fewer
                "heartbeat_seconds": options.heartbeat_seconds,
            },
        )
        self.polling_reason = polling_reason(database.target, poll_only=options.poll_only)
        self.wakeup: Wakeup = (
            PollWakeup()
            if self.polling_reason is not None or not isinstance(database.target, SqlTarget)
            else ListenWakeup(
                database.target.url,
                options.provider,
                worker_id=options.worker_id,
                on_cancel=self.pulse.poke,
            )
        )

    def active_jobs(self) -> list[ActiveJob]:
        """A snapshot of the jobs running now."""
        with self._active_lock:
            return list(self._active.values())

    def _status(self) -> str:
        if self._stopping.is_set():
            return "draining"
        return "busy" if self._active else "idle"

    def request_stop(self) -> None:
        """Stops claiming and begins the shutdown (safe from a signal handler); a second
        request ends the grace period at once."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()
        self.wakeup.interrupt()

    def run(self) -> WorkerCounts:
        """Works until stopped (or, with ``once``, until nothing is claimable); then drains."""
        opts = self.options
        _log.info(
            "Worker %s started on %s: concurrency %d, lease %d s, %s",
            opts.worker_id,
            self.database.label,
            opts.concurrency,
            opts.lease_seconds,
            f"poll-only ({reason})" if (reason := self.polling_reason) else "LISTEN + polling",
        )
        self.pulse.start()
        try:
            while not self._stopping.is_set():
                claimed = self._claim()  # None: the claim failed, not "nothing to do"
                if opts.once and claimed == 0 and not self.active_jobs():
                    break
                if not claimed or len(self.active_jobs()) >= opts.concurrency:
                    self.wakeup.wait(self._idle_wait())
                    if self.active_jobs():  # woken by a job's end: let others end too,
                        time.sleep(CLAIM_COALESCE)  # and claim their slots in one call
        finally:
            self._shutdown()
        return self.counts

    def _idle_wait(self) -> float:
        """The poll interval, or less when a scheduled job (run_at, retry backoff) is due
        sooner: nothing announces that moment, so the worker wakes for it itself."""
        due = self._next_run_after
        if due is None:
            return self.options.poll_interval
        return min(self.options.poll_interval, max(0.01, (due - datetime.now(UTC)).total_seconds()))

    def _claim(self) -> int | None:
        """Claims into the free slots; the number claimed, or None when the claim failed
        (so ``once`` does not take a database outage for an empty queue)."""
        with self._claiming:
            room = self._room()
            if room <= 0:
                return 0
            try:
                claim = self.store.claim(room, self.options.lease_seconds, self.options.job_types)
            except Exception as error:  # database away: wait one poll interval, try again
                _log.warning("Claim failed: %s", error)
                return None
            return self._take(claim)

    def _room(self, finishing: int = 0) -> int:
        """How many jobs the next claim may take: the free slots (counting ``finishing``
        jobs, being reported now, as free), at most ``batch_size``; none when stopping."""
        if self._stopping.is_set():
            return 0
        free = self.options.concurrency - len(self.active_jobs()) + finishing
        return min(free, self.options.batch_size or free)

    def _take(self, claim: ClaimResult) -> int:
        """Starts the claimed jobs; the number started."""
        self._next_run_after = claim.next_run_after
        for job in claim.jobs:
            self._start(job)
        self.counts.add("claimed", len(claim.jobs))
        return len(claim.jobs)

    def _upload_env(self, job: ClaimedJob) -> dict[str, str] | None:
        """The job's upload credentials as environment variables; a failure to issue them
        costs the job its uploads (a warning), not its run."""
        endpoint = self.options.upload_endpoint
        if endpoint is None:
            return None
        try:
            credential = self.store.run(
                issue_upload_credential(
                    str(job.job_id), self.options.upload_bucket, self.options.upload_ttl_seconds
                )
            )
        except Exception as error:
            _log.warning("No upload credentials for job %s: %s", job.job_id, error)
            return None
        return upload_environment(credential, endpoint)

    def _start(self, job: ClaimedJob) -> None:
        run = start_run(job.payload, kill_grace=self.options.stop_grace, env=self._upload_env(job))
        active = ActiveJob(job, run)
        if job.timeout_seconds is not None:
            active.timer = threading.Timer(job.timeout_seconds, self._time_out, args=(active,))
            active.timer.daemon = True
        with self._active_lock:
            self._active[active.job_id] = active
        self.threads.submit(self._work, active)
        if active.timer is not None:
            active.timer.start()

    def _time_out(self, active: ActiveJob) -> None:
        """The job ran past its ``timeout_seconds``: stop it; its own thread then fails
        the attempt (retried while attempts remain, as any failure). A Python callable
        cannot be interrupted: its attempt fails when it returns."""
        if active.state != "running":
            return
        active.timed_out = True
        _log.error(
            "Job %s ran past its timeout of %s s; stopping it",
            active.job_id,
            active.job.timeout_seconds,
        )
        active.run.stop()

    def _work(self, active: ActiveJob) -> None:
        set_task_context(active.job_id, self.options.worker_id)
        job = active.job
        _log.info(
            "Running job %s (%s, attempt %s, user %s)",
            active.job_id,
            job.job_type,
            job.attempt,
            job.user_id,
        )
        try:
            outcome = active.run.run()
        except Exception as error:  # a bug in a runner: fail the job, keep the worker
            _log.exception("Runner crashed")
            outcome = RunOutcome(False, error=f"worker error: {type(error).__name__}: {error}")
        if active.timer is not None:
            active.timer.cancel()
        if active.timed_out:
            reason = f"timed out after {job.timeout_seconds} s (timeout_seconds)"
            outcome = RunOutcome(False, outcome.result, error=reason, retryable=True)
        handed = False
        try:
            if active.take_over("reporting"):
                if outcome.ok:  # the reports thread takes it from here (reports.py)
                    try:
                        self.reports.complete(job, outcome.result)
                        handed = True
                    except RuntimeError as error:  # closed: the worker is past its grace
                        _log.error("Could not report job %s: %s", active.job_id, error)
                else:
                    self._report_failure(active, outcome)
        finally:
            clear_task_context()  # the thread serves the next job
            if not handed:
                with self._active_lock:
                    self._active.pop(active.job_id, None)
                # Wake the main loop only for a slot nobody took.
                if self._room() > 0:
                    self.wakeup.interrupt()

    def _settle(self, job_id: str, report: Callable[[], T]) -> T:
        """Runs ``report``, retried with backoff while the database or gateway is away.

        A finished GPU job is expensive to run twice, and a report that is lost leaves the
        job to the reaper, which runs it again. The lease was renewed at most one
        heartbeat ago, so retries for half a lease stay within it; past it the report is
        still fenced by its token. A retry after an answer lost in transit may find its
        own earlier report recorded: that is refused as stale, never applied twice.
        """
        deadline = time.monotonic() + self.options.lease_seconds / 2
        delay = 0.2
        while True:
            try:
                return report()
            except DatabaseUnavailable as error:
                if time.monotonic() + delay > deadline or self._hurry.is_set():
                    raise
                _log.warning(
                    "Report of job %s failed (%s); retrying in %.1f s", job_id, error, delay
                )
                self._hurry.wait(delay)
                delay = min(delay * 2, 5.0)

    def _complete_batch(self, completions: list[Completion]) -> None:
        """One call for the completions waiting (reports.py), which also claims the slots
        they free (``func_complete_jobs_and_claim``) unless the worker is stopping; then
        each job's verdict is counted and logged in its own task's timeline."""
        ids = [job.job_id for job, _ in completions]
        if len(ids) == 1:  # its retries then show in the job's own log timeline
            set_task_context(ids[0], self.options.worker_id)
        what = ids[0] if len(ids) == 1 else f"s {', '.join(ids)}"
        try:
            verdicts = self._send_completions(what, completions)
        except Exception as error:  # the leases will expire and the reaper requeues them
            for job, _ in completions:
                _log.error("Could not report job %s: %s", job.job_id, error)
            verdicts = None
        finally:
            clear_task_context()
            self._forget(completions)
        if verdicts is not None:
            for (job, result), verdict in zip(completions, verdicts, strict=True):
                set_task_context(job.job_id, self.options.worker_id)
                self.counts.add("completed", verdict.accepted)
                _log.info("Job %s completed: %s", job.job_id, result)
                if not verdict.accepted:
                    self._refused(job.job_id, verdict)
            clear_task_context()
        if self._room() > 0:  # a slot nobody took: the main loop claims it (or, once, ends)
            self.wakeup.interrupt()

    def _send_completions(self, what: str, completions: list[Completion]) -> Sequence[Verdict]:
        with self._claiming:
            room = self._room(finishing=len(completions))
            if room > 0:
                try:
                    done = self._settle(
                        what,
                        lambda: self.store.complete_many_and_claim(
                            completions,
                            room,
                            self.options.lease_seconds,
                            self.options.job_types,
                        ),
                    )
                except JobError as error:  # the claim was refused: report alone
                    _log.warning("Claim with the completions refused: %s", error)
                else:
                    self._take(done.claim)
                    return done.verdicts
        return self._settle(what, lambda: self.store.complete_many(completions))

    def _forget(self, completions: list[Completion]) -> None:
        """The reported jobs leave the active set now, not when their threads wake up to
        read the verdicts: the next batch's room counts them as free. (Counted until
        their threads ran, they made a batch following closely behind find no room: it
        then completed without claiming, and the main thread claimed the slots in a
        call of its own, a quarter of the batches in the worker bench.)"""
        with self._active_lock:
            for job, _ in completions:
                self._active.pop(str(job.job_id), None)

    def _report_failure(self, active: ActiveJob, outcome: RunOutcome) -> None:
        job = active.job
        error = outcome.error or "failed"
        retryable = outcome.retryable
        try:
            verdict = self._settle(job.job_id, lambda: self.store.fail(job, error, retryable))
        except Exception as failure:  # the lease will expire and the reaper requeues it
            _log.error("Could not report job %s: %s", active.job_id, failure)
            return
        self.counts.add("failed", verdict.accepted)
        then = "retry scheduled" if verdict.status == "queued" else "no retry"
        _log.error("Job %s failed (%s): %s", active.job_id, then, error)
        if not verdict.accepted:
            self._refused(active.job_id, verdict)

    def _refused(self, job_id: str, verdict: Verdict) -> None:
        self.counts.add("refused")
        _log.warning("The database refused the report of job %s: %s", job_id, verdict.reason)

    def _shutdown(self) -> None:
        if self._stopping.is_set():
            _log.info("Stopping: no new claims; %d job(s) running", len(self.active_jobs()))
        deadline = time.monotonic() + self.options.grace_seconds
        while self.active_jobs() and time.monotonic() < deadline and not self._hurry.is_set():
            self._hurry.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        for active in self.active_jobs():
            if active.take_over("releasing"):
                _log.warning("Grace over: stopping job %s and releasing it", active.job_id)
                active.run.stop()
                self._release(active)
        self.counts.lost = list(self.pulse.lost)
        self.reports.close()
        self.threads.close()
        self.pulse.stop()
        self.wakeup.close()
        _log.info(
            "Worker %s stopped: %d claimed, %d completed, %d failed, %d released",
            self.options.worker_id,
            self.counts.claimed,
            self.counts.completed,
            self.counts.failed,
            self.counts.released,
        )
        self.pulse.flush("stopped")
        self.pulse.store.close()
        self.store.close()

    def _release(self, active: ActiveJob) -> None:
        try:
            verdict = self.store.release(active.job, "worker shutting down")
        except Exception as error:
            _log.error("Could not release job %s: %s", active.job_id, error)
            return
        self.counts.add("released", verdict.accepted)
        if not verdict.accepted:
            _log.warning("Release of job %s refused: %s", active.job_id, verdict.reason)
