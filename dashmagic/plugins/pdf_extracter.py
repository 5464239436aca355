"""``pdf_extracter`` (sic): the service handles it transparently.

The seed's reply is a single ``message`` with no ``plugin_call``; the PDF URL lives in the
request's list-form user content (``[{"text": ...}, {"file": url}]``), which the trace keeps in
``RequestInfo.files``. Should the service ever trace it, its JSON is shown generically.
"""

from __future__ import annotations

from ._generic import read_generic
from ._spec import GenericView, PluginSpec

__all__ = ["PLUGIN", "read_arguments", "read_result"]

read_arguments = read_generic
read_result = read_generic

#: No view of its own: its GenericView renders as every unknown plugin's does.
PLUGIN: PluginSpec[GenericView, GenericView] = PluginSpec(
    key="pdf_extracter", read_arguments=read_arguments, read_result=read_result
)
