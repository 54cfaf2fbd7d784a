"""``POST /generate/preview``: a job's preview, whose cost estimate is a token guess (``estimate: "tokens"``) or
measured on a small real sample of the job (``estimate: "sample"``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from llmts_api.generation import GenerationCreate

DEFAULT_SAMPLE_SIZE = 5
MAX_SAMPLE_SIZE = 50

PREVIEW_SAMPLE_REQUEST: dict[str, Any] = {
    "template_id": "tpl_reviews",
    "count": 200,
    "estimate": "sample",
    "estimate_sample_size": 5,
}
SAMPLE_ESTIMATE: dict[str, Any] = {
    "method": "sample",
    "currency": "USD",
    "count": 200,
    "sample": {
        "job_id": "0b6f…",
        "size": 5,
        "status": "completed",
        "valid": 5,
        "rejected": 0,
        "calls": 6,
        "prompt_tokens": 1410,
        "completion_tokens": 402,
        "cost_usd": 0.00045,
    },
    "per_item": {"low": 0.000081, "expected": 0.00009, "high": 0.000099},
    "total": {"low": 0.0162, "expected": 0.018, "high": 0.0198},
    "calls_per_item": 1.2,
    "tokens_estimate": {"method": "chars/4", "total": {"low": 0.0041, "high": 0.0522}},
}


class GenerationPreviewCreate(GenerationCreate):
    """A would-be job to preview; ``estimate: "sample"`` runs its first ``estimate_sample_size`` items as a real
    job (charged and counted in the caller's usage like any job) and extrapolates its measured cost per valid item,
    repairs and retries included, to ``count``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [PREVIEW_SAMPLE_REQUEST]})
    estimate: Literal["tokens", "sample"] = Field(
        default="tokens",
        description="tokens: the cost range from a token guess (no call); sample: a real sample of the job "
        "measured and extrapolated (the answer's estimate.method says which, estimate.sample its size and job).",
    )
    estimate_sample_size: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SAMPLE_SIZE,
        description=f"Items of the sample (estimate: sample); default min({DEFAULT_SAMPLE_SIZE}, count).",
    )

    @model_validator(mode="after")
    def _sample_options(self) -> GenerationPreviewCreate:
        if self.estimate_sample_size is not None and self.estimate != "sample":
            raise ValueError('estimate_sample_size needs estimate: "sample"')
        if self.estimate == "sample" and self.mode == "batch":
            raise ValueError('estimate: "sample" runs the items as a sync job; not with mode: "batch"')
        return self
