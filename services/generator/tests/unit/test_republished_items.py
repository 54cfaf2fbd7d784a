"""An item event published again after a resume (the process died between storing the item and publishing its
event) says which model produced the item, as the first publication did: the exporter's provenance and the
per-model views are built from it."""

from __future__ import annotations

import json

from services.generator.tests.fakes import FakeEvents

from llmts_common.contracts import ItemGenerated
from llmts_generator.records import JobRef, stored_item_event


def _stored(model: dict[str, str | None] | None) -> dict[str, object]:
    doc: dict[str, object] = {
        "index": 3,
        "status": "accepted",
        "data_json": json.dumps({"q": "2+2?"}),
        "attempts": 2,
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "cost_usd": 0.0},
        "content_hash": "h3",
        "inputs": {"target": 3, "task": 0, "task_index": 3, "row": {}},
        "event_id": "evt-3",
    }
    if model is not None:
        doc["model"] = model
    return doc


def test_a_republished_item_event_keeps_its_model() -> None:
    envelope, _topic = stored_item_event(
        JobRef("j1", "u1", 2), FakeEvents(), _stored({"provider": "ollama", "id": "smollm2:135m"})
    )
    event = ItemGenerated.model_validate(envelope.data)
    assert envelope.id == "evt-3"
    assert event.model is not None
    assert (event.model.provider, event.model.id) == ("ollama", "smollm2:135m")
    assert event.attempts == 2
    assert event.inputs == {"target": 3, "task": 0, "task_index": 3, "row": {}}


def test_an_item_stored_without_a_model_is_republished_without_one() -> None:
    envelope, _ = stored_item_event(JobRef("j1", "u1", 2), FakeEvents(), _stored(None))
    assert ItemGenerated.model_validate(envelope.data).model is None
