"""The files under sql/ keep the one-home rule (each function and view defined once)."""

from __future__ import annotations

from orchestrator.db.schema_files import discover


def test_the_tree_is_valid_and_each_definition_has_one_home():
    """discover() refuses two homes for a name; the real tree passes, with every function
    file listed in order.txt and every name schema-qualified."""
    files = discover()
    assert len(files.migrations) >= 7 and len(files.functions) >= 10
    names = [n for f in [*files.migrations, *files.functions] for n in f.defines]
    assert len(names) == len(set(names))
