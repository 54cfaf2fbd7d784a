"""Issue 18 template fields through the templates app on the real Mongo-wire server: a template with samplers, a
seed dataset, a judge and stages is saved, versioned and patched; bad ones answer 422 ``validation_error`` with the
path; the preview shows each item's sampled values, seed row and every stage's prompts, and the judge's messages."""

from __future__ import annotations

from typing import Any

import httpx

from llmts_templating.seeding import row_for

ANSWER = {"type": "object", "properties": {"faq": {"type": "array", "items": {"type": "string"}}}}
DESCRIPTION = {
    "type": "object",
    "properties": {"description": {"type": "string", "examples": ["A sturdy kettle."]}},
    "required": ["description"],
}
JUDGE = {
    "model": {"id": "openai/gpt-4o-mini"},
    "rubric": "Is the description accurate and the FAQ helpful?",
    "scores": {"accuracy": [1, 5], "helpfulness": [1, 5]},
    "accept": "accuracy >= 4 and helpfulness >= 3",
}


async def _dataset(client: httpx.AsyncClient, who: dict[str, str]) -> str:
    body = b"sku,title,price\nA-1,Kettle,29.90\nA-2,Toaster,39.00\nA-3,Lamp,12.50\n"
    r = await client.post(
        "/datasets", params={"name": "products"}, content=body, headers={**who, "Content-Type": "text/csv"}
    )
    assert r.status_code == 201, r.text
    dataset_id: str = r.json()["id"]
    return dataset_id


def _template(dataset_id: str, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "Products",
        "prompts": {"user": "Describe {{ title }} ({{ price }}) in a {{ tone }} tone, #{{ ref }}."},
        "schema": DESCRIPTION,
        "variables": {
            "tone": {"sampler": "category", "values": ["formal", "friendly"], "weights": [1, 1]},
            "ref": {"sampler": "uuid"},
        },
        "seed": {"dataset_id": dataset_id, "columns": ["title", "price"]},
        "judge": JUDGE,
        "stages": [
            {
                "name": "faq",
                "prompts": {"user": "Write an FAQ for: {{ main.description }} ({{ title }})"},
                "schema": ANSWER,
            }
        ],
    }
    doc.update(over)
    return doc


def _paths(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    body = r.json()["error"]
    assert body["code"] == "validation_error"
    return [d["path"] for d in body["details"]]


async def test_a_dataset_grade_template_is_saved_versioned_and_previewed(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    dataset_id = await _dataset(client, alice)
    r = await client.post("/templates", json=_template(dataset_id), headers=alice)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["seed"] == {"dataset_id": dataset_id, "sampling": "ordered", "columns": ["title", "price"]}
    assert created["judge"]["scores"] == {"accuracy": [1.0, 5.0], "helpfulness": [1.0, 5.0]}
    assert created["stages"][0]["schema"] == ANSWER
    tid = created["id"]

    r = await client.patch(f"/templates/{tid}", json={"judge": {"accept": "accuracy >= 5"}}, headers=alice)
    assert r.status_code == 200, r.text
    r = await client.get(f"/templates/{tid}/diff", params={"from": 1}, headers=alice)
    assert r.status_code == 200, r.text
    assert any(c["path"].startswith("judge") for c in r.json()["other"])

    r = await client.post(
        "/templates/preview", json={"template_id": tid, "items": 4, "sample_seed": 7}, headers=alice
    )
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["sample_seed"] == 7
    items = p["items"]
    assert [i["index"] for i in items] == [0, 1, 2, 3]
    assert [i["seed_row"] for i in items] == [
        {"title": "Kettle", "price": "29.90"},
        {"title": "Toaster", "price": "39.00"},
        {"title": "Lamp", "price": "12.50"},
        {"title": "Kettle", "price": "29.90"},
    ]
    assert {i["sampled"]["tone"] for i in items} == {"formal", "friendly"}
    first = items[0]
    assert first["rendered"]["user"] == (
        f"Describe Kettle (29.90) in a {first['sampled']['tone']} tone, #{first['sampled']['ref']}."
    )
    assert p["rendered"] == first["rendered"]
    assert first["stages"] == [
        {"name": "faq", "rendered": {"system": "", "user": "Write an FAQ for: A sturdy kettle. (Kettle)"}}
    ]
    judge = p["judge"]
    assert judge["placeholder_item"] == {"description": "A sturdy kettle.", "faq": {"faq": ["<faq>"]}}
    assert "accuracy from 1 to 5" in judge["messages"][0]["content"]
    assert '"title": "Kettle"' in judge["messages"][1]["content"]
    again = await client.post(
        "/templates/preview", json={"template_id": tid, "items": 4, "sample_seed": 7}, headers=alice
    )
    assert again.json()["items"] == items  # the same seed draws the same values


async def test_a_shuffled_seed_previews_the_rows_a_job_with_that_seed_gets(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """With ``shuffle`` (and ``with_replacement``) sampling the preview picks each item's row with the generator's
    function and the request's ``sample_seed``: what a job with ``seed`` = ``sample_seed`` gives the same items
    (before, the preview showed the file order and a note that a job would differ)."""
    dataset_id = await _dataset(client, alice)
    titles = ["Kettle", "Toaster", "Lamp"]
    for sampling in ("shuffle", "with_replacement"):
        seed = {"dataset_id": dataset_id, "sampling": sampling, "columns": ["title", "price"]}
        r = await client.post("/templates", json=_template(dataset_id, seed=seed), headers=alice)
        assert r.status_code == 201, r.text
        tid = r.json()["id"]
        shown: dict[int, list[int]] = {}
        for sample_seed in (3, 11, 12345):
            r = await client.post(
                "/templates/preview",
                json={"template_id": tid, "index": 2, "items": 6, "sample_seed": sample_seed},
                headers=alice,
            )
            assert r.status_code == 200, r.text
            items = r.json()["items"]
            numbers = [row_for(sampling, 3, sample_seed, i) for i in range(2, 8)]
            assert [i["seed_row_index"] for i in items] == numbers
            assert [i["seed_row"]["title"] for i in items] == [titles[n] for n in numbers]
            assert all(
                i["rendered"]["user"].startswith(f"Describe {i['seed_row']['title']} (") for i in items
            )
            shown[sample_seed] = numbers
        assert len({tuple(v) for v in shown.values()}) > 1  # the rows follow the seed


async def test_errors_name_their_paths(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    dataset_id = await _dataset(client, alice)
    bad_sampler = _template(dataset_id, variables={"tone": {"sampler": "uniform", "low": 5, "high": 1}})
    assert _paths(await client.post("/templates", json=bad_sampler, headers=alice)) == ["variables.tone"]
    bad_judge = _template(dataset_id, judge={**JUDGE, "accept": "accuracy > 3 and style > 2"})
    assert "judge.accept" in _paths(await client.post("/templates", json=bad_judge, headers=alice))
    later = _template(
        dataset_id,
        stages=[
            {"name": "a", "prompts": {"user": "{{ b.x }}"}, "schema": ANSWER},
            {"name": "b", "prompts": {"user": "{{ a.faq }}"}, "schema": ANSWER},
        ],
    )
    assert "stages[0].prompts.user" in _paths(await client.post("/templates", json=later, headers=alice))
    # another user's dataset reads as absent; a public template cannot have a seed
    assert _paths(await client.post("/templates", json=_template(dataset_id), headers=bob)) == [
        "seed.dataset_id"
    ]
    r = await client.post("/templates/preview", json={"template": _template(dataset_id)}, headers=bob)
    assert _paths(r) == ["seed.dataset_id"]
    public = _template(dataset_id, visibility="public")
    assert _paths(await client.post("/templates", json=public, headers=alice)) == ["seed"]
    unknown_column = _template(dataset_id, seed={"dataset_id": dataset_id, "columns": ["title", "colour"]})
    assert _paths(await client.post("/templates", json=unknown_column, headers=alice)) == ["seed.columns[1]"]


async def test_validate_reads_the_seed_columns(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    dataset_id = await _dataset(client, alice)
    doc = _template(dataset_id, prompts={"user": "{{ title }} {{ sku }} {{ colour }}"})
    r = await client.post("/templates/validate", json=doc, headers=alice)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["valid"] is True
    flagged = [w["message"] for w in report["warnings"]]
    assert len(flagged) == 2  # sku is a dataset column but not among seed.columns; colour is nowhere
    assert any("'sku'" in m for m in flagged)
    assert any("'colour'" in m for m in flagged)


async def test_an_old_template_still_saves_and_previews(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    doc = {
        "name": "Old",
        "prompts": {"user": "Hi {{ who }}"},
        "output": {"format": "text"},
        "variables": {"who": "x"},
    }
    r = await client.post("/templates/preview", json={"template": doc}, headers=alice)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["rendered"]["user"] == "Hi x"
    assert p["items"] == [
        {
            "index": 0,
            "task_index": 0,
            "sampled": {},
            "seed_row": None,
            "seed_row_index": None,
            "rendered": p["rendered"],
            "stages": [],
        }
    ]
    assert p["judge"] is None
