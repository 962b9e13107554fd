"""Periodic jobs: cron schedules whose ticks submit jobs (``sql/functions/jobs/periodic.sql``).

The database keeps each schedule's next tick and submits each tick once, however many
daemons ask (:func:`orchestrator.periodic.calls.enqueue_periodic_job`); the daemon
evaluates the cron expressions (:mod:`orchestrator.periodic.cron`, croniter).
"""
