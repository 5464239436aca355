"""dashmagic.config, called directly: key lookup and validation, base URLs, timeouts."""

from __future__ import annotations

import math
import re
import warnings
from fractions import Fraction
from pathlib import Path

import pytest

from dashmagic.config import (
    DEFAULT_BASE_URL,
    INTL_BASE_URL,
    MAX_SECONDS,
    Secret,
    Settings,
    Timeouts,
    check_base_url,
    check_seconds,
    resolve_api_key,
    validate_key,
)
from dashmagic.errors import ConfigError

KEY = "sk-0123456789abcdef0123456789abcdef"


def _one_line_without_key(error: ConfigError, *secrets: str) -> str:
    message = str(error)
    assert "\n" not in message and "\r" not in message and message.isprintable(), message
    for secret in (KEY, *secrets):
        for part in (secret, secret[:12], secret[-12:]):
            assert part not in message, message
    return message


# -- where the key is read from -----------------------------------------------------------------
def test_key_precedence_and_default_file(tmp_path: Path) -> None:
    home = tmp_path / "h"
    (home / ".dashscope").mkdir(parents=True)
    (home / ".dashscope" / "api_key").write_text("sk-from-home")
    path_file = tmp_path / "p"
    path_file.write_text("sk-from-path")
    assert resolve_api_key({}, home) == Secret("sk-from-home")
    assert resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": str(path_file)}, home) == Secret("sk-from-path")
    assert resolve_api_key({"DASHSCOPE_API_KEY": "sk-env", "DASHSCOPE_API_KEY_FILE_PATH": str(path_file)}, home) == Secret("sk-env")
    assert resolve_api_key({}, tmp_path / "nobody") is None
    assert Settings.from_env({}).base_url == DEFAULT_BASE_URL
    assert Settings.from_env({"DASHSCOPE_HTTP_BASE_URL": INTL_BASE_URL}).base_url == INTL_BASE_URL


def test_surrounding_ascii_whitespace_and_a_trailing_newline_are_stripped(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text(f"\n  {KEY}\r\n")
    assert resolve_api_key({"DASHSCOPE_API_KEY": f" \t{KEY}\n"}, tmp_path) == Secret(KEY)
    assert resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": str(key_file)}, tmp_path) == Secret(KEY)
    assert resolve_api_key({"DASHSCOPE_API_KEY": " \n "}, tmp_path / "nobody") is None  # blank: not set


BAD_KEYS = [
    (KEY + "\n# old key", "a line break (U+000A) at character 36"),
    (KEY[:20] + "\r" + KEY[20:], "a line break (U+000D) at character 21"),
    (KEY[:10] + " " + KEY[10:], "a space (U+0020) at character 11"),
    (KEY[:10] + "\t" + KEY[10:], "a tab (U+0009) at character 11"),
    (KEY + "\u200b", "U+200B ZERO WIDTH SPACE at character 36"),
    ("\ufeff" + KEY, "U+FEFF ZERO WIDTH NO-BREAK SPACE at character 1"),
    (KEY + "\xa0", "U+00A0 NO-BREAK SPACE at character 36"),
    (KEY + "\u2028x", "a line break (U+2028) at character 36"),
    (KEY[:5] + "\x07" + KEY[5:], "a control character (U+0007) at character 6"),
    (KEY[:5] + "\x7f" + KEY[5:], "a control character (U+007F) at character 6"),
    (KEY[:5] + "\x00" + KEY[5:], "a control character (U+0000) at character 6"),
    (KEY[:5] + "é" + KEY[5:], "U+00E9 LATIN SMALL LETTER E WITH ACUTE at character 6"),
    (KEY[:5] + "\udc80" + KEY[5:], "U+DC80, a lone surrogate"),  # os.environ's surrogateescape
]


@pytest.mark.parametrize(("value", "what"), BAD_KEYS, ids=[w.split(" at ")[0] for _, w in BAD_KEYS])
def test_a_bad_key_in_the_environment_names_the_variable_and_the_character(value: str, what: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_api_key({"DASHSCOPE_API_KEY": value}, tmp_path)
    message = _one_line_without_key(info.value, value.strip())
    assert message.startswith("The DashScope API key in DASHSCOPE_API_KEY contains "), message
    assert what in message and "copy it again" in message


def test_a_two_line_key_file_names_the_file_not_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "api_key"
    key_file.write_text(f"{KEY}\nsk-old-key-kept-for-later\n")
    with pytest.raises(ConfigError) as info:
        resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": str(key_file)}, tmp_path)
    message = _one_line_without_key(info.value, "sk-old-key-kept-for-later")
    assert f"the file {str(key_file)!r} (named by DASHSCOPE_API_KEY_FILE_PATH)" in message
    assert "a line break (U+000A) at character 36" in message


def test_a_bad_default_key_file_is_named_and_not_skipped(tmp_path: Path) -> None:
    (tmp_path / ".dashscope").mkdir()
    (tmp_path / ".dashscope" / "api_key").write_text(KEY + "\u200b")
    with pytest.raises(ConfigError, match=r"api_key' contains U\+200B ZERO WIDTH SPACE") as info:
        resolve_api_key({}, tmp_path)
    _one_line_without_key(info.value)


def test_a_bad_env_key_does_not_fall_through_to_a_good_file(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_text(KEY)
    with pytest.raises(ConfigError, match="in DASHSCOPE_API_KEY contains"):
        resolve_api_key({"DASHSCOPE_API_KEY": KEY + "\u200b", "DASHSCOPE_API_KEY_FILE_PATH": str(good)}, tmp_path)


def test_key_files_that_are_not_text_or_too_big_are_one_line_errors(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(KEY.encode() + b"\xff\xfe")
    with pytest.raises(ConfigError, match="is not UTF-8 text \\(byte 36 cannot be decoded\\)") as info:
        resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": str(binary)}, tmp_path)
    _one_line_without_key(info.value)
    huge = tmp_path / "huge"
    huge.write_text(KEY + "x" * 10_000)
    with pytest.raises(ConfigError, match="more than 4,096 bytes") as info:
        resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": str(huge)}, tmp_path)
    _one_line_without_key(info.value)
    with pytest.raises(ConfigError, match="DASHSCOPE_API_KEY_FILE_PATH is not a usable file name"):
        resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": "/tmp/a\x00b"}, tmp_path)


def test_unreadable_key_files_are_skipped_as_the_sdk_does(tmp_path: Path) -> None:
    (tmp_path / ".dashscope" / "api_key").mkdir(parents=True)  # a directory, not a file
    assert resolve_api_key({"DASHSCOPE_API_KEY_FILE_PATH": str(tmp_path / "missing")}, tmp_path) is None


def test_validate_key_for_a_key_passed_as_a_string() -> None:
    assert validate_key(f"  {KEY}\n", "the api_key argument") == Secret(KEY)
    with pytest.raises(ConfigError) as info:
        validate_key(KEY + "\n" + KEY, "the api_key argument")
    message = _one_line_without_key(info.value)
    assert message.startswith("The DashScope API key in the api_key argument contains a line break")
    with pytest.raises(ConfigError, match="in the api_key argument is empty"):
        validate_key(" \n", "the api_key argument")
    with pytest.raises(ConfigError, match="must be a string, not bytes"):
        validate_key(KEY.encode(), "the api_key argument")  # type: ignore[arg-type]


def test_every_printable_ascii_character_is_allowed_in_a_key() -> None:
    printable = "".join(chr(c) for c in range(0x21, 0x7F))
    assert validate_key(printable, "x").reveal() == printable


# -- base URL --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("http://[::1", "is not a valid URL (Invalid IPv6 URL)"),
        ("https://[::1/api/v1", "is not a valid URL (Invalid IPv6 URL)"),
        ("http://127.0.0.1:99999/api/v1", "is not a valid URL (Port out of range"),
        ("http://127.0.0.1:port/api/v1", "is not a valid URL (Port could not be cast"),
        ("dashscope.aliyuncs.com/api/v1", "is not an http(s) URL"),
        ("https://dashscope\n.aliyuncs.com/api/v1", "is not a valid URL (it contains a space or a control character)"),
        ("https://dashscope.aliyuncs.com/api v1", "is not a valid URL (it contains a space"),
    ],
)
def test_a_malformed_base_url_is_a_one_line_config_error(url: str, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_base_url(url)
    message = str(info.value)
    assert phrase in message and "Set DASHSCOPE_HTTP_BASE_URL" in message
    assert "\n" not in message, message


def test_a_huge_base_url_is_quoted_bounded() -> None:
    with pytest.raises(ConfigError) as info:
        check_base_url("x" * 100_000)
    assert len(str(info.value)) < 500


def test_base_url_is_returned_without_a_trailing_slash() -> None:
    assert check_base_url(" https://dashscope.aliyuncs.com/api/v1/ ") == DEFAULT_BASE_URL
    assert check_base_url("http://[::1]:8080/api/v1") == "http://[::1]:8080/api/v1"


def test_non_dashscope_host_warns_once() -> None:
    with pytest.warns(UserWarning, match="will send your DashScope API key to proxy.example.org"):
        check_base_url("https://proxy.example.org/api/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_base_url("https://proxy.example.org/api/v1")  # once per host
        check_base_url("https://dashscope-intl.aliyuncs.com/api/v1")
        check_base_url("http://127.0.0.1:8080/api/v1")


# -- timeouts --------------------------------------------------------------------------------------
def test_timeouts_keep_the_transport_defaults() -> None:
    # transport.split_timeout: None → (10, 180); one number caps connect too; a pair is (connect, read)
    assert Timeouts.of() == Timeouts(connect=10.0, read=180.0, total=600.0)
    assert Timeouts.of(5) == Timeouts(connect=5.0, read=5.0, total=600.0)
    assert Timeouts.of(60) == Timeouts(connect=10.0, read=60.0, total=600.0)
    assert Timeouts.of((3, 40)).for_requests() == (3.0, 40.0)
    assert Timeouts.of([3, 40.5]).for_requests() == (3.0, 40.5)
    assert Timeouts.of(30, connect=2).for_requests() == (2.0, 30.0)  # the magic's connect_timeout trait


def test_total_is_generous_by_default_and_explicit_when_given() -> None:
    assert Timeouts.of(900).total == 910.0  # a long read limit is not cut by the default deadline
    assert Timeouts.of(5, total=30).total == 30.0
    assert Timeouts.of(total=Fraction(3, 2)).total == 1.5


def test_timeouts_are_frozen_floats() -> None:
    value = Timeouts.of(5)
    assert all(type(getattr(value, f)) is float for f in ("connect", "read", "total"))
    with pytest.raises(AttributeError):
        value.read = 1.0  # type: ignore[misc]
    assert Timeouts.of(value) is value


BAD_SECONDS = [0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, 1e308, MAX_SECONDS + 1, 10**400, True, False, "5", b"5", None, [], {}]


@pytest.mark.parametrize("value", BAD_SECONDS, ids=[repr(v)[:20] for v in BAD_SECONDS])
def test_check_seconds_refuses_with_the_name_value_and_range(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        check_seconds(value, "DashScopeMagics.timeout")
    message = str(info.value)
    assert message.startswith("DashScopeMagics.timeout must be a positive number of seconds, at most 1,000,000"), message
    assert "\n" not in message and len(message) < 200


def test_check_seconds_shows_the_value_as_typed() -> None:
    for value, shown in [(math.nan, "got nan."), (math.inf, "got inf."), (1e308, "got 1e+308."), (0.0, "got 0."),
                         (-1, "got -1."), ("5", "got '5' (type str)."), (True, "got True (type bool).")]:
        with pytest.raises(ConfigError, match=re.escape(shown) + "$"):
            check_seconds(value, "--timeout")


def test_check_seconds_accepts_numbers_in_range() -> None:
    assert check_seconds(1, "t") == 1.0 and check_seconds(MAX_SECONDS, "t") == MAX_SECONDS
    assert check_seconds(Fraction(1, 4), "t") == 0.25 and check_seconds(1e-3, "t") == 0.001


@pytest.mark.parametrize(
    ("timeout", "phrase"),
    [
        ((-1, 5), "timeout[0] (connect) must be a positive number of seconds, at most 1,000,000 (about 11 days), got -1."),
        ((5, math.nan), "timeout[1] (read) must be a positive number"),
        ((1, 2, 3), "timeout must be seconds or a (connect, read) pair of seconds, got a tuple of 3."),
        (math.nan, "timeout must be a positive number of seconds, at most 1,000,000 (about 11 days), got nan."),
        ("30", "got '30' (type str)"),
        (True, "got True (type bool)"),
    ],
)
def test_bad_timeouts_are_config_errors(timeout: object, phrase: str) -> None:
    with pytest.raises(ConfigError) as info:
        Timeouts.of(timeout)
    assert phrase in str(info.value), str(info.value)


def test_bad_connect_total_and_direct_construction_are_refused() -> None:
    with pytest.raises(ConfigError, match="the connect timeout must be"):
        Timeouts.of(5, connect=0)
    with pytest.raises(ConfigError, match="the total timeout must be .* got inf"):
        Timeouts.of(5, total=math.inf)
    with pytest.raises(ConfigError, match="the read timeout must be .* got nan"):
        Timeouts(connect=1, read=math.nan, total=5)
    with pytest.raises(ConfigError, match="--timeout must be"):
        Timeouts.of(-3, name="--timeout")
