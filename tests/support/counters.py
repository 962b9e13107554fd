"""The job counters as a scrape reads them: what the folds counted (job_status_totals)
plus the events not folded yet (sql/functions/ops/job_status_totals.sql). Tests read
both: a fold stops below the oldest transaction running anywhere on the server (another
test's, on a shared one), so the totals alone may lag; the two together are exact."""

FOLDED = "SELECT provider, from_status, to_status, transitions FROM job_status_totals"
PENDING = (
    "SELECT c.provider, c.from_status, c.to_status, c.transitions FROM job_status_fold f,"
    " hub_internal.func_job_status_counts(f.tx, f.event_id, f.baseline, NULL, NULL) c"
)
COUNTED = (
    "SELECT provider, from_status, to_status, sum(transitions)::bigint AS transitions"
    f" FROM ({FOLDED} UNION ALL {PENDING}) t GROUP BY 1, 2, 3"
)
