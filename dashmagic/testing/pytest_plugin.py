"""Pytest fixtures for the fake DashScope.

Enable with ``pytest_plugins = ["dashmagic.testing.pytest_plugin"]`` in a conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import FakeDashScope

__all__ = ["fake_dashscope"]


@pytest.fixture
def fake_dashscope() -> Iterator[FakeDashScope]:
    """A started :class:`FakeDashScope` (key ``sk-test``), stopped after the test."""
    with FakeDashScope(api_key="sk-test") as fake:
        yield fake
