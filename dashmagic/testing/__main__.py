"""``python -m dashmagic.testing``: run the fake DashScope until Ctrl-C or SIGTERM.

The first stdout line is the base URL (for scripts that start it and read one line); the second
says how to point dashmagic or the dashscope SDK at it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from .server import FakeDashScope

__all__ = ["main"]


def _ranged(kind: type, low: float, high: float, what: str) -> Callable[[str], Any]:
    """An argparse type: a number in [low, high]; argparse turns the ValueError into one line."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not (low <= value <= high) or value != value:  # value != value: NaN
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: {what} from {low:g} to {high:g}")
        return value

    return parse


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m dashmagic.testing", description="Loopback fake of DashScope.")
    parser.add_argument("--port", type=_ranged(int, 0, 65535, "a port number"), default=0,
                        help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--key", default="sk-test", help="the API key it accepts (default: sk-test)")
    parser.add_argument(
        "--event-delay",
        type=_ranged(float, 0, 60, "seconds"),
        default=0.05,
        help="seconds between SSE events, so streaming is visible (default: 0.05)",
    )
    parser.add_argument("--chunk-chars", type=_ranged(int, 1, 1_000_000, "a number of characters"), default=8,
                        help="answer characters per SSE event (default: 8)")
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
    try:
        fake.start()
    except OSError as exc:  # port in use, or not ours to bind
        print(f"python -m dashmagic.testing: cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
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
