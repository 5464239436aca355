"""Binder's files: requirements that install this package from the repository root, replay on start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"


def _local_requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip().startswith(".")]


def test_requirements_resolve_to_this_package_from_the_repo_root(tmp_path: Path) -> None:
    # repo2docker runs `pip install -r binder/requirements.txt` with the repository root as cwd.
    report = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index", "--no-build-isolation",
         "--quiet", "--report", str(report), *_local_requirements()],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )
    installs = json.loads(report.read_text())["install"]
    assert [(i["metadata"]["name"], Path(i["download_info"]["url"].removeprefix("file://"))) for i in installs] == [
        ("dashmagic", ROOT)
    ]


def test_binder_runs_python_311_and_starts_in_replay_mode() -> None:
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.11"
    start = BINDER / "start"
    assert os.access(start, os.X_OK)
    env = {k: v for k, v in os.environ.items() if k != "DASHMAGIC_MODE"}
    out = subprocess.run([str(start), "sh", "-c", "echo $DASHMAGIC_MODE"], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "replay"
    out = subprocess.run([str(start), "sh", "-c", "echo $DASHMAGIC_MODE"], env={**env, "DASHMAGIC_MODE": "live"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "live"  # a user with a key can still opt in
