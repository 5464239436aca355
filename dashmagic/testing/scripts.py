"""What the fake "model" does for a current-generation request: scripted answers by prompt.

A script turns a :class:`Turn` (the parsed request) into a :class:`Plan`: a sequence of segments
(thinking, a code-interpreter run, answer text, function calls) that :mod:`dashmagic.testing.current`
puts on the wire. Prompts are matched on the text of the last ``user`` message, stripped.
The table of prompts is in the docstring of :mod:`dashmagic.testing.current`.
"""

from __future__ import annotations

import ast
import hashlib
import json
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CI_PROMPTS",
    "CAGE_PROMPT",
    "ONE_PLUS_ONE_PROMPTS",
    "PANDAS_PROMPT",
    "PANDAS_SOURCES",
    "SCRIPTS",
    "SEARCH_PROMPTS",
    "SALES_BEST",
    "SALES_CHANGE",
    "SALES_PROMPTS",
    "SEARCH_SOURCES",
    "WEATHER_PROMPTS",
    "Calls",
    "Code",
    "Plan",
    "Say",
    "Search",
    "Segment",
    "Think",
    "ToolCall",
    "Turn",
    "calculator_trace",
    "call_id",
    "plan_for",
]


@dataclass(frozen=True)
class Think:
    """Reasoning text (``reasoning_content``)."""

    text: str


@dataclass(frozen=True)
class Say:
    """Answer text (``content``)."""

    text: str


@dataclass(frozen=True)
class Code:
    """One run of the built-in code interpreter; ``result_tokens`` is the input-token jump after it."""

    code: str
    result_tokens: int = 442  # 281 -> 723 in the real capture


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asks for."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Calls:
    """Function calls asked for in one round (parallel when more than one)."""

    calls: tuple[ToolCall, ...]


Segment = Think | Say | Code | Calls


@dataclass(frozen=True)
class Search:
    """A web search that ran: its sources (``search_results`` entries) and the strategy asked for."""

    sources: tuple[dict[str, Any], ...]
    strategy: str | None = None


@dataclass(frozen=True)
class Plan:
    segments: tuple[Segment, ...]
    search: Search | None = None

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if any(isinstance(s, Calls) for s in self.segments) else "stop"


@dataclass(frozen=True)
class Turn:
    """The parts of a request a script looks at."""

    prompt: str
    messages: tuple[dict[str, Any], ...]
    thinking: bool
    code_interpreter: bool
    search: bool
    search_options: Mapping[str, Any]
    tools: tuple[dict[str, Any], ...]
    tool_choice: Any
    parallel: bool
    tool_results: Mapping[str, str] = field(default_factory=dict)  # tool_call_id -> content

    def tool_named(self, *words: str) -> str | None:
        """Name of the first offered function whose name contains all ``words``."""
        if self.tool_choice == "none":
            return None
        for tool in self.tools:
            function = tool.get("function") if isinstance(tool, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and all(w in name.lower() for w in words):
                return name
        return None

    @property
    def citation(self) -> str | None:
        """The marker template, e.g. ``"[<number>]"``, when citations were asked for."""
        if not self.search_options.get("enable_citation"):
            return None
        fmt = self.search_options.get("citation_format")
        return fmt if fmt in ("[<number>]", "[ref_<number>]") else "[<number>]"


def call_id(name: str, arguments: str) -> str:
    """Deterministic ``call_…`` id (22 hex digits, as the service's), so tests can match it."""
    return "call_" + hashlib.sha1(f"{name}\0{arguments}".encode()).hexdigest()[:22]


def _call(name: str, **arguments: Any) -> ToolCall:
    text = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(call_id(name, text), name, text)


def _thought(turn: Turn, text: str) -> tuple[Segment, ...]:
    return (Think(text),) if turn.thinking else ()


# -- 123 ** 21 with the code interpreter ---------------------------------------------------------

CI_PROMPTS = frozenset({"123的21次方是多少？", "What is 123 to the power of 21?"})
_POWER = str(123**21)


def _power(turn: Turn) -> Plan:
    answer = Say(f"123 to the power of 21 is:\n\n{_POWER}\n\nThat is a {len(_POWER)}-digit number.")
    if turn.code_interpreter:
        return Plan(
            (
                Think("The user asks for 123^21. That is a very large integer, so I will compute it exactly "
                      "with the code interpreter: 123**21."),
                Code("123**21"),
                Think(f"The interpreter returned {_POWER}. I will present the result clearly."),
                answer,
            )
        )
    return Plan((*_thought(turn, "123^21 is large; multiplying by hand: 123^2 = 15129, 123^4 = 228886641, ..."), answer))


# -- the seed's chickens and rabbits, in today's generation (the two generations side by side) -------

CAGE_PROMPT = "有若干只鸡兔同在一个笼子里,从上面数,有100个头,从下面数,有334只脚。问笼中各有多少只鸡和兔?"
_CAGE_CODE = (
    "# heads: chickens + rabbits = 100; feet: 2*chickens + 4*rabbits = 334\n"
    "rabbits = (334 - 2 * 100) // 2\n"
    "chickens = 100 - rabbits\n"
    "print(chickens, rabbits)\n"
    "chickens, rabbits"
)


def _cage(turn: Turn) -> Plan:
    answer = Say("笼中有33只鸡和67只兔子。(Check: 33 + 67 = 100 heads, 2×33 + 4×67 = 334 feet.)")
    if turn.code_interpreter:
        return Plan((Think("100 heads and 334 feet. If all 100 were chickens there would be 200 feet; each rabbit "
                           "adds 2 more, so rabbits = (334 - 200) / 2. I will compute and check it with code."),
                     Code(_CAGE_CODE, result_tokens=96),
                     Think("The code gives 33 chickens and 67 rabbits, and the feet add up to 334."), answer))
    return Plan((*_thought(turn, "Rabbits = (334 - 2*100) / 2 = 67, chickens = 100 - 67 = 33."), answer))


# -- web search with five sources ------------------------------------------------------------------

SEARCH_PROMPTS = frozenset({"Who won the 2022 FIFA World Cup?", "2022年世界杯冠军是谁？"})
SEARCH_SOURCES: tuple[dict[str, Any], ...] = tuple(
    {"index": i, "title": title, "url": url, "site_name": site, "icon": f"https://{host}/favicon.ico"}
    for i, (title, url, site, host) in enumerate(
        [
            ("2022 FIFA World Cup final", "https://en.wikipedia.org/wiki/2022_FIFA_World_Cup_final",
             "Wikipedia", "en.wikipedia.org"),
            ("Argentina win the World Cup after a thrilling final", "https://www.fifa.com/en/tournaments/mens/worldcup/qatar2022",
             "FIFA", "www.fifa.com"),
            ("Messi's Argentina beat France on penalties", "https://www.bbc.com/sport/football/63932622",
             "BBC Sport", "www.bbc.com"),
            ("Lusail Stadium hosts the final", "https://www.theguardian.com/football/2022/dec/18/argentina-france-world-cup-final",
             "The Guardian", "www.theguardian.com"),
            ("World Cup 2022: results and statistics", "https://www.espn.com/soccer/fifa-world-cup/",
             "ESPN", "www.espn.com"),
        ],
        start=1,
    )
)


def _cite(turn: Turn, *numbers: int) -> str:
    template = turn.citation
    return "".join(template.replace("<number>", str(n)) for n in numbers) if template else ""


def _world_cup(turn: Turn) -> Plan:
    if not turn.search:
        return Plan((*_thought(turn, "From memory: the final was in December 2022."),
                     Say("Argentina won the 2022 FIFA World Cup, beating France on penalties.")))
    text = (
        f"Argentina won the 2022 FIFA World Cup{_cite(turn, 1, 2)}. The final against France at Lusail "
        f"Stadium on 18 December 2022 ended 3–3 after extra time{_cite(turn, 4)}, and Argentina won the "
        f"penalty shoot-out 4–2{_cite(turn, 3)}. Lionel Messi was named the tournament's best player{_cite(turn, 5)}."
    )
    return Plan((*_thought(turn, "The search results agree: Argentina beat France on penalties."), Say(text)),
                _search(turn, SEARCH_SOURCES))


PANDAS_PROMPT = "What changed in pandas 3.0?"
PANDAS_SOURCES: tuple[dict[str, Any], ...] = tuple(
    {"index": i, "title": title, "url": url, "site_name": site, "icon": "https://pandas.pydata.org/static/img/favicon.ico"}
    for i, (title, url, site) in enumerate(
        [
            ("What's new in 3.0.0", "https://pandas.pydata.org/docs/whatsnew/v3.0.0.html", "pandas documentation"),
            ("PDEP-7: Consistent copy/view semantics in pandas with Copy-on-Write",
             "https://pandas.pydata.org/pdeps/0007-copy-on-write.html", "pandas"),
            ("PDEP-14: Dedicated string data type for pandas 3.0",
             "https://pandas.pydata.org/pdeps/0014-string-dtype.html", "pandas"),
            ("Copy-on-Write (CoW) user guide", "https://pandas.pydata.org/docs/user_guide/copy_on_write.html",
             "pandas documentation"),
        ],
        start=1,
    )
)


def _pandas3(turn: Turn) -> Plan:
    if not turn.search:
        return Plan((*_thought(turn, "Without a search I can only say what was planned for pandas 3.0."),
                     Say("pandas 3.0 was planned to make Copy-on-Write the default and to add a dedicated string "
                         "dtype; search the web (--search) for what was released.")))
    text = (
        f"pandas 3.0 brings two big changes{_cite(turn, 1)}:\n\n"
        f"- **Copy-on-Write is the only mode**: any indexing result behaves as a copy, so chained assignment "
        f"such as `df[\"a\"][0] = 1` no longer changes `df`; use `df.loc[0, \"a\"] = 1`{_cite(turn, 2, 4)}.\n"
        f"- **A dedicated string dtype** is the default for text columns (`str`, backed by PyArrow when it is "
        f"installed) instead of `object`{_cite(turn, 3)}.\n\n"
        f"Features deprecated in the 2.x series were removed, so fix the warnings 2.x shows before upgrading{_cite(turn, 1)}."
    )
    return Plan((*_thought(turn, "The release notes and the two PDEPs agree on the main changes."), Say(text)),
                _search(turn, PANDAS_SOURCES))


def _search(turn: Turn, sources: tuple[dict[str, Any], ...]) -> Search:
    """The search a scripted answer ran: its sources, and the strategy when it is an agent one."""
    strategy = turn.search_options.get("search_strategy")
    return Search(sources, strategy if isinstance(strategy, str) and strategy.startswith("agent") else None)


# -- the weather: a function-calling conversation --------------------------------------------------

WEATHER_PROMPTS: Mapping[str, tuple[str, ...]] = {
    "What's the weather like in Hangzhou and Beijing?": ("Hangzhou", "Beijing"),
    "杭州现在的天气如何？": ("浙江省杭州市",),
}


def _weather(turn: Turn) -> Plan:
    name = turn.tool_named("weather")
    cities = WEATHER_PROMPTS[turn.prompt]
    if name is None:
        return Plan((Say("I cannot look up live weather without a weather tool."),))
    calls = [_call(name, location=city) for city in cities]
    pending = [c for c in calls if c.id not in turn.tool_results]
    if pending:
        batch = tuple(pending) if turn.parallel else tuple(pending[:1])
        asked = ", ".join(json.loads(c.arguments)["location"] for c in batch)
        return Plan((*_thought(turn, f"I need the current weather for {asked}; I will call {name}."), Calls(batch)))
    # Every call has its result: answer from the tool messages' content (capped, it is untrusted).
    lines = [f"- {json.loads(c.arguments)['location']}: {turn.tool_results[c.id][:200]}" for c in calls]
    return Plan((*_thought(turn, "The tool results are in; I can answer now."),
                 Say("Here is the current weather:\n" + "\n".join(lines))))


# -- sales by region (notebooks/06): two functions, an error to recover from, a declined call ---------

#: Prompts of notebook 06, with functions whose names contain ``top`` and ``change`` in ``tools``.
SALES_BEST = "Which two regions sold the most, and how did the best of them change from Jan to Apr?"
SALES_CHANGE = "How did sales in the North change from January to April?"
SALES_PROMPTS = frozenset({SALES_BEST, SALES_CHANGE})
_DECLINED_PREFIX = "The user declined"  # tool_loop.DECLINED, not imported: the fake stands alone


def _loads(text: str) -> Any:
    """The tool's JSON result, or None (it is untrusted text, parsed only when short)."""
    if len(text) > 20_000:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _best_region(result: str) -> str | None:
    """``region`` of the first entry of a ``top_regions`` result (a JSON list of objects)."""
    value = _loads(result)
    first = value[0] if isinstance(value, list) and value else None
    region = first.get("region") if isinstance(first, dict) else None
    return region[:60] if isinstance(region, str) and region else None


def _ranking(result: str) -> str:
    value = _loads(result)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return ", ".join(f"{str(v.get('region'))[:60]} ({v.get('total')})" for v in value[:10])
    return result[:200]


def _change_text(result: str) -> str:
    value = _loads(result)
    if isinstance(value, dict) and {"region", "from", "to", "change_pct"} <= set(value):
        pct = value["change_pct"]
        word = "rose" if isinstance(pct, (int, float)) and pct >= 0 else "fell"
        return (f"{str(value['region'])[:60]} {word} from {value['from']} to {value['to']} "
                f"({'+' if word == 'rose' else ''}{pct}%)")
    return result[:200]


def _failed(result: str) -> bool:
    return result.startswith(("Error:", "Invalid call:"))


def _sales_best(turn: Turn) -> Plan:
    """top_regions(n=2), then change(best region, Jan → Apr), then the answer from both results."""
    top, change = turn.tool_named("top"), turn.tool_named("change")
    if top is None or change is None:
        return Plan((Say("I need a ranking tool and a change tool to answer from your data."),))
    ranking = _call(top, n=2)
    if ranking.id not in turn.tool_results:
        return Plan((*_thought(turn, f"First the ranking: I will call {top} with n=2."), Calls((ranking,))))
    if turn.tool_results[ranking.id].startswith(_DECLINED_PREFIX):
        return Plan((Say(f"You declined the call to `{top}`, so I have no ranking to answer from."),))
    best = _best_region(turn.tool_results[ranking.id])
    ranked = _ranking(turn.tool_results[ranking.id])
    if best is None:
        return Plan((Say(f"The ranking did not name a region, so I cannot go on. It returned: {ranked}"),))
    delta = _call(change, region=best, month_from="Jan", month_to="Apr")
    if delta.id not in turn.tool_results:
        return Plan((*_thought(turn, f"{best} is first; now its change from Jan to Apr."), Calls((delta,))))
    result = turn.tool_results[delta.id]
    if result.startswith(_DECLINED_PREFIX):
        tail = (f"You declined the call to `{change}`, so I did not work out how {best} changed from Jan "
                "to Apr. Approve it if you want that figure.")
    elif _failed(result):
        tail = f"The change for {best} could not be computed: {result[:200]}"
    else:
        tail = f"The best of them, {_change_text(result)}."
    return Plan((Say(f"The two regions that sold the most: {ranked}.\n\n{tail}"),))


def _sales_change(turn: Turn) -> Plan:
    """change(North, January → April); on an error, once more with the short month names."""
    change = turn.tool_named("change")
    if change is None:
        return Plan((Say("I need a change tool to answer from your data."),))
    long = _call(change, region="North", month_from="January", month_to="April")
    if long.id not in turn.tool_results:
        return Plan((*_thought(turn, f"I will call {change} for the North."), Calls((long,))))
    result = turn.tool_results[long.id]
    if _failed(result):
        short = _call(change, region="North", month_from="Jan", month_to="Apr")
        if short.id not in turn.tool_results:
            return Plan((*_thought(turn, f"The call failed ({result.removeprefix('Error: ')[:160]}). "
                                         "I will try the short month names, Jan and Apr."), Calls((short,))))
        result = turn.tool_results[short.id]
        if _failed(result):
            return Plan((Say(f"The tool failed twice, so I have no figure: {result[:200]}"),))
        return Plan((Say(f"The first call failed (the months are called Jan and Apr in your data), so I "
                         f"asked again. The North {_change_text(result).removeprefix('North ')}."),))
    return Plan((Say(f"The North {_change_text(result).removeprefix('North ')}."),))


# -- 1 + 1 ---------------------------------------------------------------------------------------------

ONE_PLUS_ONE_PROMPTS = frozenset({"请问 1+1 是多少？", "What is 1+1?"})


def _one_plus_one(turn: Turn) -> Plan:
    return Plan((*_thought(turn, "The user asks what 1+1 is. That is basic arithmetic: 2."),
                 Say("1 + 1 = **2**. It is one of the most basic sums in arithmetic.")))


def _default(turn: Turn) -> Plan:
    shown = turn.prompt[:60]
    return Plan((*_thought(turn, f"(fake DashScope) thinking about: {shown}"),
                 Say(f"(fake DashScope) no scripted answer for: {shown}")))


SCRIPTS: dict[str, Callable[[Turn], Plan]] = {
    **{p: _power for p in CI_PROMPTS},
    **{p: _world_cup for p in SEARCH_PROMPTS},
    CAGE_PROMPT: _cage,
    PANDAS_PROMPT: _pandas3,
    **{p: _weather for p in WEATHER_PROMPTS},
    **{p: _one_plus_one for p in ONE_PLUS_ONE_PROMPTS},
    SALES_BEST: _sales_best,
    SALES_CHANGE: _sales_change,
}


def plan_for(turn: Turn) -> Plan:
    """The scripted plan for the turn's prompt, or a default answer saying none is scripted."""
    return SCRIPTS.get(turn.prompt, _default)(turn)


# -- the legacy calculator plugin on any arithmetic prompt ------------------------------------------

_OPS: Mapping[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}


def _evaluate(node: ast.AST) -> float:
    """+ - * / on numbers only: nothing else in a prompt is ever evaluated."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return float(_OPS[type(node.op)](_evaluate(node.left), _evaluate(node.right)))
    raise ValueError("not plain arithmetic")


def calculator_trace(prompt: str | None) -> dict[str, Any] | None:
    """A plugin trace for an arithmetic prompt (``1+2*3-4/5=?``) with the calculator plugin, in the
    shape of a real 2024 reply: a ``plugin_call`` with empty content, the ``plugin`` result, then a
    plain answer without ``Thought:``/``Final Answer:`` markers. ``None`` if it is not arithmetic."""
    expression = (prompt or "").strip().removesuffix("?").removesuffix("？").strip().removesuffix("=").strip()
    if not expression or len(expression) > 200:
        return None
    try:
        tree = ast.parse(expression, mode="eval")
        value = _evaluate(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
    equation = ast.unparse(tree)
    result: float | int = int(value) if value.is_integer() else round(value, 10)
    plugin_result = json.dumps({"equations": [equation], "results": [result]})
    messages = [
        {"role": "assistant", "plugin_call": {"name": "calculator",
                                              "arguments": json.dumps({"payload__input__text": expression})},
         "content": ""},
        {"role": "plugin", "name": "calculator", "content": plugin_result,
         "status": {"code": 200, "name": "Success", "message": "success"}},
        {"role": "assistant", "content": f"The result of the expression {equation} is {result}."},
    ]
    output_tokens = 20 + len(equation)
    usage = {"total_tokens": 10 + output_tokens, "output_tokens": output_tokens, "input_tokens": 10}
    return {"output": {"choices": [{"finish_reason": "stop", "messages": messages}]}, "usage": usage,
            "request_id": str(uuid.uuid4())}
