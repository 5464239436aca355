"""The one scoped stylesheet of the HTML trace.

Every selector starts with ``.dashmagic-trace``. Colours come from JupyterLab's theme variables
(so light and dark themes both work) with fallbacks for other frontends; tints are
semi-transparent so they read on any background. In an *untrusted* JupyterLab output the
sanitizer drops the ``<style>`` element entirely: the trace then falls back to plain
``details``/``table``/``pre`` styling, which stays readable in both themes. That is also why code
tokens use Pygments *classes* (coloured here via ``--jp-mirror-editor-*``) rather than inline
colours: fixed inline colours would survive the sanitizer but be unreadable in one of the themes.
"""

from __future__ import annotations

__all__ = ["CSS"]

_R = ".dashmagic-trace"
_MUTED = "var(--jp-ui-font-color2,#808080)"
_BORDER = "var(--jp-border-color2,rgba(127,127,127,.35))"
_MONO = (
    "var(--jp-code-font-family,ui-monospace,SFMono-Regular,Menlo,Consolas,"
    "'DejaVu Sans Mono',monospace)"
)

_RULES: tuple[tuple[str, str], ...] = (
    (
        "",
        "font-family:var(--jp-content-font-family,system-ui,-apple-system,'Segoe UI',Helvetica,"
        "Arial,sans-serif);font-size:var(--jp-content-font-size1,14px);line-height:1.5;"
        "color:var(--jp-content-font-color1,inherit);max-width:980px;margin:2px 0",
    ),
    (" *", "box-sizing:border-box"),
    (" a", "color:var(--jp-content-link-color,#2f74d0);text-decoration:none"),
    (" a:hover", "text-decoration:underline"),
    (" .dm-muted", f"color:{_MUTED}"),
    (" .dm-mono", f"font-family:{_MONO};font-size:.92em"),
    (
        " .dm-thought",
        f"color:{_MUTED};font-size:.88em;margin:3px 0;white-space:pre-wrap;overflow-wrap:anywhere",
    ),
    (" .dm-label", "font-style:italic;margin-right:.2em"),
    (
        " details.dm-step",
        f"border:1px solid {_BORDER};border-radius:6px;margin:6px 0;overflow:hidden;"
        "background:var(--jp-layout-color1,transparent)",
    ),
    (
        " details.dm-step>summary",
        "cursor:pointer;padding:4px 10px;background:rgba(127,127,127,.08);font-size:.92em;"
        "line-height:1.7;display:flex;align-items:center;gap:.5em;list-style:none;min-width:0",
    ),
    (" details.dm-step>summary::-webkit-details-marker", "display:none"),
    (
        " details.dm-step>summary::before",
        f"content:'\\25B8';color:{_MUTED};flex:none;width:.8em;font-size:.9em",
    ),
    (" details.dm-step[open]>summary::before", "content:'\\25BE'"),
    (" details.dm-step>summary:hover", "background:rgba(127,127,127,.14)"),
    (" details.dm-step[open]>summary", f"border-bottom:1px solid {_BORDER}"),
    (" details.dm-step[open]>summary:last-child", "border-bottom:0"),
    (
        " .dm-plugin",
        f"font-family:{_MONO};font-weight:600;font-size:.95em;flex:0 0 auto;max-width:35%;"
        "overflow:hidden;text-overflow:ellipsis;white-space:nowrap",
    ),
    (
        " .dm-display",
        f"color:{_MUTED};flex:0 1 auto;max-width:25%;overflow:hidden;text-overflow:ellipsis;"
        "white-space:nowrap",
    ),
    (
        " .dm-args",
        f"color:{_MUTED};flex:1 1 auto;min-width:0;overflow:hidden;text-overflow:ellipsis;"
        "white-space:nowrap",
    ),
    (
        " summary .dm-badge",
        "flex:0 0 auto;margin-left:auto;max-width:35%;overflow:hidden;text-overflow:ellipsis",
    ),
    (
        " .dm-badge",
        "display:inline-block;padding:0 .6em;border-radius:999px;font-size:.8em;font-weight:600;"
        "line-height:1.6;white-space:nowrap;border:1px solid transparent;vertical-align:baseline",
    ),
    (" .dm-ok", "background:rgba(76,175,80,.16);border-color:rgba(76,175,80,.45)"),
    (" .dm-fail", "background:rgba(244,67,54,.16);border-color:rgba(244,67,54,.5)"),
    (" .dm-warn", "background:rgba(255,152,0,.16);border-color:rgba(255,152,0,.5)"),
    (" .dm-running,.dashmagic-trace .dm-missing,.dashmagic-trace .dm-info",
     "background:rgba(127,127,127,.12);"
     f"border-color:rgba(127,127,127,.35);color:{_MUTED}"),
    (" .dm-body", "padding:6px 10px 8px"),
    # Today's generation: thinking, the built-in code interpreter, web search, function calls.
    (" details.dm-reasoning", "border-style:dashed"),
    (" details.dm-reasoning>summary", "background:transparent"),
    (" details.dm-reasoning .dm-plugin", "font-family:inherit;font-style:italic;font-weight:600"),
    (
        " .dm-reasoning-text",
        f"color:{_MUTED};font-size:.9em;white-space:pre-wrap;overflow-wrap:anywhere",
    ),
    (" .dm-code-exec .dm-note", "margin-top:4px"),
    (" .dm-sources", "list-style:none;margin:2px 0;padding:0"),
    (" .dm-sources li", "margin:2px 0;overflow-wrap:anywhere"),
    (" .dm-src-index", f"font-family:{_MONO};font-size:.85em;color:{_MUTED};margin-right:.25em"),
    (" .dm-src-site", f"color:{_MUTED};font-size:.85em;margin-left:.3em"),
    (" .dm-cite", "font-size:.78em;vertical-align:super;line-height:0;white-space:nowrap"),
    (
        " .dm-asks",
        "margin:4px 0 6px;padding:3px 10px;border-left:3px solid var(--jp-brand-color1,#2f74d0);"
        "background:rgba(47,116,208,.08);border-radius:0 4px 4px 0;font-size:.92em;"
        f"font-family:{_MONO};overflow-wrap:anywhere",
    ),
    (" .dm-body>:first-child", "margin-top:0"),
    (" .dm-body>:last-child", "margin-bottom:0"),
    (
        " .dm-section",
        f"font-size:.75em;text-transform:uppercase;letter-spacing:.04em;color:{_MUTED};"
        "margin:8px 0 2px",
    ),
    (
        " pre",
        f"margin:4px 0;padding:6px 9px;border-radius:4px;background:rgba(127,127,127,.1);"
        f"font-family:{_MONO};font-size:var(--jp-code-font-size,13px);line-height:1.45;"
        "color:inherit;white-space:pre-wrap;overflow-wrap:anywhere;border:0",
    ),
    (" pre.dm-code", "white-space:pre;overflow-x:auto;overflow-wrap:normal"),
    (" code", f"font-family:{_MONO};font-size:.92em"),
    (" .dm-output", "margin:4px 0"),
    (" .dm-output>pre", "border-left:3px solid rgba(127,127,127,.45)"),
    (" .dm-output.dm-stderr>pre", "border-left-color:rgba(244,67,54,.8);"
     "background:rgba(244,67,54,.1)"),
    (" .dm-output-name", f"font-family:{_MONO};font-size:.75em;color:{_MUTED}"),
    (" .dm-stderr .dm-output-name", "color:var(--jp-error-color1,#e53935)"),
    (" .dm-kv", "display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:2px 0"),
    (" .dm-k", f"color:{_MUTED};font-size:.9em"),
    (" .dm-v", "overflow-wrap:anywhere;white-space:pre-wrap"),
    (" .dm-calc", f"margin:2px 0;font-family:{_MONO};font-size:var(--jp-code-font-size,13px)"),
    (" .dm-calc code", "font-size:1em;background:none;padding:0"),
    (" .dm-calc strong", "font-weight:700"),
    (" .dm-text", "white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0"),
    (" .dm-figure", "margin:6px 0"),
    (
        " .dm-figure img",
        "display:block;max-width:100%;max-height:480px;height:auto;border-radius:4px;"
        f"background:#fff;border:1px solid {_BORDER}",
    ),
    (" .dm-figure figcaption,.dashmagic-trace .dm-caption", f"font-size:.82em;color:{_MUTED};"
     "margin-top:2px;overflow-wrap:anywhere"),
    (
        " .dm-figure-missing",
        f"border:1px dashed {_BORDER};border-radius:4px;padding:5px 9px;font-size:.9em",
    ),
    (" table", "border-collapse:collapse;margin:4px 0;font-size:.92em;width:auto"),
    (" table.dm-hotels", "width:100%"),
    (" table.dm-hotels td:first-child", "min-width:9em;font-weight:600"),
    (" table.dm-hotels .dm-query", "margin-top:2px"),
    (
        " th,.dashmagic-trace td",
        f"border:1px solid {_BORDER};padding:3px 8px;text-align:left;vertical-align:top",
    ),
    (" th", "background:rgba(127,127,127,.1);font-weight:600"),
    (" .dm-query", f"color:{_MUTED};font-family:{_MONO};font-size:.8em;overflow-wrap:anywhere"),
    (" .dm-answer", "margin:8px 0 4px;overflow-wrap:anywhere"),
    (" .dm-answer>:first-child", "margin-top:0"),
    (" .dm-answer>:last-child", "margin-bottom:0"),
    (" .dm-answer p", "margin:.45em 0"),
    (" .dm-answer h1,.dashmagic-trace .dm-answer h2,.dashmagic-trace .dm-answer h3",
     "margin:.7em 0 .35em;line-height:1.25"),
    (" .dm-answer h1", "font-size:1.35em"),
    (" .dm-answer h2", "font-size:1.2em"),
    (" .dm-answer h3", "font-size:1.08em"),
    (" .dm-answer blockquote", f"margin:.4em 0;padding:0 .8em;border-left:3px solid {_BORDER};"
     f"color:{_MUTED}"),
    (" .dm-answer ul,.dashmagic-trace .dm-answer ol", "margin:.4em 0;padding-left:1.6em"),
    (" .dm-files", "margin:4px 0;font-size:.92em"),
    (
        " .dm-notice",
        "margin:6px 0;padding:4px 10px;border-left:3px solid rgba(255,152,0,.85);"
        "background:rgba(255,152,0,.1);border-radius:0 4px 4px 0;font-size:.92em",
    ),
    (
        " .dm-error",
        "margin:6px 0;padding:6px 10px;border:1px solid rgba(244,67,54,.55);"
        "background:rgba(244,67,54,.1);border-radius:4px",
    ),
    (" .dm-error-type", "font-weight:600;margin-right:.2em"),
    (" .dm-error-message", "white-space:pre-wrap;overflow-wrap:anywhere"),
    (" .dm-warning", "margin:2px 0 4px"),
    # A bidi control or invisible character from the model, shown as a marked escape.
    (
        " .dm-invisible",
        "color:var(--jp-warn-color0,#b35900);background:rgba(255,152,0,.16);"
        f"border-radius:3px;padding:0 .1em;font-family:{_MONO};font-size:.85em",
    ),
    (" .dm-status", f"color:{_MUTED};font-size:.85em;font-style:italic;margin:4px 0"),
    (
        " .dm-status::before",
        "content:'';display:inline-block;width:.5em;height:.5em;border-radius:50%;"
        "background:currentColor;margin-right:.45em;vertical-align:middle;"
        "animation:dashmagic-pulse 1.2s ease-in-out infinite",
    ),
    (" .dm-note", f"color:{_MUTED};font-size:.8em;margin:1px 0;overflow-wrap:anywhere"),
    (
        " .dm-footer",
        f"margin-top:6px;padding-top:4px;border-top:1px solid {_BORDER};font-size:.8em;"
        f"color:{_MUTED};overflow-wrap:anywhere",
    ),
    (" .dm-footer code", "font-size:1em"),
)

# Pygments token classes (HtmlFormatter(classprefix="tok-")), grouped by prefix.
_TOKENS: tuple[tuple[str, str], ...] = (
    ('[class^="tok-k"],.dashmagic-trace pre .tok-ow',
     "color:var(--jp-mirror-editor-keyword-color,#a45bd6);font-weight:600"),
    ('[class^="tok-s"]', "color:var(--jp-mirror-editor-string-color,#c7632a)"),
    ('[class^="tok-m"]', "color:var(--jp-mirror-editor-number-color,#2b8a3e)"),
    ('[class^="tok-c"]', "color:var(--jp-mirror-editor-comment-color,#7f8c8d);font-style:italic"),
    (".tok-o", "color:var(--jp-mirror-editor-operator-color,#a45bd6)"),
    (".tok-nf,.dashmagic-trace pre .tok-nc", "color:var(--jp-mirror-editor-def-color,#2f80ed)"),
    (".tok-nb,.dashmagic-trace pre .tok-bp",
     "color:var(--jp-mirror-editor-builtin-color,#2b8a3e)"),
    (".tok-err", "color:var(--jp-mirror-editor-error-color,#e53935)"),
)


def _build() -> str:
    rules = [f"{_R}{sel}{{{body}}}" for sel, body in _RULES]
    rules += [f"{_R} pre {sel}{{{body}}}" for sel, body in _TOKENS]
    rules.append("@keyframes dashmagic-pulse{0%,100%{opacity:.3}50%{opacity:1}}")
    rules.append(
        f"@media (prefers-reduced-motion:reduce){{{_R} .dm-status::before{{animation:none}}}}"
    )
    return "\n".join(rules)


CSS: str = _build()
