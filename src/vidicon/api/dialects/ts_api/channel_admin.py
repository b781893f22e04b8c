"""TS-API ``POST /api/channel`` (add channels) and ``DELETE /api/channel/{ids|all}``.

Both need the Settings right (403 otherwise). The body of ``POST`` is a JSON
array of channels: an RTSP (or other network) ``source`` with ``uid``,
``password`` and ``tcp``; an ONVIF camera adds ``device.url``
(``onvif://host:port``); a video file is a path inside the server's media
directory (``playback``: ``once`` or ``repeat``). The answer's ``status.code``
is the spec's: 0, -1 channel number in use, -2 no ``source``, -3 no
``device.url``, -4 too many channels, -5 only some added, -6 none added (a
single reason shared by every failure is reported as that reason's code).
Deleting answers 0, -7 no channel given, -8 no such channel, -9 only some
deleted, -10 none deleted. Sources are answered without credentials, and
failed items carry ``code``, ``message`` and ``detail`` of their own.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import PureWindowsPath
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from vidicon.api.dialects.ts_api.lang import json_response, request_language, text
from vidicon.api.native.security import AppDep, CurrentUser, client_address
from vidicon.app import Vidicon
from vidicon.base.errors import Conflict, InvalidInput, NotFound
from vidicon.core.channel import ChannelSettings, DeviceSettings, StreamSettings
from vidicon.core.rights import Right
from vidicon.core.sources import ALLOWED_SCHEMES, SourceError, parse_source, redact
from vidicon.services.audit import Actor
from vidicon.services.auth import User
from vidicon.services.channels import MAX_CHANNELS

log = logging.getLogger(__name__)
router = APIRouter(tags=["ts-api"])
MAX_BODY = 1 << 20

MESSAGES: dict[str, dict[int, str]] = {
    "en-US": {
        0: "Channels were added successfully.", -1: "The channel number is already in use.",
        -2: "The source item is missing.", -3: "The device url item is missing.",
        -4: "The request exceeds the maximum number of channels.",
        -5: "Only some channels have been added.", -6: "Channels cannot be added.",
        100: "Channels were deleted successfully.", -7: "No channel number was specified.",
        -8: "The specified channel does not exist.", -9: "Only some channels have been deleted.",
        -10: "Channels cannot be deleted.",
    },
    "ko-KR": {
        0: "채널이 추가되었습니다.", -1: "채널 번호가 이미 사용 중입니다.",
        -2: "source 항목이 없습니다.", -3: "device 항목에 url이 없습니다.",
        -4: "최대 채널 수를 초과했습니다.", -5: "일부 채널만 추가되었습니다.",
        -6: "채널을 추가할 수 없습니다.", 100: "채널이 삭제되었습니다.",
        -7: "삭제할 채널 번호가 지정되지 않았습니다.", -8: "지정한 채널이 없습니다.",
        -9: "일부 채널만 삭제되었습니다.", -10: "채널을 삭제할 수 없습니다.",
    },
    "es-ES": {
        0: "Los canales se agregaron correctamente.", -1: "El número de canal ya está en uso.",
        -2: "Falta el elemento source.", -3: "Falta la url del elemento device.",
        -4: "La solicitud supera el número máximo de canales.",
        -5: "Solo se agregaron algunos canales.", -6: "No se pueden agregar los canales.",
        100: "Los canales se eliminaron correctamente.",
        -7: "No se especificó ningún número de canal.", -8: "El canal especificado no existe.",
        -9: "Solo se eliminaron algunos canales.", -10: "No se pueden eliminar los canales.",
    },
    "zh-CN": {
        0: "通道已成功添加。", -1: "通道号已被使用。", -2: "缺少 source 项。",
        -3: "device 项缺少 url。", -4: "超过最大通道数。", -5: "仅添加了部分通道。",
        -6: "无法添加通道。", 100: "通道已成功删除。", -7: "未指定要删除的通道号。",
        -8: "指定的通道不存在。", -9: "仅删除了部分通道。", -10: "无法删除通道。",
    },
    "zh-TW": {
        0: "通道已成功新增。", -1: "通道號碼已被使用。", -2: "缺少 source 項目。",
        -3: "device 項目缺少 url。", -4: "超過最大通道數。", -5: "僅新增了部分通道。",
        -6: "無法新增通道。", 100: "通道已成功刪除。", -7: "未指定要刪除的通道號碼。",
        -8: "指定的通道不存在。", -9: "僅刪除了部分通道。", -10: "無法刪除通道。",
    },
}  # fmt: skip
DELETED = 100  # the catalog key of "deleted successfully" (code 0 of DELETE)


class ItemFailed(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _status(request: Request, code: int, key: int | None = None) -> dict[str, Any]:
    lang = request_language(request)
    return {"code": code, "message": text(MESSAGES, code if key is None else key, lang)}


def _overall(failed: list[int], done: int, some: int, none: int) -> int:
    if not failed:
        return 0
    if done:
        return some
    return failed[0] if len(set(failed)) == 1 else none


# --- adding ------------------------------------------------------------------


def _public_source(raw: Any) -> str:
    """The source as it may be shown: without credentials."""
    if not isinstance(raw, str):
        return ""
    try:
        return parse_source(raw).url
    except SourceError:
        return redact(raw)[:2048]


def _file_source(app: Vidicon, path: str, once: bool) -> str:
    """A video file path as a ``media:`` source; it must be inside the media directory."""
    media_dir = app.config.storage.media_dir
    if PureWindowsPath(path).drive or "\\" in path:
        raise ItemFailed(-6, "Windows paths are not available on this server")
    if media_dir is None:
        raise ItemFailed(-6, "this server has no media directory for video files")
    root = os.path.realpath(media_dir)
    full = os.path.realpath(os.path.join(root, path))
    if os.path.commonpath([root, full]) != root or full == root:
        raise ItemFailed(-6, "video files must be inside the server's media directory")
    relative = os.path.relpath(full, root)
    return f"media:{relative}" + ("?loop=0" if once else "")


def _settings(app: Vidicon, item: dict[str, Any]) -> tuple[ChannelSettings, str]:
    """The channel an item describes, and its TS-API type."""
    source = item.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ItemFailed(-2, "source is required")
    device = item.get("device")
    if device is not None and (not isinstance(device, dict) or not device.get("url")):
        raise ItemFailed(-3, "device needs a url (onvif://host:port)")
    scheme = source.partition(":")[0].lower()
    playback = item.get("playback", "repeat")
    if playback not in {"once", "repeat"}:
        raise ItemFailed(-6, "playback must be once or repeat")
    if "://" in source and scheme not in ALLOWED_SCHEMES:
        raise ItemFailed(-6, f"unsupported source scheme {scheme[:16]!r}")
    is_file = scheme not in ALLOWED_SCHEMES or len(scheme) == 1  # C:\\... is a drive
    url = _file_source(app, source, playback == "once") if is_file else source
    tcp = item.get("tcp", True)
    name = item.get("name") or (device or {}).get("name")
    if not name:
        chid = item.get("chid")
        name = f"CH{chid}" if isinstance(chid, int) else os.path.basename(source) or "Camera"
    try:
        settings = ChannelSettings(
            name=name,
            main=StreamSettings(
                url=url,
                username=item.get("uid"),
                password=item.get("password"),
                transport="tcp" if tcp is not False else "udp",
            ),
            device=DeviceSettings(url=device["url"], name=device.get("name")) if device else None,
        )
    except ValidationError as exc:
        detail = "; ".join(str(e.get("msg", "")) for e in exc.errors())  # never the input
        raise ItemFailed(-6, detail[:500]) from None
    kind = "onvif" if device else parse_source(url).kind
    return settings, kind


def _added(
    item: dict[str, Any], channel_id: int, settings: ChannelSettings, kind: str
) -> dict[str, Any]:
    out: dict[str, Any] = {"chid": channel_id, "name": settings.name, "type": kind}
    if settings.device is not None:
        out["device"] = settings.device.url
    out["source"] = item["source"] if kind == "file" else parse_source(settings.main.url).url
    if kind == "file":
        out["playback"] = item.get("playback", "repeat")
    else:
        out["tcp"] = settings.main.transport == "tcp"
    if kind == "onvif":
        out["substream"] = bool(item.get("substream", True))
    return out


async def _add_one(app: Vidicon, actor: Actor, item: Any, used: set[int]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ItemFailed(-6, "each channel must be a JSON object")
    chid = item.get("chid")
    if chid is not None and (isinstance(chid, bool) or not isinstance(chid, int)):
        raise ItemFailed(-6, "chid must be a channel number")
    settings, kind = _settings(app, item)
    if chid is not None and chid in used:
        raise ItemFailed(-1, f"channel {chid} is in use")
    if len(used) >= MAX_CHANNELS:
        raise ItemFailed(-4, f"at most {MAX_CHANNELS} channels")
    try:
        view = await app.channel_changes.create(actor, settings, chid)
    except Conflict as exc:
        raise ItemFailed(-1 if chid is not None else -4, str(exc)) from None
    except InvalidInput as exc:
        raise ItemFailed(-6, str(exc)) from None
    used.add(view.id)
    return _added(item, view.id, settings, kind)


@router.post("/api/channel", response_class=Response)
async def add_channels(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """Add the channels of the JSON array in the body."""
    user.require(Right.SETTINGS)
    raw = await request.body()
    try:
        if len(raw) > MAX_BODY:
            raise ValueError("the request body is larger than 1 MiB")
        items = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        detail = str(exc) if len(raw) > MAX_BODY else f"the body is not JSON: {exc}"
        body = {"status": {**_status(request, -6), "detail": detail}}
        return json_response(request, body, 400)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items or len(items) > MAX_CHANNELS:
        body = {"status": {**_status(request, -6), "detail": "give a JSON array of channels"}}
        return json_response(request, body, 400)
    used = set(await app.channels.ids())
    actor = Actor(user, client_address(request))
    added: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for item in items:
        try:
            added.append(await _add_one(app, actor, item, used))
        except ItemFailed as exc:
            source = _public_source(item.get("source")) if isinstance(item, dict) else ""
            why = _status(request, exc.code)
            failed.append({"source": source, **why, "detail": str(exc)})
    code = _overall([f["code"] for f in failed], len(added), -5, -6)
    out: dict[str, Any] = {"status": _status(request, code)}
    if added:
        out["added"] = added
    if failed:
        out["failed"] = failed
    return json_response(request, out)


# --- deleting ----------------------------------------------------------------


async def _delete(request: Request, app: Vidicon, user: User, ids: str) -> Response:
    user.require(Right.SETTINGS)
    existing = await app.channels.ids()
    raw = ids.strip()
    if raw.lower() == "all":
        wanted = [c for c in existing if user.can_view(c)]
    else:
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        if not parts or len(parts) > MAX_CHANNELS or not all(p.isdecimal() for p in parts):
            body = {"status": _status(request, -7)}
            return json_response(request, body)
        wanted = list(dict.fromkeys(int(p) for p in parts))
    deleted: list[int] = []
    failed: list[int] = []
    reasons: list[int] = []
    for channel_id in wanted:
        if channel_id not in existing or not user.can_view(channel_id):
            failed.append(channel_id)
            reasons.append(-8)
            continue
        try:
            await app.channel_changes.delete(Actor(user, client_address(request)), channel_id)
        except NotFound:
            failed.append(channel_id)
            reasons.append(-8)
            continue
        except Exception:  # the row is kept; the client is told this one failed
            log.exception("channel %d could not be deleted", channel_id)
            failed.append(channel_id)
            reasons.append(-10)
            continue
        deleted.append(channel_id)
    code = _overall(reasons, len(deleted), -9, -10)
    out: dict[str, Any] = {"status": _status(request, code, DELETED if code == 0 else None)}
    if deleted or not failed:
        out["deleted"] = deleted
    if failed:
        out["failed"] = failed
    return json_response(request, out)


@router.delete("/api/channel/{ids}", response_class=Response)
async def delete_channels(request: Request, app: AppDep, user: CurrentUser, ids: str) -> Response:
    """``1``, ``1,2,3`` or ``all``."""
    return await _delete(request, app, user, ids)


@router.delete("/api/channel", response_class=Response)
@router.delete("/api/channel/", response_class=Response)
async def delete_nothing(request: Request, app: AppDep, user: CurrentUser) -> Response:
    """No channel named: -7."""
    return await _delete(request, app, user, "")
