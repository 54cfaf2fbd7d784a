"""Signing keys encrypted at rest in the real Mongo-wire server: plain-text keys are encrypted at start, keys under
an old encryption key are re-encrypted, and the service refuses to start when it cannot decrypt them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from services.auth.tests.contract import SigningKeysContract
from services.auth.tests.support import drop_database, make_settings
from tests.support.names import unique_db

from llmts_auth.adapters.jose import generate_ed25519_key
from llmts_auth.adapters.key_encryption import KeyCipher, SigningKeysLocked
from llmts_auth.adapters.mongo import SIGNING_KEYS, MongoSigningKeys
from llmts_auth.bootstrap import bootstrap, utc_now
from llmts_common.mongo import create_client


def fernet_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
async def db() -> AsyncIterator[Any]:
    settings = make_settings()
    client: Any = create_client(settings.mongo_url.get_secret_value(), server_selection_timeout_ms=10_000)
    name = unique_db("auth_keys")
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def raw_docs(db: Any) -> list[dict[str, Any]]:
    return [doc async for doc in db[SIGNING_KEYS].find({})]


class TestEncryptedMongoSigningKeys(SigningKeysContract):
    @pytest.fixture
    def keys(self, db: Any) -> MongoSigningKeys:
        return MongoSigningKeys(db, KeyCipher(fernet_key()))


async def test_plaintext_keys_are_encrypted_at_start_and_still_sign(db: Any) -> None:
    key = generate_ed25519_key(utc_now())
    await MongoSigningKeys(db).add(key)  # stored by a version without encryption
    assert (await raw_docs(db))[0]["private_jwk"]["d"] == key.private_jwk["d"]

    secured = MongoSigningKeys(db, KeyCipher(fernet_key()))
    assert await secured.secure_at_rest() == {"encrypted": 1, "reencrypted": 0, "plaintext": 0}
    (doc,) = await raw_docs(db)
    assert "private_jwk" not in doc
    assert key.private_jwk["d"] not in str(doc)
    assert await secured.all() == [key]
    assert await secured.secure_at_rest() == {"encrypted": 0, "reencrypted": 0, "plaintext": 0}  # idempotent


async def test_encrypted_keys_without_the_key_or_with_a_wrong_one_are_refused(db: Any) -> None:
    await MongoSigningKeys(db, KeyCipher(fernet_key())).add(generate_ed25519_key(utc_now()))
    with pytest.raises(SigningKeysLocked, match="SIGNING_KEYS_ENCRYPTION_KEY is not set"):
        await MongoSigningKeys(db).secure_at_rest()
    with pytest.raises(SigningKeysLocked, match="cannot be decrypted"):
        await MongoSigningKeys(db, KeyCipher(fernet_key())).secure_at_rest()


async def test_rotation_of_the_encryption_key_reencrypts_every_key(db: Any) -> None:
    old, new = fernet_key(), fernet_key()
    for _ in range(2):
        await MongoSigningKeys(db, KeyCipher(old)).add(generate_ed25519_key(utc_now()))
    before = await MongoSigningKeys(db, KeyCipher(old)).all()

    rotating = MongoSigningKeys(db, KeyCipher(new, [old]))
    assert await rotating.secure_at_rest() == {"encrypted": 0, "reencrypted": 2, "plaintext": 0}
    assert sorted(await MongoSigningKeys(db, KeyCipher(new)).all(), key=lambda k: k.kid) == sorted(
        before, key=lambda k: k.kid
    )
    with pytest.raises(SigningKeysLocked):
        await MongoSigningKeys(db, KeyCipher(old)).all()


async def test_the_service_encrypts_its_keys_and_refuses_to_start_with_a_wrong_key() -> None:
    first = make_settings(signing_keys_encryption_key=fernet_key())
    app, _ = bootstrap(first)
    try:
        async with app.router.lifespan_context(app):
            jwks = await app.state.signer.jwks()
            db = app.state.runtime.db
            (doc,) = await raw_docs(db)
            assert "private_jwk_enc" in doc
            assert "private_jwk" not in doc
            assert [k["kid"] for k in jwks["keys"]] == [doc["_id"]]

        for settings, reason in (
            (make_settings(mongo_db=first.mongo_db), "SIGNING_KEYS_ENCRYPTION_KEY is not set"),
            (
                make_settings(mongo_db=first.mongo_db, signing_keys_encryption_key=fernet_key()),
                "cannot be decrypted",
            ),
        ):
            other, _ = bootstrap(settings)
            with pytest.raises(SigningKeysLocked, match=reason):
                async with other.router.lifespan_context(other):
                    pytest.fail("started although the signing keys cannot be read")
    finally:
        await drop_database(first)
