"""``ocr``: ``{"imageUrl": url}`` → ``{"errMsg", "code", "success", "requestId", "content": text}``."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

__all__ = ["OcrArgs", "OcrResult", "read_arguments", "read_result"]


@dataclass(frozen=True, slots=True)
class OcrArgs:
    image_url: str


@dataclass(frozen=True, slots=True)
class OcrResult:
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
