"""dashmagic.cell, called directly: interpolation, --param, --plugins, files=, prompt checks."""

from __future__ import annotations

import tracemalloc

import pytest

from dashmagic.cell import (
    MAX_PARAM_DEPTH,
    MAX_PROMPT_CHARS,
    check_prompt,
    check_text,
    interpolate,
    normalise_files,
    parse_params,
    parse_plugins,
)
from dashmagic.errors import ConfigError


def _one_line(error: ConfigError) -> str:
    message = str(error)
    assert "\n" not in message and message.isprintable(), message
    assert len(message) < 600, len(message)
    return message


class StrRaises:
    def __str__(self) -> str:
        raise ValueError("no str\nfor you")


class StrNotAString:
    def __str__(self) -> str:
        return 5  # type: ignore[return-value]


class ExceptionWithBadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("and this one too")


class StrRaisesBadException:
    def __str__(self) -> str:
        raise ExceptionWithBadStr()


# -- interpolation --------------------------------------------------------------------------------
def test_single_braces_stay_and_values_are_not_rescanned() -> None:
    namespace = {"n": 3, "d": {"k": "{{ n }} {x}"}}
    text = 'json {"a": 1} and {k: v for k, v in d.items()} and {{ n * 2 }} and {{d}} and {{  }}'
    assert interpolate(text, namespace) == (
        "json {\"a\": 1} and {k: v for k, v in d.items()} and 6 and {'k': '{{ n }} {x}'} and {{  }}"
    )


def test_errors_of_the_expression_are_one_line() -> None:
    with pytest.raises(ConfigError, match="name 'missing' is not defined") as info:
        interpolate("hi {{ missing }}", {})
    _one_line(info.value)
    with pytest.raises(ConfigError, match="is not a valid Python expression") as info:
        interpolate("{{ 1 +\n }}", {})
    _one_line(info.value)
    with pytest.raises(ConfigError, match="Evaluating {{ 1/0 }} raised ZeroDivisionError: division by zero"):
        interpolate("{{ 1/0 }}", {})


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        (StrRaises(), "{{ obj }}: str() of its StrRaises value raised ValueError: no str for you."),
        (StrNotAString(), "{{ obj }}: str() of its StrNotAString value raised TypeError: __str__ returned non-string"),
        (StrRaisesBadException(), "raised ExceptionWithBadStr: (its message could not be shown)"),
    ],
)
def test_a_value_whose_str_fails_is_a_one_line_error(value: object, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        interpolate("look: {{ obj }}", {"obj": value})
    assert phrase in _one_line(info.value), str(info.value)


def test_a_huge_int_value_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="str\\(\\) of its int value raised ValueError") as info:
        interpolate("{{ 10**5000 }}", {})
    _one_line(info.value)


def test_a_long_multiline_expression_is_shown_short_on_one_line() -> None:
    expr = "[\n" + ",\n".join(["undefined_name"] * 200) + "\n]"
    with pytest.raises(ConfigError) as info:
        interpolate("{{ " + expr + " }}", {})
    message = _one_line(info.value)
    assert "{{ [ undefined_name, undefined_name," in message and "…" in message


def test_a_lone_surrogate_in_a_value_says_which_value_and_where() -> None:
    with pytest.raises(ConfigError) as info:
        interpolate("a {{ s }}", {"s": "ok\ud800"})
    assert _one_line(info.value).startswith("The value of {{ s }} contains a lone surrogate U+D800 at character 3")


def test_the_size_limit_holds_for_one_huge_value() -> None:
    big = "x" * 10_000_000
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            interpolate("summarise {{ big }}", {"big": big})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = _one_line(info.value)
    assert "The value of {{ big }} is 10,000,000 characters, more than the 500,000 dashmagic sends" in message
    assert peak < 1_000_000, f"interpolate allocated {peak:,} bytes: it built the prompt before refusing it"


def test_the_size_limit_holds_for_the_result() -> None:
    half = "x" * (MAX_PROMPT_CHARS // 2)
    assert len(interpolate("{{ v }}{{ v }}", {"v": half})) == MAX_PROMPT_CHARS  # exactly the limit is fine
    with pytest.raises(ConfigError) as info:
        interpolate("{{ v }} {{ v }}", {"v": half})
    assert "With {{ v }} the prompt is over 500,000 characters" in _one_line(info.value)
    with pytest.raises(ConfigError, match="more than the 10 dashmagic sends"):
        interpolate("{{ s }}", {"s": "y" * 11}, limit=10)


def test_text_already_over_the_limit_is_refused_by_interpolate_too() -> None:
    with pytest.raises(ConfigError, match="The prompt is 500,001 characters"):
        interpolate("x" * (MAX_PROMPT_CHARS + 1), {})


# -- the prompt -----------------------------------------------------------------------------------
def test_check_prompt() -> None:
    assert check_prompt(" hi ") == " hi "
    with pytest.raises(ConfigError, match="The cell is empty"):
        check_prompt(" \n\t")
    with pytest.raises(ConfigError, match="more than the 500,000 dashmagic sends"):
        check_prompt("x" * (MAX_PROMPT_CHARS + 1))


def test_a_lone_surrogate_in_the_prompt_says_where() -> None:
    with pytest.raises(ConfigError) as info:
        check_prompt("hello \udcff world")
    assert _one_line(info.value).startswith("The prompt contains a lone surrogate U+DCFF at character 7:")


def test_check_text_passes_every_real_character() -> None:
    text = "中文 emoji 😀 \U0010ffff \ue000 ok"
    assert check_text(text, "x") is text


# -- --param ----------------------------------------------------------------------------------------
def test_params_are_json_when_they_parse() -> None:
    assert parse_params(["temperature=0.2", 'stop=["a"]', "name=bob", " top_k = 5 "]) == {
        "temperature": 0.2, "stop": ["a"], "name": "bob", "top_k": 5,
    }


def test_param_shape_errors() -> None:
    with pytest.raises(ConfigError, match="--param expects key=value"):
        parse_params(["temperature"])
    with pytest.raises(ConfigError, match="looks like JSON but does not parse"):
        parse_params(['stop=["a",'])


@pytest.mark.parametrize(
    ("item", "phrase"),
    [
        ('stop="\\ud800"', "--param stop contains a lone surrogate U+D800 at character 1"),
        ('stop=["a", "b\\udfff"]', "--param stop[1] contains a lone surrogate U+DFFF at character 2"),
        ('cfg={"a": {"b\\ud800": 1}}', "A key in --param cfg.a contains a lone surrogate U+D800 at character 2"),
        ("word=abc\ud800", "--param word contains a lone surrogate U+D800 at character 4"),
        ("na\ud800me=1", "A --param name contains a lone surrogate U+D800 at character 3"),
    ],
)
def test_a_lone_surrogate_in_a_param_says_which_param_and_where(item: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_params([item])
    assert _one_line(info.value).startswith(phrase), str(info.value)


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_param_json_nested_past_the_recursion_limit_is_a_config_error(depth: int) -> None:
    with pytest.raises(ConfigError, match=f"--param x: the JSON is nested deeper than {MAX_PARAM_DEPTH} levels"):
        parse_params(["x=" + "[" * depth + "]" * depth])


def test_param_json_depth_limit() -> None:
    ok = "[" * MAX_PARAM_DEPTH + "1" + "]" * MAX_PARAM_DEPTH
    assert parse_params([f"x={ok}"])["x"] is not None
    too_deep = '{"a":' * (MAX_PARAM_DEPTH + 1) + "1" + "}" * (MAX_PARAM_DEPTH + 1)
    with pytest.raises(ConfigError, match="nested deeper than"):
        parse_params([f"x={too_deep}"])


@pytest.mark.parametrize(
    ("item", "phrase"),
    [
        ("temperature=NaN", "--param temperature: NaN is not a JSON number"),
        ("temperature=-Infinity", "--param temperature: -Infinity is not a JSON number"),
        ("top_p=1e999", "--param top_p: the number is too large for a float"),
        ("w=[1, 2e400]", "--param w[1]: the number is too large for a float"),
    ],
)
def test_params_that_are_not_finite_numbers_are_refused(item: str, phrase: str) -> None:
    # json.loads accepts these, then requests would send NaN/Infinity, which is not JSON.
    with pytest.raises(ConfigError) as info:
        parse_params([item])
    assert _one_line(info.value).startswith(phrase)


# -- --plugins and files= -------------------------------------------------------------------------
def test_parse_plugins() -> None:
    assert parse_plugins(" calculator, ocr ,,calculator") == (("calculator", "ocr"), ())
    assert parse_plugins(["weather"]) == (("weather",), ("weather",))
    assert parse_plugins(None) == ((), ())
    with pytest.raises(ConfigError, match="Plugin names must be strings, got int 3"):
        parse_plugins(["ocr", 3])  # type: ignore[list-item]


def test_one_string_is_one_file() -> None:
    assert normalise_files("https://example.com/report.pdf") == ("https://example.com/report.pdf",)
    assert normalise_files(["https://a/1.pdf", "https://a/2.pdf"]) == ("https://a/1.pdf", "https://a/2.pdf")
    assert normalise_files(url for url in ["https://a/1.pdf"]) == ("https://a/1.pdf",)
    assert normalise_files(None) == () and normalise_files(()) == ()


@pytest.mark.parametrize(
    ("files", "phrase"),
    [
        (b"https://a/1.pdf", "files must be a URL or a list of URLs, got bytes."),
        ({"https://a/1.pdf": 1}, "files must be a URL or a list of URLs, got dict."),
        (5, "files must be a URL or a list of URLs, got int."),
        (["https://a/1.pdf", None], "files must be URLs (strings); item 1 is NoneType."),
    ],
)
def test_files_of_the_wrong_shape_are_refused(files: object, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalise_files(files)  # type: ignore[arg-type]
    assert str(info.value) == phrase
