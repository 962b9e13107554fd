"""Approval rules, decisions against the deadline, and expiry racing approvals."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from orchestrator.jobs import calls
from orchestrator.jobs.errors import JobError, job_errors
from tests.integration.jobkit import Hub, hub


@pytest.fixture
def h(db_url):
    with hub(db_url) as h:
        h.user("alice", "org-1")
        h.user("bob", "org-1")
        yield h


def decide(h: Hub, request_id: str, by: str, approve: bool = True):
    builder = calls.approve_request if approve else calls.reject_request
    with job_errors():
        return h.run(builder(request_id, by))


def test_rules_match_on_cost_provider_and_job_type(h):
    """Cost at or over the threshold, the named provider, the named job type; a disabled
    rule and a job without a cost estimate do not match a cost rule."""
    h.run(calls.upsert_approval_rule("expensive", min_estimated_cost=10))
    h.run(calls.upsert_approval_rule("cloud", provider="replicate", approval_ttl_seconds=60))
    h.run(calls.upsert_approval_rule("training", job_type="train", allow_self_approval=True))
    h.run(calls.upsert_approval_rule("off", job_type="render", enabled=False))
    assert h.submit("alice", estimated_cost=20).status == "awaiting_approval"
    assert h.submit("alice", estimated_cost=10).status == "awaiting_approval"
    assert h.submit("alice", estimated_cost=9.99).status == "queued"
    assert h.submit("alice").status == "queued"
    cloud = h.submit("alice", provider="replicate", payload={}, estimated_cost=50)
    assert cloud.status == "awaiting_approval"
    rules, ttl = h.sql(
        "SELECT rule_names, extract(epoch FROM expires_at - created_at) FROM approval_requests WHERE request_id = %s",
        [cloud.approval_request_id],
    )[0]
    assert rules == ["cloud", "expensive"] and float(ttl) == pytest.approx(60, abs=1)
    assert h.submit("alice", job_type="train").status == "awaiting_approval"


def test_approval_makes_the_job_claimable_in_the_same_transaction(h, db_url):
    """Awaiting jobs are never claimed; approve queues the job and NOTIFYs at commit."""
    h.run(calls.upsert_approval_rule("all"))
    sub = h.submit("alice")
    assert h.claim("w1") == []
    with psycopg.connect(db_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {calls.NOTIFY_CHANNEL}")
        decision = decide(h, sub.approval_request_id, "bob")
        assert [n.payload for n in listener.notifies(timeout=5, stop_after=1)] == ["local"]
    assert decision.status == "approved" and decision.job_status == "queued"
    assert h.claim_one("w1").job_id == sub.job_id
    assert h.events(sub.job_id)[:2] == [
        ("submitted", None, "awaiting_approval"),
        ("approved", "awaiting_approval", "queued"),
    ]


def test_self_approval_is_refused_unless_every_matching_rule_allows_it(h):
    """The submitter cannot approve their own job unless configured; others can."""
    h.run(calls.upsert_approval_rule("strict", job_type="render"))
    h.run(calls.upsert_approval_rule("lenient", job_type="train", allow_self_approval=True))
    strict = h.submit("alice", job_type="render")
    with pytest.raises(JobError, match="self-approval refused: alice submitted this job"):
        decide(h, strict.approval_request_id, "alice")
    assert h.status(strict.job_id) == ("awaiting_approval", "pending_approval")
    lenient = h.submit("alice", job_type="train")
    assert decide(h, lenient.approval_request_id, "alice").status == "approved"


def test_a_request_past_its_deadline_cannot_be_approved_or_rejected(h):
    """The deadline is checked when the decision is made, even before expiry ran."""
    h.run(calls.upsert_approval_rule("all"))
    sub = h.submit("alice")
    h.sql("UPDATE approval_requests SET expires_at = now() - interval '1 second'")
    for approve in (True, False):
        with pytest.raises(JobError, match=r"expired at .* it can no longer be"):
            decide(h, sub.approval_request_id, "bob", approve)
    assert h.status(sub.job_id) == ("awaiting_approval", "pending_approval")
    assert len(h.events(sub.job_id)) == 1


def test_reject_cancels_the_job_and_a_decided_request_stays_decided(h):
    """Rejected: request rejected, queue entry and job cancelled; no second decision."""
    h.run(calls.upsert_approval_rule("all"))
    sub = h.submit("alice")
    assert decide(h, sub.approval_request_id, "bob", approve=False).job_status == "cancelled"
    assert h.status(sub.job_id) == ("cancelled", "cancelled")
    with pytest.raises(JobError, match="is already rejected"):
        decide(h, sub.approval_request_id, "bob")


def test_expiry_moves_request_queue_entry_and_job_together_with_one_event(h):
    """request -> expired, queue entry and job -> cancelled, one event; rerun: none."""
    h.run(calls.upsert_approval_rule("all"))
    due = [h.submit("alice").job_id for _ in range(3)]
    later = h.submit("alice").job_id
    h.sql("UPDATE approval_requests SET expires_at = now() WHERE job_id = ANY(%s::uuid[])", [due])
    result = h.run(calls.expire_approvals())
    assert result.expired == 3 and sorted(result.job_ids) == sorted(due)
    for job_id in due:
        assert h.status(job_id) == ("cancelled", "cancelled")
        assert h.events(job_id)[1:] == [("approval_expired", "awaiting_approval", "cancelled")]
    assert h.status(later) == ("awaiting_approval", "pending_approval")
    assert h.run(calls.expire_approvals()).expired == 0


def _hold_in_transaction(url: str, statement: str, params, started: threading.Event, hold: float):
    with psycopg.connect(url) as conn:
        conn.execute(statement, params)
        started.set()
        time.sleep(hold)
        conn.commit()


def test_an_approval_holding_the_request_wins_over_a_concurrent_expiry(h, db_url):
    """Approve (before the deadline) commits while expiry waits on the row: the expiry
    re-checks the row, finds it approved and leaves it alone."""
    h.run(calls.upsert_approval_rule("all"))
    sub = h.submit("alice")
    h.sql(
        "UPDATE approval_requests SET expires_at = clock_timestamp() + interval '300 milliseconds'"
    )
    started = threading.Event()
    approver = threading.Thread(
        target=_hold_in_transaction,
        args=(
            db_url,
            "SELECT func_approve_request(%s, 'bob')",
            [sub.approval_request_id],
            started,
            0.8,
        ),
    )
    approver.start()
    started.wait(5)
    time.sleep(0.5)  # now past the deadline, with the approval not yet committed
    assert h.run(calls.expire_approvals()).expired == 0  # waited for the approval's commit
    approver.join()
    assert h.status(sub.job_id) == ("queued", "queued")
    assert [e[0] for e in h.events(sub.job_id)] == ["submitted", "approved"]


def test_an_expiry_holding_the_request_wins_over_a_concurrent_approval(h, db_url):
    """Expiry commits while an approval waits on the row: the approval is refused."""
    h.run(calls.upsert_approval_rule("all"))
    sub = h.submit("alice")
    h.sql("UPDATE approval_requests SET expires_at = now()")
    started = threading.Event()
    expirer = threading.Thread(
        target=_hold_in_transaction,
        args=(db_url, "SELECT func_expire_approvals()", None, started, 0.5),
    )
    expirer.start()
    started.wait(5)
    with pytest.raises(JobError, match="expired"):
        decide(h, sub.approval_request_id, "bob")
    expirer.join()
    assert h.status(sub.job_id) == ("cancelled", "cancelled")


def test_expiry_racing_approvals_many_times_leaves_each_request_in_one_consistent_state(h, db_url):
    """Approvers and an expirer hammer requests whose deadline falls mid-race; every
    request ends approved or expired, never both, consistent across the three tables."""
    h.run(calls.upsert_approval_rule("all"))
    rounds, per_round = 4, 40
    for _ in range(rounds):
        subs = [h.submit("alice") for _ in range(per_round)]
        h.sql(
            "UPDATE approval_requests SET expires_at = clock_timestamp() + interval '40 milliseconds' WHERE status = 'pending'"
        )
        stop = threading.Event()
        refusals: list[str] = []

        def expire_loop(stop: threading.Event = stop) -> None:
            with hub(db_url) as mine:
                while not stop.is_set():
                    mine.run(calls.expire_approvals())

        def approve_all(chunk, refusals: list[str] = refusals) -> None:
            with hub(db_url) as mine:
                for sub in chunk:
                    try:
                        decide(mine, sub.approval_request_id, "bob")
                    except JobError as error:
                        refusals.append(str(error))

        expirer = threading.Thread(target=expire_loop)
        approvers = [threading.Thread(target=approve_all, args=(subs[i::2],)) for i in range(2)]
        expirer.start()
        for t in approvers:
            t.start()
        for t in approvers:
            t.join()
        time.sleep(0.05)
        stop.set()
        expirer.join()
        h.run(calls.expire_approvals())
        assert all("expired" in refusal for refusal in refusals)
    rows = h.sql(
        """SELECT r.status, q.status, j.status,
                  (SELECT array_agg(e.event_type ORDER BY e.event_id) FROM job_events e WHERE e.job_id = j.job_id)
             FROM approval_requests r JOIN jobs j USING (job_id) JOIN job_queue q USING (job_id)"""
    )
    assert len(rows) == rounds * per_round
    outcomes = {}
    for request, queue, job, events in rows:
        assert (request, queue, job, events) in (
            ("approved", "queued", "queued", ["submitted", "approved"]),
            ("expired", "cancelled", "cancelled", ["submitted", "approval_expired"]),
        )
        outcomes[request] = outcomes.get(request, 0) + 1
    assert set(outcomes) <= {"approved", "expired"}
