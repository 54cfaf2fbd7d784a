"""Parts of the template document (v1): prompts, output, validation, model, and the dataset-grade fields (issue 18)
— ``seed`` (a seed dataset), ``judge`` (an LLM judge) and ``stages`` (later generation stages).

Samplers have no model of their own here: a sampler is a ``variables`` entry whose value has a ``sampler`` key
(``llmts_templating.samplers``); the templates service checks them on save.

Stages: the top-level ``prompts``/``schema``/``validation`` are the first stage, named ``main``; ``stages`` are the
following ones, in order. A stage's prompts see everything the top-level prompts see, plus the top-level output as
``{{ main.<field> }}`` and each EARLIER stage's output as ``{{ <stage name>.<field> }}`` (a reference to the stage
itself or a later one is an error). The item is the top-level output with each stage's output added under the stage's
name (``{"question": …, "answer": {…}, "critique": {…}}``); it is complete when its last stage is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmts_api.catalog import ProviderName
from llmts_api.datasets import DatasetSeed

OutputFormat = Literal["json", "text"]
ValidationMode = Literal["strict", "custom", "none"]

MAX_PROMPT_CHARS = 65_536
MAX_RULES = 500
MAX_STAGES = 8
MAX_JUDGE_SCORES = 20
MAIN_STAGE = "main"
STAGE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

__all__ = [
    "MAIN_STAGE",
    "DatasetSeed",
    "FallbackSpec",
    "JudgeModelSpec",
    "JudgeSpec",
    "ModelSpec",
    "NearDuplicatesSpec",
    "OutputSpec",
    "PromptsSpec",
    "StageSpec",
    "ValidationSpec",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputSpec(_Strict):
    format: OutputFormat = Field(
        default="json", description="json: one JSON item per request; text: free text."
    )


class PromptsSpec(_Strict):
    system: str = Field(
        default="",
        max_length=MAX_PROMPT_CHARS,
        description="Jinja2 system prompt (sandboxed, StrictUndefined).",
    )
    user: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="Jinja2 user prompt; llm-data-gen `{placeholders}` also work.",
        examples=["Write a quiz question about {{ topic }} with four options."],
    )


class NearDuplicatesSpec(_Strict):
    """Near-duplicate control of a job's items: MinHash LSH over word 3-shingles of ``fields``; an item whose
    estimated Jaccard similarity to an accepted one is ≥ ``threshold`` is rejected (``near_duplicate``) and
    regenerated."""

    fields: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="Dotted paths of the compared text fields (e.g. `question`); empty: every string of the item.",
        examples=[["question"]],
    )
    threshold: float = Field(
        default=0.8, gt=0, le=1, description="Jaccard similarity that counts as a duplicate."
    )


class ValidationSpec(_Strict):
    mode: ValidationMode = "strict"
    rules: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        examples=[
            [
                {"path": "question", "min_length": 10, "max_length": 300},
                {"path": "answer", "pattern": "^[A-D]$"},
            ]
        ],
    )
    near_duplicates: NearDuplicatesSpec | None = Field(
        default=None, description="Reject near-duplicates too (not only identical items) and regenerate them."
    )


class FallbackSpec(_Strict):
    provider: ProviderName | None = Field(default=None, examples=["openrouter"])
    id: str = Field(min_length=1, max_length=300, examples=["openai/gpt-4o-mini"])
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class ModelSpec(FallbackSpec):
    fallback: list[FallbackSpec] = Field(
        default_factory=list,
        max_length=5,
        description="The template's default fallback chain (a job's own model replaces the whole chain).",
    )


class JudgeModelSpec(_Strict):
    provider: ProviderName | None = Field(default=None, examples=["openrouter"])
    id: str = Field(min_length=1, max_length=300, examples=["openai/gpt-4o-mini"])


class JudgeSpec(_Strict):
    """An LLM judge: scores every item against ``rubric``; an item whose scores fail ``accept`` is rejected (reason
    ``judge``) and its slot regenerated. Checked on save (paths ``judge.*``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": {"id": "openai/gpt-4o-mini"},
                    "rubric": "Is the answer correct and is the question clear?",
                    "scores": {"accuracy": [1, 5], "clarity": [1, 5]},
                    "accept": "accuracy >= 4 and clarity >= 3",
                }
            ]
        }
    )

    model: JudgeModelSpec
    rubric: str = Field(min_length=1, max_length=20_000, description="What the judge scores against.")
    scores: dict[str, list[float]] = Field(
        min_length=1,
        max_length=MAX_JUDGE_SCORES,
        description="Score name (an identifier) → [min, max] with min < max.",
    )
    accept: str = Field(
        min_length=1,
        max_length=2_000,
        description="One expression over the score names (sandboxed Jinja), e.g. `accuracy >= 4 and clarity >= 3`.",
    )
    max_tokens: int | None = Field(default=None, ge=1, le=100_000, description="The judge's answer limit.")
    concurrency: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Judge calls of a job at once; default: the job's concurrency.",
    )


class StageSpec(_Strict):
    """A generation stage after the top-level prompts (which are stage ``main``): its prompts may use
    ``{{ main.<field> }}`` and ``{{ <earlier stage>.<field> }}``; its JSON output is validated by its own schema and
    rules and stored in the item under ``name``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    name: str = Field(
        pattern=STAGE_NAME_PATTERN,
        examples=["answer"],
        description="Unique; not `main`, a variable, a seed column, or a property of the top-level schema.",
    )
    prompts: PromptsSpec
    json_schema: dict[str, Any] = Field(alias="schema", description="JSON Schema of this stage's output.")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
