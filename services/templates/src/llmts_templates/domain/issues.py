"""One problem of a template document, at its path (``prompts.user``, ``stages[1].schema.type`` …)."""

from __future__ import annotations

from pydantic import BaseModel


class Issue(BaseModel):
    path: str
    message: str
    line: int | None = None
    column: int | None = None
    kind: str | None = None
