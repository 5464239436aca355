"""The plugin registry: one list of names, one spec per module, lazy loading, typed views."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest
from _render_seed import SEED_NAMES, seed_trace

import dashmagic.plugins as registry
from dashmagic import _constants
from dashmagic.plugins import (
    GenericView,
    PluginSpec,
    all_specs,
    call_spec,
    plugin_spec,
    read_call,
    read_result,
    resolve_plugin,
    result_spec,
)
from dashmagic.plugins.calculator import CalculatorArgs, CalculatorResult
from dashmagic.render.html import render_html
from dashmagic.render.text import render_text
from dashmagic.trace import CodeBlock, Figure, NoCodeBlocks, NoFigures, PluginCall, PluginResult

PLUGINS_DIR = Path(registry.__file__).parent


def _plugin_modules() -> set[str]:
    """Every plugin module on disk (private helpers such as _spec and _generic are not plugins)."""
    return {p.stem for p in PLUGINS_DIR.glob("*.py") if not p.stem.startswith("_")}


# -- one list, one spec per module -------------------------------------------------------------


def test_the_one_list_and_the_specs_agree() -> None:
    keys = [key for key, _ in _constants.PLUGIN_MODULES]
    assert _constants.KNOWN_PLUGINS == tuple(keys)
    assert len(set(keys)) == len(keys)
    modules = [module for _, module in _constants.PLUGIN_MODULES]
    assert set(modules) == _plugin_modules(), "a plugin module is missing from (or extra in) the list"
    for key, module in _constants.PLUGIN_MODULES:
        spec = plugin_spec(key)
        assert isinstance(spec, PluginSpec), key
        assert spec.key == key, f"{module}.PLUGIN.key is {spec.key!r}, listed as {key!r}"
        assert sys.modules[f"dashmagic.plugins.{module}"].PLUGIN is spec
    assert [s.key for s in all_specs()] == keys


def test_each_view_type_has_one_spec_and_satisfies_its_protocol() -> None:
    call_types = [s.call_view for s in all_specs() if s.call_view is not None]
    result_types = [s.result_view for s in all_specs() if s.result_view is not None]
    assert len(set(call_types)) == len(call_types) and len(set(result_types)) == len(result_types)
    assert GenericView not in call_types + result_types  # the fallback owns it
    for view_type in call_types:
        assert hasattr(view_type, "code_blocks"), view_type
    for view_type in result_types:
        assert hasattr(view_type, "figures"), view_type


def test_display_names_come_from_the_specs() -> None:
    assert plugin_spec("haozhu_recommend_hotel").display_names == ("酒店推荐插件",)  # type: ignore[union-attr]
    assert resolve_plugin("酒店推荐插件") == "haozhu_recommend_hotel"
    assert resolve_plugin("calculator", ("ocr",)) == "calculator"
    assert resolve_plugin("whatever", ("ocr",)) == "ocr"
    assert resolve_plugin("whatever", ("ocr", "calculator")) == "whatever"
    assert plugin_spec("whatever") is None


def test_names_are_free_and_the_registry_loads_plugins_only_when_asked() -> None:
    code = (
        "import sys, dashmagic\n"
        "assert dashmagic.KNOWN_PLUGINS[0] == 'ocr'\n"
        "assert 'dataclasses' not in sys.modules and 'dashmagic.plugins' not in sys.modules\n"
        "import dashmagic.plugins as p\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('dashmagic.plugins.'))\n"
        "assert loaded == ['dashmagic.plugins._spec'], loaded\n"
        "assert 'dashmagic.render' not in sys.modules\n"
        "p.read_call('calculator', '{}')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('dashmagic.plugins.'))\n"
        "assert loaded == ['dashmagic.plugins._spec', 'dashmagic.plugins.calculator'], loaded\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('markdown_it', 'nh3', 'pygments')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_ext_and_help_do_not_load_the_registry() -> None:
    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\nip.run_line_magic('load_ext', 'dashmagic')\n"
        "doc = ip.magics_manager.magics['cell']['dashscope'].__doc__\n"
        "assert 'haozhu_recommend_hotel' in doc and 'code_interpreter' in doc\n"
        "print(sorted(m for m in sys.modules if m.startswith(('dashmagic.plugins', 'dashmagic.render'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plugin_modules_import_only_trace_the_kits_and_the_stdlib() -> None:
    allowed = {"..trace", "..render", "..render._html_kit", "..render._text_kit", "._spec", "._generic", "..render._common"}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for path in PLUGINS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                where = "." * node.level + (node.module or "")
                if path.stem == "__init__":
                    assert where in {"..", "..trace", "._spec", ".._constants"}, (path.name, where)
                elif where == "..render":  # `from ..render import _html_kit as h`
                    assert {a.name for a in node.names} <= {"_html_kit", "_text_kit"}, path.name
                else:
                    assert where in allowed, (path.name, where)
                    if where == "..render._common":  # type aliases only, never at run time
                        assert path.stem == "_spec", path.name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] in stdlib, (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in stdlib for a in node.names), path.name


# -- reading -----------------------------------------------------------------------------------


def test_readers_keep_their_contract_on_odd_input() -> None:
    assert read_call("calculator", '{"payload__input__text": "1+1"}')[2] == CalculatorArgs("1+1")
    parsed, error, view = read_call("calculator", "{not json")
    assert parsed is None and error and error.startswith("not valid JSON") and view is None
    assert read_call("code_interpreter", "```py\nx = 1\n```")[2] == CodeBlock("x = 1", "python")
    assert read_call("code_interpreter", "{}")[:2] == (None, None)  # not JSON for this plugin
    assert read_result("weather", '{"t": 30}')[2] == GenericView({"t": 30})
    assert read_result("pdf_extracter", "[1]")[2] == GenericView((1,))
    assert read_result("haozhu_recommend_hotel", '{"not": "a list"}')[2] is None
    assert read_result("weather", "")[0:2] == (None, None)


def test_a_view_meets_its_spec_by_type_whatever_the_plugin_name() -> None:
    assert call_spec(CalculatorArgs("1")) is plugin_spec("calculator")
    assert result_spec(CalculatorResult((("1", 1),))) is plugin_spec("calculator")
    assert call_spec(GenericView(1)) is result_spec(GenericView(1)) is registry._fallback()
    assert call_spec(None) is None and result_spec(None) is None


# -- typed views -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SEED_NAMES)
def test_trace_figures_and_code_blocks_come_from_the_views(name: str) -> None:
    trace = seed_trace(name)
    expected_figures = [f for r in trace.plugin_results if r.view is not None for f in r.view.figures]
    assert list(trace.figures) == expected_figures
    expected_code = [c.view for c in trace.plugin_calls if isinstance(c.view, CodeBlock)]
    assert list(trace.code_blocks) == expected_code
    if name == "code_plot":
        assert len(trace.figures) == 1 and trace.code_blocks and trace.code_blocks[0].language == "python"
    if name == "text_to_image":
        assert [f.alt for f in trace.figures] == ["text_to_image"]


# -- adding a plugin touches one module and one line ----------------------------------------------


@dataclass(frozen=True, slots=True)
class WeatherArgs(NoCodeBlocks):
    city: str


@dataclass(frozen=True, slots=True)
class WeatherResult:
    summary: str
    figures: tuple[Figure, ...] = ()


def _weather_module() -> types.ModuleType:
    module = types.ModuleType("dashmagic.plugins.weather")
    module.PLUGIN = PluginSpec(  # type: ignore[attr-defined]
        key="weather",
        read_arguments=lambda raw, parsed: WeatherArgs(parsed["city"]) if parsed else None,
        read_result=lambda raw, parsed: WeatherResult(parsed["text"], (Figure(parsed["map"], "map"),)),
        call_view=WeatherArgs,
        result_view=WeatherResult,
        display_names=("天气插件",),
        summary=lambda view: f"weather in {view.city}",
        html_call=lambda view: f"<b>{view.city}</b>",
        html_result=lambda view, images: f"<i>{view.summary}</i>",
        text_result=lambda view, images: [f"sky: {view.summary}"],
    )
    return module


def test_a_new_plugin_is_one_module_plus_its_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # The module a contributor would write, and its line in _constants.PLUGIN_MODULES.
    monkeypatch.setitem(sys.modules, "dashmagic.plugins.weather", _weather_module())
    monkeypatch.setitem(registry._MODULE_OF, "weather", "weather")
    monkeypatch.setattr(registry, "_SPECS", {})
    monkeypatch.setattr(registry, "_lookup", None)
    assert resolve_plugin("天气插件") == "weather"
    _, _, args = read_call("weather", '{"city": "杭州"}')
    _, _, result = read_result("weather", '{"text": "sunny", "map": "https://example.com/m.png"}')
    steps = (PluginCall("weather", "天气插件", "{}", view=args), PluginResult("weather", "天气插件", "{}", view=result))
    trace = seed_trace("calculator", steps=steps)
    assert [f.alt for f in trace.figures] == ["map"]
    out = render_html(trace)
    assert '<span class="dm-args">weather in 杭州</span>' in out
    assert "<b>杭州</b>" in out and "<i>sunny</i>" in out
    text = render_text(trace)
    assert "[plugin call] weather (天气插件): weather in 杭州" in text
    assert "[plugin result] weather (天气插件) ✓: sky: sunny" in text


def test_no_spec_left_behind_by_the_new_plugin_test() -> None:
    # Guards the monkeypatching above: the real registry is unchanged afterwards.
    assert "weather" not in registry._MODULE_OF and plugin_spec("weather") is None
    assert resolve_plugin("天气插件") == "天气插件"


def test_mixins_give_the_protocol_defaults() -> None:
    assert GenericView(1).figures == () and GenericView(1).code_blocks == ()
    assert isinstance(GenericView(1), (NoCodeBlocks, NoFigures))
    assert CodeBlock("x").code_blocks == (CodeBlock("x"),)
