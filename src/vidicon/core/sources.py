"""Camera source URLs: parsing, validation and redaction.

Only allow-listed schemes are accepted. FFmpeg understands many "protocols"
that read local files or run other protocols (``file:``, ``concat:``,
``subfile:``, ``pipe:``, ``data:``, ``tee:`` ...); none of those can reach the
demuxer. Local files are a source of their own (``media:`` paths relative to
the configured media directory). Credentials are split off the URL at once and
kept apart; the URL that is stored, logged or returned has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "http", "https"})
LOCAL_SCHEMES = frozenset({"media", "sim"})
ALLOWED_SCHEMES = NETWORK_SCHEMES | LOCAL_SCHEMES
MAX_URL_LENGTH = 2048
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f`$;|<>\\\"'{}]")


class SourceError(ValueError):
    """The URL is not an acceptable camera source."""


@dataclass(frozen=True, slots=True)
class SourceSpec:
    scheme: str
    url: str  # without credentials
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def kind(self) -> str:
        if self.scheme in {"rtsp", "rtsps"}:
            return "rtsp"
        if self.scheme in {"rtmp", "rtmps"}:
            return "rtmp"
        if self.scheme in {"http", "https"}:
            return "http"
        return "file" if self.scheme == "media" else "simulated"

    def url_with_credentials(self) -> str:
        """The URL to hand to the demuxer. Never log or return it."""
        if not self.username:
            return self.url
        parts = urlsplit(self.url)
        auth = quote(self.username, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return urlunsplit(parts._replace(netloc=f"{auth}@{parts.netloc}"))

    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.url).query).items()}


def parse_source(url: str, username: str | None = None, password: str | None = None) -> SourceSpec:
    """Validate a camera URL; explicit credentials win over ones in the URL."""
    if not isinstance(url, str) or not url:
        raise SourceError("url is required")
    if len(url) > MAX_URL_LENGTH:
        raise SourceError(f"url is longer than {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARS.search(url):
        raise SourceError("url contains spaces, quotes or shell metacharacters")
    scheme, sep, _ = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ALLOWED_SCHEMES:
        raise SourceError(
            f"unsupported scheme {scheme[:16]!r}; allowed: {', '.join(sorted(ALLOWED_SCHEMES))}"
        )
    parts = urlsplit(url)
    if scheme == "media":
        return _parse_media(parts.path or parts.netloc, url)
    if scheme == "sim":
        sim_host = parts.hostname or ""  # any user:password@ is dropped
        return SourceSpec("sim", urlunsplit(("sim", sim_host, parts.path, parts.query, "")))
    host = parts.hostname
    try:
        port = parts.port
    except ValueError as exc:
        raise SourceError("invalid port") from exc
    if not host or not _HOST_RE.match(host if ":" not in host else f"[{host}]"):
        raise SourceError("url has no valid host")
    url_user = unquote(parts.username) if parts.username else None
    url_password = unquote(parts.password) if parts.password else None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    clean = urlunsplit((scheme, netloc, parts.path, parts.query, ""))
    return SourceSpec(
        scheme=scheme,
        url=clean,
        username=username if username is not None else url_user,
        password=password if password is not None else url_password,
    )


def _parse_media(path: str, url: str) -> SourceSpec:
    if not path or path.startswith("/") or "\x00" in path:
        raise SourceError("media: takes a path relative to the media directory")
    parts = urlsplit(url)
    return SourceSpec(scheme="media", url=urlunsplit(("media", "", path, parts.query, "")))


def redact(text: str) -> str:
    """Remove any ``user:password@`` from URLs inside a message."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s]*@", r"\1***@", text)
