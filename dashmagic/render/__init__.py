"""Renderers for :class:`~dashmagic.trace.Trace`: pure functions, one per mime type.

``import dashmagic.render`` is cheap: the renderers (and markdown-it, nh3, Pygments behind them)
load on first use. Nothing here imports IPython or requests; ``Trace._repr_mimebundle_`` calls
:func:`mimebundle`, which filters by ``include``/``exclude`` the way rich's ``jupyter.py`` does.
"""

from __future__ import annotations

from importlib import import_module
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..trace import Trace

__all__ = ["mimebundle", "RENDERERS"]

#: mime type -> (module, function); each function is ``f(trace, images=None) -> str``.
RENDERERS: Mapping[str, tuple[str, str]] = {
    "text/plain": ("text", "render_text"),
    "text/html": ("html", "render_html"),
}


def _renderer(mime: str) -> Callable[..., str]:
    module, name = RENDERERS[mime]
    renderer: Callable[..., str] = getattr(import_module(f".{module}", __name__), name)
    return renderer


def mimebundle(
    trace: Trace,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
    images: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """``{"text/plain": ..., "text/html": ...}``, keeping only ``include`` and dropping ``exclude``.

    ``images`` maps a figure URL to a fetched image (``data``, ``mime``, ``error``,
    ``display_url``); figures with bytes are embedded as ``data:`` URIs, others shown as links.
    By default the trace's own ``images`` are used, so a stored trace shows what the cell showed.
    """
    if images is None and trace.images:
        images = {image.url: image for image in trace.images}
    wanted = [
        mime
        for mime in RENDERERS
        if (not include or mime in include) and (not exclude or mime not in exclude)
    ]
    return {mime: _renderer(mime)(trace, images=images) for mime in wanted}
