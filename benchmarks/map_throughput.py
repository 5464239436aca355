"""dashmagic.map throughput, requests per prompt, client CPU and memory, vs plain thread-pool loops.

Run: python benchmarks/map_throughput.py [--rate 50] [--latency 0.1] [--sizes 200,1000,5000]

The loopback fake runs in a *separate process* with a fixed per-request latency and an enforced
request rate (``FakeDashScope.pace``: a token bucket of one second's worth; above it 429
``Throttling.RateQuota`` + ``Retry-After``), so ``time.process_time()`` here is the client only.

* rate-bound: map(concurrency=16, rpm=rate*60) at N in --sizes; ideal = N / rate;
* latency-bound: the limit far above what 8 threads can use; ideal = N * latency / concurrency;
* requests per prompt = requests admitted by the limiter (429s included) / N;
* memory: peak RSS of a fresh process running map over 1,000 and 10,000 prompts (latency 0,
  no limit), and the growth per extra row;
* baselines, same server, same N: a ThreadPoolExecutor over dashmagic.run and over the SDK's
  Generation.call (no pacing: they meet the limit with their own retries).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import API_KEY, ROOT, FakeProcess, machine  # noqa: E402

SERVER = """
import sys
from dashmagic.testing import FakeDashScope
fake = FakeDashScope(api_key={key!r})
fake.start()
fake.pace(latency={latency!r}, rate={rate!r})
print(fake.base_url, flush=True)
sys.stdin.read()
"""


def server(latency: float, rate: float | None) -> FakeProcess:
    return FakeProcess(["-c", SERVER.format(key=API_KEY, latency=latency, rate=rate)])


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.perf_counter() - wall0, time.process_time() - cpu0


def run_map(url: str, n: int, concurrency: int, rpm: float) -> tuple[float, float, float, int]:
    import dashmagic
    from dashmagic.limits import RateLimiter

    limiter = RateLimiter(rpm=rpm, tpm=10**12)
    prompts = [f"classify review {i}" for i in range(n)]
    with dashmagic.Client(api_key=API_KEY, base_url=url, limiter=limiter) as client:
        traces, wall, cpu = timed(lambda: client.map(prompts, concurrency=concurrency, progress=False))
    ok = sum(t.ok for t in traces)
    stats = limiter.stats()
    return wall, cpu, stats.admitted / n, n - ok


def pool(url: str, n: int, concurrency: int, sdk: bool) -> tuple[float, int, int]:
    import dashmagic

    if sdk:
        import dashscope
        from dashscope import Generation

        dashscope.base_http_api_url = url

        def one(i: int) -> bool:
            r = Generation.call(model="qwen-plus", prompt=f"classify review {i}", api_key=API_KEY, result_format="message")
            return bool(r.status_code == 200)
    else:
        def one(i: int) -> bool:
            return dashmagic.run(f"classify review {i}", api_key=API_KEY, base_url=url, raise_errors=False).ok

    with ThreadPoolExecutor(concurrency) as ex:
        oks, wall, _ = timed(lambda: list(ex.map(one, range(n))))
    return wall, n - sum(oks), 0


MEMORY = """
import gc, resource, sys, tracemalloc
import dashmagic
url, n = sys.argv[1], int(sys.argv[2])
with dashmagic.Client(api_key="sk-test", base_url=url, rpm=10**9) as c:
    c.map(["warm up"] * 8, concurrency=8, progress=False)  # imports, connections, renderers
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    ts = c.map([f"classify review {i}" for i in range(n)], concurrency=8, progress=False)
    gc.collect()
    kept, peak = tracemalloc.get_traced_memory()
assert sum(t.ok for t in ts) == n
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, kept - before, peak - before)
"""


def peak_rss(url: str, n: int) -> tuple[int, int, int]:
    """(peak RSS, bytes still allocated while the results are kept, peak bytes allocated during map)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", MEMORY, url, str(n)], capture_output=True, text=True, env=env, check=True)
    rss, kept, peak = (int(v) for v in out.stdout.split())
    return rss, kept, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--sizes", default="200,1000,5000")
    parser.add_argument("--memory", default="1000,10000")
    parser.add_argument("--memory-only", action="store_true", help="only the memory measurement")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(machine())
    if args.memory_only:
        return memory(args.memory)
    print(f"\nrate-bound: server {args.rate:g} req/s, latency {args.latency:g} s, map concurrency 16, rpm = rate x 60")
    print("| N | wall s | ideal N/rate s | ratio | requests/prompt | CPU ms/prompt | failed |\n|---|---|---|---|---|---|---|")
    with server(args.latency, args.rate) as fake:
        for n in sizes:
            wall, cpu, per, failed = run_map(fake.base_url, n, 16, args.rate * 60)
            ideal = n / args.rate
            print(f"| {n:,} | {wall:.2f} | {ideal:.2f} | {wall / ideal:.3f} | {per:.3f} | {cpu / n * 1000:.2f} | {failed} |")
        n = sizes[0]
        wall, cpu, per, failed = run_map(fake.base_url, n, 16, args.rate * 60 * 4)
        print(f"| {n:,} (client told 4x the real limit: AIMD) | {wall:.2f} | {n / args.rate:.2f} | "
              f"{wall / (n / args.rate):.3f} | {per:.3f} | {cpu / n * 1000:.2f} | {failed} |")
        print("\nsame server, same N, plain ThreadPoolExecutor(16) loops (no pacing):")
        print("| loop | wall s | ratio to map | failed rows |\n|---|---|---|---|")
        base, _, _, _ = run_map(fake.base_url, n, 16, args.rate * 60)
        for name, sdk in (("dashmagic.run", False), ("SDK Generation.call", True)):
            wall, failed, _ = pool(fake.base_url, n, 16, sdk)
            print(f"| {name} | {wall:.2f} | {wall / base:.2f} | {failed} |")
    print(f"\nlatency-bound: no binding limit, latency {args.latency:g} s, concurrency 8; ideal = N x latency / 8")
    print("| N | wall s | ideal s | ratio | CPU ms/prompt |\n|---|---|---|---|---|")
    with server(args.latency, None) as fake:
        for n in sizes:
            wall, cpu, per, failed = run_map(fake.base_url, n, 8, 10**9)
            ideal = n * args.latency / 8
            print(f"| {n:,} | {wall:.2f} | {ideal:.2f} | {wall / ideal:.3f} | {cpu / n * 1000:.2f} |")
        n = sizes[0]
        base, _, _, _ = run_map(fake.base_url, n, 8, 10**9)
        for name, sdk in (("dashmagic.run", False), ("SDK Generation.call", True)):
            wall, failed, _ = pool(fake.base_url, n, 8, sdk)
            print(f"| ThreadPoolExecutor(8) over {name}, N={n} | {wall:.2f} | ratio to map {wall / base:.2f} | failed {failed} |")
    memory(args.memory)


def memory(sizes: str) -> None:
    small, big = (int(s) for s in sizes.split(","))
    with server(0.0, None) as fake:
        (rss_a, kept_a, peak_a), (rss_b, kept_b, peak_b) = peak_rss(fake.base_url, small), peak_rss(fake.base_url, big)
    print(f"\nmemory (tracemalloc, after a warm-up): {small:,} prompts keep {kept_a / 2**20:.1f} MiB "
          f"(peak {peak_a / 2**20:.1f}), {big:,} keep {kept_b / 2**20:.1f} MiB (peak {peak_b / 2**20:.1f}); "
          f"{kept_b / big:,.0f} bytes kept per row, growth {(kept_b - kept_a) / (big - small):,.0f} bytes per extra "
          f"row; peak over kept {peak_b / max(kept_b, 1):.2f}x. Peak RSS {rss_a / 2**20:.1f} / {rss_b / 2**20:.1f} MiB.")


if __name__ == "__main__":
    main()
