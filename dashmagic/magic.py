"""``%%dashscope`` / ``%dashscope`` / ``%dashscope_reset``: a thin IPython adapter.

The magic parses its line, lets :func:`dashmagic.plan.plan_cell` decide what the cell does,
builds one :class:`~dashmagic.client.Client` for it and hands each snapshot to
:class:`~dashmagic.display.LiveDisplay`. It holds no policy of its own.
Defaults are traitlets on :class:`DashScopeMagics` (``%config DashScopeMagics.model = "qwen-max"``).
The API key is deliberately *not* a trait: ``%config`` prints trait values.
"""

from __future__ import annotations

import getpass
import os
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from IPython.core import magic_arguments
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Bool, Float, Int, List, Unicode, validate
from traitlets import TraitError

from ._constants import DEFAULT_IMAGE_HOSTS, DEFAULT_MODEL, DEFAULT_SYSTEM, KNOWN_PLUGINS, MODES
from .errors import DashmagicError

# IPython's magic_arguments is untyped; typed names for its decorators keep the magic checked
# by mypy --strict (the decorators return the function they wrap, with parser attributes).
_F = TypeVar("_F", bound=Callable[..., Any])


class _Decorator(Protocol):
    def __call__(self, func: _F, /) -> _F: ...


_argument = cast("Callable[..., _Decorator]", magic_arguments.argument)
_magic_arguments = cast("Callable[[], _Decorator]", magic_arguments.magic_arguments)
_parse_argstring = cast("Callable[[Any, str], Any]", magic_arguments.parse_argstring)
# IPython types these as returning "_F | Callable[[_F], _F]" (they also take a name); used bare.
_line_cell_magic = cast("_Decorator", line_cell_magic)
_line_magic = cast("_Decorator", line_magic)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .config import Secret
    from .plan import CellPlan
    from .request import Call
    from .trace import Trace

# The pipeline (plan, client, display) is imported on the first cell, not at %load_ext:
# building its dataclasses alone costs tens of milliseconds.

__all__ = ["DashScopeMagics", "load", "unload"]


@magics_class
class DashScopeMagics(Magics):
    """Defaults for ``%%dashscope``; set with ``%config DashScopeMagics.<name> = value``."""

    model = Unicode(DEFAULT_MODEL, help="Model name, e.g. qwen-plus, qwen-max, qwen-turbo.").tag(config=True)
    system = Unicode(DEFAULT_SYSTEM, help="System message ('' sends none).").tag(config=True)
    plugins = List(Unicode(), default_value=[], help="Plugins used when --plugins is not given.").tag(config=True)
    stream = Bool(
        None, allow_none=True, help="Stream answers live. None: on in a Jupyter kernel, off in a terminal."
    ).tag(config=True)
    timeout = Float(180.0, help="Read timeout in seconds (for streams: the longest silence between events).").tag(config=True)
    connect_timeout = Float(10.0, help="Connect timeout in seconds.").tag(config=True)
    retries = Int(3, help="Tries for throttling (429), 5xx and connection failures before any reply.").tag(config=True)
    embed_images = Bool(True, help="Fetch figures once and embed their bytes (signed URLs expire).").tag(config=True)
    max_image_bytes = Int(5 * 1024 * 1024, help="Largest figure embedded, in bytes.").tag(config=True)
    image_hosts = List(
        Unicode(), default_value=list(DEFAULT_IMAGE_HOSTS),
        help="Hosts figures are fetched from automatically (exact, or '.suffix' for subdomains): by "
        "default only the buckets DashScope writes plugin output to. The base URL's host is always allowed.",
    ).tag(config=True)
    live_updates = Bool(
        None, allow_none=True,
        help="Update the output while the answer arrives. None: on in a Jupyter kernel unless "
        "DASHMAGIC_LIVE=0 (nbval compares only the first display of a cell, so it runs with 0).",
    ).tag(config=True)
    update_interval = Float(0.1, help="Seconds between live updates (the throttle).").tag(config=True)
    interpolate = Bool(True, help="Replace {{ expr }} in prompts with values from the namespace.").tag(config=True)
    mode = Unicode("", help="live, record or replay ('' reads DASHMAGIC_MODE, default live).").tag(config=True)
    recordings = Unicode("", help="Recording file for record/replay ('' reads DASHMAGIC_RECORDINGS; replay defaults to 'demo').").tag(config=True)
    base_url = Unicode("", help="API base URL ('' reads DASHSCOPE_HTTP_BASE_URL, default Beijing).").tag(config=True)
    local_timeout = Float(30.0, help="Seconds a --run-locally run may take before it is killed.").tag(config=True)
    widgets = Bool(
        None, allow_none=True,
        help="Show small controls (copy the code, run it locally) under a trace. None: only in a Jupyter "
        "server or VS Code kernel with live updates on and ipywidgets installed (never nbval/nbconvert).",
    ).tag(config=True)

    @validate("mode")
    def _check_mode(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip().lower()
        if value and value not in MODES:
            raise TraitError(f"invalid mode {value!r}, expected one of {', '.join(MODES)}")
        return value

    @validate("timeout", "connect_timeout", "update_interval", "local_timeout")
    def _check_positive(self, proposal: dict[str, Any]) -> float:
        from .config import check_seconds

        try:
            return check_seconds(proposal["value"], f"DashScopeMagics.{proposal['trait'].name}")
        except DashmagicError as exc:  # load() drops config that raises TraitError
            raise TraitError(str(exc)) from None

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._chat: list[dict[str, Any]] = []
        self._session_key: Secret | None = None  # from getpass, this kernel session only
        self._getpass: Callable[[str], str] = getpass.getpass
        self.last_display: Any = None  # the LiveDisplay of the last cell (tests, benchmarks)
        self.last_trace: Trace | None = None  # what %dashscope_code reads by default
        self.last_controls: Any = None  # the widget box shown under the last trace, if any

    # -- the magics -----------------------------------------------------------------------
    @no_var_expand
    @_magic_arguments()
    @_argument("--plugins", "-p", help="Comma-separated plugins: " + ", ".join(KNOWN_PLUGINS) + ".")
    @_argument("--model", "-m", help="Model, e.g. qwen-plus (default from config).")
    @_argument("--system", help="System message for this cell.")
    @_argument("--seed", type=int, help="Sampling seed, for repeatable answers.")
    @_argument("--file", action="append", default=[], metavar="URL", help="A document URL (repeatable), for pdf_extracter.")
    @_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="Extra model parameter (repeatable); JSON values parse, e.g. temperature=0.2.")
    @_argument("--stream", dest="stream", action="store_true", default=None, help="Stream the answer live.")
    @_argument("--no-stream", dest="stream", action="store_false", help="Wait for the whole answer.")
    @_argument("--out", "-o", metavar="NAME", help="Store the Trace in this variable.")
    @_argument("--chat", action="store_true", help="Continue this notebook's conversation (see %%dashscope_reset).")
    @_argument("--dry-run", action="store_true", help="Show the exact request (key masked) and send nothing.")
    @_argument("--timeout", type=float, metavar="SECONDS", help="Read timeout (streams: longest silence between events).")
    @_argument("--no-interpolate", action="store_true", help="Send {{ }} literally.")
    @_argument("--record", metavar="PATH", help="Call the service and append the exchange to PATH.")
    @_argument("--replay", metavar="PATH", help="Answer from a recording ('demo' = bundled examples); no network.")
    # -- many prompts: the cell is a template run once per row (see _map_cell) --
    @_argument("--over", metavar="DATAFRAME", help="Run the cell once per row; {{ row.col }} fills each.")
    @_argument("--into", metavar="COLUMN[=FIELD]", help="With --over: put the answers (or a JSON field) in this column.")
    @_argument("--concurrency", type=int, metavar="N", help="With --over: rows in flight at once (default 8).")
    # -- running the answer's code here (see dashmagic.local_run) --
    @_argument("--run-locally", action="store_true", help="Then run the trace's code in a separate Python process here (never this kernel); replayed in replay mode.")
    @_argument("--allow-invisible", action="store_true", help="With --run-locally: run code even if it holds bidi/invisible characters.")
    # -- today's generation: built-in tools in the body (the seed's --plugins is the older one) --
    @_argument("--thinking", dest="thinking", action="store_true", default=None, help="Show the model's reasoning (enable_thinking); default model qwen3-max.")
    @_argument("--no-thinking", dest="thinking", action="store_false", help="Ask the model not to think.")
    @_argument("--thinking-budget", type=int, metavar="N", help="At most N reasoning tokens (implies --thinking).")
    @_argument("--code-interpreter", action="store_true", help="The built-in code interpreter (needs thinking and streaming); default model qwen3-max.")
    @_argument("--search", action="store_true", help="Web search (enable_search).")
    @_argument("--search-strategy", choices=("turbo", "max", "agent", "agent_max"), help="Search strategy (implies --search).")
    @_argument("--forced-search", action="store_true", help="Always search (implies --search).")
    @_argument("--sources", action="store_true", help="Show the search sources (implies --search).")
    @_argument("--citations", action="store_true", help="Inline [1] citation markers linked to the sources (implies --sources).")
    @_argument("--freshness", type=int, choices=(7, 30, 180, 365), help="Search only pages from the last N days (implies --search).")
    @_argument("--tools", metavar="NAMES", help="Comma-separated variables: Python functions (run here, each call approved) or JSON function-tool specs.")
    # -- the tool loop: your functions as tools (see dashmagic.tool_loop) --
    @_argument("--approve", metavar="all|NAMES", help="With --tools functions: run these without asking (else each call waits for Approve/Reject or y/n).")
    @_argument("--max-rounds", type=int, metavar="N", help="With --tools functions: model calls at most (default 5).")
    @_argument("--endpoint", choices=("text", "multimodal"), help="Override the endpoint (default: multimodal for Qwen 3.5/3.6/3.7).")
    @_argument("prompt", nargs="*", help="(line magic) the prompt.")
    @_line_cell_magic
    def dashscope(self, line: str, cell: str | None = None) -> None:
        """Ask a DashScope model, with plugins or today's built-in tools, and show the trace.

        Everything below the first line is the prompt (a ``#`` line is sent too); the line
        form ``%dashscope FLAGS PROMPT`` takes it on one line. ``{{ expr }}`` is replaced by
        its value in your namespace; single braces stay as typed.

        Examples (each block is one cell; ``--replay demo`` answers all of them offline,
        with no key, from the bundled recordings):

            %%dashscope --plugins code_interpreter
            画一个y=x^2的函数图

            %dashscope --plugins calculator 12345*98765是多少

            a, b = 12345, 98765

            %%dashscope --plugins calculator --stream --out t
            {{ a }}*{{ b }}是多少

            t.answer

            %%dashscope --replay demo --plugins calculator
            12345*98765是多少

            %%dashscope --code-interpreter
            123的21次方是多少？

            %%dashscope --search --citations --search-strategy max
            What changed in pandas 3.0?

        The key is read from DASHSCOPE_API_KEY, DASHSCOPE_API_KEY_FILE_PATH or
        ~/.dashscope/api_key (never from a cell); with none in a Jupyter kernel you are asked
        for it once. Defaults: ``%config DashScopeMagics``.
        """
        from .client import Client
        from .plan import plan_cell

        args = _parse_line(self.dashscope, line)
        plan = plan_cell(
            args, cell, self._defaults(), self._user_ns, history=self._chat, in_kernel=_in_kernel(self.shell)
        )
        _warn_unknown(plan.unknown_plugins)
        if plan.batch is not None:
            return self._map_cell(plan)
        typed: list[Secret] = []  # the getpass key, when this cell used one
        with Client(**plan.client) as client:
            client.key_prompt = self._key_prompt(typed) if _can_prompt(self.shell) else None
            call = client.build(plan.prompt, stream=plan.stream, **plan.call)
            if plan.dry_run:
                return self._show_dry_run(call, client)
            trace, error = self._show(client, call, plan)
        self.last_trace = trace
        self._show_controls(trace, client)
        if plan.out:
            self._user_ns[plan.out] = trace
        if error is not None:
            raise self._one_line(error, trace, shown=self.last_display.kept, typed=bool(typed))
        if plan.chat and trace.done:  # a loop waiting for approval adds its turn when it ends
            self._chat.extend(trace.turn())
        return None

    @_line_magic
    def dashscope_reset(self, line: str = "") -> None:
        """Forget the ``--chat`` conversation of this notebook."""
        turns = sum(1 for m in self._chat if m.get("role") == "user")
        self._chat.clear()
        print(f"dashmagic: chat history cleared ({turns} turn{'s' if turns != 1 else ''} forgotten).")

    @_magic_arguments()
    @_argument("n", nargs="?", type=int, help="Only the Nth code block (1 = the first).")
    @_argument("--from", dest="source", metavar="NAME", help="A trace stored with --out NAME, not the last one.")
    @_line_magic
    def dashscope_code(self, line: str = "") -> None:
        """Put the model's code into the next cell, to read and run yourself (it is never run here).

        Examples
        --------
        ::

            %dashscope_code              # all code blocks of the last trace, joined
            %dashscope_code 2            # only the second block
            %dashscope_code --from t     # from a trace stored with --out t

        Bidi and other invisible characters are kept exactly, and named (with their line and
        column) in a warning first: such code may not run the way it reads.
        """
        args = _parse_argstring(self.dashscope_code, line)
        trace = self._code_source(args.source)
        if trace is None:
            print("dashmagic: no trace yet: run a %%dashscope cell first, or name a stored one with --from NAME.")
            return
        code = _cell_code(trace, args.n)
        if code is None:
            print("dashmagic: that trace holds no code (no code_interpreter call and no code execution).")
            return
        _warn_invisible(code)
        shell: Any = self.shell
        shell.set_next_input(code, replace=False)

    def _code_source(self, name: str | None) -> Trace | None:
        from IPython.core.error import UsageError

        from .trace import Trace

        if name is None:
            return self.last_trace
        namespace: dict[str, Any] = getattr(self.shell, "user_ns", {})
        value = namespace.get(name)
        if not isinstance(value, Trace):
            found = "no such variable" if name not in namespace else f"it is a {type(value).__name__}"
            raise UsageError(f"%dashscope_code --from {name}: {found}; name a trace stored with --out {name}.")
        return value

    def _then_run_locally(self, snapshots: Iterator[Trace], client: Any, allow_invisible: bool) -> Iterator[Trace]:
        """The call's snapshots, then one more: the final trace plus its LocalRun step."""
        last = None
        for last in snapshots:
            yield last
        if last is not None:
            yield self._run_locally(last, client, allow_invisible)

    def _run_locally(self, trace: Trace, client: Any, allow_invisible: bool) -> Trace:
        from .local_run import run_trace
        from .scrub import KeyScrubber

        key = None if client.replay else client.key()
        try:
            return run_trace(
                trace, mode=client.mode, recordings=client.recordings, timeout=self.local_timeout,
                allow_invisible=allow_invisible, scrub=KeyScrubber(key).text,
                secrets=[key.reveal()] if key is not None else [],
            )
        except DashmagicError as exc:
            exc.trace = trace  # the service's trace is still shown, the error on its own line
            raise

    def _show_controls(self, trace: Trace, client: Any) -> None:
        """Widgets under the trace, as a separate output (the trace's own output never changes)."""
        if not self._widgets_wanted():
            return
        from .widgets import trace_controls

        mode, recordings = client.mode, client.recordings

        def run(current: Trace) -> Trace:
            from .local_run import run_trace

            return run_trace(current, mode=mode, recordings=recordings, timeout=self.local_timeout)

        box = trace_controls(trace, self.shell, run_locally=run)
        if box is not None:
            display = _display()

            self.last_controls = box
            _display()(box)

    def _widgets_wanted(self) -> bool:
        if self.widgets is not None:
            return bool(self.widgets) and _in_kernel(self.shell)
        from .progress import widget_frontend

        # nbval runs with DASHMAGIC_LIVE=0 (so _live() is off); nbconvert/nbclient kernels have no
        # frontend that draws widgets.
        return self._live() and widget_frontend(self.shell)

    @property
    def _user_ns(self) -> dict[str, Any]:
        shell = self.shell
        if shell is None:  # pragma: no cover - IPython always builds magics with a shell
            raise RuntimeError("DashScopeMagics needs an IPython shell")
        namespace: dict[str, Any] = shell.user_ns
        return namespace

    # -- adapter pieces -------------------------------------------------------------------------
    def _defaults(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.trait_names(config=True)}

    def _prompt_for_key(self) -> Secret | None:
        """Ask once per kernel session (getpass: never echoed, never stored in the notebook)."""
        from .config import validate_key

        if self._session_key is None:
            value = self._getpass("DashScope API key (kept in memory for this session only): ").strip()
            self._session_key = validate_key(value, "the key typed at the prompt") if value else None
        return self._session_key

    def _key_prompt(self, typed: list[Secret]) -> Callable[[], Secret | None]:
        def ask() -> Secret | None:
            key = self._prompt_for_key()
            if key is not None:
                typed.append(key)
            return key

        return ask

    def _one_line(self, error: DashmagicError, trace: Trace, *, shown: bool, typed: bool) -> DashmagicError:
        """The error as the cell's one line: said once, with the id the trace shows.

        An error after the trace was shown is in the trace already (with its details): the line
        only names it and points there. An error before anything is the only message, in full.
        A 401 for a key typed at the prompt forgets that key, so the next cell asks again (a
        key from the environment or a file is the user's setting and is never dropped).
        """
        from .errors import AuthenticationError, Interrupted

        if shown and trace.status == "error" and not isinstance(error, Interrupted):
            _set_message(error, _pointer(error, trace))
        if isinstance(error, AuthenticationError) and typed:
            self._session_key = None
            _set_message(error, f"{error.message.rstrip('.')}; the key you typed was forgotten: run the cell "
                                "again to enter another.")
        return error

    def _show(self, client: Any, call: Call, plan: CellPlan | None = None) -> tuple[Trace, DashmagicError | None]:
        from .display import LiveDisplay
        from .trace import Trace

        view = LiveDisplay(live=self._live(), interval=self.update_interval,
                           terminal=not _in_kernel(self.shell), out=plan.out if plan is not None else None)
        self.last_display = view
        if plan is not None and _runs_tools(plan):
            return self._show_tool_loop(client, call, plan, view)
        snapshots = client.execute(call, on_retry=view.show)
        if plan is not None and plan.run_locally:
            snapshots = self._then_run_locally(snapshots, client, plan.allow_invisible)
        if view.live:  # show at once that something is happening, even before the first byte
            view.show(Trace(request=call.info))
        return view.follow(snapshots)

    # -- the tool loop (--tools naming functions): approval by buttons, y/n, or up front ----------
    def _show_tool_loop(self, client: Any, call: Call, plan: CellPlan, view: Any) -> tuple[Trace, DashmagicError | None]:
        from .tool_approval import widgets_available
        from .tool_loop import terminal_ask
        from .trace import Trace

        deferred = view.live and self._widgets_wanted() and widgets_available()
        ask = None if deferred or _in_kernel(self.shell) else terminal_ask()
        loop = client.tool_loop(plan.prompt, stream=plan.stream, ask=ask, defer=deferred, **plan.call, **plan.tool_loop)
        if view.live:
            view.show(Trace(request=call.info))
        trace, error = view.follow(loop.run())
        if loop.pending and error is None:
            self._show_approval(loop, view, plan, client)
        return trace, error

    def _show_approval(self, loop: Any, view: Any, plan: CellPlan, client: Any) -> None:
        """Buttons under the trace; the loop goes on from their callback, after this cell."""
        from .client import Client
        from .tool_approval import approval_controls

        # The cell's Client closes when the cell ends: the continued loop gets its own.
        loop.client = Client(**plan.client, api_key=client._key)

        def done(final: Trace, error: Exception | None) -> None:
            view.close(final)
            self.last_trace = final
            if plan.out:
                self._user_ns[plan.out] = final
            if plan.chat and error is None:
                self._chat.extend(final.turn())
            loop.client.close()

        box = approval_controls(loop, view.show, done, pause=view.close)  # close: sent now, not throttled
        if box is not None:
            self.last_controls = box
            _display()(box)

    def _map_cell(self, plan: Any) -> None:
        """``--over df``: one call per row, a progress display, then a summary table (not N traces)."""
        display = _display()

        from .batch_map import parse_json_answer
        from .client import Client
        from .progress import BatchSummary

        batch = plan.batch
        rows = self._user_ns[batch.over]
        with Client(**plan.client) as client:
            client.key_prompt = self._prompt_for_key if _can_prompt(self.shell) else None
            traces = client.map(
                template=plan.prompt, rows=rows, namespace=self._user_ns, concurrency=batch.concurrency,
                record=batch.record, live=self._live(), update_interval=self.update_interval, **plan.call,
            )
        if plan.out:
            self._user_ns[plan.out] = traces
        if batch.into is not None:
            field = batch.into_field
            values = [t.answer if field is None else _field(parse_json_answer(t.answer), field) for t in traces]
            _fill_column(rows, batch.into, values)
        display(BatchSummary(traces, traces.labels))

    def _live(self) -> bool:
        if self.live_updates is not None:
            return bool(self.live_updates)
        return _in_kernel(self.shell) and os.environ.get("DASHMAGIC_LIVE", "1").strip().lower() not in ("0", "false", "no")

    def _show_dry_run(self, call: Call, client: Any) -> None:
        display = _display()

        from .render.request import render_call

        display(render_call(call, mode=client.mode, recordings=client.recordings), raw=True)


def _runs_tools(plan: CellPlan) -> bool:
    from .tools import has_callables

    return has_callables(plan.call.get("tools"))


def _field(parsed: Any, name: str) -> Any:
    return parsed.get(name) if isinstance(parsed, dict) else None


def _fill_column(rows: Any, column: str, values: list[Any]) -> None:
    """``--into``: a DataFrame gets a column (row order = its own); dict rows get a key."""
    if hasattr(rows, "iterrows") and hasattr(rows, "__setitem__"):
        rows[column] = values
        return
    for row, value in zip(rows, values):
        if isinstance(row, dict):
            row[column] = value


def _set_message(error: DashmagicError, message: str) -> None:
    error.message = message
    error.args = (message,)


def _pointer(error: DashmagicError, trace: Trace) -> str:
    """``DashScope returned HTTP 500 InternalError; details in the trace above (request id X).``"""
    status, code = getattr(error, "status_code", None), getattr(error, "code", None)
    if status or code:
        head = f"DashScope returned HTTP {status}" if status else "DashScope reported an error"
        head += f" {code}" if code else ""
    else:
        head = _first_clause(error.message)
    request_id = trace.request_id or getattr(error, "request_id", None)
    return f"{head}; details in the trace above" + (f" (request id {request_id})." if request_id else ".")


def _first_clause(text: str, limit: int = 120) -> str:
    cut = min((i for i in (text.find(". "), text.find(": "), text.find(" ("), len(text)) if i >= 0))
    head = text[:cut].rstrip(".")
    return head if len(head) <= limit else head[: limit - 1] + "…"


def _tidy_help(magic: Any) -> None:
    """Rebuild ``%%dashscope?`` as plain text: summary, usage, examples, then the flags.

    magic_arguments writes the usage first, as an RST literal block (``::``), which IPython's
    help shows verbatim: the help opened with a stray ``Docstring: ::`` line.
    """
    import argparse
    import inspect

    parser = magic.parser
    usage = parser.format_usage().split("%", 1)[-1].strip()
    saved = parser.description, parser.usage
    parser.description, parser.usage = None, argparse.SUPPRESS
    try:
        flags = parser.format_help().strip()
    finally:
        parser.description, parser.usage = saved
    summary = inspect.cleandoc(saved[0] or "")
    magic.__doc__ = (
        f"{summary}\n\nUsage (the cell form; %dashscope takes the same flags, then the prompt):\n"
        f"  %%{usage}\n\n{flags}\n"
    )


_tidy_help(DashScopeMagics.dashscope)


def _display() -> Callable[..., Any]:
    """IPython's ``display`` (untyped upstream), imported when something is shown."""
    from IPython.display import display

    shown: Callable[..., Any] = display
    return shown


def _warn_unknown(unknown: tuple[str, ...]) -> None:
    if unknown:
        # warn_explicit: the warning names the magic, not dashmagic's install path, and it is
        # shown on every cell that sends an unknown name (no per-location "once" registry).
        warnings.warn_explicit(
            f"Unknown plugin(s) {', '.join(unknown)}: sent anyway. Known plugins: {', '.join(KNOWN_PLUGINS)}.",
            UserWarning, filename="%%dashscope", lineno=1,
        )


def _cell_code(trace: Trace, n: int | None) -> str | None:
    """The code for the next cell: every block joined, or the Nth (1-based); None when there is none."""
    from IPython.core.error import UsageError

    from .local_run import joined_code

    blocks = [block.code for block in trace.code_blocks]
    if not blocks:
        return None
    if n is None:
        return joined_code(blocks)
    if not 1 <= n <= len(blocks):
        raise UsageError(f"%dashscope_code {n}: the trace has {len(blocks)} code block"
                         f"{'s' if len(blocks) != 1 else ''}; give 1 to {len(blocks)}, or no number for all.")
    return joined_code([blocks[n - 1]])


def _warn_invisible(code: str) -> None:
    from .local_run import invisible_warning

    warning = invisible_warning([code])
    if warning is not None:
        warnings.warn_explicit(f"{warning[0].upper()}{warning[1:]} They are kept in the cell exactly.",
                               UserWarning, filename="%dashscope_code", lineno=1)


def _parse_line(magic: Any, line: str) -> Any:
    """Like ``magic_arguments.parse_argstring`` but with shell quoting (IPython's keeps quotes:
    ``--system "Be brief."`` would send the quote characters)."""
    import shlex

    from IPython.core.error import UsageError

    try:
        argv = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"%dashscope: could not split the flags ({exc}); check the quotes.") from None
    _refuse_repeats(magic.parser, argv)
    magic.parser.allow_abbrev = False  # "--plug" must not silently mean --plugins
    try:
        return magic.parser.parse_args(argv)
    except UsageError as exc:
        if "unrecognized arguments:" in str(exc):
            raise UsageError(_unknown_flag_message(magic.parser, argv, str(exc))) from None
        raise


def _unknown_flag_message(parser: Any, argv: list[str], message: str) -> str:
    """"unrecognized arguments: …" → the first unknown flag, with the flag meant or --param."""
    import difflib

    rejected = message.split("unrecognized arguments:", 1)[1].split()
    flags = [t for t in rejected if t.startswith("-") and t.split("=", 1)[0] not in parser._option_string_actions]
    if not flags:
        return f"%dashscope: {message}; see %%dashscope?"
    token = flags[0]
    name = token.split("=", 1)[0]
    # Compared without the dashes, long flags only: "--" alone would make every flag look close.
    known = {o.lstrip("-"): o for o in parser._option_string_actions if o.startswith("--")}
    close = difflib.get_close_matches(name.lstrip("-"), list(known), n=1, cutoff=0.7)
    if close:
        return f"%dashscope: unknown flag {name}; did you mean {known[close[0]]}? (see %%dashscope?)"
    value = token.split("=", 1)[1] if "=" in token else _value_after(argv, token)
    return (f"%dashscope: unknown flag {name}; model parameters go in --param KEY=VALUE, e.g. "
            f"--param {name.lstrip('-')}={value or 'VALUE'} (see %%dashscope?)")


def _value_after(argv: list[str], token: str) -> str:
    index = argv.index(token) if token in argv else -1
    following = argv[index + 1] if 0 <= index < len(argv) - 1 else ""
    return "" if following.startswith("-") and not _is_number(following) else following


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _refuse_repeats(parser: Any, argv: list[str]) -> None:
    """argparse silently keeps the last of a repeated flag; a user who wrote two meant something."""
    from IPython.core.error import UsageError

    seen: dict[str, str] = {}
    for token in argv:
        if token == "--":
            break
        name = token.split("=", 1)[0]
        action = parser._option_string_actions.get(name)
        if action is None or type(action).__name__ in ("_AppendAction", "_StoreFalseAction", "_StoreTrueAction"):
            continue
        if action.dest in seen:
            raise UsageError(
                f"%dashscope: {seen[action.dest]} is given twice (also as {name}); give it once "
                "(only --file and --param repeat)."
            )
        seen[action.dest] = name


def _in_kernel(shell: Any) -> bool:
    return getattr(shell, "kernel", None) is not None


def _can_prompt(shell: Any) -> bool:
    kernel = getattr(shell, "kernel", None)
    if kernel is not None:
        return bool(getattr(kernel, "_allow_stdin", False))
    return bool(sys.stdin and sys.stdin.isatty())


# ``%%dashscope?`` opens with the two generations, above magic_arguments' usage block.
_GENERATIONS = (
    "Today's tools (body parameters): --thinking, --code-interpreter, --search [--sources --citations], --tools NAMES.\n"
    "The older generation (the X-DashScope-Plugin header, gated on new accounts): --plugins NAME,...\n\n"
)
DashScopeMagics.dashscope.__doc__ = _GENERATIONS + (DashScopeMagics.dashscope.__doc__ or "")


# -- extension entry points ---------------------------------------------------------------
_LOADED: dict[int, DashScopeMagics] = {}


def load(ipython: Any) -> None:
    if id(ipython) in _LOADED:
        return
    try:
        magics = DashScopeMagics(shell=ipython)
    except TraitError as exc:
        # A bad `%config DashScopeMagics.x = …` stays in the shell's config and would make every
        # later %load_ext fail: drop our section, say so, and load with defaults.
        ipython.config.pop("DashScopeMagics", None)
        # Magics.__init__ adds itself to shell.configurables before it applies the config, so
        # the instance that failed is still listed: drop it, or %config would reach it later.
        ipython.configurables[:] = [c for c in ipython.configurables if not isinstance(c, DashScopeMagics)]
        warnings.warn(f"dashmagic: ignoring invalid DashScopeMagics config ({exc}); using defaults.", UserWarning)
        magics = DashScopeMagics(shell=ipython)
    ipython.register_magics(magics)
    _LOADED[id(ipython)] = magics


def unload(ipython: Any) -> None:
    """Undo load(): IPython has no unregister, so remove names, registry entry and configurable."""
    magics = _LOADED.pop(id(ipython), None)
    if magics is None:
        return
    manager = ipython.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
