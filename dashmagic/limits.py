"""One rate limiter shared by every thread of a Client: requests and tokens per minute, AIMD on 429.

DashScope limits each account per model in requests per minute (RPM) and tokens per minute
(TPM), enforced over short windows, and answers 429 ``Throttling.RateQuota`` above them. A
batch of many prompts must therefore pace itself instead of sending and retrying:

* requests are paced by reservation (GCRA): each call books the next free slot at the current
  rate, so threads are served in order and never wake up together (no thundering herd); only a
  small burst (``burst_seconds`` of the rate) may go at once;
* tokens are a bucket that may go into debt: a call is admitted while the bucket is not
  negative and then takes its estimated cost, so a prompt larger than a second's worth of tokens
  still goes (once), and the estimate is corrected with the real usage afterwards;
* on 429 every thread pauses until ``Retry-After`` (or a short backoff) has passed, and the
  allowed rate is halved, at most once per second (one storm is one cut, not one per thread);
  each success adds back 2 % of the configured rate (additive increase), so the rate recovers
  over ~50 calls: multiplicative decrease, additive increase, never a retry storm.

DashScope's documented per-model defaults are not in the project's docs; the defaults here
(:data:`DEFAULT_RPM`, :data:`DEFAULT_TPM`) are chosen to sit below what a standard account is
given for qwen-plus, and AIMD finds the real ceiling from the 429s. Set ``rpm=``/``tpm=`` to your
account's quota. Pure: the standard library only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ConfigError, TimeoutError

__all__ = [
    "DEFAULT_RPM",
    "DEFAULT_TPM",
    "MAX_THROTTLED_TRIES",
    "LimiterStats",
    "RateLimiter",
    "Stopped",
    "stopping",
    "estimate_tokens",
]

#: Requests per minute when none is configured (chosen, see the module docstring).
DEFAULT_RPM = 600.0
#: Tokens per minute when none is configured (chosen, see the module docstring).
DEFAULT_TPM = 1_000_000.0
#: 429s one call may wait out through the limiter (they do not use up ``retries``).
MAX_THROTTLED_TRIES = 8
#: The longest single sleep: waits are sliced so a stop request is seen within this.
_SLICE = 0.1
#: Share of the configured rate added back per success, and the floor a 429 can cut to.
_INCREASE = 0.02
_FLOOR = 0.05
#: Tokens a reply is assumed to cost before any reply was seen.
_FIRST_OUTPUT_GUESS = 200.0

_local = threading.local()


class Stopped(KeyboardInterrupt):
    """The batch this thread works for was stopped (Ctrl-C): the call ends as interrupted.

    A KeyboardInterrupt on purpose: the client already turns one into an "interrupted" trace
    that keeps what arrived, which is exactly what an in-flight row of a stopped batch needs.
    """


@contextmanager
def stopping(event: threading.Event) -> Iterator[None]:
    """Waits in this thread raise :class:`Stopped` once ``event`` is set (a batch's Ctrl-C)."""
    previous = getattr(_local, "stop", None)
    _local.stop = event
    try:
        yield
    finally:
        _local.stop = previous


def _stop_event() -> threading.Event | None:
    event: threading.Event | None = getattr(_local, "stop", None)
    return event


def estimate_tokens(body: bytes, expected_output: float) -> float:
    """A call's token cost before it is sent: ~3 bytes of UTF-8 JSON per token (Chinese is 3
    bytes a character and about a token each; English ~4 characters a token), plus the reply."""
    return len(body) / 3.0 + expected_output


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """What the limiter did, for progress displays and benchmarks."""

    rate_per_minute: float
    admitted: int
    throttled: int
    waited: float


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits, shared by threads (see the module doc)."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        burst_seconds: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpm = _positive(DEFAULT_RPM if rpm is None else rpm, "rpm")
        self.tpm = _positive(DEFAULT_TPM if tpm is None else tpm, "tpm")
        self._clock = clock
        self._lock = threading.Lock()
        self._rate = self.rpm / 60.0  # requests per second allowed now (AIMD moves it)
        self._burst = max(0.0, burst_seconds)
        self._tat = clock()  # GCRA: the theoretical arrival time of the next request
        self._tokens = self.tpm / 60.0  # one second's worth to start with
        self._token_stamp = clock()
        self._paused_until = float("-inf")
        self._last_cut = float("-inf")
        self._output_mean = _FIRST_OUTPUT_GUESS
        self._admitted = self._throttled = 0
        self._waited = 0.0

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm:g}, tpm={self.tpm:g}, now={self._rate * 60:.0f}/min)"

    @property
    def rate_per_minute(self) -> float:
        return self._rate * 60.0

    def stats(self) -> LimiterStats:
        with self._lock:
            return LimiterStats(self._rate * 60.0, self._admitted, self._throttled, self._waited)

    def cost(self, body: bytes) -> float:
        """The estimated token cost of a request with this body."""
        return estimate_tokens(body, self._output_mean)

    # -- admission ----------------------------------------------------------------------------
    def acquire(self, tokens: float = 0.0, *, timeout: float | None = None) -> None:
        """Block until one request of ``tokens`` may be sent; raises :class:`Stopped` when this
        thread's batch is stopped, :class:`~dashmagic.errors.TimeoutError` past ``timeout``."""
        start = self._clock()
        while True:
            wait = self.try_acquire(tokens)
            if wait <= 0:
                self._note_wait(self._clock() - start)
                return
            if timeout is not None and self._clock() - start + wait > timeout:
                raise TimeoutError(
                    f"Waiting for the rate limit ({self.rate_per_minute:.0f} requests/min now) would pass the "
                    "call's deadline; nothing was sent. Lower the batch size or raise `deadline`.",
                    phase="connect", url="", before_response=True,
                )
            self.sleep(wait)

    def try_acquire(self, tokens: float = 0.0) -> float:
        """0.0 when one request of ``tokens`` is booked now, else the seconds to wait before asking again."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            self._refill(now)
            if self._tokens < 0:
                return -self._tokens / (self.tpm / 60.0)
            interval = 1.0 / self._rate
            tat = max(self._tat, now)
            if tat - now > self._burst:
                return tat - now - self._burst
            self._tat = tat + interval
            self._tokens -= tokens
            self._admitted += 1
            return 0.0

    def _refill(self, now: float) -> None:
        per_second = self.tpm / 60.0
        self._tokens = min(per_second, self._tokens + (now - self._token_stamp) * per_second)
        self._token_stamp = now

    def _note_wait(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._waited += seconds

    def sleep(self, seconds: float) -> None:
        """Sleep in short slices, raising :class:`Stopped` as soon as the batch is stopped."""
        event = _stop_event()
        end = self._clock() + max(0.0, seconds)
        while True:
            if event is not None and event.is_set():
                raise Stopped()
            left = end - self._clock()
            if left <= 0:
                return
            if event is not None:
                event.wait(min(left, _SLICE))
            else:
                time.sleep(min(left, _SLICE))

    # -- feedback -----------------------------------------------------------------------------
    def throttled(self, retry_after: float | None, fallback: float = 1.0) -> float:
        """A 429 arrived: pause everyone until it has passed, and halve the rate (once a second).
        Returns the pause in seconds."""
        pause = max(0.0, retry_after if retry_after is not None else fallback)
        with self._lock:
            now = self._clock()
            self._throttled += 1
            self._paused_until = max(self._paused_until, now + pause)
            self._tat = max(self._tat, self._paused_until)
            if now - self._last_cut >= 1.0:
                self._last_cut = now
                self._rate = max(self.rpm / 60.0 * _FLOOR, self._rate / 2.0)
        return pause

    def succeeded(self, estimated: float, used: int | None) -> None:
        """A call finished: add back some rate and correct the token estimate with the usage."""
        with self._lock:
            self._rate = min(self.rpm / 60.0, self._rate + self.rpm / 60.0 * _INCREASE)
            if used is not None and used >= 0:
                self._tokens += estimated - used
                output = max(0.0, used - (estimated - self._output_mean))
                self._output_mean += (output - self._output_mean) * 0.1


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise ConfigError(f"{name} must be a positive number (per minute), got {value!r}.")
    return float(value)
