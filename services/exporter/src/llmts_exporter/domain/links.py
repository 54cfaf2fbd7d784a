"""Signed download links: an absolute URL that opens one export's file until it expires, without a user token.

``<PUBLIC_BASE_URL>/downloads/<export_id>?expires=<unix seconds>&signature=<hex>`` where the signature is
HMAC-SHA256 over ``"<export_id>\\n<expires>"`` with the exporter's link key. Whoever holds the link can fetch the
file until ``expires`` (so it is carried only by ``ExportReady``, whose readers are the export's owner's systems);
changing the id, the expiry or the signature, or using it late, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, urlencode

LINK_KEY_CONTEXT: Final = b"llmts exporter: signed download links v1"
"""Derivation context when the key is derived from another secret (the internal token)."""


class LinkRefused(Exception):
    """The link is expired or was not signed by us; ``code`` is ``link_expired`` or ``link_invalid``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def derive_key(secret: str) -> bytes:
    """A link key derived from a shared secret (HMAC as a one-step KDF): links never reveal the secret, and a
    key for another purpose derived from the same secret differs."""
    return hmac.new(secret.encode(), LINK_KEY_CONTEXT, hashlib.sha256).digest()


@dataclass(frozen=True)
class DownloadLinks:
    key: bytes
    base_url: str
    lifetime: timedelta

    def __post_init__(self) -> None:
        if len(self.key) < 16:
            raise ValueError("the download link key must have at least 16 bytes")

    def signature(self, export_id: str, expires: int) -> str:
        return hmac.new(self.key, f"{export_id}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, export_id: str, now: datetime) -> tuple[str, datetime]:
        """The absolute link of ``export_id`` and when it expires (whole seconds, ``lifetime`` after ``now``)."""
        expires = int((now + self.lifetime).timestamp())
        query = urlencode({"expires": expires, "signature": self.signature(export_id, expires)})
        url = f"{self.base_url.rstrip('/')}/downloads/{quote(export_id, safe='')}?{query}"
        return url, datetime.fromtimestamp(expires, UTC)

    def verify(self, export_id: str, expires: str, signature: str, now: datetime) -> None:
        """Raise :class:`LinkRefused` unless ``signature`` is ours for this id and expiry and it has not passed."""
        if not expires.isdigit() or len(expires) > 12:
            raise LinkRefused("link_invalid", "the download link is not valid")
        expected = self.signature(export_id, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            raise LinkRefused("link_invalid", "the download link is not valid")
        if now.timestamp() >= int(expires):
            raise LinkRefused("link_expired", "the download link has expired; ask for the export again")
