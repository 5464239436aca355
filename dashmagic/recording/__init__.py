"""The recording format: what identifies a request, how secrets are kept out, the JSONL file.

Pure (no requests, no IPython): the adapters that record and replay through ``requests`` live
in :mod:`dashmagic.transport` (``record.py``, ``replay.py``), and mode selection in
:mod:`dashmagic.transport.modes`.

- :mod:`.fingerprint` — a request's identity: method, path, ``X-DashScope-*`` headers, body.
- :mod:`.redact` — the key, bearer tokens and long pieces of them never reach a file.
- :mod:`.store` — the JSON Lines file: strict reading, appending, the record destination.
- :mod:`.legacy` — format 1 files, read by upgrading their requests.
- :mod:`.matching` — which recorded answer a request gets; the per-file-set answer cache.
"""

from __future__ import annotations

from .fingerprint import VOLATILE_PARAMETERS, fingerprint, fingerprint_key
from .matching import Answers, reset_replays, shared_answers
from .redact import REDACTED, redact_chunks
from .store import (
    FORMAT_VERSION,
    Recording,
    Recordings,
    check_record_destination,
    read_recording,
    record_figure,
    resolve_recordings,
)

__all__ = [
    "FORMAT_VERSION",
    "REDACTED",
    "VOLATILE_PARAMETERS",
    "Answers",
    "Recording",
    "Recordings",
    "check_record_destination",
    "fingerprint",
    "fingerprint_key",
    "read_recording",
    "record_figure",
    "redact_chunks",
    "reset_replays",
    "resolve_recordings",
    "shared_answers",
]
