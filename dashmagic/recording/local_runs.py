"""The ``local_run`` line of a recording: a run of a trace's code on the recording machine. Pure.

::

    {"type": "local_run", "code_sha256": "…64 hex…", "status": "ok", "blocks": 1,
     "exit_code": 0, "stdout": "…", "stderr": "", "stdout_dropped": 0, "stderr_dropped": 0,
     "value": "…" | null, "figures": [{"name": "figure-1.png", "body_b64": "…"}],
     "files": ["out.txt (12 B)"], "duration": 0.41, "timeout": 30.0, "recorded_at": "…"}

Replay finds a run by ``code_sha256`` (see :func:`dashmagic.local_run.code_sha256`): the SHA-256
of the exact code blocks, so a run is only ever replayed for the very code it ran. Readers older
than this line ignore it (:func:`~dashmagic.recording.store.parse_recording` skips unknown types).
Lines are read strictly (a recording is untrusted): a wrong type anywhere is a one-line
:class:`~dashmagic.errors.ConfigError` naming the file and the line; a figure that is not a PNG is
kept as an error, never embedded.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..trace import FetchedImage, LocalRun
from .store import Source, _kind, _Line, _now, _parse, _read_text, append_line

__all__ = ["local_run_record", "parse_local_runs", "read_local_runs", "recorded_run", "record_local_run"]

_STATUSES = ("ok", "error", "timeout")
_SHA = re.compile(r"[0-9a-f]{64}")
_PNG = b"\x89PNG\r\n\x1a\n"


def local_run_record(run: LocalRun) -> dict[str, Any]:
    """The JSON object of one run (figures as base64; nothing of the machine but what ran)."""
    return {
        "type": "local_run",
        "code_sha256": run.code_sha256,
        "status": run.status,
        "blocks": run.blocks,
        "exit_code": run.exit_code,
        "stdout": run.stdout,
        "stderr": run.stderr,
        "stdout_dropped": run.stdout_dropped,
        "stderr_dropped": run.stderr_dropped,
        "value": run.value,
        "figures": [
            {"name": f.display_url, "body_b64": base64.b64encode(f.data).decode("ascii")} if f.data is not None
            else {"name": f.display_url, "error": f.error or "missing"}
            for f in run.figures
        ],
        "files": list(run.files),
        "duration": run.duration,
        "timeout": run.timeout,
        "recorded_at": _now(),
    }


def record_local_run(path: Path, run: LocalRun, secrets: Sequence[str]) -> None:
    """Append one ``local_run`` line (scrubbed of ``secrets``, like every line)."""
    if run.status == "refused":
        return  # nothing ran: replay refuses the same code by itself
    append_line(path, local_run_record(run), secrets)


def _int(line: _Line, value: Any, where: str, *, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        line.fail(f"{where} is {_kind(value)}, not a whole number")
    return value


def _number(line: _Line, value: Any, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1e9:
        line.fail(f"{where} is {_kind(value)}, not a number of seconds")
    return float(value)


def _figure(line: _Line, value: Any, index: int) -> FetchedImage:
    where = f"figures[{index}]"
    item = line.mapping(value, where)
    name = line.text(item.get("name"), f"{where}.name")[:100]
    image = FetchedImage(url=f"local-run:{name}", display_url=name)
    if "error" in item:
        return FetchedImage(image.url, name, error=line.text(item["error"], f"{where}.error")[:200])
    data = line.b64(line.text(item.get("body_b64"), f"{where}.body_b64"), f"{where}.body_b64")
    if not data.startswith(_PNG):
        return FetchedImage(image.url, name, error="not a PNG file")
    return FetchedImage(image.url, name, data=data, mime="image/png")


def _run(line: _Line, item: Mapping[str, Any]) -> LocalRun:
    sha = line.text(item.get("code_sha256"), "code_sha256")
    if not _SHA.fullmatch(sha):
        line.fail("code_sha256 is not 64 lowercase hex digits")
    status = line.text(item.get("status"), "status")
    if status not in _STATUSES:
        line.fail(f"status {status[:20]!r} is not one of {', '.join(_STATUSES)}")
    value = item.get("value")
    figures = item.get("figures", [])
    if not isinstance(figures, list):
        line.fail(f"figures is {_kind(figures)}, not a list")
    return LocalRun(
        code_sha256=sha,
        status=status,  # type: ignore[arg-type]  # checked against _STATUSES above
        blocks=_int(line, item.get("blocks", 0), "blocks") or 0,
        exit_code=_int(line, item.get("exit_code"), "exit_code", none=True),
        stdout=line.text(item.get("stdout", ""), "stdout"),
        stderr=line.text(item.get("stderr", ""), "stderr"),
        stdout_dropped=_int(line, item.get("stdout_dropped", 0), "stdout_dropped") or 0,
        stderr_dropped=_int(line, item.get("stderr_dropped", 0), "stderr_dropped") or 0,
        value=None if value is None else line.text(value, "value"),
        figures=tuple(_figure(line, f, i) for i, f in enumerate(figures)),
        files=tuple(line.texts(item.get("files", []), "files")),
        duration=_number(line, item.get("duration", 0), "duration"),
        timeout=_number(line, item.get("timeout", 30), "timeout"),
    )


def parse_local_runs(text: str, name: str) -> list[LocalRun]:
    """Every ``local_run`` line of one file's text, in order."""
    runs: list[LocalRun] = []
    lines = text.split("\n")
    torn = not text.endswith("\n")
    for number, raw in enumerate(lines, 1):
        # Only lines that can be local runs are parsed here (the rest is store.py's): a cheap
        # filter that no local_run line can fail, since its type is spelled out in the line.
        if "local_run" not in raw:
            continue
        line = _Line(name, number)
        item = _parse(line, raw, torn and number == len(lines))
        if isinstance(item, dict) and item.get("type") == "local_run":
            runs.append(_run(line, item))
    return runs


def read_local_runs(sources: Sequence[Source]) -> list[LocalRun]:
    runs: list[LocalRun] = []
    for source in sources:
        runs += parse_local_runs(_read_text(source), str(source))
    return runs


def recorded_run(sources: Sequence[Source], sha: str) -> LocalRun | None:
    """The first recorded run of exactly this code, or None."""
    return next((run for run in read_local_runs(sources) if run.code_sha256 == sha), None)
