"""The seven documented exchanges (seed/plugin-call-examples.txt) as real Trace objects.

Built from the package's transcription of the vendor page (``dashmagic.testing``) by the real
``TraceBuilder``, so the renderers are tested on exactly the traces users get.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dashmagic.events import TraceBuilder
from dashmagic.testing import load_exchanges
from dashmagic.trace import RequestInfo, Trace, Usage

OCR_IMAGE = "https://dashscope.oss-cn-beijing.aliyuncs.com/samples/plugin/20231124161643.jpg"
T2I_URL = (
    "http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/44/20231121/ps_a74ad35c/"
    "43241cb2-bba0-9323-abee-55e7d91cf44e.png?Expires=1700623514&OSSAccessKeyId="
    "LTAI5tGx7yvUcG32Vzcw****&Signature=xnj%2B8uv%2B5Ur46tbYPWGrbIQ49Zk%3D"
)
PLOT_URL = (
    "https://dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com/code-interpreter/temp_files/"
    "code-output-20231121-033437.859289.png?OSSAccessKeyId=LTAI5tKHB4j1Cmo6kRtd****"
    "&Expires=1700539477&Signature=cjWRl7y%2FKyJiyLgCf2fUk9uZV8A%3D"
)
PDF_URL = "https://qianwen-res.oss-cn-beijing.aliyuncs.com/QWEN_TECHNICAL_REPORT.pdf"

#: The seed names the renderer tests use, mapped to the transcription in dashmagic.testing.
_NAMES = {
    "ocr": "ocr",
    "calculator": "calculator",
    "text_to_image": "text_to_image",
    "hotel": "hotel",
    "pdf_extracter": "pdf_extracter",
    "code_equations": "code_interpreter_equation",
    "code_plot": "code_interpreter_plot",
}
_EXCHANGES = {e.name: e for e in load_exchanges()}
SEED_NAMES: tuple[str, ...] = tuple(_NAMES)


def seed_trace(name: str, **changes: Any) -> Trace:
    """The documented exchange ``name`` as a complete trace, built by the real event layer.

    Wall time is pinned to 1.2 s and ``usage.plugins`` is filled in from the calls (the seed's
    usage omits it), so footers are deterministic and show plugin counts.
    """
    exchange = _EXCHANGES[_NAMES[name]]
    content = exchange.request["input"]["messages"][-1]["content"]
    prompt = content if isinstance(content, str) else content[0]["text"]
    files = () if isinstance(content, str) else tuple(p["file"] for p in content if "file" in p)
    builder = TraceBuilder(RequestInfo(model="qwen-plus", plugins=tuple(exchange.plugins), prompt=prompt, files=files))
    builder.feed(exchange.response)
    trace = builder.finish()
    counts: dict[str, int] = {}
    for call in trace.plugin_calls:
        counts[call.plugin] = counts.get(call.plugin, 0) + 1
    usage = Usage(trace.usage.input_tokens, trace.usage.output_tokens, trace.usage.total_tokens, MappingProxyType(counts))
    trace = trace.replace(elapsed=1.2, usage=usage)
    return trace.replace(**changes) if changes else trace


def all_seed_traces() -> dict[str, Trace]:
    return {name: seed_trace(name) for name in SEED_NAMES}


# -- images -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeFetched:
    """Same attributes as dashmagic.images.FetchedImage (the renderer duck-types it)."""

    data: bytes | None
    mime: str | None
    error: str | None
    display_url: str


def png_bytes(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A real, valid RGB PNG built with zlib/struct (no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    def pixel(x: int, y: int) -> bytes:
        return bytes(rgb if (x // 4 + y // 4) % 2 else (250, 250, 250))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def fetched(url: str, data: bytes | None = None, mime: str | None = "image/png", error: str | None = None) -> FakeFetched:
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    return FakeFetched(data, mime if data else None, error, urlunsplit((p.scheme, p.netloc, p.path, "", "")))
