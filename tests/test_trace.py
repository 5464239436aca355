"""trace.py: frozen, picklable data; freeze/thaw survive any depth; the convenience views."""

from __future__ import annotations

import json
import pickle

import pytest

from dashmagic.trace import (
    Answer,
    CodeExecution,
    FetchedImage,
    FrozenMap,
    FunctionCall,
    Reasoning,
    RequestInfo,
    SearchResults,
    Source,
    Trace,
    freeze,
    thaw,
)


def test_freeze_and_thaw_round_trip_json() -> None:
    value = {"a": [1, {"b": (2, 3)}, []], "c": {}, "d": None, "e": "x"}
    frozen = freeze(value)
    assert isinstance(frozen, FrozenMap) and frozen["a"][1]["b"] == (2, 3)
    assert thaw(frozen) == json.loads(json.dumps(value))
    with pytest.raises(TypeError):
        frozen["a"] = 1  # type: ignore[index]


def test_freeze_and_thaw_do_not_recurse() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(20_000):
        child: list[object] = []
        node.append({"k": child})
        node = child
    frozen = freeze(deep)
    plain = thaw(frozen)
    depth, cursor = 0, plain
    while cursor:
        cursor, depth = cursor[0]["k"], depth + 1
    assert depth == 20_000


def test_frozen_maps_compare_hash_and_pickle_like_dicts() -> None:
    a = FrozenMap({"x": 1})
    assert a == {"x": 1} and a == FrozenMap({"x": 1}) and hash(a) == hash(FrozenMap({"x": 1}))
    assert pickle.loads(pickle.dumps(a)) == a and repr(a) == "{'x': 1}"


def test_a_full_trace_pickles() -> None:
    trace = Trace(
        request=RequestInfo(model="m", user_message=freeze({"role": "user", "content": "q"})),
        steps=(Reasoning("think"), CodeExecution("123**21"), SearchResults((Source(1, "t", "https://x"),)),
               FunctionCall(0, "id", "f", '{"a": 1}', freeze({"a": 1})), Answer("done")),
        messages=(freeze({"role": "assistant", "content": "done"}),),
        images=(FetchedImage(url="https://x/a.png?Signature=s", display_url="https://x/a.png", data=b"\x89PNG", mime="image/png"),),
    )
    assert pickle.loads(pickle.dumps(trace)) == trace


def test_convenience_views() -> None:
    trace = Trace(
        request=RequestInfo(model="m", user_message=freeze({"role": "user", "content": "q"})),
        steps=(Reasoning("a"), CodeExecution("x = 1"), Reasoning("b"), CodeExecution(""), Answer("ok")),
        messages=(freeze({"role": "assistant", "content": "ok"}),),
        images=(FetchedImage(url="u", display_url="u"),),
    )
    assert trace.reasoning == "a\n\nb" and trace.answer == "ok"
    assert [b.code for b in trace.code_blocks] == ["x = 1"]  # an entry still empty is not code yet
    assert trace.turn() == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "ok"}]
    assert trace.image("u") is trace.images[0] and trace.image("v") is None
    assert "u" not in repr(trace.images[0]).split("display_url")[0]  # the signed URL stays out of reprs
