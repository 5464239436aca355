"""``pdf_extracter`` (sic): the service handles it transparently.

The seed's reply is a single ``message`` with no ``plugin_call``; the PDF URL lives in the
request's list-form user content (``[{"text": ...}, {"file": url}]``), which the trace keeps in
``RequestInfo.files``. Should the service ever trace it, its JSON is shown generically.
"""

from __future__ import annotations

from typing import Any

__all__ = ["read_arguments", "read_result"]


def read_arguments(raw: str, parsed: Any) -> Any:
    from . import GenericView

    return GenericView(parsed) if parsed is not None else None


read_result = read_arguments
