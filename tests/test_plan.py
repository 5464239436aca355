"""plan.py: one magic cell's flags, traits and namespace → what the cell does (pure)."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

import pytest

from dashmagic.errors import ConfigError
from dashmagic.plan import plan_cell

TRAITS: dict[str, Any] = {
    "model": "qwen-plus", "system": "S", "plugins": [], "stream": None, "timeout": 180.0,
    "connect_timeout": 10.0, "retries": 3, "embed_images": True, "image_hosts": ["a.example"],
    "max_image_bytes": 100, "interpolate": True, "mode": "", "recordings": "", "base_url": "",
}


def _args(**changes: Any) -> Namespace:
    base = dict(plugins=None, model=None, system=None, seed=None, file=[], param=[], stream=None, out=None,
                chat=False, dry_run=False, timeout=None, no_interpolate=False, record=None, replay=None, prompt=[])
    base.update(changes)
    return Namespace(**base)


def test_flags_win_over_traits() -> None:
    plan = plan_cell(_args(plugins="calculator", model="qwen-max", seed=7, timeout=5.0, param=["temperature=0.2"]),
                     "  what?  \n", TRAITS, {})
    assert plan.prompt == "what?"
    assert plan.call["plugins"] == ("calculator",) and plan.call["model"] == "qwen-max" and plan.call["seed"] == 7
    assert plan.call["parameters"] == {"temperature": 0.2} and plan.call["system"] == "S"
    assert plan.client["timeout"] == (10.0, 5.0) and plan.client["mode"] is None


def test_stream_defaults_to_the_kernel() -> None:
    assert plan_cell(_args(), "x", TRAITS, {}, in_kernel=True).stream is True
    assert plan_cell(_args(), "x", TRAITS, {}, in_kernel=False).stream is False
    assert plan_cell(_args(stream=False), "x", TRAITS, {}, in_kernel=True).stream is False


def test_the_code_interpreter_streams_unless_the_cell_says_otherwise() -> None:
    # It runs only in streamed calls, so a terminal's default (no streaming) must not refuse it.
    assert plan_cell(_args(code_interpreter=True), "x", TRAITS, {}, in_kernel=False).stream is True
    assert plan_cell(_args(code_interpreter=True, stream=False), "x", TRAITS, {}, in_kernel=False).stream is False


def test_record_and_replay_flags() -> None:
    assert plan_cell(_args(replay="demo"), "x", TRAITS, {}).client["mode"] == "replay"
    assert plan_cell(_args(record="r.jsonl"), "x", TRAITS, {}).client["recordings"] == "r.jsonl"
    for bad in (_args(record=""), _args(replay=""), _args(record="a", replay="b")):
        with pytest.raises(ConfigError):
            plan_cell(bad, "x", TRAITS, {})


def test_interpolation_and_its_switches() -> None:
    assert plan_cell(_args(), "{{ a }} {x}", TRAITS, {"a": 2}).prompt == "2 {x}"
    assert plan_cell(_args(no_interpolate=True), "{{ a }}", TRAITS, {}).prompt == "{{ a }}"
    assert plan_cell(_args(), "{{ a }}", {**TRAITS, "interpolate": False}, {}).prompt == "{{ a }}"


@pytest.mark.parametrize(
    ("args", "cell", "message"),
    [
        (_args(prompt=["stray"]), "x", "Unexpected words"),
        (_args(out="not a name"), "x", "--out needs a Python variable name"),
        (_args(timeout=0.0), "x", "--timeout must be a positive number"),
        (_args(timeout=float("nan")), "x", "--timeout must be a positive number"),
        (_args(), "   ", "The cell is empty"),
    ],
)
def test_bad_cells_are_one_line_errors(args: Namespace, cell: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_cell(args, cell, TRAITS, {})


def test_chat_history_rides_only_with_chat() -> None:
    history = [{"role": "user", "content": "a"}]
    assert plan_cell(_args(), "x", TRAITS, {}, history=history).call["history"] == ()
    assert plan_cell(_args(chat=True), "x", TRAITS, {}, history=history).call["history"] == tuple(history)


def test_the_line_magic_prompt() -> None:
    assert plan_cell(_args(prompt=["12345*98765是多少"]), None, TRAITS, {}).prompt == "12345*98765是多少"
