"""The OpenAI Batch API through the OpenAI-compatible provider (OpenAI, Together, Groq, Mistral, Fireworks,
DeepInfra…): upload a JSONL file of chat requests, create a batch, follow it, read its output and error files.

A building block: the caller decides the custom ids (``job/slot/attempt``), persists the batch id, polls with its own
backoff and resumes after a restart from the persisted id alone (nothing here keeps state between calls); a caller
that may have died between creating a batch and persisting its id tags it (``metadata``) and finds it again
(:meth:`OpenAIBatches.find`). Lines are
priced at the provider's ``batch_price_factor`` of the sync price.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmts_providers._openai_wire import sdk_errors
from llmts_providers.errors import ProviderError, ProviderUnavailable, error_from_status
from llmts_providers.models import ChatRequest, ChatResult
from llmts_providers.openai_compatible import PROVIDER, OpenAICompatibleProvider

__all__ = ["BatchLineResult", "BatchState", "OpenAIBatches"]

ENDPOINT: Literal["/v1/chat/completions"] = "/v1/chat/completions"
# validating → in_progress → finalizing → completed, or failed (validation), expired (window), cancelling → cancelled
TERMINAL: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


class BatchState(BaseModel):
    """A batch as the provider describes it (``GET /v1/batches/{id}``)."""

    id: str
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[str] = Field(default_factory=list, description="Validation errors of a failed batch.")
    created_at: int | None = None
    expires_at: int | None = None
    metadata: dict[str, str] = Field(
        default_factory=dict, description="What the client attached at creation."
    )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class BatchLineResult:
    """One line of a finished batch: its answer, or the error the provider gave it (``batch_expired`` lines are
    retryable: they were never run)."""

    custom_id: str
    result: ChatResult | None = None
    error: ProviderError | None = None


def _state(raw: Any) -> BatchState:
    data: Mapping[str, Any] = raw.model_dump() if hasattr(raw, "model_dump") else raw
    counts = data.get("request_counts") or {}
    errors = (data.get("errors") or {}).get("data") or []
    return BatchState(
        id=str(data["id"]),
        status=str(data.get("status")),
        total=int(counts.get("total") or 0),
        completed=int(counts.get("completed") or 0),
        failed=int(counts.get("failed") or 0),
        output_file_id=data.get("output_file_id"),
        error_file_id=data.get("error_file_id"),
        errors=[
            f"line {e.get('line')}: {e.get('code')}: {e.get('message')}"
            for e in errors
            if isinstance(e, dict)
        ],
        created_at=data.get("created_at"),
        expires_at=data.get("expires_at"),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


class OpenAIBatches:
    """Batch API calls of one :class:`OpenAICompatibleProvider` (its base URL, key and SDK client)."""

    def __init__(self, provider: OpenAICompatibleProvider) -> None:
        self._provider = provider

    def line(self, custom_id: str, request: ChatRequest) -> dict[str, Any]:
        """One JSONL line: the exact body ``chat`` would send, never streamed."""
        body = self._provider.build_request_body(request.model_copy(update={"stream": False}))
        body.pop("stream_options", None)
        return {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}

    async def submit(
        self, lines: Sequence[Mapping[str, Any]], metadata: Mapping[str, str] | None = None
    ) -> BatchState:
        """Upload ``lines`` and create a batch over them (24 h window)."""
        if not lines:
            raise ValueError("a batch needs at least one line")
        data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
        sdk = self._provider.sdk_client()
        with sdk_errors(PROVIDER, []):
            uploaded = await sdk.files.create(
                file=("batch.jsonl", data, "application/jsonl"), purpose="batch"
            )
            batch = await sdk.batches.create(
                input_file_id=uploaded.id,
                endpoint=ENDPOINT,
                completion_window="24h",
                metadata=dict(metadata) if metadata else None,
            )
        return _state(batch)

    async def get(self, batch_id: str) -> BatchState:
        with sdk_errors(PROVIDER, []):
            return _state(await self._provider.sdk_client().batches.retrieve(batch_id))

    async def find(self, key: str, value: str, *, scan: int = 200) -> BatchState | None:
        """The newest batch whose metadata ``key`` is ``value`` among the provider's latest ``scan`` batches
        (``GET /v1/batches``, newest first): how a client that died between creating a batch and recording its id
        finds it again instead of submitting its lines twice."""
        seen = 0
        with sdk_errors(PROVIDER, []):
            async for raw in self._provider.sdk_client().batches.list(limit=min(100, scan)):
                state = _state(raw)
                if state.metadata.get(key) == value:
                    return state
                seen += 1
                if seen >= scan:
                    break
        return None

    async def cancel(self, batch_id: str) -> BatchState:
        with sdk_errors(PROVIDER, []):
            return _state(await self._provider.sdk_client().batches.cancel(batch_id))

    async def results(self, state: BatchState) -> list[BatchLineResult]:
        """Every line of a batch's output and error files (a terminal batch; the lines of a cancelled batch that
        never ran are in neither file)."""
        out: list[BatchLineResult] = []
        for file_id in (state.output_file_id, state.error_file_id):
            if file_id:
                out.extend(
                    self._parse(line) for line in (await self._content(file_id)).splitlines() if line.strip()
                )
        return out

    async def _content(self, file_id: str) -> str:
        with sdk_errors(PROVIDER, []):
            content = await self._provider.sdk_client().files.content(file_id)
        return content.text

    def _parse(self, raw: str) -> BatchLineResult:
        try:
            line = json.loads(raw)
            custom_id = str(line["custom_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable(f"unreadable batch result line: {raw[:200]!r}", PROVIDER) from exc
        response = line.get("response")
        error = line.get("error")
        if isinstance(response, dict) and response.get("status_code") == 200:
            try:
                result = self._provider.parse_completion(
                    response.get("body"),
                    str((response.get("body") or {}).get("model") or ""),
                    time.perf_counter(),
                    price_factor=self._provider.batch_price_factor,
                )
            except ProviderError as exc:
                return BatchLineResult(custom_id, error=exc)
            return BatchLineResult(custom_id, result=result.model_copy(update={"latency_ms": 0.0}))
        if isinstance(response, dict) and isinstance(response.get("status_code"), int):
            return BatchLineResult(
                custom_id, error=error_from_status(PROVIDER, response["status_code"], response.get("body"))
            )
        code = str((error or {}).get("code") or "batch_error")
        message = str((error or {}).get("message") or "the batch line failed")
        return BatchLineResult(
            custom_id,
            error=ProviderUnavailable(
                f"{code}: {message}", PROVIDER, retryable=code == "batch_expired", raw=error
            ),
        )
