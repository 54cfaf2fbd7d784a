"""``client_address``: X-Forwarded-For believed only from trusted proxies (issue 14, finding 3)."""

from __future__ import annotations

import pytest

from llmts_common.proxies import client_address, parse_networks

pytestmark = pytest.mark.unit

INGRESS = parse_networks("10.0.0.0/8, 192.168.1.7, ::1")


def test_an_untrusted_peer_is_the_client_whatever_its_header_says() -> None:
    assert client_address("203.0.113.5", "1.2.3.4", INGRESS) == "203.0.113.5"
    assert client_address("203.0.113.5", None, ()) == "203.0.113.5"
    assert client_address(None, "1.2.3.4", INGRESS) is None


def test_the_chain_is_walked_back_through_trusted_hops_only() -> None:
    assert client_address("10.1.2.3", "198.51.100.9", INGRESS) == "198.51.100.9"
    # a client-made prefix before the first untrusted hop is ignored
    assert client_address("10.1.2.3", "6.6.6.6, 198.51.100.9, 192.168.1.7", INGRESS) == "198.51.100.9"
    assert client_address("::1", "2001:db8::7", INGRESS) == "2001:db8::7"
    # only trusted hops: the first entry the chain started from
    assert client_address("10.1.2.3", "10.9.9.9", INGRESS) == "10.9.9.9"
    assert client_address("10.1.2.3", "", INGRESS) == "10.1.2.3"


def test_garbage_from_a_trusted_proxy_falls_back_to_the_proxy() -> None:
    assert client_address("10.1.2.3", "not-an-ip", INGRESS) == "10.1.2.3"


def test_settings_syntax() -> None:
    assert [str(n) for n in parse_networks("127.0.0.1, ::1/128,,")] == ["127.0.0.1/32", "::1/128"]
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="does not appear"):
        parse_networks("10.0.0.300/8")
