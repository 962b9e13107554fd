"""The database side of backup and restore (pg_dump, pg_restore, psql and the SQL around
them), kept under orchestrator/db/ with every other use of the driver; the public API is
:mod:`orchestrator.backup`."""
