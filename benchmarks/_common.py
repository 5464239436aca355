"""Helpers shared by the benchmarks (not a benchmark itself).

* :class:`FakeProcess`: the loopback fake DashScope in a *separate process*, so its CPU time
  is never counted by ``time.process_time()`` in the benchmark process.
* :func:`make_shell`: a real IPython ``InteractiveShell`` with ``%load_ext dashmagic``.
* :class:`FakeKernel`: what ``dashmagic.magic._in_kernel`` looks at (``shell.kernel``).
* :func:`machine`, :func:`table`, :func:`median`: reporting.

Nothing here writes files except IPython's own profile directory, which is pointed at a
throw-away temporary directory.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "sk-test"

# IPython must never touch the developer's ~/.ipython (history, profiles).
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="dashmagic-bench-ipython-"))
# Run against this checkout even when dashmagic is not installed (python benchmarks/x.py).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class FakeProcess:
    """``python -m dashmagic.testing`` (or another server script) in a child process.

    The first stdout line of the child is its base URL. ``stdin`` stays open so a child that
    reads commands (see ``_queue_server.py``) can be scripted with :meth:`command`.
    """

    def __init__(self, argv: Sequence[str] | None = None) -> None:
        if argv is None:
            argv = ["-m", "dashmagic.testing", "--port", "0", "--quiet", "--event-delay", "0"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.close()
            raise RuntimeError(f"the fake DashScope did not start (first line: {line!r})")
        self.base_url = line

    def command(self, line: str) -> str:
        """Send one line to the child's stdin and return its one-line answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeKernel:
    """Stands in for ipykernel's kernel: live updates on, no stdin (never prompts)."""

    _allow_stdin = False


def point_env_at(base_url: str) -> None:
    """Configure dashmagic (and nothing else) through the environment, as a user would."""
    os.environ["DASHSCOPE_API_KEY"] = API_KEY
    os.environ["DASHSCOPE_HTTP_BASE_URL"] = base_url
    for name in ("DASHMAGIC_MODE", "DASHMAGIC_RECORDINGS", "DASHMAGIC_LIVE", "DASHSCOPE_API_KEY_FILE_PATH"):
        os.environ.pop(name, None)


def make_shell() -> Any:
    """The InteractiveShell singleton (``display()`` publishes through it) with dashmagic loaded."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if not InteractiveShell.initialized():
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        InteractiveShell.instance(config=config)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dashmagic")
    return shell


def magics_of(shell: Any) -> Any:
    return shell.magics_manager.registry["DashScopeMagics"]


def run_cell(shell: Any, text: str) -> None:
    """Run a cell and raise if it failed (run_cell only records the error)."""
    result = shell.run_cell(text, store_history=False)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        raise RuntimeError(f"cell failed: {error!r}")


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def spread(values: Sequence[float]) -> str:
    """min–max of the runs, to show how noisy the machine was."""
    return f"{min(values):.3g}–{max(values):.3g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (readable in a terminal, pasteable into docs)."""
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines += [title, ""]
    lines.append("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    stripped = text.replace(".", "").replace("-", "").replace("+", "").replace("×", "").replace(",", "")
    stripped = stripped.replace("%", "").replace(" ms", "").replace(" µs", "").replace("x", "").strip()
    return stripped.isdigit()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line describing where the numbers come from."""
    import dashmagic

    packages = ", ".join(
        f"{name} {_version(name)}"
        for name in ("ipython", "requests", "urllib3", "dashscope", "markdown-it-py", "nh3")
    )
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()} on "
        f"{platform.system()} {platform.release()}; dashmagic {dashmagic.__version__}; {packages}"
    )
