"""The seven documented request/response pairs, and how a request is matched to one.

``exchanges.json`` is a transcription of the vendor page ``plugin-call-examples.txt``: the
curl ``--data-raw`` body and the documented response of each example, unchanged (a test compares
it with the page). The fake answers a request with an exchange when both the plugin set of the
``X-DashScope-Plugin`` header and the text of the last user message are equal.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "EXCHANGES_PATH",
    "FIGURE_PATH",
    "Exchange",
    "find_exchange",
    "load_exchanges",
    "prompt_text",
]

EXCHANGES_PATH = Path(__file__).with_name("exchanges.json")
FIGURE_PATH = Path(__file__).with_name("fig-001.png")


@dataclass(frozen=True)
class Exchange:
    """One documented example: its name, plugin header value, request body and response."""

    name: str
    plugins: dict[str, Any]
    request: dict[str, Any]
    response: dict[str, Any]

    @property
    def prompt(self) -> str:
        """The last user message's text, as used for matching."""
        return prompt_text(self.request) or ""


@lru_cache(maxsize=1)
def _load_raw() -> tuple[dict[str, Any], ...]:
    with EXCHANGES_PATH.open(encoding="utf-8") as fh:
        return tuple(json.load(fh))


def load_exchanges() -> list[Exchange]:
    """Fresh deep copies, so callers may mutate what they get without touching the cache."""
    return [
        Exchange(
            name=item["name"],
            plugins=copy.deepcopy(item["plugins"]),
            request=copy.deepcopy(item["request"]),
            response=copy.deepcopy(item["response"]),
        )
        for item in _load_raw()
    ]


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # List-form content (pdf_extracter): only the text parts count, files are ignored.
        parts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def prompt_text(body: Any) -> str | None:
    """Text of the last ``user`` message (or ``input.prompt``), stripped; ``None`` if absent."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return None
    inp = body["input"]
    messages = inp.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = _content_text(message.get("content"))
                return text.strip() if text is not None else None
    prompt = inp.get("prompt")
    return prompt.strip() if isinstance(prompt, str) else None


def find_exchange(exchanges: list[Exchange], plugins: dict[str, Any], prompt: str | None) -> Exchange | None:
    """The exchange with the same plugin names and prompt text, or ``None``."""
    if prompt is None:
        return None
    for exchange in exchanges:
        if set(exchange.plugins) == set(plugins) and exchange.prompt == prompt:
            return exchange
    return None
