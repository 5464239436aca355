"""Signed OSS result URLs: rewriting them to the fake, and what the fake serves there.

The seed responses link plugin outputs (the code_interpreter plot, the text_to_image picture)
with signed, long-expired OSS URLs. So that clients can fetch *something* offline, the fake can
rewrite each one to ``http://127.0.0.1:PORT/oss/<original host>/<original path>?<original query>``
(the query is kept so clients can be tested for stripping the signature before saving it).

At those paths the fake serves what is honest: the plot is re-created locally from the plugin's
own documented code (``fig-001.png``, see ``make_figures.py``); the text_to_image picture is
gone and cannot be re-created, so the fake answers it the way OSS answers an expired URL.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "EXPIRED_XML",
    "NOT_FOUND_XML",
    "PLOT_OSS_PATH",
    "TEXT_TO_IMAGE_OSS_PATH",
    "oss_error_xml",
    "rewrite_signed_urls",
]

PLOT_OSS_PATH = (
    "/oss/dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com"
    "/code-interpreter/temp_files/code-output-20231121-033437.859289.png"
)
TEXT_TO_IMAGE_OSS_PATH = (
    "/oss/dashscope-result-bj.oss-cn-beijing.aliyuncs.com"
    "/1d/44/20231121/ps_a74ad35c/43241cb2-bba0-9323-abee-55e7d91cf44e.png"
)

# Only *signed* OSS URLs are outputs worth rewriting; the unsigned sample image that the OCR
# prompt and plugin_call arguments mention is an input and stays untouched. The URL ends at
# whitespace, a quote, a closing bracket/parenthesis or a markdown/HTML delimiter.
_SIGNED_OSS_URL = re.compile(
    r"https?://(?P<host>[A-Za-z0-9.-]+\.aliyuncs\.com)(?P<path>/[^\s?\"'<>()\[\]]*)"
    r"\?(?P<query>[^\s\"'<>()\[\]]*Signature=[^\s\"'<>()\[\]]*)"
)


def oss_error_xml(code: str, message: str) -> bytes:
    """An OSS-style XML error body."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>\n'
    ).encode()


EXPIRED_XML = oss_error_xml("AccessDenied", "Request has expired.")
NOT_FOUND_XML = oss_error_xml("NoSuchKey", "The specified key does not exist.")


def _rewrite_text(text: str, origin: str) -> str:
    return _SIGNED_OSS_URL.sub(lambda m: f"{origin}/oss/{m['host']}{m['path']}?{m['query']}", text)


def rewrite_signed_urls(obj: Any, origin: str) -> Any:
    """A copy of ``obj`` with every signed OSS URL in any string pointed at ``origin``.

    ``origin`` is ``http://127.0.0.1:PORT``. Works through nested dicts/lists, so URLs inside
    JSON-text strings (the text_to_image plugin content) are rewritten too; no quotes are added,
    so such strings stay valid JSON.
    """
    if isinstance(obj, str):
        return _rewrite_text(obj, origin)
    if isinstance(obj, list):
        return [rewrite_signed_urls(item, origin) for item in obj]
    if isinstance(obj, dict):
        return {key: rewrite_signed_urls(value, origin) for key, value in obj.items()}
    return obj
