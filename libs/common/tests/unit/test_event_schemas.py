"""The published event schemas: docs/schemas/ is current, every dataschema URL names a file there, every file is
a valid JSON Schema, no published file changed in a breaking way (vs every committed version), and the breaking
change rules themselves."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from llmts_common.contracts import ALL_MESSAGES, ExportReady, GenerationStarted, ModelRef
from llmts_common.contracts.compat import breaking_changes
from llmts_common.contracts.schemas import data_schema, envelope_schema
from llmts_common.envelope import schema_path

ROOT = Path(__file__).resolve().parents[4]


def _script() -> Any:  # the script module (its globals are patched by one test)
    spec = importlib.util.spec_from_file_location("event_schemas", ROOT / "scripts" / "event_schemas.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_schemas_are_current() -> None:
    assert _script().main(["--check"]) == 0, "run `make schemas`"


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git history"
)
def test_no_published_schema_changed_in_a_breaking_way() -> None:
    script = _script()
    problems = script.compat_problems(script.current_files(), script.published_versions())
    assert problems == []


def test_every_message_has_a_file_its_dataschema_names_and_it_validates_real_data() -> None:
    for message in ALL_MESSAGES:
        path = ROOT / "docs" / "schemas" / schema_path(message.TYPE, message.VERSION)
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["x-llmts-version"] == message.VERSION
    envelope = json.loads((ROOT / "docs" / "schemas" / "envelope.json").read_text())
    Draft202012Validator.check_schema(envelope)
    for name in ("id", "specversion", "type", "source", "time"):
        assert name in envelope["required"]


def test_a_real_message_and_its_envelope_validate_against_the_published_files() -> None:
    message = GenerationStarted(
        job_id="j", user_id="u", requested=2, model=ModelRef(provider="ollama", id="m"), template_id="t",
        template_version=1, started_at=datetime.now(UTC), template_name="T", output_format="json",
        item_schema={"type": "object"},
    )  # fmt: skip
    envelope = message.to_envelope(source="generator")
    wire = json.loads(envelope.model_dump_json())
    Draft202012Validator(envelope_schema()).validate(wire)
    Draft202012Validator(data_schema(GenerationStarted)).validate(wire["data"])


# ----------------------------------------------------------------------------------- the breaking-change rules

BASE: dict[str, Any] = data_schema(ExportReady)


def _changed(edit: Any) -> list[str]:
    new = copy.deepcopy(BASE)
    edit(new)
    return breaking_changes(BASE, new)


def test_identical_and_cosmetic_changes_are_compatible() -> None:
    assert breaking_changes(BASE, copy.deepcopy(BASE)) == []

    def cosmetic(s: dict[str, Any]) -> None:
        s["properties"]["format"]["description"] = "changed words"
        s["properties"]["download_url"]["examples"] = ["https://other"]

    assert _changed(cosmetic) == []


def test_a_new_optional_property_is_compatible_a_new_required_one_is_not() -> None:
    def optional(s: dict[str, Any]) -> None:
        s["properties"]["note"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}

    def required(s: dict[str, Any]) -> None:
        optional(s)
        s["required"].append("note")

    assert _changed(optional) == []
    assert _changed(required) == ["$.note: new required property"]


def test_removing_retyping_or_unrequiring_a_property_is_breaking() -> None:
    assert _changed(lambda s: s["properties"].pop("sha256")) == ["$.sha256: removed"]
    assert _changed(lambda s: s["properties"]["bytes"].update(type="string")) == [
        "$.bytes: type changed from ['integer'] to ['string']"
    ]
    assert _changed(lambda s: s["required"].remove("sha256")) == ["$.sha256: no longer required"]

    def nullable(s: dict[str, Any]) -> None:
        s["properties"]["items"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}

    assert _changed(nullable) == ["$.items: type changed from ['integer'] to ['integer', 'null']"]


def test_enum_narrowing_is_breaking_widening_is_not() -> None:
    reason = data_schema(next(m for m in ALL_MESSAGES if m.__name__ == "ItemRejected"))
    values = reason["properties"]["reason"]["enum"]
    narrowed = copy.deepcopy(reason)
    narrowed["properties"]["reason"]["enum"] = values[1:]
    widened = copy.deepcopy(reason)
    widened["properties"]["reason"]["enum"] = [*values, "timeout"]
    assert breaking_changes(reason, widened) == []
    assert breaking_changes(reason, narrowed) == [
        f"$.reason: enumeration narrowed (no longer allowed: {values[0]!r})"
    ]
    free = copy.deepcopy(BASE)
    free["properties"]["format"]["enum"] = ["csv"]
    assert breaking_changes(BASE, free) == ["$.format: enumeration narrowed (no longer allowed: any value)"]


def test_changes_inside_referenced_definitions_and_arrays_are_found() -> None:
    started = data_schema(GenerationStarted)
    edited = copy.deepcopy(started)
    model_def = next(iter(d for n, d in edited["$defs"].items() if n == "ModelRef"))
    model_def["properties"].pop("id")
    assert "$.model.id: removed" in breaking_changes(started, edited)
    completed = data_schema(next(m for m in ALL_MESSAGES if m.__name__ == "ModelCatalogUpdated"))
    retyped = copy.deepcopy(completed)
    retyped["properties"]["added"]["items"] = {"type": "integer"}
    assert breaking_changes(completed, retyped) == ["$.added[]: type changed from ['string'] to ['integer']"]


def test_the_compat_check_reads_the_git_history(tmp_path: Path) -> None:
    """A schema file committed, then changed in a breaking way in the work tree: the script's check fails."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    script = _script()
    repo = tmp_path / "repo"
    (repo / "docs" / "schemas" / "x").mkdir(parents=True)

    def run(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    run("init", "-q")
    (repo / "docs" / "schemas" / "x" / "v1.json").write_text(json.dumps(BASE))
    run("add", ".")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "publish")
    script.ROOT, script.TARGET = repo, repo / "docs" / "schemas"
    broken = copy.deepcopy(BASE)
    broken["properties"].pop("sha256")
    problems = script.compat_problems({"x/v1.json": json.dumps(broken)}, script.published_versions())
    assert len(problems) == 1
    assert problems[0].startswith("x/v1.json (vs ")
    assert problems[0].endswith("$.sha256: removed")
    assert script.compat_problems({}, script.published_versions()) == []  # still on disk: not deleted
    (repo / "docs" / "schemas" / "x" / "v1.json").write_text(
        json.dumps(broken)
    )  # an old version edited by hand
    assert script.compat_problems({}, script.published_versions())[0].endswith("$.sha256: removed")
    (repo / "docs" / "schemas" / "x" / "v1.json").unlink()
    assert script.compat_problems({}, script.published_versions()) == [
        "x/v1.json: a published schema was deleted"
    ]
