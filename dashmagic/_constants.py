"""Names that several layers share and that must be importable for free (no dataclasses here:
``%load_ext`` reads them, and building dataclasses costs milliseconds)."""

from __future__ import annotations

__all__ = ["PLUGIN_MODULES", "KNOWN_PLUGINS", "DEFAULT_MODEL", "DEFAULT_SYSTEM", "MODES"]

#: The one list of plugins: each ``X-DashScope-Plugin`` header key DashScope documents, with the
#: module of :mod:`dashmagic.plugins` that reads and renders it (its ``PLUGIN`` spec). The magic's
#: help, ``KNOWN_PLUGINS`` and the plugin registry all come from here; ``tests/test_plugins.py``
#: checks that every module's spec names the key it is listed under.
PLUGIN_MODULES: tuple[tuple[str, str], ...] = (
    ("ocr", "ocr"),
    ("calculator", "calculator"),
    ("text_to_image", "text_to_image"),
    ("haozhu_recommend_hotel", "hotel"),
    ("pdf_extracter", "pdf_extracter"),
    ("code_interpreter", "code_interpreter"),
)
#: The header keys, in the order the help lists them.
KNOWN_PLUGINS: tuple[str, ...] = tuple(key for key, _ in PLUGIN_MODULES)
DEFAULT_MODEL = "qwen-plus"
DEFAULT_SYSTEM = "You are a helpful assistant."
#: Where answers come from: the service, the service while recording, or a recording.
MODES: tuple[str, ...] = ("live", "record", "replay")
