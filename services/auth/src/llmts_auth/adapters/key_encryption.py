"""Encryption at rest of the private signing keys (Fernet from ``cryptography``: AES-128-CBC + HMAC-SHA256).

``SIGNING_KEYS_ENCRYPTION_KEY`` encrypts; it and the keys in ``SIGNING_KEYS_ENCRYPTION_OLD_KEYS`` decrypt
(``MultiFernet``), so the encryption key can be rotated: put the new key first, the old one in the old-keys list,
restart — the service re-encrypts every signing key with the new key at start — then drop the old key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SigningKeysLocked(RuntimeError):
    """The signing keys in the database cannot be read with the configured encryption key(s): refuse to start."""


def parse_fernet_key(value: str, setting: str) -> Fernet:
    try:
        return Fernet(value.strip().encode())
    except ValueError:
        raise ValueError(
            f"{setting} is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
        ) from None


def split_keys(value: str) -> list[str]:
    return [k.strip() for k in value.split(",") if k.strip()]


class KeyCipher:
    """Encrypts a private JWK with the current key, decrypts with the current or an old one."""

    def __init__(self, current: str, old: Sequence[str] = ()) -> None:
        self._current = parse_fernet_key(current, "SIGNING_KEYS_ENCRYPTION_KEY")
        keys = [self._current]
        keys += [parse_fernet_key(k, "SIGNING_KEYS_ENCRYPTION_OLD_KEYS") for k in old]
        self._all = MultiFernet(keys)

    def encrypt(self, private_jwk: dict[str, Any]) -> str:
        return self._current.encrypt(json.dumps(private_jwk, sort_keys=True).encode()).decode()

    def decrypt(self, token: str, *, kid: str) -> dict[str, Any]:
        try:
            plain = self._all.decrypt(token.encode())
        except InvalidToken:
            raise SigningKeysLocked(
                f"signing key {kid!r} cannot be decrypted with SIGNING_KEYS_ENCRYPTION_KEY or "
                "SIGNING_KEYS_ENCRYPTION_OLD_KEYS: wrong key? (when rotating it, keep the previous key in "
                "SIGNING_KEYS_ENCRYPTION_OLD_KEYS until the service has started once with the new one)"
            ) from None
        value: dict[str, Any] = json.loads(plain)
        return value

    def is_current(self, token: str) -> bool:
        """Whether ``token`` was encrypted with the current key (else it is re-encrypted at start)."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True


def locked_without_key(kid: str) -> SigningKeysLocked:
    return SigningKeysLocked(
        f"signing key {kid!r} is encrypted at rest but SIGNING_KEYS_ENCRYPTION_KEY is not set: set it to the key "
        "the signing keys were encrypted with"
    )
