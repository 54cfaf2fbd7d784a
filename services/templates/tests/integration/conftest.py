"""Integration tier: the real templates app (FastAPI lifespan, real Mongo-wire server and Kafka on 127.0.0.1).

Tokens are signed with a throwaway Ed25519 key whose public half is injected into the app's ``JwksVerifier``.
Each session uses its own database (``llmts_templates_it_<uuid>``); nothing shared is wiped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey

from llmts_common.auth import JwksVerifier
from llmts_templates.bootstrap import bootstrap
from llmts_templates.domain.ports import ModelPrice, PriceLookup
from llmts_templates.settings import TemplatesSettings

ISSUER = "llmts-auth"
AUDIENCE = "llmts"


class FixedPrices:
    """Stands in for the catalog: one known price, every other model unknown."""

    async def price(self, model_id: str, *, authorization: str | None) -> PriceLookup:
        if model_id == "openai/gpt-4o-mini":
            return PriceLookup(ModelPrice(model_id, Decimal("0.15"), Decimal("0.60")))
        return PriceLookup(None, [f"model {model_id!r} is not in the catalog; no cost estimate"])


@pytest.fixture(scope="session")
def signing_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519", parameters={"kid": f"test-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="session")
def verifier(signing_key: OKPKey) -> JwksVerifier:
    public = OKPKey.import_key(signing_key.as_dict(private=False))
    return JwksVerifier("http://127.0.0.1:9/jwks", issuer=ISSUER, audience=AUDIENCE, keyset=KeySet([public]))


@pytest.fixture(scope="session")
def token_for(signing_key: OKPKey) -> Callable[[str], dict[str, str]]:
    def make(user_id: str) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "iat": now,
            "exp": now + 3600,
            "typ": "access",
        }
        token = jwt.encode(
            {"alg": "Ed25519", "kid": signing_key.kid}, claims, signing_key, algorithms=["Ed25519"]
        )
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture(scope="session")
def settings() -> TemplatesSettings:
    return TemplatesSettings(
        mongo_db=f"llmts_templates_it_{uuid.uuid4().hex[:10]}",
        kafka_client_id=f"templates-it-{uuid.uuid4().hex[:6]}",
        log_json=False,
        outbox_relay_interval_seconds=0.5,
    )


@pytest.fixture(scope="session")
async def client(settings: TemplatesSettings, verifier: JwksVerifier) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = bootstrap(settings, verifier=verifier, prices=FixedPrices())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://templates", timeout=30) as c:
            yield c


@pytest.fixture
def alice(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return token_for(f"alice-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def bob(token_for: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return token_for(f"bob-{uuid.uuid4().hex[:8]}")
