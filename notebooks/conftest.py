"""nbval settings for the example notebooks (``pytest --nbval-lax notebooks/``).

The kernel nbval starts inherits this process's environment, so setting it here is enough:

* ``DASHMAGIC_MODE=replay`` (unless set already): every ``%%dashscope`` cell answers from the
  recording beside its notebook (``recordings/NN-*.jsonl``); no key, no network.
* ``DASHMAGIC_LIVE=0``: no live display updates. nbval compares only the first display of a cell
  and ignores ``update_display_data``; with live updates off that single display is the final
  trace, the same bundle the committed notebooks hold.

Run from the repository root:

    python -m pytest --nbval-lax --nbval-sanitize-with notebooks/sanitize.cfg notebooks/ -q
"""

import os

os.environ.setdefault("DASHMAGIC_MODE", "replay")
os.environ["DASHMAGIC_LIVE"] = "0"
