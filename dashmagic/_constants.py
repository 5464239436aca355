"""Names that several layers share and that must be importable for free (no dataclasses here:
``%load_ext`` reads them, and building dataclasses costs milliseconds)."""

from __future__ import annotations

__all__ = ["KNOWN_PLUGINS", "DEFAULT_MODEL", "DEFAULT_SYSTEM", "MODES"]

#: The six plugins DashScope documents, by their ``X-DashScope-Plugin`` header key.
KNOWN_PLUGINS: tuple[str, ...] = (
    "ocr",
    "calculator",
    "text_to_image",
    "haozhu_recommend_hotel",
    "pdf_extracter",
    "code_interpreter",
)
DEFAULT_MODEL = "qwen-plus"
DEFAULT_SYSTEM = "You are a helpful assistant."
#: Where answers come from: the service, the service while recording, or a recording.
MODES: tuple[str, ...] = ("live", "record", "replay")
