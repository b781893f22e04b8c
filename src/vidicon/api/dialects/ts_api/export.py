"""TS-API ``/wsapi/dataExport`` (exporting recorded video) and its download links.

Translation only: the query becomes an :class:`ExportRequest`, the export
service's stage events become the spec's JSON messages, the client's
``{"task": ..., "cmd": ...}`` messages become commands. The files are served
at ``/download/{task id}/{file name}`` with ``auth=``, HTTP Basic or the
session cookie; the spec's own example link, with ``&auth=...`` glued to
the path, works too.

Status codes: ``ready`` 0, -1 (no data), -2 (invalid parameters), -5 (no
storage space); ``end`` 0, -1001 (not enough space), -1003 (cancelled by the
user), -1004 (timeout), and Vidicon's -1002 (the footage was deleted during
the export) and -1000 (failed). Messages are in the language of ``lang``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
from contextlib import aclosing
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from starlette.datastructures import QueryParams

from vidicon.api.dialects.ts_api import translate as tr
from vidicon.api.dialects.ts_api.lang import language
from vidicon.api.native.security import authenticate, get_app, password_user
from vidicon.base.errors import Forbidden, InvalidInput, VidiconError
from vidicon.core.zone import server_zone
from vidicon.services.auth import User
from vidicon.services.export import ExportTask
from vidicon.services.export_events import (
    SUBTITLE_FORMATS,
    Begin,
    ChannelBegin,
    ChannelEnd,
    End,
    ExportEvent,
    ExportRefused,
    ExportRequest,
    FileBegin,
    FileEnd,
    FileWriting,
    Outcome,
    Ready,
    Refusal,
    TimeoutAlert,
)

log = logging.getLogger(__name__)

router = APIRouter(tags=["ts-api"])

SEND_TIMEOUT_S = 30.0  # a client that reads nothing for this long is dropped
_SIZE = re.compile(r"(\d{1,15}(?:\.\d{1,6})?)\s*(GB|MB|KB|B)?", re.IGNORECASE)
_SIZE_UNITS = {"GB": 1 << 30, "MB": 1 << 20, "KB": 1 << 10, "B": 1}
_INTERVAL = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s*(ms|s)?", re.IGNORECASE)

_READY_CODES = {Refusal.NO_DATA: -1, Refusal.INVALID: -2, Refusal.NO_SPACE: -5}
_END_CODES = {
    Outcome.DONE: 0,
    Outcome.FAILED: -1000,
    Outcome.SHUTDOWN: -1000,
    Outcome.NO_SPACE: -1001,
    Outcome.FOOTAGE_GONE: -1002,
    Outcome.CANCELED: -1003,
    Outcome.TIMEOUT: -1004,
}
_MESSAGES: dict[str, dict[int, str]] = {
    "en-US": {
        0: "Success",
        -1: "No data in the requested time range and channels",
        -2: "Invalid parameters",
        -5: "Out of storage space",
        -1000: "Export failed",
        -1001: "Not enough space to save",
        -1002: "The recorded data was deleted during the export",
        -1003: "Task canceled by user",
        -1004: "Task terminated by timeout",
    },
    "ko-KR": {
        0: "성공",
        -1: "요청한 시간 범위와 채널에 데이터가 없습니다",
        -2: "잘못된 매개변수",
        -5: "저장 공간이 부족합니다",
        -1000: "내보내기에 실패했습니다",
        -1001: "저장할 공간이 부족합니다",
        -1002: "내보내는 중에 녹화 데이터가 삭제되었습니다",
        -1003: "사용자가 작업을 취소했습니다",
        -1004: "시간 초과로 작업이 종료되었습니다",
    },
    "es-ES": {
        0: "Correcto",
        -1: "No hay datos en el intervalo de tiempo y los canales solicitados",
        -2: "Parámetros no válidos",
        -5: "Sin espacio de almacenamiento",
        -1000: "La exportación ha fallado",
        -1001: "No hay espacio suficiente para guardar",
        -1002: "Los datos grabados se eliminaron durante la exportación",
        -1003: "Tarea cancelada por el usuario",
        -1004: "Tarea terminada por tiempo de espera",
    },
    "zh-CN": {
        0: "成功",
        -1: "请求的时间范围和通道内没有数据",
        -2: "参数无效",
        -5: "存储空间不足",
        -1000: "导出失败",
        -1001: "没有足够的空间保存",
        -1002: "导出期间录像数据已被删除",
        -1003: "用户已取消任务",
        -1004: "任务因超时而终止",
    },
    "zh-TW": {
        0: "成功",
        -1: "請求的時間範圍和頻道內沒有資料",
        -2: "參數無效",
        -5: "儲存空間不足",
        -1000: "匯出失敗",
        -1001: "沒有足夠的空間儲存",
        -1002: "匯出期間錄影資料已被刪除",
        -1003: "使用者已取消工作",
        -1004: "工作因逾時而終止",
    },
}


# --- parameters ----------------------------------------------------------------------


def parse_size(text: str) -> int:
    """``mediaSize``: ``1GB``, ``700MB``, ``64KB``, ``1048576B`` or plain bytes (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidInput("mediaSize must be a size such as 500MB or 1GB", "mediaSize")
    value = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "B").upper()]
    return int(value)


def parse_interval(text: str) -> float:
    """``statusInterval``: ``1s``, ``500ms`` or plain seconds."""
    match = _INTERVAL.fullmatch(text.strip())
    if match is None:
        raise InvalidInput("statusInterval must be a time such as 1s or 500ms", "statusInterval")
    value = float(match.group(1))
    return value / 1000 if (match.group(2) or "s").lower() == "ms" else value


def parse_password(text: str) -> str | None:
    """``password``: base64 of the password (UTF-8); empty means none."""
    if not text.strip():
        return None
    try:
        padded = text.strip() + "=" * (-len(text.strip()) % 4)
        return base64.b64decode(padded, validate=True).decode("utf-8") or None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("password must be base64 (of UTF-8 text)", "password") from None


def parse_request(params: QueryParams, client: str) -> ExportRequest:
    zone = server_zone()
    begin = params.get("timeBegin")
    end = params.get("timeEnd")
    if not begin or not end:
        raise InvalidInput("timeBegin and timeEnd are required", "timeBegin")
    channels = tr.parse_channels(params.get("ch"))
    subtitle_text = (params.get("subtitleFormat") or "").strip()
    subtitle = None
    if subtitle_text and subtitle_text.lower() != "none":
        subtitle = SUBTITLE_FORMATS.get(subtitle_text.upper())
        if subtitle is None:
            raise InvalidInput("subtitleFormat must be VTT, SRT, SMI or None", "subtitleFormat")
    size = params.get("mediaSize")
    interval = params.get("statusInterval")
    return ExportRequest(
        start_us=tr.parse_time(begin, zone, "timeBegin"),
        end_us=tr.parse_time(end, zone, "timeEnd"),
        channels=tuple(channels) if channels is not None else None,
        media_size=parse_size(size) if size and size.strip() else None,
        subtitle=subtitle,
        status_interval_s=parse_interval(interval) if interval and interval.strip() else None,
        language=language(params.get("lang")),
        md5=tr.flag(params.get("md5")),
        password=parse_password(params.get("password") or ""),
        submitter=params.get("submitter") or "",
        recipient=params.get("recipient") or "",
        purpose=params.get("purpose") or "",
        client=client,
    )


# --- messages --------------------------------------------------------------------------


def _percent(fraction: float) -> str:
    return f"{int(min(max(fraction, 0.0), 1.0) * 100)}%"


def _status(code: int, lang: str, detail: str = "") -> dict[str, Any]:
    message = _MESSAGES.get(lang, _MESSAGES["en-US"]).get(code) or _MESSAGES["en-US"][-1000]
    return {"code": code, "message": f"{message}: {detail}" if detail else message}


def refused_message(reason: Refusal, lang: str, detail: str) -> dict[str, Any]:
    return {"stage": "ready", "status": _status(_READY_CODES[reason], lang, detail)}


def message(event: ExportEvent, lang: str, base_url: str, task_id: str) -> dict[str, Any]:
    """The spec's JSON message for one stage event."""
    zone = server_zone()
    if isinstance(event, Ready):
        return {
            "stage": "ready",
            "status": _status(0, lang),
            "task": {
                "id": event.task_id,
                "ch": list(event.channels),
                "timeRange": [
                    tr.format_time(event.start_us, zone),
                    tr.format_time(event.end_us, zone),
                ],
                "mediaSize": event.media_size or 0,
                "subtitleFormat": event.subtitle or "None",
                "language": event.language,
            },
        }
    if isinstance(event, TimeoutAlert):
        # The spec's example says "request"; its heading and its Example 4 page
        # read "stage": both are sent.
        return {"stage": "timeoutAlert", "request": "timeoutAlert", "ttl": event.ttl_ms}
    out: dict[str, Any] = {
        "stage": "",
        "overallProgress": _percent(event.overall),
        "timestamp": tr.format_time(event.time_us, zone),
    }
    if isinstance(event, Begin):
        out["stage"] = "begin"
    elif isinstance(event, End):
        out["stage"] = "end"
        detail = event.detail if event.outcome in (Outcome.FOOTAGE_GONE, Outcome.FAILED) else ""
        out["status"] = _status(_END_CODES[event.outcome], lang, detail)
    else:
        channel: dict[str, Any] = {"chid": event.channel_id, "progress": _percent(event.progress)}
        out["channel"] = channel
        if isinstance(event, ChannelBegin):
            out["stage"] = "channelBegin"
        elif isinstance(event, ChannelEnd):
            out["stage"] = "channelEnd"
        elif isinstance(event, FileBegin):
            out["stage"] = "fileBegin"
            channel["file"] = {"fid": event.fid, "name": event.name}
        elif isinstance(event, FileWriting):
            out["stage"] = "fileWriting"
            channel["file"] = {"fid": event.fid}
        else:
            assert isinstance(event, FileEnd)
            out["stage"] = "fileEnd"
            downloads = []
            for item in event.downloads:
                entry: dict[str, Any] = {
                    "fileName": item.name,
                    "src": f"{base_url}/download/{task_id}/{item.name}",
                }
                if item.md5 is not None:
                    entry["md5"] = item.md5
                downloads.append(entry)
            channel["file"] = {"fid": event.fid, "ttl": event.ttl_ms, "download": downloads}
    return out


def _http_base(websocket: WebSocket) -> str:
    """``http://host`` of a WebSocket's URL (``wss`` gives ``https``)."""
    url = websocket.base_url
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    return str(url.replace(scheme=scheme)).rstrip("/")


# --- the WebSocket ----------------------------------------------------------------------


async def _send(websocket: WebSocket, body: dict[str, Any]) -> None:
    text = json.dumps(body, ensure_ascii=False)
    await asyncio.wait_for(websocket.send_text(text), SEND_TIMEOUT_S)


async def _read_commands(websocket: WebSocket, task: ExportTask) -> None:
    """``{"task": id, "cmd": "wait" | "next" | "cancel"}``; the client leaving aborts."""
    try:
        while True:
            text = await websocket.receive_text()
            try:
                body = json.loads(text)
            except ValueError:
                continue
            if not isinstance(body, dict):
                continue
            if body.get("task") not in (None, task.id):
                log.info("export %s: command for another task ignored", task.id)
                continue
            command = body.get("cmd")
            if isinstance(command, str):
                task.command(command.strip().lower())
    except (WebSocketDisconnect, ConnectionError, RuntimeError, KeyError):
        pass  # gone (KeyError: a binary frame)
    finally:
        task.abort(Outcome.DISCONNECTED)


@router.websocket("/wsapi/dataExport")
async def data_export(websocket: WebSocket) -> None:
    """Exports recorded video: stage messages out, ``wait``/``next``/``cancel`` in."""
    app = get_app(websocket)
    await websocket.accept()
    try:
        user = await authenticate(websocket)
    except VidiconError:
        # As the spec's other WebSocket does: wrong credentials, disconnected at once.
        await websocket.close(code=1008, reason="authentication failed")
        return
    lang = language(websocket.query_params.get("lang"))
    client = websocket.client.host if websocket.client else ""
    try:
        task = await app.exports.open(user, parse_request(websocket.query_params, client))
    except (ExportRefused, InvalidInput) as exc:
        reason = exc.reason if isinstance(exc, ExportRefused) else Refusal.INVALID
        with contextlib.suppress(Exception):
            await _send(websocket, refused_message(reason, lang, str(exc)))
            await websocket.close(code=1000)
        return
    except Forbidden as exc:  # no DataExport right: refused like wrong credentials
        await websocket.close(code=1008, reason=str(exc)[:120])
        return
    base = _http_base(websocket)
    reader = asyncio.create_task(_read_commands(websocket, task), name=f"export-{task.id}")
    try:
        async with aclosing(task.events()) as events:
            async for event in events:
                await _send(websocket, message(event, task.request.language, base, task.id))
        await websocket.close(code=1000)
    except (WebSocketDisconnect, ConnectionError, RuntimeError, TimeoutError):
        pass  # the client went away: the task is over and its files deleted
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await task.close(Outcome.DISCONNECTED, "the client went away")


# --- downloads -----------------------------------------------------------------------------


async def _download_user(request: Request, name: str) -> tuple[User, str]:
    """The user and the file name; ``name&auth=...`` (the spec's example link) carries
    the credentials in the path."""
    file_name, glued, credentials = name.partition("&auth=")
    if glued:
        return await password_user(request, credentials), file_name
    return await authenticate(request), file_name


@router.get("/download/{task_id}/{name}", response_class=FileResponse)
async def download(request: Request, task_id: str, name: str) -> FileResponse:
    """A file of a running export, from its ``fileEnd`` until the client says ``next``;
    ``auth=``, HTTP Basic or the session cookie (only the export's own user, or an admin)."""
    user, file_name = await _download_user(request, name)
    found = get_app(request).exports.download(user, task_id, file_name)
    return FileResponse(found.path, media_type=found.media_type, filename=found.name)
