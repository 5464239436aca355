"""Bytes per notebook output for the seven seed exchanges: HTML (its stylesheet apart) and text.

Run: python benchmarks/output_bytes.py [--baseline-css BYTES]

Each documented exchange (``dashmagic.testing``'s transcription of the vendor page) goes through
the real ``TraceBuilder`` and the real ``mimebundle``; figures are not fetched, so the numbers
are the markup's, not a PNG's. Printed per exchange: UTF-8 bytes of ``text/html`` (all of it,
then the ``<style>`` element alone, then the rest), of ``text/plain``, and the output's total as
it sits in the ``.ipynb`` (both mime types). A streamed cell re-sends the whole bundle on every
display update, so these are also the bytes of each update.

``--baseline-css`` (the stylesheet's size before a change) adds the saving per output.
"""

from __future__ import annotations

import argparse
import re
import sys

from _common import ROOT, table

sys.path.insert(0, str(ROOT / "tests"))  # the seed traces live with the renderer tests

from _render_seed import SEED_NAMES, seed_trace  # noqa: E402

from dashmagic.render import mimebundle  # noqa: E402

_STYLE = re.compile(r"<style>.*?</style>", re.S)


def measure(name: str) -> tuple[int, int, int, int]:
    """(html, style, text, total) UTF-8 bytes of one seed exchange's output."""
    bundle = mimebundle(seed_trace(name))
    html = bundle["text/html"].encode()
    style = sum(len(m.group().encode()) for m in _STYLE.finditer(bundle["text/html"]))
    text = bundle["text/plain"].encode()
    return len(html), style, len(text), len(html) + len(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--baseline-css", type=int, default=0, help="stylesheet bytes before")
    args = parser.parse_args(argv)
    rows, totals = [], [0, 0, 0, 0]
    for name in SEED_NAMES:
        html, style, text, total = measure(name)
        rows.append([name, html, style, html - style, text, total])
        totals = [a + b for a, b in zip(totals, (html, style, text, total))]
    n = len(SEED_NAMES)
    rows.append(["mean", *(round(v / n) for v in (totals[0], totals[1], totals[0] - totals[1], totals[2], totals[3]))])
    headers = ["exchange", "text/html B", "of which <style> B", "markup B", "text/plain B", "output B"]
    print(table(headers, rows, title="Bytes per output (seed exchanges, figures not fetched)"))
    if args.baseline_css:
        saved = args.baseline_css - totals[1] / n
        print(f"\nstylesheet: {args.baseline_css} B before, {totals[1] / n:.0f} B now; "
              f"{saved:.0f} B saved per output and per streamed update")


if __name__ == "__main__":
    main()
