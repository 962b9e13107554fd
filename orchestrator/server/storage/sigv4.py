"""AWS Signature Version 4, the server's half: parse what the client signed, rebuild the
canonical request from what arrived, and compare signatures in constant time.

No maintained server-side verifier exists (botocore only signs); this follows the
published algorithm, and the tests hold it to what real boto3 sends. S3 specifics: the
path is signed as sent (no normalisation, no double encoding), the payload hash is the
``x-amz-content-sha256`` header's value (a hex digest, ``UNSIGNED-PAYLOAD`` or a
``STREAMING-*`` mode), and streaming chunks chain their own signatures (§ chunked.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from orchestrator.server.storage.errors import S3Error

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_CREDENTIAL = re.compile(
    r"^([A-Za-z0-9]{1,128})/(\d{8})/([a-z0-9-]{1,32})/([a-z0-9-]{1,32})/aws4_request$"
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Signed:
    """What a request says it signed: who, when, for which scope, which headers."""

    access_key_id: str
    date: str  # YYYYMMDD of the scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # YYYYMMDDTHHMMSSZ
    presigned: bool = False
    expires: int | None = None

    @property
    def scope(self) -> str:
        """``date/region/service/aws4_request``."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _credential(value: str) -> tuple[str, str, str, str]:
    match = _CREDENTIAL.match(value)
    if match is None:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            "the Credential must read <access key id>/<YYYYMMDD>/<region>/s3/aws4_request",
        )
    key_id, date, region, service = match.groups()
    return key_id, date, region, service


def parse_authorization(header: str, amz_date: str | None) -> Signed:
    """The ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``
    header, or an S3 error naming what is malformed."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise S3Error(
            "InvalidArgument" if algorithm != "AWS" else "AccessDenied",
            f"unsupported authorization {algorithm[:32]!r}: sign requests with AWS Signature "
            "Version 4 (AWS4-HMAC-SHA256)",
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        raise S3Error(
            "AuthorizationHeaderMalformed", f"the Authorization header lacks {missing[0]}"
        )
    if not amz_date:
        raise S3Error("AccessDenied", "a signed request needs an X-Amz-Date header")
    key_id, date, region, service = _credential(fields["Credential"])
    return Signed(
        key_id,
        date,
        region,
        service,
        tuple(fields["SignedHeaders"].split(";")),
        fields["Signature"].lower(),
        amz_date,
    )


def parse_presigned(query: Mapping[str, str]) -> Signed:
    """Query-string authentication (a presigned GET URL)."""
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise S3Error(
            "AuthorizationQueryParametersError", "X-Amz-Algorithm must be AWS4-HMAC-SHA256"
        )
    key_id, date, region, service = _credential(query.get("X-Amz-Credential", ""))
    try:
        expires = int(query.get("X-Amz-Expires", ""))
    except ValueError:
        raise S3Error(
            "AuthorizationQueryParametersError", "X-Amz-Expires must be a number of seconds"
        ) from None
    return Signed(
        key_id,
        date,
        region,
        service,
        tuple(query.get("X-Amz-SignedHeaders", "host").split(";")),
        query.get("X-Amz-Signature", "").lower(),
        query.get("X-Amz-Date", ""),
        presigned=True,
        expires=expires,
    )


def request_time(amz_date: str) -> datetime:
    """The instant of an ``X-Amz-Date`` value."""
    try:
        return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise S3Error(
            "AccessDenied", f"X-Amz-Date {amz_date[:32]!r} is not YYYYMMDDTHHMMSSZ"
        ) from None


def check_time(signed: Signed, now: datetime) -> None:
    """Clock skew at most 15 minutes (a presigned URL: not expired instead)."""
    when = request_time(signed.amz_date)
    if signed.amz_date[:8] != signed.date:
        raise S3Error(
            "SignatureDoesNotMatch", "the credential scope's date is not X-Amz-Date's date"
        )
    if signed.presigned:
        if not 1 <= (signed.expires or 0) <= 7 * 86_400:
            raise S3Error("AuthorizationQueryParametersError", "X-Amz-Expires must be 1..604800")
        if (now - when).total_seconds() > (signed.expires or 0) or (
            when - now
        ).total_seconds() > MAX_SKEW_SECONDS:
            raise S3Error("AccessDenied", "the presigned URL has expired")
        return
    skew = abs((now - when).total_seconds())
    if skew > MAX_SKEW_SECONDS:
        raise S3Error(
            "RequestTimeTooSkewed",
            f"the difference between the request time ({when:%Y-%m-%dT%H:%M:%SZ}) and the "
            f"server time ({now:%Y-%m-%dT%H:%M:%SZ}) is {int(skew)} s; at most "
            f"{MAX_SKEW_SECONDS} s is allowed: fix the client's clock",
        )


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(query_string: str, *, drop_signature: bool = False) -> str:
    """Every query parameter, decoded then encoded the one canonical way, sorted."""
    pairs: list[tuple[str, str]] = []
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name, value = unquote(name), unquote(value)
        if drop_signature and name == "X-Amz-Signature":
            continue
        pairs.append((_encode(name), _encode(value)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def canonical_request(
    method: str,
    raw_path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    signed: Signed,
    payload_hash: str,
) -> str:
    """The six lines the signature covers, from what actually arrived."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(_SPACES.sub(" ", value.strip()))
    lines = []
    for name in signed.signed_headers:
        if name not in values:
            raise S3Error("SignatureDoesNotMatch", f"signed header {name!r} is not in the request")
        lines.append(f"{name}:{','.join(values[name])}\n")
    return "\n".join(
        [
            method,
            raw_path,
            canonical_query(query_string, drop_signature=signed.presigned),
            "".join(lines),
            ";".join(signed.signed_headers),
            payload_hash,
        ]
    )


def signing_key(secret: str, signed: Signed) -> bytes:
    """HMAC chain secret -> date -> region -> service -> aws4_request."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (signed.date, signed.region, signed.service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign(key: bytes, string_to_sign: str) -> str:
    """The hex signature of one string to sign."""
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def string_to_sign(signed: Signed, canonical: str) -> str:
    """``AWS4-HMAC-SHA256 / date / scope / sha256(canonical request)``."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{signed.amz_date}\n{signed.scope}\n{digest}"


def verify(key: bytes, signed: Signed, canonical: str) -> None:
    """SignatureDoesNotMatch unless the signature is the one ``key`` gives."""
    expected = sign(key, string_to_sign(signed, canonical))
    if not hmac.compare_digest(expected, signed.signature):
        raise S3Error(
            "SignatureDoesNotMatch",
            "the request signature we calculated does not match the signature you provided: "
            "check your secret access key and signing method",
        )


def chunk_string_to_sign(signed: Signed, previous: str, chunk_sha256: str) -> str:
    """What one ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` chunk's signature covers."""
    return (
        f"{ALGORITHM}-PAYLOAD\n{signed.amz_date}\n{signed.scope}\n{previous}\n"
        f"{EMPTY_SHA256}\n{chunk_sha256}"
    )
