"""The transport layer: who owns a session, the modes and their defaults, the record destination."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

import pytest
import requests

import dashmagic
from dashmagic import transport
from dashmagic.config import Secret
from dashmagic.errors import ConfigError
from dashmagic.recording import matching
from dashmagic.testing import FakeDashScope
from dashmagic.transport import (
    MODES,
    REPLAY_KEY_TEXT,
    check_record_destination,
    choose_mode,
    image_session_for,
    open_sessions,
    replay_key,
    session_for,
)
from dashmagic.transport.replay import _ReplayBody

CALC = "12345*98765是多少"


@pytest.fixture
def fake():
    with FakeDashScope(api_key="sk-test") as server:
        yield server


def _run(fake: FakeDashScope, session: requests.Session, base_url: str | None = None) -> dashmagic.Trace:
    return dashmagic.run(CALC, plugins=["calculator"], seed=42, api_key=fake.api_key,
                         base_url=base_url or fake.base_url, session=session)


# -- sessions belong to their caller -------------------------------------------------------------


def test_record_and_replay_sessions_closed_by_their_owner_leave_none_open(fake, tmp_path: Path) -> None:
    gc.collect()
    start = open_sessions()
    path = tmp_path / "rec.jsonl"
    record = session_for("record", path, key=Secret(fake.api_key))
    figures = image_session_for("record", path)
    assert open_sessions() == start + 2
    assert _run(fake, record).ok
    record.close()
    figures.close()
    assert open_sessions() == start
    with session_for("replay", path) as replay, image_session_for("replay", path) as images:
        assert open_sessions() == start + 2
        assert _run(fake, replay, base_url="https://dashscope.aliyuncs.com/api/v1").ok
        assert images.get("https://example.com/none.png").status_code == 404
    assert open_sessions() == start


def test_a_session_never_closed_is_still_counted(tmp_path: Path) -> None:
    start = open_sessions()
    leaked = session_for("record", tmp_path / "leak.jsonl")
    assert open_sessions() == start + 1  # what a leak test sees
    leaked.close()
    assert open_sessions() == start


def test_live_sessions_are_owned_but_share_the_process_pool(fake) -> None:
    start = open_sessions()
    first, second = session_for("live", None), session_for("live", None)
    assert first is not second and open_sessions() == start + 2
    pool = first.get_adapter("http://127.0.0.1")
    assert pool is second.get_adapter("https://dashscope.aliyuncs.com") is transport.shared_session().get_adapter("http://x")
    assert isinstance(pool, requests.adapters.HTTPAdapter) and pool.max_retries.total == 0
    assert _run(fake, first).ok
    first.close()  # closing one session leaves the pool to the others
    assert _run(fake, second).ok
    second.close()
    assert open_sessions() == start
    live_images = image_session_for("live", None, key=Secret("sk-canary-never-sent"))
    assert live_images.trust_env is False and live_images.auth is None and "Authorization" not in live_images.headers
    live_images.close()
    assert open_sessions() == start


# -- modes ---------------------------------------------------------------------------------------


def test_one_set_of_modes_and_their_defaults() -> None:
    assert MODES == ("live", "record", "replay")
    assert choose_mode(None, None) == ("live", None)
    assert choose_mode("REPLAY", None) == ("replay", "demo")  # the bundled recordings
    assert choose_mode("replay", "mine.jsonl") == ("replay", "mine.jsonl")
    assert choose_mode("live", "x.jsonl", record="r.jsonl") == ("record", "r.jsonl")  # the flag wins
    assert choose_mode("record", "x.jsonl", replay="demo") == ("replay", "demo")
    with pytest.raises(ConfigError, match="Record mode needs a file"):
        choose_mode("record", None)
    with pytest.raises(ConfigError, match="live, record or replay"):
        choose_mode("vcr", None)
    with pytest.raises(ConfigError, match="exclude each other"):
        choose_mode(None, None, record="a.jsonl", replay="b.jsonl")
    for flag in ("record", "replay"):
        with pytest.raises(ConfigError, match=f"--{flag} needs a file path"):
            choose_mode(None, None, **{flag: " "})


def test_replay_needs_no_key_and_its_placeholder_is_one_constant() -> None:
    assert replay_key() == Secret(REPLAY_KEY_TEXT)
    assert REPLAY_KEY_TEXT not in repr(replay_key())


# -- the record destination ----------------------------------------------------------------------


def test_record_destination_reasons(tmp_path: Path) -> None:
    assert check_record_destination(tmp_path / "new" / "deeper" / "r.jsonl") == tmp_path / "new" / "deeper" / "r.jsonl"
    assert (tmp_path / "new" / "deeper" / "r.jsonl").exists()  # parent folders created, as before
    for bad, reason in [("", "--record needs a file path"), ("  ", "--record needs a file path"),
                        (str(tmp_path), "is a folder"), ("demo", "read-only")]:
        with pytest.raises(ConfigError, match=reason) as info:
            check_record_destination(bad)
        assert "\n" not in str(info.value)
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_record_destination(tmp_path / "file" / "sub" / "r.jsonl")


def test_record_destination_that_cannot_be_written(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere on a normal disk; sysfs refuses even root
        target = Path("/sys/dashmagic-test.jsonl")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "r.jsonl"
    with pytest.raises(ConfigError, match="Cannot write the recording file.*(Permission denied|Read-only)"):
        check_record_destination(target)
    with pytest.raises(ConfigError, match="Cannot write"):
        session_for("record", target)


def test_a_failed_write_is_reported_not_raised_for_streams_and_figures(fake, tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    failures: list[str] = []
    session = session_for("record", path, on_error=failures.append)
    images = image_session_for("record", path, on_error=failures.append)
    path.unlink()
    path.mkdir()
    snapshots = list(dashmagic.stream(CALC, plugins=["calculator"], seed=42, api_key=fake.api_key,
                                      base_url=fake.base_url, session=session))
    assert snapshots[-1].ok and "1219253925" in snapshots[-1].text
    plot = fake.add_file("/oss/example/p.png", b"\x89PNG-bytes", "image/png")
    assert images.get(plot, timeout=5).content == b"\x89PNG-bytes"
    assert len(failures) == 2 and all("Cannot write the recording file" in f for f in failures)
    assert fake.api_key not in " ".join(failures)
    session.close()
    images.close()


# -- the replay cache ----------------------------------------------------------------------------


def test_a_growing_recording_keeps_only_its_current_version(fake, tmp_path: Path) -> None:
    matching.reset_replays()
    path = tmp_path / "grow.jsonl"
    with session_for("record", path, key=Secret(fake.api_key)) as record:
        for round_ in range(4):
            assert _run(fake, record).ok  # the file grows by one exchange
            os.utime(path, ns=(round_ * 10**9, round_ * 10**9))  # a new stamp even on coarse clocks
            with session_for("replay", path) as replay:
                assert _run(fake, replay).ok
                assert len(replay.get_adapter("http://x").answers.exchanges) == round_ + 1
            assert matching.cached_versions() == 1


def test_the_cache_is_bounded_across_many_files(tmp_path: Path) -> None:
    matching.reset_replays()
    for number in range(matching.MAX_CACHED + 5):
        path = tmp_path / f"r{number}.jsonl"
        path.write_text(json.dumps({"dashmagic_recording": 2}) + "\n", encoding="utf-8")
        session_for("replay", path).close()
    assert matching.cached_versions() == matching.MAX_CACHED


# -- replay body ---------------------------------------------------------------------------------


def test_replay_body_hands_back_exact_bytes_in_any_piece_size() -> None:
    chunks = [b"id:1\nevent:result\n\n", b"x" * 100_000, b"tail"]
    whole = b"".join(chunks)
    for size in (1, 7, 4096, 65536, None):
        body = _ReplayBody(chunks)
        got = []
        while piece := body.read1(size):
            assert size is None or len(piece) <= size
            got.append(piece)
        assert b"".join(got) == whole
        if size is None:
            assert got == chunks  # read1 without a size keeps each recorded boundary
    assert _ReplayBody(chunks).read() == whole
    assert _ReplayBody(chunks).read(30) == whole[:30]


def test_a_replayed_broken_stream_returns_its_data_before_the_error() -> None:
    import urllib3.exceptions

    body = _ReplayBody([b"abc"], {"kind": "connection_broken", "message": "reset"})
    assert body.read(10) == b"abc"
    with pytest.raises(urllib3.exceptions.ProtocolError, match="replayed from a recording"):
        body.read(10)
