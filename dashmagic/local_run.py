"""Run a trace's code HERE, on request only: a separate Python process, never the user's kernel.

::

    run = run_code(trace.code_blocks_text)          # -> LocalRun (frozen), or
    trace = trace.run_locally(timeout=30)           # the trace plus a LocalRun step

What a run is: ``sys.executable -I -X utf8 -c RUNNER job.json`` (isolated mode: no user site,
no ``PYTHON*`` variables, the cwd is not on ``sys.path``) in a new process group, with its cwd a
fresh temporary folder that is removed afterwards, stdin closed, ``MPLBACKEND=Agg`` and an
environment reduced to a few harmless variables (never ``DASHSCOPE_*``: the model's code must not
read the key from the environment). All blocks run in order in one namespace, like cells; the
value of the last block's last expression is kept (``repr``, capped). stdout and stderr are read
as they come and capped (:data:`MAX_OUTPUT` each; the rest is counted, not kept). At the end every
open matplotlib figure is saved as PNG (:data:`MAX_FIGURES`, :data:`MAX_FIGURE_BYTES`). Past the
timeout the whole process group is killed; it is killed at the end in any case, so nothing the
code started keeps running. This is isolation from the kernel, not a sandbox: the code can still
read and write whatever the user can (a key in a file included). It runs only when asked.

Invisible characters (bidi controls, zero-width characters: Trojan Source) make code run
differently from how it reads, so code holding any is REFUSED unless ``allow_invisible`` is
passed: the refusal is a ``LocalRun(status="refused")`` whose reason names each character and
where it is, shown in the trace before anything could run.

Modes follow the call's (``DASHMAGIC_MODE``): ``live`` runs; ``record`` runs and appends a
``local_run`` line (see :mod:`dashmagic.recording.local_runs`) keyed by the code's SHA-256;
``replay`` never runs anything: it answers from the recording line with the same hash, or raises
:class:`~dashmagic.errors.RecordingMiss` (different code never gets another code's result).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from ._constants import MODES
from .errors import ConfigError, RecordingMiss
from .render._common import INVISIBLE, invisible_name
from .trace import FetchedImage, LocalRun, Trace

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_OUTPUT",
    "MAX_FIGURES",
    "MAX_FIGURE_BYTES",
    "MAX_VALUE",
    "RUNNER",
    "Invisible",
    "code_sha256",
    "find_invisible",
    "invisible_warning",
    "joined_code",
    "run_code",
    "local_run_for",
    "run_trace",
]

DEFAULT_TIMEOUT = 30.0
#: Bytes of stdout (and, separately, of stderr) kept; the rest is counted and dropped.
MAX_OUTPUT = 256 * 1024
MAX_FIGURES = 10
MAX_FIGURE_BYTES = 2 * 1024 * 1024
#: Characters of the last expression's ``repr`` kept.
MAX_VALUE = 10_000
#: Positions a warning lists before "and N more".
_LISTED = 10
_INVISIBLE_RE = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")
_PNG = b"\x89PNG\r\n\x1a\n"
#: The only variables the child sees (with MPLBACKEND). OPENBLAS_*: this workplace sets them so
#: old OpenBLAS builds compute right; HOME: matplotlib's font cache (a fresh one costs seconds).
_KEPT_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT", "TMPDIR",
             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MPLCONFIGDIR")
#: How long the pipes may stay open after the process group is gone (a child that left the
#: group with setsid can hold them); bounded so a run always returns.
_DRAIN_SECONDS = 5.0

#: The program the child runs (``-c``): reads the job, runs each block, saves figures, writes
#: result.json beside (not inside) the code's folder. Frames of this program are cut from tracebacks.
RUNNER = r'''
import ast, json, linecache, os, sys, traceback, warnings
# Agg cannot show windows; plt.show() would warn on every run of ordinary model code.
warnings.filterwarnings("ignore", message=".*non-interactive.*")
def _run(blocks, ns):
    value = None
    for i, code in enumerate(blocks, 1):
        name = "<block %d>" % i
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        tree = ast.parse(code, name)
        last = None
        if i == len(blocks) and tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body.pop()
        exec(compile(tree, name, "exec"), ns)
        if last is not None:
            result = eval(compile(ast.Expression(last.value), name, "eval"), ns)
            if result is not None:
                value = repr(result)[:MAX_VALUE]
    return value
def _exit_code(exc):
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1
def _report(exc):
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb)
def _figures(out, limit):
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return 0, 0
    numbers = plt.get_fignums()
    saved = 0
    for number in numbers[:limit]:
        try:
            plt.figure(number).savefig(os.path.join(out, "figure-%d.png" % (saved + 1)), format="png")
            saved += 1
        except Exception as exc:
            _report(exc)
    return saved, len(numbers)
with open(sys.argv[1], encoding="utf-8") as fh:
    job = json.load(fh)
MAX_VALUE = job["max_value"]
status, value = 0, None
ns = {"__name__": "__main__", "__builtins__": __builtins__}
try:
    value = _run(job["blocks"], ns)
except SystemExit as exc:
    status = _exit_code(exc)
except BaseException as exc:
    _report(exc)
    status = 1
saved, opened = _figures(job["out"], job["max_figures"])
sys.stdout.flush()
sys.stderr.flush()
with open(os.path.join(job["out"], "result.json"), "w", encoding="utf-8") as fh:
    json.dump({"value": value, "figures": saved, "open_figures": opened}, fh)
sys.exit(status)
'''


@dataclass(frozen=True, slots=True)
class Invisible:
    """One invisible character: where it is (1-based block, line, column) and what it is."""

    block: int
    line: int
    column: int
    char: str

    @property
    def name(self) -> str:
        return invisible_name(self.char)


def joined_code(blocks: Sequence[str]) -> str:
    """All blocks as one cell's text, in order, separated by a blank line."""
    return "\n\n".join(block.rstrip("\n") for block in blocks) + ("\n" if blocks else "")


def code_sha256(blocks: Sequence[str]) -> str:
    """The identity of what runs: every block, exactly (a recording's local run is found by it)."""
    import hashlib

    data = json.dumps(list(blocks), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def find_invisible(blocks: Sequence[str]) -> tuple[Invisible, ...]:
    """Every bidi control and invisible format character, with its position. Linear."""
    found: list[Invisible] = []
    for number, code in enumerate(blocks, 1):
        line, line_start, previous = 1, 0, 0
        for match in _INVISIBLE_RE.finditer(code):
            pos = match.start()
            # Newlines are counted only between consecutive matches: one pass over the text.
            breaks = code.count("\n", previous, pos)
            if breaks:
                line += breaks
                line_start = code.rfind("\n", previous, pos) + 1
            previous = pos
            found.append(Invisible(number, line, pos - line_start + 1, match.group()))
    return tuple(found)


def invisible_warning(blocks: Sequence[str]) -> str | None:
    """One line naming the invisible characters and where they are, or None when there are none."""
    found = find_invisible(blocks)
    if not found:
        return None
    names = ", ".join(dict.fromkeys(item.name for item in found))
    several = len(blocks) > 1
    places = [
        (f"block {item.block} " if several else "") + f"line {item.line} col {item.column}" for item in found[:_LISTED]
    ]
    more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
    count = f"{len(found)} invisible character{'s' if len(found) != 1 else ''}"
    return (f"the code holds {count} ({names}) at {', '.join(places)}{more}: "
            "it may not run the way it reads.")


# -- running -------------------------------------------------------------------------------


class _Capped:
    """Drains one pipe in a thread: keeps the first ``cap`` bytes, counts the rest."""

    def __init__(self, pipe: IO[bytes], cap: int) -> None:
        self.pipe, self.cap = pipe, cap
        self.head = bytearray()
        self.dropped = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            room = self.cap - len(self.head)
            if room > 0:
                self.head += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))

    def text(self) -> str:
        text = bytes(self.head).decode("utf-8", "replace")
        # A cut can fall inside a character: its first bytes are not shown as U+FFFD.
        return text.rstrip("\ufffd") if self.dropped else text


def _child_env(environ: Mapping[str, str]) -> dict[str, str]:
    env = {name: environ[name] for name in _KEPT_ENV if name in environ}
    env["MPLBACKEND"] = "Agg"
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the run's whole process group (it was started as its own session)."""
    if os.name == "posix":
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif proc.poll() is None:  # pragma: no cover - not POSIX
        proc.kill()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """True when the run had to be killed at the timeout."""
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.wait()
        return True


def _spawn(python: str, job: Path, work: Path, environ: Mapping[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [python, "-I", "-X", "utf8", "-c", RUNNER, str(job)],
        cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_child_env(environ), start_new_session=(os.name == "posix"),
    )


def _finish(readers: Sequence[_Capped]) -> None:
    deadline = time.monotonic() + _DRAIN_SECONDS
    for reader in readers:
        reader.thread.join(max(0.0, deadline - time.monotonic()))
        reader.pipe.close()


def _figure(path: Path, number: int, max_bytes: int, budget: int) -> tuple[FetchedImage, int]:
    """One saved figure (the child may have written anything there: sniffed, capped)."""
    name = f"figure-{number}.png"
    image = FetchedImage(url=f"local-run:{name}", display_url=name)
    size = path.stat().st_size
    if size > min(max_bytes, budget):
        return replace(image, error=f"{size} bytes, over the {min(max_bytes, budget)}-byte cap"), 0
    data = path.read_bytes()
    if not data.startswith(_PNG):
        return replace(image, error="not a PNG file"), 0
    return replace(image, data=data, mime="image/png"), len(data)


def _figures(out: Path, count: int, max_figures: int, max_bytes: int) -> tuple[FetchedImage, ...]:
    images: list[FetchedImage] = []
    budget = 4 * max_bytes
    for number in range(1, min(count, max_figures) + 1):
        path = out / f"figure-{number}.png"
        if path.is_file():
            image, used = _figure(path, number, max_bytes, budget)
            budget -= used
            images.append(image)
    return tuple(images)


def _result(out: Path) -> dict[str, Any]:
    path = out / "result.json"
    try:
        if path.stat().st_size > 4 * MAX_VALUE + 1024:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # killed before it was written (timeout), or overwritten by the code
    return data if isinstance(data, dict) else {}


def _left_files(work: Path, limit: int = 50) -> tuple[str, ...]:
    """What the code left in its folder (bounded walk; sizes in bytes)."""
    listed: list[str] = []
    for seen, path in enumerate(sorted(work.rglob("*"))):
        if seen >= 1000 or len(listed) >= limit:
            listed.append("…")
            break
        if path.is_file() and not path.is_symlink():
            listed.append(f"{path.relative_to(work).as_posix()} ({path.stat().st_size} B)")
    return tuple(listed)


def _remove(root: Path) -> None:
    def force(func: Callable[..., Any], path: str, _exc: Any) -> None:
        # The code may have made a folder read-only; allow the owner to delete, then retry once.
        try:
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    shutil.rmtree(root, onerror=force)


def _refusal(blocks: Sequence[str], allow_invisible: bool, timeout: float) -> LocalRun | None:
    sha = code_sha256(blocks)
    if not blocks:
        return LocalRun(sha, "refused", timeout=timeout, reason="The trace holds no code to run.")
    warning = invisible_warning(blocks)
    if warning is not None and not allow_invisible:
        reason = (f"Not run: {warning} Read it with the characters marked (the code view above), then "
                  "run again with --allow-invisible (allow_invisible=True) if it is what you want.")
        return LocalRun(sha, "refused", blocks=len(blocks), timeout=timeout, reason=reason)
    return None


def run_code(
    blocks: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    allow_invisible: bool = False,
    max_output: int = MAX_OUTPUT,
    max_figures: int = MAX_FIGURES,
    max_figure_bytes: int = MAX_FIGURE_BYTES,
    python: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> LocalRun:
    """Run ``blocks`` in a separate, isolated Python process; see the module docstring."""
    blocks = tuple(blocks)
    if not (timeout > 0):
        raise ConfigError(f"The local run's timeout must be a positive number of seconds, got {timeout!r}.")
    refused = _refusal(blocks, allow_invisible, timeout)
    if refused is not None:
        return refused
    root = Path(tempfile.mkdtemp(prefix="dashmagic-run-"))
    try:
        work, out = root / "work", root / "out"
        work.mkdir()
        out.mkdir()
        job = root / "job.json"
        job.write_text(json.dumps({"blocks": list(blocks), "out": str(out), "max_figures": max_figures,
                                   "max_value": MAX_VALUE}), encoding="utf-8")
        started = time.monotonic()
        proc = _spawn(python or sys.executable, job, work, os.environ if environ is None else environ)
        assert proc.stdout is not None and proc.stderr is not None
        readers = (_Capped(proc.stdout, max_output), _Capped(proc.stderr, max_output))
        try:
            timed_out = _wait(proc, timeout)
        finally:
            _kill_group(proc)  # also on Ctrl-C, and whatever the code left running in the background
            _finish(readers)
        duration = time.monotonic() - started
        result = _result(out)
        value = result.get("value")
        return LocalRun(
            code_sha256=code_sha256(blocks),
            status="timeout" if timed_out else ("ok" if proc.returncode == 0 else "error"),
            blocks=len(blocks),
            exit_code=proc.returncode,
            stdout=readers[0].text(), stderr=readers[1].text(),
            stdout_dropped=readers[0].dropped, stderr_dropped=readers[1].dropped,
            value=value[:MAX_VALUE] if isinstance(value, str) else None,
            figures=_figures(out, _count(result.get("figures")), max_figures, max_figure_bytes),
            files=_left_files(work), duration=round(duration, 3), timeout=timeout, reason=_allowed(blocks),
        )
    finally:
        _remove(root)


def _allowed(blocks: Sequence[str]) -> str:
    warning = invisible_warning(blocks)
    return f"Run with --allow-invisible although {warning}" if warning else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# -- modes ----------------------------------------------------------------------------------


def _mode(mode: str | None, recordings: Any, environ: Mapping[str, str]) -> tuple[str, Any]:
    name = (mode or environ.get("DASHMAGIC_MODE") or "live").strip().lower()
    if name not in MODES:
        raise ConfigError(f"Unknown mode {name!r}: use one of {', '.join(MODES)} (DASHMAGIC_MODE).")
    chosen = recordings if recordings is not None else (environ.get("DASHMAGIC_RECORDINGS") or None)
    if name == "replay" and chosen is None:
        chosen = "demo"
    return name, chosen


def _scrubbed(run: LocalRun, scrub: Callable[[str], str] | None) -> LocalRun:
    if scrub is None:
        return run
    value = None if run.value is None else scrub(run.value)
    return replace(run, stdout=scrub(run.stdout), stderr=scrub(run.stderr), value=value)


def local_run_for(
    blocks: Sequence[str],
    *,
    mode: str | None = None,
    recordings: Any = None,
    timeout: float = DEFAULT_TIMEOUT,
    allow_invisible: bool = False,
    scrub: Callable[[str], str] | None = None,
    secrets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    **limits: Any,
) -> LocalRun:
    """A local run as the mode says: run (live), run and append it (record), or read it (replay).

    ``scrub`` masks the key in what the code printed; ``secrets`` are kept out of a recording.
    """
    from .recording.local_runs import record_local_run, recorded_run
    from .recording.store import check_record_destination, resolve_recordings

    env = os.environ if environ is None else environ
    name, files = _mode(mode, recordings, env)
    refused = _refusal(tuple(blocks), allow_invisible, timeout)
    if refused is not None:
        return refused  # decided before any mode: replay and live refuse the same code
    if name == "replay":
        sources = resolve_recordings(files)
        sha = code_sha256(blocks)
        found = recorded_run(sources, sha)
        if found is None:
            raise RecordingMiss(
                f"No local run of this code (sha256 {sha[:12]}…) is recorded in "
                f"{', '.join(str(s) for s in sources) or 'the recordings'}; replay never runs code. "
                "Record it once (--record PATH, or DASHMAGIC_MODE=record), or run live."
            )
        return replace(found, replayed=True)
    target = check_record_destination(files) if name == "record" else None
    run = _scrubbed(run_code(blocks, timeout=timeout, allow_invisible=allow_invisible, environ=env, **limits), scrub)
    if target is not None:
        record_local_run(target, run, secrets)
    return run


def run_trace(trace: Trace, **options: Any) -> Trace:
    """``trace`` plus a :class:`LocalRun` step for its code blocks (see :func:`local_run_for`)."""
    run = local_run_for([block.code for block in trace.code_blocks], **options)
    return trace.replace(steps=(*trace.steps, run))
