from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from llmts_templating.filters import pick, slug, tojson, translit, translit_letters
from llmts_templating.render import (
    BUILTIN_VARIABLES,
    PromptRenderer,
    RenderedPrompts,
    RenderError,
    RenderLimits,
    build_context,
    check_template,
    placeholder_names,
    undeclared_variables,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 22, 10, 30, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def renderer() -> PromptRenderer:
    return PromptRenderer()


def render(renderer: PromptRenderer, source: str, **context: object) -> str:
    return renderer.render(source, context)


class TestStrictUndefined:
    def test_undefined_variable_is_an_error_naming_it(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "Write about\n{{ topic }}")
        err = info.value
        assert err.kind == "undefined_variable"
        assert err.variable == "topic"
        assert "topic" in err.message
        assert err.line == 2

    def test_missing_attribute_names_the_attribute(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "{{ user.nmae }}", user={"name": "x"})
        assert info.value.kind == "undefined_variable"
        assert info.value.variable == "nmae"

    @pytest.mark.parametrize(
        "source",
        [
            "{% if topic %}x{% endif %}",
            "{% for x in topic %}{% endfor %}",
            "{{ topic + 1 }}",
            "{{ topic|upper }}",
        ],
    )
    def test_undefined_is_never_blank(self, renderer: PromptRenderer, source: str) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, source)
        assert info.value.kind == "undefined_variable"
        assert info.value.variable == "topic"

    def test_defined_test_and_default_still_work(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "{{ topic is defined }}|{{ topic | default('none') }}") == "False|none"

    def test_error_to_dict(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "{{ topic }}")
        assert info.value.to_dict() == {
            "kind": "undefined_variable",
            "message": "'topic' is undefined",
            "line": 1,
            "variable": "topic",
        }


class TestContext:
    def test_builtins(self) -> None:
        ctx = build_context(index=7, task_index=2, job_id="job-1", now=NOW)
        assert ctx == {
            "index": 7,
            "task_index": 2,
            "date": "2026-03-22",
            "datetime": "2026-03-22T10:30:15+00:00",
            "timestamp": int(NOW.timestamp()),
            "job_id": "job-1",
        }
        assert set(ctx) == BUILTIN_VARIABLES

    def test_now_is_converted_to_utc(self) -> None:
        local = datetime(2026, 3, 23, 1, 0, tzinfo=timezone(timedelta(hours=5)))
        ctx = build_context(index=0, now=local)
        assert ctx["date"] == "2026-03-22"
        assert ctx["datetime"] == "2026-03-22T20:00:00+00:00"

    def test_naive_now_is_utc(self) -> None:
        ctx = build_context(index=0, now=datetime(2026, 1, 1, 0, 0))
        assert ctx["timestamp"] == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())

    def test_later_wins(self) -> None:
        ctx = build_context(
            index=1,
            now=NOW,
            template_variables={"topic": "history", "tone": "dry", "lang": "en"},
            task={"topic": "physics", "tone": "fun", "count": 5},
            request_variables={"topic": "chemistry"},
        )
        assert ctx["topic"] == "chemistry"
        assert ctx["tone"] == "fun"
        assert ctx["lang"] == "en"
        assert ctx["count"] == 5
        assert ctx["index"] == 1

    def test_variables_may_override_builtins(self) -> None:
        ctx = build_context(index=1, now=NOW, request_variables={"date": "tomorrow"})
        assert ctx["date"] == "tomorrow"

    def test_rendering_with_builtins(self, renderer: PromptRenderer) -> None:
        ctx = build_context(index=3, task_index=1, job_id="j", now=NOW, template_variables={"topic": "art"})
        out = renderer.render("#{{ index }}/{{ task_index }} {{ date }} {{ job_id }} {{ topic }}", ctx)
        assert out == "#3/1 2026-03-22 j art"


class TestPlaceholders:
    def test_known_keys_are_substituted(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "Item {index} on {date}: {topic}", index=2, date="2026-03-22", topic="T") == (
            "Item 2 on 2026-03-22: T"
        )

    def test_unknown_placeholder_stays(self, renderer: PromptRenderer) -> None:
        assert (
            render(renderer, "{name_translit} {unknown} {topic}", topic="x") == "{name_translit} {unknown} x"
        )

    def test_json_examples_are_left_intact(self, renderer: PromptRenderer) -> None:
        source = 'Answer like {"question": "...", "options": [{"text": "a"}], "n": {index}} or { topic }'
        out = render(renderer, source, index=4, topic="t")
        assert out == 'Answer like {"question": "...", "options": [{"text": "a"}], "n": 4} or { topic }'

    def test_jinja_syntax_is_untouched(self, renderer: PromptRenderer) -> None:
        out = render(
            renderer, "{{ topic }} {% if true %}{topic}{% endif %} {# {topic} #}{{ '{topic}' }}", topic="x"
        )
        assert out == "x x {topic}"

    def test_raw_blocks_are_untouched(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "{% raw %}{topic} {{ x }}{% endraw %}", topic="x") == "{topic} {{ x }}"

    def test_llm_data_gen_suffixes(self, renderer: PromptRenderer) -> None:
        out = render(
            renderer,
            "{answers_minus_1} {answers_plus_2} {theme_translit} {difficulty_num} {count_minus_1}",
            answers=4,
            theme="PC игры",
            difficulty="medium",
            count=5,
        )
        assert out == "3 6 pc_igry 2 4"

    def test_values_print_like_llm_data_gen(self, renderer: PromptRenderer) -> None:
        out = render(
            renderer, "{flag} {items} {nothing} {ratio}", flag=True, items=["a", "b"], nothing=None, ratio=2.0
        )
        assert out == "true a,b null 2"

    def test_builtin_globals_are_not_placeholders(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "{range} {dict}") == "{range} {dict}"

    def test_line_numbers_survive_placeholders(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "{a}\n{b}\n{{ missing }}", a=1, b=2)
        assert info.value.line == 3

    def test_placeholder_names(self) -> None:
        assert placeholder_names('{topic} {"x": 1} {{ y }} {index}') == {"topic", "index"}


class TestFilters:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("PC игры", "pc_igry"),
            ("Электроника", "elektronika"),
            ("Щука и ёжик", "schuka_i_yozhik"),
            ("Объявление", "ob_yavlenie"),  # llm-data-gen keeps ъ, then it becomes "_"
            ("История России: XX век!", "istoriya_rossii_xx_vek_"),
            ("", ""),
        ],
    )
    def test_translit_matches_llm_data_gen(self, text: str, expected: str) -> None:
        assert translit(text) == expected

    def test_translit_in_template(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "{{ theme | translit }}", theme="Всемирная история") == "vsemirnaya_istoriya"

    def test_translit_letters(self) -> None:
        assert translit_letters("Съезд, 2024") == "Sezd, 2024"

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Привет, Мир!", "privet-mir"),
            ("Café au lait", "cafe-au-lait"),
            ("  --  ", ""),
            ("Объект 42", "obekt-42"),
        ],
    )
    def test_slug(self, text: str, expected: str) -> None:
        assert slug(text) == expected

    def test_slug_separator(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "{{ 'Hello World' | slug('_') }}") == "hello_world"

    def test_pick_is_deterministic_by_index(self, renderer: PromptRenderer) -> None:
        topics = ["a", "b", "c"]
        outs = [render(renderer, "{{ topics | pick(index) }}", topics=topics, index=i) for i in range(6)]
        assert outs == ["a", "b", "c", "a", "b", "c"]

    def test_pick_with_salt_is_deterministic(self) -> None:
        items = list(range(10))
        assert [pick(items, i, salt="s") for i in range(20)] == [pick(items, i, salt="s") for i in range(20)]
        assert [pick(items, i, salt="s") for i in range(20)] != [pick(items, i) for i in range(20)]

    def test_pick_errors(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "{{ [] | pick(1) }}")
        assert info.value.kind == "runtime"
        with pytest.raises(RenderError):
            render(renderer, "{{ 'abc' | pick(1) }}")

    def test_pick_from_mapping_keys(self) -> None:
        assert pick({"x": 1, "y": 2}, 1) == "y"

    def test_tojson_keeps_unicode_and_no_html_escaping(self, renderer: PromptRenderer) -> None:
        out = render(renderer, "{{ data | tojson }}", data={"q": "Что <b>?</b> & 'x'", "n": [1, 2]})
        assert out == '{"q": "Что <b>?</b> & \'x\'", "n": [1, 2]}'
        assert tojson({"b": 1, "a": 2}, indent=2, sort_keys=True) == '{\n  "a": 2,\n  "b": 1\n}'

    def test_builtin_filters_still_available(self, renderer: PromptRenderer) -> None:
        assert (
            render(renderer, "{{ 'a b'|title }} {{ [3,1,2]|sort|join(',') }} {{ 'x'|center(5) }}")
            == "A B 1,2,3   x  "
        )


class TestRenderer:
    def test_render_prompts(self, renderer: PromptRenderer) -> None:
        result = renderer.render_prompts(
            "You write about {{ topic }}.", "Item {index}", {"topic": "art", "index": 1}
        )
        assert result == RenderedPrompts(system="You write about art.", user="Item 1")

    def test_trim_blocks_and_loops(self, renderer: PromptRenderer) -> None:
        source = "Rules:\n{% for r in rules %}\n- {{ r }}\n{% endfor %}\nEnd\n"
        assert render(renderer, source, rules=["a", "b"]) == "Rules:\n- a\n- b\nEnd\n"

    def test_autoescape_is_off(self, renderer: PromptRenderer) -> None:
        assert render(renderer, "{{ x }}", x="<a & b>") == "<a & b>"

    def test_cache_is_used(self) -> None:
        r = PromptRenderer()
        for i in range(50):
            r.render("Hello {{ name }}", {"name": str(i)})
        info = r.cache_info()
        assert info.misses == 1
        assert info.hits == 49
        r.clear_cache()
        assert r.cache_info().currsize == 0

    def test_cache_is_bounded(self) -> None:
        r = PromptRenderer(RenderLimits(cache_size=4))
        for i in range(10):
            r.render(f"T{i} {{{{ x }}}}", {"x": 1})
        assert r.cache_info().currsize == 4

    def test_syntax_error(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "line 1\n{% for x in %}\n")
        assert info.value.kind == "syntax"
        assert info.value.line == 2

    def test_runtime_error(self, renderer: PromptRenderer) -> None:
        with pytest.raises(RenderError) as info:
            render(renderer, "a\n{{ 1 / 0 }}")
        assert info.value.kind == "runtime"
        assert info.value.line == 2
        assert "ZeroDivisionError" in info.value.message

    def test_macros_and_namespace_work(self, renderer: PromptRenderer) -> None:
        source = (
            "{% macro item(x) %}<{{ x }}>{% endmacro %}"
            "{% set ns = namespace(total=0) %}{% for n in nums %}{% set ns.total = ns.total + n %}{{ item(n) }}{% endfor %}"
            "={{ ns.total }}"
        )
        assert render(renderer, source, nums=[1, 2, 3]) == "<1><2><3>=6"

    def test_non_mapping_values_in_context(self, renderer: PromptRenderer) -> None:
        assert (
            render(
                renderer,
                "{{ data.things | length }} {{ data['items'] | length }}",
                data={"things": [1], "items": [1, 2]},
            )
            == "1 2"
        )
        assert render(renderer, "{{ data['_id'] }} {{ data._id }}", data={"_id": "x"}) == "x x"


class TestInspection:
    def test_check_template_ok(self) -> None:
        assert check_template("Hello {{ name }}") == []

    def test_check_template_reports_syntax_with_line(self) -> None:
        issues = check_template("ok\n\n{% if x %}\nno end", path="prompts.user")
        assert len(issues) == 1
        assert issues[0].kind == "syntax"
        assert issues[0].path == "prompts.user"
        assert issues[0].line is not None
        assert issues[0].line >= 3

    def test_check_template_reports_security(self) -> None:
        issues = check_template("a\n{{ x.__class__ }}")
        assert [(i.kind, i.line) for i in issues] == [("security", 2)]

    def test_check_template_reports_size(self) -> None:
        issues = check_template("x" * (64 * 1024 + 1))
        assert issues[0].kind == "limit_exceeded"

    def test_undeclared_variables(self) -> None:
        source = "{% set local = 1 %}{{ topic }} {{ local }} {% for o in options %}{{ o.text }}{% endfor %} {index}"
        assert undeclared_variables(source) == {"topic", "options"}

    def test_undeclared_variables_of_broken_template_raises(self) -> None:
        with pytest.raises(RenderError):
            undeclared_variables("{% if %}")
