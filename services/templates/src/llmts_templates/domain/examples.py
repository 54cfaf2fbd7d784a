"""The example templates shipped with the service (``examples/*.json``, loaded once)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from llmts_templates.domain.document import TemplateDocument


@dataclass(frozen=True)
class Example:
    id: str
    document: TemplateDocument

    def public(self) -> dict[str, object]:
        d = self.document
        return {
            "id": self.id,
            "name": d.name,
            "description": d.description,
            "category": d.category,
            "tags": list(d.tags),
            "output_format": d.output.format,
            "document": d.stored(),
        }


def load_examples() -> dict[str, Example]:
    out: dict[str, Example] = {}
    folder = resources.files("llmts_templates") / "examples"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            example_id = entry.name.removesuffix(".json")
            out[example_id] = Example(
                example_id, TemplateDocument.model_validate(json.loads(entry.read_text("utf-8")))
            )
    return out
