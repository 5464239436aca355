"""Settings read the way the official SDK reads them, but at call time, not import time.

The key is held in a :class:`Secret` whose repr is masked, so it cannot leak through
``%xmode Verbose`` frame locals, dataclass reprs or log lines.
"""

from __future__ import annotations

import ipaddress
import os
import threading
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
    "resolve_api_key",
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
    """``DASHSCOPE_API_KEY``, then ``DASHSCOPE_API_KEY_FILE_PATH``, then ``~/.dashscope/api_key``."""
    env = os.environ if environ is None else environ
    key = (env.get("DASHSCOPE_API_KEY") or "").strip()
    if key:
        return Secret(key)
    candidates: list[Path] = []
    if env.get("DASHSCOPE_API_KEY_FILE_PATH"):
        candidates.append(Path(env["DASHSCOPE_API_KEY_FILE_PATH"]).expanduser())
    candidates.append((home or Path.home()) / ".dashscope" / "api_key")
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if text:
            return Secret(text)
    return None


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


def check_base_url(base_url: str) -> str:
    """Validate a base URL before the key is sent to it; return it without a trailing slash.

    Refuses anything that is not an http(s) URL with a host, and plain http to a
    non-loopback host (the key would cross the network in clear text). Warns once per host
    when the key is about to go to a host that is neither DashScope's nor loopback.
    """
    text = (base_url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"The DashScope base URL {text!r} is not an http(s) URL. Set DASHSCOPE_HTTP_BASE_URL "
            f"(or --base-url) to e.g. {DEFAULT_BASE_URL} or {INTL_BASE_URL}."
        )
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
