"""The seam between dashmagic and the network: ``requests`` sessions and their adapters.

The folders follow the data flow of one call:

- :mod:`.http` — send one :class:`~dashmagic.request.Call` live: the key's auth hook, timeouts,
  the process-wide connection pool, translation of requests/urllib3 errors, session counting.
- :mod:`.modes` — ``live | record | replay``: the defaults, and the session for each mode.
- :mod:`.record` — :class:`RecordingAdapter`: send for real, tee the reply into a recording.
- :mod:`.replay` — :class:`ReplayAdapter`: answer from recordings, never touch the network.

The recording format itself (fingerprints, redaction, the JSONL file) is the pure package
:mod:`dashmagic.recording`.
"""

from __future__ import annotations

from ..recording.matching import reset_replays
from .http import (
    DEFAULT_TIMEOUT,
    KeyAuth,
    Timeout,
    body_errors,
    carries_key,
    new_session,
    open_sessions,
    pooled_session,
    request,
    send,
    shared_session,
    split_timeout,
)
from .modes import (
    MODES,
    REPLAY_KEY_TEXT,
    Mode,
    check_mode,
    check_record_destination,
    choose_mode,
    image_session_for,
    replay_key,
    session_for,
)
from .record import RecordingAdapter
from .replay import ReplayAdapter

__all__ = [
    "DEFAULT_TIMEOUT",
    "MODES",
    "REPLAY_KEY_TEXT",
    "KeyAuth",
    "Mode",
    "RecordingAdapter",
    "ReplayAdapter",
    "Timeout",
    "body_errors",
    "carries_key",
    "check_mode",
    "check_record_destination",
    "choose_mode",
    "image_session_for",
    "new_session",
    "open_sessions",
    "pooled_session",
    "replay_key",
    "request",
    "reset_replays",
    "send",
    "session_for",
    "shared_session",
    "split_timeout",
]
