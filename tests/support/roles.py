"""Supabase's three API roles, made on a test cluster where they are missing.

Roles belong to the cluster, not to a database: on a shared server
(``TEST_DATABASE_URL``) whether ``service_role`` exists decides which grants the
migrations write (``hub_internal.func_hub_secure`` grants only to roles that exist). The
session makes them before its template is migrated, so every database of the run is
migrated in the same world, whatever a test makes later.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

SUPABASE_ROLES = {
    "anon": "NOLOGIN NOINHERIT",
    "authenticated": "NOLOGIN NOINHERIT",
    "service_role": "NOLOGIN NOINHERIT BYPASSRLS",
}


def create_role_if_missing(conn: psycopg.Connection[Any], role: str, attributes: str) -> None:
    """Creates a cluster role unless it exists; one that exists is left exactly as it is
    (another test run, or the cluster's own Supabase-like set-up, may have made it)."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
        return
    # A concurrent test run may make it between the check and the CREATE.
    with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        conn.execute(f"CREATE ROLE {role} {attributes}")


def create_supabase_roles(conn: psycopg.Connection[Any]) -> None:
    """``anon``, ``authenticated`` and ``service_role``, each unless it exists."""
    for role, attributes in SUPABASE_ROLES.items():
        create_role_if_missing(conn, role, attributes)
