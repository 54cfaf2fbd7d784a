"""The column of a Jinja syntax error: Jinja reports only the line, a person wants to see where on it.

The template is parsed again over a token stream that remembers where each token starts in the source; the
parser's current token when it gives up is the offending one. Runs where the compile ran (the render pool's
worker, under its deadline). ``None`` when the failing token cannot be placed (the error comes from a later
compile stage, or the end of the template).
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import Environment, TemplateSyntaxError
from jinja2.lexer import Token, TokenStream, get_lexer
from jinja2.parser import Parser


def syntax_column(environment: Environment, source: str, line: int | None) -> int | None:
    """1-based column on ``line`` of the token where parsing ``source`` fails, or None."""
    lexer = get_lexer(environment)
    offsets: dict[int, int] = {}
    keep: list[Token] = []  # the tokens stay alive, so their ids stay unique
    last = [0]
    cursor = [0]
    lexer_failed_at: list[int] = []

    def raw() -> Iterator[tuple[int, str, str]]:
        try:
            for lineno, kind, value in lexer.tokeniter(source, None):
                found = source.find(value, cursor[0]) if value else -1
                if found >= 0:
                    last[0] = found
                    cursor[0] = found + len(value)
                yield lineno, kind, value
        except TemplateSyntaxError:  # the lexer stops at the first character it cannot take
            rest = source[cursor[0] :]
            lexer_failed_at.append(cursor[0] + len(rest) - len(rest.lstrip(" \t")))
            raise

    def wrapped() -> Iterator[Token]:
        for token in lexer.wrap(raw()):
            offsets[id(token)] = last[0]
            keep.append(token)
            yield token

    parser = Parser(environment, source)
    parser.stream = TokenStream(wrapped(), None, None)
    try:
        parser.parse()
    except TemplateSyntaxError as exc:
        offset = lexer_failed_at[0] if lexer_failed_at else offsets.get(id(parser.stream.current))
        if offset is None or (line is not None and exc.lineno != line):
            return None
        return offset - source.rfind("\n", 0, offset)
    except Exception:  # the column is a courtesy; the error itself is already known
        return None
    return None
