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
