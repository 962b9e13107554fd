"""Operation values and the jsonb-safety of client text (pure code, no database)."""

from __future__ import annotations

import json

import pytest

from orchestrator.db import calls
from orchestrator.db.jsonsafe import json_safe, safe_text
from orchestrator.db.psycopg import call_statement
from orchestrator.logs import calls as log_calls


def test_call_names_must_be_identifiers():
    """A driver splices names into SQL, so only plain identifiers are allowed."""
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        calls.Call("func_x; DROP TABLE y", {}, lambda raw: raw)
    with pytest.raises(ValueError, match="not a plain SQL identifier"):
        calls.Call("func_x", {"a b": 1}, lambda raw: raw)


def test_call_statement_uses_named_arguments():
    """Named arguments keep calls stable when a function gains a defaulted parameter."""
    statement = call_statement(log_calls.cleanup_old_logs(24)).as_string(None)
    assert (
        statement
        == 'SELECT public."func_cleanup_old_logs"("retention_hours" => %(retention_hours)s)'
    )


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain", "plain"),
        ("a\x00b", "a\ufffdb"),
        ("x\ud800y", "x\ufffdy"),
        ("\udfff", "\ufffd"),
        ("\ud83d\ude00", "\U0001f600"),
        ("h\u00e9llo", "h\u00e9llo"),
    ],
)
def test_safe_text_replaces_what_jsonb_cannot_hold(raw, clean):
    """NUL and lone surrogates become U+FFFD; valid text, pairs included, is unchanged."""
    assert safe_text(raw) == clean


def test_json_safe_output_always_encodes_as_utf8_json():
    """Nested keys and values, odd floats and foreign objects all become valid JSON."""
    value = json_safe({"k\x00": ["\ud800", float("nan"), float("inf"), 1.5, None, True, object()]})
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")
    assert value["k\ufffd"][:6] == ["\ufffd", "nan", "inf", 1.5, None, True]


def test_insert_result_decoding():
    """The jsonb reply becomes a typed result with its rejects."""
    decode = log_calls.insert_logs_batch([]).decode
    result = decode(
        {
            "success": True,
            "inserted": 2,
            "duplicates": 1,
            "rejected": [{"index": 3, "reason": "bad"}],
        }
    )
    assert result == log_calls.InsertResult(True, 2, 1, (log_calls.Rejected(3, "bad"),))
