"""Which batches may skip the database's repair rules and go by direct COPY (pure code)."""

from __future__ import annotations

import time
import uuid

import pytest

from orchestrator.logs.sinks.postgres import direct_rows, epoch_microseconds
from tests.integration.logrows import handler_entry


def _entry(**overrides):
    return handler_entry(**{"cycle_number": 3, "metadata": {"k": 1}, **overrides})


def test_a_clean_batch_becomes_rows_in_the_shapes_the_dumpers_take():
    """UUID text, integer microseconds, JSON text; severity is derived."""
    e = _entry(task_id=str(uuid.uuid4()))
    [row] = direct_rows([e], 0.0)
    assert (row[0], row[8]) == (e["id"], e["task_id"])
    assert row[1] == epoch_microseconds(e["timestamp"]) and row[5] == 9
    assert row[13] == '{"k":1}'


@pytest.mark.parametrize(
    "overrides",
    [
        {"message": "x" * 32769},
        {"exception": "x" * 65537},
        {"task_id": "task-7"},
        {"log_level": "LOUD"},
        {"timestamp": time.time() - 40 * 86400},
        {"timestamp": time.time() + 7200},
        {"metadata": {"blob": "x" * 70000}},
    ],
)
def test_an_entry_needing_a_repair_sends_the_batch_to_the_staged_path(overrides):
    """One entry the database would repair or judge: the whole batch takes the staged path."""
    assert direct_rows([_entry(), _entry(**overrides)], 0.0) is None


def test_the_window_follows_the_server_clock_not_ours():
    """A client clock two hours behind the server is still 'now' for the server."""
    behind = _entry(timestamp=time.time() - 7200)
    assert direct_rows([behind], 7200.0) is not None
    assert direct_rows([_entry()], 7200.0) is not None
    assert direct_rows([behind], 0.0) is not None  # two hours old is fine either way
    assert direct_rows([_entry(timestamp=time.time() + 7200)], 0.0) is None


def test_microseconds_are_rounded_the_same_way_everywhere():
    """The integer the staged path sends and the datetime the direct path sends agree."""
    for t in (1763922000.1234565, 1763922000.9999995, 0.0000005):
        us = epoch_microseconds(t)
        assert us == round(t * 1_000_000)
