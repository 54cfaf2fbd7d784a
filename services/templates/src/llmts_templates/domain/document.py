"""The template document, version 1: what ``POST /templates`` accepts and ``GET /templates/{id}`` returns.

Its fields and validation are the public contract's (:class:`llmts_api.templates.TemplateCreate`: unknown top-level
keys refused, ``schema`` required for json output); the domain adds what the service does with a document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmts_api.templates import ModelSpec, TemplateCreate

__all__ = ["BUILTIN_VARIABLES", "ModelSpec", "TemplateDocument", "TemplateRecord", "TemplateVersion"]

# Names the renderer always defines (llmts_templating.build_context); never "undeclared".
BUILTIN_VARIABLES: frozenset[str] = frozenset(
    {"index", "task_index", "date", "datetime", "timestamp", "job_id"}
)


class TemplateDocument(TemplateCreate):
    """A template document (v1). ``schema`` is the JSON Schema of ONE output item."""

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

    @property
    def was_public(self) -> bool:
        """The template was public while this version was current. Visibility is part of the document and
        changes only by writing a new version, so a version's own document says it."""
        return self.document.visibility == "public"

    def readable_by(self, user_id: str, owner_id: str) -> bool:
        """The owner reads every version; anyone else only the versions that were public when current, so
        making a template public never exposes its private history (issue 14 finding 10)."""
        return user_id == owner_id or self.was_public

    def public(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "note": self.note,
            "document": self.document.stored(),
        }
