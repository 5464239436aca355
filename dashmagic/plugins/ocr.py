"""``ocr``: ``{"imageUrl": url}`` → ``{"errMsg", "code", "success", "requestId", "content": text}``."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import NoCodeBlocks, NoFigures
from ._spec import PluginSpec

__all__ = ["PLUGIN", "OcrArgs", "OcrResult", "read_arguments", "read_result"]


@dataclass(frozen=True, slots=True)
class OcrArgs(NoCodeBlocks):
    image_url: str


@dataclass(frozen=True, slots=True)
class OcrResult(NoFigures):
    text: str
    success: bool | None = None
    code: Any = None
    error_message: str | None = None


def read_arguments(raw: str, parsed: Any) -> OcrArgs | None:
    if isinstance(parsed, Mapping) and parsed.get("imageUrl"):
        return OcrArgs(str(parsed["imageUrl"]))
    return None


def read_result(raw: str, parsed: Any) -> OcrResult | None:
    if not isinstance(parsed, Mapping):
        return None
    success = parsed.get("success")
    return OcrResult(
        text=str(parsed.get("content") or "").strip(),
        success=bool(success) if success is not None else None,
        code=parsed.get("code"),
        error_message=parsed.get("errMsg") or None,
    )


def _html_result(view: OcrResult, images: h.Images | None) -> str:
    parts = []
    if view.error_message or view.success is False:
        parts.append(h.badge("fail", f"OCR failed: {h.clean(view.error_message or 'no text')}"))
    if view.text:
        parts.append(f'<div class="dm-text">{h.esc(view.text)}</div>')
    return "".join(parts) or '<div class="dm-muted">(no text recognised)</div>'


def _text_result(view: OcrResult, images: t.Images | None) -> list[str]:
    lines = t.safe(view.text).split("\n") if view.text else []
    if view.error_message or view.success is False:
        lines.append(f"(OCR failed: {t.safe(view.error_message or 'no text')})")
    return lines


PLUGIN: PluginSpec[OcrArgs, OcrResult] = PluginSpec(
    key="ocr",
    read_arguments=read_arguments,
    read_result=read_result,
    call_view=OcrArgs,
    result_view=OcrResult,
    summary=lambda view: t.strip_query(view.image_url),
    html_call=lambda view: h.kv([("image", h.link(view.image_url))]),
    html_result=_html_result,
    text_result=_text_result,
)
