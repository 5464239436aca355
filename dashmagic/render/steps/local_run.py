"""``local_run``: the trace's code run HERE (``--run-locally``), labelled so nobody takes it for
DashScope's own result, which stays where it was in the trace, above this step.

Everything shown came from a process that ran model-written code, so it is as untrusted as a
server's reply: escaped like every other view (the whole output also marks invisible characters).
"""

from __future__ import annotations

import base64

from ...trace import FetchedImage, LocalRun, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import embeddable, format_elapsed
from . import StepView

__all__ = ["VIEW", "LABEL", "badge_of"]

#: The label every view of a local run starts with.
LABEL = "Ran here, not on DashScope"


def badge_of(run: LocalRun) -> tuple[str, str]:
    """``(kind, text)`` of the status badge."""
    if run.status == "ok":
        return "ok", "exit 0"
    if run.status == "timeout":
        return "fail", f"killed after {run.timeout:g} s (timeout)"
    if run.status == "refused":
        return "warn", "not run"
    return "fail", "exit ?" if run.exit_code is None else f"exit {run.exit_code}"


def _facts(run: LocalRun) -> str:
    parts = ["a separate Python process on this machine"]
    if run.blocks:
        parts.append(f"{run.blocks} code block{'s' if run.blocks != 1 else ''}")
    if run.status != "refused":
        parts.append(format_elapsed(run.duration) or "0 s")
    return " · ".join(parts)


def _replay_note(run: LocalRun) -> str:
    return ("Replayed from the recording: this is what the code printed when it ran where the "
            "recording was made. Nothing ran now.") if run.replayed else ""


def _cut(dropped: int) -> str:
    return f"(cut: {dropped:,} more bytes were printed and dropped)" if dropped else ""


# -- HTML ------------------------------------------------------------------------------------


def _html_stream(name: str, text: str, dropped: int, error: bool = False) -> str:
    if not text and not dropped:
        return ""
    cls = " dm-stderr" if error else ""
    cut = f'<div class="dm-muted">{h.esc(_cut(dropped))}</div>' if dropped else ""
    return (f'<div class="dm-output{cls}"><div class="dm-output-name">{h.esc(name)}</div>'
            f"{h.pre(text)}{cut}</div>")


def _html_figure(image: FetchedImage) -> str:
    inline = embeddable(image)
    if inline is None:
        return (f'<div class="dm-figure dm-figure-missing">{h.esc(image.display_url)} '
                f'<span class="dm-muted">({h.esc(image.error or "missing")})</span></div>')
    data, mime = inline
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    alt = f"{image.display_url}, drawn by the local run"
    return (f'<figure class="dm-figure"><img src="{src}" alt="{h.esc(alt)}">'
            f"<figcaption>{h.esc(image.display_url)} · drawn here by matplotlib</figcaption></figure>")


def _html_body(run: LocalRun) -> str:
    parts: list[str] = []
    if run.reason:
        parts.append(h.warning(run.reason))
    note = _replay_note(run)
    if note:
        parts.append(f'<div class="dm-note">{h.esc(note)}</div>')
    parts.append(_html_stream("stdout", run.stdout, run.stdout_dropped))
    parts.append(_html_stream("stderr", run.stderr, run.stderr_dropped, error=True))
    if run.value is not None:
        parts.append(_html_stream("value of the last expression", run.value, 0))
    parts.extend(_html_figure(image) for image in run.figures)
    if run.files:
        parts.append(f'<div class="dm-muted">Files it wrote, in its temporary folder (now removed): '
                     f"{h.esc(', '.join(run.files))}</div>")
    if run.status in ("ok", "error") and not (run.stdout or run.stderr or run.value or run.figures):
        parts.append('<div class="dm-muted">(it printed nothing and drew no figure)</div>')
    return "".join(p for p in parts if p)


def _html(run: LocalRun, trace: Trace, images: h.Images | None) -> str:
    summary = (f'<summary><strong class="dm-label">{h.esc(LABEL)}</strong> '
               f'<span class="dm-args">{h.esc(_facts(run))}</span> {h.badge(*badge_of(run))}</summary>')
    return (f'<details class="dm-step dm-local-run" open>{summary}'
            f'<div class="dm-body">{_html_body(run)}</div></details>')


# -- text ------------------------------------------------------------------------------------


def _text_stream(name: str, text: str, dropped: int) -> list[str]:
    if not text and not dropped:
        return []
    lines = [f"{t.INDENT}{name}:", *t.indent(t.safe(text).rstrip("\n"), t.INDENT * 2)]
    return lines + ([f"{t.INDENT * 2}{_cut(dropped)}"] if dropped else [])


def _text_figure(image: FetchedImage) -> str:
    if embeddable(image) is None:
        return f"{t.INDENT}[local figure] {t.safe(image.display_url)} ({t.safe(image.error or 'missing')})"
    size = len(image.data or b"")
    return (f"{t.INDENT}[local figure] {t.safe(image.display_url)} (PNG, {size:,} bytes: embedded in the "
            "HTML output; trace.local_runs[-1].figures holds the bytes)")


def _text(run: LocalRun, trace: Trace, images: t.Images | None) -> list[str]:
    kind, badge = badge_of(run)
    lines = [f"[local run] {LABEL} ({_facts(run)}): {badge}"]
    for extra in (run.reason, _replay_note(run)):
        if extra:
            lines.append(f"{t.INDENT}{t.safe(extra)}")
    lines += _text_stream("stdout", run.stdout, run.stdout_dropped)
    lines += _text_stream("stderr", run.stderr, run.stderr_dropped)
    if run.value is not None:
        lines += _text_stream("value of the last expression", run.value, 0)
    lines += [_text_figure(image) for image in run.figures]
    if run.files:
        lines.append(f"{t.INDENT}files it wrote (temporary folder, now removed): {t.safe(', '.join(run.files))}")
    return lines


VIEW: StepView[LocalRun] = StepView("local_run", LocalRun, _html, _text)
