"""dashmagic: DashScope's plugin-calling models in Jupyter.

``import dashmagic`` is cheap: neither IPython nor requests is imported until used. The public
names below are loaded on first access (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Client",
    "run",
    "stream",
    "map",
    "to_frame",
    "build_call",
    "batch",
    "Trace",
    "DashmagicError",
    "ConfigError",
    "ApiError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "TimeoutError",
    "ProtocolError",
    "RecordingMiss",
    "Interrupted",
    "KNOWN_PLUGINS",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_LAZY = {
    "Client": "client",
    "run": "client",
    "stream": "client",
    "map": "client",
    "to_frame": "batch_map",
    "build_call": "client",
    "Trace": "trace",
    "KNOWN_PLUGINS": "_constants",
    **{name: "errors" for name in __all__ if name.endswith("Error") or name in ("RecordingMiss", "Interrupted")},
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import batch
    from .batch_map import to_frame
    from .client import Client, build_call, map, run, stream
    from .errors import *  # noqa: F403
    from ._constants import KNOWN_PLUGINS
    from .trace import Trace


#: Submodules reached as attributes (``dashmagic.batch.submit``) without importing them up front.
_SUBMODULES = frozenset({"batch"})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)  # the import binds it in globals() itself
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dashmagic' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dashmagic``: register ``%%dashscope``, ``%dashscope`` and ``%dashscope_reset``."""
    from .magic import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext dashmagic``: remove the magics and their configurable, leaving no state."""
    from .magic import unload

    unload(ipython)
