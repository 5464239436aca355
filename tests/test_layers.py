"""The layering the folder structure promises, checked on the source: pure layers stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "dashmagic"

#: Who may import IPython at all, and who may import requests/urllib3 (lazily or not).
IPYTHON_ALLOWED = {"magic.py", "display.py", "progress.py"}
REQUESTS_ALLOWED = {"transport/http.py", "transport/modes.py", "transport/record.py", "transport/replay.py",
                    "client.py", "images.py"}
PURE = {"trace.py", "events.py", "sse.py", "cell.py", "config.py", "request.py", "errors.py", "_constants.py",
        *(f"recording/{p.name}" for p in (PACKAGE / "recording").glob("*.py"))}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules() -> dict[str, Path]:
    return {str(p.relative_to(PACKAGE)): p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts}


def test_only_the_adapter_imports_ipython() -> None:
    offenders = {name for name, path in _modules().items() if {"IPython", "traitlets"} & _imports(path)}
    assert offenders <= IPYTHON_ALLOWED, offenders


def test_only_the_transport_layer_imports_requests() -> None:
    offenders = {name for name, path in _modules().items() if {"requests", "urllib3"} & _imports(path)}
    assert offenders <= REQUESTS_ALLOWED, offenders


def test_pure_layers_import_only_the_standard_library_and_the_package() -> None:
    third_party = {"IPython", "traitlets", "requests", "urllib3", "markdown_it", "nh3", "pygments", "ipywidgets"}
    for name in PURE | {str(p.relative_to(PACKAGE)) for p in (PACKAGE / "plugins").glob("*.py")}:
        assert not (_imports(PACKAGE / name) & third_party), name


def test_renderers_do_not_touch_ipython_or_the_network() -> None:
    for path in (PACKAGE / "render").glob("*.py"):
        assert not (_imports(path) & {"IPython", "requests", "urllib3", "traitlets"}), path.name


# -- internal import directions -----------------------------------------------------------------
# The data flow, lowest layer first: a module may import its own layer and the layers below it,
# never above. (plugins and render sit together: a plugin's views use the render kits, and the
# renderers look plugin views up in the registry.)
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"_constants", "_urls", "_text", "errors", "trace", "config", "sse", "__version__"}),
    frozenset({"cell", "scrub", "recording", "images", "limits"}),
    frozenset({"request", "tools"}),
    frozenset({"plugins", "render", "protocol"}),
    frozenset({"events", "trace_json", "local_run"}),
    frozenset({"transport"}),
    frozenset({"client", "tool_loop"}),
    frozenset({"plan", "batch_map", "batch", "progress"}),
    frozenset({"display", "widgets", "tool_approval"}),
    frozenset({"magic", "__init__"}),
)
#: Deliberate upward imports, each inside a function: the display protocol (a Trace renders itself
#: when IPython asks), and two conveniences: ``Trace.run_locally()`` over :mod:`dashmagic.local_run`
#: and ``Client.map()`` over :mod:`dashmagic.batch_map`.
UPWARD_ALLOWED = {("trace", "render"), ("trace", "local_run"), ("client", "batch_map")}


def _unit(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root).parts
    return parts[0] if len(parts) > 1 else path.stem


def _internal_imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Units of the package that ``path`` imports at run time (``if TYPE_CHECKING:`` blocks skipped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    here = list(path.relative_to(root).parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            if node.module and node.module.split(".")[0] == "dashmagic":
                rest = node.module.split(".")[1:]
                found.add(rest[0] if rest else node.names[0].name)
            continue
        base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
        target = [*base, *[m for m in (node.module or "").split(".") if m]]
        found.add(target[0] if target else node.names[0].name)
    return found - {_unit(path, root)}


def _layer(unit: str) -> int:
    for index, members in enumerate(LAYERS):
        if unit in members:
            return index
    raise AssertionError(f"dashmagic/{unit} is in no layer of tests/test_layers.py: place it in the data flow")


def test_internal_imports_point_down_the_data_flow() -> None:
    upward = set()
    for name, path in _modules().items():
        unit = _unit(path)
        for target in _internal_imports(path):
            if _layer(target) > _layer(unit) and (unit, target) not in UPWARD_ALLOWED:
                upward.add(f"{name} imports {target}")
    assert not upward, sorted(upward)


def test_the_layer_check_sees_relative_absolute_and_lazy_imports(tmp_path: Path) -> None:
    root = tmp_path / "dashmagic"
    (root / "render").mkdir(parents=True)
    probe = root / "render" / "x.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..trace import Trace\n"
        "from . import _html_kit\n"
        "if TYPE_CHECKING:\n    from ..magic import DashScopeMagics\n"
        "def f():\n    from ..client import Client\n    from dashmagic.transport import send\n",
        encoding="utf-8",
    )
    found = _internal_imports(probe, root)
    assert found == {"trace", "client", "transport"}  # own package and TYPE_CHECKING-only imports left out
    assert _layer("client") > _layer("render") and _layer("transport") > _layer("render")
