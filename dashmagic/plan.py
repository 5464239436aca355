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
    plugins, unknown = parse_plugins(args.plugins if args.plugins is not None else traits["plugins"])
    _refuse_misspellings(unknown)
    stream = args.stream if args.stream is not None else (traits["stream"] if traits["stream"] is not None else in_kernel)
    return CellPlan(
        prompt=prompt,
        stream=bool(stream),
        client=_client_options(args, traits),
        call={
            "plugins": plugins,
            "model": args.model or traits["model"],
            "system": traits["system"] if args.system is None else args.system,
            "files": tuple(args.file),
            "seed": args.seed,
            "parameters": parse_params(args.param),
            "history": tuple(history) if args.chat else (),
        },
        dry_run=bool(args.dry_run),
        out=args.out,
        chat=bool(args.chat),
        unknown_plugins=unknown,
    )


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
