"""The seven documented exchanges, as the tests read them (from the package's transcription)."""

from __future__ import annotations

from dashmagic.testing import Exchange, load_exchanges

EXCHANGES: list[Exchange] = load_exchanges()
BY_NAME: dict[str, Exchange] = {e.name: e for e in EXCHANGES}
NAMES: list[str] = [e.name for e in EXCHANGES]


def user_prompt(exchange: Exchange) -> str:
    """The user's text of an exchange (the text part for list-form content)."""
    content = exchange.request["input"]["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def files(exchange: Exchange) -> tuple[str, ...]:
    content = exchange.request["input"]["messages"][-1]["content"]
    return () if isinstance(content, str) else tuple(p["file"] for p in content if "file" in p)
