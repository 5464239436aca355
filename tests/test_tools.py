"""tool_spec: a Python function's JSON tool spec, and the strict check of the model's arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Literal, Optional, TypedDict

import pytest

from dashmagic.errors import ConfigError
from dashmagic.tools import MAX_ARGUMENTS_CHARS, ArgumentsError, Toolbox, describe, docstring_parts, tool_spec


@dataclass
class Point:
    x: float
    y: float = 0.0


class Box(TypedDict):
    w: int
    h: int


def top_regions(n: int, metric: Literal["drop", "growth"] = "drop", region: Optional[str] = None,
                tags: list[str] = [], pt: Point | None = None, box: Box | None = None,
                weights: dict[str, float] | None = None, pair: tuple[int, str] = (1, "a"), exact: bool = False) -> str:
    """Regions with the largest change.

    More text that is not the summary.

    Parameters
    ----------
    n : int
        How many regions
        to return.
    metric : str
        Which change to rank by.
    """
    return "x"


def lookup(city: str, unit: str = "c") -> str:
    """Look a city up.

    Args:
        city (str): The city name.
        unit: Celsius or
            Fahrenheit.
    """
    return city


def test_the_spec_describes_every_supported_type() -> None:
    spec = tool_spec(top_regions)
    function = spec["function"]
    assert spec["type"] == "function" and function["name"] == "top_regions"
    assert function["description"] == "Regions with the largest change."
    params = function["parameters"]
    props = params["properties"]
    assert params["required"] == ["n"] and params["additionalProperties"] is False
    assert props["n"] == {"type": "integer", "description": "How many regions to return."}
    assert props["metric"]["enum"] == ["drop", "growth"] and props["metric"]["default"] == "drop"
    assert {"type": "null"} in props["region"]["anyOf"]
    assert props["tags"]["items"] == {"type": "string"}
    point = props["pt"]["anyOf"][0]
    assert point["type"] == "object" and point["required"] == ["x"]
    box = props["box"]["anyOf"][0]
    assert box["required"] == ["w", "h"] and box["properties"]["w"] == {"type": "integer"}
    assert props["weights"]["anyOf"][0]["additionalProperties"] == {"type": "number"}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["exact"]["type"] == "boolean"
    assert "title" not in json.dumps(spec) and "$ref" not in json.dumps(spec)


def test_google_docstrings_give_parameter_descriptions() -> None:
    props = tool_spec(lookup)["function"]["parameters"]["properties"]
    assert props["city"]["description"] == "The city name."
    assert props["unit"]["description"] == "Celsius or Fahrenheit."
    assert docstring_parts(None) == ("", {})


def test_arguments_are_parsed_into_the_declared_types() -> None:
    args = describe(top_regions).parse('{"n": 2, "pt": {"x": 1}, "pair": [3, "b"], "box": {"w": 1, "h": 2}}')
    assert args["n"] == 2 and args["pt"] == Point(1.0, 0.0) and args["pair"] == (3, "b")
    assert args["box"] == {"w": 1, "h": 2} and args["metric"] == "drop"
    with pytest.raises(ArgumentsError, match="city"):
        describe(lookup).parse("")  # empty arguments are {}: the required city is missing


@pytest.mark.parametrize("raw, where", [
    ('{"n": "2"}', "n"),  # a string is not an integer (strict: no coercion)
    ('{"n": 2, "zz": 1}', "zz"),  # keys the schema does not have
    ('{"n": 2, "metric": "up"}', "metric"),
    ('{"n": 2, "exact": "yes"}', "exact"),
    ('{"n": 2, "box": {"w": 1}}', "box"),
    ("{}", "n"),
    ("not json", "JSON"),
    ("[" * 50_000 + "]" * 50_000, "JSON"),  # deeply nested: refused, not a RecursionError
    ('{"n": 2, "tags": ' + "[" * 5000 + "]" * 5000 + "}", "JSON"),
])
def test_arguments_that_do_not_fit_are_refused_in_one_line(raw: str, where: str) -> None:
    with pytest.raises(ArgumentsError) as info:
        describe(top_regions).parse(raw)
    message = str(info.value)
    assert where in message and "\n" not in message and len(message) < 400


def test_huge_arguments_are_not_even_parsed() -> None:
    with pytest.raises(ArgumentsError, match="more than"):
        describe(lookup).parse('{"city": "' + "x" * (MAX_ARGUMENTS_CHARS + 1) + '"}')


class Opaque:
    pass


def star(*values: int) -> None: ...
def stars(**values: int) -> None: ...
def opaque(thing: Opaque) -> None: ...


@pytest.mark.parametrize("fn, named", [(star, "*values"), (stars, "**values"), (opaque, "'thing'")])
def test_an_indescribable_signature_is_one_line_naming_the_parameter(fn: object, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        tool_spec(fn)  # type: ignore[arg-type]
    assert named in str(info.value) and "\n" not in str(info.value)


def test_a_toolbox_mixes_functions_and_json_specs_and_refuses_twins() -> None:
    spec = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    box = Toolbox.of([lookup, spec])
    assert box.names == {"lookup"} and box.specs[1] == spec
    with pytest.raises(ConfigError, match="Two tools"):
        Toolbox.of([lookup, lookup])


def test_import_dashmagic_does_not_import_pydantic() -> None:
    code = "import sys, dashmagic, dashmagic.magic; print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-500:]
