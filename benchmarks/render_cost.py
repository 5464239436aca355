"""Is rendering linear in the size of hostile text? Time per MB from 10 kB to 10 MB, per kind.

Run: python benchmarks/render_cost.py [--sizes 10000,100000,1000000,10000000] [--runs N]
     [--kinds prose,http,...]

Each kind (``tests/_adversarial.py``) is a pattern that was quadratic somewhere in 0.1 —
``http://`` runs (URL redactor), unclosed section headers and ``![a](`` (code_interpreter result
reader, Markdown), spaces after a fence (fence reader), ``<title>`` runs (error pages), bidi
controls (Trojan-Source marking) — plus plain prose. A trace carrying the text in its thought,
code_interpreter arguments and result, answer and error message (equal shares, built by the
real ``TraceBuilder``) goes through the real ``render_html`` and ``render_text``; the client's
error-page reader (``dashmagic._text.error_page_summary``) gets the whole text.

The answer's Markdown and the code's highlighting stop past 100,000 characters per text
(``MARKDOWN_LIMIT``, ``HIGHLIGHT_LIMIT``: plain escaped text beyond), so from 500 kB per trace
the HTML cost per MB drops; ``--no-limits`` lifts both to show that markdown-it, nh3 and
Pygments are linear themselves (slow: keep ``--sizes`` at 1 MB or below).

Printed: CPU time (``time.process_time()``, median of ``--runs``) per MB of input, per size,
and the ratio of the largest size to the smallest (flat ≈ 1; a quadratic path gives ≈ the
ratio of the sizes, 1,000 from 10 kB to 10 MB). Building the trace is not timed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, median, table  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from _adversarial import KINDS, adversarial_text, adversarial_trace  # noqa: E402

import dashmagic.render.html as html_renderer  # noqa: E402
import dashmagic.render.markdown as markdown_renderer  # noqa: E402
from dashmagic._text import error_page_summary  # noqa: E402
from dashmagic.render.html import render_html  # noqa: E402
from dashmagic.render.text import render_text  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)


def _cpu(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return median(times)


def _label(size: int) -> str:
    return f"{size // 1_000_000} MB" if size >= 1_000_000 else f"{size // 1000} kB"


def measure(kinds: list[str], sizes: list[int], runs: int) -> dict[tuple[str, str], list[float]]:
    """``(kind, renderer)`` -> CPU seconds per MB at each size."""
    per_mb: dict[tuple[str, str], list[float]] = {}
    for kind in kinds:
        for size in sizes:
            trace = adversarial_trace(kind, size)
            text = adversarial_text(kind, size)
            # Fewer runs of the big sizes: one 10 MB render is already a long, stable sample.
            n = runs if size <= 1_000_000 else 1
            jobs = {
                "html": lambda: render_html(trace),
                "text": lambda: render_text(trace),
                "error page": lambda: error_page_summary(text),
            }
            for name, job in jobs.items():
                seconds = _cpu(job, n)
                per_mb.setdefault((kind, name), []).append(seconds / (size / 1_000_000))
            print(f"  {kind} {_label(size)} done", file=sys.stderr, flush=True)
    return per_mb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--no-limits", action="store_true", help="Markdown/highlight every size")
    args = parser.parse_args(argv)
    if args.no_limits:
        markdown_renderer.MARKDOWN_LIMIT = html_renderer.HIGHLIGHT_LIMIT = sys.maxsize
    # Import and build markdown-it, nh3 and Pygments before timing (first use costs ~0.1 s).
    render_html(adversarial_trace("prose", 1000))
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    started = time.perf_counter()
    per_mb = measure(kinds, sizes, args.runs)
    headers = ["kind", "renderer", *(f"ms/MB @ {_label(s)}" for s in sizes), f"{_label(sizes[-1])} ÷ {_label(sizes[0])}"]
    rows = []
    for (kind, name), values in per_mb.items():
        ratio = values[-1] / values[0] if values[0] > 0 else float("nan")
        rows.append([kind, name, *(f"{v * 1000:,.0f}" for v in values), f"{ratio:.2f}"])
    print(machine())
    limits = "no Markdown/highlight limits" if args.no_limits else "default limits"
    print(f"median of {args.runs} runs up to 1 MB, 1 run above; CPU time (process_time); {limits}")
    print()
    print(table(headers, rows, title="Render cost per MB of adversarial text"))
    print()
    print(f"wall time of the benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
