"""The template document, version 1: what ``POST /templates`` accepts and ``GET /templates/{id}`` returns.

Pure pydantic. Unknown top-level keys are refused (a typo such as ``promts`` must not be stored silently);
``schema`` is required when the output format is ``json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Visibility = Literal["private", "public"]
OutputFormat = Literal["json", "text"]
ValidationMode = Literal["strict", "custom", "none"]

MAX_PROMPT_CHARS = 65_536
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 5_000
MAX_TAGS = 32
MAX_TASKS = 1_000
MAX_RULES = 500

# Names the renderer always defines (llmts_templating.build_context); never "undeclared".
BUILTIN_VARIABLES: frozenset[str] = frozenset(
    {"index", "task_index", "date", "datetime", "timestamp", "job_id"}
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputSpec(_Strict):
    format: OutputFormat = Field(
        default="json", description="json: one JSON item per request; text: free text."
    )


class PromptsSpec(_Strict):
    system: str = Field(default="", max_length=MAX_PROMPT_CHARS, description="Jinja2 system prompt.")
    user: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="Jinja2 user prompt.")


class ValidationSpec(_Strict):
    mode: ValidationMode = "strict"
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RULES)


class ModelSpec(_Strict):
    provider: Literal["openrouter", "ollama"] | None = Field(default=None, examples=["openrouter"])
    id: str = Field(min_length=1, max_length=300, examples=["openai/gpt-4o-mini"])
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class TemplateDocument(BaseModel):
    """A template document (v1). ``schema`` is the JSON Schema of ONE output item."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    name: str = Field(min_length=1, max_length=MAX_NAME_CHARS, examples=["Quiz questions"])
    description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)
    category: str | None = Field(default=None, max_length=100, examples=["education"])
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    visibility: Visibility = "private"
    output: OutputSpec = Field(default_factory=OutputSpec)
    prompts: PromptsSpec
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="JSON Schema (2020-12; draft-07 accepted) of one item."
    )
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    variables: dict[str, Any] = Field(default_factory=dict, description="Defaults for custom variables.")
    tasks: list[dict[str, Any]] = Field(
        default_factory=list, max_length=MAX_TASKS, description="Optional rows of variables (llm-data-gen)."
    )
    model: ModelSpec | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Free-form provenance (e.g. what an import came from); never used for rendering.",
    )

    @model_validator(mode="after")
    def _schema_for_json(self) -> TemplateDocument:
        if self.output.format == "json" and not self.json_schema:
            raise ValueError("schema is required when output.format is 'json'")
        for tag in self.tags:
            if not tag or len(tag) > 50:
                raise ValueError("tags must be 1-50 characters")
        return self

    def declared_names(self) -> set[str]:
        """Names a prompt may use: built-ins, the template's variables and every task field."""
        names = set(BUILTIN_VARIABLES) | set(self.variables)
        for task in self.tasks:
            names.update(task)
        return names

    def stored(self) -> dict[str, Any]:
        """The document as stored and returned (``schema`` under its public name)."""
        return self.model_dump(mode="json", by_alias=True)


class TemplateRecord(BaseModel):
    """A stored template: the document plus identity and bookkeeping (what the API returns)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    owner_id: str
    version: int = Field(ge=1)
    created_at: datetime
    updated_at: datetime
    document: TemplateDocument

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner_id": self.owner_id,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            **self.document.stored(),
        }

    def readable_by(self, user_id: str) -> bool:
        return self.owner_id == user_id or self.document.visibility == "public"


class TemplateVersion(BaseModel):
    template_id: str
    version: int = Field(ge=1)
    created_at: datetime
    created_by: str
    document: TemplateDocument
    note: str | None = Field(default=None, description="e.g. 'rollback to 2'.")

    def public(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "note": self.note,
            "document": self.document.stored(),
        }
