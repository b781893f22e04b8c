"""Camera source URLs: the scheme allow-list, refused input, credentials, redaction."""

from __future__ import annotations

import pytest

from vidicon.core.sources import (
    ALLOWED_SCHEMES,
    MAX_URL_LENGTH,
    SourceError,
    parse_source,
    redact,
)

DAHUA = "rtsp://192.168.1.108:554/cam/realmonitor?channel=1&subtype=0"

# ------------------------------------------------------------------- allowed schemes


@pytest.mark.parametrize(
    ("url", "scheme", "kind"),
    [
        ("rtsp://cam.example/stream1", "rtsp", "rtsp"),
        ("rtsps://cam.example:322/stream1", "rtsps", "rtsp"),
        ("rtmp://cam.example/live/key", "rtmp", "rtmp"),
        ("rtmps://cam.example/live/key", "rtmps", "rtmp"),
        ("http://cam.example/video.mjpg", "http", "http"),
        ("https://cam.example:8443/live.flv", "https", "http"),
        ("media:clips/lobby.mp4?loop=0", "media", "file"),
        ("sim://?width=160&height=96&fps=5", "sim", "simulated"),
        ("sim:?fps=5", "sim", "simulated"),
    ],
)
def test_allowed_schemes_are_accepted(url: str, scheme: str, kind: str) -> None:
    spec = parse_source(url)
    assert spec.scheme == scheme
    assert spec.kind == kind
    assert spec.username is None and spec.password is None


def test_allow_list_is_exactly_the_documented_one() -> None:
    assert {"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "media", "sim"} == ALLOWED_SCHEMES


def test_scheme_and_host_are_case_insensitive_and_normalised() -> None:
    spec = parse_source("RTSP://Cam.Example:554/Stream1")
    assert spec.scheme == "rtsp"
    assert spec.url == "rtsp://cam.example:554/Stream1"  # the path keeps its case


def test_dahua_query_string_with_ampersands_is_kept() -> None:
    spec = parse_source(DAHUA)
    assert spec.url == DAHUA
    assert spec.query() == {"channel": "1", "subtype": "0"}


def test_sim_query_parameters_are_readable() -> None:
    spec = parse_source("sim://?width=160&height=96&fps=5")
    assert spec.query() == {"width": "160", "height": "96", "fps": "5"}


def test_media_path_keeps_its_query() -> None:
    spec = parse_source("media:clips/lobby.mp4?loop=0")
    assert spec.url == "media:clips/lobby.mp4?loop=0"
    assert spec.query() == {"loop": "0"}


def test_fragment_is_dropped() -> None:
    assert parse_source("rtsp://cam/x#frag").url == "rtsp://cam/x"


# ------------------------------------------------------------------- refused schemes


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file:/etc/passwd",
        "FILE:///etc/passwd",
        "File:///etc/shadow",
        "concat:a.mp4|b.mp4",
        "Concat:a.mp4",
        "CONCAT:/etc/passwd",
        "subfile:,start,0,end,100,:/etc/passwd",
        "subfile:/etc/passwd",
        "exec:id",
        "pipe:0",
        "pipe:",
        "data:text/plain;base64,aGVsbG8=",
        "data:,hello",
        "tee:rtsp://cam/x",
        "gopher://cam.example/x",
        "ftp://cam.example/x.mp4",
        "udp://239.0.0.1:1234",
        "tcp://cam.example:554",
        "rtp://cam.example:5004",
        "srt://cam.example:9000",
        "hls+http://cam.example/x.m3u8",
        "crypto:file:///etc/passwd",
        "async:file:/etc/passwd",
        "javascript:alert(1)",
        "/etc/passwd",
        "cam.example/stream1",
        "rtsp",
        "://cam/x",
    ],
)
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(SourceError):
        parse_source(url)


def test_refusal_names_the_allowed_schemes() -> None:
    with pytest.raises(SourceError, match="rtsp"):
        parse_source("gopher://cam.example/x")


def test_scheme_in_the_error_is_truncated() -> None:
    with pytest.raises(SourceError) as info:
        parse_source("x" * 500 + "://cam/x")
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("url", ["", None, 42, b"rtsp://cam/x"])
def test_missing_or_non_text_url_is_refused(url: object) -> None:
    with pytest.raises(SourceError):
        parse_source(url)  # type: ignore[arg-type]


# ------------------------------------------------------------ shell metacharacters


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://cam/$(id)",
        "rtsp://cam/${IFS}x",
        "rtsp://cam/`id`",
        "rtsp://cam/x;rm -rf /",
        "rtsp://cam/x;id",
        "rtsp://cam/x|id",
        "rtsp://cam/x||id",
        "rtsp://cam/x>out",
        "rtsp://cam/x<in",
        "rtsp://cam/a b",
        "rtsp://cam/a\tb",
        'rtsp://cam/"x"',
        "rtsp://cam/'x'",
        "rtsp://cam/x\ny",
        "rtsp://cam/x\r\nHost: evil",
        "rtsp://cam/x\x00y",
        "rtsp://cam/x\x7f",
        "rtsp://cam/x\\y",
        "rtsp://cam/{a,b}",
        " rtsp://cam/x",
        "rtsp://cam/x ",
        "sim://?fps=5;id",
        "media:clips/a.mp4|id",
        "media:clips/a\x00.mp4",
    ],
)
def test_shell_metacharacters_and_control_characters_are_refused(url: str) -> None:
    with pytest.raises(SourceError):
        parse_source(url)


# ------------------------------------------------------------------------ length


def test_url_of_10_kb_is_refused() -> None:
    with pytest.raises(SourceError, match="longer"):
        parse_source("rtsp://cam.example/" + "a" * 10_000)


def test_url_at_the_limit_is_accepted_one_more_is_refused() -> None:
    prefix = "rtsp://cam.example/"
    exact = prefix + "a" * (MAX_URL_LENGTH - len(prefix))
    assert parse_source(exact).url == exact
    with pytest.raises(SourceError):
        parse_source(exact + "a")


# ---------------------------------------------------------------------- host, port


@pytest.mark.parametrize(
    "url",
    [
        "rtsp:///stream1",
        "rtsp://:554/stream1",
        "rtsp:cam/stream1",
        "rtsp://user:pw@/stream1",
        "http://",
        "rtsp://my_cam/stream1",
        "rtsp://cam%2Fx/stream1",
        "rtsp://" + "a" * 254 + "/x",
    ],
)
def test_missing_or_invalid_host_is_refused(url: str) -> None:
    with pytest.raises(SourceError, match="host"):
        parse_source(url)


@pytest.mark.parametrize(
    "url",
    ["rtsp://cam:99999/x", "rtsp://cam:65536/x", "rtsp://cam:abc/x", "rtsp://cam:-1/x"],
)
def test_invalid_port_is_refused(url: str) -> None:
    with pytest.raises(SourceError, match="port"):
        parse_source(url)


def test_valid_port_is_kept() -> None:
    assert parse_source("rtsp://cam:8554/x").url == "rtsp://cam:8554/x"
    assert parse_source("rtsp://cam:65535/x").url == "rtsp://cam:65535/x"


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("rtsp://[::1]:554/stream1", "rtsp://[::1]:554/stream1"),
        ("rtsp://[2001:db8::10]/stream1", "rtsp://[2001:db8::10]/stream1"),
        ("rtsp://admin:pw@[2001:db8::10]:8554/s", "rtsp://[2001:db8::10]:8554/s"),
        ("http://[::ffff:192.0.2.1]/x", "http://[::ffff:192.0.2.1]/x"),
    ],
)
def test_ipv6_hosts_keep_their_brackets(url: str, clean: str) -> None:
    spec = parse_source(url)
    assert spec.url == clean
    assert parse_source(spec.url_with_credentials()).url == clean


def test_ipv4_host() -> None:
    assert parse_source("rtsp://192.0.2.10:554/s").url == "rtsp://192.0.2.10:554/s"


# -------------------------------------------------------------------------- media


@pytest.mark.parametrize(
    "url", ["media:", "media:/etc/passwd", "media:///etc/passwd", "media://host/x.mp4"]
)
def test_media_takes_only_relative_paths(url: str) -> None:
    with pytest.raises(SourceError):
        parse_source(url)


# -------------------------------------------------------------------- credentials


def test_credentials_are_split_out_of_the_url() -> None:
    spec = parse_source("rtsp://admin:s3cr3t-pw@192.168.1.108:554/cam/realmonitor?channel=1")
    assert spec.url == "rtsp://192.168.1.108:554/cam/realmonitor?channel=1"
    assert spec.username == "admin"
    assert spec.password == "s3cr3t-pw"
    assert "s3cr3t-pw" not in spec.url and "admin" not in spec.url


def test_dahua_url_with_credentials_and_ampersands() -> None:
    spec = parse_source(DAHUA.replace("rtsp://", "rtsp://admin:pw@"))
    assert spec.url == DAHUA
    assert (spec.username, spec.password) == ("admin", "pw")


def test_url_encoded_credentials_are_decoded() -> None:
    spec = parse_source("rtsp://us%40er:p%40ss%3Aw%2Fo%25rd@cam/x")
    assert spec.username == "us@er"
    assert spec.password == "p@ss:w/o%rd"
    assert spec.url == "rtsp://cam/x"


def test_username_only() -> None:
    spec = parse_source("rtsp://viewer@cam/x")
    assert (spec.username, spec.password) == ("viewer", None)
    assert spec.url_with_credentials() == "rtsp://viewer@cam/x"


def test_empty_password_in_url_counts_as_none() -> None:
    spec = parse_source("rtsp://viewer:@cam/x")
    assert (spec.username, spec.password) == ("viewer", None)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("admin", "s3cr3t-pw"),
        ("admin", "p@ss:w/rd?#&="),
        ("us er", "pa ss"),
        ("ädmin", "pässwörd"),
        ("admin", "%41%"),
        ("a:b", "c@d"),
    ],
)
def test_url_with_credentials_round_trips(username: str, password: str) -> None:
    spec = parse_source(DAHUA, username, password)
    full = spec.url_with_credentials()
    assert full.startswith("rtsp://") and full.endswith("/cam/realmonitor?channel=1&subtype=0")
    again = parse_source(full)
    assert (again.username, again.password) == (username, password)
    assert again.url == DAHUA


def test_url_with_credentials_without_credentials_is_the_url() -> None:
    spec = parse_source("rtsp://cam/x")
    assert spec.url_with_credentials() == "rtsp://cam/x"


def test_url_with_credentials_keeps_the_port() -> None:
    spec = parse_source("rtsp://cam:8554/x", "u", "p")
    assert spec.url_with_credentials() == "rtsp://u:p@cam:8554/x"


def test_explicit_credentials_override_the_ones_in_the_url() -> None:
    spec = parse_source("rtsp://old:old-pw@cam/x", "new", "new-pw")
    assert (spec.username, spec.password) == ("new", "new-pw")
    assert spec.url == "rtsp://cam/x"
    assert "old" not in spec.url_with_credentials()


def test_explicit_credentials_for_a_clean_url() -> None:
    spec = parse_source("rtsp://cam/x", "viewer", "s3cr3t-pw")
    assert spec.url == "rtsp://cam/x"
    assert (spec.username, spec.password) == ("viewer", "s3cr3t-pw")


def test_sim_url_does_not_keep_credentials() -> None:
    spec = parse_source("sim://viewer:s3cr3t-pw@camera?fps=5")
    assert "s3cr3t-pw" not in spec.url


# ------------------------------------------------------------------------- redact


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "cannot open rtsp://user:pass@cam.example/stream1: refused",
            "cannot open rtsp://***@cam.example/stream1: refused",
        ),
        ("rtsp://admin:s3cr3t-pw@192.0.2.10:554/s", "rtsp://***@192.0.2.10:554/s"),
        ("rtsp://viewer@cam/x", "rtsp://***@cam/x"),
        ("http://u:p%40ss@cam/x", "http://***@cam/x"),
        ("a rtsp://a:b@h1/x and rtmp://c:d@h2/y", "a rtsp://***@h1/x and rtmp://***@h2/y"),
        ("no url here", "no url here"),
        ("rtsp://cam/x", "rtsp://cam/x"),
        ("rtsp://cam/x?next=a@b", "rtsp://cam/x?next=a@b"),
        ("user@example.com wrote", "user@example.com wrote"),
    ],
)
def test_redact(message: str, expected: str) -> None:
    assert redact(message) == expected


def test_redact_removes_the_password_of_a_full_url() -> None:
    spec = parse_source(DAHUA, "admin", "s3cr3t-pw")
    message = f"Connection to {spec.url_with_credentials()} failed"
    redacted = redact(message)
    assert "s3cr3t-pw" not in redacted
    assert "admin" not in redacted
    assert "192.168.1.108:554/cam/realmonitor" in redacted


def test_redact_a_password_containing_a_raw_at_sign() -> None:
    url = "rtsp://admin:p@ss-word@cam/x"
    assert parse_source(url).password == "p@ss-word"
    assert "ss-word" not in redact(f"cannot open {url}")
