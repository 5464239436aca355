"""Shared fixtures: a clean environment for every test, the loopback fake, a real shell."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

pytest_plugins = ["dashmagic.testing.pytest_plugin"]

# IPython must never touch the developer's ~/.ipython (history, profiles).
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="dashmagic-ipython-"))

_ENV = (
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_API_KEY_FILE_PATH",
    "DASHSCOPE_HTTP_BASE_URL",
    "DASHMAGIC_MODE",
    "DASHMAGIC_RECORDINGS",
    "DASHMAGIC_LIVE",  # notebooks/conftest.py sets it for nbval's kernels when both folders run
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real key, base URL or mode leaks in from the machine; HOME has no ~/.dashscope."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def fake_env(fake_dashscope, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fake, with the environment pointing dashmagic at it (as a user would set it up)."""
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", fake_dashscope.base_url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", fake_dashscope.api_key)
    return fake_dashscope


@pytest.fixture
def shell() -> Iterator[object]:
    """A real InteractiveShell with dashmagic loaded; unloaded afterwards."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if not InteractiveShell.initialized():
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        InteractiveShell.instance(config=config)
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "dashmagic")
    yield ip
    ip.run_line_magic("unload_ext", "dashmagic")
    for name in [n for n in ip.user_ns if n.startswith("dm_")]:
        del ip.user_ns[name]
