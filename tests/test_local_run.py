"""dashmagic.local_run: the model's code in a separate, isolated process; never the kernel."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from dashmagic.errors import ConfigError
from dashmagic.local_run import MAX_OUTPUT, code_sha256, find_invisible, invisible_warning, run_code
from dashmagic.recording.local_runs import local_run_record, parse_local_runs


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody reaped yet (PID 1 of a container may not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_code_that_loops_forever_is_killed_at_the_timeout_with_its_children() -> None:
    code = ("import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'while True: pass'])\n"
            "print(child.pid, flush=True)\n"
            "while True:\n    pass\n")
    run = run_code([code], timeout=1.5)
    assert run.status == "timeout" and run.timed_out and not run.ok
    child = int(run.stdout.split()[0])
    for _ in range(50):  # bounded: the kill is SIGKILL, the kernel needs a moment to tear down
        if _gone(child):
            break
        time.sleep(0.1)
    assert _gone(child)


def test_background_children_do_not_outlive_a_normal_exit() -> None:
    code = ("import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print(child.pid)\n")
    run = run_code([code])
    assert run.ok
    child = int(run.stdout.split()[0])
    for _ in range(50):
        if _gone(child):
            break
        time.sleep(0.1)
    assert _gone(child)


def test_files_are_written_only_in_a_temporary_folder_that_is_removed(tmp_path, monkeypatch) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code = ("import os, pathlib\n"
            "pathlib.Path('out.txt').write_text('hello')\n"
            "os.makedirs('sub/deeper')\n"
            "pathlib.Path('sub/deeper/x.bin').write_bytes(b'123')\n"
            "os.chmod('sub', 0o500)\n"
            "print(os.getcwd())\n")
    run = run_code([code])
    assert run.ok, run.stderr
    folder = Path(run.stdout.strip())
    assert folder != here and not folder.exists() and not folder.parent.exists()
    assert list(here.iterdir()) == []
    assert run.files == ("out.txt (5 B)", "sub/deeper/x.bin (3 B)")


def test_megabytes_of_output_are_capped_and_counted() -> None:
    run = run_code(["import sys\nsys.stdout.write('a' * 5_000_000)\nsys.stderr.write('é' * 1_000_000)"])
    assert run.ok
    assert len(run.stdout) == MAX_OUTPUT and run.stdout_dropped == 5_000_000 - MAX_OUTPUT
    assert len(run.stderr.encode()) <= MAX_OUTPUT and run.stderr_dropped == 2_000_000 - MAX_OUTPUT
    assert "\ufffd" not in run.stderr  # a cut inside a character is not shown as U+FFFD
    from dashmagic.trace import RequestInfo, Trace

    text = str(Trace(RequestInfo("m"), steps=(run,)))
    assert "cut: 4,737,856 more bytes were printed and dropped" in text


def test_three_figures_become_three_pngs() -> None:
    code = ("import matplotlib.pyplot as plt\n"
            "for n in range(3):\n    plt.figure()\n    plt.plot([0, n])\n"
            "plt.show()\n")
    run = run_code([code])
    assert run.ok, run.stderr
    assert [f.display_url for f in run.figures] == ["figure-1.png", "figure-2.png", "figure-3.png"]
    assert all(f.ok and f.mime == "image/png" and f.data.startswith(b"\x89PNG") for f in run.figures)
    assert run.stderr == ""  # plt.show() under Agg does not warn


def test_figures_are_capped_in_number_and_bytes() -> None:
    code = "import matplotlib.pyplot as plt\nfor n in range(4):\n    plt.figure()\n"
    run = run_code([code], max_figures=2)
    assert len(run.figures) == 2
    small = run_code([code], max_figure_bytes=100)
    assert all(not f.ok and "cap" in (f.error or "") for f in small.figures)


def test_an_exception_keeps_its_traceback_and_status() -> None:
    run = run_code(["x = 1\n", "def f():\n    return 1 / 0\nf()\n"])
    assert run.status == "error" and run.exit_code == 1
    assert 'File "<block 2>", line 3' in run.stderr and "return 1 / 0" in run.stderr
    assert run.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "<string>" not in run.stderr  # the runner's own frames are cut
    assert run_code(["import sys\nsys.exit(3)"]).exit_code == 3
    assert run_code(["raise SystemExit"]).ok


def test_blocks_share_one_namespace_and_the_last_value_is_kept() -> None:
    run = run_code(["x = 6", "y = x * 7", "y"])
    assert run.ok and run.value == "42"
    assert run_code(["None"]).value is None


def test_the_child_is_isolated_from_the_kernel_and_the_key(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-canary-0123456789")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    (tmp_path / "evil.py").write_text("print('imported')")
    code = ("import os, sys\n"
            "print(sorted(k for k in os.environ if 'DASHSCOPE' in k or k.startswith('PYTHON')))\n"
            "print(sys.flags.isolated, os.environ['MPLBACKEND'])\n"
            "import importlib.util\nprint(importlib.util.find_spec('evil') is None)\n"
            "print(sys.stdin.read() == '')\n")
    run = run_code([code])
    assert run.stdout.split("\n")[:4] == ["[]", "1 Agg", "True", "True"], run.stderr


def test_invisible_characters_are_found_with_their_places() -> None:
    found = find_invisible(["ok\nab\u202ecd\u2066\n\u200b", "x\ufeff"])
    assert [(f.block, f.line, f.column, f.char) for f in found] == [
        (1, 2, 3, "\u202e"), (1, 2, 6, "\u2066"), (1, 3, 1, "\u200b"), (2, 1, 2, "\ufeff")]
    warning = invisible_warning(["a\u202e"] * 12)
    assert warning is not None and "\n" not in warning and "and 2 more" in warning
    assert invisible_warning(["clean"]) is None


def test_refused_code_never_runs(tmp_path) -> None:
    marker = tmp_path / "ran"
    run = run_code([f"open({str(marker)!r}, 'w')  # \u2067"])
    assert run.status == "refused" and "U+2067" in run.reason and "--allow-invisible" in run.reason
    assert not marker.exists()
    assert run_code([]).status == "refused"
    with pytest.raises(ConfigError, match="positive"):
        run_code(["1"], timeout=0)


def test_a_recorded_run_reads_back_equal_and_damage_is_one_line() -> None:
    run = run_code(["import matplotlib.pyplot as plt\nplt.figure()\nprint('hi')\n7"])
    line = json.dumps(local_run_record(run))
    (back,) = parse_local_runs('{"dashmagic_recording": 2}\n' + line + "\n", "rec.jsonl")
    assert back == run and back.code_sha256 == code_sha256(["import matplotlib.pyplot as plt\nplt.figure()\nprint('hi')\n7"])
    bad = json.loads(line)
    bad["figures"][0]["body_b64"] = "PHN2Zz4="  # <svg>: never embedded
    (svg,) = parse_local_runs(json.dumps(bad) + "\n", "rec.jsonl")
    assert not svg.figures[0].ok and svg.figures[0].error == "not a PNG file"
    bad["status"] = "great"
    with pytest.raises(ConfigError, match="rec.jsonl' is damaged at line 1: status 'great'"):
        parse_local_runs(json.dumps(bad) + "\n", "rec.jsonl")


def test_record_mode_appends_and_unknown_lines_stay_ignored_by_old_readers(tmp_path) -> None:
    from dashmagic.recording.store import parse_recording
    from dashmagic.trace import CodeExecution, RequestInfo, Trace

    recording = tmp_path / "rec.jsonl"
    trace = Trace(RequestInfo("m"), steps=(CodeExecution("print('x')"),))
    done = trace.run_locally(mode="record", recordings=str(recording))
    assert done.local_runs[-1].ok
    assert parse_recording(recording.read_text(), "rec.jsonl") == ([], [])
    again = trace.run_locally(mode="replay", recordings=str(recording))
    assert again.local_runs[-1].replayed and again.local_runs[-1].stdout == "x\n"
