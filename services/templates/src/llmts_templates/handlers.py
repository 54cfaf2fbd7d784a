"""Use cases of the templates service: plain async functions, the input first, dependencies by keyword.

No handler knows HTTP or Kafka. Events go into the template document's ``_outbox`` in the same write that
changes it (``Deps.event``); ``Deps.notify`` wakes the relay that publishes them.

Writes without multi-document transactions: the ``templates`` document holds the current version; the
``template_versions`` record of a version is written idempotently right after, and every update first
re-writes the record of the version it replaces — so a crash between the two writes heals on the next write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError

from llmts_common.contracts import Message
from llmts_common.contracts.events import TemplateCreated, TemplateDeleted, TemplateUpdated
from llmts_common.errors import Conflict, Forbidden, InvalidField, NotFound, Unprocessable
from llmts_templates.checks import (
    Inspector,
    inspect_prompts,
    issue_detail,
    shape_errors,
    validate_document,
)
from llmts_templates.domain.diff import TemplateDiff, diff_documents
from llmts_templates.domain.document import TemplateDocument, TemplateRecord, TemplateVersion
from llmts_templates.domain.examples import Example
from llmts_templates.domain.llm_data_gen import ImportResult, LlmDataGenError, map_config
from llmts_templates.domain.merge_patch import merge_patch
from llmts_templates.domain.ports import DatasetCatalog, ListFilter, TemplateRepository
from llmts_templates.pipeline_checks import seed_columns


def _utcnow() -> datetime:
    """Now, truncated to milliseconds: what MongoDB stores, so a write and a later read agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Deps:
    repo: TemplateRepository
    event: Callable[[Message], dict[str, Any]]
    notify: Callable[[], None] = lambda: None
    clock: Callable[[], datetime] = _utcnow
    new_id: Callable[[], str] = _new_id
    examples: dict[str, Example] | None = None
    inspector: Inspector | None = None
    """Compiles prompts off the event loop under the hard deadline (the service's ``RenderPool``); without one
    (unit tests) they are compiled in-process."""
    datasets: DatasetCatalog | None = None
    """The seed datasets (a template's ``seed`` must name one of its owner's); without them only the seed's
    shape is checked."""


def _event_args(record: TemplateRecord) -> dict[str, Any]:
    return {
        "template_id": record.id,
        "owner_id": record.owner_id,
        "version": record.version,
        "name": record.document.name,
        "visibility": record.document.visibility,
    }


def _version_of(record: TemplateRecord, *, by: str, note: str | None = None) -> TemplateVersion:
    return TemplateVersion(
        template_id=record.id,
        version=record.version,
        created_at=record.updated_at,
        created_by=by,
        document=record.document,
        note=note,
    )


# ---------------------------------------------------------------------------------------------- reads
async def get_readable(template_id: str, *, user_id: str, deps: Deps) -> TemplateRecord:
    """The template if the user may read it; another user's private template is 404, as if absent."""
    record = await deps.repo.get(template_id)
    if record is None or not record.readable_by(user_id):
        raise NotFound("template not found", code="template_not_found")
    return record


async def get_owned(template_id: str, *, user_id: str, deps: Deps) -> TemplateRecord:
    record = await get_readable(template_id, user_id=user_id, deps=deps)
    if record.owner_id != user_id:
        raise Forbidden("only the owner can change this template", code="not_owner")
    return record


async def list_templates(flt: ListFilter, *, deps: Deps) -> tuple[list[TemplateRecord], int]:
    return await deps.repo.search(flt)


def merge_case_variants(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Values differing only in case counted together under their most used spelling; most used first."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for value, n in counts.items():
        groups.setdefault(value.casefold(), []).append((value, n))
    merged = []
    for spellings in groups.values():
        name = min(spellings, key=lambda item: (-item[1], item[0]))[0]
        merged.append((name, sum(n for _, n in spellings)))
    return sorted(merged, key=lambda item: (-item[1], item[0].casefold(), item[0]))


async def template_facets(
    flt: ListFilter, field: Literal["category", "tags"], *, deps: Deps
) -> list[tuple[str, int]]:
    """Categories or tags of the templates ``flt`` selects (own and public ones), with counts."""
    return merge_case_variants(await deps.repo.facet(flt, field))


async def get_version(template_id: str, n: int, *, user_id: str, deps: Deps) -> TemplateVersion:
    record = await get_readable(template_id, user_id=user_id, deps=deps)
    if n == record.version:
        await deps.repo.put_version(_version_of(record, by=record.owner_id))  # heal a lost version write
    version = await deps.repo.get_version(template_id, n)
    if version is None or not version.readable_by(user_id, record.owner_id):
        raise NotFound(f"version {n} not found", code="version_not_found")  # a private past looks absent
    return version


async def list_versions(
    template_id: str, *, user_id: str, limit: int, offset: int, deps: Deps
) -> tuple[list[TemplateVersion], int, int]:
    record = await get_readable(template_id, user_id=user_id, deps=deps)
    if await deps.repo.get_version(template_id, record.version) is None:
        await deps.repo.put_version(_version_of(record, by=record.owner_id))
    versions, total = await deps.repo.list_versions(
        template_id, limit=limit, offset=offset, public_only=record.owner_id != user_id
    )
    return versions, total, record.version


async def diff_versions(
    template_id: str, *, from_version: int, to_version: int | None, user_id: str, deps: Deps
) -> TemplateDiff:
    record = await get_readable(template_id, user_id=user_id, deps=deps)
    to_n = to_version if to_version is not None else record.version
    a = await get_version(template_id, from_version, user_id=user_id, deps=deps)
    b = await get_version(template_id, to_n, user_id=user_id, deps=deps)
    return diff_documents(a.document, b.document, from_version=from_version, to_version=to_n)


# --------------------------------------------------------------------------------------------- writes
async def ensure_runnable(document: TemplateDocument, *, owner_id: str, deps: Deps) -> None:
    """Refuse what would make every job of the template fail at once: prompts that do not compile (syntax,
    refused constructs, size: 422 with each issue's path, line and column), an invalid JSON Schema or malformed
    validation rules (bad or catastrophic regexes, min > max …), bad samplers, a seed dataset that is not the
    owner's, a judge that cannot decide, stages that name later stages. Undefined variables stay warnings
    (validate): a request may still supply them."""
    names, seed_problems = await seed_columns(document, owner_id=owner_id, datasets=deps.datasets)
    inspections = await inspect_prompts(document, deps.inspector) if deps.inspector is not None else None
    report = validate_document(document, inspections, seed_names=names)
    blocking = [e for e in [*seed_problems, *report.errors] if e.kind != "document"]
    if blocking:
        raise Unprocessable(
            f"{blocking[0].path}: {blocking[0].message}",
            details=[issue_detail(e) for e in blocking],
        )


async def create_template(
    document: TemplateDocument, *, user_id: str, deps: Deps, note: str | None = None
) -> TemplateRecord:
    await ensure_runnable(document, owner_id=user_id, deps=deps)
    now = deps.clock()
    record = TemplateRecord(
        id=deps.new_id(), owner_id=user_id, version=1, created_at=now, updated_at=now, document=document
    )
    await deps.repo.insert(record, outbox=[deps.event(TemplateCreated(**_event_args(record)))])
    await deps.repo.put_version(_version_of(record, by=user_id, note=note))
    deps.notify()
    return record


async def _store_new_version(
    current: TemplateRecord, document: TemplateDocument, *, user_id: str, deps: Deps, note: str | None
) -> TemplateRecord:
    await deps.repo.put_version(_version_of(current, by=current.owner_id))  # heal if it was lost
    record = current.model_copy(
        update={"version": current.version + 1, "updated_at": deps.clock(), "document": document}
    )
    ok = await deps.repo.replace(
        record,
        expected_version=current.version,
        outbox=[deps.event(TemplateUpdated(**_event_args(record)))],
    )
    if not ok:
        raise Conflict("the template was changed concurrently; reload and retry", code="version_conflict")
    await deps.repo.put_version(_version_of(record, by=user_id, note=note))
    deps.notify()
    return record


async def update_template(
    template_id: str,
    document: TemplateDocument,
    *,
    user_id: str,
    deps: Deps,
    expected_version: int | None = None,
) -> TemplateRecord:
    await ensure_runnable(document, owner_id=user_id, deps=deps)
    current = await get_owned(template_id, user_id=user_id, deps=deps)
    if expected_version is not None and expected_version != current.version:
        raise Conflict(
            f"the template is at version {current.version}, not {expected_version}",
            code="version_conflict",
            details={"current_version": current.version},
        )
    return await _store_new_version(current, document, user_id=user_id, deps=deps, note=None)


async def patch_template(
    template_id: str,
    patch: Any,
    *,
    user_id: str,
    deps: Deps,
    expected_version: int | None = None,
) -> TemplateRecord:
    """A JSON merge patch (RFC 7396) of the current document, then exactly what a PUT of the result does (the
    same checks, a new version)."""
    if not isinstance(patch, dict):
        raise InvalidField("a merge patch of a template is a JSON object", loc=("body",), type="dict_type")
    current = await get_owned(template_id, user_id=user_id, deps=deps)
    merged = merge_patch(current.document.stored(), patch)
    try:
        document = TemplateDocument.model_validate(merged)
    except ValidationError as exc:
        issues = shape_errors(exc)
        raise Unprocessable(
            f"the patched template is invalid: {issues[0].path}: {issues[0].message}",
            details=[issue_detail(i) for i in issues],
        ) from None
    return await update_template(
        template_id, document, user_id=user_id, deps=deps, expected_version=expected_version
    )


async def rollback_template(template_id: str, n: int, *, user_id: str, deps: Deps) -> TemplateRecord:
    current = await get_owned(template_id, user_id=user_id, deps=deps)
    target = await deps.repo.get_version(template_id, n)
    if target is None:
        raise NotFound(f"version {n} not found", code="version_not_found")
    return await _store_new_version(
        current, target.document, user_id=user_id, deps=deps, note=f"rollback to {n}"
    )


async def delete_template(template_id: str, *, user_id: str, deps: Deps) -> None:
    current = await get_owned(template_id, user_id=user_id, deps=deps)
    ok = await deps.repo.mark_deleted(
        template_id,
        expected_version=current.version,
        at=deps.clock(),
        outbox=[deps.event(TemplateDeleted(**_event_args(current)))],
    )
    if not ok:
        raise Conflict("the template was changed concurrently; reload and retry", code="version_conflict")
    deps.notify()


# ------------------------------------------------------------------------------------ examples, import
def list_examples(*, deps: Deps) -> list[Example]:
    return list((deps.examples or {}).values())


async def import_example(
    example_id: str,
    *,
    user_id: str,
    deps: Deps,
    name: str | None = None,
    visibility: str | None = None,
) -> tuple[TemplateRecord, list[str]]:
    """A private (or ``visibility``) copy of an example, and notes on it (same shape as the llm-data-gen import)."""
    example = (deps.examples or {}).get(example_id)
    if example is None:
        raise NotFound(f"example {example_id!r} not found", code="example_not_found")
    update: dict[str, Any] = {
        "metadata": {**example.document.metadata, "imported_from": f"example:{example_id}"}
    }
    if name:
        update["name"] = name
    if visibility:
        update["visibility"] = visibility
    document = TemplateDocument.model_validate({**example.document.stored(), **update})
    record = await create_template(
        document, user_id=user_id, deps=deps, note=f"imported example {example_id}"
    )
    return record, _example_notes(record.document)


def _example_notes(document: TemplateDocument) -> list[str]:
    """What a newcomer needs to know before running the copy."""
    if not document.tasks:
        return []
    counts = [t.get("count", 1) for t in document.tasks]
    per_round = sum(c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else 1 for c in counts)
    return [
        f"{len(document.tasks)} task row(s), {per_round} item(s) in all: a job without `count` makes exactly "
        "those; with `count` the task list repeats (or stops short) to make that many"
    ]


def map_llm_data_gen(config: Any, *, name: str | None = None, visibility: str = "private") -> ImportResult:
    try:
        return map_config(config, name=name, visibility=visibility)
    except LlmDataGenError as err:
        raise Unprocessable(
            str(err), code="invalid_llm_data_gen_config", details={"path": err.path}
        ) from None
    except ValueError as err:  # the mapped document failed its own validation
        raise Unprocessable(
            f"the config maps to an invalid template: {err}", code="invalid_llm_data_gen_config"
        ) from None


async def import_llm_data_gen(
    config: Any, *, user_id: str, deps: Deps, name: str | None = None, visibility: str = "private"
) -> tuple[TemplateRecord, list[str]]:
    result = map_llm_data_gen(config, name=name, visibility=visibility)
    record = await create_template(
        result.document, user_id=user_id, deps=deps, note="imported from llm-data-gen"
    )
    return record, result.notes
