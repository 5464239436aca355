"""The shared rate limiter: pacing, token debt, AIMD on 429, stopping; and the client's hook."""

from __future__ import annotations

import threading

import pytest

import dashmagic
from dashmagic.errors import ConfigError, TimeoutError
from dashmagic.limits import MAX_THROTTLED_TRIES, RateLimiter, Stopped, stopping


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_are_paced_with_a_small_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=600, tpm=10**9, burst_seconds=0.2, clock=clock)  # 10 per second
    admitted = [limiter.try_acquire() == 0.0 for _ in range(5)]
    assert admitted == [True, True, True, False, False]  # 0.2 s of burst = slots at 0, 0.1, 0.2
    assert limiter.try_acquire() == pytest.approx(0.1)
    clock.now += 0.1
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() > 0


def test_tokens_may_go_into_debt_once_then_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=10**6, tpm=6000, clock=clock)  # 100 tokens a second
    assert limiter.try_acquire(tokens=500) == 0.0  # larger than a second's worth: still goes once
    wait = limiter.try_acquire(tokens=10)
    assert wait == pytest.approx(4.0)  # 400 tokens of debt at 100 per second
    clock.now += 4.0
    assert limiter.try_acquire(tokens=10) == 0.0


def test_a_429_pauses_everyone_and_halves_the_rate_once_per_storm() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=600, tpm=10**9, clock=clock)
    for _ in range(8):  # eight threads see the same 429 at once
        limiter.throttled(2.0)
    assert limiter.rate_per_minute == pytest.approx(300)  # one cut, not eight
    assert limiter.try_acquire() == pytest.approx(2.0)
    clock.now += 2.0
    assert limiter.try_acquire() == 0.0
    clock.now += 1.5
    limiter.throttled(None, fallback=0.5)
    assert limiter.rate_per_minute == pytest.approx(150)
    for _ in range(200):  # additive increase, capped at the configured rate
        limiter.succeeded(100, 100)
    assert limiter.rate_per_minute == pytest.approx(600)
    assert limiter.stats().throttled == 9


def test_the_rate_never_falls_below_its_floor() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=600, clock=clock)
    for _ in range(40):
        clock.now += 1.0
        limiter.throttled(0.0)
    assert limiter.rate_per_minute == pytest.approx(30)


def test_usage_corrects_the_token_estimate() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=10**6, tpm=6000, clock=clock)
    assert limiter.try_acquire(tokens=300) == 0.0
    limiter.succeeded(300, 50)  # the call cost less than booked: the difference comes back
    assert limiter.try_acquire(tokens=10) == 0.0


def test_a_stopped_batch_ends_waits_promptly() -> None:
    limiter = RateLimiter(rpm=1)  # one a minute: the second acquire would wait ~60 s
    limiter.acquire()
    event = threading.Event()
    caught: list[BaseException] = []

    def worker() -> None:
        with stopping(event):
            try:
                limiter.acquire()
            except BaseException as exc:  # noqa: BLE001 - the test records what ended the wait
                caught.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    event.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(caught) == 1 and isinstance(caught[0], Stopped)


def test_a_wait_past_the_deadline_is_refused_at_once() -> None:
    limiter = RateLimiter(rpm=1)
    limiter.acquire()
    with pytest.raises(TimeoutError, match="deadline"):
        limiter.acquire(timeout=1.0)


@pytest.mark.parametrize("bad", [0, -5, "10", True, float("nan")])
def test_bad_limits_are_one_line(bad: object) -> None:
    with pytest.raises(ConfigError, match="rpm must be a positive number"):
        RateLimiter(rpm=bad)  # type: ignore[arg-type]


# -- the client's retry hook --------------------------------------------------------------------


def test_without_a_limiter_a_single_call_is_unchanged(fake_dashscope) -> None:
    client = dashmagic.Client(api_key="sk-test", base_url=fake_dashscope.base_url, retries=2, backoff=0.01)
    assert client.limiter is None
    fake_dashscope.inject("throttle", times=2, retry_after=0)
    trace = client.run("hello", raise_errors=False)
    assert trace.status == "error" and trace.error is not None and trace.error.status_code == 429
    assert len(fake_dashscope.generation_requests) == 2


def test_with_a_limiter_429s_are_waited_out_through_it(fake_dashscope) -> None:
    client = dashmagic.Client(api_key="sk-test", base_url=fake_dashscope.base_url, retries=1, rpm=6000, backoff=0.001)
    fake_dashscope.inject("throttle", times=3, retry_after=0)
    trace = client.run("hello")
    assert trace.ok
    assert sum("Throttled (HTTP 429)" in note for note in trace.notes) == 3
    assert len(fake_dashscope.generation_requests) == 4
    assert client.limiter is not None and client.limiter.stats().throttled == 3


def test_429s_through_the_limiter_are_bounded(fake_dashscope) -> None:
    client = dashmagic.Client(api_key="sk-test", base_url=fake_dashscope.base_url, retries=2, rpm=6000, backoff=0.001)
    fake_dashscope.inject("throttle", times=50, retry_after=0)
    trace = client.run("hello", raise_errors=False)
    assert trace.status == "error"
    assert len(fake_dashscope.generation_requests) == MAX_THROTTLED_TRIES + 2
