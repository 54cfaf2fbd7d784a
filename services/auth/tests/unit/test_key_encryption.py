"""Signing keys at rest: the Fernet cipher (encrypt, decrypt, rotation) and the settings that configure it."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from llmts_auth.adapters.key_encryption import KeyCipher, SigningKeysLocked
from llmts_auth.bootstrap import key_cipher
from llmts_auth.settings import AuthSettings

PRIVATE = {"kty": "OKP", "crv": "Ed25519", "x": "pub-x", "d": "very-private-d-value", "kid": "k1"}


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_round_trip_and_the_token_hides_the_private_key() -> None:
    cipher = KeyCipher(new_key())
    token = cipher.encrypt(PRIVATE)
    assert "very-private-d-value" not in token
    assert cipher.decrypt(token, kid="k1") == PRIVATE
    assert cipher.is_current(token)


def test_wrong_key_is_refused_with_the_reason() -> None:
    token = KeyCipher(new_key()).encrypt(PRIVATE)
    with pytest.raises(SigningKeysLocked, match=r"'k1' cannot be decrypted with SIGNING_KEYS_ENCRYPTION_KEY"):
        KeyCipher(new_key()).decrypt(token, kid="k1")


def test_old_keys_decrypt_during_a_rotation_but_never_encrypt() -> None:
    old, new = new_key(), new_key()
    token = KeyCipher(old).encrypt(PRIVATE)
    rotating = KeyCipher(new, [old])
    assert rotating.decrypt(token, kid="k1") == PRIVATE
    assert not rotating.is_current(token)
    fresh = rotating.encrypt(PRIVATE)
    assert KeyCipher(new).decrypt(fresh, kid="k1") == PRIVATE
    with pytest.raises(SigningKeysLocked):
        KeyCipher(old).decrypt(fresh, kid="k1")


def test_not_a_fernet_key_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="SIGNING_KEYS_ENCRYPTION_KEY is not a Fernet key"):
        AuthSettings(signing_keys_encryption_key="too-short")
    with pytest.raises(ValidationError, match="SIGNING_KEYS_ENCRYPTION_OLD_KEYS is not a Fernet key"):
        AuthSettings(signing_keys_encryption_key=new_key(), signing_keys_encryption_old_keys="nope")


def test_old_keys_without_a_current_key_are_refused() -> None:
    with pytest.raises(
        ValidationError, match="SIGNING_KEYS_ENCRYPTION_OLD_KEYS needs SIGNING_KEYS_ENCRYPTION_KEY"
    ):
        AuthSettings(signing_keys_encryption_old_keys=new_key())


def test_prod_requires_the_encryption_key() -> None:
    with pytest.raises(
        ValidationError, match="SIGNING_KEYS_ENCRYPTION_KEY is required when ENVIRONMENT=prod"
    ):
        AuthSettings(environment="prod", internal_token="t" * 32)
    assert AuthSettings(environment="prod", internal_token="t" * 32, signing_keys_encryption_key=new_key())


def test_bootstrap_cipher_uses_current_and_old_keys() -> None:
    old, new = new_key(), new_key()
    assert key_cipher(AuthSettings()) is None
    cipher = key_cipher(
        AuthSettings(signing_keys_encryption_key=new, signing_keys_encryption_old_keys=f"{old}, ")
    )
    assert cipher is not None
    assert cipher.decrypt(KeyCipher(old).encrypt(PRIVATE), kid="k1") == PRIVATE
    assert KeyCipher(new).decrypt(cipher.encrypt(PRIVATE), kid="k1") == PRIVATE
    assert new not in repr(AuthSettings(signing_keys_encryption_key=new))


def test_a_blank_key_is_unset() -> None:
    settings = AuthSettings(signing_keys_encryption_key=" ", signing_keys_encryption_old_keys="")
    assert settings.signing_keys_encryption_key is None
    assert key_cipher(settings) is None
