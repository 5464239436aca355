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
from typing import TYPE_CHECKING, Any

from IPython.core import magic_arguments
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from traitlets import Bool, Float, Int, List, Unicode, validate
from traitlets import TraitError

from ._constants import DEFAULT_IMAGE_HOSTS, DEFAULT_MODEL, DEFAULT_SYSTEM, KNOWN_PLUGINS, MODES
from .errors import DashmagicError

if TYPE_CHECKING:
    from .config import Secret
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

    @validate("mode")
    def _check_mode(self, proposal: dict[str, Any]) -> str:
        value = str(proposal["value"]).strip().lower()
        if value and value not in MODES:
            raise TraitError(f"invalid mode {value!r}, expected one of {', '.join(MODES)}")
        return value

    @validate("timeout", "connect_timeout", "update_interval")
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

    # -- the magics -----------------------------------------------------------------------
    @no_var_expand
    @magic_arguments.magic_arguments()
    @magic_arguments.argument("--plugins", "-p", help="Comma-separated plugins: " + ", ".join(KNOWN_PLUGINS) + ".")
    @magic_arguments.argument("--model", "-m", help="Model, e.g. qwen-plus (default from config).")
    @magic_arguments.argument("--system", help="System message for this cell.")
    @magic_arguments.argument("--seed", type=int, help="Sampling seed, for repeatable answers.")
    @magic_arguments.argument("--file", action="append", default=[], metavar="URL", help="A document URL (repeatable), for pdf_extracter.")
    @magic_arguments.argument("--param", action="append", default=[], metavar="KEY=VALUE", help="Extra model parameter (repeatable); JSON values parse, e.g. temperature=0.2.")
    @magic_arguments.argument("--stream", dest="stream", action="store_true", default=None, help="Stream the answer live.")
    @magic_arguments.argument("--no-stream", dest="stream", action="store_false", help="Wait for the whole answer.")
    @magic_arguments.argument("--out", "-o", metavar="NAME", help="Store the Trace in this variable.")
    @magic_arguments.argument("--chat", action="store_true", help="Continue this notebook's conversation (see %%dashscope_reset).")
    @magic_arguments.argument("--dry-run", action="store_true", help="Show the exact request (key masked) and send nothing.")
    @magic_arguments.argument("--timeout", type=float, metavar="SECONDS", help="Read timeout (streams: longest silence between events).")
    @magic_arguments.argument("--no-interpolate", action="store_true", help="Send {{ }} literally.")
    @magic_arguments.argument("--record", metavar="PATH", help="Call the service and append the exchange to PATH.")
    @magic_arguments.argument("--replay", metavar="PATH", help="Answer from a recording ('demo' = bundled examples); no network.")
    # -- today's generation: built-in tools in the body (the seed's --plugins is the older one) --
    @magic_arguments.argument("--thinking", dest="thinking", action="store_true", default=None, help="Show the model's reasoning (enable_thinking); default model qwen3-max.")
    @magic_arguments.argument("--no-thinking", dest="thinking", action="store_false", help="Ask the model not to think.")
    @magic_arguments.argument("--thinking-budget", type=int, metavar="N", help="At most N reasoning tokens (implies --thinking).")
    @magic_arguments.argument("--code-interpreter", action="store_true", help="The built-in code interpreter (needs thinking and streaming); default model qwen3-max.")
    @magic_arguments.argument("--search", action="store_true", help="Web search (enable_search).")
    @magic_arguments.argument("--search-strategy", choices=("turbo", "max", "agent", "agent_max"), help="Search strategy (implies --search).")
    @magic_arguments.argument("--forced-search", action="store_true", help="Always search (implies --search).")
    @magic_arguments.argument("--sources", action="store_true", help="Show the search sources (implies --search).")
    @magic_arguments.argument("--citations", action="store_true", help="Inline [1] citation markers linked to the sources (implies --sources).")
    @magic_arguments.argument("--freshness", type=int, choices=(7, 30, 180, 365), help="Search only pages from the last N days (implies --search).")
    @magic_arguments.argument("--tools", metavar="NAMES", help="Comma-separated variables holding JSON function-tool specs (or lists of them).")
    @magic_arguments.argument("--endpoint", choices=("text", "multimodal"), help="Override the endpoint (default: multimodal for Qwen 3.5/3.6/3.7).")
    @magic_arguments.argument("prompt", nargs="*", help="(line magic) the prompt.")
    @line_cell_magic
    def dashscope(self, line: str, cell: str | None = None) -> None:
        """Ask a DashScope model, with plugins or today's built-in tools, and show the trace.

        Examples
        --------
        ::

            %%dashscope --plugins code_interpreter
            画一个y=x^2的函数图

            %dashscope --plugins calculator 12345*98765是多少

            %%dashscope --plugins calculator --seed 42 --out t
            What is {{ a }} times {{ b }}? Reply as JSON like {"product": 0}.

            %%dashscope --replay demo --plugins calculator
            12345*98765是多少

            %%dashscope --code-interpreter
            123的21次方是多少？

            %%dashscope --search --citations --search-strategy max
            What changed in pandas 3.0?

        ``{{ expr }}`` is replaced by its value in your namespace; single braces stay as typed.
        Everything below the first line is the prompt (a ``#`` line is sent too). ``--replay demo``
        answers from the bundled recordings, offline, with no key.

        The key is read from DASHSCOPE_API_KEY, DASHSCOPE_API_KEY_FILE_PATH or
        ~/.dashscope/api_key (never from a cell). Defaults: ``%config DashScopeMagics``.
        """
        from .client import Client
        from .plan import plan_cell

        args = _parse_line(self.dashscope, line)
        plan = plan_cell(
            args, cell, self._defaults(), self.shell.user_ns, history=self._chat, in_kernel=_in_kernel(self.shell)
        )
        _warn_unknown(plan.unknown_plugins)
        with Client(**plan.client) as client:
            client.key_prompt = self._prompt_for_key if _can_prompt(self.shell) else None
            call = client.build(plan.prompt, stream=plan.stream, **plan.call)
            if plan.dry_run:
                return self._show_dry_run(call, client)
            trace, error = self._show(client, call)
        if plan.out:
            self.shell.user_ns[plan.out] = trace
        if error is not None:
            raise error
        if plan.chat:
            self._chat.extend(trace.turn())
        return None

    @line_magic
    def dashscope_reset(self, line: str = "") -> None:
        """Forget the ``--chat`` conversation of this notebook."""
        turns = sum(1 for m in self._chat if m.get("role") == "user")
        self._chat.clear()
        print(f"dashmagic: chat history cleared ({turns} turn{'s' if turns != 1 else ''} forgotten).")

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

    def _show(self, client: Any, call: Call) -> tuple[Trace, DashmagicError | None]:
        from .display import LiveDisplay
        from .trace import Trace

        view = LiveDisplay(live=self._live(), interval=self.update_interval)
        self.last_display = view
        snapshots = client.execute(call, on_retry=view.show)
        if view.live:  # show at once that something is happening, even before the first byte
            view.show(Trace(request=call.info))
        return view.follow(snapshots)

    def _live(self) -> bool:
        if self.live_updates is not None:
            return bool(self.live_updates)
        return _in_kernel(self.shell) and os.environ.get("DASHMAGIC_LIVE", "1").strip().lower() not in ("0", "false", "no")

    def _show_dry_run(self, call: Call, client: Any) -> None:
        from IPython.display import display

        from .render.request import render_call

        display(render_call(call, mode=client.mode, recordings=client.recordings), raw=True)


def _warn_unknown(unknown: tuple[str, ...]) -> None:
    if unknown:
        # warn_explicit: the warning names the magic, not dashmagic's install path, and it is
        # shown on every cell that sends an unknown name (no per-location "once" registry).
        warnings.warn_explicit(
            f"Unknown plugin(s) {', '.join(unknown)}: sent anyway. Known plugins: {', '.join(KNOWN_PLUGINS)}.",
            UserWarning, filename="%%dashscope", lineno=1,
        )


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
        if "unrecognized arguments" in str(exc) and "--param" not in str(exc):
            raise UsageError(f"{exc} (model parameters go in --param KEY=VALUE, e.g. --param temperature=0.2; "
                             "see %%dashscope?)") from None
        raise


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
