"""The one error of backup and restore: a refusal or a failure, in one line."""

from __future__ import annotations

from orchestrator.errors import HubError


class BackupError(HubError):
    """A backup or restore that cannot go on: one line saying why and what to do.

    ``status`` is the HTTP status the admin API answers with: 409 for a refusal the
    operator can lift (data in the target, a live daemon), 503 when a tool or the
    database is missing, 400 for a bad file.
    """

    def __init__(self, message: str, *, status: int = 409) -> None:
        super().__init__(message)
        self.status = status
