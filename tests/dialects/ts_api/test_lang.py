"""``lang`` and ``indent`` (api/dialects/ts_api/lang.py)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from vidicon.api.dialects.ts_api.lang import json_response, language, server_language, text
from vidicon.base.errors import InvalidInput

CATALOG = {"en-US": {"hello": "Hello", "bye": "Bye"}, "es-ES": {"hello": "Hola"}}


def request(query: str) -> Request:
    return Request({"type": "http", "query_string": query.encode(), "headers": []})


def test_language_matches_tags_then_primary_language_then_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VIDICON_LANG", raising=False)
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    assert server_language() == "ko-KR"
    assert language("es-ES") == "es-ES"
    assert language("es-MX") == "es-ES"
    assert language("zh-Hant") == "zh-TW"
    assert language("ar-AE") == "ko-KR"  # not translated: the server's language
    assert language(None) == "ko-KR"
    monkeypatch.setenv("VIDICON_LANG", "es")
    assert language("") == "es-ES"
    monkeypatch.setenv("VIDICON_LANG", "xx")
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert language(None) == "en-US"


def test_text_falls_back_to_english() -> None:
    assert text(CATALOG, "hello", "es-ES") == "Hola"
    assert text(CATALOG, "bye", "es-ES") == "Bye"
    assert text(CATALOG, "hello", "ko-KR") == "Hello"


def test_indent_pretty_prints_and_rejects_nonsense() -> None:
    assert json_response(request(""), {"a": [1]}).body == b'{"a": [1]}'
    assert json_response(request("indent=2"), {"a": 1}).body == b'{\n  "a": 1\n}'
    assert json_response(request("indent=0"), {"a": 1}).body == b'{"a": 1}'
    for bad in ("indent=-1", "indent=x", "indent=99"):
        with pytest.raises(InvalidInput):
            json_response(request(bad), {})
