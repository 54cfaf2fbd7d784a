"""Signed download links: what one signs, the other accepts until it expires; anything changed is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from llmts_exporter.domain.links import DownloadLinks, LinkRefused, derive_key

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LINKS = DownloadLinks(
    key=derive_key("internal-token-of-this-stack"),
    base_url="https://api.example.com/",
    lifetime=timedelta(hours=1),
)


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.rsplit("/", 1)[-1], query["expires"][0], query["signature"][0]


def test_a_signed_link_is_absolute_and_accepted_until_it_expires() -> None:
    url, expires_at = LINKS.sign("exp-1", NOW)
    assert url.startswith("https://api.example.com/downloads/exp-1?expires=")
    assert expires_at == NOW + timedelta(hours=1)
    export_id, expires, signature = _parts(url)
    LINKS.verify(export_id, expires, signature, NOW + timedelta(minutes=59))
    with pytest.raises(LinkRefused) as refused:
        LINKS.verify(export_id, expires, signature, NOW + timedelta(hours=1))
    assert refused.value.code == "link_expired"


@pytest.mark.parametrize("part", ["export_id", "expires", "signature"])
def test_a_tampered_link_is_refused(part: str) -> None:
    export_id, expires, signature = _parts(LINKS.sign("exp-1", NOW)[0])
    tampered = {
        "export_id": ("exp-2", expires, signature),
        "expires": (export_id, str(int(expires) + 3600), signature),
        "signature": (export_id, expires, signature[:-1] + ("0" if signature[-1] != "0" else "1")),
    }[part]
    with pytest.raises(LinkRefused) as refused:
        LINKS.verify(*tampered, NOW)
    assert refused.value.code == "link_invalid"


@pytest.mark.parametrize("expires", ["", "-5", "1e9", "12345678901234567890", "soon"])
def test_a_malformed_expiry_is_refused_not_an_error(expires: str) -> None:
    with pytest.raises(LinkRefused):
        LINKS.verify("exp-1", expires, "00", NOW)


def test_a_link_signed_with_another_key_is_refused() -> None:
    other = DownloadLinks(
        key=derive_key("another-stack-token"), base_url="https://api.example.com", lifetime=timedelta(hours=1)
    )
    export_id, expires, signature = _parts(other.sign("exp-1", NOW)[0])
    with pytest.raises(LinkRefused):
        LINKS.verify(export_id, expires, signature, NOW)


def test_a_short_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        DownloadLinks(key=b"short", base_url="http://x", lifetime=timedelta(seconds=60))
