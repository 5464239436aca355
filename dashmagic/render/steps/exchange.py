"""``exchange``: a plugin call and the result that answered it, one collapsible step.

What is generic lives here (the summary line, the status badge, the raw-text fallbacks, the
"Result" divider); what a plugin's arguments and results look like lives with the plugin, in
its :class:`~dashmagic.plugins.PluginSpec`, found by the type of the step's view.
"""

from __future__ import annotations

from ...plugins import call_spec, result_spec
from ...trace import PluginCall, PluginResult, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import Exchange, clean, exchange_state, plugin_label, redact, truncate
from . import StepView

__all__ = ["VIEW", "summarize_arguments"]

_BAD_ARGS = "arguments are not valid JSON; raw text shown"
_BAD_CONTENT = "content is not valid JSON; raw text shown"
_TEXT_SUMMARY = 200  # characters of arguments on the text transcript's call line


def summarize_arguments(call: PluginCall | None, limit: int = h.SUMMARY_LIMIT) -> str:
    """A one-line, redacted summary of what the plugin was asked."""
    if call is None:
        return ""
    spec = call_spec(call.view)
    text = spec.summary(call.view) if spec is not None and spec.summary is not None else call.arguments_raw
    return truncate(redact(clean(text)), limit)


# -- HTML ------------------------------------------------------------------------------------


def _html_call(call: PluginCall, running: bool) -> str:
    spec = call_spec(call.view)
    if spec is not None and spec.html_call is not None:
        return spec.html_call(call.view)
    # While the call is still streaming its JSON is incomplete: no warning until it is final.
    warn = "" if running or not call.arguments_error else h.warning(_BAD_ARGS)
    return warn + h.pre(call.arguments_raw) if call.arguments_raw else warn


def _html_result(result: PluginResult, images: h.Images | None) -> str:
    parts = []
    if result.status is not None and not result.ok and result.status.message:
        parts.append(f'<div class="dm-error-message">{h.esc(result.status.message)}</div>')
    spec = result_spec(result.view)
    if spec is not None and spec.html_result is not None:
        parts.append(spec.html_result(result.view, images))
    else:
        if result.content_error:
            parts.append(h.warning(_BAD_CONTENT))
        raw = result.content_raw
        parts.append(h.pre(raw) if raw else '<div class="dm-muted">(empty)</div>')
    return "".join(parts)


def _html_summary(exchange: Exchange, trace: Trace) -> str:
    plugin, name = exchange.plugin, exchange.name
    parts = [f'<span class="dm-plugin">{h.esc(plugin)}</span>']
    if name and name != plugin:
        parts.append(f'<span class="dm-display">({h.esc(name)})</span>')
    args = summarize_arguments(exchange.call, limit=h.SUMMARY_LIMIT)
    if args:
        parts.append(f'<span class="dm-args">{h.esc(args)}</span>')
    parts.append(h.badge(*exchange_state(exchange, trace)))
    # Spaces between the spans: ignored by the flex layout, but they keep the line readable
    # where the <style> block is stripped (untrusted JupyterLab output).
    return f"<summary>{' '.join(parts)}</summary>"


def _html(exchange: Exchange, trace: Trace, images: h.Images | None) -> str:
    body = []
    running = exchange.result is None and not trace.done
    if exchange.call is not None:
        body.append(_html_call(exchange.call, running))
    if exchange.result is not None:
        if body and body[-1]:
            body.append('<div class="dm-section">Result</div>')
        body.append(_html_result(exchange.result, images))
    inner = "".join(b for b in body if b)
    content = f'<div class="dm-body">{inner}</div>' if inner else ""
    state = " open" if _unfolded(exchange, running) else ""
    return f'<details class="dm-step"{state}>{_html_summary(exchange, trace)}{content}</details>'


def _unfolded(exchange: Exchange, running: bool) -> bool:
    """Whether the step is emitted open: while it runs, when it failed, or when it shows a figure.

    A display update replaces the output's DOM, so a reader's click lives only until the next
    snapshot. The fold state is therefore a function of the step alone and never changes once
    the step is done: a step folded while it ran stays folded through the answer's stream.
    A failure stays in view (its reason is in the body), and so do figures (the picture is the
    result the reader came for).
    """
    result = exchange.result
    if running or (result is not None and not result.ok):
        return True
    return bool(getattr(result.view if result is not None else None, "figures", ()))


# -- text ------------------------------------------------------------------------------------


def _text_call(call: PluginCall, label: str) -> list[str]:
    spec = call_spec(call.view)
    if spec is not None and spec.text_call is not None:
        return spec.text_call(call.view, label)
    if spec is not None:  # a view whose one-line summary says it all
        return [f"[plugin call] {label}: {summarize_arguments(call, limit=_TEXT_SUMMARY)}"]
    lines = [t.call_head(label)]
    if call.arguments_error:
        lines.append(f"{t.INDENT}(arguments are not valid JSON; raw text shown)")
    return lines + t.indent(t.safe(call.arguments_raw))


def _text_result_body(result: PluginResult, images: t.Images | None) -> list[str]:
    spec = result_spec(result.view)
    if spec is not None and spec.text_result is not None:
        return spec.text_result(result.view, images)
    lines = ["(content is not valid JSON; raw text shown)"] if result.content_error else []
    return lines + (t.safe(result.content_raw).split("\n") if result.content_raw else [])


def _text_result(exchange: Exchange, trace: Trace, label: str, images: t.Images | None) -> list[str]:
    _, badge = exchange_state(exchange, trace)
    head = f"[plugin result] {label} {badge}"
    result = exchange.result
    if result is None:
        return [head]
    body = _text_result_body(result, images)
    if result.status is not None and not result.ok and result.status.message:
        body.insert(0, t.safe(result.status.message))
    if len(body) == 1 and not body[0].startswith("[") and len(body[0]) <= 120:
        return [f"{head}: {body[0]}"]
    return [head, *(t.INDENT + line if line else "" for line in body)]


def _text(exchange: Exchange, trace: Trace, images: t.Images | None) -> list[str]:
    label = plugin_label(exchange)
    lines = _text_call(exchange.call, label) if exchange.call is not None else []
    if exchange.result is not None or exchange.call is not None:
        lines += _text_result(exchange, trace, label, images)
    return lines


VIEW: StepView[Exchange] = StepView(Exchange.kind, Exchange, _html, _text)
