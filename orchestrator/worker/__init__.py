"""The worker runtime: claims local jobs, runs them, renews leases, reports with the token.

``orchestrator worker`` (:mod:`orchestrator.cli.worker_cmd`) is the command; payloads are
described in :mod:`orchestrator.worker.payload`.
"""
