"""dashmagic.images: fetching plugin figures once, safely. Real loopback sockets only.

The server below is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1:0 that serves a dict of
path → :class:`Route` and records every request's headers, so tests can assert both what the
fetcher returned and what (if anything) reached the wire.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, cast

import pytest
import requests

from dashmagic import images
from dashmagic.errors import ConfigError
from dashmagic.events import TraceBuilder
from dashmagic.images import (
    DEFAULT_IMAGE_HOSTS,
    DEFAULT_MAX_TOTAL_BYTES,
    FetchedImage,
    ImageCache,
    ImagePolicy,
    ImageRefused,
    check_url,
    display_url,
    fetch_image,
    sniff_mime,
)
from dashmagic.render._html_kit import render_figure
from dashmagic.testing import load_exchanges
from dashmagic.trace import Figure, RequestInfo

ROOT = Path(__file__).resolve().parent.parent

SIGNED_QUERY = "OSSAccessKeyId=LTAI5tCanary&Expires=1700000000&Signature=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
#: The bucket DashScope's text_to_image writes to: on the default allow-list.
T2I_HOST = "dashscope-result-bj.oss-cn-beijing.aliyuncs.com"


def off_list(host: str) -> str:
    """The reason shown for a figure whose host is not on the allow-list."""
    return (
        f"not fetched automatically: host {host} is not one DashScope uses for plugin output;"
        " add it to the image_hosts allow-list to fetch it"
    )


# --------------------------------------------------------------------------------------------
# Image bytes
# --------------------------------------------------------------------------------------------


def make_png(width: int = 2, height: int = 2) -> bytes:
    """A small, valid RGB PNG (signature, IHDR, IDAT, IEND with CRCs)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = make_png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
GIF87 = b"GIF87a" + GIF[6:]
WEBP = b"RIFF" + struct.pack("<I", 26) + b"WEBPVP8L" + struct.pack("<I", 14) + b"\x2f\x00\x00\x00" + b"\x00" * 10
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
OSS_EXPIRED = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>'


# --------------------------------------------------------------------------------------------
# The loopback server
# --------------------------------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: bytes → sent with Content-Length (unless ``length=False``); a list → chunked encoding.
    body: bytes | list[bytes] = b""
    length: bool = True
    delay: float = 0.0  # before the status line
    hold: float = 0.0  # after the headers, before the body
    chunk_delay: float = 0.0  # between chunks
    drip: float = 0.0  # a plain body sent one byte at a time, this many seconds apart


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class ImageServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        self.port = self._httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> ImageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.seen.clear()

    def add(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.origin + path

    def record(self, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.seen.append(Seen(path, headers))

    def hits(self, path: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.path.split("?", 1)[0] == path)

    def trusted_policy(self, **kwargs: object) -> ImagePolicy:
        kwargs.setdefault("timeout", 3.0)
        return ImagePolicy.for_base_url(self.origin + "/api/v1", **kwargs)  # type: ignore[arg-type]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up early (the fetcher aborting a body) are expected here.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        owner: ImageServer = self.server.owner  # type: ignore[attr-defined]
        owner.record(self.path, {k.lower(): v for k, v in self.headers.items()})
        route = owner.routes.get(self.path.split("?", 1)[0]) or Route(404, {"Content-Type": "application/xml"}, OSS_EXPIRED)
        try:
            self._answer(route)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _answer(self, route: Route) -> None:
        time.sleep(route.delay)
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        chunked = isinstance(route.body, list)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif route.length and "Content-Length" not in route.headers:
            self.send_header("Content-Length", str(len(route.body)))
        elif not route.length:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()
        time.sleep(route.hold)
        if chunked:
            for piece in cast("list[bytes]", route.body):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
                time.sleep(route.chunk_delay)
            self.wfile.write(b"0\r\n\r\n")
        elif route.drip:
            for i in range(len(route.body)):
                self.wfile.write(route.body[i : i + 1])  # type: ignore[index]
                self.wfile.flush()
                time.sleep(route.drip)
        else:
            self.wfile.write(route.body)  # type: ignore[arg-type]
        self.wfile.flush()


@pytest.fixture(scope="module")
def _module_server() -> Iterator[ImageServer]:
    srv = ImageServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(_module_server: ImageServer) -> ImageServer:
    """One server per module (fast), with routes and the request log cleared for each test."""
    _module_server.reset()
    return _module_server


@pytest.fixture
def dns_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record name lookups while still doing them for real."""
    calls: list[str] = []
    real = images._resolve

    def recording(host: str, port: int) -> list[str]:
        calls.append(host)
        return real(host, port)

    monkeypatch.setattr(images, "_resolve", recording)
    return calls


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def assert_no_secret(result: FetchedImage) -> None:
    """Nothing the user sees or logs may carry the signature."""
    for text in (result.error or "", result.display_url, repr(result)):
        assert "Signature" not in text and "OSSAccessKeyId" not in text, text


# --------------------------------------------------------------------------------------------
# Success
# --------------------------------------------------------------------------------------------


def test_png_fetched_once_from_trusted_loopback_over_http(server: ImageServer) -> None:
    url = server.add("/oss/fig-001.png", Route(headers={"Content-Type": "image/png"}, body=PNG)) + "?" + SIGNED_QUERY

    result = fetch_image(url, server.trusted_policy())

    assert result.ok, result.error
    assert (result.data, result.mime, result.error) == (PNG, "image/png", None)
    assert result.url == url
    assert result.display_url == server.origin + "/oss/fig-001.png"
    assert_no_secret(result)
    assert server.hits("/oss/fig-001.png") == 1
    sent = server.seen[0]
    assert sent.path.endswith("?" + SIGNED_QUERY)  # the signed query reaches the server untouched
    assert sent.headers["accept"] == "image/png, image/jpeg, image/gif, image/webp"
    assert sent.headers["user-agent"] == "dashmagic-image-fetch"


@pytest.mark.parametrize(
    ("body", "content_type", "mime"),
    [
        (PNG, "image/png", "image/png"),
        (JPEG, "image/jpeg", "image/jpeg"),
        (GIF, "image/gif", "image/gif"),
        (GIF87, "image/gif", "image/gif"),
        (WEBP, "image/webp", "image/webp"),
        (PNG, None, "image/png"),  # no Content-Type: allowed because the magic bytes match
        (PNG, "image/jpeg; charset=binary", "image/png"),  # the MIME type comes from the bytes
    ],
    ids=["png", "jpeg", "gif89a", "gif87a", "webp", "png-no-content-type", "png-labelled-jpeg"],
)
def test_magic_bytes_decide_the_mime_type(server: ImageServer, body: bytes, content_type: str | None, mime: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    url = server.add("/img", Route(headers=headers, body=body))

    result = fetch_image(url, server.trusted_policy())

    assert result.ok, result.error
    assert (result.mime, result.data) == (mime, body)


def test_sniff_mime_rejects_everything_else() -> None:
    for data in (b"", SVG, HTML, OSS_EXPIRED, b"RIFF\x00\x00\x00\x00WAVE", b"\x89PNG", b"GIF88a"):
        assert sniff_mime(data) is None


# --------------------------------------------------------------------------------------------
# URL rules: refused before any DNS lookup or connection
# --------------------------------------------------------------------------------------------


def test_host_off_the_allow_list_is_refused_without_connecting(server: ImageServer, dns_calls: list[str]) -> None:
    url = server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))

    result = fetch_image(url, ImagePolicy())  # default allow-list, nothing trusted

    assert result.error == off_list("127.0.0.1")
    assert result.data is None and not result.ok
    assert server.seen == [] and dns_calls == []


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/x.png",
        "https://aliyuncs.com.evil.example/x.png",
        "https://localhost.aliyuncs.com.evil.example/x.png",
        "https://evilaliyuncs.com/x.png",
        "https://aliyuncs.com/x.png",  # the bare domain is not a subdomain
        "https://x.aliyuncs.com.:443.evil.example/x.png",
        "https://x.aliyuncs.com%2eevil.example/x.png",
        "https://x.aliyuncs.com\\.evil.example/x.png",
        "https://[::1]/x.png",
        "https://10.0.0.1/x.png",
    ],
)
def test_suffix_tricks_are_refused(url: str, dns_calls: list[str]) -> None:
    # A suffix entry, the loosest kind: the tricks must not get past it either.
    result = fetch_image(url + "?" + SIGNED_QUERY, ImagePolicy(hosts=(".aliyuncs.com",)))

    assert not result.ok
    assert result.error is not None
    assert "allow-list" in result.error or result.error in ("the URL's host name is not valid", "malformed URL")
    assert dns_calls == []
    assert_no_secret(result)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@x.aliyuncs.com/a.png",
        "https://user@x.aliyuncs.com/a.png",
        "https://x.aliyuncs.com@evil.example/a.png",
        "https://evil.example\\@x.aliyuncs.com/a.png",
        "http://u:p@127.0.0.1:{port}/img.png",  # even on the trusted host
    ],
)
def test_userinfo_is_refused(server: ImageServer, url: str, dns_calls: list[str]) -> None:
    server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))

    result = fetch_image(url.format(port=server.port), server.trusted_policy())

    assert result.error == "URLs with a user name or password are not fetched"
    assert server.seen == [] and dns_calls == []
    assert "pw" not in result.display_url and "u:p" not in result.display_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("file:///etc/hostname#x.png", "file:"),
        ("ftp://x.aliyuncs.com/a.png", "ftp:"),
        ("javascript:alert(1)", "javascript:"),
        ("data:image/png;base64,iVBORw0KGgo=", "data:"),
        ("gopher://x.aliyuncs.com:70/_GET", "gopher:"),
        ("//x.aliyuncs.com/a.png", "a URL without a scheme"),
        ("/relative/a.png", "a URL without a scheme"),
    ],
)
def test_only_http_and_https_are_fetched(url: str, shown: str, dns_calls: list[str]) -> None:
    result = fetch_image(url, ImagePolicy())

    assert result.error == f"only http(s) figure URLs are fetched, not {shown}"
    assert dns_calls == []


# --------------------------------------------------------------------------------------------
# The default allow-list: the buckets DashScope itself writes plugin output to
# --------------------------------------------------------------------------------------------


def _recorded_figure_urls() -> list[str]:
    """Every figure URL the project has seen: the figures fetched into each recording, and the
    figures of the vendor's documented exchanges (seed/plugin-call-examples.txt) as traced."""
    urls: list[str] = []
    for path in [ROOT / "dashmagic" / "demo" / "seed.jsonl", *sorted((ROOT / "notebooks" / "recordings").glob("*.jsonl"))]:
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line) if line.strip() else {}
            if record.get("type") == "figure":
                urls.append(record["url"])
    for exchange in load_exchanges():
        builder = TraceBuilder(RequestInfo(model="qwen-plus", plugins=tuple(exchange.plugins), prompt="p"))
        builder.feed(exchange.response)
        urls += [figure.url for figure in builder.finish().figures]
    return urls


def test_default_hosts_are_the_output_buckets_seen_in_every_recording() -> None:
    urls = _recorded_figure_urls()
    hosts = {check_url(url, ImagePolicy()).split("/")[2] for url in urls}  # all pass the default

    assert len(urls) >= 10
    assert hosts == set(DEFAULT_IMAGE_HOSTS) == {
        "dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com",  # code_interpreter
        "dashscope-result-bj.oss-cn-beijing.aliyuncs.com",  # text_to_image
    }
    assert ImagePolicy().hosts == ImagePolicy.for_base_url("https://dashscope.aliyuncs.com/api/v1").hosts == DEFAULT_IMAGE_HOSTS


@pytest.mark.parametrize(
    "host",
    [
        "attacker-bucket.oss-cn-beijing.aliyuncs.com",  # any customer can create a bucket here
        "attacker.oss-accelerate.aliyuncs.com",
        "dashscope.oss-cn-beijing.aliyuncs.com",  # the OCR *input* sample, not plugin output
        "qianwen-res.oss-cn-beijing.aliyuncs.com",  # the pdf_extracter *input*
        "x.dashscope-result-bj.oss-cn-beijing.aliyuncs.com",  # exact entries admit no subdomain
        "dashscope-result-bj.oss-cn-beijing.aliyuncs.com.evil.example",
    ],
)
def test_another_bucket_on_aliyuncs_is_shown_not_fetched(host: str, dns_calls: list[str]) -> None:
    url = f"https://{host}/pixel.png?d=%E7%94%A8%E6%88%B7%E7%9A%84%E8%81%8A%E5%A4%A9&{SIGNED_QUERY}"

    result = fetch_image(url, ImagePolicy.for_base_url("https://dashscope.aliyuncs.com/api/v1"))
    html = render_figure(Figure(url=url, alt="fig-001"), {url: result})

    assert result.error == off_list(host)
    assert dns_calls == []  # refused before any lookup, so before any connection
    assert "<img" not in html and f"https://{host}/pixel.png" in html
    assert "not fetched automatically" in html and "image_hosts" in html
    assert "d=" not in html and "Signature" not in html  # the exfiltrating query is never shown
    assert_no_secret(result)


def test_a_configured_suffix_still_admits_other_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []
    monkeypatch.setattr(images, "_resolve", lambda host, port: lookups.append(host) or ["10.0.0.1"])
    policy = ImagePolicy(hosts=(*DEFAULT_IMAGE_HOSTS, ".oss-cn-hangzhou.aliyuncs.com"))

    result = fetch_image("https://my-bucket.oss-cn-hangzhou.aliyuncs.com/a.png", policy)

    assert lookups == ["my-bucket.oss-cn-hangzhou.aliyuncs.com"]  # got past the allow-list
    assert result.error == "host my-bucket.oss-cn-hangzhou.aliyuncs.com resolves to a non-public address (10.0.0.1)"


# --------------------------------------------------------------------------------------------
# Addresses: allow-listed but untrusted hosts must resolve to public addresses
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hosts", "url"),
    [
        (("localhost",), "https://localhost:{port}/img.png"),
        (("localhost",), "http://localhost:{port}/img.png"),
        ((".localhost", "localhost"), "https://LocalHost.:{port}/img.png"),
        (("127.0.0.1",), "https://127.0.0.1:{port}/img.png"),
    ],
)
def test_loopback_is_refused_for_an_untrusted_allowed_host(server: ImageServer, hosts: tuple[str, ...], url: str) -> None:
    server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))

    result = fetch_image(url.format(port=server.port), ImagePolicy(hosts=hosts, timeout=2))

    assert result.error is not None
    assert "resolves to a non-public address (127.0.0.1)" in result.error
    assert server.seen == []


def test_metadata_address_is_refused_even_when_allow_listed() -> None:
    result = fetch_image("http://169.254.169.254/latest/meta-data/iam/", ImagePolicy(hosts=("169.254.169.254",)))

    assert result.error == "host 169.254.169.254 resolves to a non-public address (169.254.169.254)"


@pytest.mark.parametrize(
    "addresses",
    [
        ["93.184.216.34", "10.0.0.7"],  # one private address among public ones is enough
        ["192.168.1.10"],
        ["172.16.0.1"],
        ["100.64.0.1"],  # carrier-grade NAT
        ["::ffff:127.0.0.1"],  # IPv4-mapped loopback
        ["fe80::1%eth0"],
        ["::1"],
        ["0.0.0.0"],
        # IPv6 forms that carry an IPv4 address are judged by it (is_global calls them global):
        ["64:ff9b::7f00:1"],  # NAT64 of 127.0.0.1
        ["64:ff9b::a9fe:a9fe"],  # NAT64 of the metadata address 169.254.169.254
        ["64:ff9b:1::7f00:1"],  # local-use NAT64 (RFC 8215): refused whatever it carries
        ["64:ff9b:1::5db8:d822"],
        ["2002:7f00:1::1"],  # 6to4 of 127.0.0.1
        ["2002:a00:1::1"],  # 6to4 of 10.0.0.1
        ["::7f00:1"],  # IPv4-compatible 127.0.0.1
        ["::ffff:0:7f00:1"],  # SIIT-translated 127.0.0.1
        ["::ffff:10.0.0.1"],
        ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],  # Teredo
        ["192.0.0.8"],  # IETF protocol assignments, 192.0.0.0/24
        ["192.0.0.9"],
        ["224.0.0.251"],  # multicast
        ["ff0e::1"],
        ["fec0::1"],  # deprecated site-local
    ],
)
def test_any_non_global_address_refuses_the_host(monkeypatch: pytest.MonkeyPatch, addresses: list[str]) -> None:
    monkeypatch.setattr(images, "_resolve", lambda host, port: addresses)

    result = fetch_image(f"https://{T2I_HOST}/a.png?" + SIGNED_QUERY, ImagePolicy())

    assert result.error is not None
    assert result.error.startswith(f"host {T2I_HOST} resolves to a non-public address")
    assert_no_secret(result)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "2606:2800:220:1:248:1893:25c8:1946",
        "64:ff9b::5db8:d822",  # NAT64 of a public address
        "2002:5db8:d822::1",  # 6to4 of a public address
        "::ffff:93.184.216.34",
    ],
)
def test_embedded_public_addresses_stay_allowed(address: str) -> None:
    assert images._is_global(address)


def test_unresolvable_host_is_an_error_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(images, "_resolve", fail)

    result = fetch_image(f"https://{T2I_HOST}/a.png?" + SIGNED_QUERY, ImagePolicy())

    assert result.error == f"could not resolve host {T2I_HOST}"


# --------------------------------------------------------------------------------------------
# https only, except the trusted host: plain http on an allow-listed host is upgraded
# --------------------------------------------------------------------------------------------


def test_vendor_http_oss_url_is_upgraded_to_https() -> None:
    vendor = (
        "http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/44/20231121/ps_a74ad35c/"
        "43241cb2-bba0-9323-abee-55e7d91cf44e.png?Expires=1700000000&OSSAccessKeyId=LTAI&Signature=a%2Bb%2F%3D"
    )

    assert check_url(vendor, ImagePolicy()) == "https://" + vendor[len("http://") :]
    suffix = ImagePolicy(hosts=(".aliyuncs.com",))
    assert check_url("http://X.OSS.aliyuncs.com:80/a.png#frag", suffix) == "https://x.oss.aliyuncs.com/a.png"
    assert check_url("https://x.aliyuncs.com", suffix) == "https://x.aliyuncs.com/"


def test_trusted_host_keeps_plain_http() -> None:
    policy = ImagePolicy.for_base_url("http://127.0.0.1:8123/api/v1")

    assert check_url("http://127.0.0.1:8123/oss/a.png?x=1", policy) == "http://127.0.0.1:8123/oss/a.png?x=1"
    # Same address, another port: not trusted, not allow-listed.
    with pytest.raises(ImageRefused, match="not one DashScope uses for plugin output"):
        check_url("http://127.0.0.1:8124/oss/a.png", policy)


@pytest.fixture
def raw_listener() -> Iterator[tuple[int, list[bytes]]]:
    """A bare TCP listener that keeps the first bytes a client sends, then hangs up."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(5)
    received: list[bytes] = []

    def accept_one() -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(3)
            try:
                received.append(conn.recv(64))
            except OSError:
                pass

    thread = threading.Thread(target=accept_one, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], received
    finally:
        sock.close()
        thread.join(timeout=5)


def test_upgraded_http_url_goes_out_as_tls(monkeypatch: pytest.MonkeyPatch, raw_listener: tuple[int, list[bytes]]) -> None:
    port, received = raw_listener
    # Pretend "localhost" is public so the fetch proceeds; the connection still goes to loopback.
    monkeypatch.setattr(images, "_resolve", lambda host, p: ["93.184.216.34"])

    result = fetch_image(f"http://localhost:{port}/a.png?{SIGNED_QUERY}", ImagePolicy(hosts=("localhost",), timeout=3))

    assert received and received[0][:1] == b"\x16", received  # a TLS handshake record, not "GET /"
    assert not result.ok
    assert result.error is not None and "localhost" in result.error
    assert result.display_url == f"http://localhost:{port}/a.png"  # what the model wrote, minus the query
    assert_no_secret(result)


class _CannedAdapter(requests.adapters.BaseAdapter):
    """A replay-style adapter: answers from memory, records what it was asked, opens no socket."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.sent: list[requests.PreparedRequest] = []

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.sent.append(request)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "image/png"
        response.raw = io.BytesIO(self.body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


@pytest.mark.parametrize("offline", [True, False])
def test_offline_policy_skips_name_resolution(offline: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []

    def unresolvable(host: str, port: int) -> list[str]:
        lookups.append(host)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(images, "_resolve", unresolvable)
    adapter = _CannedAdapter(PNG)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    policy = ImagePolicy.for_base_url("https://dashscope.aliyuncs.com/api/v1", offline=offline)
    url = "http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/a.png?" + SIGNED_QUERY

    result = fetch_image(url, policy, session=session)

    if offline:
        assert result.ok, result.error
        assert lookups == []
        assert [r.url for r in adapter.sent] == ["https://" + url[len("http://") :]]  # upgraded, query intact
    else:
        assert result.error == "could not resolve host dashscope-result-bj.oss-cn-beijing.aliyuncs.com"
        assert adapter.sent == []


def test_offline_policy_keeps_the_other_rules() -> None:
    policy = ImagePolicy(offline=True)

    assert fetch_image("https://evil.example/a.png", policy).error == off_list("evil.example")


# --------------------------------------------------------------------------------------------
# Redirects: followed by hand, every hop re-checked
# --------------------------------------------------------------------------------------------


def test_redirect_to_an_allowed_path_is_followed(server: ImageServer) -> None:
    server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))
    first = server.add("/r1", Route(302, {"Location": "/r2?" + SIGNED_QUERY}))
    server.add("/r2", Route(301, {"Location": server.origin + "/img.png#frag"}))

    result = fetch_image(first, server.trusted_policy())

    assert result.ok, result.error
    assert result.data == PNG
    assert [s.path.split("?")[0] for s in server.seen] == ["/r1", "/r2", "/img.png"]
    assert result.display_url == server.origin + "/r1"


@pytest.mark.parametrize(
    ("location", "extra_hosts", "error"),
    [
        ("https://evil.example/x.png", (), "redirect to a host not on the allow-list (evil.example)"),
        ("http://169.254.169.254/latest/meta-data/", (), "redirect to a host not on the allow-list (169.254.169.254)"),
        (
            "http://169.254.169.254/latest/meta-data/",
            ("169.254.169.254",),
            "host 169.254.169.254 resolves to a non-public address (169.254.169.254)",
        ),
        ("http://127.0.0.1:1/x.png", (), "redirect to a host not on the allow-list (127.0.0.1)"),
        ("https://aliyuncs.com.evil.example/x.png", (), "redirect to a host not on the allow-list (aliyuncs.com.evil.example)"),
        ("file:///etc/passwd", (), "only http(s) figure URLs are fetched, not file:"),
        ("https://u:p@x.aliyuncs.com/x.png", (), "URLs with a user name or password are not fetched"),
    ],
)
def test_redirect_off_the_rules_is_refused(
    server: ImageServer, location: str, extra_hosts: tuple[str, ...], error: str
) -> None:
    url = server.add("/r", Route(302, {"Location": location}))

    result = fetch_image(url, server.trusted_policy(hosts=(".aliyuncs.com", *extra_hosts)))

    assert result.error == error
    assert server.hits("/r") == 1


def test_redirect_from_untrusted_host_into_trusted_host_is_refused() -> None:
    policy = ImagePolicy.for_base_url("http://127.0.0.1:8123/api/v1")

    with pytest.raises(ImageRefused, match="to the configured DashScope host is not followed"):
        check_url("http://127.0.0.1:8123/api/v1/services", policy, redirected_from=f"https://{T2I_HOST}/a.png")
    # Trusted → trusted is fine.
    same = "http://127.0.0.1:8123/oss/b.png"
    assert check_url(same, policy, redirected_from="http://127.0.0.1:8123/oss/a.png") == same


def test_redirect_loop_is_capped(server: ImageServer) -> None:
    url = server.add("/loop", Route(302, {"Location": "/loop"}))

    result = fetch_image(url, server.trusted_policy(max_redirects=3))

    assert result.error == "more than 3 redirects"
    assert server.hits("/loop") == 4  # the first request and three followed redirects


def test_redirects_can_be_disabled(server: ImageServer) -> None:
    server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))
    url = server.add("/r", Route(307, {"Location": "/img.png"}))

    result = fetch_image(url, server.trusted_policy(max_redirects=0))

    assert result.error == "more than 0 redirects"
    assert server.hits("/img.png") == 0


def test_redirect_without_location(server: ImageServer) -> None:
    url = server.add("/r", Route(302, {}))

    assert fetch_image(url, server.trusted_policy()).error == "server answered HTTP 302 without a Location"


def test_redirect_body_is_never_read(server: ImageServer) -> None:
    """``Session.send(allow_redirects=False)`` would read this whole body; the fetcher must not."""
    server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))
    endless = [b"x" * 65536] * 40
    url = server.add("/r", Route(302, {"Location": "/img.png"}, body=endless, chunk_delay=0.05))

    started = time.monotonic()
    result = fetch_image(url, server.trusted_policy(max_bytes=1000))

    assert result.ok, result.error
    assert time.monotonic() - started < 1.0


# --------------------------------------------------------------------------------------------
# Size, content type, status, time
# --------------------------------------------------------------------------------------------


def test_content_length_over_the_cap_is_refused_before_reading(server: ImageServer) -> None:
    # The server announces 100 MB, then sends nothing for 3 s: reading would hit the timeout.
    url = server.add(
        "/big.png",
        Route(headers={"Content-Type": "image/png", "Content-Length": str(100 * 1024 * 1024)}, length=False, hold=3),
    )

    started = time.monotonic()
    result = fetch_image(url, server.trusted_policy(timeout=2.0))

    assert result.error == "exceeds the 5 MB limit"
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("framing", ["chunked", "close-delimited"])
def test_body_over_the_cap_is_refused_while_reading(server: ImageServer, framing: str) -> None:
    pieces = [PNG[:8] + b"\x00" * 292] + [b"\x00" * 300] * 9  # 3000 bytes, no Content-Length
    body: bytes | list[bytes] = pieces if framing == "chunked" else b"".join(pieces)
    url = server.add("/big.png", Route(headers={"Content-Type": "image/png"}, body=body, length=False))

    result = fetch_image(url, server.trusted_policy(max_bytes=1000))

    assert result.error == "exceeds the 1000 B limit"
    assert result.data is None


def test_body_exactly_at_the_cap_is_accepted(server: ImageServer) -> None:
    url = server.add("/png", Route(headers={"Content-Type": "image/png"}, body=[PNG[:10], PNG[10:]]))

    result = fetch_image(url, server.trusted_policy(max_bytes=len(PNG)))

    assert result.ok, result.error


@pytest.mark.parametrize(
    ("content_type", "body", "error"),
    [
        ("image/svg+xml", SVG, "SVG images are not embedded"),
        ("image/svg+xml; charset=utf-8", PNG, "SVG images are not embedded"),
        ("image/png", SVG, "SVG images are not embedded"),
        (None, SVG, "SVG images are not embedded"),
        ("image/png", HTML, "not a PNG, JPEG, GIF or WEBP image (content type image/png)"),
        (None, HTML, "not a PNG, JPEG, GIF or WEBP image"),
        ("image/png", b"", "not a PNG, JPEG, GIF or WEBP image (content type image/png)"),
        ("text/html; charset=utf-8", PNG, "not an image (content type text/html)"),
        ("application/octet-stream", PNG, "not an image (content type application/octet-stream)"),
        ("application/xml", OSS_EXPIRED, "not an image (content type application/xml)"),
    ],
)
def test_only_raster_images_are_accepted(server: ImageServer, content_type: str | None, body: bytes, error: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    url = server.add("/fig.png", Route(headers=headers, body=body))

    result = fetch_image(url, server.trusted_policy())

    assert result.error == error
    assert result.data is None and result.mime is None


@pytest.mark.parametrize("status", [403, 404, 500, 204, 206])
def test_error_status_is_reported(server: ImageServer, status: int) -> None:
    url = server.add("/fig.png", Route(status, {"Content-Type": "application/xml"}, OSS_EXPIRED if status != 204 else b""))

    result = fetch_image(url + "?" + SIGNED_QUERY, server.trusted_policy())

    assert result.error == f"server answered HTTP {status}"
    assert_no_secret(result)


def test_slow_server_times_out(server: ImageServer) -> None:
    url = server.add("/slow.png", Route(headers={"Content-Type": "image/png"}, body=PNG, delay=1.0))

    started = time.monotonic()
    result = fetch_image(url + "?" + SIGNED_QUERY, server.trusted_policy(timeout=0.3))

    assert result.error == "timed out after 0.3 s"
    assert time.monotonic() - started < 0.9
    assert_no_secret(result)


def test_stall_in_the_middle_of_the_body_times_out(server: ImageServer) -> None:
    url = server.add("/stall.png", Route(headers={"Content-Type": "image/png", "Content-Length": "5000"}, length=False, hold=1.0))

    result = fetch_image(url, server.trusted_policy(timeout=0.3))

    assert result.error == "timed out after 0.3 s"


def test_slow_drip_hits_the_total_timeout(server: ImageServer) -> None:
    drip = [PNG[:8]] + [b"\x00" * 10] * 30
    url = server.add("/drip.png", Route(headers={"Content-Type": "image/png"}, body=drip, chunk_delay=0.05))

    started = time.monotonic()
    result = fetch_image(url, server.trusted_policy(timeout=1.0, total_timeout=0.4))

    assert result.error == "took longer than 0.4 s in total"
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize("framing", ["content-length", "close-delimited"])
def test_one_byte_drip_stops_at_the_total_deadline(server: ImageServer, framing: str) -> None:
    # 68 bytes at one per 0.2 s would take 13.6 s; each byte arrives well within the read timeout.
    body = PNG[:8] + b"\x00" * 60
    url = server.add("/drip.png", Route(headers={"Content-Type": "image/png"}, body=body, length=framing == "content-length", drip=0.2))

    started = time.monotonic()
    result = fetch_image(url, server.trusted_policy(timeout=1.0, total_timeout=2.0))
    elapsed = time.monotonic() - started

    assert result.error == "took longer than 2 s in total"
    assert result.data is None
    assert elapsed < 4.0, elapsed  # a hang guard: the deadline holds within about a second


@pytest.fixture
def chunk_line_dripper() -> Iterator[int]:
    """A raw server that answers 200 chunked, then drips the chunk-size line one hex digit per
    0.2 s (at most 60 of them): every socket read returns a byte, and one ``readline`` never ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.settimeout(5)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n")
                for _ in range(60):
                    if stop.wait(0.2):
                        break
                    conn.sendall(b"1")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        sock.close()
        thread.join(timeout=5)


def test_chunk_size_line_drip_stops_at_the_total_deadline(chunk_line_dripper: int) -> None:
    policy = ImagePolicy.for_base_url(f"http://127.0.0.1:{chunk_line_dripper}/api/v1", timeout=1.0, total_timeout=2.0)

    started = time.monotonic()
    result = fetch_image(f"http://127.0.0.1:{chunk_line_dripper}/oss/a.png", policy)
    elapsed = time.monotonic() - started

    assert result.error == "took longer than 2 s in total"
    assert elapsed < 4.0, elapsed  # a hang guard, not a timing assertion


def test_connection_refused_is_one_sentence_without_the_signature() -> None:
    port = closed_port()
    policy = ImagePolicy.for_base_url(f"http://127.0.0.1:{port}/api/v1", timeout=2)

    result = fetch_image(f"http://127.0.0.1:{port}/oss/a.png?{SIGNED_QUERY}", policy)

    assert result.error == "could not connect to 127.0.0.1 (connection refused)"
    assert_no_secret(result)


# --------------------------------------------------------------------------------------------
# Credentials never reach an image host
# --------------------------------------------------------------------------------------------


def test_session_headers_auth_and_cookies_are_not_sent(server: ImageServer) -> None:
    server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))
    url = server.add("/r", Route(302, {"Location": "/img.png", "Set-Cookie": "tracker=1; Path=/"}))
    session = requests.Session()
    session.headers["Authorization"] = "Bearer sk-canary"
    session.headers["X-DashScope-Plugin"] = '{"code_interpreter": {}}'
    session.headers["Cookie"] = "sid=canary-header"
    session.cookies.set("sid", "canary-jar")
    session.auth = ("user", "canary-password")

    with session:
        result = fetch_image(url, server.trusted_policy(), session=session)

    assert result.ok, result.error
    assert len(server.seen) == 2
    for seen in server.seen:
        assert "authorization" not in seen.headers
        assert "cookie" not in seen.headers
        assert "x-dashscope-plugin" not in seen.headers
        assert "canary" not in repr(seen.headers)
    assert session.headers["Authorization"] == "Bearer sk-canary"  # the caller's session is untouched
    assert "tracker" not in session.cookies  # and image hosts cannot plant cookies in it


def test_default_session_ignores_netrc_and_proxy_environment(
    server: ImageServer, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = os.path.join(tmp_path, "netrc")
    with open(netrc, "w") as fh:
        fh.write("machine 127.0.0.1 login canary password canary-netrc\n")
    os.chmod(netrc, 0o600)
    monkeypatch.setenv("NETRC", netrc)
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = server.add("/img.png", Route(headers={"Content-Type": "image/png"}, body=PNG))

    result = fetch_image(url, server.trusted_policy())

    assert result.ok, result.error  # the dead proxy was not used
    assert "authorization" not in server.seen[0].headers


# --------------------------------------------------------------------------------------------
# display_url
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com/code-interpreter/fig-001.png?" + SIGNED_QUERY,
            "https://dashscope-cn-beijing.oss-cn-beijing.aliyuncs.com/code-interpreter/fig-001.png",
        ),
        ("http://h.aliyuncs.com/a.png?Expires=1&Signature=x#top", "http://h.aliyuncs.com/a.png"),
        ("https://user:pw@h.aliyuncs.com:8443/a.png", "https://h.aliyuncs.com:8443/a.png"),
        ("https://a@b@h.example/p?q", "https://h.example/p"),
        ("https://h.example#frag", "https://h.example"),
        ("https://h.example/p?x=@evil", "https://h.example/p"),
        ("http://[::1", "http://[::1"),
        ("http://[::1]:80/a?b", "http://[::1]:80/a"),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("", ""),
        ("/just/a/path?Signature=x", "/just/a/path"),
    ],
)
def test_display_url_strips_query_fragment_and_userinfo(url: str, shown: str) -> None:
    assert display_url(url) == shown


# --------------------------------------------------------------------------------------------
# ImageCache
# --------------------------------------------------------------------------------------------


def test_cache_fetches_each_url_once(server: ImageServer) -> None:
    url = server.add("/fig.png", Route(headers={"Content-Type": "image/png"}, body=PNG)) + "?" + SIGNED_QUERY
    missing = server.origin + "/gone.png?" + SIGNED_QUERY
    cache = ImageCache(server.trusted_policy())

    assert cache.get(url) is None
    first = cache.fetch(url)
    second = cache.fetch(Figure(url=url, alt="fig-001"))
    everything = cache.fetch_all([url, Figure(missing), missing, url])

    assert first.ok and second is first
    assert list(everything) == [url, missing]
    assert everything[missing].error == "server answered HTTP 404"
    assert cache.fetch(missing) is everything[missing]  # failures are cached too
    assert server.hits("/fig.png") == 1 and server.hits("/gone.png") == 1
    assert len(cache) == 2 and cache.get(url) is first


def test_cache_concurrent_callers_share_one_fetch(server: ImageServer) -> None:
    url = server.add("/fig.png", Route(headers={"Content-Type": "image/png"}, body=PNG, delay=0.2))
    cache = ImageCache(server.trusted_policy())
    results: list[FetchedImage] = []

    threads = [threading.Thread(target=lambda: results.append(cache.fetch(url))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)

    assert len(results) == 8 and all(r is results[0] for r in results)
    assert results[0].ok
    assert server.hits("/fig.png") == 1


def _padded_png(size: int) -> bytes:
    return PNG + b"\x00" * (size - len(PNG))


def test_sixty_one_megabyte_figures_stay_within_the_trace_budget(server: ImageServer) -> None:
    figure = _padded_png(1_000_000)
    urls = [
        server.add(f"/fig-{i:03}.png", Route(headers={"Content-Type": "image/png"}, body=figure)) + "?" + SIGNED_QUERY
        for i in range(60)
    ]
    cache = ImageCache(server.trusted_policy())

    results = cache.fetch_all(urls)
    html = "".join(render_figure(Figure(url=url), results) for url in urls)

    embedded = [url for url in urls if results[url].ok]
    assert embedded == urls[:20]  # first come, first embedded: 20 x 1 MB fit in 20 MB
    assert cache.embedded_bytes == 20 * len(figure) <= DEFAULT_MAX_TOTAL_BYTES == 20 * 1024 * 1024
    note = "not embedded: this trace's figure budget of 20 MB is used up"
    assert all(results[url].error == note and results[url].data is None for url in urls[20:])
    assert len(html) < 28 * 1024 * 1024  # was 80 MB: 60 figures base64-encoded
    assert html.count("<img") == 20 and html.count(note.replace("'", "&#x27;")) == 40
    assert cache.fetch_all(urls) == results  # re-renders ask nothing new
    assert all(server.hits(f"/fig-{i:03}.png") == 1 for i in range(60))


def test_budget_stops_an_unannounced_body_and_then_stops_fetching(server: ImageServer) -> None:
    first = server.add("/a.png", Route(headers={"Content-Type": "image/png"}, body=_padded_png(600)))
    pieces = [PNG] + [b"\x00" * 300] * 9  # no Content-Length: stopped while reading
    second = server.add("/b.png", Route(headers={"Content-Type": "image/png"}, body=pieces, length=False))
    exact = server.add("/c.png", Route(headers={"Content-Type": "image/png"}, body=_padded_png(400)))
    after = server.add("/d.png", Route(headers={"Content-Type": "image/png"}, body=PNG))
    cache = ImageCache(server.trusted_policy(max_total_bytes=1000))

    results = [cache.fetch(url) for url in (first, second, exact, after)]

    note = "not embedded: this trace's figure budget of 1000 B is used up"
    assert [r.ok for r in results] == [True, False, True, False]
    assert results[1].error == results[3].error == note
    assert cache.embedded_bytes == 1000
    assert server.hits("/d.png") == 0  # the budget was spent: not even asked for


def test_budget_also_holds_for_a_custom_fetcher() -> None:
    def fake(url: str) -> FetchedImage:
        return FetchedImage(url=url, display_url=display_url(url), data=_padded_png(80), mime="image/png")

    cache = ImageCache(ImagePolicy(max_total_bytes=200), fetcher=fake)

    assert [cache.fetch(f"https://h.example/{i}.png").ok for i in range(3)] == [True, True, False]
    assert cache.embedded_bytes == 160
    assert cache.fetch("https://h.example/2.png").error == "not embedded: this trace's figure budget of 200 B is used up"


def test_cache_accepts_a_custom_fetcher() -> None:
    calls: list[str] = []

    def fake(url: str) -> FetchedImage:
        calls.append(url)
        return FetchedImage(url=url, display_url=display_url(url), data=PNG, mime="image/png")

    cache = ImageCache(ImagePolicy(), fetcher=fake)

    assert cache.fetch("https://x.aliyuncs.com/a.png?s=1").ok
    assert cache.fetch("https://x.aliyuncs.com/a.png?s=1").ok
    assert calls == ["https://x.aliyuncs.com/a.png?s=1"]


# --------------------------------------------------------------------------------------------
# Garbage in, error out (never an exception)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://",
        "https://",
        "http://[::1",
        "http://[::1]:99999/",
        "http://x.aliyuncs.com:abc/",
        "http://x.aliyuncs.com:0/",
        "https://x.aliyuncs.com/\r\nHost: evil.example",
        "https://x.aliyuncs.com/a b.png",
        "\x00",
        "https://\u4f8b\u5b50.aliyuncs.com/a.png",
        "https://" + "a" * 64 + ".aliyuncs.com/a.png",
        "https://x.aliyuncs.com/" + "a" * 100_000,
        "http://" + "a." * 5000 + "aliyuncs.com/",
        "::::",
        None,
        123,
        b"https://x.aliyuncs.com/a.png",
    ],
)
def test_fetch_image_never_raises(url: object, dns_calls: list[str]) -> None:
    result = fetch_image(url, ImagePolicy(timeout=0.5))  # type: ignore[arg-type]

    assert isinstance(result, FetchedImage)
    assert not result.ok and result.error
    assert len(result.error) < 200
    assert dns_calls == []


def test_check_url_raises_a_value_error() -> None:
    with pytest.raises(ValueError, match="is not one DashScope uses for plugin output"):
        check_url("https://evil.example/a.png", ImagePolicy())


# --------------------------------------------------------------------------------------------
# ImagePolicy
# --------------------------------------------------------------------------------------------


def test_policy_matching() -> None:
    policy = ImagePolicy(hosts=(".AliyunCS.com", "Images.Example:8443", "exact.example"))

    assert policy.hosts == (".aliyuncs.com", "images.example:8443", "exact.example")
    assert policy.is_allowed("x.aliyuncs.com", 443)
    assert policy.is_allowed("a.b.aliyuncs.com", 8080)  # suffix entries ignore the port
    assert not policy.is_allowed("aliyuncs.com", 443)
    assert not policy.is_allowed("evilaliyuncs.com", 443)
    assert not policy.is_allowed("aliyuncs.com.evil.example", 443)
    assert policy.is_allowed("images.example", 8443)
    assert not policy.is_allowed("images.example", 443)
    assert policy.is_allowed("exact.example", 1234)
    assert not policy.is_allowed("sub.exact.example", 443)


def test_policy_for_base_url() -> None:
    assert ImagePolicy.for_base_url("http://127.0.0.1:8123/api/v1").trusted_hosts == ("127.0.0.1:8123",)
    assert ImagePolicy.for_base_url("https://dashscope.aliyuncs.com/api/v1").trusted_hosts == ("dashscope.aliyuncs.com:443",)
    assert ImagePolicy.for_base_url("http://[::1]:9000/api/v1").trusted_hosts == ("[::1]:9000",)
    policy = ImagePolicy.for_base_url(
        "http://127.0.0.1:1/", hosts=".example.com", max_bytes=10, timeout=1.5, max_total_bytes=30
    )
    assert (policy.hosts, policy.max_bytes, policy.timeout, policy.max_total_bytes) == ((".example.com",), 10, 1.5, 30)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"hosts": (".",)},
        {"hosts": ("",)},
        {"hosts": ("a b",)},
        {"hosts": ("user@host",)},
        {"trusted_hosts": (".suffix.example",)},
        {"max_bytes": 0},
        {"max_total_bytes": 0},
        {"max_total_bytes": 1.5},
        {"timeout": 0},
        {"timeout": -1.0},
        {"total_timeout": 0},
        {"max_redirects": -1},
    ],
)
def test_policy_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ImagePolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("base_url", ["", "not a url", "ftp://x.example/", "http://:80/", "http://h:99999/"])
def test_for_base_url_rejects_bad_base_urls(base_url: str) -> None:
    with pytest.raises(ConfigError):
        ImagePolicy.for_base_url(base_url)


def test_import_is_cheap() -> None:
    code = "import sys, dashmagic.images; assert 'requests' not in sys.modules; assert 'IPython' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
