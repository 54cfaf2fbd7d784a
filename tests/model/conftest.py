"""Connected-model tier: the whole stack (six services as processes, real Kafka and MongoDB-wire server) with the
generator and catalog pointed at the real local Ollama serving SmolLM2-135M (scripts/local_model.sh): through its
native API (provider ``ollama``) and through its OpenAI-compatible ``/v1`` (provider ``openai-compatible``, with a
made-up price so the computed cost shows)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.e2e.stack import Stack, new_stack

BASE_URL = os.environ.get("LOCAL_MODEL_URL", "http://127.0.0.1:11434")
MODEL = os.environ.get("LOCAL_MODEL_NAME", "smollm2:135m")
# USD per 1M tokens of the model on the openai-compatible provider (OPENAI_COMPATIBLE_PRICES)
PRICE = {"prompt": 0.5, "completion": 1.5}


@pytest.fixture(scope="session")
def model_stack() -> Iterator[Stack]:
    try:
        httpx.get(f"{BASE_URL}/api/version", timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.fail(f"the local model server is not running at {BASE_URL} (scripts/local_model.sh up): {exc}")
    s = new_stack(
        ollama_base_url=BASE_URL,
        openai_compatible_base_url=f"{BASE_URL}/v1",
        extra_env={"OPENAI_COMPATIBLE_PRICES": json.dumps({MODEL: PRICE})},
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


@pytest.fixture
async def gateway(model_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=model_stack.gateway, timeout=30.0) as client:
        yield client
