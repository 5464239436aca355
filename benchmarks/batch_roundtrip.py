"""The Batch API client's own cost against the loopback fake: build, upload, poll, results.

    PYTHONPATH=. python benchmarks/batch_roundtrip.py [N ...]

The fake answers with every delay 0, so "total" is the client's work (writing the JSONL, one
multipart upload, one create, one poll, two downloads, one Trace per result line) plus the fake's
own (parsing the upload, answering every row on the poll), both in this process. Prints seconds per 1,000 rows and the ratio to the smallest N (flat ≈ linear in N), and
the JSONL bytes per row. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import sys
import time

from dashmagic import batch
from dashmagic.testing import FakeDashScope
from dashmagic.testing.batch import FAIL_MARK, batches_of

KEY = "sk-bench-0123456789abcdef"


def one(n: int) -> tuple[float, float, int]:
    prompts = [f"review {i}: the product was fine" + (f" {FAIL_MARK}" if i % 50 == 0 else "") for i in range(n)]
    with FakeDashScope(api_key=KEY) as fake:
        batches_of(fake)
        started = time.perf_counter()
        data, _, _ = batch.build_lines(prompts)
        built = time.perf_counter() - started
        started = time.perf_counter()
        with batch.submit(prompts, api_key=KEY, base_url=fake.base_url) as job:
            traces = job.wait(poll=0.01).results()
        total = time.perf_counter() - started
    assert len(traces) == n and sum(t.status == "error" for t in traces) == len(range(0, n, 50))
    return built, total, len(data) // n


def main(sizes: list[int]) -> None:
    base: float | None = None
    print(f"{'rows':>7} {'build s':>8} {'total s':>8} {'s/1k rows':>10} {'ratio':>6} {'bytes/row':>9}")
    for n in sizes:
        built, total, per_row = one(n)
        per_k = total / n * 1000
        base = base or per_k
        print(f"{n:>7} {built:>8.3f} {total:>8.3f} {per_k:>10.3f} {per_k / base:>6.2f} {per_row:>9}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 5_000, 20_000])
