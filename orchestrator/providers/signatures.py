"""Standard Webhooks signatures of provider callbacks (the scheme Replicate uses).

A provider signs ``{webhook-id}.{webhook-timestamp}.{raw body}`` with HMAC-SHA256 and
sends ``webhook-signature: v1,<base64>`` (several, space-separated, while it rotates).
Verification is the ``standardwebhooks`` package's (timestamp tolerance 5 minutes, both
ways; constant-time comparison). The hub may hold several secrets for one provider
during a rotation: the secret's value lists them separated by spaces or commas, and a
delivery signed with any of them passes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from orchestrator.config import Settings
from orchestrator.daemon.config import EnterpriseConfig
from orchestrator.errors import ConfigError
from orchestrator.providers.config import ProviderSection
from orchestrator.secrets import SecretsManager

logger = logging.getLogger("orchestrator.providers.signatures")

_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class SignatureCheck:
    """``ok``, else the audit reason (``bad_signature`` or ``timestamp_out_of_tolerance``)
    and a one-line detail for the 401."""

    ok: bool
    reason: str = ""
    detail: str = ""


def signers(value: str | None) -> list[Webhook]:
    """One verifier per secret in ``value`` (``whsec_`` prefix optional); a secret that
    is not base64 is skipped with an error line (its name is logged, never its value)."""
    found: list[Webhook] = []
    for index, secret in enumerate(s for s in _SPLIT.split(value or "") if s):
        try:
            found.append(Webhook(secret))
        except Exception as error:  # binascii.Error, the library's EmptyWebhookSecretError
            logger.error(
                "Webhook secret #%d is unusable (%s); expected base64",
                index + 1,
                type(error).__name__,
            )
    return found


def verify(body: bytes, headers: Mapping[str, str], verifiers: Sequence[Webhook]) -> SignatureCheck:
    """Checks ``body`` against the headers with each secret in turn."""
    if not verifiers:
        return SignatureCheck(False, "bad_signature", "no usable webhook secret is configured")
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        if not headers.get(name):
            return SignatureCheck(
                False,
                "bad_signature",
                f"missing {name} header: sign deliveries with Standard Webhooks "
                "(webhook-id, webhook-timestamp, webhook-signature)",
            )
    last = ""
    for verifier in verifiers:
        try:
            verifier.verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError as error:
            last = str(error)
            if "timestamp" in last.lower() or "Invalid Signature Headers" in last:
                return SignatureCheck(
                    False,
                    "timestamp_out_of_tolerance",
                    "webhook-timestamp is not within 300 seconds of the hub's clock",
                )
            continue
        return SignatureCheck(True)
    return SignatureCheck(False, "bad_signature", "invalid webhook signature")


def secret_value(secrets: SecretsManager, name: str, section: ProviderSection) -> str | None:
    """The first of the provider's secret names that resolves."""
    for candidate in section.webhook_secret_names(name):
        value = secrets.get(candidate)
        if value:
            return value
    return None


def check_webhook_setup(
    config: EnterpriseConfig, secrets: SecretsManager, settings: Settings
) -> None:
    """At start-up: every provider with a webhook URL that requires signatures has a
    usable secret, and ``webhook_url: auto`` has ``ORCHESTRATOR_PUBLIC_URL``."""
    for name, section in config.providers.items():
        try:
            url = section.resolved_webhook_url(name, settings.public_url)
        except ValueError as error:
            raise ConfigError(f"invalid config: {error}") from None
        if url is None or not section.webhook_require_signature:
            continue
        if not signers(secret_value(secrets, name, section)):
            names = " or ".join(section.webhook_secret_names(name))
            raise ConfigError(
                f"provider {name} receives webhooks but has no usable signing secret: set "
                f"{names} (a base64 secret, whsec_ prefix optional) in the environment or with "
                f"`orchestrator secrets set`, or set providers.{name}.webhook_require_signature: "
                "false"
            )
