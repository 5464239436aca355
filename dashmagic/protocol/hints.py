"""One-line hints for refusals that point at the other generation or the other endpoint. Pure.

Each function reads the service's message (and code) of an :class:`~dashmagic.errors.ApiError`
and the :class:`~dashmagic.request.Call` it answered, and returns one sentence saying which flag
or endpoint to use instead, or None. The wire formats' ``hint`` hooks combine them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..request import MULTIMODAL_GENERATION_PATH

if TYPE_CHECKING:
    from ..errors import ApiError
    from ..request import Call

__all__ = ["Rule", "endpoint_hint", "plugin_hint", "streaming_hint", "first_hint"]


def _said(error: ApiError) -> str:
    return f"{error.code or ''} {error.service_message}".lower()


def endpoint_hint(error: ApiError, call: Call) -> str | None:
    """``url error``: the model is served on the other endpoint (Qwen 3.5+ are multimodal, §1)."""
    if "url error" not in _said(error):
        return None
    if call.url.endswith(MULTIMODAL_GENERATION_PATH):
        return (f"{call.info.model} may be a text-generation model: add --endpoint text "
                "(endpoint='text').")
    return (f"{call.info.model} may be served on the multimodal endpoint (as Qwen 3.5 / 3.6 / 3.7 are): add "
            "--endpoint multimodal (endpoint='multimodal').")


def plugin_hint(error: ApiError, call: Call) -> str | None:
    """The plugin header refused: gated on today's accounts, or plugins with deltas (§2)."""
    said = _said(error)
    if "incremental_output" in said and "plugin" in said:
        return ("Plugin streams are snapshots: remove incremental_output from --param (parameters=), or use "
                "today's built-in tools (--code-interpreter / code_interpreter=True), which stream deltas.")
    if "invalidplugin" in said or (error.status_code == 403 and call.info.plugins):
        return ("The plugin header (--plugins) is the older generation and is gated on today's accounts; use "
                "the built-in tools instead: --code-interpreter, --search, --thinking (code_interpreter=True, "
                "search=True, thinking=True).")
    return None


def streaming_hint(error: ApiError, call: Call) -> str | None:
    """Refusals about streaming and thinking that depend on the model (§2, §3)."""
    said = _said(error)
    if "incremental_output" in said and "stream" in said:
        return "incremental_output works only in streamed calls: remove it from --param, or add --stream."
    if "enable_thinking" in said and "non-stream" in said.replace("non_stream", "non-stream"):
        return "This model thinks only in streamed calls: add --stream (stream()), or --no-thinking (thinking=False)."
    if "enable_thinking" in said and "restricted to true" in said:
        return "This model always thinks: drop --no-thinking (thinking=False)."
    return None


Rule = Callable[["ApiError", "Call"], "str | None"]


def first_hint(error: ApiError, call: Call, *rules: Rule) -> str | None:
    """The first hint any of ``rules`` gives."""
    for rule in rules:
        hint = rule(error, call)
        if hint:
            return hint
    return None
