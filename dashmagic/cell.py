"""Cell text and flag values → plain data for the client. Pure: no IPython here.

Interpolation is brace-safe: single braces are always literal (prompts are full of JSON and
dict comprehensions, the bug jupyter-ai#27 never fixed); only ``{{ expr }}`` is replaced by
the value of ``expr`` in the user namespace.

Every bad input ends here as one :class:`ConfigError` line that says where the problem is
(the prompt, which ``{{ }}``, which ``--param``), never as a traceback from json, str() or
the UTF-8 encoder further down the pipeline.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError
from ._constants import KNOWN_PLUGINS

__all__ = [
    "interpolate",
    "parse_params",
    "parse_plugins",
    "check_prompt",
    "check_text",
    "normalise_files",
    "MAX_PROMPT_CHARS",
    "MAX_PARAM_DEPTH",
]

_PLACEHOLDER = re.compile(r"\{\{(.+?)\}\}", re.S)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: DashScope's qwen-plus context is ~128k tokens; a prompt past this is a paste accident.
MAX_PROMPT_CHARS = 500_000
#: No DashScope parameter nests more than a few levels; far deeper JSON is an accident, and
#: ~1,000 levels overflow the recursion of json and of everything that walks the request.
MAX_PARAM_DEPTH = 100


def interpolate(text: str, namespace: Mapping[str, Any], *, limit: int = MAX_PROMPT_CHARS) -> str:
    """Replace each ``{{ expr }}`` with ``str(eval(expr, namespace))``; values are not re-scanned.

    The size limit holds for the result: each value is measured as it is produced, so one
    huge value is refused before a huge prompt is built.
    """
    if len(text) > limit:
        raise ConfigError(_prompt_too_long(len(text), limit))
    size = len(text)

    def value(match: re.Match[str]) -> str:
        nonlocal size
        expr = match.group(1).strip()
        if not expr:
            return match.group(0)
        piece = _as_text(_evaluate(expr, namespace), expr)
        size += len(piece) - len(match.group(0))
        if size > limit:
            raise ConfigError(_too_long(expr, len(piece), limit))
        check_text(piece, f"The value of {_braced(expr)}")
        return piece

    return _PLACEHOLDER.sub(value, text)


def _evaluate(expr: str, namespace: Mapping[str, Any]) -> Any:
    try:
        return eval(expr, dict(namespace))  # noqa: S307 - the user's own expression, in their own namespace
    except NameError as exc:
        name = getattr(exc, "name", None) or _describe(exc)
        raise ConfigError(
            f"{_braced(expr)}: name {_visible(str(name), 80)!r} is not defined. Define it in a cell above, "
            "or pass --no-interpolate to send the braces literally."
        ) from None
    except SyntaxError as exc:
        raise ConfigError(f"{_braced(expr)} is not a valid Python expression ({_visible(exc.msg or '', 200)}).") from None
    except Exception as exc:  # noqa: BLE001 - any error of the user's expression becomes one line
        raise ConfigError(f"Evaluating {_braced(expr)} raised {type(exc).__name__}: {_describe(exc)}") from None


def _as_text(result: Any, expr: str) -> str:
    if isinstance(result, str):
        return result
    try:
        text = str(result)
    except Exception as exc:  # noqa: BLE001 - a broken __str__ (or one returning a non-str) is the user's
        raise ConfigError(
            f"{_braced(expr)}: str() of its {type(result).__name__} value raised {type(exc).__name__}: "
            f"{_describe(exc)}. Interpolate a string instead (e.g. {{{{ repr(x) }}}})."
        ) from None
    return text


def _too_long(expr: str, length: int, limit: int) -> str:
    if length > limit:
        what = f"The value of {_braced(expr)} is {length:,} characters, more than the {limit:,}"
    else:
        what = f"With {_braced(expr)} the prompt is over {limit:,} characters, more than the {limit:,}"
    return f"{what} dashmagic sends (the model could not read it all). Interpolate a part or a summary of it."


def _braced(expr: str) -> str:
    return f"{{{{ {_visible(expr, 80)} }}}}"


def _visible(text: str, limit: int) -> str:
    """``text`` as one short printable line: whitespace runs collapsed, controls escaped."""
    head = " ".join(text[: limit * 4].split())
    clipped = head if len(head) <= limit else head[:limit] + "…"
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in clipped)


def _describe(exc: BaseException) -> str:
    try:
        return _visible(str(exc), 200)
    except Exception:  # noqa: BLE001 - an exception whose own __str__ fails still gets a line
        return "(its message could not be shown)"


def check_text(text: str, where: str) -> str:
    """Refuse a lone surrogate: it is not Unicode, and the UTF-8 encoder would fail on it later.

    ``where`` starts the message (``"The prompt"``, ``"--param stop"``). Lone surrogates come
    from bytes decoded with ``errors="surrogateescape"`` or from JSON escapes like ``"\\ud800"``.
    """
    found = _SURROGATE.search(text)
    if found is not None:
        raise ConfigError(
            f"{where} contains a lone surrogate U+{ord(found.group()):04X} at character {found.start() + 1}: "
            "it is not a character and cannot be sent. Decode the text with its real encoding, "
            "or remove it."
        )
    return text


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """``--param key=value``: the value is JSON when it parses (``0.2`` → float), else a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"--param expects key=value (e.g. --param temperature=0.2), got {_visible(item, 80)!r}."
            )
        check_text(key, "A --param name")
        params[key] = _param_value(key, raw.strip())
    return params


def _param_value(key: str, raw: str) -> Any:
    flag = f"--param {_visible(key, 40)}"
    try:
        value = json.loads(raw, parse_constant=lambda name: _refuse_constant(flag, name))
    except RecursionError:
        raise ConfigError(f"{flag}: the JSON is nested deeper than {MAX_PARAM_DEPTH} levels.") from None
    except ValueError:
        if raw[:1] in "{[\"":
            raise ConfigError(
                f"{flag}: {_visible(raw, 80)!r} looks like JSON but does not parse; quote it or fix the JSON."
            ) from None
        return check_text(raw, flag)
    _check_json(value, flag)
    return value


def _refuse_constant(flag: str, name: str) -> Any:
    raise ConfigError(f"{flag}: {name} is not a JSON number (JSON has no NaN or Infinity); give a finite number.")


def _check_json(value: Any, flag: str) -> None:
    """One pass over a parsed value, without recursion: depth, lone surrogates, overflowed floats."""
    stack: list[tuple[Any, str, int]] = [(value, flag, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_PARAM_DEPTH:
            raise ConfigError(f"{flag}: the JSON is nested deeper than {MAX_PARAM_DEPTH} levels.")
        if isinstance(item, str):
            check_text(item, where)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{where}: the number is too large for a float (it overflows to infinity).")
        elif isinstance(item, dict):
            for name, child in item.items():
                check_text(name, f"A key in {where}")
                stack.append((child, f"{where}.{_visible(name, 40)}", depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{index}]", depth + 1) for index, child in enumerate(item))


def parse_plugins(text: str | Iterable[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"a, b"`` → ``(("a", "b"), unknown)``; unknown names are still sent (new plugins exist)."""
    if not text:
        return (), ()
    items = text.split(",") if isinstance(text, str) else list(text)
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"Plugin names must be strings, got {type(item).__name__} {_visible(repr(item), 60)}.")
    names = tuple(dict.fromkeys(p.strip() for p in items if p and p.strip()))
    unknown = tuple(n for n in names if n not in KNOWN_PLUGINS)
    return names, unknown


def normalise_files(files: str | Iterable[str] | None) -> tuple[str, ...]:
    """``files=`` as a tuple of URLs: one string is one file (not its characters).

    Only the shape is checked here; whether each is a URL the service can fetch is
    checked where the request is built.
    """
    if files is None:
        return ()
    if isinstance(files, str):
        return (files,)
    if isinstance(files, (bytes, bytearray, Mapping)) or not isinstance(files, Iterable):
        raise ConfigError(f"files must be a URL or a list of URLs, got {type(files).__name__}.")
    urls = tuple(files)
    for index, url in enumerate(urls):
        if not isinstance(url, str):
            raise ConfigError(f"files must be URLs (strings); item {index} is {type(url).__name__}.")
    return urls


def check_prompt(text: str) -> str:
    if not text.strip():
        raise ConfigError(
            "The cell is empty: write the prompt below the %%dashscope line "
            "(or after %dashscope on the same line)."
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise ConfigError(_prompt_too_long(len(text), MAX_PROMPT_CHARS))
    return check_text(text, "The prompt")


def _prompt_too_long(length: int, limit: int) -> str:
    return (
        f"The prompt is {length:,} characters, more than the {limit:,} dashmagic sends "
        "(the model could not read it all). Summarise it or send a file with --file."
    )
