"""A scripted code_interpreter reply for the fake (the plugin generation's message format)."""

from __future__ import annotations

from typing import Any


def code_reply(code: str, answer: str = "Done.") -> dict[str, Any]:
    """The fake's answer: one code_interpreter call with ``code``, its result, a final answer."""
    return {
        "output": {"choices": [{"finish_reason": "stop", "messages": [
            {"role": "assistant", "plugin_call": {"name": "code_interpreter", "arguments": f"```py\n{code}\n```"},
             "content": "Thought: I will run code. I need to use the code interpreter API."},
            {"role": "plugin", "name": "code_interpreter", "content": "execute_result:\n\n```\nok\n```",
             "status": {"code": 200, "name": "success", "message": "Success."}},
            {"role": "assistant", "content": f"Thought: done.\nFinal Answer: {answer}"},
        ]}]},
        "usage": {"total_tokens": 10, "output_tokens": 5, "input_tokens": 5},
    }
