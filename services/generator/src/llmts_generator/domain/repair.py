"""Prompts of one slot: the first attempt, and a bounded repair attempt.

A repair sends the original system and user prompts, the model's *latest* answer (truncated) and the first few
validation errors. Never a growing transcript: attempt k+1 does not contain attempts 1..k-1.

An answer **cut by the token cap** (``finish_reason: length``) that does not even parse is not repaired but asked
again from the original prompts (:func:`retry_fresh`): showing a model its cut answer and asking for a complete one
under the same cap makes a longer prompt and, measured on SmolLM2-135M (``make bench-local-model``), another cut
answer almost every time, while a fresh try succeeds as often as a first one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Message = tuple[str, str]  # (role, content)

MAX_ERRORS = 5
MAX_OUTPUT_CHARS = 4000
MAX_ERROR_CHARS = 300


def retry_fresh(finish_reason: str | None, errors: Sequence[Mapping[str, Any]]) -> bool:
    """True when the next item attempt should resend the original prompts instead of a repair: the answer hit the
    token cap and could not be parsed."""
    return finish_reason == "length" and any(e.get("rule") == "parse" for e in errors)


def first_messages(system: str, user: str) -> list[Message]:
    messages: list[Message] = []
    if system.strip():
        messages.append(("system", system))
    messages.append(("user", user))
    return messages


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more characters cut]"


def describe_error(error: Mapping[str, Any]) -> str:
    path = str(error.get("path") or "") or "(root)"
    rule = error.get("rule")
    message = str(error.get("message") or "invalid")
    text = f"{path}: {message}" + (f" [{rule}]" if rule else "")
    return _clip(text, MAX_ERROR_CHARS)


def repair_instruction(
    errors: Sequence[Mapping[str, Any]],
    *,
    output_format: str = "json",
    duplicate: bool = False,
    max_errors: int = MAX_ERRORS,
) -> str:
    if duplicate:
        head = (
            "Your previous answer is identical to an item that was already generated. "
            "Produce a different item that still satisfies every requirement."
        )
    else:
        head = "Your previous answer is not valid. Fix these problems:"
    lines = [head]
    shown = list(errors)[:max_errors] if not duplicate else []
    lines.extend(f"- {describe_error(e)}" for e in shown)
    hidden = len(errors) - len(shown) if not duplicate else 0
    if hidden > 0:
        lines.append(f"- … and {hidden} more problem(s) of the same kind")
    if output_format == "json":
        lines.append("Answer with only the corrected JSON value: no prose, no code fences.")
    else:
        lines.append("Answer with only the corrected text.")
    return "\n".join(lines)


def repair_messages(
    system: str,
    user: str,
    previous_output: str | None,
    errors: Sequence[Mapping[str, Any]],
    *,
    output_format: str = "json",
    duplicate: bool = False,
    max_errors: int = MAX_ERRORS,
    max_output_chars: int = MAX_OUTPUT_CHARS,
) -> list[Message]:
    """The messages of a repair attempt (bounded size whatever the number of earlier attempts)."""
    messages = first_messages(system, user)
    previous = previous_output if previous_output else "(empty answer)"
    messages.append(("assistant", _clip(previous, max_output_chars)))
    messages.append(
        (
            "user",
            repair_instruction(
                errors, output_format=output_format, duplicate=duplicate, max_errors=max_errors
            ),
        )
    )
    return messages


def error_summary(errors: Sequence[Mapping[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """JSON-safe, bounded copy of validation errors for events and storage."""
    out: list[dict[str, Any]] = []
    for e in list(errors)[:limit]:
        item = {k: e.get(k) for k in ("path", "rule", "message", "value_excerpt") if k in e}
        out.append(json.loads(json.dumps(item, default=str)))
    return out
