"""The audit trail (``sql/functions/ops/audit.sql``): one hash chain across every instance.

:mod:`orchestrator.audit.calls` builds the operations; :mod:`orchestrator.audit.events`
appends the hub's own events (authentication failures, configuration changes) from the
HTTP server with the request's correlation id, client address and instance.
"""
