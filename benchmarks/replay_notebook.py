"""Executing notebooks/01-quickstart.ipynb offline (replay mode) end to end, vs a trivial notebook.

Run: python benchmarks/replay_notebook.py [--runs N] [--notebook PATH]

Each run executes the notebook with nbclient in a fresh ``python3`` kernel (start, every cell,
shutdown) with ``DASHMAGIC_MODE=replay``: answers come from the recordings, nothing is sent.
``DASHSCOPE_API_KEY`` is removed and ``DASHSCOPE_HTTP_BASE_URL`` points at a closed loopback
port, so a cell that tried to go live would fail fast instead of leaving the machine. The
baseline is a one-cell notebook (``1 + 1``) executed the same way, interleaved with the real
runs so both see the same machine load; the table shows medians of ``--runs`` runs, the
difference (what the notebook itself costs) and the ratio. Per-cell times come from nbclient's
``record_timing`` (kernel ``execute_input`` → ``execute_reply``).

If the notebook does not exist yet, this says so and exits with status 0 (nothing to measure).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, median, spread, table  # noqa: E402

DEFAULT_NOTEBOOK = ROOT / "notebooks" / "01-quickstart.ipynb"


def offline_environment() -> None:
    """The kernel inherits this process's environment: replay mode, no key, no reachable API."""
    os.environ["DASHMAGIC_MODE"] = "replay"
    for name in ("DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY_FILE_PATH", "DASHMAGIC_RECORDINGS", "DASHMAGIC_LIVE"):
        os.environ.pop(name, None)
    os.environ["DASHSCOPE_HTTP_BASE_URL"] = "http://127.0.0.1:9/api/v1"  # discard port: nothing listens
    os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="dashmagic-bench-ipython-"))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def trivial_notebook() -> Any:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("1 + 1"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(nb: Any, cwd: Path, timeout: int) -> tuple[float, list[float], int]:
    """(wall seconds, per-cell seconds, error outputs) of one execution in a fresh kernel."""
    import subprocess

    from nbclient import NotebookClient

    client = NotebookClient(
        nb, kernel_name="python3", timeout=timeout, record_timing=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    start = time.perf_counter()
    client.execute(stderr=subprocess.DEVNULL)  # the kernel's own log lines are not results
    wall = time.perf_counter() - start
    cells, errors = [], 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        timing = cell.metadata.get("execution", {})
        began, ended = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if began and ended:
            cells.append((_parse(ended) - _parse(began)).total_seconds())
        errors += sum(1 for out in cell.get("outputs", []) if out.get("output_type") == "error")
    return wall, cells, errors


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="executions of each notebook (default 5)")
    parser.add_argument("--notebook", type=Path, default=DEFAULT_NOTEBOOK)
    parser.add_argument("--timeout", type=int, default=120, help="per-cell timeout in seconds")
    args = parser.parse_args()
    path: Path = args.notebook
    print(f"## Offline notebook execution (nbclient, DASHMAGIC_MODE=replay, median of {args.runs} runs)")
    print()
    if not path.exists():
        print(f"SKIPPED: {path} does not exist yet; nothing to measure. "
              "Re-run this benchmark once the notebook has been added.")
        return 0
    try:
        import nbclient  # noqa: F401
        import nbformat
    except ImportError as exc:
        print(f"SKIPPED: nbclient/nbformat are not installed ({exc}); pip install nbclient nbformat ipykernel")
        return 0

    offline_environment()
    source = nbformat.read(path, as_version=4)
    code_cells = sum(1 for c in source.cells if c.cell_type == "code")
    # Warm the OS caches (kernel start, imports) once for each; not counted.
    execute(trivial_notebook(), path.parent, args.timeout)
    execute(nbformat.read(path, as_version=4), path.parent, args.timeout)

    base_walls, nb_walls, nb_cells, errors = [], [], [], 0
    for _ in range(args.runs):
        wall, _, _ = execute(trivial_notebook(), path.parent, args.timeout)
        base_walls.append(wall)
        wall, cells, errs = execute(nbformat.read(path, as_version=4), path.parent, args.timeout)
        nb_walls.append(wall)
        nb_cells.append(cells)
        errors += errs

    base, real = median(base_walls), median(nb_walls)
    cell_sums = [sum(c) for c in nb_cells]
    slowest = [max(c) if c else 0.0 for c in nb_cells]
    rows = [
        ["trivial 1-cell notebook (baseline)", "1", f"{base:.2f}", spread(base_walls), "—", "—"],
        [path.name, str(code_cells), f"{real:.2f}", spread(nb_walls), f"{real - base:+.2f}", f"{real / base:.2f}"],
    ]
    print(table(["notebook", "code cells", "wall s (kernel start → shutdown)", "range", "vs baseline s", "ratio"], rows))
    print()
    print(f"{path.name}: sum of cell execution times {median(cell_sums):.2f} s (median), "
          f"slowest cell {median(slowest):.2f} s; error outputs in all runs: {errors}")
    print()
    firsts = [c.source.splitlines()[0] if c.source else "" for c in source.cells if c.cell_type == "code"]
    per_cell = [median(run[i] for run in nb_cells) for i in range(min(len(run) for run in nb_cells))]
    slow = sorted(range(len(per_cell)), key=lambda i: -per_cell[i])[:5]
    print(table(["slowest cells (median)", "s"], [[f"[{i + 1}] {firsts[i][:60]}", f"{per_cell[i]:.3f}"] for i in slow]))
    print()
    print(f"machine: {machine()}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
