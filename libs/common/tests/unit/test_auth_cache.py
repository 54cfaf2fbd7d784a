"""The verifier's cache never widens what a token may do: tampered or expired tokens still fail."""

from __future__ import annotations

import asyncio
import time

import pytest
from joserfc.jwk import KeySet, OKPKey
from tests.support.tokens import access_claims, sign

from llmts_common.auth import JwksVerifier
from llmts_common.errors import Unauthorized


def _token(key: OKPKey, **claims: object) -> str:
    return sign(key, access_claims("u1", ttl=600, issuer="iss", audience="aud", **claims))


async def test_cache_answers_repeated_tokens_and_refuses_the_rest() -> None:
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "k1"})
    verifier = JwksVerifier("http://127.0.0.1:9/unused", issuer="iss", audience="aud", keyset=KeySet([key]))
    token = _token(key)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # from the cache
    head, payload, sig = token.split(".")
    with pytest.raises(Unauthorized):
        await verifier.verify(f"{head}.{payload}x.{sig}")
    with pytest.raises(Unauthorized):
        await verifier.verify(_token(key, exp=int(time.time()) - 60))


async def test_cached_entry_ends_at_token_expiry() -> None:
    key = OKPKey.generate_key("Ed25519", parameters={"kid": "k1"})
    verifier = JwksVerifier(
        "http://127.0.0.1:9/unused",
        issuer="iss",
        audience="aud",
        keyset=KeySet([key]),
        cache_seconds=3600,
        leeway_seconds=0,
    )
    token = _token(key, exp=int(time.time()) + 1)
    await verifier.verify(token)
    await asyncio.sleep(2.1)
    with pytest.raises(Unauthorized):
        await verifier.verify(token)
