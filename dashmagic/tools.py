"""Your Python functions as function tools: the JSON spec from the signature, checked arguments.

Pure (no IPython, no network). :func:`tool_spec` describes a function the way DashScope's
``parameters.tools`` wants it (protocol-current §6)::

    {"type": "function", "function": {"name": ..., "description": ..., "parameters": <JSON Schema>}}

The schema comes from pydantic (``create_model`` over the signature → ``model_json_schema``):
it already knows ``Literal``, ``Optional``, lists, tuples, ``dict[str, …]``, dataclasses and
TypedDicts, and the *same* model validates the model's arguments (strictly, from the raw JSON
text, no extra keys) before anything runs. pydantic is imported on first use only, so
``import dashmagic`` and ``%load_ext dashmagic`` stay cheap.

:class:`Toolbox` is one call's tools: callables (described here) and JSON specs (passed
through, never run), by name.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .errors import ConfigError

__all__ = [
    "Tool",
    "Toolbox",
    "ArgumentsError",
    "tool_spec",
    "describe",
    "has_callables",
    "docstring_parts",
    "MAX_ARGUMENTS_CHARS",
]

#: The longest arguments text that is parsed at all (a model can stream megabytes).
MAX_ARGUMENTS_CHARS = 100_000
_DESCRIPTION_LIMIT = 1024
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class ArgumentsError(ValueError):
    """The model's arguments are not JSON, or do not fit the schema: one line, bounded."""


@dataclass(frozen=True)
class Tool:
    """One callable offered to the model: its name, its JSON spec, and how to check arguments."""

    name: str
    function: Callable[..., Any]
    spec: Mapping[str, Any]
    _model: Any = field(repr=False, compare=False, default=None)
    _positional: tuple[str, ...] = field(repr=False, compare=False, default=())

    def parse(self, raw: str) -> dict[str, Any]:
        """The arguments for the call, checked against the schema; :class:`ArgumentsError` if not."""
        text = raw if isinstance(raw, str) else ""
        if len(text) > MAX_ARGUMENTS_CHARS:
            raise ArgumentsError(
                f"arguments are {len(text):,} characters, more than the {MAX_ARGUMENTS_CHARS:,} accepted"
            )
        text = text.strip() or "{}"
        from pydantic import ValidationError

        try:
            validated = self._model.model_validate_json(text, strict=True)
        except ValidationError as exc:
            raise ArgumentsError(_first_error(exc)) from None
        except (ValueError, RecursionError) as exc:  # pragma: no cover - pydantic wraps these
            raise ArgumentsError(f"arguments are not valid JSON ({type(exc).__name__})") from None
        return {name: getattr(validated, name) for name in type(validated).model_fields}

    def call(self, arguments: Mapping[str, Any]) -> Any:
        positional = [arguments[n] for n in self._positional]
        keywords = {k: v for k, v in arguments.items() if k not in self._positional}
        return self.function(*positional, **keywords)


def _first_error(exc: Any) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "arguments do not fit the schema"
    first = errors[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "arguments"
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "arguments are not valid JSON"
    message = str(first.get("msg", "invalid"))[:160]
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{where[:80]}: {message}{more}"


# -- docstrings --------------------------------------------------------------------------------

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|See Also|Attributes)\s*:?\s*$")


def docstring_parts(doc: str | None) -> tuple[str, dict[str, str]]:
    """``(summary, {parameter: description})`` from a numpy ("Parameters" + dashes) or Google
    ("Args:") docstring. The summary is the first paragraph."""
    text = inspect.cleandoc(doc or "")
    lines = text.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        summary.append(line.strip())
    return " ".join(summary)[:_DESCRIPTION_LIMIT], _parameter_docs(lines)


def _parameter_docs(lines: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    i, in_params, current = 0, False, None
    base_indent = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        heading = _SECTION.match(stripped)
        is_numpy = heading and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
        if heading and (stripped.endswith(":") or is_numpy):
            in_params = heading.group(1) in ("Args", "Arguments", "Parameters", "Params")
            current = None
            i += 2 if is_numpy else 1
            base_indent = _indent_of(lines[i]) if i < len(lines) else 0
            continue
        if in_params and stripped:
            indent = _indent_of(line)
            entry = _entry(stripped)
            if indent <= base_indent and entry:
                current, docs[current] = entry
            elif current is not None:
                docs[current] = (docs[current] + " " + stripped).strip()
        i += 1
    return {k: v[:_DESCRIPTION_LIMIT] for k, v in docs.items() if v}


_GOOGLE_TYPED = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*\([^)]*\)\s*:\s*(.*)$")  # name (type): text
_NUMPY = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s+:\s*.*$")  # name : type (text on the next lines)
_GOOGLE = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*:\s*(.*)$")  # name: text
_BARE = re.compile(r"^\*{0,2}([A-Za-z_]\w*)$")  # numpy without a type


def _entry(line: str) -> tuple[str, str] | None:
    for pattern in (_GOOGLE_TYPED, _NUMPY, _GOOGLE, _BARE):
        found = pattern.match(line)
        if found:
            text = found.group(2) if pattern.groups > 1 else ""
            return found.group(1), text.strip()
    return None


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


# -- the spec ------------------------------------------------------------------------------------


def tool_spec(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON function-tool spec of ``fn``; :class:`ConfigError` (one line naming the
    parameter) if its signature cannot be described."""
    return dict(describe(fn).spec)


def describe(fn: Callable[..., Any]) -> Tool:
    """``fn`` as a :class:`Tool`: spec plus the pydantic model that checks its arguments."""
    if not callable(fn):
        raise ConfigError(f"A tool must be a function or a JSON tool spec, got {type(fn).__name__}.")
    name = getattr(fn, "__name__", "") or ""
    if not _NAME.match(name):
        raise ConfigError(
            f"A tool function needs a plain name (letters, digits, _ or -, at most 64), got {name[:40]!r}; "
            "define it with def."
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ConfigError(f"Tool {name}: its signature cannot be read (a builtin?); wrap it in a def.") from None
    hints = _hints(fn, name)
    summary, param_docs = docstring_parts(getattr(fn, "__doc__", None))
    fields: dict[str, Any] = {}
    positional: list[str] = []
    for param in signature.parameters.values():
        fields[param.name] = _field_for(name, param, hints, param_docs)
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(param.name)
    model = _model_for(name, fields)
    parameters = _clean_schema(model.model_json_schema())
    function: dict[str, Any] = {"name": name, "parameters": parameters}
    if summary:
        function = {"name": name, "description": summary, "parameters": parameters}
    return Tool(name, fn, {"type": "function", "function": function}, model, tuple(positional))


def _hints(fn: Callable[..., Any], name: str) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:  # a forward reference to a name that no longer exists, say
        raise ConfigError(f"Tool {name}: its type hints cannot be resolved ({type(exc).__name__}: {str(exc)[:80]}).") from None


def _field_for(name: str, param: inspect.Parameter, hints: Mapping[str, Any], docs: Mapping[str, str]) -> Any:
    from pydantic import Field, TypeAdapter
    from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

    if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
        star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
        raise ConfigError(
            f"Tool {name}: parameter {star}{param.name} cannot be described as JSON; give it named parameters instead."
        )
    annotation = _portable(hints.get(param.name, Any))
    try:
        TypeAdapter(annotation).json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError, ValueError) as exc:
        shown = getattr(annotation, "__name__", None) or repr(annotation)
        raise ConfigError(
            f"Tool {name}: parameter {param.name!r} is typed {str(shown)[:60]}, which cannot be described as JSON "
            f"(use str, int, float, bool, Literal, list, dict, a dataclass or a TypedDict) [{type(exc).__name__}]."
        ) from None
    description = docs.get(param.name)
    default = ... if param.default is inspect.Parameter.empty else param.default
    if default is not ...:
        try:
            json.dumps(default)
        except (TypeError, ValueError):
            default = None if default is None else ...  # an unsendable default stays unshown but optional
            if default is ...:
                return (annotation, Field(default_factory=_keep(param.default), description=description))
    return (annotation, Field(default, description=description))


def _portable(annotation: Any, depth: int = 0) -> Any:
    """``typing.TypedDict`` rebuilt as ``typing_extensions.TypedDict`` (pydantic refuses the
    former before Python 3.12), through Optional/Union, list, tuple and dict."""
    import sys
    import typing

    if sys.version_info >= (3, 12) or depth > 8:
        return annotation
    import typing_extensions

    if typing.is_typeddict(annotation) and not hasattr(annotation, "__orig_bases__") or (
        typing.is_typeddict(annotation) and type(annotation).__module__ == "typing"
    ):
        required: frozenset[str] = getattr(annotation, "__required_keys__", frozenset())
        fields = {
            key: (typing_extensions.Required if key in required else typing_extensions.NotRequired)[
                _portable(value, depth + 1)
            ]
            for key, value in typing.get_type_hints(annotation).items()
        }
        make: Any = typing_extensions.TypedDict  # a dynamic name: mypy wants a literal
        rebuilt = make(annotation.__name__, fields)
        rebuilt.__doc__ = annotation.__doc__
        return rebuilt
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if not args or origin is typing.Literal:
        return annotation
    portable = tuple(_portable(a, depth + 1) for a in args)
    if portable == args:
        return annotation
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return typing.Union[portable]
    try:
        return origin[portable] if origin is not None else annotation
    except TypeError:
        return annotation


def _keep(value: Any) -> Callable[[], Any]:
    return lambda: value


def _model_for(name: str, fields: Mapping[str, Any]) -> Any:
    from pydantic import ConfigDict, create_model

    try:
        return create_model(
            f"{name}_arguments", __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False), **fields
        )
    except Exception as exc:  # pydantic refuses a field name (e.g. one starting with _)
        raise ConfigError(f"Tool {name}: its parameters cannot be described ({type(exc).__name__}: {str(exc)[:100]}).") from None


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Titles dropped (noise the model pays tokens for); ``$defs`` inlined unless recursive."""
    defs = schema.pop("$defs", {})
    cleaned = _strip_titles(schema)
    try:
        inlined = _inline(cleaned, _strip_titles(defs), depth=0)
    except _Recursive:
        cleaned["$defs"] = _strip_titles(defs)
        return dict(cleaned)
    return dict(inlined)


class _Recursive(Exception):
    pass


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def _inline(node: Any, defs: Mapping[str, Any], depth: int) -> Any:
    if depth > 32:
        raise _Recursive()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_inline(defs[ref[8:]], defs, depth + 1), **_inline(rest, defs, depth)}
        return {k: _inline(v, defs, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs, depth) for v in node]
    return node


# -- one call's tools -------------------------------------------------------------------------------


def has_callables(tools: Any) -> bool:
    """Whether ``tools=`` holds a function to run (the tool loop), not only JSON specs."""
    if tools is None or isinstance(tools, (Mapping, str, bytes)):
        return callable(tools) and not isinstance(tools, (Mapping, str, bytes))
    try:
        return any(callable(t) and not isinstance(t, Mapping) for t in tools)
    except TypeError:
        return False


@dataclass(frozen=True)
class Toolbox:
    """The tools of one call: specs to send, and the callables behind some of them, by name."""

    specs: tuple[Mapping[str, Any], ...]
    callables: Mapping[str, Tool]

    @classmethod
    def of(cls, tools: Iterable[Any] | Callable[..., Any] | Mapping[str, Any]) -> Toolbox:
        items: Sequence[Any] = [tools] if callable(tools) or isinstance(tools, Mapping) else list(tools)
        specs: list[Mapping[str, Any]] = []
        callables: dict[str, Tool] = {}
        names: set[str] = set()
        for item in items:
            if isinstance(item, Mapping):
                spec = item
            else:
                tool = describe(item)
                callables[tool.name] = tool
                spec = tool.spec
            function = spec.get("function")
            name = function.get("name") if isinstance(function, Mapping) else None
            if isinstance(name, str):
                if name in names:
                    raise ConfigError(f"Two tools are named {name!r}; each tool needs its own name.")
                names.add(name)
            specs.append(spec)
        return cls(tuple(specs), callables)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.callables)
