"""``python -m dashmagic.testing``: run the fake DashScope until Ctrl-C or SIGTERM.

The first stdout line is the base URL (for scripts that start it and read one line); the second
says how to point dashmagic or the dashscope SDK at it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .server import FakeDashScope

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dashmagic.testing", description="Loopback fake of DashScope.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--key", default="sk-test", help="the API key it accepts (default: sk-test)")
    parser.add_argument(
        "--event-delay",
        type=float,
        default=0.05,
        help="seconds between SSE events, so streaming is visible (default: 0.05)",
    )
    parser.add_argument("--chunk-chars", type=int, default=8, help="answer characters per SSE event (default: 8)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    fake = FakeDashScope(
        api_key=args.key,
        port=args.port,
        event_delay=args.event_delay,
        chunk_chars=args.chunk_chars,
        verbose=not args.quiet,
    )
    with fake:
        print(fake.base_url, flush=True)
        print(
            f"point dashmagic at it with: DASHSCOPE_HTTP_BASE_URL={fake.base_url} DASHSCOPE_API_KEY={fake.api_key}",
            flush=True,
        )
        # A timed wait keeps the main thread responsive to signals.
        while not done.wait(0.2):
            pass
    print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
