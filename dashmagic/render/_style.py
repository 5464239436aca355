"""The one scoped stylesheet of the HTML trace: small, and an enhancement, never the structure.

Every selector starts with ``.dashmagic-trace``. Colours come from JupyterLab's theme variables
(so light and dark themes both work) with short fallbacks for other frontends; tints are
semi-transparent so they read on any background. The stylesheet rides in every output (a
``<style>`` emitted once per session would be gone from a saved notebook whose first trace was
cleared or re-run), so it is kept to a few kilobytes.

Where it is stripped (an *untrusted* JupyterLab output, GitHub's viewer) the markup carries the
meaning by itself: labels are text, steps are ``details``/``summary``, key/value pairs a ``dl``,
code ``pre``/``code``, and table cells their alignment as an inline ``text-align`` (the one inline
style, kept by JupyterLab's sanitizer, where JupyterLab's own
``:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td{text-align:right}`` would otherwise win).

``.dashmagic-trace.dashmagic-trace`` (the root class twice) gives a rule the weight to beat
JupyterLab's two-class rules for cells and code without ``!important``. Code tokens use
Pygments *classes* (coloured via ``--jp-mirror-editor-*``): inline colours would survive the
sanitizer but be unreadable in one of the themes.
"""

from __future__ import annotations

__all__ = ["CSS"]

_R = ".dashmagic-trace"
# Each theme value (with its fallback) is named once on the root and used by a short name:
# the stylesheet rides in every output, so repeating the long forms cost kilobytes.
_VARS = {
    "--dm-m": "var(--jp-ui-font-color2,#808080)",
    "--dm-b": "var(--jp-border-color2,rgba(127,127,127,.35))",
    "--dm-t": "rgba(127,127,127,.1)",
    "--dm-f": "var(--jp-code-font-family,monospace)",
    "--dm-s": "var(--jp-code-font-size,13px)",
}
_MUTED, _BORDER, _TINT, _MONO, _CODE_SIZE = (f"var({name})" for name in _VARS)
_CLIP = "overflow:hidden;text-overflow:ellipsis;white-space:nowrap"

_RULES: tuple[tuple[str, str], ...] = (
    (
        "",
        "font-family:var(--jp-content-font-family,system-ui,sans-serif);"
        "font-size:var(--jp-content-font-size1,14px);line-height:1.5;"
        "color:var(--jp-content-font-color1,inherit);max-width:980px;margin:2px 0;"
        + ";".join(f"{name}:{value}" for name, value in _VARS.items()),
    ),
    (" a", "color:var(--jp-content-link-color,#2f74d0)"),
    (" .dm-muted,.dashmagic-trace .dm-thought,.dashmagic-trace .dm-k,.dashmagic-trace .dm-note,"
     ".dashmagic-trace .dm-status,.dashmagic-trace .dm-section,.dashmagic-trace .dm-caption",
     f"color:{_MUTED}"),
    (" .dm-mono", f"font-family:{_MONO};font-size:.92em"),
    (" .dm-thought", "font-size:.88em;margin:3px 0;white-space:pre-wrap;overflow-wrap:anywhere"),
    (" .dm-label", "font-style:italic"),
    (" details.dm-step", f"border:1px solid {_BORDER};border-radius:6px;margin:6px 0;overflow:hidden"),
    (
        " details.dm-step>summary",
        f"cursor:pointer;padding:4px 10px;background:{_TINT};font-size:.92em;display:flex;"
        "align-items:center;gap:.5em;min-width:0",
    ),
    # A flex <summary> loses its marker: draw it (▸ folded, ▾ open).
    (" summary::before", f"content:'\\25B8';color:{_MUTED}"),
    (" details[open]>summary::before", "content:'\\25BE'"),
    (" details.dm-step[open]>summary", f"border-bottom:1px solid {_BORDER}"),
    (" details.dm-step[open]>summary:last-child", "border-bottom:0"),
    (" summary>span", _CLIP),
    (" .dm-plugin", f"font-family:{_MONO};font-weight:600;flex:none;max-width:35%"),
    (" .dm-display", f"color:{_MUTED};max-width:25%"),
    (" .dm-args", f"color:{_MUTED};flex:1;min-width:0"),
    (" summary .dm-badge", "flex:none;margin-left:auto;max-width:35%"),
    (
        " .dm-badge",
        "padding:0 .6em;border-radius:9em;font-size:.8em;font-weight:600;white-space:nowrap;"
        "border:1px solid rgba(127,127,127,.35)",
    ),
    (" .dm-ok", "background:rgba(76,175,80,.16);border-color:rgba(76,175,80,.45)"),
    (" .dm-fail", "background:rgba(244,67,54,.16);border-color:rgba(244,67,54,.5)"),
    (" .dm-warn", "background:rgba(255,152,0,.16);border-color:rgba(255,152,0,.5)"),
    (" .dm-running,.dashmagic-trace .dm-missing,.dashmagic-trace .dm-info", f"background:{_TINT};color:{_MUTED}"),
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
    (" .dm-section", "font-size:.75em;text-transform:uppercase;margin:8px 0 2px"),
    # JupyterLab paints every <code> (var(--jp-layout-color0)) and zeroes <pre>'s padding:
    # inside our tinted <pre> that drew a band behind each line (nbconvert, both themes).
    (
        " pre",
        f"margin:4px 0;padding:6px 9px;border-radius:4px;background:{_TINT};"
        f"font-family:{_MONO};font-size:{_CODE_SIZE};line-height:1.45;color:inherit;"
        "white-space:pre-wrap;overflow-wrap:anywhere",
    ),
    (".dashmagic-trace pre>code", "background:none;padding:0;font-size:1em;white-space:inherit"),
    (" pre.dm-code", "white-space:pre;overflow-x:auto;overflow-wrap:normal"),
    (" code", f"font-family:{_MONO};font-size:.92em"),
    (" .dm-output>pre", "border-left:3px solid rgba(127,127,127,.45)"),
    (" .dm-stderr>pre", "border-left-color:rgba(244,67,54,.8);background:rgba(244,67,54,.1)"),
    (" .dm-output-name", f"font-family:{_MONO};font-size:.75em;color:{_MUTED}"),
    (" .dm-stderr .dm-output-name", "color:var(--jp-error-color1,#e53935)"),
    (" .dm-kv", "display:grid;grid-template-columns:max-content 1fr;gap:1px 12px;margin:2px 0"),
    (" .dm-kv>dd", "margin:0;overflow-wrap:anywhere;white-space:pre-wrap"),
    (" .dm-k", "font-size:.9em"),
    (" .dm-calc", f"font-family:{_MONO};font-size:{_CODE_SIZE}"),
    (".dashmagic-trace .dm-calc code", "font-size:1em;background:none;padding:0"),
    (" .dm-text", "white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0"),
    (" .dm-figure", "margin:6px 0"),
    (
        " .dm-figure img",
        "display:block;max-width:100%;max-height:480px;height:auto;border-radius:4px;"
        f"background:#fff;border:1px solid {_BORDER}",
    ),
    (" figcaption,.dashmagic-trace .dm-caption", "font-size:.82em;overflow-wrap:anywhere"),
    (" .dm-figure-missing", f"border:1px dashed {_BORDER};border-radius:4px;padding:5px 9px"),
    # Cells: JupyterLab's table rules (fixed layout, centred margins, 0.5em padding, middle
    # alignment) are two classes strong; the cells' own inline text-align does the alignment.
    (".dashmagic-trace table", "border-collapse:collapse;margin:4px 0;font-size:.92em;"
     "table-layout:auto;color:inherit"),
    (" table.dm-hotels", "width:100%"),
    (" table.dm-hotels td:first-child", "min-width:9em;font-weight:600"),
    (" .dm-price", "white-space:nowrap"),
    (".dashmagic-trace th,.dashmagic-trace.dashmagic-trace td",
     f"border:1px solid {_BORDER};padding:3px 8px;vertical-align:top;line-height:1.5"),
    (" th", f"background:{_TINT};font-weight:600"),
    (" .dm-answer", "margin:8px 0 4px;overflow-wrap:anywhere"),
    (" .dm-answer p", "margin:.45em 0"),
    (" .dm-answer ul,.dashmagic-trace .dm-answer ol", "margin:.4em 0;padding-left:1.6em"),
    (" .dm-body>:first-child,.dashmagic-trace .dm-answer>:first-child", "margin-top:0"),
    (" .dm-body>:last-child,.dashmagic-trace .dm-answer>:last-child", "margin-bottom:0"),
    (" .dm-files", "margin:4px 0;font-size:.92em"),
    (" .dm-notice", "margin:6px 0;padding:4px 10px;border-left:3px solid rgba(255,152,0,.85);"
     "background:rgba(255,152,0,.1)"),
    (" .dm-error", "margin:6px 0;padding:6px 10px;border:1px solid rgba(244,67,54,.55);"
     "background:rgba(244,67,54,.1);border-radius:4px"),
    (" .dm-error-type", "font-weight:600"),
    (" .dm-error-message", "white-space:pre-wrap;overflow-wrap:anywhere"),
    # A bidi control or invisible character from the model, shown as a marked escape.
    (" .dm-invisible", "color:var(--jp-warn-color0,#b35900);background:rgba(255,152,0,.16)"),
    (" .dm-status", "font-size:.85em;font-style:italic;margin:4px 0"),
    (" .dm-note", "font-size:.8em;overflow-wrap:anywhere"),
    (" .dm-footer", f"margin-top:6px;padding-top:4px;border-top:1px solid {_BORDER};"
     f"font-size:.8em;color:{_MUTED};overflow-wrap:anywhere"),
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


def _selector(sel: str) -> str:
    # A selector that names the root itself (the doubled-class ones) is used as written.
    return sel if sel.startswith(_R) else f"{_R}{sel}"


def _build() -> str:
    rules = [f"{_selector(sel)}{{{body}}}" for sel, body in _RULES]
    rules += [f"{_R} pre {sel}{{{body}}}" for sel, body in _TOKENS]
    return "\n".join(rules)


CSS: str = _build()
