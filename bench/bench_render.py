"""Render throughput: the sandboxed PromptRenderer vs a plain jinja2.Environment, same templates, same run.

    uv run python bench/bench_render.py            # 100k prompts (system + user = one prompt)
    uv run python bench/bench_render.py --n 10000

Last line: ``render: n=<n> sandbox_per_s=<rate> plain_per_s=<rate> ratio=<plain_rate/sandbox_rate>``.
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import UTC, datetime
from typing import Any

import jinja2

from llmts_templating.filters import pick, slug, tojson, translit
from llmts_templating.render import PromptRenderer, build_context

SYSTEM = """You are {{ persona | default("an expert teacher") }} who writes {{ language }} quiz questions.
Today is {{ date }}. Job {{ job_id }}, item #{{ index + 1 }}.
{% if strict %}
Answer with ONE JSON object and nothing else.
{% endif %}
Rules:
{% for rule in rules %}
{{ loop.index }}. {{ rule }}
{% endfor %}
"""

USER = """Write a {{ difficulty }} question about {{ topics | pick(index) }} ({{ topic_slug | slug }}, {{ theme | translit }}).
{% if audience %}The audience: {{ audience | title }}.{% endif %}
Use {{ options | length }} options:
{% for option in options %}
- {{ option.label }}: {{ option.hint | default("any", true) | truncate(40) }}{% if not loop.last %};{% endif %}

{% endfor %}
Avoid these earlier questions:
{% for q in previous[-3:] %}
* {{ q | trim }}
{% else %}
* (none yet)
{% endfor %}
Output schema: {{ schema | tojson }}
Extra context: {{ extra.source | upper }} / {{ extra.tags | join(", ") }}
"""

VARIABLES: dict[str, Any] = {
    "persona": "a friendly history teacher",
    "language": "English",
    "strict": True,
    "rules": ["One correct answer.", "No trick questions.", "Max 200 characters.", "Cite no sources."],
    "difficulty": "medium",
    "topics": ["the Roman Empire", "the Renaissance", "the Cold War", "Ancient Egypt", "the Silk Road"],
    "topic_slug": "Всемирная история",
    "theme": "PC игры",
    "audience": "high school students",
    "options": [
        {"label": "A", "hint": "plausible but wrong"},
        {"label": "B", "hint": None},
        {"label": "C", "hint": "correct, stated precisely and without hedging at all"},
        {"label": "D"},
    ],
    "previous": [
        "  Who built the Colosseum? ",
        "When did Rome fall?",
        "Who was Cleopatra?",
        "What is a legion?",
    ],
    "schema": {"type": "object", "required": ["question", "options", "answer"]},
    "extra": {"source": "curriculum", "tags": ["history", "quiz", "europe"]},
}


def plain_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        autoescape=False,  # noqa: S701 - prompts are plain text, not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(translit=translit, slug=slug, pick=pick, tojson=tojson)
    return env


def contexts(n: int) -> list[dict[str, Any]]:
    now = datetime(2026, 3, 22, 12, 0, tzinfo=UTC)
    return [
        build_context(index=i, task_index=i % 50, job_id="job-1", now=now, template_variables=VARIABLES)
        for i in range(n)
    ]


def run(n: int, ctxs: list[dict[str, Any]], rounds: int) -> tuple[float, float]:
    """Total seconds (sandbox, plain). The two alternate in ``rounds`` slices so that load changes on
    a shared machine hit both alike."""
    renderer = PromptRenderer()
    renderer.render_prompts(SYSTEM, USER, ctxs[0])  # compile + warm the cache
    env = plain_environment()
    system, user = env.from_string(SYSTEM), env.from_string(USER)
    system.render(ctxs[0])
    sandbox_s = plain_s = 0.0
    step = max(1, n // rounds)
    for lo in range(0, n, step):
        batch = ctxs[lo : lo + step]
        gc.collect()
        start = time.perf_counter()
        for ctx in batch:
            system.render(ctx)
            user.render(ctx)
        plain_s += time.perf_counter() - start
        gc.collect()
        start = time.perf_counter()
        for ctx in batch:
            renderer.render_prompts(SYSTEM, USER, ctx)
        sandbox_s += time.perf_counter() - start
    return sandbox_s, plain_s


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="prompts to render per environment")
    parser.add_argument("--rounds", type=int, default=20, help="alternating slices (fairness under load)")
    args = parser.parse_args()
    n = args.n
    ctxs = contexts(n)

    sample_sandbox = PromptRenderer().render_prompts(SYSTEM, USER, ctxs[1])
    env = plain_environment()
    assert sample_sandbox.system == env.from_string(SYSTEM).render(ctxs[1])
    assert sample_sandbox.user == env.from_string(USER).render(ctxs[1])
    print(f"templates: system={len(SYSTEM)} user={len(USER)} chars; one prompt = system + user")
    print(f"prompt sizes: system={len(sample_sandbox.system)} user={len(sample_sandbox.user)} chars")

    sandbox_s, plain_s = run(n, ctxs, args.rounds)
    sandbox_rate = n / sandbox_s
    plain_rate = n / plain_s
    print(f"sandbox: {sandbox_s:.2f} s  ({sandbox_s / n * 1e6:.1f} us/prompt)")
    print(f"plain:   {plain_s:.2f} s  ({plain_s / n * 1e6:.1f} us/prompt)")
    print(
        f"render: n={n} sandbox_per_s={sandbox_rate:.0f} plain_per_s={plain_rate:.0f} "
        f"ratio={plain_rate / sandbox_rate:.2f}"
    )


if __name__ == "__main__":
    main()
