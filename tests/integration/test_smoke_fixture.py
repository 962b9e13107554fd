"""The fixtures give each test a migrated database of its own."""


def test_clone_has_schema(conn):
    """A cloned database has the migrated log table and its functions."""
    assert conn.execute("SELECT to_regclass('public.system_logs') IS NOT NULL").fetchone() == (
        True,
    )
