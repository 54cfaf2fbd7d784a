"""Syntax errors carry the column where the parser (or the lexer) gave up, not only the line."""

from __future__ import annotations

import pytest

from llmts_templating.render import check_template


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("Hello {{ product \n {% for %}", 2, 2),
        ("a\n  b {{ x }} {% if %}", 2, 19),
        ("x {{ a.b( }}", 1, 11),  # the lexer's unbalanced brace
        ('x\n {{ "abc }}', 2, 5),  # the lexer's unterminated string
        ("x {% endif %}", 1, 6),
        ("Привет {{ 'a' + }}", 1, 17),
    ],
)
def test_syntax_errors_have_line_and_column(source: str, line: int, column: int) -> None:
    [issue] = check_template(source, path="prompts.user")
    assert issue.kind == "syntax"
    assert (issue.line, issue.column) == (line, column)


def test_errors_the_parser_cannot_place_have_no_column() -> None:
    [issue] = check_template("{% for x in y %}", path="p")  # end of template
    assert issue.line == 1
    assert issue.column is None
    assert check_template("fine {{ x }}") == []
