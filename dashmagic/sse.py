"""Server-sent events: byte chunks in, events out, incrementally.

The shape follows openai-python's ``_SSELineDecoder``/``SSEDecoder`` (itself adapted from
httpx-sse), rewritten to the WHATWG spec: lines end in ``\\n``, ``\\r`` or ``\\r\\n`` (a ``\\r``
at the end of a chunk may be the first half of ``\\r\\n``, so it is held back); ``field:value``
with at most one space removed after the colon (DashScope sends none: ``event:result``);
lines starting with ``:`` are comments (DashScope's ``:HTTP_STATUS/200``, whose code we keep
because the SDK ignores it and a mid-stream error would otherwise lose its status); a blank
line dispatches the event.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from collections.abc import Iterable, Iterator

from .errors import ProtocolError

__all__ = ["ServerSentEvent", "SSEDecoder", "iter_events", "DEFAULT_MAX_EVENT_CHARS"]

#: The longest line or event accepted: DashScope's biggest snapshot events are a few hundred kB;
#: a server that sends one 300 MB line must not make the client buffer it whole.
DEFAULT_MAX_EVENT_CHARS = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    #: From a ``:HTTP_STATUS/NNN`` comment or a ``status:NNN`` line, when present.
    status: int | None = None


class SSEDecoder:
    """Feed bytes with :meth:`feed`; collect complete events; call :meth:`close` at EOF.

    ``pending`` tells whether an event was started but never finished by a blank line,
    which is how a stream cut in the middle of an event is detected.
    """

    def __init__(self, *, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        self.max_event_chars = max_event_chars
        # errors="strict": invalid UTF-8 must surface as a ProtocolError, not as U+FFFD text.
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        # The unfinished line, as pieces: joining on every chunk would make one long line
        # (a 10 MB answer in a single data: field) quadratic in its length.
        self._pieces: list[str] = []
        self._held_cr = False
        self._reset_event()
        self.last_id: str | None = None

    def _reset_event(self) -> None:
        self._held = 0  # characters of this event so far (data and unfinished line): a cap, not a count
        self._event = ""
        self._data: list[str] = []
        self._status: int | None = None
        self._retry: int | None = None
        self._id: str | None = None
        self._fields = False

    @property
    def pending(self) -> bool:
        return self._fields or bool(self._pieces)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode a chunk of bytes; return the events it completed. Raises UnicodeDecodeError."""
        return self._feed_text(self._utf8.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """End of stream: flush a final line; an event without its blank line is dropped."""
        text = self._utf8.decode(b"", final=True)
        if self._held_cr:  # a lone \r at EOF is a line ending, not half of \r\n
            self._held_cr = False
            text = "\r" + text + "\n"
        events = self._feed_text(text)
        if self._pieces:
            rest = "".join(self._pieces)
            self._pieces = []
            events.extend(self._line(rest))
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if self._held_cr:
            text = "\r" + text
            self._held_cr = False
        if text.endswith("\r"):
            # Maybe the first half of \r\n: decide when the next chunk arrives.
            text, self._held_cr = text[:-1], True
        events: list[ServerSentEvent] = []
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) == 1:  # no line break in this chunk: only scan the new text, keep the piece
            self._pieces.append(lines[0])
            self._hold(len(lines[0]))
            return events
        lines[0] = "".join(self._pieces) + lines[0]
        tail = lines.pop()
        self._pieces = [tail] if tail else []
        for line in lines:
            events.extend(self._line(line))
        self._hold(len(tail))
        return events

    def _hold(self, chars: int) -> None:
        self._held += chars
        if self._held > self.max_event_chars:
            raise ProtocolError(
                f"DashScope sent one event longer than {self.max_event_chars:,} characters; dashmagic "
                "stopped reading it (the events before it are kept)."
            )

    def _line(self, line: str) -> list[ServerSentEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            comment = line[1:]
            if comment.startswith("HTTP_STATUS/"):
                self._status = _int_or_none(comment[len("HTTP_STATUS/") :])
                self._fields = True
            return []
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        self._fields = True
        if name == "data":
            self._data.append(value)
            self._hold(len(value))
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            self._retry = _int_or_none(value)
        elif name == "status":
            self._status = _int_or_none(value)
        return []

    def _dispatch(self) -> list[ServerSentEvent]:
        if not self._fields:
            return []
        if self._id is not None:
            self.last_id = self._id
        event = ServerSentEvent(
            event=self._event or "message",
            data="\n".join(self._data),
            id=self._id,
            retry=self._retry,
            status=self._status,
        )
        self._reset_event()
        # Per spec an event with no data is not dispatched; DashScope never sends one, but a
        # stray "id:" block must not become a phantom result.
        return [event] if event.data or event.event == "error" else []


def _int_or_none(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode a whole iterable of chunks (tests, replay)."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()
