"""The storage endpoint's per-app state: where objects live, the limits, the credential
cache. Made on first use from the hub's settings (``hub.services["storage"]``)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.server.state import HubState
from orchestrator.server.storage.auth import CredentialCache
from orchestrator.server.storage.errors import S3Error
from orchestrator.storage.expiry import STALE_TEMP_SECONDS, sweep_temporary_files

logger = logging.getLogger("orchestrator.server.storage")
MAX_PART_BYTES = 5 * 1024**3
MIN_PART_BYTES = 5 * 1024**2
MAX_PARTS = 10_000


@dataclass
class StorageService:
    """Objects under ``root``; ``max_object_bytes`` per single PUT, ``max_upload_bytes``
    per multipart upload (the sum of its parts); writes refused with ``SlowDown`` while
    the disk has less than ``min_free_bytes`` left."""

    root: Path
    max_object_bytes: int
    min_free_bytes: int
    max_upload_bytes: int = 5 * 1024**4
    cache: CredentialCache = field(default_factory=CredentialCache)

    def sweep_temporary_files(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Removes temporary files a crashed process left (the daemon's
        ``multipart_expiry`` duty does the same every hour); how many went."""
        return sweep_temporary_files(self.root, older_than)

    def check_space(self, incoming: int | None) -> None:
        """SlowDown (503) when writing ``incoming`` bytes would leave too little disk."""
        self.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.root).free
        if free - (incoming or 0) < self.min_free_bytes:
            raise S3Error(
                "SlowDown",
                f"the storage disk is nearly full ({free} bytes free, "
                f"ORCHESTRATOR_STORAGE_MIN_FREE_BYTES={self.min_free_bytes}): try again later",
            )


def storage_of(hub: HubState) -> StorageService:
    """The app's storage service (one per app)."""
    service = hub.services.get("storage")
    if not isinstance(service, StorageService):
        settings = hub.settings
        service = StorageService(
            Path(settings.storage_dir).expanduser().resolve(),
            settings.storage_max_object_bytes,
            settings.storage_min_free_bytes,
            settings.storage_max_upload_bytes,
        )
        hub.services["storage"] = service
        service.sweep_temporary_files()
    return service
