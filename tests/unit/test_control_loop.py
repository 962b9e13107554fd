"""The control loop's cycles: numbering, isolation of a failing duty, wake-up on request."""

from __future__ import annotations

import asyncio
import logging

from orchestrator.daemon.loop import ControlLoop, Duty
from orchestrator.logs.context import get_cycle_number


def test_cycles_are_numbered_and_every_record_of_a_cycle_carries_its_number(caplog):
    """Two cycles of two duties: each duty sees the cycle's number, and so does every
    record logged during the cycle; outside the cycles there is none."""
    seen: list[tuple[str, int | None]] = []
    log = logging.getLogger("test.loop")

    def duty(name: str) -> Duty:
        async def action() -> None:
            await asyncio.sleep(0)
            seen.append((name, get_cycle_number()))
            log.info("ran %s", name)

        return Duty(name, 60, action, f"Error in {name}")

    loop = ControlLoop([duty("a"), duty("b")])

    async def scenario():
        await loop.run_once()
        await loop.run_once()

    with caplog.at_level(logging.INFO, logger="test.loop"):
        asyncio.run(scenario())
    assert sorted(seen) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert get_cycle_number() is None
    assert loop.cycle == 2


def test_a_failing_duty_logs_its_error_and_the_others_keep_running(caplog):
    """'Error in job polling' at ERROR with the traceback; the other duty ran in the same
    cycles and the failing one is tried again in the next."""
    runs = {"poll": 0, "queue": 0}

    async def poll() -> None:
        runs["poll"] += 1
        raise RuntimeError("provider exploded")

    async def queue() -> None:
        runs["queue"] += 1

    loop = ControlLoop(
        [Duty("poll", 60, poll, "Error in job polling"), Duty("queue", 60, queue, "Error in q")]
    )

    async def scenario():
        first = await loop.run_once()
        second = await loop.run_once()
        return first, second

    first, second = asyncio.run(scenario())
    assert first == second == {"poll": "failed", "queue": "ran"}
    assert runs == {"poll": 2, "queue": 2}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["Error in job polling"] * 2
    assert errors[0].exc_info is not None


def test_run_until_honours_intervals_and_a_request_wakes_a_duty_early():
    """A duty with a one-hour interval runs at start, then only when requested; the
    loop stops when asked, between cycles."""
    runs: list[int] = []

    async def action() -> None:
        runs.append(get_cycle_number() or 0)

    loop = ControlLoop([Duty("queue", 3600, action, "Error in queue processing")])

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run_until(stop))
        while len(runs) < 1:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert len(runs) == 1  # not due again for an hour
        loop.request("queue")
        while len(runs) < 2:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert runs == [1, 2]
