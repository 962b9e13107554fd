"""The ``aws-chunked`` content encoding, decoded incrementally as the body streams in.

Current boto3 over HTTPS sends ``x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER``
and frames the object as::

    <hex size>\\r\\n<bytes>\\r\\n ... 0\\r\\nx-amz-checksum-crc32:<base64>\\r\\n\\r\\n

(inside HTTP/1.1 ``Transfer-Encoding: chunked``, which uvicorn removes). Signed streaming
(``STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]``) adds ``;chunk-signature=<hex>`` to each
size line, each signature chaining the previous one; those are verified here as the
chunks complete. Memory stays bounded: at most one size or trailer line (capped) is
buffered beyond the bytes handed on.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from orchestrator.server.storage.errors import S3Error

MAX_LINE = 4096  # a size line with its signature, or one trailer line
MAX_TRAILER_LINES = 16

_HEADER, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class AwsChunkedDecoder:
    """``feed(bytes) -> payload pieces``; ``finish()`` checks the body ended properly.

    ``chunk_signer(previous, chunk_sha256) -> expected signature`` turns on chunk
    signature verification, starting from ``seed`` (the request's own signature).
    """

    def __init__(
        self,
        *,
        chunk_signer: Callable[[str, str], str] | None = None,
        seed: str = "",
    ) -> None:
        self._buffer = bytearray()
        self._state = _HEADER
        self._remaining = 0
        self._signer = chunk_signer
        self._previous = seed
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256() if chunk_signer else None
        self.trailers: dict[str, str] = {}
        self.decoded_length = 0

    def feed(self, data: bytes) -> list[bytes]:
        """The payload bytes ``data`` completes (possibly none)."""
        out: list[bytes] = []
        if self._state == _DATA and not self._buffer and len(data) <= self._remaining:
            # The common case: a piece wholly inside a chunk's data, handed on uncopied.
            self._take(data, out)
            return out
        self._buffer += data
        while self._buffer and self._state != _DONE:
            if self._state == _DATA:
                piece = bytes(self._buffer[: self._remaining])
                del self._buffer[: len(piece)]
                self._take(piece, out)
            elif self._state == _DATA_END:
                if len(self._buffer) < 2:
                    break
                if self._buffer[:2] != b"\r\n":
                    raise S3Error(
                        "IncompleteBody", "aws-chunked: a chunk's data is not followed by CRLF"
                    )
                del self._buffer[:2]
                self._state = _HEADER
            else:
                line = self._line()
                if line is None:
                    break
                if self._state == _HEADER:
                    self._header(line)
                else:
                    self._trailer(line)
        if self._state == _DONE and self._buffer.strip():
            raise S3Error("IncompleteBody", "aws-chunked: bytes after the final chunk's trailer")
        return out

    def _take(self, piece: bytes, out: list[bytes]) -> None:
        if not piece:
            return
        out.append(piece)
        self._remaining -= len(piece)
        self.decoded_length += len(piece)
        if self._chunk_hash is not None:
            self._chunk_hash.update(piece)
        if self._remaining == 0:
            self._end_chunk()
            self._state = _DATA_END

    def _line(self) -> str | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > MAX_LINE:
                raise S3Error("IncompleteBody", "aws-chunked: a size or trailer line is too long")
            return None
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise S3Error(
                "IncompleteBody", "aws-chunked: a size or trailer line is not ASCII"
            ) from None

    def _header(self, line: str) -> None:
        size_text, _, extension = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise S3Error(
                "IncompleteBody", f"aws-chunked: bad chunk size {size_text[:20]!r}"
            ) from None
        if size < 0:
            raise S3Error("IncompleteBody", "aws-chunked: negative chunk size")
        name, _, value = extension.partition("=")
        self._chunk_signature = value.strip().lower() if name.strip() == "chunk-signature" else ""
        if self._signer is not None and not self._chunk_signature:
            raise S3Error(
                "SignatureDoesNotMatch", "aws-chunked: a signed stream's chunk has no signature"
            )
        self._remaining = size
        if size == 0:
            self._end_chunk()
            self._state = _TRAILER
        else:
            self._state = _DATA

    def _end_chunk(self) -> None:
        if self._signer is None or self._chunk_hash is None:
            return
        expected = self._signer(self._previous, self._chunk_hash.hexdigest())
        if not hmac.compare_digest(expected, self._chunk_signature):
            raise S3Error(
                "SignatureDoesNotMatch", "aws-chunked: a chunk's signature does not match"
            )
        self._previous = expected
        self._chunk_hash = hashlib.sha256()

    def _trailer(self, line: str) -> None:
        if not line:
            self._state = _DONE
            return
        if len(self.trailers) >= MAX_TRAILER_LINES:
            raise S3Error("IncompleteBody", "aws-chunked: too many trailer lines")
        name, sep, value = line.partition(":")
        if not sep:
            raise S3Error("IncompleteBody", f"aws-chunked: bad trailer line {line[:40]!r}")
        self.trailers[name.strip().lower()] = value.strip()

    def finish(self) -> None:
        """IncompleteBody unless the final chunk and its trailer section arrived."""
        if self._state == _TRAILER and not self._buffer:
            # Some encoders end the trailer section without its empty line.
            self._state = _DONE
        if self._state != _DONE:
            raise S3Error("IncompleteBody", "aws-chunked: the body ended before its final chunk")
