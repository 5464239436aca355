"""The step-kind registry: each kind of trace step with its HTML and its text view, together.

:func:`~dashmagic.render.html.render_html` and :func:`~dashmagic.render.text.render_text` walk
the grouped steps (:func:`~dashmagic.render._common.group_steps`) and ask :func:`step_view` for
each block's views by its ``kind``. Adding a step kind is one module here declaring
``VIEW = StepView(kind=..., step_type=..., html=..., text=...)`` plus its line in
:data:`STEP_VIEWS`. A block of a kind nobody registered (or whose type is not the registered
one) gets :data:`.generic.VIEW`: its fields, escaped, as JSON. Never a ``KeyError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from ...trace import Trace
from .._common import Images

__all__ = ["StepView", "STEP_VIEWS", "step_view"]

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class StepView(Generic[S]):
    """How one kind of step renders: ``html`` gives markup ("" for nothing), ``text`` lines."""

    kind: str
    step_type: type[S]
    html: Callable[[S, Trace, Images | None], str]
    text: Callable[[S, Trace, Images | None], list[str]]


# Imported after StepView exists: each module builds its VIEW from it.
from . import answer, exchange, generic, thought  # noqa: E402
from . import code_execution, function_call, local_run, reasoning, search, tool_run, unknown  # noqa: E402

#: kind -> views. One line per step kind.
STEP_VIEWS: Mapping[str, StepView[Any]] = {
    view.kind: view
    for view in (
        thought.VIEW,
        answer.VIEW,
        exchange.VIEW,
        reasoning.VIEW,
        code_execution.VIEW,
        search.VIEW,
        function_call.VIEW,
        unknown.VIEW,
        local_run.VIEW,
        tool_run.VIEW,
    )
}


def step_view(block: object) -> StepView[Any]:
    """The views registered for ``block.kind``, or the generic ones."""
    # getattr: an unknown step need not even have a ``kind``; it must still render.
    kind = getattr(block, "kind", None)
    view = STEP_VIEWS.get(kind) if isinstance(kind, str) else None
    if view is None or not isinstance(block, view.step_type):
        return generic.VIEW
    return view
