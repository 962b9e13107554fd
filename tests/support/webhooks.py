"""Signing provider webhooks as a provider would (Standard Webhooks), for the tests."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook


def new_secret() -> str:
    """A fresh ``whsec_`` secret (32 random bytes, base64)."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def signed(
    secret: str,
    payload: Any,
    *,
    msg_id: str | None = None,
    age: float = 0,
    raw: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """(body, headers) of a delivery signed with ``secret``, ``age`` seconds old."""
    body = raw if raw is not None else json.dumps(payload).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = datetime.now(UTC) - timedelta(seconds=age)
    return body, {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, when, body),
    }
