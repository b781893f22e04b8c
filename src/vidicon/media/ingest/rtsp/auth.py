"""HTTP Basic and Digest (RFC 2617) authentication for RTSP requests.

Credentials never appear in exceptions, ``repr`` or logs: only the realm and
scheme are ever reported.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"\s*,?\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)"  # a token
    r'(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*))?'  # optionally =value or ="quoted"
)


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # "basic" | "digest" (lower case)
    params: dict[str, str] = field(default_factory=dict)  # keys lower case, values unquoted

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_challenges(header: str) -> list[Challenge]:
    """Parse one WWW-Authenticate value, which may hold several challenges."""
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(header):
        match = _TOKEN.match(header, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        name, value = match.group(1), match.group(2)
        if value is None:  # a bare token starts a new challenge (auth-scheme)
            challenges.append(Challenge(name.lower(), {}))
        elif challenges:
            challenges[-1].params[name.lower()] = _unquote(value)
    return challenges


def _digest_usable(challenge: Challenge) -> bool:
    algorithm = challenge.params.get("algorithm", "MD5").upper()
    return (
        challenge.scheme == "digest"
        and "nonce" in challenge.params
        and algorithm in ("MD5", "MD5-SESS")
    )


def select_challenge(headers: list[str]) -> Challenge | None:
    """The challenge to answer from all WWW-Authenticate values: Digest before Basic."""
    found = [c for value in headers for c in parse_challenges(value)]
    digest = next((c for c in found if _digest_usable(c)), None)
    if digest is not None:
        return digest
    return next((c for c in found if c.scheme == "basic"), None)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def digest_response(
    username: str,
    password: str,
    realm: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str = "00000001",
    cnonce: str = "",
    algorithm: str = "MD5",
) -> str:
    """The ``response`` value of RFC 2617 section 3.2.2.1 (qop ``auth`` or none)."""
    ha1 = _md5(f"{username}:{realm}:{password}")
    if algorithm.upper() == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{nonce}:{cnonce}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Authenticator:
    """Builds the Authorization header for each request after a challenge."""

    __slots__ = ("_challenge", "_nc", "_password", "_username")

    def __init__(self, username: str, password: str, challenge: Challenge) -> None:
        if challenge.scheme not in ("basic", "digest"):
            raise ValueError(f"unsupported authentication scheme {challenge.scheme!r}")
        self._username = username
        self._password = password
        self._challenge = challenge
        self._nc = 0

    def __repr__(self) -> str:
        return f"Authenticator({self._challenge.scheme}, realm={self._challenge.realm!r})"

    @property
    def scheme(self) -> str:
        return self._challenge.scheme

    def update(self, challenge: Challenge) -> None:
        """Answer a new challenge (e.g. a stale nonce) from now on."""
        if challenge.params.get("nonce") != self._challenge.params.get("nonce"):
            self._nc = 0
        self._challenge = challenge

    def header(self, method: str, uri: str) -> str:
        """The value of the Authorization header for ``method`` on ``uri``."""
        if self._challenge.scheme == "basic":
            token = base64.b64encode(f"{self._username}:{self._password}".encode()).decode()
            return "Basic " + token
        params = self._challenge.params
        realm, nonce = params.get("realm", ""), params["nonce"]
        algorithm = params.get("algorithm", "MD5")
        qops = [q.strip().lower() for q in params.get("qop", "").split(",")]
        qop = "auth" if "auth" in qops else None
        self._nc += 1
        nc = f"{self._nc:08x}"
        cnonce = secrets.token_hex(8)
        response = digest_response(
            self._username,
            self._password,
            realm,
            nonce,
            method,
            uri,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            algorithm=algorithm,
        )
        parts = [
            f"username={_quote(self._username)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(nonce)}",
            f"uri={_quote(uri)}",
            f"response={_quote(response)}",
        ]
        if "algorithm" in params:
            parts.append(f"algorithm={algorithm}")
        if "opaque" in params:
            parts.append(f"opaque={_quote(params['opaque'])}")
        if qop:
            parts += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(cnonce)}"]
        return "Digest " + ", ".join(parts)
