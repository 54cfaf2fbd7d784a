"""Where the CLI keeps the gateway URL and the tokens: ``~/.config/llmts/credentials.json`` (mode 0600).

``LLMTS_CONFIG_DIR`` moves the folder (else ``$XDG_CONFIG_HOME/llmts``); ``LLMTS_URL`` wins over the stored URL.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from llmts_client._core import DEFAULT_URL
from llmts_client.models import Tokens


def config_dir() -> Path:
    explicit = os.environ.get("LLMTS_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llmts"


@dataclass
class Credentials:
    url: str = DEFAULT_URL
    email: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None

    @staticmethod
    def path() -> Path:
        return config_dir() / "credentials.json"

    @classmethod
    def load(cls) -> Credentials:
        try:
            raw = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raw = {}
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__ and isinstance(v, str)}
        creds = cls(**known)
        env_url = os.environ.get("LLMTS_URL")
        if env_url:
            creds.url = env_url.rstrip("/")
        return creds

    def save(self) -> Path:
        """Write with mode 0600 (created so: never readable by others, not even for a moment)."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(self), out, indent=2)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
        return path

    def update(self, tokens: Tokens) -> None:
        """Keep a new token pair (every refresh spends the old refresh token)."""
        self.access_token, self.refresh_token = tokens.access_token, tokens.refresh_token
        self.save()
