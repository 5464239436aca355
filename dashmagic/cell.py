"""Cell text and flag values → plain data for the client. Pure: no IPython here.

Interpolation is brace-safe: single braces are always literal (prompts are full of JSON and
dict comprehensions, the bug jupyter-ai#27 never fixed); only ``{{ expr }}`` is replaced by
the value of ``expr`` in the user namespace.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ConfigError
from ._constants import KNOWN_PLUGINS

__all__ = ["interpolate", "parse_params", "parse_plugins", "check_prompt", "MAX_PROMPT_CHARS"]

_PLACEHOLDER = re.compile(r"\{\{(.+?)\}\}", re.S)
#: DashScope's qwen-plus context is ~128k tokens; a prompt past this is a paste accident.
MAX_PROMPT_CHARS = 500_000


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace each ``{{ expr }}`` with ``str(eval(expr, namespace))``; values are not re-scanned."""

    def value(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if not expr:
            return match.group(0)
        try:
            result = eval(expr, dict(namespace))  # noqa: S307 - the user's own expression, in their own namespace
        except NameError as exc:
            name = getattr(exc, "name", None) or str(exc)
            raise ConfigError(
                f"{{{{ {expr} }}}}: name {name!r} is not defined. Define it in a cell above, "
                "or pass --no-interpolate to send the braces literally."
            ) from None
        except SyntaxError as exc:
            raise ConfigError(f"{{{{ {expr} }}}} is not a valid Python expression ({exc.msg}).") from None
        except Exception as exc:  # noqa: BLE001 - any error of the user's expression becomes one line
            raise ConfigError(f"Evaluating {{{{ {expr} }}}} raised {type(exc).__name__}: {exc}") from None
        return result if isinstance(result, str) else str(result)

    return _PLACEHOLDER.sub(value, text)


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """``--param key=value``: the value is JSON when it parses (``0.2`` → float), else a string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--param expects key=value (e.g. --param temperature=0.2), got {item!r}.")
        raw = raw.strip()
        try:
            params[key] = json.loads(raw)
        except ValueError:
            if raw[:1] in "{[\"":
                raise ConfigError(
                    f"--param {key}: {raw!r} looks like JSON but does not parse; quote it or fix the JSON."
                ) from None
            params[key] = raw
    return params


def parse_plugins(text: str | Iterable[str] | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"a, b"`` → ``(("a", "b"), unknown)``; unknown names are still sent (new plugins exist)."""
    if not text:
        return (), ()
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(p.strip() for p in items if p and p.strip()))
    unknown = tuple(n for n in names if n not in KNOWN_PLUGINS)
    return names, unknown


def check_prompt(text: str) -> str:
    if not text.strip():
        raise ConfigError(
            "The cell is empty: write the prompt below the %%dashscope line "
            "(or after %dashscope on the same line)."
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise ConfigError(
            f"The prompt is {len(text):,} characters, more than the {MAX_PROMPT_CHARS:,} dashmagic sends "
            "(the model could not read it all). Summarise it or send a file with --file."
        )
    return text
