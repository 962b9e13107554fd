"""The SQL API is exactly what README's "The SQL API" lists: every function in public is
documented there, every one documented exists, and each has a COMMENT."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def documented() -> set[str]:
    """Function names in the first column of the README's API table."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## The SQL API", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(func_[a-z0-9_]+)\(", section, re.MULTILINE))


def test_public_holds_exactly_the_documented_api(conn):
    """No helper leaks into the exposed schema; no documented function is missing."""
    public = {
        name
        for (name,) in conn.execute(
            "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
        )
    }
    assert len(documented()) >= 30
    assert public == documented()


def test_every_hub_function_says_what_it_is(conn):
    """A COMMENT on every function of public and hub_internal (shown in the SQL editor)."""
    bare = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "WHERE p.pronamespace IN ('public'::regnamespace, 'hub_internal'::regnamespace) "
        "AND obj_description(p.oid, 'pg_proc') IS NULL"
    ).fetchall()
    assert bare == []
