"""One ``%%dashscope`` cell → what to do: the Client's options, the call's, the display's. Pure.

The magic parses its line with argparse and hands the parsed flags, the cell text, its traits
and the user namespace here; :func:`plan_cell` decides everything before any I/O (so a bad flag
costs nothing and sends nothing). No IPython import: the rules are testable as plain functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

from ._constants import KNOWN_PLUGINS
from .cell import check_prompt, interpolate, parse_params, parse_plugins
from .config import check_seconds
from .errors import ConfigError
from ._constants import DEFAULT_MODEL

__all__ = ["CellPlan", "BatchPlan", "plan_cell"]


@dataclass(frozen=True, slots=True)
class CellPlan:
    """Everything one cell will do, decided before any I/O."""

    prompt: str
    stream: bool
    client: Mapping[str, Any]
    call: Mapping[str, Any]
    dry_run: bool = False
    out: str | None = None
    chat: bool = False
    unknown_plugins: tuple[str, ...] = field(default=())
    #: ``--over``: the cell is a template run once per row (see :class:`BatchPlan`).
    batch: BatchPlan | None = None
    #: ``--run-locally``: run the trace's code in a separate process afterwards (see local_run).
    run_locally: bool = False
    #: ``--allow-invisible``: run it even when it holds bidi/invisible characters.
    allow_invisible: bool = False
    #: ``--approve`` / ``--max-rounds`` when ``--tools`` names Python functions (the tool loop).
    tool_loop: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """``--over df``: the rows, where answers go, and the record file (``--record``/``--replay``)."""

    over: str
    into: str | None = None
    into_field: str | None = None
    concurrency: int = 8
    record: str | None = None
    replay: bool = False


def plan_cell(
    args: Any,
    cell: str | None,
    traits: Mapping[str, Any],
    namespace: Mapping[str, Any],
    *,
    history: Sequence[Mapping[str, Any]] = (),
    in_kernel: bool = False,
) -> CellPlan:
    """``args``: the parsed flags; ``cell``: the cell body (None for the line magic, whose prompt
    is ``args.prompt``); ``traits``: the magic's configured defaults."""
    if cell is not None and args.prompt:
        raise ConfigError(
            f"Unexpected words on the %%dashscope line: {' '.join(args.prompt)!r}. The prompt goes "
            "in the cell below the line (or use the line magic %dashscope ... on one line)."
        )
    text = " ".join(args.prompt) if cell is None else cell
    # A cell body ends with a newline; surrounding blank space is never part of the question.
    prompt = check_prompt(text).strip()
    batch = _batch_plan(args, namespace)
    if batch is None and traits["interpolate"] and not args.no_interpolate:
        prompt = check_prompt(interpolate(prompt, namespace))
    if args.out is not None and not args.out.isidentifier():
        raise ConfigError(f"--out needs a Python variable name, got {args.out!r}.")
    tools = _tool_options(args, namespace)
    # Configured default plugins are the older generation: a cell asking for today's tools skips them.
    plugins, unknown = parse_plugins(args.plugins if args.plugins is not None else ([] if tools else traits["plugins"]))
    _refuse_misspellings(unknown)
    stream = args.stream if args.stream is not None else (traits["stream"] if traits["stream"] is not None else in_kernel)
    if args.stream is None and tools.get("code_interpreter"):
        stream = True  # the interpreter runs only in streamed calls: a cell that did not choose streams
    return CellPlan(
        prompt=prompt,
        stream=bool(stream),
        client=_client_options(args, traits, batch),
        call={
            "plugins": plugins,
            "model": args.model or _default_model(args, traits["model"]),
            "system": traits["system"] if args.system is None else args.system,
            "files": tuple(args.file),
            "seed": args.seed,
            "parameters": parse_params(args.param),
            "history": tuple(history) if args.chat else (),
            **tools,
        },
        dry_run=bool(args.dry_run),
        out=args.out,
        chat=bool(args.chat),
        unknown_plugins=unknown,
        batch=batch,
        **_local_run_flags(args),
        tool_loop=_tool_loop_options(args, tools),
    )


def _batch_plan(args: Any, namespace: Mapping[str, Any]) -> BatchPlan | None:
    """The ``--over`` flags; the template itself is filled per row by :func:`dashmagic.map`."""
    over = getattr(args, "over", None)
    if over is None:
        for flag in ("into", "concurrency"):
            if getattr(args, flag, None) is not None:
                raise ConfigError(f"--{flag} works with --over DATAFRAME (one prompt per row).")
        return None
    if not over.isidentifier() or over not in namespace:
        raise ConfigError(f"--over needs the name of a DataFrame (or list of dicts) defined above, got {over!r}.")
    if args.chat or args.stream:
        raise ConfigError("--over runs one independent prompt per row: it does not take --chat or --stream.")
    if args.no_interpolate:
        raise ConfigError("--over fills {{ row.col }} per row; it cannot be combined with --no-interpolate.")
    into, _, into_field = (args.into or "").partition("=")
    if args.into is not None and (not into.strip() or (_ and not into_field.strip())):
        raise ConfigError(f"--into needs a column name, or COLUMN=FIELD for a JSON answer's field; got {args.into!r}.")
    concurrency = 8 if args.concurrency is None else args.concurrency
    if not 1 <= concurrency <= 64:
        raise ConfigError(f"--concurrency must be from 1 to 64, got {concurrency}.")
    record = args.record if args.record is not None else args.replay
    if args.record is not None and args.replay is not None:
        raise ConfigError("Give --record PATH (answer and save) or --replay PATH (answer from the file), not both.")
    if record is not None and not record.strip():
        raise ConfigError("--record/--replay need the path of the batch's record file.")
    return BatchPlan(over=over, into=into.strip() or None, into_field=into_field.strip() or None,
                     concurrency=concurrency, record=record, replay=args.replay is not None)


def _local_run_flags(args: Any) -> dict[str, bool]:
    run, allow = bool(getattr(args, "run_locally", False)), bool(getattr(args, "allow_invisible", False))
    if allow and not run:
        raise ConfigError("--allow-invisible only matters with --run-locally; add --run-locally, or drop it.")
    if run and args.dry_run:
        raise ConfigError("--run-locally runs the answer's code, and --dry-run sends nothing: use one of them.")
    return {"run_locally": run, "allow_invisible": allow}


def _refuse_misspellings(unknown: Sequence[str]) -> None:
    """A name close to a known plugin is a typo: sending it only earns a 403 (and, live, a
    billed round trip). A name close to none may be a new plugin, so it is still sent (with
    the magic's warning)."""
    import difflib

    for name in unknown:
        close = difflib.get_close_matches(name.lower(), KNOWN_PLUGINS, n=1, cutoff=0.75)
        if close:
            raise ConfigError(
                f"unknown plugin {name!r}; did you mean {close[0]!r}? Known plugins: {', '.join(KNOWN_PLUGINS)}. "
                "Nothing was sent."
            )


def _client_options(args: Any, traits: Mapping[str, Any], batch: BatchPlan | None = None) -> dict[str, Any]:
    mode, recordings = traits["mode"] or None, traits["recordings"] or None
    if batch is not None and batch.replay:
        mode = "replay"  # answered from the batch's record file, offline
    elif batch is None and (args.record is not None or args.replay is not None):
        from .transport import choose_mode  # the flags' rules: '' is refused, the two exclude each other

        mode, recordings = choose_mode(None, None, record=args.record, replay=args.replay)
    read = check_seconds(args.timeout, "--timeout") if args.timeout is not None else traits["timeout"]
    return {
        "mode": mode,
        "recordings": recordings,
        "base_url": traits["base_url"] or None,
        "timeout": (traits["connect_timeout"], read),
        "retries": traits["retries"],
        "embed_images": traits["embed_images"],
        "image_hosts": tuple(traits["image_hosts"]),
        "max_image_bytes": traits["max_image_bytes"],
    }


# -- today's built-in tools (--thinking, --code-interpreter, --search…, --tools, --endpoint) --------


def _default_model(args: Any, configured: str) -> str:
    """The configured model, unless it is the stock default and thinking or the built-in code
    interpreter is asked: then ``qwen3-max``, which does both (the stock qwen-plus does not)."""
    thinking = getattr(args, "thinking", None) or getattr(args, "thinking_budget", None) is not None
    if configured == DEFAULT_MODEL and (thinking or getattr(args, "code_interpreter", False)):
        from .request import TOOLS_MODEL

        return TOOLS_MODEL
    return configured


def _tool_options(args: Any, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The cell's built-in-tool flags as ``CallKwargs`` (only those given, so the plugin generation
    is untouched when none is)."""
    options: dict[str, Any] = {}
    if getattr(args, "thinking", None) is not None:
        options["thinking"] = args.thinking
    if getattr(args, "thinking_budget", None) is not None:
        options["thinking_budget"] = args.thinking_budget
    if getattr(args, "code_interpreter", False):
        options["code_interpreter"] = True
    search = _search_options(args)
    if search is not None:
        options["search"] = search
    if getattr(args, "tools", None):
        options["tools"] = _tools_from(args.tools, namespace)
    if getattr(args, "endpoint", None):
        options["endpoint"] = args.endpoint
    return options


def _search_options(args: Any) -> dict[str, Any] | None:
    given = {
        "strategy": getattr(args, "search_strategy", None),
        "forced": True if getattr(args, "forced_search", False) else None,
        "sources": True if getattr(args, "sources", False) else None,
        "citations": True if getattr(args, "citations", False) else None,
        "freshness": getattr(args, "freshness", None),
    }
    options = {k: v for k, v in given.items() if v is not None}
    if not options and not getattr(args, "search", False):
        return None
    return options  # any search option implies --search


def _tools_from(names: str, namespace: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``--tools a,b``: variables holding a Python function (run by the tool loop), a JSON
    tool spec, or a list of them."""
    tools: list[Mapping[str, Any]] = []
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        if not name.isidentifier() or name not in namespace:
            raise ConfigError(
                f"--tools names variables holding tool specs; {name!r} is not defined in this notebook "
                "(e.g. weather = {'type': 'function', 'function': {'name': 'get_weather', 'parameters': {...}}})."
            )
        value = namespace[name]
        items = [value] if isinstance(value, Mapping) or callable(value) else value
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise ConfigError(f"--tools: {name} must be a tool spec (a dict), a Python function, or a list of them, got {type(value).__name__}.")
        tools.extend(items)
    return tools


# -- the tool loop (--tools naming Python functions): --approve, --max-rounds ------------------------


def _tool_loop_options(args: Any, tools: Mapping[str, Any]) -> dict[str, Any]:
    """``--approve all|NAMES`` and ``--max-rounds N``; refused without a function in ``--tools``
    (they would silently do nothing)."""
    from .tools import has_callables

    options: dict[str, Any] = {}
    approve, rounds = getattr(args, "approve", None), getattr(args, "max_rounds", None)
    if approve is not None:
        from .tool_loop import check_approve

        options["approve"] = check_approve(approve)
    if rounds is not None:
        options["max_rounds"] = rounds
    if options and not has_callables(tools.get("tools")):
        raise ConfigError("--approve and --max-rounds work with --tools naming Python functions (def ...) to run here.")
    return options
