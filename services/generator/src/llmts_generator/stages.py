"""Multi-stage items (issue 18): the later stages of an item, run by its slot once the top-level answer (stage
``main``) is accepted by evaluation (valid, not a duplicate).

Each stage in order: its prompts are rendered by the job's sandbox renderer with the item's render context plus
``main`` and every earlier stage's output under its name; its provider calls go the way the main call does (the
job's current route: fair limiter, retries, fallback chain, response cache) with the stage's schema as structured
output and a seed of their own (the target's next item seed); its answers are judged in the stage's own validation
mode, schema and rules and repaired like main's.

Decisions (the service README says them too):

- **Attempts**: every stage call is an item attempt (an attempt document with ``stage``, counted in
  ``counts.item_attempts``, cost and tokens); each stage of an item has ``max_attempts_per_item`` item attempts of
  its own (first + repairs), and the job's attempt budget grows with the stages (× (1 + stages)). The item's
  ``attempts`` are all of its stages' together.
- **A stage that exhausts its attempts rejects the item** (reason ``stage``, the stage's name on the rejected item
  and its event, error paths relative to the item: ``$.<stage>…``); the target is then regenerated from ``main`` by
  a new slot, so the job still ends with exactly N complete items.
- **Dedup and ``unique`` rules apply to ``main``** (checked when main is evaluated, so a duplicate costs no stage
  call); the item's ``content_hash`` is main's. While its stages run, the item's main hash and unique values (and
  each valid stage output's own ``unique`` values) are *reserved* — other slots see them — and released if the item
  is rejected. Once complete, the hash stays reserved and the unique values go back to the accept path, which
  commits them (at once, or when the LLM judge accepts the item). A stage's ``unique`` rules compare that stage's
  outputs across the job's items.
- **A stage's prompts that do not render fail the job** (``render_error``), as the top-level prompts do.
- **Crash safety**: the item is written only when its last stage is valid (with its final attempt); a slot that
  stops half-way (job paused, cancelled, a crash) wrote only attempt documents, and the target is redone in full.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llmts_common.contracts import GenerationRequested
from llmts_common.contracts.common_models import StageSpec
from llmts_generator.domain import fallback
from llmts_generator.domain.evaluation import ItemRules, StageRules, Verdict, evaluate
from llmts_generator.domain.repair import error_summary, first_messages
from llmts_generator.domain.requests import RenderedItem, Renderer, RequestShape
from llmts_generator.records import attempt_op
from llmts_providers import Provider
from llmts_providers.estimate import CostBound, CostEstimate, estimate_prompt_tokens
from llmts_providers.preview import structured_output
from llmts_templating import RenderError
from llmts_templating.placeholders import MAIN_STAGE, stage_placeholders
from llmts_templating.validation import UniqueState

if TYPE_CHECKING:
    from llmts_generator.slots import SlotWork, _Call, _Target


def stage_shape(shape: RequestShape, stage: StageRules | StageSpec | None) -> RequestShape:
    """The request shape of a call of ``stage`` (its schema as structured output); the job's for ``main``."""
    if stage is None:
        return shape
    schema, strict = structured_output("json", stage.json_schema)
    return dataclasses.replace(shape, json_schema=schema, strict=strict)


def item_schema(req: GenerationRequested) -> tuple[dict[str, Any] | None, bool | None]:
    """(the JSON Schema of a complete item, whether items were checked against it): main's schema with each later
    stage's schema under the stage's name (required), strict only when main and every stage validate strictly —
    what ``GenerationStarted.item_schema`` tells the exporter to lay files out by (a closed main schema alone would
    drop the stages' columns)."""
    tpl = req.template
    schema = tpl.json_schema
    if schema is None:
        return None, None
    strict = req.validation_mode == "strict" and all(s.validation.mode == "strict" for s in tpl.stages)
    if not tpl.stages:
        return schema, strict
    defs = dict(schema.get("$defs") or {})
    nested: dict[str, Any] = {}
    for stage in tpl.stages:
        nested[stage.name], hoisted = nest_stage_schema(stage.name, stage.json_schema)
        defs.update(hoisted)
    properties = {**(schema.get("properties") or {}), **nested}
    required = [*(schema.get("required") or []), *(s.name for s in tpl.stages)]
    combined = {**schema, "type": "object", "properties": properties, "required": required}
    if defs:
        combined["$defs"] = defs
    return combined, strict


_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # values, not schemas: no $ref inside


def _pointer_token(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def nest_stage_schema(stage: str, schema: Any) -> tuple[Any, dict[str, Any]]:
    """``schema`` (a stage's own, whose local ``$ref``s point into itself) as it sits in the complete item's schema
    under ``properties/<stage>``, and its ``$defs``/``definitions`` to add to that schema's root ``$defs`` (as
    ``stage.<stage>.<name>``): every local ``$ref`` is rewritten to where its target is now, so the complete
    schema resolves (jsonschema, the exporter's layout) as the stage's schema did on its own."""
    if not isinstance(schema, dict):
        return schema, {}
    base = f"#/properties/{_pointer_token(stage)}"
    sections = ("$defs", "definitions")

    def moved(ref: str) -> str:
        if not ref.startswith("#"):
            return ref  # another document: unchanged
        pointer = ref[1:]
        head, _, rest = pointer.lstrip("/").partition("/")
        if pointer.startswith("/") and head in sections and rest:
            name, _, tail = rest.partition("/")
            unescaped = name.replace("~1", "/").replace("~0", "~")
            target = f"#/$defs/{_pointer_token(f'stage.{stage}.{unescaped}')}"
            return target + (f"/{tail}" if tail else "")
        return base + pointer

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    out[key] = moved(value)
                elif key in _DATA_KEYWORDS:
                    out[key] = value
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    rewritten = rewrite(schema)
    for key in (
        "$id",
        "$schema",
    ):  # a nested $id would make "#" mean the stage again: the rewrite assumes the root
        rewritten.pop(key, None)
    hoisted: dict[str, Any] = {}
    for section in sections:
        for name, sub in (rewritten.pop(section, None) or {}).items():
            hoisted[f"stage.{stage}.{name}"] = sub
    return rewritten, hoisted


def complete_value(outputs: Mapping[str, Any]) -> Any:
    """The item: main's output with each later stage's output under the stage's name."""
    main = outputs[MAIN_STAGE]
    later = {name: value for name, value in outputs.items() if name != MAIN_STAGE}
    return {**main, **later} if isinstance(main, dict) else main


@dataclass
class StageMemory:
    """Per run of a job: each stage's ``unique`` values in the accepted (and reserved) items, rebuilt from the
    accepted items of a resumed job."""

    unique: dict[str, UniqueState] = field(default_factory=dict)

    @classmethod
    def of(cls, rules: ItemRules, accepted: Iterable[Mapping[str, Any]]) -> StageMemory:
        memory = cls({s.name: UniqueState() for s in rules.stages if s.rules.rules.unique})
        for doc in accepted if memory.unique else ():
            if doc.get("data_json") is not None:
                memory.commit(json.loads(doc["data_json"]), rules)
        return memory

    def commit(self, item: Any, rules: ItemRules) -> None:
        """Record the stages' ``unique`` values of an accepted (complete) item."""
        if not isinstance(item, dict):
            return
        for stage in rules.stages:
            if stage.name in self.unique and item.get(stage.name) is not None:
                self.unique[stage.name].commit(item[stage.name], stage.rules.rules)

    def state(self, stage: StageRules) -> UniqueState:
        return self.unique.get(stage.name) or UniqueState()


@dataclass
class _Reservation:
    """What an item being completed holds in the job's dedup state (released if it is rejected)."""

    main: Verdict
    outputs: dict[str, Any]


async def complete_item(
    work: SlotWork, t: _Target, call: _Call, main: Verdict
) -> tuple[dict[str, Any], Verdict] | None:
    """Run the later stages of the target ``t`` whose main answer ``call`` was accepted (``main``). Returns the final
    attempt document and the item's verdict — accept (the complete item; main's content hash) or reject (``stage``:
    the stage that exhausted its attempts) — or None when the job stops meanwhile (the slot gives the target back).
    Without stages: ``call``'s attempt and ``main`` unchanged."""
    stages = work.ctx.rules.stages
    if not stages:
        return call.attempt, main
    held = _reserve(work, main)
    accepted = False
    try:
        await work._submit(attempt_op(call.attempt, item_attempt_done=True))
        attempt: dict[str, Any] = call.attempt
        for stage in stages:
            ended = await _run_stage(work, t, stage, held)
            if ended is None:
                return None
            attempt, verdict = ended
            if verdict.action == "reject":
                return attempt, verdict
            held.outputs[stage.name] = verdict.value
        accepted = True
        return attempt, dataclasses.replace(main, value=complete_value(held.outputs))
    finally:
        # complete: the hash stays reserved, the unique values go back to the accept path, which commits them
        # (at once, or after the LLM judge accepts the item, as for an item without stages)
        _release(work, held, keep_hash=accepted)


def _reserve(work: SlotWork, main: Verdict) -> _Reservation:
    """Main's hash and unique values go into the job's dedup state now (synchronously after its evaluation)."""
    st, rules = work.st, work.ctx.rules
    st.hashes.add(main.digest)
    if rules.rules.unique:
        st.unique.commit(main.value, rules.rules)
    return _Reservation(main, {MAIN_STAGE: main.value})


def _release(work: SlotWork, held: _Reservation, *, keep_hash: bool = False) -> None:
    st, rules = work.st, work.ctx.rules
    if not keep_hash:
        st.hashes.discard(held.main.digest)
    if rules.rules.unique:
        st.unique.release(held.main.value, rules.rules)
    for stage in rules.stages:
        if stage.name in held.outputs and stage.rules.rules.unique:
            work.stage_memory.state(stage).release(held.outputs[stage.name], stage.rules.rules)


async def _render(
    work: SlotWork, t: _Target, stage: StageRules, outputs: Mapping[str, Any]
) -> RenderedItem | None:
    context = {**t.rendered.context, **outputs}
    try:
        prompts = await work.ctx.renderer.render_prompts(stage.system, stage.user, context)
    except RenderError as exc:
        work.sched.fail("render_error", f"stage {stage.name!r} could not be rendered: {exc}"[:1000])
        return None
    messages = first_messages(prompts.system, prompts.user)
    return RenderedItem(t.plan.target, t.rendered.task_index, prompts.system, prompts.user, messages, context)


async def _run_stage(
    work: SlotWork, t: _Target, stage: StageRules, held: _Reservation
) -> tuple[dict[str, Any], Verdict] | None:
    """One stage of the item until its answer is valid or its attempts are spent; None when the job stops."""
    rendered = await _render(work, t, stage, held.outputs)
    if rendered is None:
        return None
    s = dataclasses.replace(
        t, rendered=rendered, item_attempt=0, last_text=None, last_finish=None, fresh=False, stage=stage
    )
    messages = rendered.messages
    try:
        while True:
            await work.writer.storage_available()
            if not work.sched.begin_attempt():
                return None
            s.item_attempt += 1
            t.item_attempt += 1
            s.seed = work._next_seed(t.plan.target)
            call = await work._attempt(s, messages)
            if call is None:
                return None
            verdict = _evaluate(work, s, call, stage)
            if verdict.action != "repair":
                return call.attempt, verdict
            await work._submit(attempt_op(call.attempt, item_attempt_done=True))
            messages = work._repair(s, verdict)
    finally:
        t.call_no, t.last_text, t.last_finish = s.call_no, s.last_text, s.last_finish
        t.cache, t.saved = s.cache, s.saved


def _evaluate(work: SlotWork, s: _Target, call: _Call, stage: StageRules) -> Verdict:
    """Judge a stage's answer in its own mode, schema and rules (synchronous up to the reservation)."""
    result = call.result
    if result is not None:
        s.last_text, s.last_finish = result.text, result.finish_reason
    unique = work.stage_memory.state(stage)
    verdict = evaluate(
        result.text if result is not None else None,
        stage.rules,
        item_attempt=s.item_attempt,
        hashes=(),
        unique=unique,
        provider_error=str(call.error) if call.error is not None else None,
    )
    call.attempt["outcome"] = verdict.outcome
    call.attempt["errors"] = error_summary(verdict.errors, 5)
    chain = work.ctx.chain
    if work.sched.attempt_outcome(verdict.outcome == "valid", can_fall_back=chain.has_next()):
        work._breaker_fallback = asyncio.ensure_future(
            chain.advance(chain.current, fallback.BREAKER_OPEN, "most recent item attempts failed")
        )
    if verdict.action == "accept" and stage.rules.rules.unique:
        unique.commit(verdict.value, stage.rules.rules)
    if verdict.action == "reject":
        return dataclasses.replace(verdict, errors=_item_paths(verdict.errors, stage.name), stage=stage.name)
    return verdict


def _item_paths(errors: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """A stage's errors with paths relative to the item (the stage's output sits under its name)."""
    out = []
    for error in errors:
        path = str(error.get("path") or "$")
        rest = path[1:] if path.startswith("$") else f".{path}"
        out.append({**error, "path": f"$.{name}{rest}"})
    return out


async def preview_stages(
    renderer: Renderer,
    req: GenerationRequested,
    items: Sequence[RenderedItem],
    provider: Provider,
    shape: RequestShape,
) -> list[list[dict[str, Any]]]:
    """For each previewed item, every later stage's prompts and exact request body, rendered with placeholder
    outputs of the stages before it (example values from their schemas, as the templates service's preview): no
    model is called. Raises ``RenderError``."""
    tpl = req.template
    previews: list[list[dict[str, Any]]] = [[] for _ in items]
    if not tpl.stages:
        return previews
    outputs = stage_placeholders(
        tpl.json_schema, tpl.output_format, ((s.name, s.json_schema) for s in tpl.stages)
    )
    seen = {MAIN_STAGE: outputs[MAIN_STAGE]}
    for stage in tpl.stages:
        contexts = [{**item.context, **seen} for item in items]
        rendered = await renderer.render_prompts_many(stage.prompts.system, stage.prompts.user, contexts)
        for preview, prompts in zip(previews, rendered, strict=True):
            request = stage_shape(shape, stage).request(first_messages(prompts.system, prompts.user))
            body = provider.build_request_body(request)
            preview.append(
                {"name": stage.name, "system": prompts.system, "user": prompts.user, "request_body": body}
            )
        seen[stage.name] = outputs[stage.name]
    return previews


def estimate_with_stages(
    main_body: Mapping[str, Any],
    previews: Sequence[Sequence[Mapping[str, Any]]],
    estimate: Callable[[Mapping[str, Any]], CostEstimate],
) -> CostEstimate:
    """A preview's cost range with every later stage's calls added to main's (the largest rendered request of each
    stage, like main's): per item and total; ``prompt_tokens_per_call`` stays main's."""
    largest: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for item in previews:
        for stage in item:
            tokens = estimate_prompt_tokens(stage["request_body"])
            if stage["name"] not in largest or tokens >= largest[stage["name"]][0]:
                largest[stage["name"]] = (tokens, stage["request_body"])
    parts = [estimate(main_body), *(estimate(body) for _, body in largest.values())]
    return dataclasses.replace(parts[0], low=_sum([p.low for p in parts]), high=_sum([p.high for p in parts]))


def _sum(bounds: Sequence[CostBound]) -> CostBound:
    usd = (
        None
        if any(b.usd is None for b in bounds)
        else sum((b.usd for b in bounds if b.usd is not None), Decimal(0))
    )
    return CostBound(
        sum(b.calls for b in bounds),
        sum(b.prompt_tokens for b in bounds),
        sum(b.completion_tokens for b in bounds),
        usd,
    )
