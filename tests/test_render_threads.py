"""Renders from several threads of a fresh process at once: no import may race.

Pygments' lexers and formatters packages swap their module objects while they import, so two
threads importing them at the same moment could see a half-made module ("cannot import name
'HtmlFormatter'") and lose a render — 0.1's warm-up thread did exactly that in 3 kernels of 30.
Each run here is a brand-new interpreter (nothing imported yet) with 8 threads released together.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import sys, threading
sys.path[:0] = [{root!r}, {tests!r}]
from _render_seed import seed_trace
from dashmagic.render import mimebundle
trace = seed_trace("code_plot")
barrier = threading.Barrier(8)
errors = []
def work():
    barrier.wait(timeout=30)
    try:
        bundle = mimebundle(trace)
        assert "tok-" in bundle["text/html"] and "[answer]" in bundle["text/plain"]
    except BaseException as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join(60)
print(errors[0] if errors else "ok")
"""


def test_first_renders_in_parallel_threads_never_fail() -> None:
    script = SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    for _ in range(4):  # the unguarded import failed every time here; four fresh processes
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "ok", done.stdout


def test_no_background_thread_is_started_by_a_cell(shell) -> None:  # type: ignore[no-untyped-def]
    import threading

    from IPython.utils.capture import capture_output

    before = {t.name for t in threading.enumerate()}
    with capture_output():
        shell.run_cell("%%dashscope --replay demo --plugins calculator --seed 42\n12345*98765是多少")
    assert not {t.name for t in threading.enumerate()} - before
