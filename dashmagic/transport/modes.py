"""Mode selection: which session a call (or a figure fetch) goes through.

Three modes (style.md §6.3-4, vcr's vocabulary):

``live``
    a session on the process-wide connection pool.
``record``
    :class:`~dashmagic.transport.record.RecordingAdapter` sends for real and tees the response
    into a JSON Lines file while the caller streams it. Needs exactly one file.
``replay``
    :class:`~dashmagic.transport.replay.ReplayAdapter` answers from recordings and never touches
    the network. Defaults to the bundled ``demo`` recordings. Needs no key.

Every session returned here is the caller's to close (:func:`~dashmagic.transport.open_sessions`
counts the ones still open). Replay sessions over the same files share their answers, so
identical requests made from different cells get their recorded answers in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

import requests

from .._constants import MODES, Mode
from ..config import Secret
from ..errors import ConfigError
from ..recording.matching import shared_answers
from ..recording.store import Recordings, check_record_destination, resolve_recordings
from ..request import STREAM_HEADERS
from .http import mounted_session, owned_session, pooled_session
from .record import RecordingAdapter
from .replay import ReplayAdapter

__all__ = [
    "MODES",
    "Mode",
    "REPLAY_KEY_TEXT",
    "check_mode",
    "check_record_destination",
    "choose_mode",
    "image_session_for",
    "replay_key",
    "session_for",
]

#: The placeholder key of replay mode: it is never sent (replay never calls the service), and
#: lets Binder and CI run without one.
REPLAY_KEY_TEXT = "replay-mode-sends-no-key"
OnError = Callable[[str], None]


def replay_key() -> Secret:
    return Secret(REPLAY_KEY_TEXT)


def check_mode(mode: str | None) -> Mode:
    """A mode name, case-insensitively; ConfigError naming the allowed ones otherwise."""
    name = (mode or "").strip().lower()
    if name not in MODES:
        raise ConfigError(f"Unknown mode {mode!r}: use one of live, record or replay (DASHMAGIC_MODE).")
    return name  # narrowed to Mode by the membership test


def _flag_path(flag: str, value: str) -> str:
    if not value.strip():
        hint = " ('demo' for the bundled recordings)" if flag == "replay" else ""
        raise ConfigError(f"--{flag} needs a file path{hint}; got an empty one.")
    return value


def choose_mode(
    mode: str | None, recordings: Recordings, *, record: str | None = None, replay: str | None = None
) -> tuple[Mode, Recordings]:
    """The mode and recordings of a call, defaults applied.

    ``record`` / ``replay`` are the flags' paths (``None`` when not given; ``''`` is refused);
    they win over ``mode`` and ``recordings``, the settings (trait or ``DASHMAGIC_MODE`` /
    ``DASHMAGIC_RECORDINGS``; no mode means live). Replay defaults to ``"demo"``; record
    needs a file.
    """
    if record is not None and replay is not None:
        raise ConfigError("--record and --replay exclude each other: choose one.")
    if record is not None:
        return "record", _flag_path("record", record)
    if replay is not None:
        return "replay", _flag_path("replay", replay)
    name = check_mode(mode or "live")
    if name == "replay" and not recordings:
        return name, "demo"
    if name == "record" and not recordings:
        raise ConfigError("Record mode needs a file: --record PATH or DASHMAGIC_RECORDINGS=PATH.")
    return name, recordings


def _record_path(recordings: Recordings) -> Path:
    items = [os.fspath(recordings)] if isinstance(recordings, (str, os.PathLike)) else [
        os.fspath(r) for r in recordings or ()]
    if len(items) != 1:
        raise ConfigError(
            "Record mode needs exactly one file to write: pass --record PATH or set "
            f"DASHMAGIC_RECORDINGS=PATH (got {len(items)} paths)."
        )
    return check_record_destination(items[0])


def _replay_adapter(recordings: Recordings, stream_headers: Collection[str]) -> ReplayAdapter:
    if isinstance(recordings, str) and not recordings.strip():
        raise ConfigError("--replay needs a file path ('demo' for the bundled recordings); got an empty one.")
    sources = resolve_recordings(recordings)
    if not sources:
        raise ConfigError(
            "Replay mode needs recordings: pass --replay PATH (or --replay demo for the bundled ones), "
            "or set DASHMAGIC_RECORDINGS."
        )
    return ReplayAdapter(shared_answers(sources, stream_headers))


def session_for(
    mode: str,
    recordings: Recordings,
    *,
    key: Secret | None = None,
    on_error: OnError | None = None,
    stream_headers: Collection[str] = STREAM_HEADERS,
) -> requests.Session:
    """A new ``requests.Session`` for DashScope calls in ``mode``; the caller closes it.

    ``recordings``: one file for ``record`` (checked now, parent folders created); for
    ``replay`` a file, a folder, several of them, or ``"demo"``. ``key`` is only used to scrub
    the key from what is recorded; ``on_error(message)`` hears of a recording line that could
    not be written (the answer itself is kept). ``stream_headers`` are the request headers that
    only choose the reply's framing (the wire format's knowledge).
    """
    name = check_mode(mode)
    if name == "live":
        return pooled_session()
    if name == "record":
        return mounted_session(RecordingAdapter(_record_path(recordings), key, on_error=on_error))
    return mounted_session(_replay_adapter(recordings, stream_headers))


def image_session_for(
    mode: str, recordings: Recordings, key: Secret | None = None, *, on_error: OnError | None = None
) -> requests.Session:
    """A new session for the figure fetcher; the caller closes it. Never the DashScope one, so it
    never carries the key, and ``trust_env=False``: no ~/.netrc credentials, env proxies or CA
    bundles (as :func:`dashmagic.images.new_image_session`). record: fetches become ``figure``
    lines; replay: served from them."""
    name = check_mode(mode)
    if name == "live":
        return owned_session(trust_env=False)
    if name == "record":
        return mounted_session(RecordingAdapter(_record_path(recordings), key, on_error=on_error), trust_env=False)
    return mounted_session(_replay_adapter(recordings, STREAM_HEADERS), trust_env=False)
