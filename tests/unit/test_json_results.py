"""Results decoded by orjson where it keeps every value, by the standard library else."""

from __future__ import annotations

from orchestrator.db.psycopg import json_loads


def test_integers_beyond_64_bits_stay_exact():
    """orjson would read 2**100 as a float; jsonb holds it exactly, so must the reader."""
    assert json_loads(b'{"n": %d}' % 2**100) == {"n": 2**100}


def test_ordinary_results_match_the_standard_library():
    """The fast path decodes exactly what json.loads does."""
    text = '{"rows": [{"id": "a", "t": 1.25, "m": {"k": [1, null, true]}}], "more": false}'
    assert json_loads(text) == {
        "rows": [{"id": "a", "t": 1.25, "m": {"k": [1, None, True]}}],
        "more": False,
    }
