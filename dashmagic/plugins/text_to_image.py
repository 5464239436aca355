"""``text_to_image``: prompt/size arguments → ``{"url": signed OSS url}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any

from ..trace import Figure

__all__ = ["TextToImageArgs", "TextToImageResult", "read_arguments", "read_result"]

_KNOWN = {
    "payload__input__prompt",
    "payload__input__negative_prompt",
    "payload__parameters__size",
}


@dataclass(frozen=True, slots=True)
class TextToImageArgs:
    prompt: str
    negative_prompt: str = ""
    size: str = ""
    #: Any other argument the model sent (e.g. ``payload__parameters__oss_signed_url``).
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class TextToImageResult:
    figures: tuple[Figure, ...]


def read_arguments(raw: str, parsed: Any) -> TextToImageArgs | None:
    if not isinstance(parsed, Mapping) or "payload__input__prompt" not in parsed:
        return None
    return TextToImageArgs(
        prompt=str(parsed["payload__input__prompt"]),
        negative_prompt=str(parsed.get("payload__input__negative_prompt") or ""),
        # "512*512" on the wire; shown as 512×512 by renderers.
        size=str(parsed.get("payload__parameters__size") or ""),
        extra=MappingProxyType({k: v for k, v in parsed.items() if k not in _KNOWN}),
    )


def read_result(raw: str, parsed: Any) -> TextToImageResult | None:
    if isinstance(parsed, Mapping) and isinstance(parsed.get("url"), str):
        return TextToImageResult((Figure(url=parsed["url"], alt="text_to_image"),))
    return None
