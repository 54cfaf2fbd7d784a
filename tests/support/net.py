"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it; another process could take it before it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def unused_port_url(host: str = "127.0.0.1") -> str:
    """``http://host:port`` where nothing listens: connections are refused."""
    return f"http://{host}:{free_port(host)}"
