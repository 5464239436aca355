"""``--dry-run``: the exact request as it would go out, with the key masked. Pure."""

from __future__ import annotations

import html
import json

from ..request import Call

__all__ = ["render_call"]


def _text(call: Call, mode: str, recordings: str | None) -> str:
    lines = [f"POST {call.url}"]
    lines += [f"{name}: {value}" for name, value in call.shown_headers("<your key, masked>").items()]
    lines += ["", json.dumps(call.body, ensure_ascii=False, indent=2)]
    where = {"live": "DashScope", "record": f"DashScope, recorded to {recordings}", "replay": f"the recording {recordings}"}
    lines += ["", f"(dry run: nothing was sent; mode {mode} would answer from {where.get(mode, mode)})"]
    return "\n".join(lines)


def render_call(call: Call, *, mode: str = "live", recordings: str | None = None) -> dict[str, str]:
    """A mime bundle showing the request; every value escaped (prompts are user data)."""
    text = _text(call, mode, recordings)
    page = (
        '<div class="dashmagic-dry-run" style="font-family:var(--jp-code-font-family,monospace);'
        'font-size:12px;border-left:3px solid var(--jp-warn-color1,#f0ad4e);padding:4px 8px;">'
        '<div style="font-weight:bold;margin-bottom:4px">dashmagic dry run: the request that would be sent</div>'
        f'<pre style="margin:0;white-space:pre-wrap">{html.escape(text)}</pre></div>'
    )
    return {"text/plain": text, "text/html": page}
