"""One ``%%dashscope`` cell → what to do: the Client's options, the call's, the display's. Pure.

The magic parses its line with argparse and hands the parsed flags, the cell text, its traits
and the user namespace here; :func:`plan_cell` decides everything before any I/O (so a bad flag
costs nothing and sends nothing). No IPython import: the rules are testable as plain functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

from .cell import check_prompt, interpolate, parse_params, parse_plugins
from .config import check_seconds
from .errors import ConfigError
from ._constants import DEFAULT_MODEL

__all__ = ["CellPlan", "plan_cell"]


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
    if traits["interpolate"] and not args.no_interpolate:
        prompt = check_prompt(interpolate(prompt, namespace))
    if args.out is not None and not args.out.isidentifier():
        raise ConfigError(f"--out needs a Python variable name, got {args.out!r}.")
    tools = _tool_options(args, namespace)
    # Configured default plugins are the older generation: a cell asking for today's tools skips them.
    plugins, unknown = parse_plugins(args.plugins if args.plugins is not None else ([] if tools else traits["plugins"]))
    stream = args.stream if args.stream is not None else (traits["stream"] if traits["stream"] is not None else in_kernel)
    return CellPlan(
        prompt=prompt,
        stream=bool(stream),
        client=_client_options(args, traits),
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
    )


def _client_options(args: Any, traits: Mapping[str, Any]) -> dict[str, Any]:
    mode, recordings = traits["mode"] or None, traits["recordings"] or None
    if args.record is not None or args.replay is not None:
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
    """``--tools a,b``: variables holding a JSON tool spec or a list of them."""
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
        items = [value] if isinstance(value, Mapping) else value
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise ConfigError(f"--tools: {name} must be a tool spec (a dict) or a list of them, got {type(value).__name__}.")
        tools.extend(items)
    return tools
