"""Keep the API key out of everything a server sends back. Pure.

A server may echo the key — in a 401 message, a gateway page, an answer, a growing stream, a
tool result. dashmagic never shows it: server text is scrubbed before it becomes an error
message, and every trace snapshot is scrubbed before anyone sees it, so nothing rendered, saved
in a notebook or exported can carry it. A stream that spells the key out piece by piece is
caught too: its assembled text holds the key, and a key's beginning at the end of a growing text
is masked until the rest arrives.

Snapshots share unchanged steps with the one before (see :mod:`dashmagic.events`), so the scrub
memoises by object: each event costs one pass over the steps that changed, not over the trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .config import Secret
from .errors import DashmagicError
from .trace import FrozenMap, Trace

__all__ = ["KeyScrubber", "MASK"]

MASK = "sk-…(your key, hidden)"
#: A trailing piece of the key shorter than this is not masked (it could be ordinary text).
_MIN_PREFIX = 6


class KeyScrubber:
    """Replaces the key (and its JSON-escaped form) with :data:`MASK` wherever it appears."""

    def __init__(self, key: Secret | None) -> None:
        value = key.reveal() if key is not None else ""
        self._key = value if len(value) >= 8 else ""
        self._forms = tuple(dict.fromkeys(f for f in (self._key, self._key.replace("/", "\\/")) if f))
        self._memo: dict[int, tuple[Any, Any]] = {}

    def __repr__(self) -> str:
        return "KeyScrubber(<key hidden>)"

    @property
    def active(self) -> bool:
        return bool(self._key)

    def text(self, text: str) -> str:
        """``text`` with every whole key masked, and a key's beginning at its end."""
        if not self._key:
            return text
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return self._mask_tail(text)

    def _mask_tail(self, text: str) -> str:
        key = self._key
        for size in range(min(len(key) - 1, len(text)), _MIN_PREFIX - 1, -1):
            if text.endswith(key[:size]):
                return text[: len(text) - size] + MASK
        return text

    def error(self, error: DashmagicError) -> DashmagicError:
        clean = self.text(error.message)
        if clean != error.message:
            error.message = clean
            error.args = (clean,)
        return error

    def trace(self, trace: Trace) -> Trace:
        """The snapshot with the key scrubbed from its steps, messages and notes."""
        if not self._key:
            return trace
        steps = tuple(self._value(step) for step in trace.steps)
        messages = tuple(self._value(message) for message in trace.messages)
        notes = tuple(self.text(note) for note in trace.notes)
        self._forget(steps, messages)
        if steps == trace.steps and messages == trace.messages and notes == trace.notes:
            return trace
        return trace.replace(steps=steps, messages=messages, notes=notes)

    def _forget(self, *kept: tuple[Any, ...]) -> None:
        # Remember only the current snapshot's objects (what the next one can share).
        alive = {id(item) for group in kept for item in group}
        self._memo = {k: v for k, v in self._memo.items() if id(v[1]) in alive or k in alive}

    def _value(self, value: Any) -> Any:
        memo = self._memo.get(id(value))
        if memo is not None and memo[0] is value:
            return memo[1]
        clean = _hide(value, self.text) if self._contains(value) else value
        self._memo[id(value)] = (value, clean)
        return clean

    def _contains(self, value: Any) -> bool:
        """Whether any string inside ``value`` holds the key or ends with its beginning."""
        prefix = self._key[:_MIN_PREFIX]
        return any(prefix in text for text in _strings(value))


def _strings(value: Any) -> list[str]:
    """Every string inside a step, message or view (iterative: replies may nest deeply)."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return found


def _hide(value: Any, fix: Any) -> Any:
    try:
        return _deep(value, fix)
    except RecursionError:
        # Nested too deep to copy: keep the top-level text (scrubbed) and drop the parsed parts.
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {
                f.name: fix(v) if isinstance(v, str) else None
                for f in dataclasses.fields(value)
                if f.init and (isinstance(v := getattr(value, f.name), str) or f.name in ("view", "arguments", "content"))
            }
            return dataclasses.replace(value, **changes)
        return FrozenMap({"role": "assistant", "content": MASK})


def _deep(value: Any, fix: Any) -> Any:
    """A copy of ``value`` with ``fix`` applied to every string (dataclasses stay dataclasses)."""
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, Mapping):
        return FrozenMap({fix(k) if isinstance(k, str) else k: _deep(v, fix) for k, v in value.items()})
    if isinstance(value, tuple):
        return tuple(_deep(v, fix) for v in value)
    if isinstance(value, list):
        return [_deep(v, fix) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _deep(getattr(value, f.name), fix) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value
