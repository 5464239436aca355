"""Names that several layers share and that must be importable for free (no dataclasses here:
``%load_ext`` reads them, and building dataclasses costs milliseconds)."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["PLUGIN_MODULES", "KNOWN_PLUGINS", "DEFAULT_MODEL", "DEFAULT_SYSTEM", "Mode", "MODES", "DEFAULT_IMAGE_HOSTS"]

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
Mode = Literal["live", "record", "replay"]
MODES: tuple[Mode, ...] = get_args(Mode)

#: The OSS buckets DashScope itself writes plugin output to, the only hosts fetched by default.
#: Both appear in the vendor's plugin page (seed/plugin-call-examples.txt), dashmagic/demo/seed.jsonl,
#: every notebooks/recordings/*.jsonl and dashmagic/testing/exchanges.json. ``.aliyuncs.com`` is
#: not enough: any customer's bucket lives there. Entries are exact hosts (any port); a leading
#: dot would mean "any subdomain of".
DEFAULT_IMAGE_HOSTS: tuple[str, ...] = (
    "dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com",  # code_interpreter figures (https)
    "dashscope-result-bj.oss-cn-beijing.aliyuncs.com",  # text_to_image pictures (linked as http)
)
