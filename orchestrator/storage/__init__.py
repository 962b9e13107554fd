"""Job uploads: per-job S3 credentials and the object index (``sql/functions/storage/``).

The HTTP endpoint that speaks S3 is :mod:`orchestrator.server.storage`; this package is
what workers and the daemon need without the server: the calls and the environment a
job is handed.
"""
