"""TS-API event searches: ``/api/find?what=eventLog|carNo|similarCarNo|object``
and ``/api/searchFace`` (a photo posted; :mod:`vidicon.services.face_search`),
plus the spreadsheet files of ``carNo&export=true``.

Translation only: parameters become an :class:`EventQuery`, the event
search service applies the rights and channel limits, and each event
becomes the spec's item. Object attributes follow the spec's lists
(``objectAttr``); the search filters are in :mod:`.object_filters`.
"""

from __future__ import annotations

import dataclasses
from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from vidicon.api.dialects.ts_api import event_types
from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.lang import ENGLISH, json_response, language, text
from vidicon.api.dialects.ts_api.object_filters import OBJECT_ATTRIBUTES, object_query
from vidicon.api.native.security import AppDep, CurrentUser
from vidicon.app import Vidicon
from vidicon.base.errors import InvalidInput
from vidicon.core.events import Event, EventPage, EventQuery
from vidicon.core.zone import server_zone
from vidicon.services.auth import User
from vidicon.services.face_search import DEFAULT_THRESHOLD, MAX_PICTURE_BYTES, PICTURE_TYPES

router = APIRouter(tags=["ts-api"])
WHATS = frozenset({"eventLog", "carNo", "similarCarNo", "object"})
DEFAULT_COUNT = 50
MAX_COUNT = 10_000
EXPORT_MAX = 100_000  # plate log rows in one export
ROWS_PER_FILE = 65_535  # as the spec's .xls files held
_PAGE = 1000
_DOWNLOAD = "/download/carNo"
_EXPORT_HEADER: dict[str, dict[int, str]] = {
    ENGLISH: {0: "No.", 1: "Plate number", 2: "First recognized", 3: "Last recognized",
              4: "Source code", 5: "Source name", 6: "Direction", 7: "Score", 8: "Channels"},
    "ko-KR": {0: "번호", 1: "차량 번호", 2: "최초 인식", 3: "최종 인식", 4: "장치 코드",
              5: "장치 이름", 6: "방향", 7: "인식 점수", 8: "채널"},
    "es-ES": {0: "N.º", 1: "Matrícula", 2: "Primer reconocimiento", 3: "Último reconocimiento",
              4: "Código de origen", 5: "Nombre de origen", 6: "Dirección", 7: "Puntuación",
              8: "Canales"},
}  # fmt: skip
_PICTURE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_EXPORT_TITLE = {ENGLISH: "Car numbers", "ko-KR": "차량 번호", "es-ES": "Matrículas"}


def _bad(exc: InvalidInput) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc))


async def answer(request: Request, app: Vidicon, user: User, what: str) -> Response:
    """The answer to ``/api/find?what=`` one of :data:`WHATS` (JSON, with ``indent``)."""
    try:
        return json_response(request, await _answer(request, app, user, what))
    except InvalidInput as exc:
        raise _bad(exc) from None


async def _answer(request: Request, app: Vidicon, user: User, what: str) -> Any:
    params = request.query_params
    if what == "similarCarNo":
        keyword = params.get("keyword") or ""
        count = _count(params.get("maxCount"))
        return await app.event_search.similar_plates(user, keyword, count)
    query = _common(params)
    lang = language(params.get("lang"))
    if what == "eventLog":
        query = _with_types(query, params.get("type"))
        page = await app.event_search.search(user, query)
        return _page(page, [event_types.entry(e, lang, server_zone()) for e in page.events])
    if what == "object":
        page = await app.event_search.objects(user, object_query(query, params))
        return _page(page, [_object(request, e) for e in page.events])
    part = params.get("keyword")
    if part and part.strip():
        query = _replace(query, label_contains=part.strip()[:64])
    src = params.get("src")
    if src:
        ids = [tr.parse_int(part, "src", 1, 2**31) or 0 for part in src.split(",")[:256]]
        source = await app.event_search.source_filter(user, ids)
        query = _replace(query, either=source.either)
    if tr.flag(params.get("export")):
        return await _export(request, app, user, query, lang)
    page = await app.event_search.plates(user, query)
    return _page(page, [_plate(request, e) for e in page.events])


# --- parameters -------------------------------------------------------------------


def _count(raw: str | None) -> int:
    return tr.parse_int(raw, "maxCount", 1, MAX_COUNT) or DEFAULT_COUNT


def _common(params: Any) -> EventQuery:
    """timeBegin, timeEnd (inclusive), at, maxCount, sort, ch."""
    zone = server_zone()
    begin = params.get("timeBegin")
    end = params.get("timeEnd")
    sort = (params.get("sort") or "desc").strip().lower()
    if sort not in {"asc", "desc"}:
        raise InvalidInput("sort must be asc or desc", "sort")
    channels = tr.parse_channels(params.get("ch"))
    return EventQuery(
        begin_us=tr.parse_time(begin, zone, "timeBegin") if begin else None,
        end_us=tr.parse_time(end, zone, "timeEnd") + 1 if end else None,
        channels=frozenset(channels) if channels is not None else None,
        offset=tr.parse_int(params.get("at"), "at", 0, 2**31) or 0,
        limit=_count(params.get("maxCount")),
        ascending=sort == "asc",
    )


def _with_types(query: EventQuery, raw: str | None) -> EventQuery:
    if raw is None or not raw.strip():
        return query
    kinds: set[Any] = set()
    for part in raw.split(",")[:16]:
        number = tr.parse_int(part, "type", 0, 1000)
        found = event_types.kinds_of(number if number is not None else -1)
        if not found:
            raise InvalidInput(f"type must be one of {event_types.type_ids()}", "type")
        kinds |= found
    return _replace(query, kinds=frozenset(kinds))


def _replace(query: EventQuery, **changes: Any) -> EventQuery:
    return dataclasses.replace(query, **changes)


# --- answers ----------------------------------------------------------------------


def _page(page: EventPage, data: list[Any]) -> dict[str, Any]:
    return {"totalCount": page.total, "at": page.offset, "data": data}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def image_url(request: Request, event: Event, number: int) -> str:
    return f"{_base(request)}/v1/events/{event.id}/images/{number}"


def _watch(request: Request, channel_id: int, at_us: int, zone: tzinfo) -> str:
    when = quote(tr.format_time(at_us, zone), safe="")
    return f"{_base(request)}/watch?ch={channel_id}&when={when}"


def _linked(event: Event) -> list[int]:
    """The event's channel and its linked ones (the service left only those
    the user may see)."""
    raw = event.attributes.get("linkedChannels")
    channels = [c for c in raw if isinstance(c, int)] if isinstance(raw, list) else []
    if event.channel_id is not None and event.channel_id not in channels:
        channels.insert(0, event.channel_id)
    return channels


def _source(event: Event) -> tuple[str, str]:
    code = event.attributes.get("deviceCode")
    if not isinstance(code, str) or not code:
        code = f"CH{event.channel_id}" if event.channel_id is not None else ""
    name = event.attributes.get("deviceName")
    return code, name if isinstance(name, str) and name else code


def _plate(request: Request, event: Event) -> dict[str, Any]:
    zone = server_zone()
    end = event.end_us if event.end_us is not None else event.begin_us
    code, name = _source(event)
    item: dict[str, Any] = {"id": event.id, "plateNo": event.label or ""}
    score = event.attributes.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool):
        item["score"] = score
    roi = event.attributes.get("roi")
    if isinstance(roi, dict):
        item["roi"] = roi
    if event.images:
        item["image"] = [image_url(request, event, n) for n in range(len(event.images))]
    item["timeRange"] = [tr.format_time(event.begin_us, zone), tr.format_time(end, zone)]
    item["srcCode"] = code
    item["srcName"] = quote(name, safe="-_.~")
    direction = event.attributes.get("direction")
    if direction in ("entry", "exit"):
        item["direction"] = direction
    item["vod"] = [
        {"chid": c, "videoSrc": _watch(request, c, event.begin_us, zone)} for c in _linked(event)
    ]
    return item


def _object(request: Request, event: Event) -> dict[str, Any]:
    kind = event.label or ""
    attrs = event.attributes
    item: dict[str, Any] = {
        "timestamp": tr.format_time(event.begin_us, server_zone()),
        "chid": event.channel_id,
        "objId": attrs.get("objectId", event.id),
    }
    if isinstance(attrs.get("parentId"), int):
        item["parentId"] = attrs["parentId"]
    item["type"] = kind
    if isinstance(attrs.get("likelihood"), int | float):
        item["likelihood"] = attrs["likelihood"]
    known = OBJECT_ATTRIBUTES.get(kind, {})
    item["attributes"] = {k: v for k, v in attrs.items() if k in known}
    if event.images:
        item["image"] = image_url(request, event, 0)
    return item


# --- export -----------------------------------------------------------------------


async def _export(
    request: Request, app: Vidicon, user: User, query: EventQuery, lang: str
) -> list[str]:
    zone = server_zone()
    rows: list[list[Any]] = []
    offset = 0
    while True:
        page = await app.event_search.plates(user, _replace(query, offset=offset, limit=_PAGE))
        if page.total > EXPORT_MAX:
            raise InvalidInput(f"at most {EXPORT_MAX} plates can be exported; narrow the search")
        for event in page.events:
            code, name = _source(event)
            end = event.end_us if event.end_us is not None else event.begin_us
            rows.append([
                len(rows) + 1, event.label or "", tr.format_time(event.begin_us, zone),
                tr.format_time(end, zone), code, name,
                str(event.attributes.get("direction") or ""),
                _number(event.attributes.get("score")),
                ",".join(str(c) for c in _linked(event)),
            ])  # fmt: skip
        offset += len(page.events)
        if not page.events or offset >= page.total:
            break
    first = query.begin_us
    if first is None and rows:
        first = min(tr.parse_time(str(r[2]), zone) for r in rows)
    stem = tr.format_time(first, zone)[:19].replace(":", ".") if first is not None else "carNo"
    header = [text(_EXPORT_HEADER, n, lang) for n in range(9)]
    title = _EXPORT_TITLE.get(lang, _EXPORT_TITLE[ENGLISH])
    done = await app.table_exports.create(user, stem, title, header, rows, ROWS_PER_FILE)
    base = _base(request)
    return [f"{base}{_DOWNLOAD}/{done.token}/{quote(name)}" for name in done.names]


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


@router.get(_DOWNLOAD + "/{token}/{name}", response_class=FileResponse)
async def download(app: AppDep, user: CurrentUser, token: str, name: str) -> FileResponse:
    """A spreadsheet of ``/api/find?what=carNo&export=true`` (its owner, or an admin)."""
    path = app.table_exports.file(user, token, name)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return FileResponse(path, media_type=media, filename=name)


@router.get("/api/searchFace")
@router.post("/api/searchFace")
async def search_face(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """Faces that resemble the one on the posted photo (JPEG or PNG body),
    best first: the object search's items with ``similarity`` (percent)."""
    app.event_search.check_objects(user)
    params = request.query_params
    try:
        query = _common(params)
        threshold = tr.parse_int(params.get("threshold"), "threshold", 1, 100)
    except InvalidInput as exc:
        raise _bad(exc) from None
    if request.method != "POST":
        raise HTTPException(400, "post the photo of a face (image/jpeg or image/png) as the body")
    kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    kind = _PICTURE_ALIASES.get(kind, kind)
    if kind not in PICTURE_TYPES:
        raise HTTPException(415, f"the photo must be one of {', '.join(PICTURE_TYPES)}")
    picture = await _body(request)
    if not picture:
        raise HTTPException(400, "post the photo of a face as the body")
    try:
        found = await app.face_search.find(
            user, query, picture, kind, DEFAULT_THRESHOLD if threshold is None else threshold
        )
    except InvalidInput as exc:
        raise _bad(exc) from None
    data = [{**_object(request, m.event), "similarity": m.similarity} for m in found.matches]
    return json_response(request, {"totalCount": found.total, "at": found.offset, "data": data})


async def _body(request: Request) -> bytes:
    """The request body, refused (413) past :data:`MAX_PICTURE_BYTES`."""
    declared = request.headers.get("content-length") or ""
    too_big = HTTPException(413, f"the photo may be at most {MAX_PICTURE_BYTES // 2**20} MiB")
    if declared.isdecimal() and int(declared) > MAX_PICTURE_BYTES:
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_PICTURE_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)
