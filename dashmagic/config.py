"""Settings read the way the official SDK reads them, but at call time, not import time.

The key is held in a :class:`Secret` whose repr is masked, so it cannot leak through
``%xmode Verbose`` frame locals, dataclass reprs or log lines. It is validated when it is
read: a key that cannot travel in an HTTP header (a second line, a zero-width space from a
copy-paste) is refused here, naming where it came from, before requests or http.client can
quote it in their own errors.

:class:`Timeouts` is the one validated form of every timeout a call uses.
"""

from __future__ import annotations

import ipaddress
import math
import numbers
import os
import threading
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = [
    "DEFAULT_BASE_URL",
    "INTL_BASE_URL",
    "Secret",
    "Settings",
    "Timeouts",
    "check_seconds",
    "MAX_SECONDS",
    "resolve_api_key",
    "validate_key",
    "check_base_url",
    "is_loopback_host",
    "is_dashscope_host",
    "MISSING_KEY_MESSAGE",
]

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
INTL_BASE_URL = "https://dashscope-intl.aliyuncs.com/api/v1"

MISSING_KEY_MESSAGE = (
    "No DashScope API key found. Set it outside the notebook, in one of the three places the "
    "official SDK reads: the DASHSCOPE_API_KEY environment variable (export it before starting "
    "Jupyter), a file named by DASHSCOPE_API_KEY_FILE_PATH, or ~/.dashscope/api_key. Do not paste "
    "the key into a cell: it would be saved in the notebook and its history. Without a key, "
    "'--replay demo' (or DASHMAGIC_MODE=replay) answers from the bundled recordings."
)


class Secret:
    """A string that never shows itself: ``repr``/``str`` print a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def masked(self) -> str:
        v = self._value
        return f"{v[:3]}…{v[-2:]}" if len(v) > 12 else "****"

    def __repr__(self) -> str:
        return f"Secret('{self.masked}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Never pickle the value (it would land in caches or multiprocessing queues).
        raise TypeError("dashmagic.config.Secret cannot be pickled")


def resolve_api_key(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Secret | None:
    """``DASHSCOPE_API_KEY``, then ``DASHSCOPE_API_KEY_FILE_PATH``, then ``~/.dashscope/api_key``.

    The first source that holds a key wins; a key that is not one line of printable ASCII is a
    :class:`ConfigError` naming that source (never falls through to the next one, which would
    silently use a different key).
    """
    env = os.environ if environ is None else environ
    key = _strip_key(env.get("DASHSCOPE_API_KEY") or "")
    if key:
        return validate_key(key, "DASHSCOPE_API_KEY")
    for path, source in _key_files(env, home):
        text = _read_key_file(path, source)
        if text:
            return validate_key(text, source)
    return None


#: A key file holds one key (~35 characters); anything this big is the wrong file.
_MAX_KEY_FILE_BYTES = 4096
# Only ASCII whitespace is trimmed: an NBSP or a zero-width space is a copy-paste accident the
# user should hear about (the server would answer 401 with no hint why).
_ASCII_SPACE = " \t\r\n\f\v"
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def _strip_key(value: str) -> str:
    return value.strip(_ASCII_SPACE)


def _key_files(env: Mapping[str, str], home: Path | None) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    named = env.get("DASHSCOPE_API_KEY_FILE_PATH")
    if named:
        path = Path(named).expanduser()
        files.append((path, f"the file {_shown(str(path))} (named by DASHSCOPE_API_KEY_FILE_PATH)"))
    try:
        default = (home or Path.home()) / ".dashscope" / "api_key"
    except RuntimeError:  # no HOME and no passwd entry: there is no default file
        return files
    files.append((default, f"the file {_shown(str(default))}"))
    return files


def _read_key_file(path: Path, source: str) -> str:
    """The file's text, stripped; ``""`` when it does not exist or cannot be read (as the SDK)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError:
        return ""
    except ValueError:  # e.g. a NUL byte in DASHSCOPE_API_KEY_FILE_PATH
        raise ConfigError(f"DASHSCOPE_API_KEY_FILE_PATH is not a usable file name ({source}).") from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise ConfigError(
            f"The DashScope API key in {source} is more than {_MAX_KEY_FILE_BYTES:,} bytes: a key file "
            "holds one key on one line. Point DASHSCOPE_API_KEY_FILE_PATH at the right file."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"The DashScope API key in {source} is not UTF-8 text (byte {exc.start + 1} cannot be "
            "decoded). Write the key again as one line of plain ASCII."
        ) from None
    return _strip_key(text)


def validate_key(value: str, source: str) -> Secret:
    """Check a key read from ``source`` (e.g. ``"DASHSCOPE_API_KEY"``) and wrap it in a Secret.

    Surrounding ASCII whitespace (a trailing newline) is trimmed. Anything else that is not
    printable ASCII is refused: it cannot go in an ``Authorization`` header, and requests'
    own error for it would quote the whole header, key included. The message names the source
    and the offending character, never the key.
    """
    if not isinstance(value, str):
        raise ConfigError(f"The DashScope API key in {source} must be a string, not {type(value).__name__}.")
    key = _strip_key(value)
    if not key:
        raise ConfigError(f"The DashScope API key in {source} is empty.")
    for index, char in enumerate(key):
        if not "\x21" <= char <= "\x7e":
            raise ConfigError(
                f"The DashScope API key in {source} contains {_describe_char(char)} at character "
                f"{index + 1} of {len(key)}. A key is one line of printable ASCII: copy it again "
                "from the DashScope console, without spaces or line breaks."
            )
    return Secret(key)


def _describe_char(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char in _LINE_BREAKS or char == "\n":
        return f"a line break ({code})"
    if char == " ":
        return f"a space ({code})"
    if char == "\t":
        return f"a tab ({code})"
    category = unicodedata.category(char)
    if category == "Cs":
        return f"{code}, a lone surrogate (the text was decoded from bytes that are not UTF-8)"
    if category == "Cc":
        return f"a control character ({code})"
    name = unicodedata.name(char, "")
    return f"{code} {name}" if name else f"{code} (an unassigned or private character)"


def _shown(text: str, limit: int = 200) -> str:
    """``text`` quoted as one bounded, printable line for a message (repr escapes controls)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_dashscope_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "aliyuncs.com" or host.endswith(".aliyuncs.com")


_warned_hosts: set[str] = set()
_warn_lock = threading.Lock()


def check_base_url(base_url: str | None) -> str:
    """Validate a base URL before the key is sent to it; return it without a trailing slash.

    Refuses anything that is not an http(s) URL with a host, and plain http to a
    non-loopback host (the key would cross the network in clear text). Warns once per host
    when the key is about to go to a host that is neither DashScope's nor loopback.
    """
    if base_url is not None and not isinstance(base_url, str):
        raise ConfigError(f"The DashScope base URL must be a string, not {type(base_url).__name__}.")
    text = (base_url or "").strip()
    fix = f"Set DASHSCOPE_HTTP_BASE_URL (or --base-url) to e.g. {DEFAULT_BASE_URL} or {INTL_BASE_URL}."
    if " " in text or not text.isprintable():
        # urlsplit silently drops tabs and newlines (WHATWG), but the text would still carry them
        raise ConfigError(
            f"The DashScope base URL {_shown(text)} is not a valid URL "
            f"(it contains a space or a control character). {fix}"
        )
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - only for its ValueError on a port that is not a number 0-65535
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range 0-65535"
        raise ConfigError(f"The DashScope base URL {_shown(text)} is not a valid URL ({exc}). {fix}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"The DashScope base URL {_shown(text)} is not an http(s) URL. {fix}")
    if parts.username or parts.password:
        raise ConfigError("The DashScope base URL must not contain a user name or password.")
    host = parts.hostname
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError(
            f"Refusing to send the API key over plain http to {host}. Use https "
            f"(e.g. {DEFAULT_BASE_URL}); plain http is allowed only for loopback test servers."
        )
    if not is_dashscope_host(host) and not is_loopback_host(host):
        with _warn_lock:
            first = host not in _warned_hosts
            _warned_hosts.add(host)
        if first:
            warnings.warn(
                f"dashmagic will send your DashScope API key to {host}, which is not a DashScope "
                f"host (*.aliyuncs.com). Unset DASHSCOPE_HTTP_BASE_URL unless you trust this host.",
                UserWarning,
                stacklevel=3,
            )
    return text.rstrip("/")


# -- timeouts -------------------------------------------------------------------------------------
#: About 11.6 days. Anything longer is a typo (or ``1e308``), and values near float's limit
#: overflow inside the socket layer with errors that name neither the option nor the value.
MAX_SECONDS = 1_000_000.0
DEFAULT_CONNECT = 10.0
DEFAULT_READ = 180.0
DEFAULT_TOTAL = 600.0


def check_seconds(value: object, name: str) -> float:
    """``value`` as a float number of seconds in (0, MAX_SECONDS], or a one-line ConfigError.

    ``name`` is what the user typed (``"--timeout"``, ``"DashScopeMagics.timeout"``), so the
    message points at the right place. Refuses bools, strings, 0, negatives, nan and inf.
    """
    seconds = math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except (OverflowError, ValueError):  # an int or Fraction too big for a float
            seconds = math.inf
    if not 0.0 < seconds <= MAX_SECONDS:  # False for nan
        raise ConfigError(
            f"{name} must be a positive number of seconds, at most {MAX_SECONDS:,.0f} "
            f"(about 11 days), got {_shown_value(value)}."
        )
    return seconds


def _shown_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"  # nan, inf, 1e+308, 0 (not 0.0: it reads as the flag was typed)
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a repr that fails (a huge int) must not hide the real error
        text = "a value too large to print"
    text = text if len(text) <= 60 else text[:60] + "…"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return text
    return f"{text} (type {type(value).__name__})"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every time limit of one call, validated once.

    ``connect``: to open the connection. ``read``: the longest silence allowed, between two
    events of a stream or while waiting for a whole reply. ``total``: the deadline for the
    whole call, retries and their waits included.
    """

    connect: float = DEFAULT_CONNECT
    read: float = DEFAULT_READ
    total: float = DEFAULT_TOTAL

    def __post_init__(self) -> None:
        for field in ("connect", "read", "total"):
            # frozen: a validated float replaces whatever number was given (int, numpy float)
            object.__setattr__(self, field, check_seconds(getattr(self, field), f"the {field} timeout"))

    @classmethod
    def of(
        cls,
        timeout: object = None,
        *,
        connect: object = DEFAULT_CONNECT,
        total: object = None,
        name: str = "timeout",
    ) -> Timeouts:
        """Normalise a user's ``timeout``: ``None``, seconds, or a ``(connect, read)`` pair.

        One number is the read timeout and caps the connect timeout too (``timeout=2`` means
        nothing waits longer than 2 s), as requests does. ``total`` defaults to
        ``DEFAULT_TOTAL`` or, when the limits given are longer, connect + read.
        """
        if isinstance(timeout, Timeouts):
            return timeout
        default_connect = check_seconds(connect, "the connect timeout")
        if timeout is None:
            pair = (default_connect, DEFAULT_READ)
        elif isinstance(timeout, (tuple, list)):
            pair = _pair(timeout, name)
        else:
            read = check_seconds(timeout, name)
            pair = (min(read, default_connect), read)
        if total is None:
            deadline = min(max(DEFAULT_TOTAL, pair[0] + pair[1]), MAX_SECONDS)
        else:
            deadline = check_seconds(total, "the total timeout")
        return cls(connect=pair[0], read=pair[1], total=deadline)

    def for_requests(self) -> tuple[float, float]:
        """The ``(connect, read)`` pair requests' ``timeout=`` takes."""
        return (self.connect, self.read)


def _pair(timeout: tuple[object, ...] | list[object], name: str) -> tuple[float, float]:
    if len(timeout) != 2:
        raise ConfigError(
            f"{name} must be seconds or a (connect, read) pair of seconds, got a "
            f"{type(timeout).__name__} of {len(timeout)}."
        )
    return (check_seconds(timeout[0], f"{name}[0] (connect)"), check_seconds(timeout[1], f"{name}[1] (read)"))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything read from the environment for one call."""

    base_url: str = DEFAULT_BASE_URL
    api_key: Secret | None = None
    mode: str = "live"
    recordings: str | None = None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, home: Path | None = None, *, key: bool = True
    ) -> Settings:
        """Read the settings now. ``key=False`` skips the key lookup (it may read files)."""
        env = os.environ if environ is None else environ
        return cls(
            base_url=(env.get("DASHSCOPE_HTTP_BASE_URL") or DEFAULT_BASE_URL).strip(),
            api_key=resolve_api_key(env, home) if key else None,
            mode=(env.get("DASHMAGIC_MODE") or "live").strip().lower(),
            recordings=(env.get("DASHMAGIC_RECORDINGS") or None),
        )

    def require_key(self) -> Secret:
        if self.api_key is None:
            raise ConfigError(MISSING_KEY_MESSAGE)
        return self.api_key
