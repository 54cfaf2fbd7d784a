"""Parts of the ``POST /templates/preview`` answer: rendered prompts, one previewed item (its sampled values, seed
row and every stage's prompts) and the judge's messages for a placeholder item."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class RenderedPrompts(BaseModel):
    system: str
    user: str


class StagePreview(BaseModel):
    name: str = Field(examples=["answer"])
    rendered: RenderedPrompts = Field(
        description="Rendered with placeholder outputs of the earlier stages (example values from their schemas)."
    )


class PreviewItem(BaseModel):
    index: int
    task_index: int
    sampled: dict[str, Any] = Field(
        description="The sampler variables drawn for this item (with `sample_seed`)."
    )
    seed_row: dict[str, Any] | None = Field(
        description="The seed dataset row's values: the row a job whose `seed` is `sample_seed` gives item `index` "
        "(the template's `seed.sampling`; ordered: row `index` mod rows, whatever the seed)."
    )
    seed_row_index: int | None = Field(
        default=None, description="That row's number in the dataset (0-based), as in an item's provenance."
    )
    rendered: RenderedPrompts
    stages: list[StagePreview] = Field(description="Every later stage's prompts, in order.")


class JudgePreview(BaseModel):
    model: dict[str, Any]
    placeholder_item: Any = Field(description="An item made of example values from the schemas.")
    messages: list[dict[str, str]] = Field(description="What the judge is sent for that item.")
    response_schema: dict[str, Any] = Field(description="The JSON Schema the judge must answer with.")
