"""Which address is the client's: ``X-Forwarded-For`` is believed only from configured proxies (``TRUSTED_PROXIES``).

Walk the chain from the nearest hop: the TCP peer first, then the header's entries from right to left; every hop
that is a trusted proxy hands over to the entry before it; the first untrusted one is the client. A peer that is not
a trusted proxy is the client, whatever its header says, so rotating a fake header changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(raw: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks (a bare address is a /32 or /128). Raises ``ValueError``."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address given the TCP peer, the ``X-Forwarded-For`` header and the trusted proxy networks."""
    if peer is None or not _trusted(peer, trusted):
        return peer
    hops = [p.strip() for p in (forwarded_for or "").split(",") if p.strip()]
    current = peer
    while hops and _trusted(current, trusted):
        current = hops.pop()
    try:
        return str(ipaddress.ip_address(current))
    except ValueError:  # a garbage entry from an untrusted sender: the last proxy's own view is all we know
        return peer
