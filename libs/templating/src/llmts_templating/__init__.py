"""LLM Template System templating library: sandboxed prompt rendering, lenient output parsing and
output validation (strict JSON Schema, custom rules, none). Pure domain code, no framework imports."""

from llmts_templating.render import (
    PromptRenderer,
    RenderedPrompts,
    RenderError,
    RenderLimits,
    TemplateIssue,
    build_context,
    check_template,
    undeclared_variables,
)

__all__ = [
    "PromptRenderer",
    "RenderError",
    "RenderLimits",
    "RenderedPrompts",
    "TemplateIssue",
    "build_context",
    "check_template",
    "undeclared_variables",
]
