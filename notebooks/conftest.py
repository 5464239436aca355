"""nbval settings for the example notebooks (``pytest --nbval-lax notebooks/``).

The kernel nbval starts inherits this process's environment, so setting it here is enough:

* ``DASHMAGIC_MODE=replay`` (unless set already): every ``%%dashscope`` cell answers from the
  recording beside its notebook (``recordings/NN-*.jsonl``); no key, no network.
* ``DASHMAGIC_LIVE=0``: no live display updates. nbval compares only the first display of a cell
  and ignores ``update_display_data``; with live updates off that single display is the final
  trace, the same bundle the committed notebooks hold.

nbval compares ``text/html`` and image data as strings. Each checked cell's comparison is given
outputs in the canonical form of ``tests/_semantic.py`` first (parsed HTML: tags, sorted attributes,
decoded character references, rendered whitespace; image bytes), so a new release of a library
that serialises differently (``&#39;`` vs ``'``) cannot fail a cell, while a changed word, tag,
attribute or image still does. Why a hook rather than sanitizer rules: ``sanitize.cfg`` holds
fixed regex/replace pairs, which can list a few entity spellings but cannot decode character
references in general, reorder attributes, tell a ``<pre>`` from a ``<p>`` or compare image bytes;
each new spelling would need a new rule, found only after it broke a fresh machine. The sanitizer
rules still run, after this, on the canonical text (request ids, wall time, timestamps).

Run from the repository root:

    python -m pytest --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg notebooks/ -q
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

os.environ.setdefault("DASHMAGIC_MODE", "replay")
os.environ["DASHMAGIC_LIVE"] = "0"

# tests/ is on sys.path already when both folders run; `pytest notebooks` alone needs it here.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _semantic import semantic_outputs  # noqa: E402


def _semantic(compare: Callable[..., bool]) -> Callable[..., bool]:
    @functools.wraps(compare)
    def compare_outputs(test: Any, ref: Any, skip_compare: Any = None) -> bool:
        return compare(semantic_outputs(test), semantic_outputs(ref), skip_compare)

    return compare_outputs


def pytest_itemcollected(item: pytest.Item) -> None:
    """Give every nbval cell under this folder the semantic comparison (see the docstring).

    nbval has no hook for its comparison, so the cell's own ``compare_outputs`` (nbval's method,
    whose messages and sanitizing stay as they are) is wrapped on the instance. If a future nbval
    renames it, this fails loudly instead of silently comparing bytes again.
    """
    try:
        from nbval.plugin import IPyNbCell  # type: ignore[import-untyped]
    except ImportError:  # nbval not installed: nothing collects notebooks
        return
    if isinstance(item, IPyNbCell):
        assert callable(getattr(item, "compare_outputs", None)), "nbval renamed compare_outputs"
        item.compare_outputs = _semantic(item.compare_outputs)
