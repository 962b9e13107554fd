"""The storage endpoint's per-app state: where objects live, the limits, the credential
cache. Made on first use from the hub's settings (``hub.services["storage"]``)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.server.state import HubState
from orchestrator.server.storage.auth import CredentialCache
from orchestrator.server.storage.errors import S3Error
from orchestrator.server.storage.files import TMP_DIR

logger = logging.getLogger("orchestrator.server.storage")
STALE_TEMP_SECONDS = 86_400
MAX_PART_BYTES = 5 * 1024**3
MIN_PART_BYTES = 5 * 1024**2
MAX_PARTS = 10_000


@dataclass
class StorageService:
    """Objects under ``root``; ``max_object_bytes`` per single PUT; writes refused with
    ``SlowDown`` while the disk has less than ``min_free_bytes`` left."""

    root: Path
    max_object_bytes: int
    min_free_bytes: int
    cache: CredentialCache = field(default_factory=CredentialCache)

    def sweep_temporary_files(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Removes temporary files a crashed process left (a live upload touches its file
        at least every batch, so a day-old one is nobody's); how many went."""
        tmp = self.root / TMP_DIR
        if not tmp.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for path in tmp.iterdir():
            with contextlib.suppress(OSError):
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        if removed:
            logger.info("Removed %d stale temporary upload file(s) from %s", removed, tmp)
        return removed

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
        )
        hub.services["storage"] = service
        service.sweep_temporary_files()
    return service
