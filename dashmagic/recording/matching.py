"""Which recorded answer a request gets, and the cache that keeps answer order across cells.

Identical requests get their recorded answers in order; when those are used up, replay starts
again from the first, so re-running a notebook in the same kernel keeps working. One
:class:`Answers` is shared per set of files (:func:`shared_answers`), so that order carries from
cell to cell, until a file changes on disk or :func:`reset_replays`. Only the current version
of each set is kept: a recording that grows while it is replayed does not pile up old copies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._urls import display_url
from .fingerprint import describe, differences, fingerprint_key, loose_key, without_headers
from .store import DEMO_DIR, Exchange, Figure, Recording, Source, read_recording, source_stamp

__all__ = ["Answers", "MAX_CACHED", "cached_versions", "is_demo", "reset_replays", "shared_answers"]

#: Distinct sets of files whose answers are kept at once (each at its current version only).
MAX_CACHED = 16


@dataclass
class _Queue:
    items: list[Exchange] = field(default_factory=list)
    cursor: int = 0

    def next(self) -> Exchange:
        item = self.items[self.cursor % len(self.items)]
        self.cursor = (self.cursor + 1) % len(self.items)
        return item


def is_demo(source: str) -> bool:
    """True for a file of the bundled demo (``dashmagic/demo/*.jsonl``)."""
    try:
        return Path(source).resolve().parent == DEMO_DIR
    except (OSError, ValueError):
        return False


#: Tiers tried in order; a request takes the first tier with an answer. The loose tiers ignore
#: the body's parameters (seed, …), the system message and history: endpoint, service headers
#: (the plugins), model and the last user message's words only.
_TIERS = ("exact", "any_framing", "loose_framed", "loose")


class Answers:
    """The recorded exchanges and figures of a set of files, matched by fingerprint.

    A POST is matched exactly; then ignoring ``stream_headers`` (a recording made with the
    other framing answers too: the client reads an event stream or one JSON body alike); then
    loosely, by endpoint, service headers, model and the last user message's words (first with
    the same framing, then any). Loose matching applies to the bundled demo's exchanges always
    (it exists to answer the documented prompts however they are written: any seed, line or
    cell magic, streamed or not) and to a user's own recordings only with ``strict=False``: a
    recording of yours replays what you asked, or says what differs.
    """

    def __init__(self, recording: Recording, stream_headers: Collection[str] = ()) -> None:
        self.recording = recording
        self.stream_headers = tuple(name.lower() for name in stream_headers)
        self._lock = threading.Lock()
        # One table per tier for every exchange, and loose ones holding the demo's only.
        self._all: dict[str, dict[str, _Queue]] = {tier: defaultdict(_Queue) for tier in _TIERS}
        self._demo: dict[str, dict[str, _Queue]] = {tier: defaultdict(_Queue) for tier in _TIERS[2:]}
        for exchange in recording.exchanges:
            demo = is_demo(exchange.source)
            for tier, key in self._keys(exchange.request):
                self._all[tier][key].items.append(exchange)
                if demo and tier in self._demo:
                    self._demo[tier][key].items.append(exchange)
        self._by_url = {f.url: f for f in recording.figures}
        self._by_bare_url = {display_url(f.url): f for f in recording.figures}

    def _keys(self, fp: Mapping[str, Any]) -> list[tuple[str, str]]:
        return [
            ("exact", fingerprint_key(fp)),
            ("any_framing", fingerprint_key(without_headers(fp, self.stream_headers))),
            ("loose_framed", loose_key(fp)),
            ("loose", loose_key(fp, self.stream_headers)),
        ]


    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        return self.recording.exchanges

    def rewind(self) -> None:
        """Identical requests start again from their first recorded answer."""
        with self._lock:
            for tables in (self._all, self._demo):
                for table in tables.values():
                    for queue in table.values():
                        queue.cursor = 0

    def match(self, fp: Mapping[str, Any], *, strict: bool = True) -> Exchange | None:
        """The next recorded exchange for a fingerprint, or None.

        ``strict``: a user's recordings match exactly (framing aside); the demo's still match
        loosely. ``strict=False``: every recording matches loosely too.
        """
        keys = self._keys(fp)
        with self._lock:
            for tier, key in keys:
                # strict: the loose tiers look only at the demo's exchanges.
                table = self._demo[tier] if strict and tier in self._demo else self._all[tier]
                queue = table.get(key)
                if queue is not None and queue.items:
                    return queue.next()
        return None

    def figure(self, url: str) -> Figure | None:
        """A figure by full URL, else by the URL without its query (signatures expire)."""
        return self._by_url.get(url) or self._by_bare_url.get(display_url(url))

    def files_text(self) -> str:
        names = self.recording.sources
        shown = ", ".join(repr(n) for n in names[:3])
        return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    def miss_message(self, fp: Mapping[str, Any]) -> str:
        names = self.recording.sources
        first = names[0] if len(names) == 1 else "PATH"
        if first != "PATH" and is_demo(first):
            first = "my-recording.jsonl"  # the bundled demo is package data: never write into it
        return (
            f"No recorded exchange in {self.files_text()} matches this request: "
            f"{describe(fp, self.stream_headers)}{self._closest(fp)}. Replay never calls the service, "
            f"and the recordings hold {len(self.exchanges)} exchange(s). To add this one, run it once "
            f"with an API key while recording: '%%dashscope --record {first} …', or DASHMAGIC_MODE=record "
            f"DASHMAGIC_RECORDINGS={first}; then replay again."
        )

    def _closest(self, fp: Mapping[str, Any]) -> str:
        """Name the body fields that differ from a recording with the same headers and prompt."""
        wanted = loose_key(fp, self.stream_headers)
        for exchange in self.exchanges:
            if loose_key(exchange.request, self.stream_headers) != wanted:
                continue
            diffs = sorted(differences(exchange.request.get("body"), fp.get("body")))[:4]
            if diffs:
                return f" (a recording with the same headers and prompt differs in {', '.join(diffs)})"
        return ""


_cache: OrderedDict[tuple[Any, ...], tuple[tuple[tuple[int, int], ...], Answers]] = OrderedDict()
_cache_lock = threading.Lock()


def shared_answers(sources: Sequence[Source], stream_headers: Collection[str] = ()) -> Answers:
    """The shared :class:`Answers` for these files: rebuilt (replacing the old one) when a
    file changed on disk, so at most one version per set of files stays in memory."""
    key = (tuple(str(s) for s in sources), tuple(sorted(n.lower() for n in stream_headers)))
    stamps = tuple(source_stamp(s) for s in sources)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == stamps:
            _cache.move_to_end(key)
            return cached[1]
        _cache.pop(key, None)  # drop the stale version before loading the new one
    answers = Answers(read_recording(sources), stream_headers)
    with _cache_lock:
        _cache[key] = (stamps, answers)
        _cache.move_to_end(key)
        while len(_cache) > MAX_CACHED:
            _cache.popitem(last=False)
    return answers


def reset_replays() -> None:
    """Forget the shared answers: identical requests start again from their first answer."""
    with _cache_lock:
        _cache.clear()


def cached_versions() -> int:
    """How many sets of answers the cache holds (for tests and memory checks)."""
    with _cache_lock:
        return len(_cache)
