"""Objects on disk: where a key lives, and how a body becomes a file without ever being
a partial object.

``{storage_dir}/{bucket}/{key}``. A key is refused (``InvalidArgument``) if it could
name anything else: a ``..`` or ``.`` segment, an empty segment (``a//b`` and ``a/b``
would be one file), a leading ``/``, NUL or another control character, more than 1024
bytes of UTF-8; and the resolved path must still be inside the bucket's directory.

A body is written to a temporary file under ``{storage_dir}/.tmp`` (same filesystem),
hashed as it goes, ``fsync``-ed and renamed into place: a client killed mid-body, or a
digest that does not match, leaves no object (the temporary file is removed). Writes and
hashing run in a worker thread in batches of ``BATCH`` bytes (hashlib and zlib release
the GIL) while the next batch arrives, so the event loop keeps serving other requests
and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import secrets
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from awscrt import checksums

from orchestrator.server.storage.errors import S3Error

# One definition of the layout, shared with the daemon's expiry duty (re-exported).
from orchestrator.storage.expiry import PARTS_DIR as PARTS_DIR
from orchestrator.storage.expiry import TMP_DIR as TMP_DIR

BATCH = 1024 * 1024
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_bucket(bucket: str) -> str:
    """``bucket`` if it is a valid name (3-63 of a-z, 0-9, ``.``, ``-``)."""
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise S3Error(
            "InvalidBucketName",
            f"invalid bucket name {bucket[:70]!r}: expected 3-63 characters of a-z, 0-9, '.' "
            "and '-', starting and ending with a letter or digit",
        )
    return bucket


def check_key(key: str) -> str:
    """``key`` if it can only ever name a file inside its bucket, else InvalidArgument."""
    why = None
    if not key:
        why = "it is empty"
    elif len(key.encode("utf-8", "surrogatepass")) > 1024:
        why = "it is longer than 1024 bytes of UTF-8"
    elif _CONTROL.search(key):
        why = "it contains NUL or another control character"
    elif key.startswith("/"):
        why = "it starts with '/'"
    elif any(segment in ("", ".", "..") for segment in key.split("/")):
        why = "it has an empty, '.' or '..' path segment"
    else:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            why = "it is not valid UTF-8"
    if why:
        raise S3Error(
            "InvalidArgument",
            f"invalid object key {key[:80]!r}: {why}; keys are 1-1024 bytes of UTF-8 without "
            "control characters, '.'/'..' or empty segments, or a leading '/'",
        )
    return key


def object_path(root: Path, bucket: str, key: str) -> Path:
    """The file of ``bucket/key``; never outside ``root/bucket`` (checked after resolving)."""
    base = (root / check_bucket(bucket)).resolve()
    path = (base / check_key(key)).resolve()
    if not path.is_relative_to(base) or path == base:
        raise S3Error("InvalidArgument", f"invalid object key {key[:80]!r}: it leaves the bucket")
    return path


class Digests:
    """The hashes a body is checked against, updated batch by batch. CRC32C and
    CRC64NVME (S3's newer checksums; the standard library has neither) come from
    awscrt, AWS's own C implementation, which botocore uses for them too."""

    _CRCS: ClassVar[dict[str, tuple[Callable[[Any, int], int], int]]] = {
        # name: (incremental function (data, previous) -> value, bytes in the header)
        "crc32": (lambda data, previous: zlib.crc32(data, previous), 4),
        "crc32c": (lambda data, previous: checksums.crc32c(data, previous), 4),
        "crc64nvme": (lambda data, previous: checksums.crc64nvme(data, previous), 8),
    }

    def __init__(self, names: set[str]) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.extra: dict[str, Any] = {}
        for name in names:
            if name == "sha256":
                self.extra[name] = hashlib.sha256()
            elif name == "sha1":
                self.extra[name] = hashlib.sha1(usedforsecurity=False)
        self.crcs: dict[str, int] = {name: 0 for name in names if name in self._CRCS}

    def update(self, data: bytes | memoryview) -> None:
        self.md5.update(data)
        for digest in self.extra.values():
            digest.update(data)
        for name, value in self.crcs.items():
            self.crcs[name] = self._CRCS[name][0](data, value)

    def sha256_hex(self) -> str | None:
        digest = self.extra.get("sha256")
        return digest.hexdigest() if digest is not None else None

    def checksum_b64(self, name: str) -> str | None:
        """The base64 value an ``x-amz-checksum-<name>`` header would carry, or None."""
        if name in self.crcs:
            width = self._CRCS[name][1]
            return base64.b64encode(self.crcs[name].to_bytes(width, "big")).decode()
        digest = self.extra.get(name)
        return base64.b64encode(digest.digest()).decode() if digest is not None else None


class TempObject:
    """A body on its way to disk: ``write`` batches, then ``commit`` or ``discard``."""

    def __init__(self, root: Path, digests: Digests) -> None:
        tmp = root / TMP_DIR
        tmp.mkdir(parents=True, exist_ok=True)
        self.path = tmp / f"upload-{secrets.token_hex(12)}"
        self._file = open(self.path, "wb")  # noqa: SIM115 (closed by commit/discard)
        self.digests = digests
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._writing: asyncio.Future[None] | None = None

    async def add(self, data: bytes) -> None:
        """Queues ``data``; a full batch is handed to a thread while the next one arrives
        (at most one batch in the thread and one filling: memory stays ~2 x BATCH)."""
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= BATCH:
            await self._hand_over()

    async def _hand_over(self) -> None:
        if self._writing is not None:
            await self._writing
            self._writing = None
        if not self._pending:
            return
        batch = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_size = [], 0
        self._writing = asyncio.ensure_future(asyncio.to_thread(self._write, batch))

    async def flush(self) -> None:
        """Everything received so far is written and hashed."""
        await self._hand_over()
        if self._writing is not None:
            await self._writing
            self._writing = None

    def _write(self, batch: bytes) -> None:
        self.digests.update(batch)
        self._file.write(batch)
        self.size += len(batch)

    async def commit(self, target: Path, *, durable: bool = True) -> None:
        """Flushes, fsyncs and renames the file to ``target`` (atomic on one filesystem).
        ``durable=False`` skips the fsyncs: for multipart parts, whose object is fsync-ed
        when it is joined (a part lost to a crash fails the Complete, never the data)."""
        await self.flush()
        await asyncio.to_thread(self._commit, target, durable)

    def _commit(self, target: Path, durable: bool) -> None:
        self._file.flush()
        if durable:
            os.fsync(self._file.fileno())
        self._file.close()
        place(self.path, target, durable=durable)

    def discard(self) -> None:
        """Closes and removes the temporary file (nothing of the body remains); a batch
        still in its thread finishes writing to the unlinked file, harmlessly."""
        if self._writing is not None:
            self._writing.add_done_callback(lambda _: self._file.close())
            self._writing.add_done_callback(lambda f: f.cancelled() or f.exception())
        else:
            self._file.close()
        self.path.unlink(missing_ok=True)


def place(source: Path, target: Path, *, durable: bool = True) -> None:
    """Renames ``source`` onto ``target``, creating its directories; a key that would need
    a file where a directory is (or the reverse) is InvalidArgument."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise NotADirectoryError
        os.replace(source, target)
    except (NotADirectoryError, IsADirectoryError, FileExistsError):
        source.unlink(missing_ok=True)
        raise S3Error(
            "InvalidArgument",
            f"object key {target.name!r} conflicts with an existing key (one would need a "
            "directory where the other is a file)",
        ) from None
    if not durable:
        return
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_object(root: Path, target: Path) -> None:
    """Removes an object's file and the directories it leaves empty (up to the bucket)."""
    target.unlink(missing_ok=True)
    parent = target.parent
    while parent != root and parent.parent != root:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent
