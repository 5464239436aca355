"""A loopback FakeDashScope in its own process whose replies are scripted over stdin.

    python benchmarks/_queue_server.py [--chunk-chars N] [--event-delay S]

Prints the base URL as its first stdout line. Then each stdin line is a JSON reply; it is
queued with ``FakeDashScope.queue_reply`` (the next generation request gets it) and ``queued``
is printed. A line ``{"__inject__": "huge_response", "size": N}`` injects that fault instead
(``FakeDashScope.inject``). EOF or SIGTERM stops the server. Used by ``streaming_cost.py`` so that the fake's
own CPU (building and JSON-encoding thousands of events) never lands in the measured process.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashmagic.testing import FakeDashScope  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-chars", type=int, default=4)
    parser.add_argument("--event-delay", type=float, default=0.0)
    parser.add_argument("--key", default="sk-test")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with FakeDashScope(api_key=args.key, event_delay=args.event_delay, chunk_chars=args.chunk_chars) as fake:
        print(fake.base_url, flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            reply = json.loads(line)
            if "__inject__" in reply:
                fake.inject(reply.pop("__inject__"), **reply)
            else:
                fake.queue_reply(reply)
            print("queued", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
