"""A faithful loopback fake of DashScope's text-generation API (the seed's plugin generation and
today's built-in tools), for tests and demos.

    from dashmagic.testing import FakeDashScope
    with FakeDashScope(api_key="sk-test") as fake:
        ...  # DASHSCOPE_HTTP_BASE_URL = fake.base_url

Standard library only (``python -m dashmagic.testing`` needs nothing else); pytest fixtures live
in :mod:`dashmagic.testing.pytest_plugin`, the figure generator in
:mod:`dashmagic.testing.make_figures` (needs matplotlib). Importing this package is cheap.
"""

from __future__ import annotations

from .exchanges import EXCHANGES_PATH, FIGURE_PATH, Exchange, find_exchange, load_exchanges, prompt_text
from .faults import Fault, InjectedFault
from .oss import PLOT_OSS_PATH, TEXT_TO_IMAGE_OSS_PATH, rewrite_signed_urls
from .server import (
    DOCUMENTED_PLUGINS,
    GENERATION_PATH,
    GENERATION_PATHS,
    MULTIMODAL_PATH,
    FakeDashScope,
    RecordedRequest,
    ServedFile,
)
from .sse import SSEFrame, encode_json, format_event, parse_sse, sse_events

__all__ = [
    "DOCUMENTED_PLUGINS",
    "EXCHANGES_PATH",
    "FIGURE_PATH",
    "GENERATION_PATH",
    "GENERATION_PATHS",
    "MULTIMODAL_PATH",
    "PLOT_OSS_PATH",
    "TEXT_TO_IMAGE_OSS_PATH",
    "Exchange",
    "FakeDashScope",
    "Fault",
    "InjectedFault",
    "RecordedRequest",
    "SSEFrame",
    "ServedFile",
    "encode_json",
    "find_exchange",
    "format_event",
    "load_exchanges",
    "parse_sse",
    "prompt_text",
    "rewrite_signed_urls",
    "sse_events",
]
