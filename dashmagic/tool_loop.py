"""The function-calling loop: call → run the requested Python functions → send results → repeat.

Used by :class:`~dashmagic.client.Client` when ``tools=`` holds a callable. One
:class:`ToolLoop` per prompt; :meth:`ToolLoop.run` yields one combined :class:`Trace` snapshot
after every server event and every tool run, so a round streams as any call does. The combined
trace holds every round's steps, with each requested ``FunctionCall`` replaced by its
:class:`~dashmagic.trace.ToolRun`, ``usage`` summed over ``rounds``, and ``messages`` carrying
the whole exchange (assistant ``tool_calls`` and ``role: tool`` messages) for ``--chat``.

The user stays in control: a call runs only when approved up front (``approve="all"``, a set of
names, or a function of the :class:`ToolRun` returning True/False) or by ``ask`` (a y/n prompt,
or widget buttons: then the loop *defers*: :meth:`run` ends with the call ``pending``, and
:meth:`decide` + :meth:`resume` continue it from the button's callback). Where nobody can
answer, the call is not run and the loop ends with a note saying how to approve it.

Nothing the model sends is trusted: arguments that are not JSON, do not fit the schema, or name
a tool that was not offered are reported back to the model, never executed. Replay runs no
function: each result comes from the recording (the later rounds' requests hold them).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Union

from .errors import ConfigError, DashmagicError
from .tools import ArgumentsError, Toolbox
from .trace import FunctionCall, Round, ToolRun, Trace, Usage, freeze, thaw

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "Approve",
    "Ask",
    "ToolLoop",
    "DECLINED",
    "DEFAULT_MAX_ROUNDS",
    "RESULT_LIMIT",
    "check_approve",
    "terminal_ask",
    "serialise",
    "recorded_results",
]

#: ``approve=``: None (ask), ``"all"``, tool names, or ``f(run) -> bool`` (True: run it).
Approve = Union[None, str, Collection[str], Callable[[ToolRun], bool]]
#: Asks the user about one call: True (run), False (reject), None (nobody can answer now).
Ask = Callable[[ToolRun], Union[bool, None]]

DEFAULT_MAX_ROUNDS = 5
RESULT_LIMIT = 20_000
_ERROR_LIMIT = 300
DECLINED = "The user declined to run this call."
_TABLE_ROWS = 60


def check_approve(approve: Any) -> Approve:
    """``approve=`` validated: ``"all"``, a comma-separated string or collection of names, a callable."""
    if approve is None or callable(approve):
        return approve  # type: ignore[no-any-return]
    if isinstance(approve, str):
        names = [n.strip() for n in approve.split(",") if n.strip()]
        if not names:
            raise ConfigError("approve= needs 'all', tool names, or a function of the call; got an empty string.")
        return "all" if names == ["all"] else frozenset(names)
    if isinstance(approve, (bool, int, float)):
        raise ConfigError(f"approve= needs 'all', tool names, or a function of the call; got {approve!r}.")
    try:
        names = [str(n) for n in approve]
    except TypeError:
        raise ConfigError(f"approve= needs 'all', tool names, or a function of the call; got {type(approve).__name__}.") from None
    return frozenset(names)


def terminal_ask() -> Ask | None:
    """A y/n ``input()`` prompt when a person is at a terminal, else None (nobody to ask)."""
    import sys

    stdin = sys.stdin
    # A Jupyter kernel's stdin is never a tty: there the buttons ask (or nobody does).
    if stdin is None or not stdin.isatty():
        return None

    def ask(run: ToolRun) -> bool | None:
        from .render.steps.tool_run import call_line

        try:
            answer = input(f"dashmagic: run {call_line(run)}? [y/N] ")
        except EOFError:
            return None
        return answer.strip().lower() in ("y", "yes")

    return ask


# -- results as the text the model reads --------------------------------------------------------


def serialise(value: Any, limit: int = RESULT_LIMIT) -> tuple[str, str, str]:
    """``(text, type name, note)``: str as is, JSON-able values as JSON, pandas objects as
    compact tables, anything else ``repr``; cut to ``limit`` characters with a note."""
    kind = type(value).__name__
    text = _as_text(value)
    if len(text) <= limit:
        return text, kind, ""
    cut = len(text) - limit
    return text[:limit] + f"\n…[cut: {cut:,} more characters]", kind, f"result cut to {limit:,} characters ({cut:,} dropped)"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    module = type(value).__module__ or ""
    if module.startswith("pandas") and hasattr(value, "to_string"):
        try:
            return str(value.to_string(max_rows=_TABLE_ROWS, max_cols=20, max_colwidth=80))
        except TypeError:  # an Index, say: no max_rows
            return repr(value)[: RESULT_LIMIT + 1]
    if module.startswith("numpy") and hasattr(value, "tolist"):
        value = value.tolist()
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_not_json)
    except (TypeError, ValueError, RecursionError):
        try:
            return repr(value)
        except Exception as exc:  # a repr that raises is the tool's problem, said in one line
            return f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"


def _not_json(value: Any) -> Any:
    raise TypeError("not JSON")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= _ERROR_LIMIT else line[: _ERROR_LIMIT - 1] + "…"


# -- recorded results (replay, and the comparison on a re-run) ---------------------------------


def recorded_results(recordings: Any) -> dict[str, str]:
    """``tool_call_id`` → content, and ``name\\0arguments`` → content, from every ``role: tool``
    message the recorded requests sent (later rounds carry the results of earlier ones).

    One recording can hold the same call twice (the same question asked in two cells, approved in
    one, declined in the other; the same id when the ids are deterministic, as the fake's are).
    A replayed call was approved (a declined one is never looked up), so a result that ran wins
    over a "declined", whatever their order in the file."""
    from .recording.store import read_recording, resolve_recordings

    found: dict[str, str] = {}
    try:
        recording = read_recording(resolve_recordings(recordings))
    except ConfigError:
        return found
    for exchange in recording.exchanges:
        body = exchange.request.get("body") if isinstance(exchange.request, Mapping) else None
        inner = body.get("input") if isinstance(body, Mapping) else None
        messages = inner.get("messages") if isinstance(inner, Mapping) else None
        if isinstance(messages, list):
            _index_messages(messages, found)
    return found


def _index_messages(messages: list[Any], found: dict[str, str]) -> None:
    calls: dict[str, str] = {}
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                calls[str(call.get("id"))] = f"{function.get('name')}\0{function.get('arguments')}"
        if message.get("role") == "tool" and isinstance(message.get("content"), str):
            ident = str(message.get("tool_call_id"))
            _keep(found, ident, message["content"])
            if ident in calls:
                _keep(found, calls[ident], message["content"])


def _keep(found: dict[str, str], key: str, content: str) -> None:
    if content != DECLINED or key not in found:
        found[key] = content


def _recorded_state(content: str) -> tuple[str, str, str | None]:
    """``(status, approval, error)`` of a replayed call, read back from the text sent."""
    if content == DECLINED:
        return "declined", "rejected", "declined by the user"
    for prefix in ("Error: ", "Invalid call: "):
        if content.startswith(prefix):
            return ("error" if prefix == "Error: " else "invalid"), "automatic", content[len(prefix):]
    return "replayed", "automatic", None


# -- the loop ------------------------------------------------------------------------------------


class ToolLoop:
    """One prompt's function-calling loop (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        prompt: Any,
        *,
        stream: bool,
        call: Mapping[str, Any],
        approve: Approve = None,
        ask: Ask | None = None,
        defer: bool = False,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        concurrency: int = 1,
    ) -> None:
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or not 1 <= max_rounds <= 50:
            raise ConfigError(f"max_rounds must be a whole number from 1 to 50, got {max_rounds!r}.")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 32:
            raise ConfigError(f"tool_concurrency must be a whole number from 1 to 32, got {concurrency!r}.")
        self.client = client
        self.toolbox = Toolbox.of(call.get("tools") or ())
        self.stream = stream
        self.approve = check_approve(approve)
        self.ask = ask
        self.defer = defer
        self.max_rounds = max_rounds
        self.concurrency = concurrency
        self._call = {k: v for k, v in call.items() if k != "tools"}
        first = client.build(prompt, stream=stream, tools=list(self.toolbox.specs), **self._call)
        self._first = first
        self._messages: list[Any] = list(first.body.get("input", {}).get("messages", []))
        self._steps: list[Any] = []  # earlier rounds' steps, calls replaced by their runs
        self._rounds: list[Round] = []
        self._history: list[Any] = []  # the service's and the tools' messages so far
        self._notes: list[str] = []
        self._images: tuple[Any, ...] = ()
        self._events = 0
        self._runs: list[ToolRun] = []  # the current round's runs
        self._last: Trace | None = None
        self._started = time.monotonic()
        self._recorded: dict[str, str] | None = None
        self._scrub: Callable[[str], str] | None = None
        self._parsed: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.finished = False

    # -- public --------------------------------------------------------------------------------
    @property
    def pending(self) -> tuple[ToolRun, ...]:
        """Calls waiting for the user's answer (the widget's buttons)."""
        return tuple(r for r in self._runs if r.approval == "pending")

    def run(self) -> Iterator[Trace]:
        """Every snapshot, round after round, until the answer, the round limit, an error or a
        call waiting for approval (then :meth:`decide` and :meth:`resume`)."""
        return self._rounds_from(self._first)

    def decide(self, call_id: str, approved: bool) -> Trace:
        """The user's answer for a pending call (from a widget's callback)."""
        with self._lock:
            for i, run in enumerate(self._runs):
                if run.call_id == call_id and run.approval == "pending":
                    self._runs[i] = run.__class__(**{**_fields(run), "approval": "approved" if approved else "rejected"})
            return self._combined(self._last_round_trace(), status="partial")

    def resume(self) -> Iterator[Trace]:
        """Continue after every pending call was decided: run them, then the next rounds."""
        if self.pending:
            raise ConfigError("Some calls still wait for approval: decide each one first.")
        return self._continue()

    # -- rounds --------------------------------------------------------------------------------
    def _rounds_from(self, call: Any) -> Generator[Trace, None, None]:
        while True:
            final = yield from self._one_round(call)
            if final is None:
                return
            runs = self._requested(final)
            if not runs:
                self.finished = True
                return
            if len(self._rounds) + 1 >= self.max_rounds:
                self._notes.append(
                    f"Stopped after {self.max_rounds} round(s) (max_rounds): the model still asks for "
                    f"{', '.join(sorted({r.name for r in runs}))}; nothing more was run. Raise max_rounds "
                    "(--max-rounds) to let it go on."
                )
                self.finished = True
                yield self._combined(final, status="complete", calls_kept=True)
                return
            self._runs = [self._approval(r) for r in runs]
            if self.pending:
                if self.defer:
                    # The note is for this snapshot only, and taken back before the yield: a
                    # consumer that stops here (the buttons' callback breaks on pending) never
                    # resumes the generator, which left the note in every later snapshot.
                    self._notes.append("Waiting for your approval below: nothing runs until you answer.")
                    waiting = self._combined(final, status="partial")
                    self._notes.pop()
                    yield waiting
                    return
                self._runs = [self._needed(r) if r.approval == "pending" else r for r in self._runs]
            call = yield from self._run_tools(final)
            if call is None:
                return

    def _continue(self) -> Generator[Trace, None, None]:
        final = self._last_round_trace()
        call = yield from self._run_tools(final)
        if call is not None:
            yield from self._rounds_from(call)

    def _one_round(self, call: Any) -> Generator[Trace, None, Trace | None]:
        """One model call's snapshots (combined); returns the final round trace, or None when
        the loop ends here (an error)."""
        last: Trace | None = None
        try:
            for last in self.client.execute(call, raise_errors=True):
                self._last = last
                yield self._combined(last)
        except DashmagicError as exc:
            if exc.trace is not None:
                self._last = exc.trace
                exc.trace = self._combined(exc.trace)
            self.finished = True
            raise
        if last is None or not last.ok:  # pragma: no cover - execute raises on failure
            self.finished = True
            return None
        return last

    def _requested(self, final: Trace) -> list[ToolRun]:
        if final.finish_reason != "tool_calls":
            return []
        index = len(self._rounds) + 1
        runs = []
        for call in final.function_calls:
            run = ToolRun(call_id=call.id, name=call.name, arguments_raw=call.arguments_raw, round=index)
            runs.append(self._checked(run, call))
        return runs

    def _checked(self, run: ToolRun, call: FunctionCall) -> ToolRun:
        """Refuse before anyone is asked: a tool not offered, or arguments that do not fit."""
        tool = self.toolbox.callables.get(call.name)
        if tool is None:
            offered = ", ".join(sorted(self.toolbox.names)) or "none"
            why = (f"there is no Python function for tool {call.name[:60]!r} here" if call.name in self._spec_names()
                   else f"tool {call.name[:60]!r} was not offered (offered: {offered})")
            return _replace(run, approval="none", status="invalid", error=why)
        try:
            arguments = tool.parse(call.arguments_raw)
        except ArgumentsError as exc:
            return _replace(run, approval="none", status="invalid", error=str(exc)[:_ERROR_LIMIT])
        self._parsed[run.call_id] = arguments  # what the function gets (dataclasses built)
        return _replace(run, arguments=freeze(_jsonable(arguments)))

    def _spec_names(self) -> set[str]:
        names = set()
        for spec in self.toolbox.specs:
            function = spec.get("function")
            if isinstance(function, Mapping):
                names.add(str(function.get("name")))
        return names

    def _approval(self, run: ToolRun) -> ToolRun:
        if run.status == "invalid":
            return run
        approve = self.approve
        if approve == "all" or (isinstance(approve, frozenset) and run.name in approve):
            return _replace(run, approval="automatic")
        if callable(approve):
            try:
                decided = bool(approve(run))
            except Exception as exc:
                return _replace(run, approval="rejected", status="declined", error=f"approve= raised {_one_line(exc)}")
            return _replace(run, approval="approved" if decided else "rejected")
        answer = self.ask(run) if self.ask is not None else None
        if answer is None:
            return _replace(run, approval="pending")
        return _replace(run, approval="approved" if answer else "rejected")

    def _needed(self, run: ToolRun) -> ToolRun:
        return _replace(run, approval="needed", status="declined",
                        error=f"approval needed: rerun with --approve {run.name} (approve={run.name!r}) or --approve all")

    # -- running -------------------------------------------------------------------------------
    def _run_tools(self, final: Trace) -> Generator[Trace, None, Any]:
        """Run (or replay) every approved call, then build the next round's call; None when the
        loop ends here (approval was needed)."""
        todo = [i for i, r in enumerate(self._runs) if r.approval in ("approved", "automatic") and r.status == "waiting"]
        if self.client.replay or self.concurrency == 1 or len(todo) < 2:
            for i in todo:
                self._runs[i] = self._execute(self._runs[i])
                yield self._combined(final, status="partial")
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(todo))) as pool:
                done = list(pool.map(self._execute, [self._runs[i] for i in todo]))
            for i, run in zip(todo, done):
                self._runs[i] = run
            yield self._combined(final, status="partial")
        self._runs = [_replace(r, status="declined", error=r.error or "declined by the user")
                      if r.approval == "rejected" and r.status == "waiting" else r for r in self._runs]
        if any(r.approval == "needed" for r in self._runs):
            names = ", ".join(sorted({r.name for r in self._runs if r.approval == "needed"}))
            self._notes.append(
                f"Approval needed for {names}: nobody can answer here (no terminal, no live notebook). "
                f"Nothing was run; rerun with --approve {names.replace(', ', ',')} (approve=...) or --approve all."
            )
            self.finished = True
            yield self._combined(final, status="complete")
            return None
        return self._next_call(final)

    def _execute(self, run: ToolRun) -> ToolRun:
        if self.client.replay:
            return self._replayed(run)
        tool = self.toolbox.callables[run.name]
        started = time.perf_counter()
        try:
            value = tool.call(self._parsed.get(run.call_id, {}))
        except Exception as exc:  # the model may recover: the error goes back as the result
            return _replace(run, status="error", error=self._clean(_one_line(exc)), duration=time.perf_counter() - started)
        duration = time.perf_counter() - started
        text, kind, note = serialise(value)
        text = self._clean(text)
        note = _join(note, self._compare(run, text))
        return _replace(run, status="ok", result=text, result_type=kind, note=note, duration=duration)

    def _replayed(self, run: ToolRun) -> ToolRun:
        recorded = self._recorded_results()
        content = recorded.get(run.call_id, recorded.get(f"{run.name}\0{run.arguments_raw}"))
        if content is None:
            return _replace(run, status="error", error="the recording holds no result for this call (nothing was run)")
        status, _approval, error = _recorded_state(content)
        if status == "replayed":
            return _replace(run, status="replayed", result=content, note="result from the recording; nothing was run")
        return _replace(run, status=status, error=error, note="from the recording; nothing was run")

    def _recorded_results(self) -> dict[str, str]:
        if self._recorded is None:
            self._recorded = recorded_results(self.client.recordings) if self.client.recordings else {}
        return self._recorded

    def _compare(self, run: ToolRun, text: str) -> str:
        if self.client.mode != "record":
            return ""
        recorded = self._recorded_results()
        before = recorded.get(run.call_id, recorded.get(f"{run.name}\0{run.arguments_raw}"))
        if before is None or before == text:
            return ""
        return f"tool {run.name} returned something different from the recording"

    def _clean(self, text: str) -> str:
        if self._scrub is None:
            from .scrub import KeyScrubber

            self._scrub = KeyScrubber(self.client.key()).text
        return self._scrub(text)

    def _next_call(self, final: Trace) -> Any:
        """Close the round: its steps, usage and messages are kept; the next call carries the
        assistant message with its tool_calls plus one tool message per call."""
        self._close_round(final)
        self._runs = []
        messages = self._messages + self._history
        call = {k: v for k, v in self._call.items() if k not in ("history", "files", "system")}
        return self.client.build(messages, stream=self.stream, tools=list(self.toolbox.specs), **call)

    def _close_round(self, final: Trace) -> None:
        self._steps.extend(self._round_steps(final))
        self._rounds.append(_round_of(final, len(self._rounds) + 1))
        self._history.extend(thaw(m) for m in final.messages)
        self._history.extend(_tool_message(r) for r in self._runs)
        self._notes.extend(n for n in final.notes if n not in self._notes)
        self._images += tuple(i for i in final.images if i not in self._images)
        self._events += final.events

    def _last_round_trace(self) -> Trace:
        if self._last is None:  # pragma: no cover - decide() comes after a round
            raise ConfigError("The tool loop has not called the model yet.")
        return self._last

    # -- the combined trace ------------------------------------------------------------------
    def _round_steps(self, trace: Trace, *, calls_kept: bool = False) -> list[Any]:
        runs = {r.call_id: r for r in self._runs} if not calls_kept else {}
        steps: list[Any] = []
        for step in trace.steps:
            if isinstance(step, FunctionCall) and step.id in runs:
                steps.append(runs.pop(step.id))
            else:
                steps.append(step)
        steps.extend(runs.values())  # a run whose call step is missing (never expected) stays visible
        return steps

    def _combined(self, trace: Trace, *, status: str | None = None, calls_kept: bool = False) -> Trace:
        rounds = tuple(self._rounds) + (_round_of(trace, len(self._rounds) + 1),)
        notes = tuple(self._notes) + tuple(n for n in trace.notes if n not in self._notes)
        messages = tuple(freeze(m) for m in self._history) + tuple(trace.messages)
        if self._runs and not calls_kept:
            messages += tuple(freeze(_tool_message(r)) for r in self._runs if r.status != "waiting")
        return trace.replace(
            request=self._first.info,
            steps=tuple(self._steps) + tuple(self._round_steps(trace, calls_kept=calls_kept)),
            usage=_summed([r.usage for r in rounds]),
            rounds=rounds if len(rounds) > 1 or self._runs else (),
            notes=notes,
            messages=messages,
            images=self._images + tuple(i for i in trace.images if i not in self._images),
            events=self._events + trace.events,
            elapsed=time.monotonic() - self._started,
            status=status or trace.status,
        )


def _tool_message(run: ToolRun) -> dict[str, Any]:
    if run.status in ("ok", "replayed"):
        content = run.result
    elif run.status == "declined" and run.approval == "rejected":
        content = DECLINED
    elif run.status == "invalid":
        content = f"Invalid call: {run.error}"
    else:
        content = f"Error: {run.error}"
    return {"role": "tool", "content": content, "tool_call_id": run.call_id}


def _round_of(trace: Trace, index: int) -> Round:
    return Round(index=index, usage=trace.usage, request_id=trace.request_id, finish_reason=trace.finish_reason,
                 elapsed=trace.elapsed, tool_calls=len(trace.function_calls))


def _summed(usages: Sequence[Usage]) -> Usage:
    def total(name: str) -> int | None:
        values = [getattr(u, name) for u in usages if getattr(u, name) is not None]
        return sum(values) if values else None

    plugins: dict[str, int] = {}
    for usage in usages:
        for key, value in usage.plugins.items():
            if isinstance(value, int):
                plugins[key] = plugins.get(key, 0) + value
    return Usage(
        input_tokens=total("input_tokens"), output_tokens=total("output_tokens"), total_tokens=total("total_tokens"),
        plugins=freeze(plugins), reasoning_tokens=total("reasoning_tokens"), cached_tokens=total("cached_tokens"),
    )


def _fields(run: ToolRun) -> dict[str, Any]:
    return {name: getattr(run, name) for name in run.__dataclass_fields__}


def _replace(run: ToolRun, **changes: Any) -> ToolRun:
    return ToolRun(**{**_fields(run), **changes})


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _jsonable(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed arguments as plain JSON values (dataclass instances as dicts) for the trace."""
    import dataclasses

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in arguments.items()}

