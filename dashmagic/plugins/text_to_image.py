"""``text_to_image``: prompt/size arguments → ``{"url": signed OSS url}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import Figure, NoCodeBlocks
from ._spec import PluginSpec

__all__ = ["PLUGIN", "TextToImageArgs", "TextToImageResult", "read_arguments", "read_result"]

_KNOWN = {
    "payload__input__prompt",
    "payload__input__negative_prompt",
    "payload__parameters__size",
}


@dataclass(frozen=True, slots=True)
class TextToImageArgs(NoCodeBlocks):
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


def _summary(view: TextToImageArgs) -> str:
    size = t.format_size(view.size)
    return f"{view.prompt} ({size})" if size else view.prompt


def _short_key(key: str) -> str:
    """``payload__parameters__oss_signed_url`` → ``oss_signed_url``."""
    return h.clean(key).rpartition("__")[2] or h.clean(key)


def _html_call(view: TextToImageArgs) -> str:
    rows = [("prompt", h.esc(view.prompt))]
    if view.negative_prompt:
        rows.append(("negative prompt", h.esc(view.negative_prompt)))
    if view.size:
        rows.append(("size", h.esc(h.format_size(h.clean(view.size)))))
    rows += [
        (_short_key(k), f'<span class="dm-muted">{h.esc(v)}</span>') for k, v in view.extra.items()
    ]
    return h.kv(rows)


def _text_call(view: TextToImageArgs, label: str) -> list[str]:
    lines = [f"prompt: {t.safe(view.prompt)}"]
    if view.negative_prompt:
        lines.append(f"negative prompt: {t.safe(view.negative_prompt)}")
    if view.size:
        lines.append(f"size: {t.format_size(t.safe(view.size))}")
    return [t.call_head(label), *t.indent("\n".join(lines))]


PLUGIN: PluginSpec[TextToImageArgs, TextToImageResult] = PluginSpec(
    key="text_to_image",
    read_arguments=read_arguments,
    read_result=read_result,
    call_view=TextToImageArgs,
    result_view=TextToImageResult,
    summary=_summary,
    html_call=_html_call,
    html_result=lambda view, images: "".join(h.render_figure(f, images) for f in view.figures),
    text_call=_text_call,
    text_result=lambda view, images: [t.figure_line(f, images) for f in view.figures],
)
