"""The seven documented exchanges (seed/plugin-call-examples.txt) as real Trace objects.

The service messages are transcribed verbatim (their JSON strings matter: signed URLs, the
``1219253925.0`` float, the hotel display name). Traces are built with the plugin readers, the
same way the event layer does, so the renderers are tested on real views.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dashmagic.plugins import read_call, read_result, resolve_plugin
from dashmagic.trace import (
    Answer,
    PluginCall,
    PluginResult,
    RequestInfo,
    Status,
    Thought,
    Trace,
    Usage,
    freeze,
)

OCR_IMAGE = "https://dashscope.oss-cn-beijing.aliyuncs.com/samples/plugin/20231124161643.jpg"
T2I_URL = (
    "http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/44/20231121/ps_a74ad35c/"
    "43241cb2-bba0-9323-abee-55e7d91cf44e.png?Expires=1700623514&OSSAccessKeyId="
    "LTAI5tGx7yvUcG32Vzcw****&Signature=xnj%2B8uv%2B5Ur46tbYPWGrbIQ49Zk%3D"
)
PLOT_URL = (
    "https://dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com/code-interpreter/temp_files/"
    "code-output-20231121-033437.859289.png?OSSAccessKeyId=LTAI5tKHB4j1Cmo6kRtd****"
    "&Expires=1700539477&Signature=cjWRl7y%2FKyJiyLgCf2fUk9uZV8A%3D"
)
PDF_URL = "https://qianwen-res.oss-cn-beijing.aliyuncs.com/QWEN_TECHNICAL_REPORT.pdf"

_OK = {"code": 200, "name": "Success", "message": "Success."}
_ok = {"code": 200, "name": "success", "message": "Success."}
_OK_lower_msg = {"code": 200, "name": "Success", "message": "success"}

#: name -> (prompt, plugins, files, messages, usage (in, out, total), request id)
SEED: dict[str, dict[str, Any]] = {
    "ocr": {
        "prompt": f"识别一下这个图片上的文字:{OCR_IMAGE}",
        "plugins": ("ocr",),
        "messages": [
            {
                "role": "assistant",
                "plugin_call": {"name": "ocr", "arguments": '{"imageUrl": "' + OCR_IMAGE + '"}'},
                "content": "Thought: 我应该使用OCR插件来识别图片中的文字。",
            },
            {
                "role": "plugin",
                "name": "ocr",
                "content": '{"errMsg": null, "code": 200, "success": true, "requestId": null, '
                '"content": "全球数字化出海服务平台 我们致力于提供全球领先的数字外贸服务,'
                '帮助每一个中小企业成为跨国公司。 让世界更小,生意更大 "}',
                "status": _OK,
            },
            {
                "role": "assistant",
                "content": "Thought: 我现在可以作答了。\nFinal Answer: 该图片的文字是:“全球数字化出海服务平台 "
                "我们致力于提供全球领先的数字外贸服务,帮助每一个中小企业成为跨国公司。 让世界更小,生意更大”。",
            },
        ],
        "usage": (46, 175, 221),
        "request_id": "9c19db96-e34a-9b65-bf22-e205dbf7d36b",
    },
    "calculator": {
        "prompt": "12345*98765是多少",
        "plugins": ("calculator",),
        "messages": [
            {
                "role": "assistant",
                "plugin_call": {
                    "name": "calculator",
                    "arguments": '{"payload__input__text": "12345 * 98765"}',
                },
                "content": "Thought: 我应该使用计算器API来进行数学计算。",
            },
            {
                "role": "plugin",
                "name": "calculator",
                "content": '{"equations": ["12345 * 98765"], "results": [1219253925.0]}',
                "status": _OK_lower_msg,
            },
            {
                "role": "assistant",
                "content": "Thought: 我现在可以作答了。\nFinal Answer: 12345*98765的结果是1219253925。",
            },
        ],
        "usage": (18, 116, 134),
        "request_id": "2cc7d894-bde2-9181-88ac-85f95dff5e3c",
    },
    "text_to_image": {
        "prompt": "一只猫,黑色",
        "plugins": ("text_to_image",),
        "messages": [
            {
                "role": "assistant",
                "plugin_call": {
                    "name": "text_to_image",
                    "arguments": '{"payload__parameters__size": "512*512", '
                    '"payload__parameters__oss_signed_url": "true", '
                    '"payload__input__prompt": "black cat", "payload__input__negative_prompt": ""}',
                },
                "content": "Thought: 需要使用text_to_image API生成一张黑色的猫的图片。",
            },
            {
                "role": "plugin",
                "name": "text_to_image",
                "content": '{"url": "' + T2I_URL + '"}',
                "status": _OK_lower_msg,
            },
            {
                "role": "assistant",
                "content": "Thought: 成功生成了一张黑色的猫的图片。\nFinal Answer: 黑色猫插件可以用来生成一张含有黑色猫元素的图片。"
                "插件输入一个含有黑色猫元素的提示,并将其转换为英文格式的字符串。输出结果是一张可下载的黑色猫图片。\n\n"
                "要使用此插件,请确保您的参数大小设置为“512 * 512”,并启用生成下载链接。现在可以开始使用此插件来生成您自己的黑色猫图片了!",
            },
        ],
        "usage": (10, 331, 341),
        "request_id": "43241cb2-bba0-9323-abee-55e7d91cf44e",
    },
    "hotel": {
        "prompt": "你好,给我查询一下三亚的酒店",
        "plugins": ("haozhu_recommend_hotel",),
        "messages": [
            {
                "role": "assistant",
                "plugin_call": {"name": "酒店推荐插件", "arguments": '{"cityNames": "三亚"}'},
                "content": "Thought: 需要调用酒店推荐插件 API 来查询酒店。",
            },
            {
                "role": "plugin",
                "name": "酒店推荐插件",
                "content": '[{"name": "三亚山海天大酒店,傲途格精选", "snippet": "位于三亚市,地址是大东海海韵路77号,'
                '近大东海旅游区,属于大东海商圈,品牌为傲途格,酒店特色有信用住、无边泳池、SPA等。", '
                '"url": "checkIn=2023-11-21&checkOut=2023-11-22&shid=53131055&cityCode=460200"}, '
                '{"name": "三亚艾迪逊酒店", "snippet": "位于三亚市,地址是海棠湾 海棠湾北路100号,近免税店,'
                '近亚特兰蒂斯水世界,属于海棠湾商圈,品牌为艾迪逊,最低会员价2498元,酒店特色有信用住、迷人海景、ins风等。", '
                '"url": "checkIn=2023-11-21&checkOut=2023-11-22&shid=52427440&cityCode=460200"}, '
                '{"name": "三亚喜来登度假酒店", "snippet": "位于三亚市,地址是亚龙湾国家旅游度假区龙海路19号,'
                '近亚龙湾沙滩,属于亚龙湾商圈,品牌为喜来登,最低会员价925元,酒店特色有信用住、景观泳池、迷人海景等。", '
                '"url": "checkIn=2023-11-21&checkOut=2023-11-22&shid=10047214&cityCode=460200"}]',
                "status": _OK,
            },
            {
                "role": "assistant",
                "content": "Thought: 查询到了三亚的酒店信息。\nFinal Answer: 给您找到了三亚的酒店信息:\n\n"
                "| 名称 | 地址 | 特色 |\n| --- | --- | --- |\n"
                "| 三亚山海天大酒店,傲途格精选 | 大东海海韵路77号,近大东海旅游区 | 信用住、无边泳池、SPA |\n"
                "| 三亚艾迪逊酒店 | 海棠湾 海棠湾北路100号,近免税店,近亚特兰蒂斯水世界 | 信用住、迷人海景、ins风 |\n"
                "| 三亚喜来登度假酒店 | 亚龙湾国家旅游度假区龙海路19号,近亚龙湾沙滩 | 信用住、景观泳池、迷人海景 |\n\n"
                "可以根据需要选择适合自己的酒店。",
            },
        ],
        "usage": (14, 600, 614),
        "request_id": "a02a6a51-ab62-9ece-9283-93289715cefc",
    },
    "pdf_extracter": {
        "prompt": "总结文档",
        "plugins": ("pdf_extracter",),
        "files": (PDF_URL,),
        "messages": [
            {
                "role": "assistant",
                "content": "这篇文档主要介绍了QWEN系列的大语言模型,包括其基本的预训练模型、聊天模型和专门针对编程和数学的模型。"
                "这些模型在各种下游任务上都表现出色,并且具有高级工具使用和计划能力,可用于创建代理应用程序。"
                "此外,还介绍了一些专门针对编码和数学的模型,它们在与开源模型相比时显示出显著的性能提升。",
            }
        ],
        "usage": (8, 82, 90),
        "request_id": "f8616d2e-6e4a-990e-a953-0eb5e7561614",
    },
    "code_equations": {
        "prompt": "有若干只鸡兔同在一个笼子里,从上面数,有100个头,从下面数,有334只脚。问笼中各有多少只鸡和兔?",
        "plugins": ("code_interpreter",),
        "messages": [
            {
                "role": "assistant",
                "plugin_call": {
                    "name": "code_interpreter",
                    "arguments": "```py\nfrom sympy import symbols, Eq, solve\n\nx, y = symbols('x y')\n"
                    "eq1 = Eq(x + y, 100) # number of heads\neq2 = Eq(2*x + 4*y, 334) # number of legs\n\n"
                    "solution = solve((eq1, eq2), (x, y))\n\nchickens = solution[x]\nrabbits = solution[y]\n\n"
                    "chickens, rabbits\n```",
                },
                "content": "Thought: 设鸡的数量为x,兔子的数量为y。根据题意,可以列出以下两个方程:x + y = 100(头的数量)"
                "2x + 4y = 334(脚的数量)。 我需要使用代码解释器API来运行代码。",
            },
            {
                "role": "plugin",
                "name": "code_interpreter",
                "content": "execute_result:\n\n```\n(33, 67)\n```",
                "status": _ok,
            },
            {
                "role": "assistant",
                "content": "Thought: 根据代码的执行结果,鸡的数量是33只,兔子的数量是67只。\nFinal Answer: 笼中有33只鸡和67只兔子。",
            },
        ],
        "usage": (48, 228, 276),
        "request_id": "f9a3c2e0-55ba-9e7f-b386-b9efe90003ac",
    },
    "code_plot": {
        "prompt": "画一个y=x^2的函数图",
        "plugins": ("code_interpreter",),
        "messages": [
            {
                "role": "assistant",
                "plugin_call": {
                    "name": "code_interpreter",
                    "arguments": "```py\nimport matplotlib.pyplot as plt\nimport numpy as np\n\n"
                    "x = np.linspace(-10, 10, 400)\ny = x**2\n\nplt.plot(x, y)\n"
                    "plt.title('Function Graph: $y=x^2$')\nplt.grid(True)\nplt.show()\n```",
                },
                "content": "Thought: 我可以使用代码解释器API来绘制函数图像。假定我们需要在-10到10之间绘制函数图像。",
            },
            {
                "role": "plugin",
                "name": "code_interpreter",
                "content": f"![fig-001]({PLOT_URL})",
                "status": _ok,
            },
            {
                "role": "assistant",
                "content": "Thought: 函数图成功绘制出来了。\nFinal Answer: 函数y=x^2的图像成功生成。",
            },
        ],
        "usage": (15, 254, 269),
        "request_id": "47f1da7f-6833-9122-868c-c29cfa658728",
    },
}

SEED_NAMES: tuple[str, ...] = tuple(SEED)


def _assistant_steps(content: str) -> list[Any]:
    """``Thought: …\\nFinal Answer: …`` → Thought + Answer; plain content is the answer."""
    thought, sep, answer = content.partition("Final Answer:")
    steps: list[Any] = []
    if thought.strip().startswith("Thought:"):
        steps.append(Thought(thought.strip()[len("Thought:") :].strip()))
    elif not sep:
        return [Answer(content)]
    if sep:
        steps.append(Answer(answer.strip()))
    return steps


def steps_from_messages(messages: list[dict[str, Any]], selected: tuple[str, ...]) -> tuple[Any, ...]:
    steps: list[Any] = []
    for msg in messages:
        if msg["role"] == "assistant":
            steps += _assistant_steps(msg.get("content") or "")
            call = msg.get("plugin_call")
            if call:
                plugin = resolve_plugin(call["name"], selected)
                parsed, error, view = read_call(plugin, call["arguments"])
                steps.append(
                    PluginCall(plugin, call["name"], call["arguments"], parsed, error, view)
                )
        else:
            plugin = resolve_plugin(msg["name"], selected)
            parsed, error, view = read_result(plugin, msg["content"])
            status = Status(**msg["status"]) if msg.get("status") else None
            steps.append(
                PluginResult(plugin, msg["name"], msg["content"], parsed, error, status, view)
            )
    return tuple(steps)


def seed_trace(name: str, **changes: Any) -> Trace:
    """The documented exchange ``name`` as a complete trace (1.2 s, usage.plugins filled in)."""
    seed = SEED[name]
    steps = steps_from_messages(seed["messages"], seed["plugins"])
    tin, tout, total = seed["usage"]
    counts: dict[str, int] = {}
    for step in steps:
        if isinstance(step, PluginCall):
            counts[step.plugin] = counts.get(step.plugin, 0) + 1
    trace = Trace(
        request=RequestInfo(
            model="qwen-plus",
            plugins=seed["plugins"],
            prompt=seed["prompt"],
            files=seed.get("files", ()),
        ),
        steps=steps,
        usage=Usage(tin, tout, total, MappingProxyType(counts)),
        request_id=seed["request_id"],
        model="qwen-plus",
        finish_reason="stop",
        status="complete",
        elapsed=1.2,
        events=1,
        messages=tuple(freeze(m) for m in seed["messages"]),
    )
    return trace.replace(**changes) if changes else trace


def all_seed_traces() -> dict[str, Trace]:
    return {name: seed_trace(name) for name in SEED_NAMES}


# -- images -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeFetched:
    """Same attributes as dashmagic.images.FetchedImage (the renderer duck-types it)."""

    data: bytes | None
    mime: str | None
    error: str | None
    display_url: str


def png_bytes(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (40, 120, 200)) -> bytes:
    """A real, valid RGB PNG built with zlib/struct (no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    def pixel(x: int, y: int) -> bytes:
        return bytes(rgb if (x // 4 + y // 4) % 2 else (250, 250, 250))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def fetched(url: str, data: bytes | None = None, mime: str | None = "image/png", error: str | None = None) -> FakeFetched:
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    return FakeFetched(data, mime if data else None, error, urlunsplit((p.scheme, p.netloc, p.path, "", "")))
