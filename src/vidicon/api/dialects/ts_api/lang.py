"""``lang`` and ``indent``, the two parameters every TS-API request may carry.

``lang`` picks the language of names and messages: an exact tag, else the
same primary language (``es`` -> ``es-ES``; Chinese by script/region), else
the server's language (``VIDICON_LANG``, else the POSIX locale in ``LANG``),
else US English. Each module keeps its own catalog of texts and looks them up
with :func:`text`, which falls back to US English for a missing entry.

``indent`` pretty-prints JSON answers with that many spaces (0-8).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi.responses import Response
from starlette.requests import HTTPConnection

from vidicon.base.errors import InvalidInput

ENGLISH = "en-US"
LANGUAGES: tuple[str, ...] = (ENGLISH, "ko-KR", "es-ES", "zh-CN", "zh-TW")

K = TypeVar("K")


def _match(tag: str) -> str | None:
    wanted = tag.strip().split(".")[0].replace("_", "-").lower()
    if not wanted:
        return None
    for code in LANGUAGES:
        if code.lower() == wanted:
            return code
    primary = wanted.split("-")[0]
    if primary == "zh":
        return "zh-TW" if any(t in wanted for t in ("tw", "hk", "hant")) else "zh-CN"
    return next((c for c in LANGUAGES if c.split("-")[0].lower() == primary), None)


def server_language() -> str:
    """The server's language: ``VIDICON_LANG``, else ``LANG``, else US English."""
    for variable in ("VIDICON_LANG", "LANG"):
        found = _match(os.environ.get(variable, ""))
        if found:
            return found
    return ENGLISH


def language(tag: str | None) -> str:
    """The language to answer in for a ``lang`` parameter (None: the server's)."""
    return (_match(tag) if tag else None) or server_language()


def request_language(conn: HTTPConnection) -> str:
    return language(conn.query_params.get("lang"))


def text(catalog: Mapping[str, Mapping[K, str]], key: K, lang: str) -> str:
    """``key`` in ``lang`` from ``catalog``, falling back to US English."""
    found = catalog.get(lang, {}).get(key)
    return found if found is not None else catalog[ENGLISH][key]


def indent_of(conn: HTTPConnection) -> int | None:
    raw = conn.query_params.get("indent")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > 8:
        raise InvalidInput("indent must be a number of spaces from 0 to 8", "indent")
    return int(raw)


def dumps(data: Any, indent: int | None = None) -> str:
    return json.dumps(data, ensure_ascii=False, indent=indent or None)


def json_response(conn: HTTPConnection, data: Any, status_code: int = 200) -> Response:
    """A JSON answer honouring ``indent``."""
    return Response(
        dumps(data, indent_of(conn)),
        status_code=status_code,
        media_type="application/json; charset=utf-8",
    )
