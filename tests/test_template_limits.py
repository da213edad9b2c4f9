"""Template rendering is bounded in size and time, and a refusal says which bound."""

from __future__ import annotations

import pytest

from app.triggers.templates import TemplateRenderError, render

CONTEXT = {"body": {"word": "ab", "big": "x" * 1000}}


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ lipsum(1000000) | length }}", "lipsum is limited to 100 paragraphs"),
        ("{% for i in range(100000) %}{% endfor %}", "range of 100000 items exceeds 10000"),
        ("{{ 'x' * 10 ** 10 }}", "would exceed 4194304 items"),
        ("{{ body.word * 10000000 }}", "would exceed 4194304 items"),
        ("{{ 10 ** 1000000 }}", "exceeds 4096 bits"),
        ("{{ '%999999999d' % 1 }}", "format width 999999999 exceeds 10000"),
        ("{{ '%.999999999f' | format(1) }}", "format width 999999999 exceeds 10000"),
        ("{{ 'a' | center(1000000000) }}", "center width 1000000000 exceeds 10000"),
        (
            "{% for i in range(5000) %}{{ body.big }}{% endfor %}",
            "rendered value is longer than 4194304 characters",
        ),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            "rendering took longer than",
        ),
    ],
)
def test_runaway_templates_are_refused_with_the_limit_named(source: str, reason: str) -> None:
    with pytest.raises(TemplateRenderError, match="refused") as refused:
        render(source, CONTEXT)
    assert reason in str(refused.value)


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "{{ body.word * 3 }} {{ body.word + 'c' }} {{ 2 ** 10 }} {{ '%05d' % 7 }} "
        "{{ '%s-%s' | format('a', 'b') }} {{ range(3) | list }} {{ lipsum(1) | length > 0 }}"
    )
    assert render(source, CONTEXT) == "ababab abc 1024 00007 a-b [0, 1, 2] True"


def test_the_trace_function_in_place_before_rendering_is_restored() -> None:
    import sys

    def tracer(*_: object) -> None:
        return None

    sys.settrace(tracer)
    try:
        render("{{ body.word }}", CONTEXT)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(None)
