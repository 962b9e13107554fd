"""The dashboard over Supabase REST (the PostgREST stand-in on a real database): the
same source, the same keyset tail and header; a gateway outage is shown and ridden out."""

from __future__ import annotations

from orchestrator.dashboard.app import DashboardApp
from orchestrator.dashboard.source import QueryTailSource
from orchestrator.db.supabase import SupabaseExecutor
from tests.integration.dashboard_support import Recording, add_rows, options, run, wait_for
from tests.support.fake_postgrest import FakePostgrest

KEY = "service-role-key-for-tests"


def test_tail_and_header_over_rest_ride_out_a_gateway_outage(conn, db_url):
    """Fill, new rows after the cursor, header numbers; three 503s show the status and
    the tail resumes without a gap or a duplicate."""
    add_rows(conn, ["one", "two"], log_level="ERROR")
    with FakePostgrest(db_url, KEY) as fake, SupabaseExecutor(fake.url, KEY) as rest:
        source = Recording(QueryTailSource(rest))
        app = DashboardApp(source, options())

        async def scenario() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, lambda: app.rows_shown == 2 and app.summary is not None)
                assert app.summary.error_rate == 1
                fake.fail_next(503, times=3)
                await wait_for(pilot, lambda: app.error is not None)
                add_rows(conn, ["three"])
                await wait_for(pilot, lambda: app.rows_shown == 3)
                assert app.error is None
                await pilot.pause(0.5)
                assert app.rows_shown == 3  # re-read in the lag window, shown once
                assert [line.split()[-1] for line in app.tail.text_lines()] == [
                    "one", "two", "three"
                ]  # fmt: skip

        run(scenario())
        paths = {r.path for r in fake.requests}
    assert paths == {"/rest/v1/rpc/func_log_dashboard_summary", "/rest/v1/rpc/func_query_logs"}
