"""What the CLI's commands share: the client on the stored credentials, ``key=value`` parsing, the consoles."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

from llmts_client.client import Client
from llmts_client.config import Credentials

err = Console(stderr=True)
out = Console()


def client() -> Client:
    """A client on the stored credentials; a refreshed token pair is stored again (0600)."""
    creds = Credentials.load()
    return Client(
        creds.url,
        access_token=creds.access_token,
        refresh_token=creds.refresh_token,
        on_tokens=creds.update,
    )


def parse_vars(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; a value that is JSON (number, true, list …) is read as JSON, else as text."""
    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}")
        try:
            result[key] = json.loads(value)
        except ValueError:
            result[key] = value
    return result
