"""The plain-text building blocks every view uses: the generic renderer and each plugin's views.

Model and plugin text is kept verbatim except that :func:`safe` shows control characters as
``\\xNN`` and drops the query string of signed URLs; every view passes untrusted text through it.
"""

from __future__ import annotations

from typing import Any

from ..trace import Figure
from ._common import Images, clean, embeddable, format_size, image_problem, pretty_json, redact, strip_query

__all__ = [
    "INDENT",
    "Images",
    "safe",
    "indent",
    "tagged",
    "call_head",
    "figure_line",
    "clean",
    "format_size",
    "pretty_json",
    "strip_query",
]

INDENT = "    "


def safe(text: Any) -> str:
    return redact(clean(text))


def indent(text: str, prefix: str = INDENT) -> list[str]:
    return [prefix + line if line else "" for line in text.split("\n")]


def tagged(tag: str, text: str) -> list[str]:
    """``[tag] text`` on one line, or ``[tag]`` over the indented lines of a longer text."""
    text = safe(text).strip("\n")
    if "\n" not in text:
        return [f"[{tag}] {text}"]
    return [f"[{tag}]", *indent(text)]


def call_head(label: str, detail: str | None = None) -> str:
    """``[plugin call] code_interpreter (python):``, the line above a call's body."""
    extra = f" ({detail})" if detail is not None else ""
    return f"[plugin call] {label}{extra}:"


def figure_line(fig: Figure, images: Images | None) -> str:
    image = images.get(fig.url) if images else None
    state = "embedded" if embeddable(image) else image_problem(image)
    label = f"{safe(fig.alt)}: " if fig.alt else ""
    return f"[figure] {label}{strip_query(fig.url)} ({state})"
